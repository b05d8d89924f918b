"""Exercises of notebook 04_regularization.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("04.N", answer)``; the lesson's code is
in :mod:`course_lib.regularization`.
"""

from __future__ import annotations

import numpy as np
import torch

from . import call, compare, register, values

_rng = np.random.default_rng(404)
_EX_X = _rng.standard_normal((40, 6))
_EX_X = _EX_X - _EX_X.mean(axis=0)
_EX_Y = _EX_X @ np.array([1.0, -2.0, 0.0, 0.5, 0.0, 3.0]) + _rng.standard_normal(40)
_EX_Y = _EX_Y - _EX_Y.mean()
_EX_ALPHA = 7.0


def _solution_1(X, y, alpha):
    # X and y are centred: no intercept needed
    p = X.shape[1]
    return np.linalg.solve(X.T @ X + alpha * np.eye(p), X.T @ y)


@register(
    "04.1",
    title="ridge regression in closed form",
    hint="Set the gradient of ||y - Xw||^2 + alpha ||w||^2 to zero: "
    "(X^T X + alpha I) w = X^T y. Solve it with np.linalg.solve.",
    solution=_solution_1,
)
def _check_1(answer):
    expected = _solution_1(_EX_X, _EX_Y, _EX_ALPHA)
    got = call(answer, _EX_X, _EX_Y, _EX_ALPHA)
    problem = compare(got, expected, name="your coefficients", rtol=1e-6)
    if problem is None:
        return None
    arr = values(got, expected)
    if arr is not None:
        ols = np.linalg.lstsq(_EX_X, _EX_Y, rcond=None)[0]
        if np.allclose(arr, ols, rtol=1e-6):
            return "these are the unpenalised least-squares coefficients: alpha is missing."
        n = len(_EX_Y)
        if np.allclose(arr, _solution_1(_EX_X, _EX_Y, _EX_ALPHA * n), rtol=1e-6) or np.allclose(
            arr, _solution_1(_EX_X, _EX_Y, _EX_ALPHA / n), rtol=1e-6
        ):
            return "alpha is scaled by n: this exercise uses the sum ||y - Xw||^2, as Ridge does."
    return problem


_EX_Z = np.array([-3.0, -1.0, -0.4, 0.0, 0.2, 0.5, 2.5, 0.7])
_EX_T = 0.5


def _solution_2(z, t):
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


@register(
    "04.2",
    title="soft-thresholding, the proximal step of L1",
    hint="Entries with |z| <= t become 0; the others move towards 0 by t, keeping their sign: "
    "np.sign(z) * np.maximum(np.abs(z) - t, 0).",
    solution=_solution_2,
)
def _check_2(answer):
    expected = _solution_2(_EX_Z, _EX_T)
    got = call(answer, _EX_Z, _EX_T)
    problem = compare(got, expected, name="soft_threshold(z, t)")
    if problem is None:
        return None
    arr = values(got, expected)
    if arr is not None:
        if np.allclose(arr, np.where(np.abs(_EX_Z) > _EX_T, _EX_Z, 0.0)):
            return (
                "that is hard-thresholding: the surviving entries must also shrink by t "
                "(e.g. -3 -> -2.5)."
            )
        if np.allclose(arr, np.maximum(_EX_Z - _EX_T, 0.0)):
            return "negative entries must shrink towards 0 too, not be set to 0 (keep the sign)."
    return problem


_EX_W = np.array([0.8, -1.5, 0.02, 3.0])
_EX_G = np.array([0.1, -0.3, 5.0, 0.0])
_EX_M = np.array([0.05, -0.1, 1.0, 0.2])
_EX_V = np.array([0.01, 0.02, 4.0, 0.05])
_EX_STEP = 3  # the step being taken (t before this step was 2)
_EX_KW = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}


def _solution_3(w, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    w = w * (1 - lr * weight_decay)  # decoupled decay: shrink the weights directly
    m = beta1 * m + (1 - beta1) * g  # Adam sees only the data gradient
    v = beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps)


def _torch_adamw_reference() -> np.ndarray:
    """One ``torch.optim.AdamW`` step from the exercise's state (the checker's ground truth)."""
    w = torch.tensor(_EX_W, requires_grad=True)
    opt = torch.optim.AdamW(
        [w],
        lr=_EX_KW["lr"],
        betas=(_EX_KW["beta1"], _EX_KW["beta2"]),
        eps=_EX_KW["eps"],
        weight_decay=_EX_KW["weight_decay"],
    )
    opt.state[w] = {
        "step": torch.tensor(float(_EX_STEP - 1)),
        "exp_avg": torch.tensor(_EX_M),
        "exp_avg_sq": torch.tensor(_EX_V),
    }
    w.grad = torch.tensor(_EX_G)
    opt.step()
    return w.detach().numpy().copy()


@register(
    "04.3",
    title="one AdamW step with decoupled weight decay",
    hint="First w = w * (1 - lr*wd); then the usual Adam step with the data gradient g only: "
    "update m and v, bias-correct with 1 - beta**t, step by lr * m_hat / (sqrt(v_hat) + eps).",
    solution=_solution_3,
)
def _check_3(answer):
    expected = _torch_adamw_reference()
    got = call(answer, _EX_W, _EX_G, _EX_M, _EX_V, _EX_STEP, **_EX_KW)
    problem = compare(got, expected, name="the new weights", rtol=1e-7, atol=1e-10)
    if problem is None:
        return None
    arr = values(got, expected)
    if arr is not None:
        kw = dict(_EX_KW)
        wd = kw.pop("weight_decay")
        g_l2 = _EX_G + wd * _EX_W
        adam_l2 = _solution_3(_EX_W, g_l2, _EX_M, _EX_V, _EX_STEP, weight_decay=0.0, **kw)
        if np.allclose(arr, adam_l2, rtol=1e-7):
            return (
                "that is Adam + L2 (the decay added to the gradient): AdamW shrinks the weights "
                "directly and keeps the decay out of m and v."
            )
        no_wd = _solution_3(_EX_W, _EX_G, _EX_M, _EX_V, _EX_STEP, weight_decay=0.0, **kw)
        if np.allclose(arr, no_wd, rtol=1e-7):
            return "the weight decay is missing: shrink w by the factor (1 - lr * weight_decay)."
        m = kw["beta1"] * _EX_M + (1 - kw["beta1"]) * _EX_G
        v = kw["beta2"] * _EX_V + (1 - kw["beta2"]) * _EX_G**2
        no_bc = _EX_W * (1 - kw["lr"] * wd) - kw["lr"] * m / (np.sqrt(v) + kw["eps"])
        if np.allclose(arr, no_bc, rtol=1e-7):
            return "the bias correction is missing: divide m by 1 - beta1**t and v by 1 - beta2**t."
    return problem
