"""course_lib.exercises: the checker framework, and every exercise of the course."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import exercises


def _solution(x):
    return 2 * x


@exercises.register("99.1", title="doubling", hint="multiply by two", solution=_solution)
def _check(answer):
    x = np.arange(4.0)
    return exercises.compare(exercises.call(answer, x), _solution(x), name="your result")


def test_correct_answer(capsys):
    assert exercises.evaluate("99.1", lambda x: x * 2).passed
    exercises.check("99.1", lambda x: x + x)
    assert "[correct]" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, status, phrase",
    [
        (lambda x: x * 3, "wrong", "is off"),
        (lambda x: (2 * x)[:2], "wrong", "shape"),
        (lambda x: (2 * x).reshape(2, 2), "wrong", "reshape"),
        (lambda x: x / 0, "wrong", "NaN or infinite"),
        (lambda x: None, "wrong", "return"),
        (lambda x: "text", "wrong", "numeric"),
        (lambda x: [object()], "wrong", "numeric"),
        (lambda x: 1 / 0 if True else x, "wrong", "ZeroDivisionError"),
        (lambda x, y: x, "wrong", "TypeError"),
        (42, "wrong", "expected a function"),
        (..., "unfinished", "..."),
        (lambda x: ..., "unfinished", "not attempted"),
    ],
)
def test_wrong_and_unfinished_answers_never_raise(answer, status, phrase, capsys):
    with np.errstate(divide="ignore", invalid="ignore"):
        result = exercises.evaluate("99.1", answer)
        exercises.check("99.1", answer)  # prints, never raises
    assert result.status == status and phrase in result.message, result.message
    assert not result.passed and "Hint: multiply by two" in result.message
    assert capsys.readouterr().out.strip() == result.message


def test_not_implemented_stub():
    def stub(x):
        raise NotImplementedError

    result = exercises.evaluate("99.1", stub)
    assert result.status == "unfinished" and "raise NotImplementedError" in result.message


def test_answers_cannot_modify_the_checkers_data():
    def sneaky(x):
        x *= 0
        return x

    assert not exercises.evaluate("99.1", sneaky).passed
    assert exercises.evaluate("99.1", _solution).passed  # data untouched


def test_tensor_answers_are_accepted():
    assert exercises.evaluate("99.1", lambda x: torch.as_tensor(x) * 2).passed


def test_compare_reports_the_worst_entry():
    message = exercises.compare(np.array([1.0, 2.0, 5.0]), np.array([1.0, 2.0, 3.0]), name="v")
    assert "got 5, expected 3 at index (2,)" in message
    assert exercises.compare(3.0, 3.0 + 1e-9) is None
    assert "None" in exercises.compare(None, 1.0)


def test_scalar_reads_single_numbers_only():
    assert exercises.scalar(2) == 2.0 and exercises.scalar(np.float32(1.5)) == 1.5
    assert exercises.scalar(torch.tensor([3.0], requires_grad=True)) == 3.0
    assert exercises.scalar(torch.ones(2)) is None and exercises.scalar("0.5") is None
    assert exercises.scalar(None) is None and exercises.scalar([]) is None


def test_unknown_exercise(capsys):
    with pytest.raises(KeyError, match="No exercise"):
        exercises.get("42.9")
    exercises.check("42.9", lambda: 0)  # a typo in the id prints, does not raise
    assert "No exercise" in capsys.readouterr().out


def test_solution_prints_the_reference_source(capsys):
    exercises.solution("99.1")
    out = capsys.readouterr().out
    assert "def _solution(x):" in out and "return 2 * x" in out


COURSE_IDS = [i for i in exercises.all_ids() if not i.startswith("99.")]


def test_every_notebook_has_two_or_three_exercises():
    per_notebook: dict[str, int] = {}
    for id in COURSE_IDS:
        per_notebook[id[:2]] = per_notebook.get(id[:2], 0) + 1
    assert sorted(per_notebook) == [f"{n:02d}" for n in range(1, 15)], per_notebook
    assert all(2 <= n <= 3 for n in per_notebook.values()), per_notebook


def _not_done(*args, **kwargs):
    raise NotImplementedError


MALFORMED = [
    lambda *a, **k: 1 / 0,
    lambda *a, **k: float("nan"),
    lambda *a, **k: np.full((7, 7), np.nan),
    lambda *a, **k: "text",
    lambda *a, **k: None,
    lambda: 0,
    42,
]


@pytest.mark.parametrize("id", COURSE_IDS)
def test_exercise_contract(id):
    """The reference solution passes; unfinished and malformed answers get feedback, never an error."""
    result = exercises.evaluate(id, exercises.get(id).solution)
    assert result.passed and result.status == "correct", result.message
    for unfinished in (_not_done, ...):
        result = exercises.evaluate(id, unfinished)
        assert result.status == "unfinished" and "Hint:" in result.message, result.message
    with np.errstate(all="ignore"):
        for answer in MALFORMED:
            result = exercises.evaluate(id, answer)
            assert result.status == "wrong" and "Hint:" in result.message, result.message
