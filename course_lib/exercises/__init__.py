"""Exercise checkers: clear feedback on the learner's answer, never an exception.

In a notebook an exercise is a stub the learner fills in, followed by::

    cl.exercises.check("01.1", my_answer)

which shows that the check is running (and how to stop a loop that never
ends), then whether the answer is correct, and if not what is wrong and a hint.
A wrong, unfinished (``raise NotImplementedError`` or ``...``) or malformed
answer (wrong shape or type, NaN, an exception inside the learner's function)
is reported, never raised. ``cl.exercises.solution("01.1")`` shows the reference
solution, unless the workshop hides solutions (``COURSE_SOLUTIONS=hidden``).

The checkers of notebook ``NN`` live in ``course_lib/exercises/<topic>.py``
(the topic is ``config.TOPICS["NN"]``) and register themselves with
:func:`register`. A checker

* calls the learner's function only through :func:`call`, which hands it copies
  of every argument (arrays, tensors, models), so that an answer cannot change
  what the checker compares it with, and which reports an error raised by the
  learner's code as the learner's;
* validates the shape and type of the answer (:func:`compare`, :func:`number`,
  :func:`integer`, :func:`pair`, :func:`values`) before diagnosing it, so that
  a malformed answer gets a message about its shape or type;
* leaves the learner's random state as it found it (:func:`evaluate` restores it).

An error inside a checker itself is reported as the checker's, never blamed on
the learner.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import random
import textwrap
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import import_module
from typing import Any

import numpy as np

from ..config import TOPICS

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
    "integer",
    "number",
    "pair",
    "register",
    "scalar",
    "solution",
    "solutions_hidden",
    "values",
]

RUNNING_NOTE = (
    "checking your answer ... If this takes more than a few seconds, your code may be stuck "
    "in a loop: stop it with the \u25a0 button (Kernel \u2192 Interrupt Kernel), then look at "
    "the loop's stopping condition."
)


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
    """Outcome of checking one answer: ``passed`` and the feedback text.

    ``status`` is ``"correct"``, ``"wrong"``, ``"unfinished"``, ``"interrupted"``
    (the learner stopped a check that was running) or ``"error"`` (the checker
    itself failed: a bug of the course, not of the answer).
    """

    id: str
    passed: bool
    status: str
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
    """The registered exercise ``id`` (e.g. ``"03.2"``), importing its notebook's checkers."""
    topic = TOPICS.get(str(id).split(".")[0])
    if topic is not None and id not in _REGISTRY:
        import_module(f"{__name__}.{topic}")
    if id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none loaded"
        raise KeyError(f"No exercise {id!r}. Exercise ids look like '03.2' (known: {known}).")
    return _REGISTRY[id]


def all_ids() -> list[str]:
    """Every exercise id of the course, in order (imports the checkers of every notebook)."""
    for topic in TOPICS.values():
        import_module(f"{__name__}.{topic}")
    return sorted(_REGISTRY)


# --------------------------------------------------------------------------- checking


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Restore Python's, NumPy's and PyTorch's global random state afterwards."""
    import torch

    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def evaluate(id: str, answer: Any) -> Result:
    """Check ``answer`` against exercise ``id`` and return a :class:`Result` (no printing)."""
    exercise = get(id)
    header = f"Exercise {id} ({exercise.title})"
    hint = f"\n   Hint: {exercise.hint}"
    if answer is Ellipsis:
        return Result(
            id, False, "unfinished", f"[todo] {header}: replace the ... with your answer.{hint}"
        )
    try:
        with _random_state_kept():
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
    except KeyboardInterrupt:
        return Result(
            id,
            False,
            "interrupted",
            f"[stopped] {header}: you interrupted the check while your code was running. If "
            f"it never finished, look for a loop whose stopping condition is never met.{hint}",
        )
    except Exception as exc:  # a bug in the checker, not in the answer
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Result(
            id,
            False,
            "error",
            f"[checker error] {header}: the checker itself failed ({type(exc).__name__}: {exc}, "
            f"line {where.lineno} of {os.path.basename(where.filename)}), so your answer could "
            "not be judged. This is a bug in the course, not in your answer: please report it.",
        )
    if problem is None:
        return Result(id, True, "correct", f"[correct] {header}: well done!")
    return Result(id, False, "wrong", f"[not yet] {header}: {problem}{hint}")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def check(id: str, answer: Any) -> None:
    """Show feedback on ``answer`` for exercise ``id``: correct, or what is wrong and a hint.

    In a notebook a line first says that the check is running and how to stop
    it; the feedback then replaces it. The outcome is recorded in the learner's
    progress (see :mod:`course_lib.exercise_progress`). :func:`evaluate` returns the
    :class:`Result` without showing or recording it.
    """
    try:
        exercise = get(id)
    except KeyError as exc:
        print(exc.args[0])
        return
    handle = None
    if _in_notebook():
        from IPython.display import Pretty, display

        handle = display(
            Pretty(f"Exercise {id} ({exercise.title}): {RUNNING_NOTE}"), display_id=True
        )
    result = evaluate(id, answer)
    if handle is not None:
        from IPython.display import Pretty

        handle.update(Pretty(result.message))
    else:
        print(result.message)
    from .. import exercise_progress

    exercise_progress.record(result)


def solutions_hidden() -> bool:
    """True when ``COURSE_SOLUTIONS=hidden`` (a workshop that keeps the solutions back)."""
    value = os.environ.get("COURSE_SOLUTIONS", "").strip().lower()
    if value in {"", "shown", "show", "open"}:
        return False
    if value in {"hidden", "hide"}:
        return True
    raise ValueError(
        f"COURSE_SOLUTIONS={value!r} is not understood: use COURSE_SOLUTIONS=hidden to hide the "
        "reference solutions (workshops), or leave it unset to show them."
    )


def solution(id: str) -> None:
    """Show the reference solution of exercise ``id`` (unless the workshop hides solutions)."""
    exercise = get(id)
    if solutions_hidden():
        print(
            f"The solutions are hidden in this workshop (COURSE_SOLUTIONS=hidden). Exercise {id} "
            f"({exercise.title}): check your answer with cl.exercises.check({id!r}, ...) for "
            f"feedback, and ask your instructor.\n   Hint: {exercise.hint}"
        )
        return
    try:
        source = textwrap.dedent(inspect.getsource(exercise.solution))
    except (OSError, TypeError):
        source = repr(exercise.solution)
    if _in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(f"**Exercise {id}: {exercise.title}**\n\n```python\n{source}```"))
        return
    print(f"Reference solution of exercise {id} ({exercise.title}):\n\n{source}")


# --------------------------------------------------------------------------- calling the answer


def _copy(value: Any) -> Any:
    """A copy of an argument that the learner's code may change without harm."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            if value.requires_grad:  # in-place changes raise; the checker needs its gradient
                return value
            return value.detach().clone()
    except ImportError:  # pragma: no cover
        pass
    if callable(value) and not hasattr(value, "state_dict"):
        return value  # functions: nothing to protect
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable: pass it as it is
        return value


def _your_line(exc: BaseException) -> str:
    """Where in the learner's code ``exc`` was raised (the first frame below :func:`call`)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code is not call.__code__:
        tb = tb.tb_next
    frames = traceback.extract_tb(tb.tb_next) if tb is not None and tb.tb_next else []
    if not frames:
        return ""
    first = frames[0]
    code = f": {first.line.strip()}" if first.line else ""
    return f" (in {first.name}, line {first.lineno}{code})"


def call(fn: Any, *args, **kwargs) -> Any:
    """Call the learner's function ``fn`` with copies of the arguments, and return its result.

    Arrays, tensors, models and containers are copied, so an answer that changes
    its inputs cannot spoil the checker's data (a tensor that requires grad is
    passed as it is: changing it in place is an error, and the checker may need
    the gradient with respect to it). Raises :class:`Wrong` when ``fn``
    is not callable, returns ``None``, or raises (naming the error and the line),
    and ``NotImplementedError`` when it is unfinished.
    """
    if not callable(fn):
        raise Wrong(f"expected a function, got {type(fn).__name__}. Pass the function itself.")
    args = tuple(_copy(a) for a in args)
    kwargs = {k: _copy(v) for k, v in kwargs.items()}
    try:
        out = fn(*args, **kwargs)
    except (NotImplementedError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise Wrong(f"your code raised {type(exc).__name__}: {exc}{_your_line(exc)}") from exc
    if out is None:
        raise Wrong("your function returned None: did you forget the `return` statement?")
    if out is Ellipsis:
        raise NotImplementedError
    return out


# --------------------------------------------------------------------------- reading the answer


def _to_numpy(value: Any) -> np.ndarray:
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(value)


def _kind(value: Any) -> str:
    """A short description of what ``value`` is, for messages."""
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, bool | np.bool_):
        return f"the truth value {value}"
    if isinstance(value, complex | np.complexfloating):
        return f"the complex number {value}"
    if isinstance(value, int | float | np.number):
        return f"the {type(value).__name__} {value!r}"
    return f"a {type(value).__name__}"


def _numeric(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array of real numbers, or :class:`Wrong` saying what it is."""
    if value is None:
        raise Wrong(f"{name} is None: did you forget to return or assign it?")
    if value is Ellipsis:
        raise NotImplementedError
    if isinstance(value, str | bytes):
        raise Wrong(f"{name} should be a number, not {_kind(value)}: return the value itself.")
    try:
        arr = _to_numpy(value)
    except Exception:
        arr = np.asarray([None], dtype=object)
    if arr.dtype.kind == "c":
        raise Wrong(f"{name} should be real, not complex ({_kind(value)}).")
    if arr.dtype.kind not in "biuf":
        raise Wrong(
            f"{name} should be numeric, got {_kind(value)}"
            + (f" of {arr.dtype}" if arr.dtype.kind in "OUS" else "")
            + "."
        )
    return arr.astype(np.float64)


def number(value: Any, name: str = "your answer") -> float:
    """``value`` as one real number (Python, NumPy or a one-element tensor), or :class:`Wrong`."""
    if isinstance(value, bool | np.bool_):
        raise Wrong(f"{name} should be a number, not {_kind(value)}.")
    arr = _numeric(value, name)
    if arr.size != 1:
        raise Wrong(
            f"{name} should be a single number, got {arr.size} values of shape {arr.shape}."
        )
    return float(arr.ravel()[0])


def integer(value: Any, name: str = "your answer") -> int:
    """``value`` as a whole number (``int``, a NumPy or tensor integer), or :class:`Wrong`.

    A float such as ``2410.0`` is refused with a hint: a count is an integer.
    """
    if isinstance(value, bool | np.bool_):
        raise Wrong(f"{name} should be a whole number, not {_kind(value)}.")
    arr = _numeric(value, name)
    if arr.size != 1:
        raise Wrong(
            f"{name} should be a single number, got {arr.size} values of shape {arr.shape}."
        )
    if _to_numpy(value).dtype.kind not in "iu":
        raise Wrong(
            f"{name} should be a whole number (an int), got {_kind(value)}: a count is an "
            "integer, so keep to integer arithmetic (use // rather than /, or int(...))."
        )
    return int(arr.ravel()[0])


def scalar(value: Any) -> float | None:
    """``value`` as a float when it is one real number, else ``None`` (for diagnostics)."""
    try:
        return number(value)
    except (Wrong, NotImplementedError):
        return None


def pair(value: Any, n: int = 2, what: str = "a pair") -> tuple:
    """``value`` as a tuple of ``n`` items (a tuple or list), or :class:`Wrong` asking for ``what``."""
    if not isinstance(value, tuple | list) or len(value) != n:
        got = f"a {type(value).__name__}" + (
            f" of length {len(value)}" if isinstance(value, tuple | list) else ""
        )
        raise Wrong(f"return {what}, got {got}.")
    return tuple(value)


def values(value: Any, like: Any) -> np.ndarray | None:
    """``value`` as a float64 array when it is numeric with the shape of ``like``, else ``None``.

    For a checker's diagnostics after :func:`compare` found a mismatch: only a
    well-formed answer is compared with the typical mistakes.
    """
    try:
        arr = _numeric(value, "answer")
    except (Wrong, NotImplementedError):
        return None
    return arr if arr.shape == np.shape(_to_numpy(like)) else None


def compare(
    got: Any,
    expected: Any,
    name: str = "your answer",
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> str | None:
    """``None`` if ``got`` equals ``expected`` (numbers, arrays or tensors), else what differs.

    Checks, in order: missing value, type (real numbers only), shape, NaN/inf,
    then values within ``rtol``/``atol``.
    """
    try:
        got_f = _numeric(got, name)
    except Wrong as exc:
        return str(exc)
    exp_f = _to_numpy(expected).astype(np.float64)
    if got_f.shape != exp_f.shape:
        if got_f.size == exp_f.size:
            extra = " (same number of elements: check a reshape, transpose or keepdims)"
        else:
            extra = ""
        return f"{name} has shape {tuple(got_f.shape)}, expected {tuple(exp_f.shape)}{extra}."
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
