"""Notebook 04 · Regularisation: L2 and L1 penalties on the weights.

A penalised objective adds a cost on the weights to the data loss,

    J(w) = L(w) + alpha * R(w),   R(w) = ||w||_2^2 (ridge, L2)  or  ||w||_1 (lasso, L1).

This module holds everything the notebook computes:

* the penalties from scratch: ridge in closed form (and its whole path from one
  SVD), lasso and elastic net by proximal gradient descent (gradient step, then
  soft-thresholding), and plain subgradient descent for contrast;
* regularisation paths on the diabetes data and the slider figure over them;
* the over-fitting experiment (degree-3 polynomial features of the diabetes
  data, ridge over a grid of alphas) and its slider figure;
* PyTorch: ``weight_decay`` in SGD against an explicit L2 penalty, and Adam + L2
  against AdamW's decoupled weight decay (Loshchilov and Hutter 2019), with
  from-scratch versions of both update rules;
* the notebook's exercises (04.1 to 04.3).

Conventions follow scikit-learn, whose estimators the notebook checks against:

* ``Ridge``:      ||y - Xw - b||^2 + alpha ||w||_2^2                       (sum, not mean)
* ``Lasso``:      1/(2n) ||y - Xw - b||^2 + alpha ||w||_1
* ``ElasticNet``: 1/(2n) ||y - Xw - b||^2 + alpha r ||w||_1 + alpha (1 - r)/2 ||w||_2^2

The intercept ``b`` is never penalised: every solver centres ``X`` and ``y``,
solves for ``w`` and recovers ``b = mean(y) - mean(X) @ w``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import viz
from .data import load_sklearn, standardize_columns

__all__ = [
    "AdamState",
    "adam_step",
    "adam_vs_adamw_mlp",
    "coefficients_figure",
    "dead_weight_figure",
    "effective_decay_figure",
    "dead_weight_trajectories",
    "diabetes_split",
    "lasso_alpha_max",
    "make_sparse_regression",
    "overfit_curve",
    "overfit_figure",
    "path_figure",
    "polynomial_design",
    "proximal_gradient",
    "regularization_paths",
    "ridge_closed_form",
    "ridge_path_svd",
    "run_adam_scratch",
    "run_adam_torch",
    "sgd_weight_decay_vs_penalty",
    "soft_threshold",
    "subgradient_descent",
]

# --------------------------------------------------------------------------- data


def make_sparse_regression(
    n: int = 200,
    n_features: int = 20,
    true_coef=(3.0, -2.0, 1.5, 1.0, -1.0),
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Synthetic regression with known irrelevant features.

    ``X`` is ``(n, n_features)`` standard normal; ``y = X @ coef + noise * eps``
    where ``coef`` holds ``true_coef`` for the first features and zeros for the
    rest (the irrelevant features). Returns ``(X, y, coef)``.
    """
    true_coef = np.asarray(true_coef, dtype=np.float64)
    if len(true_coef) > n_features:
        raise ValueError(f"{len(true_coef)} true coefficients do not fit in {n_features} features")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_features))
    coef = np.zeros(n_features)
    coef[: len(true_coef)] = true_coef
    y = X @ coef + noise * rng.standard_normal(n)
    return X, y, coef


def diabetes_split(train_size: int = 300, seed: int = 0, standardized: bool = True):
    """The diabetes data (442 patients, 10 features) split into train and test.

    Returns ``(X_train, X_test, y_train, y_test, feature_names)``; with
    ``standardized=True`` the features are scaled with the training statistics.
    """
    from sklearn.model_selection import train_test_split

    data = load_sklearn("diabetes", scaled=False)
    X_train, X_test, y_train, y_test = train_test_split(
        data.x, data.y, train_size=train_size, random_state=seed
    )
    if standardized:
        X_train, X_test = standardize_columns(X_train, X_test)
    return X_train, X_test, y_train, y_test, list(data.feature_names)


# --------------------------------------------------------------------------- from scratch


def _centre(X: np.ndarray, y: np.ndarray):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x_mean, y_mean = X.mean(axis=0), y.mean()
    return X - x_mean, y - y_mean, x_mean, y_mean


def ridge_closed_form(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge regression from scratch: ``w = (Xc^T Xc + alpha I)^-1 Xc^T yc``.

    ``Xc, yc`` are the centred data (the intercept is not penalised). Minimises
    scikit-learn's ``Ridge`` objective ``||y - Xw - b||^2 + alpha ||w||^2``.
    Returns ``(coef, intercept)``.
    """
    Xc, yc, x_mean, y_mean = _centre(X, y)
    p = Xc.shape[1]
    coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(p), Xc.T @ yc)
    return coef, float(y_mean - x_mean @ coef)


def ridge_path_svd(X: np.ndarray, y: np.ndarray, alphas) -> tuple[np.ndarray, np.ndarray]:
    """The whole ridge path from one SVD ``Xc = U S V^T``.

    ``w(alpha) = V diag(s / (s^2 + alpha)) U^T yc``: each singular direction is
    shrunk by ``s^2 / (s^2 + alpha)``, the directions with small singular
    values (little signal, much variance) the most. Returns ``(coefs,
    intercepts)`` with ``coefs`` of shape ``(len(alphas), n_features)``.
    """
    Xc, yc, x_mean, y_mean = _centre(X, y)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    uty = U.T @ yc
    alphas = np.asarray(alphas, dtype=np.float64)
    shrink = s[None, :] / (s[None, :] ** 2 + alphas[:, None])  # (n_alphas, rank)
    coefs = (shrink * uty[None, :]) @ Vt
    return coefs, y_mean - coefs @ x_mean


def soft_threshold(z, t: float):
    """The proximal operator of ``t * |w|``: ``sign(z) * max(|z| - t, 0)``.

    Every entry with ``|z| <= t`` becomes exactly 0: this is where the exact
    zeros of the lasso come from.
    """
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def lasso_alpha_max(X: np.ndarray, y: np.ndarray) -> float:
    """The smallest lasso alpha at which every coefficient is 0: ``max_j |Xc_j^T yc| / n``.

    At ``w = 0`` the gradient of the data term is ``-Xc^T yc / n``; zero is the
    minimum as long as no component of it exceeds alpha (the subgradient
    condition of the L1 norm).
    """
    Xc, yc, _, _ = _centre(X, y)
    return float(np.abs(Xc.T @ yc).max() / len(yc))


def proximal_gradient(
    X: np.ndarray,
    y: np.ndarray,
    alpha: float,
    l1_ratio: float = 1.0,
    max_steps: int = 100_000,
    tol: float = 1e-12,
) -> tuple[np.ndarray, float, int]:
    """Lasso (``l1_ratio=1``) and elastic net from scratch by proximal gradient (ISTA).

    Minimises scikit-learn's ``ElasticNet`` objective
    ``1/(2n)||y - Xw - b||^2 + alpha*r*||w||_1 + alpha*(1-r)/2*||w||^2`` with
    ``r = l1_ratio``. Each step is a gradient step on the smooth part (data
    term and L2 term) with step size ``1/L``, followed by soft-thresholding
    (the L1 term). Stops when no coefficient moves by more than ``tol``.
    Returns ``(coef, intercept, steps)``.
    """
    if not 0.0 <= l1_ratio <= 1.0:
        raise ValueError(f"l1_ratio must lie in [0, 1], got {l1_ratio}")
    Xc, yc, x_mean, y_mean = _centre(X, y)
    n, p = Xc.shape
    gram, xty = Xc.T @ Xc / n, Xc.T @ yc / n
    l1, l2 = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
    step = 1.0 / (np.linalg.eigvalsh(gram)[-1] + l2)  # 1 / Lipschitz constant
    w = np.zeros(p)
    steps = 0
    while steps < max_steps:
        steps += 1
        grad = gram @ w - xty + l2 * w  # gradient of the smooth part
        w_new = soft_threshold(w - step * grad, step * l1)  # proximal step of the L1 part
        converged = np.max(np.abs(w_new - w)) <= tol
        w = w_new
        if converged:
            break
    return w, float(y_mean - x_mean @ w), steps


def subgradient_descent(
    X: np.ndarray, y: np.ndarray, alpha: float, steps: int = 5000, lr: float | None = None
) -> np.ndarray:
    """Plain (sub)gradient descent on the lasso objective, for contrast.

    ``w <- w - lr * (grad of the data term + alpha * sign(w))``. The L1 term
    pushes every weight towards 0 by ``lr * alpha`` per step, but overshoots:
    the irrelevant weights end up jittering around 0, small but (almost surely)
    never exactly 0. Returns the coefficients (intercept handled by centring).
    """
    Xc, yc, _, _ = _centre(X, y)
    n = len(yc)
    gram, xty = Xc.T @ Xc / n, Xc.T @ yc / n
    if lr is None:
        lr = 0.5 / np.linalg.eigvalsh(gram)[-1]
    w = np.zeros(Xc.shape[1])
    for _ in range(steps):
        w = w - lr * (gram @ w - xty + alpha * np.sign(w))
    return w


def coefficients_figure(true_coef, estimates: dict, title: str = "") -> Figure:
    """Bars of the true coefficients next to each estimate (``{"name": coef}``).

    Exact zeros are marked with a black dot on the axis, so L1's zeros can be
    told apart from merely small L2 weights.
    """
    true_coef = np.asarray(true_coef, dtype=np.float64)
    p = len(true_coef)
    k = len(estimates) + 1
    width = 0.8 / k
    fig, axes = viz.figure(1, 1, size=(11.0, 3.8))
    ax = axes[0, 0]
    idx = np.arange(p)
    ax.bar(idx - 0.4 + width / 2, true_coef, width, color="k", alpha=0.35, label="true")
    for i, (name, coef) in enumerate(estimates.items(), start=1):
        coef = np.asarray(coef, dtype=np.float64)
        x = idx - 0.4 + width * (i + 0.5)
        zeros = int(np.sum(coef == 0))
        ax.bar(x, coef, width, label=f"{name} ({zeros} exact zeros)")
        ax.plot(x[coef == 0], np.zeros(zeros), "k.", ms=4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(idx)
    ax.set_xlabel("feature index (0-4 relevant, the rest irrelevant)")
    ax.set_ylabel("coefficient")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- paths


def regularization_paths(X: np.ndarray, y: np.ndarray, alphas, l1_ratio: float = 0.5) -> dict:
    """Coefficients of ridge, lasso and elastic net over ``alphas`` (scikit-learn).

    Ridge comes from :func:`ridge_path_svd`, lasso and elastic net from
    ``sklearn.linear_model.lasso_path`` / ``enet_path``. Returns a dict with
    ``alphas`` and one ``(len(alphas), n_features)`` array per penalty.
    """
    from sklearn.linear_model import enet_path, lasso_path

    alphas = np.sort(np.asarray(alphas, dtype=np.float64))
    Xc, yc, _, _ = _centre(X, y)
    ridge, _ = ridge_path_svd(X, y, alphas)
    # lasso_path/enet_path take centred data and return alphas in decreasing order
    _, lasso, _ = lasso_path(Xc, yc, alphas=alphas[::-1], tol=1e-10, max_iter=100_000)
    _, enet, _ = enet_path(
        Xc, yc, l1_ratio=l1_ratio, alphas=alphas[::-1], tol=1e-10, max_iter=100_000
    )
    return {
        "alphas": alphas,
        "ridge": ridge,
        "lasso": lasso.T[::-1],
        "elasticnet": enet.T[::-1],
        "l1_ratio": l1_ratio,
    }


_PATH_ALPHAS = np.logspace(-3, 4, 71)
_PENALTIES = ("ridge", "lasso", "elasticnet")


@lru_cache(maxsize=1)
def _path_data() -> dict:
    X_train, X_test, y_train, y_test, names = diabetes_split(train_size=300, seed=0)
    paths = regularization_paths(X_train, y_train, _PATH_ALPHAS)
    return {
        "paths": paths,
        "names": names,
        "split": (X_train, X_test, y_train, y_test),
    }


def _fit_penalty(penalty: str, alpha: float, X: np.ndarray, y: np.ndarray, l1_ratio: float):
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    if penalty == "ridge":
        model = Ridge(alpha=alpha)
    elif penalty == "lasso":
        model = Lasso(alpha=alpha, tol=1e-8, max_iter=100_000)
    elif penalty == "elasticnet":
        model = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-8, max_iter=100_000)
    else:
        raise ValueError(f"penalty must be one of {_PENALTIES}, got {penalty!r}")
    return model.fit(X, y)


def path_figure(alpha: float = 1.0, penalty: str = "lasso") -> Figure:
    """Slider figure: the regularisation path of ``penalty`` on the diabetes data.

    Left, every coefficient against alpha (log scale) with the chosen alpha
    marked; right, the coefficients at that alpha. The title gives the number
    of non-zero coefficients and the test R^2. Penalties: ``"ridge"``,
    ``"lasso"``, ``"elasticnet"`` (``l1_ratio=0.5``), in scikit-learn's alpha
    convention (ridge's alpha multiplies a *sum* of squared errors, lasso's a
    *mean*, so the same number means a much weaker ridge penalty).
    """
    if penalty not in _PENALTIES:
        raise ValueError(f"penalty must be one of {_PENALTIES}, got {penalty!r}")
    data = _path_data()
    paths, names = data["paths"], data["names"]
    X_train, X_test, y_train, y_test = data["split"]
    model = _fit_penalty(penalty, alpha, X_train, y_train, paths["l1_ratio"])
    coef = model.coef_
    r2 = model.score(X_test, y_test)
    nonzero = int(np.sum(coef != 0))
    colors = [f"C{j}" for j in range(len(names))]
    fig, axes = viz.figure(1, 2, size=(11.5, 4.0))
    ax = axes[0, 0]
    for j, name in enumerate(names):
        ax.semilogx(paths["alphas"], paths[penalty][:, j], lw=1.5, color=colors[j], label=name)
    ax.axvline(alpha, color="k", ls="--", lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("alpha (log scale)")
    ax.set_ylabel("coefficient (standardised features)")
    ax.set_title(f"{penalty} path", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax = axes[0, 1]
    ax.barh(
        names,
        coef,
        color=["lightgrey" if c == 0 else col for c, col in zip(coef, colors, strict=True)],
    )
    for j, c in enumerate(coef):
        if c == 0:
            ax.text(0, j, " exactly 0", va="center", fontsize=7, color="grey")
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"coefficient at alpha={alpha:.3g}")
    ax.invert_yaxis()
    fig.suptitle(
        f"{penalty}, alpha={alpha:.3g}: {nonzero} of {len(coef)} coefficients non-zero, "
        f"test R\u00b2={r2:.3f}"
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- over-fitting


def polynomial_design(X_train: np.ndarray, X_test: np.ndarray, degree: int = 3):
    """All monomials of the standardised features up to ``degree``, standardised again.

    Scaling uses training statistics only. With the 10 diabetes features and
    degree 3 this gives 285 columns, more than the training examples, so an
    unpenalised fit interpolates the training data.
    """
    from sklearn.preprocessing import PolynomialFeatures

    X_train, X_test = standardize_columns(X_train, X_test)
    poly = PolynomialFeatures(degree, include_bias=False).fit(X_train)
    return standardize_columns(poly.transform(X_train), poly.transform(X_test))


def overfit_curve(
    alphas=None, degree: int = 3, train_size: int = 150, splits: int = 5, seed: int = 0
) -> dict:
    """Train and test MSE of ridge on polynomial diabetes features over ``alphas``.

    Averaged over ``splits`` random train/test splits (``train_size`` patients
    for training, the rest for testing). Uses :func:`ridge_path_svd`, so the
    whole grid costs one SVD per split. Returns ``alphas``, ``train_mse``,
    ``test_mse`` (means over splits), ``gap = test - train`` and
    ``n_features``.
    """
    from sklearn.model_selection import train_test_split

    alphas = np.logspace(-4, 5, 46) if alphas is None else np.asarray(alphas, dtype=np.float64)
    data = load_sklearn("diabetes", scaled=False)
    train_mse, test_mse = [], []
    for s in range(splits):
        X_tr, X_te, y_tr, y_te = train_test_split(
            data.x, data.y, train_size=train_size, random_state=seed + s
        )
        A, B = polynomial_design(X_tr, X_te, degree)
        coefs, intercepts = ridge_path_svd(A, y_tr, alphas)
        pred_tr = A @ coefs.T + intercepts
        pred_te = B @ coefs.T + intercepts
        train_mse.append(((pred_tr - y_tr[:, None]) ** 2).mean(axis=0))
        test_mse.append(((pred_te - y_te[:, None]) ** 2).mean(axis=0))
    train_mse, test_mse = np.mean(train_mse, axis=0), np.mean(test_mse, axis=0)
    return {
        "alphas": alphas,
        "train_mse": train_mse,
        "test_mse": test_mse,
        "gap": test_mse - train_mse,
        "n_features": A.shape[1],
        "train_size": train_size,
    }


@lru_cache(maxsize=1)
def _overfit_cached() -> dict:
    return overfit_curve(np.logspace(-4, 5, 91), splits=5)


def overfit_figure(alpha: float = 1.0) -> Figure:
    """Slider figure: train and test MSE of ridge on degree-3 diabetes features vs alpha.

    The chosen alpha is marked; the title gives train MSE, test MSE and the gap
    there (mean of 5 random splits, 150 training patients, 285 features). The
    curve is computed once and cached; a redraw only interpolates it.
    """
    curve = _overfit_cached()
    log_a = np.log10(curve["alphas"])
    la = math.log10(alpha)
    train = float(10 ** np.interp(la, log_a, np.log10(np.maximum(curve["train_mse"], 1e-12))))
    test = float(10 ** np.interp(la, log_a, np.log10(curve["test_mse"])))
    fig, axes = viz.figure(1, 1, size=(7.5, 4.2))
    ax = axes[0, 0]
    best = int(np.argmin(curve["test_mse"]))
    ax.loglog(curve["alphas"], curve["train_mse"], label="train MSE")
    ax.loglog(curve["alphas"], curve["test_mse"], label="test MSE")
    ax.plot(curve["alphas"][best], curve["test_mse"][best], "*", color="tab:orange", ms=12,
            label=f"lowest test MSE (alpha={curve['alphas'][best]:.3g})")  # fmt: skip
    ax.axvline(alpha, color="k", ls="--", lw=1)
    ax.plot([alpha, alpha], [train, test], "o", color="k", ms=4)
    ax.set_ylim(10, 3e5)
    ax.set_xlabel("ridge alpha (log scale)")
    ax.set_ylabel("mean squared error (log scale)")
    ax.legend()
    ax.set_title(
        f"alpha={alpha:.3g}: train MSE {train:,.0f}, test MSE {test:,.0f}, gap {test - train:,.0f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- PyTorch: SGD


def _small_mlp(n_in: int, hidden: int, seed: int, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, 1)).to(dtype)


def sgd_weight_decay_vs_penalty(
    X, y, weight_decay: float = 0.1, lr: float = 0.05, momentum: float = 0.0, steps: int = 50
) -> dict:
    """Train one MLP twice: ``SGD(weight_decay=wd)`` vs SGD on ``loss + wd/2 * ||w||^2``.

    Both start from the same weights and see the same full batch. Because
    ``d/dw (wd/2 ||w||^2) = wd * w``, which is exactly what ``weight_decay``
    adds to the gradient, the two runs must end with the same weights (float64,
    so to about 1e-15). Returns the final parameter lists and the largest
    absolute difference.
    """
    X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64).reshape(-1, 1)
    a = _small_mlp(X.shape[1], 16, seed=0)
    b = _small_mlp(X.shape[1], 16, seed=0)
    opt_a = torch.optim.SGD(a.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    opt_b = torch.optim.SGD(b.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.MSELoss()
    for _ in range(steps):
        opt_a.zero_grad()
        loss_fn(a(X), y).backward()
        opt_a.step()
        opt_b.zero_grad()
        penalty = sum((p**2).sum() for p in b.parameters())
        (loss_fn(b(X), y) + weight_decay / 2 * penalty).backward()
        opt_b.step()
    pa = [p.detach().clone() for p in a.parameters()]
    pb = [p.detach().clone() for p in b.parameters()]
    moved = max(
        (p - q).abs().max().item()
        for p, q in zip(pa, _small_mlp(X.shape[1], 16, seed=0).parameters(), strict=True)
    )
    max_diff = max((p - q).abs().max().item() for p, q in zip(pa, pb, strict=True))
    return {"weight_decay": pa, "penalty": pb, "max_diff": max_diff, "moved": moved}


# --------------------------------------------------------------------------- PyTorch: Adam


class AdamState:
    """Moments of a from-scratch Adam: first moment ``m``, second ``v``, step count ``t``."""

    def __init__(self, w: np.ndarray):
        self.m = np.zeros_like(w, dtype=np.float64)
        self.v = np.zeros_like(w, dtype=np.float64)
        self.t = 0


def adam_step(
    w: np.ndarray,
    grad: np.ndarray,
    state: AdamState,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    decoupled: bool = False,
) -> np.ndarray:
    """One Adam step from scratch; returns the new weights (``state`` is updated in place).

    * ``decoupled=False`` (Adam + L2, ``torch.optim.Adam(weight_decay=wd)``):
      the decay is added to the gradient, ``g = grad + wd * w``, and then goes
      through Adam's normalisation ``m_hat / (sqrt(v_hat) + eps)`` like the rest.
    * ``decoupled=True`` (AdamW, Loshchilov and Hutter 2019): the weights are
      shrunk directly, ``w <- w * (1 - lr * wd)``, and Adam sees only the data
      gradient.
    """
    beta1, beta2 = betas
    w = np.asarray(w, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    if weight_decay and decoupled:
        w = w * (1.0 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * w
    state.t += 1
    state.m = beta1 * state.m + (1 - beta1) * g
    state.v = beta2 * state.v + (1 - beta2) * g**2
    m_hat = state.m / (1 - beta1**state.t)
    v_hat = state.v / (1 - beta2**state.t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps)


def _quadratic_problem(seed: int = 0, n: int = 64, p: int = 5):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, p)) * np.array([0.1, 0.5, 1.0, 3.0, 10.0])[:p]
    b = rng.standard_normal(n)
    w0 = rng.standard_normal(p)

    def grad(w):  # gradient of 1/(2n) ||A w - b||^2
        return A.T @ (A @ w - b) / n

    return A, b, w0, grad


def run_adam_scratch(
    steps: int = 100, lr: float = 0.01, weight_decay: float = 0.1, decoupled: bool = False
) -> np.ndarray:
    """:func:`adam_step` for ``steps`` steps on a fixed least-squares problem; the final weights.

    The problem's features have scales 0.1 to 10, so the gradients of the
    weights differ by orders of magnitude (where Adam + L2 and AdamW part ways).
    """
    _, _, w, grad = _quadratic_problem()
    state = AdamState(w)
    for _ in range(steps):
        w = adam_step(w, grad(w), state, lr=lr, weight_decay=weight_decay, decoupled=decoupled)
    return w


def run_adam_torch(
    steps: int = 100, lr: float = 0.01, weight_decay: float = 0.1, decoupled: bool = False
) -> np.ndarray:
    """The same run as :func:`run_adam_scratch` with ``torch.optim.Adam`` or ``AdamW``."""
    A, b, w0, _ = _quadratic_problem()
    A_t, b_t = torch.from_numpy(A), torch.from_numpy(b)
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([w], lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((A_t @ w - b_t) ** 2).mean()).backward()
        opt.step()
    return w.detach().numpy().copy()


def dead_weight_trajectories(
    lambdas=(1e-3, 1e-2, 1e-1), steps: int = 200, lr: float = 0.01, w0: float = 1.0
) -> dict:
    """How a weight with *no* data gradient decays under Adam + L2 and under AdamW.

    Its only gradient is the penalty's, ``wd * w``. Adam divides that by its
    running RMS, ``|wd * w|``, so ``wd`` cancels: the weight walks towards 0 by
    about ``lr`` per step whatever ``wd`` is. AdamW shrinks it by ``(1 - lr*wd)``
    per step, ``w_T = w0 (1 - lr wd)^T``, proportionally to ``wd``. Runs
    ``torch.optim.Adam``/``AdamW``; returns per-lambda trajectories (length
    ``steps + 1``) for both.
    """
    out = {"lambdas": list(lambdas), "steps": steps, "lr": lr, "adam_l2": {}, "adamw": {}}
    for lam in lambdas:
        for key, cls in (("adam_l2", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
            w = torch.tensor([w0], dtype=torch.float64, requires_grad=True)
            opt = cls([w], lr=lr, weight_decay=lam)
            traj = [w0]
            for _ in range(steps):
                opt.zero_grad()
                w.grad = torch.zeros_like(w)  # the data loss does not depend on this weight
                opt.step()
                traj.append(w.item())
            out[key][lam] = np.array(traj)
    return out


def dead_weight_figure(result: dict) -> Figure:
    """Trajectories of :func:`dead_weight_trajectories`: Adam + L2 (left) vs AdamW (right)."""
    fig, axes = viz.figure(1, 2, size=(11.0, 3.8), sharey=True)
    steps = np.arange(result["steps"] + 1)
    for ax, key, label in (
        (axes[0, 0], "adam_l2", "Adam + L2 (torch.optim.Adam, weight_decay)"),
        (axes[0, 1], "adamw", "AdamW (decoupled)"),
    ):
        for lam, styles in zip(result["lambdas"], ("-", "--", ":"), strict=False):
            ax.plot(steps, result[key][lam], styles, lw=2, label=f"weight_decay = {lam:g}")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("weight with no data gradient")
    fig.suptitle(f"A weight the loss ignores, lr = {result['lr']:g}")
    fig.tight_layout()
    return fig


def effective_decay_figure(result: dict) -> Figure:
    """Histogram (log scale) of the per-weight decay factor per step in :func:`adam_vs_adamw_mlp`."""
    fig, axes = viz.figure(1, 1, size=(7.5, 3.6))
    ax = axes[0, 0]
    decay = result["adam_l2"]["effective_decay"]
    bins = np.logspace(np.log10(decay.min()) - 0.2, np.log10(decay.max()) + 0.2, 50)
    ax.hist(decay, bins=bins, color="tab:blue", alpha=0.8, label="Adam + L2: lr·wd / (√v̂ + ε)")
    ax.axvline(result["adamw"]["effective_decay"][0], color="tab:red", lw=2, label="AdamW: lr·wd")
    ax.set_xscale("log")
    ax.set_xlabel("decay per step of each first-layer weight (log scale)")
    ax.set_ylabel("number of weights")
    spread = np.percentile(decay, 95) / np.percentile(decay, 5)
    ax.set_title(f"Adam + L2: 95th/5th percentile ratio {spread:.1f}; AdamW: one value")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def adam_vs_adamw_mlp(
    weight_decay: float = 0.1,
    lr: float = 3e-3,
    steps: int = 600,
    hidden: int = 256,
    train_size: int = 150,
    seed: int = 0,
) -> dict:
    """A wide MLP on the diabetes data trained with Adam + L2 and with AdamW (same wd, lr, init).

    Full-batch training on ``train_size`` patients (standardised features,
    target scaled to unit variance). Returns, for ``"adam_l2"`` and
    ``"adamw"``: train/test MSE (in the scaled target units), the final
    weights, and the *effective* per-step decay factor of each first-layer
    weight: ``lr * wd / (sqrt(v_hat) + eps)`` for Adam + L2 (it goes through
    Adam's normalisation), the constant ``lr * wd`` for AdamW.
    """
    X_tr, X_te, y_tr, y_te, _ = diabetes_split(train_size=train_size, seed=seed)
    mu, sd = y_tr.mean(), y_tr.std()
    X_tr, X_te = torch.from_numpy(X_tr), torch.from_numpy(X_te)
    y_tr = torch.from_numpy((y_tr - mu) / sd).reshape(-1, 1)
    y_te = torch.from_numpy((y_te - mu) / sd).reshape(-1, 1)
    results = {}
    loss_fn = nn.MSELoss()
    for key, cls in (("adam_l2", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(X_tr.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        ).to(torch.float64)  # fmt: skip
        opt = cls(model.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(model(X_tr), y_tr).backward()
            opt.step()
        first = model[0].weight
        state = opt.state[first]
        t = int(state["step"])
        v_hat = state["exp_avg_sq"] / (1 - opt.defaults["betas"][1] ** t)
        if key == "adam_l2":
            decay = lr * weight_decay / (v_hat.sqrt() + opt.defaults["eps"])
        else:
            decay = torch.full_like(first, lr * weight_decay)
        with torch.no_grad():
            results[key] = {
                "train_mse": loss_fn(model(X_tr), y_tr).item(),
                "test_mse": loss_fn(model(X_te), y_te).item(),
                "weights": torch.cat([p.detach().ravel() for p in model.parameters()]).numpy(),
                "effective_decay": decay.detach().ravel().numpy(),
            }
    return results
