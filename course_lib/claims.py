"""Claim checks: every quantitative statement of a notebook is asserted where it is shown.

::

    cl.claim(ratio < 2, "He initialisation keeps the variance within 2x over 50 layers",
             f"last/first = {ratio:.2f}")

prints ``✔ <statement> (<evidence>)`` when the condition holds and raises an
``AssertionError`` that quotes the statement and the evidence when it does not,
so executing a notebook (as CI does) verifies its lesson.

Every check is also recorded, passed or not, in the order it ran:
:func:`checked` returns the record (the course site lists it on each notebook's
page, with the date and mode of the build) and :func:`clear` empties it.
"""

from __future__ import annotations

__all__ = ["checked", "claim", "clear"]

_CHECKED: list[dict] = []


def claim(condition, statement: str, evidence: str = "", *, value=None, bound: str = "") -> None:
    """Assert ``condition``; print the verified ``statement`` or fail with it.

    ``value`` (a number) and ``bound`` (text such as ``"> 0.93"``) are the measured
    quantity and what it is held to, for claims whose value varies from run to run
    (trained models): they are recorded for ``make claims-spread``, not printed.
    """
    detail = f" ({evidence})" if evidence else ""
    passed = bool(condition)
    record = {"statement": str(statement), "evidence": str(evidence), "passed": passed}
    if value is not None:
        record["value"] = float(value)
        record["bound"] = str(bound)
    _CHECKED.append(record)
    if not passed:
        raise AssertionError(f"Claim not confirmed: {statement}{detail}")
    print(f"\u2714 {statement}{detail}")


def checked() -> list[dict]:
    """Every claim checked so far in this process: ``statement``, ``evidence``, ``passed``
    (and ``value`` and ``bound`` where the claim gave them)."""
    return [dict(record) for record in _CHECKED]


def clear() -> None:
    """Forget the claims checked so far."""
    _CHECKED.clear()
