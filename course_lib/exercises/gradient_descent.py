"""Exercises of notebook 03_gradient_descent.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("03.N", answer)``; the lesson's code is
in :mod:`course_lib.gradient_descent`.
"""

from __future__ import annotations

import numpy as np

from ..gradient_descent import Quadratic, _rotated
from . import call, compare, number, pair, register, values

_Q = Quadratic(_rotated([2.0, 5.0], 0.4), np.array([0.5, -1.0]))


def _solution_step(w, grad, lr):
    return w - lr * grad


@register(
    "03.1",
    title="one gradient-descent step",
    hint="Move against the gradient: the new weights are w - lr * grad.",
    solution=_solution_step,
)
def _check_step(answer):
    w, g = np.array([1.0, -2.0, 0.5]), np.array([0.3, -0.1, 2.0])
    expected = _solution_step(w, g, 0.1)
    got = call(answer, w, g, 0.1)
    problem = compare(got, expected, name="your new weights")
    arr = values(got, expected)
    if problem and arr is not None and np.allclose(arr, w + 0.1 * g):
        return "you moved along the gradient, uphill: subtract lr * grad instead of adding it."
    return problem


def _solution_momentum(w, v, grad, lr, momentum):
    v = momentum * v + grad
    return w - lr * v, v


@register(
    "03.2",
    title="one momentum step",
    hint="First update the velocity, v = momentum * v + grad, then move: w = w - lr * v. "
    "Return both (w, v).",
    solution=_solution_momentum,
)
def _check_momentum(answer):
    w, v, g = np.array([1.0, -1.0]), np.array([0.5, 0.2]), np.array([0.1, 0.4])
    w_exp, v_exp = _solution_momentum(w, v, g, 0.1, 0.9)
    new_w, new_v = pair(call(answer, w, v, g, 0.1, 0.9), 2, "a pair (new_w, new_v)")
    problem = compare(new_v, v_exp, name="your new velocity v")
    if problem:
        return problem + " The velocity is momentum * v + grad."
    problem = compare(new_w, w_exp, name="your new weights w")
    arr = values(new_w, w_exp)
    if problem and arr is not None and np.allclose(arr, w - 0.1 * v):
        return "you moved with the old velocity: update v first, then use the new v."
    return problem


def _solution_limit(H):
    return 2.0 / np.linalg.eigvalsh(H).max()


@register(
    "03.3",
    title="the stability limit",
    hint="Along the eigenvector with the largest eigenvalue L, each step multiplies the "
    "error by (1 - lr * L); it shrinks only if |1 - lr * L| < 1, i.e. lr < 2 / L. "
    "np.linalg.eigvalsh gives the eigenvalues of a symmetric matrix.",
    solution=_solution_limit,
)
def _check_limit(answer):
    for H in (_Q.H, np.diag([1.0, 10.0, 0.1]), np.array([[4.0]])):
        expected = _solution_limit(H)
        value = number(call(answer, H), "your limit")
        problem = compare(value, expected, name="your limit")
        if problem:
            if np.isclose(value, 1.0 / np.linalg.eigvalsh(H).max()):
                return "that is 1/L, the best step along the steepest direction; the limit is twice that."
            if np.isclose(value, 2.0 / np.linalg.eigvalsh(H).min()):
                return "you used the smallest eigenvalue: the steepest direction (largest) sets the limit."
            return problem
    return None
