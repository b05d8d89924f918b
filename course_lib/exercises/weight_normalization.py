"""Exercises of notebook 12_weight_normalization.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("12.N", answer)``; the lesson's code is
in :mod:`course_lib.weight_normalization`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import call, compare, number, pair, register, values

_GEN = torch.Generator().manual_seed(12)
_G = torch.rand(5, generator=_GEN) + 0.5
_V = torch.randn(5, 7, generator=_GEN) * 3
_X = torch.randn(64, 7, generator=_GEN) * 2 + 1
_W_SN = torch.randn(12, 20, generator=_GEN)


def _solution_weight(g, v):
    return g[:, None] * v / v.norm(dim=1, keepdim=True)  # one length g_i per row v_i


@register(
    "12.1",
    title="the weight-normalised weight",
    hint="Divide each ROW of v by its own norm (v.norm(dim=1, keepdim=True)), then multiply "
    "row i by g[i] (g[:, None] broadcasts over the columns).",
    solution=_solution_weight,
)
def _check_weight(answer):
    expected = _solution_weight(_G, _V)
    got = call(answer, _G, _V)
    problem = compare(got, expected, name="your weight", rtol=1e-5)
    arr = values(got, expected)
    if problem is None or arr is None:
        return problem
    got_t = torch.from_numpy(arr)
    if torch.allclose(got_t, (_G[:, None] * _V / _V.norm()).double(), rtol=1e-4):
        return "you divided by the norm of the whole matrix: each row needs its own norm."
    if torch.allclose(got_t, (_G[:, None] * _V / _V.norm(dim=0)).double(), rtol=1e-4):
        return (
            "you normalised the columns (dim=0): normalise each row (dim=1), one per output unit."
        )
    if torch.allclose(got_t, F.normalize(_V, dim=1).double(), rtol=1e-4):
        return "you forgot to multiply by g: without it every row has length 1."
    return problem


def _solution_init(v, x):
    t = x @ (v / v.norm(dim=1, keepdim=True)).T  # pre-activations with g = 1, b = 0
    mean, std = t.mean(0), t.std(0, unbiased=False)
    return 1.0 / std, -mean / std  # g * t + b then has mean 0 and variance 1


@register(
    "12.2",
    title="data-dependent initialisation",
    hint="t = x @ (v / ||v_i||).T, per unit mean m and std s over the batch (unbiased=False); "
    "then g = 1/s and b = -m/s, so that g*t + b has mean 0 and std 1.",
    solution=_solution_init,
)
def _check_init(answer):
    g_exp, b_exp = _solution_init(_V, _X)
    got = pair(call(answer, _V, _X), 2, "a pair (g, b): one length and one bias per output unit")
    problem_g = compare(got[0], g_exp, name="your g", rtol=1e-4)
    if problem_g:
        t = _X @ (_V / _V.norm(dim=1, keepdim=True)).T
        if compare(got[0], 1.0 / t.var(0, unbiased=False), rtol=1e-3) is None:
            return "g should divide by the standard deviation, not by the variance."
        if compare(got[0], 1.0 / t.std(0), rtol=1e-4) is None:
            return (
                "you used the unbiased (n-1) standard deviation: use the batch's own, "
                "t.std(0, unbiased=False), as batch normalisation does."
            )
        return problem_g
    problem_b = compare(got[1], b_exp, name="your b", rtol=1e-4, atol=1e-6)
    if problem_b and compare(got[1], -b_exp, rtol=1e-4, atol=1e-6) is None:
        return "your bias has the wrong sign: it must cancel the mean, b = -mean/std."
    return problem_b


def _solution_power(w, iterations):
    u = torch.ones(w.shape[0], dtype=w.dtype) / math.sqrt(w.shape[0])
    for _ in range(iterations):
        v = w.T @ u
        v = v / v.norm()
        u = w @ v
        u = u / u.norm()
    return float(u @ w @ v)  # the Rayleigh quotient: sigma_max after convergence


@register(
    "12.3",
    title="power iteration for the largest singular value",
    hint="Start from any unit vector u; repeat v = W^T u / ||W^T u||, u = W v / ||W v||; "
    "return u . (W v). After enough iterations this is the largest singular value.",
    solution=_solution_power,
)
def _check_power(answer):
    expected = float(torch.linalg.matrix_norm(_W_SN.double(), ord=2))
    value = number(call(answer, _W_SN, 200), "your estimate of the largest singular value")
    if np.isclose(value, expected, rtol=1e-3):
        return None
    if np.isclose(value, float(_W_SN.norm()), rtol=1e-3):
        return "you returned the Frobenius norm of W, not its largest singular value."
    if np.isclose(value, float(_W_SN.norm(dim=1).max()), rtol=1e-3):
        return "you returned the largest row norm: that is only a lower bound of sigma_max."
    if np.isclose(value, expected**2, rtol=1e-3):
        return "you returned sigma_max squared (an eigenvalue of W^T W): take its square root."
    return f"your estimate is {value:.4g}, the largest singular value is {expected:.4g}."
