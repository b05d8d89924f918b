"""Exercise checkers: clear feedback on the learner's answer, never an exception.

In a notebook an exercise is a stub the learner fills in, followed by::

    cl.exercises.check("01.1", my_answer)

which prints whether the answer is correct, and if not what is wrong and a
hint. A wrong, unfinished (``raise NotImplementedError`` or ``...``) or
malformed answer (wrong shape, dtype, NaN, an exception inside the learner's
function) is reported, never raised. ``cl.exercises.solution("01.1")`` shows
the reference solution.

Each topic module registers its exercises with :func:`register`; the
exercises of notebook ``NN`` live in the topic module ``config.TOPICS["NN"]``.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import numpy as np

from .config import TOPICS

__all__ = [
    "Exercise",
    "Result",
    "Wrong",
    "all_ids",
    "call",
    "check",
    "compare",
    "evaluate",
    "get",
    "register",
    "scalar",
    "solution",
]


class Wrong(Exception):
    """Raised inside a checker to report what is wrong with an answer."""


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    hint: str
    checker: Callable[[Any], str | None]
    solution: Callable


@dataclass(frozen=True)
class Result:
    """Outcome of checking one answer: ``passed`` and the feedback text."""

    id: str
    passed: bool
    status: str  # "correct", "wrong" or "unfinished"
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.message


_REGISTRY: dict[str, Exercise] = {}


def register(id: str, title: str, hint: str, solution: Callable):
    """Decorator that registers ``checker(answer) -> None | str`` as exercise ``id``.

    The checker returns ``None`` when the answer is right, or a sentence that
    says what is wrong (it may also raise :class:`Wrong` with that sentence).
    ``solution`` is the reference answer: the function the learner should
    write, or a function returning the expected value; it must pass the checker.
    """

    def decorator(checker: Callable[[Any], str | None]):
        _REGISTRY[id] = Exercise(id, title, hint, checker, solution)
        return checker

    return decorator


def get(id: str) -> Exercise:
    """The registered exercise ``id`` (e.g. ``"03.2"``), importing its topic module."""
    topic = TOPICS.get(str(id).split(".")[0])
    if topic is not None and id not in _REGISTRY:
        import_module(f"{__package__}.{topic}")
    if id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none loaded"
        raise KeyError(f"No exercise {id!r}. Exercise ids look like '03.2' (known: {known}).")
    return _REGISTRY[id]


def all_ids() -> list[str]:
    """Every exercise id of the course, in order (imports all topic modules that exist)."""
    for topic in TOPICS.values():
        try:
            import_module(f"{__package__}.{topic}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{topic}":
                raise
    return sorted(_REGISTRY)


# --------------------------------------------------------------------------- checking


def _is_unfinished(answer: Any) -> bool:
    return answer is Ellipsis


def evaluate(id: str, answer: Any) -> Result:
    """Check ``answer`` against exercise ``id`` and return a :class:`Result` (no printing)."""
    exercise = get(id)
    header = f"Exercise {id} ({exercise.title})"
    hint = f"\n   Hint: {exercise.hint}"
    if _is_unfinished(answer):
        return Result(
            id, False, "unfinished", f"[todo] {header}: replace the ... with your answer.{hint}"
        )
    try:
        problem = exercise.checker(answer)
    except NotImplementedError:
        return Result(
            id,
            False,
            "unfinished",
            f"[todo] {header}: not attempted yet. Replace `raise NotImplementedError` "
            f"with your code and run the cell again.{hint}",
        )
    except Wrong as exc:
        problem = str(exc)
    except Exception as exc:  # the learner's code failed: report it, never raise
        problem = f"your code raised {type(exc).__name__}: {exc}"
    if problem is None:
        return Result(id, True, "correct", f"[correct] {header}: well done!")
    return Result(id, False, "wrong", f"[not yet] {header}: {problem}{hint}")


def check(id: str, answer: Any) -> None:
    """Print feedback on ``answer`` for exercise ``id``: correct, or what is wrong and a hint."""
    try:
        result = evaluate(id, answer)
    except KeyError as exc:
        print(exc.args[0])
        return
    print(result.message)


def solution(id: str) -> None:
    """Show the reference solution of exercise ``id``."""
    exercise = get(id)
    try:
        source = textwrap.dedent(inspect.getsource(exercise.solution))
    except (OSError, TypeError):
        source = repr(exercise.solution)
    text = f"Reference solution of exercise {id} ({exercise.title}):\n\n{source}"
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(f"**Exercise {id}: {exercise.title}**\n\n```python\n{source}```"))
            return
    except ImportError:
        pass
    print(text)


# --------------------------------------------------------------------------- helpers for checkers


def call(fn: Any, *args, **kwargs) -> Any:
    """Call the learner's function; raise :class:`Wrong` if it is not callable or returns None/...

    Arrays and tensors among the arguments are copied, so an answer that
    modifies its inputs cannot spoil the checker's data.
    """
    if not callable(fn):
        raise Wrong(f"expected a function, got {type(fn).__name__}. Pass the function itself.")
    args = tuple(_copy(a) for a in args)
    kwargs = {k: _copy(v) for k, v in kwargs.items()}
    out = fn(*args, **kwargs)
    if out is None:
        raise Wrong("your function returned None: did you forget the `return` statement?")
    if out is Ellipsis:
        raise NotImplementedError
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.detach().clone()
    except ImportError:  # pragma: no cover
        pass
    return value


def scalar(value: Any) -> float | None:
    """``value`` as a float when it is a single number (Python, NumPy or a one-element
    tensor), else ``None``: for checkers that compare an answer with known wrong values."""
    try:
        arr = _to_numpy(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    if arr.dtype.kind not in "biuf" or arr.size != 1:  # numbers only: not text, not None
        return None
    return float(arr.ravel()[0])


def _to_numpy(value: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(value)


def compare(
    got: Any,
    expected: Any,
    name: str = "your answer",
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> str | None:
    """``None`` if ``got`` equals ``expected`` (numbers, arrays or tensors), else what differs.

    Checks, in order: missing value, type (number vs array), shape, NaN/inf,
    then values within ``rtol``/``atol``.
    """
    if got is None:
        return f"{name} is None: did you forget to return or assign it?"
    if got is Ellipsis:
        raise NotImplementedError
    try:
        got_arr = _to_numpy(got)
    except Exception:
        return f"{name} should be numeric, got a {type(got).__name__}."
    exp_arr = _to_numpy(expected)
    if got_arr.dtype == object or not (
        np.issubdtype(got_arr.dtype, np.number) or got_arr.dtype == bool
    ):
        return f"{name} should be numeric, got {type(got).__name__} of dtype {got_arr.dtype}."
    if got_arr.shape != exp_arr.shape:
        if got_arr.size == exp_arr.size:
            extra = " (same number of elements: check a reshape, transpose or keepdims)"
        else:
            extra = ""
        return f"{name} has shape {tuple(got_arr.shape)}, expected {tuple(exp_arr.shape)}{extra}."
    got_f = got_arr.astype(np.float64)
    exp_f = exp_arr.astype(np.float64)
    if not np.all(np.isfinite(got_f)) and np.all(np.isfinite(exp_f)):
        return f"{name} contains NaN or infinite values."
    if not np.allclose(got_f, exp_f, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(got_f - exp_f)
        where = np.unravel_index(np.nanargmax(diff), diff.shape) if diff.ndim else ()
        at = f" at index {tuple(int(i) for i in where)}" if where else ""
        return (
            f"{name} is off: got {got_f[where]:.6g}, expected {exp_f[where]:.6g}{at} "
            f"(largest difference {np.nanmax(diff):.3g})."
        )
    return None
