"""course_lib.exercises: the checker framework, and the contract every exercise keeps.

Each notebook's typical wrong answers and their hints are tested in that notebook's test
file (with ``assert_feedback`` from conftest); here: the framework, and for every
exercise of the course that the reference solution passes and that unfinished,
malformed or misbehaving answers get feedback, never an exception, never a misjudgement.
"""

from __future__ import annotations

import random
import re
import textwrap

import numpy as np
import pytest
import torch

from course_lib import config, exercises
from course_lib.exercises import Wrong


def _solution(x):
    return 2 * x


@exercises.register("99.1", title="doubling", hint="multiply by two", solution=_solution)
def _check(answer):
    x = np.arange(4.0)
    return exercises.compare(exercises.call(answer, x), _solution(x), name="your result")


def _count_solution(sizes):
    return sum(sizes)


@exercises.register("99.2", title="counting", hint="add them up", solution=_count_solution)
def _check_count(answer):
    got = exercises.integer(exercises.call(answer, [1, 2, 3]), "your count")
    return None if got == 6 else f"you got {got}, expected 6."


@exercises.register("99.3", title="a broken checker", hint="none", solution=_solution)
def _check_broken(answer):
    exercises.call(answer, 1.0)
    return {}["missing"]  # a bug in the checker itself


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
        (lambda x: "text", "wrong", "should be a number, not the text 'text'"),
        (lambda x: [object()], "wrong", "numeric"),
        (lambda x: (2 * x).astype(complex), "wrong", "real, not complex"),
        (lambda x: list(2 * x), "correct", ""),  # a list of the right numbers is fine
        (lambda x, y: x, "wrong", "your code raised TypeError"),
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
    assert capsys.readouterr().out.strip() == result.message
    if status != "correct":
        assert not result.passed and "Hint: multiply by two" in result.message


def test_an_error_in_the_learners_code_names_its_line():
    def my_answer(x):
        y = x * 2
        return y @ np.ones((3, 3))  # shapes do not match

    message = exercises.evaluate("99.1", my_answer).message
    assert "your code raised ValueError" in message
    assert re.search(r"in my_answer, line \d+: return y @ np.ones\(\(3, 3\)\)", message), message


def test_an_error_in_the_checker_is_not_blamed_on_the_learner():
    result = exercises.evaluate("99.3", _solution)
    assert result.status == "error" and not result.passed
    assert "the checker itself failed (KeyError" in result.message
    assert "not in your answer" in result.message and "your code raised" not in result.message


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda s: 6.0, "whole number (an int), got the float 6.0"),
        (lambda s: 6 + 0j, "real, not complex"),
        (lambda s: "6", "should be a number, not the text '6'"),
        (lambda s: True, "not the truth value True"),
        (lambda s: [6, 0], "a single number, got 2 values"),
    ],
)
def test_integer_answers(answer, phrase):
    result = exercises.evaluate("99.2", answer)
    assert result.status == "wrong" and phrase in result.message, result.message
    assert "Hint: add them up" in result.message
    for ok in (lambda s: 6, lambda s: np.int64(6), lambda s: torch.tensor(6)):
        assert exercises.evaluate("99.2", ok).passed


def test_number_and_integer_helpers():
    assert exercises.number(np.float32(1.5)) == 1.5 and exercises.number(torch.tensor([2.0])) == 2.0
    assert exercises.integer(np.int32(3)) == 3 and exercises.integer(torch.tensor(4)) == 4
    for bad in ("1", 1j, None, [1, 2], np.ones(3), True):
        with pytest.raises(Wrong):
            exercises.number(bad)
    assert exercises.scalar("0.5") is None and exercises.scalar(2) == 2.0
    assert exercises.scalar(torch.tensor([3.0], requires_grad=True)) == 3.0
    assert exercises.values([1.0, 2.0], np.zeros(2)).tolist() == [1.0, 2.0]
    assert exercises.values([1.0, 2.0], np.zeros(3)) is None
    assert exercises.values("ab", np.zeros(2)) is None
    with pytest.raises(Wrong, match="return a pair"):
        exercises.pair([1, 2, 3])


def test_answers_cannot_modify_the_checkers_data():
    def sneaky(x):
        x *= 0
        return x

    assert not exercises.evaluate("99.1", sneaky).passed
    assert exercises.evaluate("99.1", _solution).passed  # data untouched


def test_call_copies_models_and_containers():
    model = torch.nn.Linear(2, 2)
    before = model.weight.detach().clone()
    data = {"w": np.ones(3), "items": [torch.zeros(2)]}

    def vandal(m, d):
        with torch.no_grad():
            m.weight.zero_()
        d["w"][:] = 5
        d["items"][0] += 1
        return 1

    exercises.call(vandal, model, data)
    assert torch.equal(model.weight, before)
    assert data["w"].tolist() == [1, 1, 1] and data["items"][0].tolist() == [0, 0]


def test_checking_keeps_the_learners_random_state():
    config.seed_everything(3)

    def noisy(x):
        random.random(), np.random.rand(5), torch.rand(5)
        return 2 * x

    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    config.seed_everything(3)
    exercises.evaluate("99.1", noisy)
    exercises.evaluate("99.2", _count_solution)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_interrupting_a_looping_answer_is_reported():
    def loops_forever(x):
        raise KeyboardInterrupt  # what the kernel's interrupt button raises inside the loop

    result = exercises.evaluate("99.1", loops_forever)
    assert result.status == "interrupted" and "stopping condition" in result.message


def test_tensor_answers_are_accepted():
    assert exercises.evaluate("99.1", lambda x: torch.as_tensor(x) * 2).passed


def test_compare_reports_the_worst_entry():
    message = exercises.compare(np.array([1.0, 2.0, 5.0]), np.array([1.0, 2.0, 3.0]), name="v")
    assert "got 5, expected 3 at index (2,)" in message
    assert exercises.compare(3.0, 3.0 + 1e-9) is None
    assert "None" in exercises.compare(None, 1.0)


def test_unknown_exercise(capsys):
    with pytest.raises(KeyError, match="No exercise"):
        exercises.get("42.9")
    exercises.check("42.9", lambda: 0)  # a typo in the id prints, does not raise
    assert "No exercise" in capsys.readouterr().out


def test_solution_prints_the_reference_source(capsys, monkeypatch):
    monkeypatch.delenv("COURSE_SOLUTIONS", raising=False)
    exercises.solution("99.1")
    out = capsys.readouterr().out
    assert "def _solution(x):" in out and "return 2 * x" in out


def test_instructor_mode_hides_solutions_but_keeps_feedback(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_SOLUTIONS", "hidden")
    exercises.solution("99.1")
    out = capsys.readouterr().out
    assert "hidden in this workshop" in out and "return 2 * x" not in out
    assert "Hint: multiply by two" in out
    assert exercises.evaluate("99.1", lambda x: x * 3).message.count("Hint:") == 1
    monkeypatch.setenv("COURSE_SOLUTIONS", "maybe")
    with pytest.raises(ValueError, match="COURSE_SOLUTIONS=hidden"):
        exercises.solution("99.1")


def test_check_in_a_notebook_shows_that_it_runs_then_the_result(monkeypatch):
    from IPython import display as ipy_display

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj.data))

    def fake_display(obj, display_id=False):
        shown.append(("display", obj.data))
        return Handle()

    monkeypatch.setattr(exercises, "_in_notebook", lambda: True)
    monkeypatch.setattr(ipy_display, "display", fake_display)
    exercises.check("99.1", _solution)
    assert shown[0][0] == "display" and "Interrupt Kernel" in shown[0][1]
    assert shown[1] == ("update", "[correct] Exercise 99.1 (doubling): well done!")


# --------------------------------------------------------------------------- every exercise


COURSE_IDS = [i for i in exercises.all_ids() if not i.startswith("99.")]


def test_every_notebook_has_two_or_three_exercises():
    per_notebook: dict[str, int] = {}
    for id in COURSE_IDS:
        per_notebook[id[:2]] = per_notebook.get(id[:2], 0) + 1
    assert sorted(per_notebook) == list(config.TOPICS), per_notebook
    assert all(2 <= n <= 3 for n in per_notebook.values()), per_notebook


def _not_done(*args, **kwargs):
    raise NotImplementedError


#: answers that return something malformed: the feedback must be about the value
RETURNS_MALFORMED = [
    lambda *a, **k: float("nan"),
    lambda *a, **k: np.full((7, 7), np.nan),
    lambda *a, **k: "text",
    lambda *a, **k: "3.5",
    lambda *a, **k: 1 + 2j,
    lambda *a, **k: np.ones(3, dtype=complex),
    lambda *a, **k: [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    lambda *a, **k: [[1.0], [2.0, 3.0]],
    lambda *a, **k: (),
    lambda *a, **k: (1.0, "x"),
    lambda *a, **k: ("a", "b", "c"),
    lambda *a, **k: {"a": 1},
    lambda *a, **k: torch.nn.Linear(2, 2),
    lambda *a, **k: np.zeros((2, 3, 4)),
    lambda *a, **k: torch.zeros(0),
    lambda *a, **k: 7.5,
]
#: answers that raise or are no function: the feedback must blame the answer
RAISES = [lambda *a, **k: 1 / 0, lambda: 0, 42, lambda *a, **k: None]


@pytest.mark.parametrize("id", COURSE_IDS)
def test_exercise_contract(id):
    """The solution passes; unfinished, malformed and failing answers get feedback, never an error."""
    result = exercises.evaluate(id, exercises.get(id).solution)
    assert result.passed and result.status == "correct", result.message
    for unfinished in (_not_done, ...):
        result = exercises.evaluate(id, unfinished)
        assert result.status == "unfinished" and "Hint:" in result.message, result.message
    with np.errstate(all="ignore"):
        for answer in RETURNS_MALFORMED:
            result = exercises.evaluate(id, answer)
            assert result.status == "wrong" and "Hint:" in result.message, result.message
            assert "your code raised" not in result.message, (
                f"{id}: a returned value was reported as an error of the learner's code:\n"
                f"{result.message}\nfor the answer {textwrap.shorten(repr(answer), 60)}"
            )
        for answer in RAISES:
            result = exercises.evaluate(id, answer)
            assert result.status == "wrong" and "Hint:" in result.message, result.message


@pytest.mark.parametrize("id", COURSE_IDS)
def test_solutions_pass_with_any_global_random_state(id):
    """A checker must not depend on (or change) the learner's global random state."""
    config.seed_everything(12345)
    before = torch.get_rng_state()
    assert exercises.evaluate(id, exercises.get(id).solution).passed
    assert torch.equal(torch.get_rng_state(), before)
