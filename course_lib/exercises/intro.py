"""Exercises of notebook 01_intro_weights.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("01.N", answer)``; the lesson's code is
in :mod:`course_lib.intro`.
"""

from __future__ import annotations

import numpy as np

from . import call, compare, integer, number, pair, register

_RNG = np.random.default_rng(1)
_Y_TRUE = _RNG.normal(150, 70, size=40)
_Y_PRED = _Y_TRUE + _RNG.normal(10, 40, size=40)


def _solution_mse(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2)


@register(
    "01.1",
    title="mean squared error",
    hint="Subtract, square each difference, then average: np.mean((y_true - y_pred) ** 2).",
    solution=_solution_mse,
)
def _check_mse(answer):
    expected = _solution_mse(_Y_TRUE, _Y_PRED)
    got = number(call(answer, _Y_TRUE, _Y_PRED), "your MSE")
    if np.isclose(got, expected * len(_Y_TRUE)):
        return "you returned the sum of squared errors: divide by the number of examples."
    if np.isclose(got, np.sqrt(expected)):
        return "you returned the root of the MSE (RMSE): leave out the square root."
    return compare(got, expected, name="your MSE")


_X_LS = _RNG.normal(size=(60, 3))
_Y_LS = _X_LS @ np.array([2.0, -1.0, 0.5]) + 3.0 + _RNG.normal(0, 0.1, size=60)


def _solution_least_squares(X, y):
    A = np.hstack([X, np.ones((len(X), 1))])  # a column of ones carries the bias
    theta = np.linalg.solve(A.T @ A, A.T @ y)  # the normal equations
    return theta[:-1], theta[-1]


@register(
    "01.2",
    title="least squares in closed form",
    hint="Append a column of ones to X (for the bias), then solve (A^T A) theta = A^T y "
    "with np.linalg.solve; the last entry of theta is the bias.",
    solution=_solution_least_squares,
)
def _check_least_squares(answer):
    w_exp, b_exp = _solution_least_squares(_X_LS, _Y_LS)
    w, b = pair(call(answer, _X_LS, _Y_LS), 2, "a pair (w, b): the weight vector and the bias")
    problem = compare(w, w_exp, name="your weight vector w", rtol=1e-4)
    if problem:
        return problem + " Did you include a column of ones for the bias?"
    return compare(b, b_exp, name="your bias b", rtol=1e-4)


def _solution_count(sizes):
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False))


@register(
    "01.3",
    title="counting the weights of an MLP",
    hint="A Linear layer from n_in to n_out has an n_out x n_in weight matrix and n_out biases.",
    solution=_solution_count,
)
def _check_count(answer):
    for sizes in ([64, 32, 10], [784, 300, 100, 10], [3, 1]):
        expected = _solution_count(sizes)
        got = integer(call(answer, list(sizes)), f"your count for sizes {sizes}")
        if got != expected:
            weights_only = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
            if got == weights_only:
                return f"for sizes {sizes} you counted the weights but not the biases."
            return f"for sizes {sizes} you got {got}, expected {expected}."
    return None
