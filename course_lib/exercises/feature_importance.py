"""Exercises of notebook 10_feature_importance.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("10.N", answer)``; the lesson's code is
in :mod:`course_lib.feature_importance`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import call, compare, number, register, values

_rng = np.random.default_rng(1010)
_EX_X = _rng.standard_normal((50, 4)) * np.array([0.01, 1.0, 30.0, 500.0]) + np.array(
    [0.0, 5.0, -3.0, 1000.0]
)
_EX_COEF = np.array([150.0, -2.0, 0.05, 0.004])


def _solution_1(coef, X):
    return coef * X.std(axis=0)


@register(
    "10.1",
    title="standardised coefficients",
    hint="A coefficient is 'per unit'; multiply it by the feature's standard deviation "
    "(X.std(axis=0)) to get 'per standard deviation'.",
    solution=_solution_1,
)
def _check_1(answer):
    got = call(answer, _EX_COEF, _EX_X)
    # rtol 2% accepts the sample std (ddof=1) as well as the population std (ddof=0)
    problem = compare(
        got, _solution_1(_EX_COEF, _EX_X), name="your standardised coefficients", rtol=0.02
    )
    if problem is None:
        return None
    arr = values(got, _EX_COEF)
    if arr is not None:
        if np.allclose(arr, _EX_COEF / _EX_X.std(axis=0), rtol=0.02):
            return "you divided by the standard deviation: multiply instead (per unit x units per std)."
        if np.allclose(arr, _EX_COEF * _EX_X.var(axis=0), rtol=0.02):
            return "you used the variance: use the standard deviation (its square root)."
        if np.allclose(arr, _EX_COEF * np.abs(_EX_X).mean(axis=0), rtol=0.02) or np.allclose(
            arr, _EX_COEF * _EX_X.mean(axis=0), rtol=0.02
        ):
            return (
                "you used the mean of the feature: its spread (std) is what matters, not its level."
            )
    return problem


def _ex2_model() -> nn.Module:
    torch.manual_seed(10)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1)).to(torch.float64)


_EX2_X = torch.from_numpy(np.random.default_rng(102).standard_normal((6, 3)) + 0.5)


def _solution_2(model, x):
    x = x.clone().requires_grad_(True)
    model(x).sum().backward()  # each example's output depends only on its own input
    return (x.grad * x).detach()


@register(
    "10.2",
    title="gradient x input with autograd",
    hint="x = x.clone().requires_grad_(True); model(x).sum().backward(); return x.grad * x "
    "(one row per example).",
    solution=_solution_2,
)
def _check_2(answer):
    model = _ex2_model()
    expected = _solution_2(_ex2_model(), _EX2_X)
    got = call(answer, model, _EX2_X)
    problem = compare(got, expected, name="your attributions", rtol=1e-6)
    if problem is None:
        return None
    x = _EX2_X.clone().requires_grad_(True)
    _ex2_model()(x).sum().backward()
    grad = x.grad.numpy()
    arr = values(got, expected)
    if arr is not None:
        if np.allclose(arr, grad, rtol=1e-6):
            return "that is the gradient alone: multiply it by the input."
        if np.allclose(arr, np.abs(expected.numpy()), rtol=1e-6):
            return "keep the sign: the notebook takes absolute values only when it averages."
    if values(got, expected[0]) is not None:
        return "return one row of attributions per example (shape (n, p)), not an average."
    return problem


_EX3_X = np.random.default_rng(103).standard_normal((40, 3))
_EX3_W = np.array([2.0, 0.0, -1.0])
_EX3_Y = _EX3_X @ _EX3_W + 0.3 * np.random.default_rng(104).standard_normal(40)
_EX3_PERM = np.random.default_rng(105).permutation(40)


def _ex3_predict(X):
    return np.asarray(X) @ _EX3_W


def _solution_3(predict, X, y, j, perm):
    mse = np.mean((y - predict(X)) ** 2)
    X_perm = X.copy()
    X_perm[:, j] = X[perm, j]  # shuffle column j only
    return np.mean((y - predict(X_perm)) ** 2) - mse


@register(
    "10.3",
    title="permutation importance of one feature",
    hint="Copy X, replace column j by X[perm, j], and return MSE(permuted) - MSE(original).",
    solution=_solution_3,
)
def _check_3(answer):
    for j in range(3):
        expected = _solution_3(_ex3_predict, _EX3_X, _EX3_Y, j, _EX3_PERM)
        got = call(answer, _ex3_predict, _EX3_X, _EX3_Y, j, _EX3_PERM)
        value = number(got, f"your importance of feature {j}")
        if not math.isfinite(value):
            return "your importance is NaN or infinite."
        if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        if math.isclose(value, -expected, rel_tol=1e-6, abs_tol=1e-9):
            return "the sign is reversed: importance = MSE after shuffling - MSE before."
        X_all = _EX3_X[_EX3_PERM]
        whole = np.mean((_EX3_Y - _ex3_predict(X_all)) ** 2) - np.mean(
            (_EX3_Y - _ex3_predict(_EX3_X)) ** 2
        )
        if math.isclose(value, whole, rel_tol=1e-6):
            return "you shuffled every column (whole rows): shuffle column j only."
        return f"for feature j={j} you returned {value:.6g}, expected {expected:.6g}."
    return None
