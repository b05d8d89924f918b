"""Claim checks: every quantitative statement of a notebook is asserted where it is shown.

::

    cl.claim(ratio < 2, "He initialisation keeps the variance within 2x over 50 layers",
             f"last/first = {ratio:.2f}")

prints ``✔ <statement> (<evidence>)`` when the condition holds and raises an
``AssertionError`` that quotes the statement and the evidence when it does not,
so executing a notebook (as CI does) verifies its lesson.
"""

from __future__ import annotations

__all__ = ["claim"]


def claim(condition, statement: str, evidence: str = "") -> None:
    """Assert ``condition``; print the verified ``statement`` or fail with it."""
    detail = f" ({evidence})" if evidence else ""
    if not bool(condition):
        raise AssertionError(f"Claim not confirmed: {statement}{detail}")
    print(f"\u2714 {statement}{detail}")
