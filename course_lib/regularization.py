"""Notebook 04 · Regularisation: L2 and L1 penalties on the weights.

A penalised objective adds a price on the weights to the data loss,
``J(w) = L(w) + alpha * R(w)`` with ``R = ||w||_2^2`` (ridge, L2) or ``||w||_1``
(lasso, L1). In the notebook's order: ridge in closed form and from one SVD, lasso
and elastic net by proximal gradient descent (subgradient descent for contrast),
the constraint (geometric) and prior (MAP) views, regularisation paths, over-fitting
of polynomial features with the penalty chosen on the training data, and PyTorch's
``weight_decay`` for SGD and Adam against AdamW's decoupled decay.

Conventions follow scikit-learn, whose estimators the notebook checks against:
``Ridge`` minimises ``||y - Xw - b||^2 + alpha ||w||_2^2`` (a sum), ``Lasso``
``1/(2n) ||y - Xw - b||^2 + alpha ||w||_1`` (a mean) and ``ElasticNet`` adds
``alpha (1 - r)/2 ||w||_2^2`` to ``alpha r ||w||_1``. The intercept ``b`` is never
penalised: every solver centres ``X`` and ``y`` and recovers ``b = mean(y) - mean(X) @ w``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, models, training, viz
from .data import load_sklearn, standardize_columns

__all__ = ["AdamState", "adam_step", "adam_vs_adamw_mlp", "ball_figure", "coefficients_figure", "dead_weight_figure", "dead_weight_trajectories", "diabetes_split", "effective_decay_figure", "l1_ball_minimiser", "l2_ball_minimiser", "lasso_alpha_max", "make_sparse_regression", "map_weights", "overfit_curve", "overfit_figure", "path_figure", "polynomial_design", "proximal_gradient", "regularization_paths", "ridge_closed_form", "ridge_path_svd", "run_adam", "soft_threshold", "subgradient_descent", "weight_decay_vs_penalty"]  # fmt: skip

# --------------------------------------------------------------------------- data


def make_sparse_regression(
    n: int = 200, n_features: int = 20, true_coef=(3.0, -2.0, 1.5, 1.0, -1.0),
    noise: float = 1.0, correlation: float = 0.0, seed: int | None = None,
):  # fmt: skip
    """``(X, y, coef)``: ``X`` standard normal, each column after the first correlated with
    it by ``correlation``; ``y = X @ coef + noise * eps`` with ``true_coef`` first and zeros
    for the rest (the irrelevant features). Drawn with ``seed`` (default ``COURSE_SEED``)."""
    true_coef = np.asarray(true_coef, dtype=np.float64)
    if len(true_coef) > n_features:
        raise ValueError(f"{len(true_coef)} true coefficients do not fit in {n_features} features")
    rng = np.random.default_rng(config.resolve_seed(seed))
    X = rng.standard_normal((n, n_features))
    X[:, 1:] = correlation * X[:, :1] + math.sqrt(1 - correlation**2) * X[:, 1:]
    coef = np.zeros(n_features)
    coef[: len(true_coef)] = true_coef
    y = X @ coef + noise * rng.standard_normal(n)
    return X, y, coef


def diabetes_split(train_size: int = 300, seed: int | None = None, standardized: bool = True):
    """The diabetes data (442 patients, 10 features) split with ``seed`` (default
    ``COURSE_SEED``): ``(X_train, X_test, y_train, y_test, feature_names)``, the features
    scaled with the training statistics when ``standardized``."""
    from sklearn.model_selection import train_test_split

    data = load_sklearn("diabetes", scaled=False)
    X_train, X_test, y_train, y_test = train_test_split(
        data.x, data.y, train_size=train_size, random_state=config.resolve_seed(seed)
    )
    if standardized:
        X_train, X_test = standardize_columns(X_train, X_test)
    return X_train, X_test, y_train, y_test, list(data.feature_names)


# --------------------------------------------------------------------------- from scratch


def _centre(X, y):
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return X - X.mean(axis=0), y - y.mean(), X.mean(axis=0), y.mean()


def _data_term(X: np.ndarray, y: np.ndarray):
    """``(G, c)`` of the centred data term ``1/(2n)||yc - Xc w||^2 = w^T G w / 2 - c^T w + const``."""
    Xc, yc, _, _ = _centre(X, y)
    return Xc.T @ Xc / len(yc), Xc.T @ yc / len(yc)


def ridge_closed_form(X: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge from scratch, ``w = (Xc^T Xc + alpha I)^-1 Xc^T yc`` on centred data (the
    intercept is not penalised): ``Ridge``'s objective. Returns ``(coef, intercept)``."""
    Xc, yc, x_mean, y_mean = _centre(X, y)
    coef = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(Xc.shape[1]), Xc.T @ yc)
    return coef, float(y_mean - x_mean @ coef)


def ridge_path_svd(X: np.ndarray, y: np.ndarray, alphas) -> tuple[np.ndarray, np.ndarray]:
    """The whole ridge path from one SVD ``Xc = U S V^T``: ``w(alpha) = V diag(s / (s^2 +
    alpha)) U^T yc``, each singular direction shrunk by ``s^2 / (s^2 + alpha)``.
    Returns ``(coefs, intercepts)``, ``coefs`` of shape ``(len(alphas), n_features)``."""
    Xc, yc, x_mean, y_mean = _centre(X, y)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    alphas = np.asarray(alphas, dtype=np.float64)
    shrink = s[None, :] / (s[None, :] ** 2 + alphas[:, None])  # (n_alphas, rank)
    coefs = (shrink * (U.T @ yc)[None, :]) @ Vt
    return coefs, y_mean - coefs @ x_mean


def soft_threshold(z, t: float):
    """The proximal operator of ``t * |w|``, ``sign(z) * max(|z| - t, 0)``: every entry
    with ``|z| <= t`` becomes exactly 0."""
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def lasso_alpha_max(X: np.ndarray, y: np.ndarray) -> float:
    """The smallest lasso alpha with every coefficient 0, ``max_j |Xc_j^T yc| / n``: at
    ``w = 0`` no component of the data gradient may exceed alpha (the L1 kink)."""
    Xc, yc, _, _ = _centre(X, y)
    return float(np.abs(Xc.T @ yc).max() / len(yc))


def proximal_gradient(
    X, y, alpha: float, l1_ratio: float = 1.0, max_steps: int = 100_000, tol: float = 1e-12
) -> tuple[np.ndarray, float, int]:
    """Lasso (``l1_ratio=1``) and elastic net by proximal gradient (ISTA), ``ElasticNet``'s
    objective: a gradient step of size ``1/L`` on the smooth part (data and L2 terms),
    then soft-thresholding (the L1 term), until no coefficient moves by more than
    ``tol``. Returns ``(coef, intercept, steps)``."""
    if not 0.0 <= l1_ratio <= 1.0:
        raise ValueError(f"l1_ratio must lie in [0, 1], got {l1_ratio}")
    _, _, x_mean, y_mean = _centre(X, y)
    gram, xty = _data_term(X, y)
    l1, l2 = alpha * l1_ratio, alpha * (1.0 - l1_ratio)
    step = 1.0 / (np.linalg.eigvalsh(gram)[-1] + l2)  # 1 / Lipschitz constant
    w = np.zeros(len(xty))
    for count in range(1, max_steps + 1):  # noqa: B007 (returned)
        grad = gram @ w - xty + l2 * w  # gradient of the smooth part
        w_new = soft_threshold(w - step * grad, step * l1)  # proximal step of the L1 part
        w, moved = w_new, np.max(np.abs(w_new - w))
        if moved <= tol:
            break
    return w, float(y_mean - x_mean @ w), count


def subgradient_descent(X, y, alpha: float, steps: int = 5000, lr: float | None = None):
    """Plain (sub)gradient descent on the lasso objective, for contrast:
    ``w <- w - lr * (data gradient + alpha * sign(w))``. Near 0 the constant pull
    overshoots, so weights hover around 0 instead of settling there."""
    G, c = _data_term(X, y)
    lr = 0.5 / np.linalg.eigvalsh(G)[-1] if lr is None else lr
    w = np.zeros(len(c))
    for _ in range(steps):
        w = w - lr * (G @ w - c + alpha * np.sign(w))
    return w


def coefficients_figure(true_coef, estimates: dict, title: str = "") -> Figure:
    """Bars of the true coefficients next to each estimate (``{"name": coef}``), exact zeros
    marked with a dot, so L1's zeros can be told from merely small L2 weights."""
    idx, width = np.arange(len(true_coef)), 0.8 / (len(estimates) + 1)
    fig, axes = viz.figure(1, 1, size=(11.0, 3.8))
    ax = axes[0, 0]
    ax.bar(idx - 0.4 + width / 2, true_coef, width, color="k", alpha=0.35, label="true")
    for i, (name, coef) in enumerate(estimates.items(), start=1):
        coef = np.asarray(coef, dtype=np.float64)
        x = idx - 0.4 + width * (i + 0.5)
        zeros = int(np.sum(coef == 0))
        ax.bar(x, coef, width, label=f"{name} ({zeros} exact zeros)")
        ax.plot(x[coef == 0], np.zeros(zeros), "k.", ms=4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xticks=idx, xlabel="feature index (0-4 relevant, the rest irrelevant)", title=title)
    ax.set_ylabel("coefficient")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- two views


def l1_ball_minimiser(X: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
    """Least squares on two features within the diamond ``|w1| + |w2| <= t``, searched edge by
    edge: on an edge ``w = a + s (b - a)`` the loss is a parabola in ``s``, minimised in closed
    form and clipped to [0, 1] (clipped: a corner, one weight exactly 0). Assumes the
    unconstrained minimum lies outside the diamond."""
    G, c = _data_term(X, y)
    if G.shape != (2, 2):
        raise ValueError(f"the diamond is drawn for two features, got {G.shape[0]}")
    corners = [t * np.array(v, dtype=np.float64) for v in ((1, 0), (0, 1), (-1, 0), (0, -1))]
    best, best_loss = None, np.inf
    for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
        d = b - a
        s = float(np.clip(-(G @ a - c) @ d / (d @ G @ d), 0.0, 1.0))
        w = b.copy() if s == 1.0 else a + s * d
        loss = 0.5 * w @ G @ w - c @ w
        if loss < best_loss:
            best, best_loss = w, loss
    return best


def l2_ball_minimiser(X: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Least squares on two features on the circle ``||w||_2 = r``: a grid over the angle,
    then a bounded search around the best grid point."""
    from scipy.optimize import minimize_scalar

    G, c = _data_term(X, y)

    def loss(angle):
        w = r * np.array([np.cos(angle), np.sin(angle)])
        return 0.5 * w @ G @ w - c @ w

    grid = np.linspace(-np.pi, np.pi, 3601)
    a, step = grid[np.argmin([loss(a) for a in grid])], grid[1] - grid[0]
    best = minimize_scalar(
        loss, bounds=(a - step, a + step), method="bounded", options={"xatol": 1e-12}
    )
    return r * np.array([np.cos(best.x), np.sin(best.x)])


def ball_figure(X: np.ndarray, y: np.ndarray, w_l1: np.ndarray, w_l2: np.ndarray) -> Figure:
    """Loss contours of two features with the L1 diamond through ``w_l1`` and the L2
    circle through ``w_l2``, and where each constrained minimum sits."""
    G, c = _data_term(X, y)
    w_ls = np.linalg.solve(G, c)
    t, r = np.abs(w_l1).sum(), np.linalg.norm(w_l2)
    span = 1.3 * max(np.abs(w_ls).max(), t, r)
    g1, g2 = np.meshgrid(np.linspace(-span, span, 200), np.linspace(-span, span, 200))
    W = np.stack([g1, g2], -1)
    loss = 0.5 * np.einsum("...i,ij,...j->...", W, G, W) - W @ c
    fig, axes = viz.figure(size=(5.6, 5.0))
    ax = axes[0, 0]
    levels = (0.5 * w_ls @ G @ w_ls - c @ w_ls) + np.geomspace(0.01, 3, 10) * (c @ w_ls)
    ax.contour(g1, g2, loss, levels=np.sort(levels), colors="grey", linewidths=0.7)
    diamond = np.array([[t, 0], [0, t], [-t, 0], [0, -t], [t, 0]]).T
    ax.plot(*diamond, "tab:red", label="|w1| + |w2| = t")
    angle = np.linspace(0, 2 * np.pi, 200)
    ax.plot(r * np.cos(angle), r * np.sin(angle), "tab:blue", label="w1² + w2² = r²")
    ax.plot(*w_ls, "k*", ms=12, label="least squares")
    ax.plot(*w_l1, "o", color="tab:red", ms=8, label=f"L1 minimum ({w_l1[0]:.2f}, {w_l1[1]:.2f})")
    ax.plot(*w_l2, "o", color="tab:blue", ms=8, label=f"L2 minimum ({w_l2[0]:.2f}, {w_l2[1]:.2f})")
    ax.set(xlabel="$w_1$", ylabel="$w_2$", aspect="equal", xlim=(-span, span), ylim=(-span, span))
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("the diamond is touched at a corner, the circle is not", fontsize=10)
    fig.tight_layout()
    return fig


def map_weights(X, y, sigma2: float, prior: str = "gaussian", scale: float = 1.0) -> np.ndarray:
    """The posterior mode (MAP) of ``w`` under Gaussian noise of variance ``sigma2`` and a
    ``"gaussian"`` N(0, scale^2) or ``"laplace"`` ``exp(-|w|/scale)/(2 scale)`` prior per weight
    (flat for the intercept), by L-BFGS-B on the negative log posterior. For Laplace,
    ``w = u - v`` with ``u, v >= 0`` turns ``|w|`` into ``u + v``, smooth with bounds;
    where both stop at 0, the weight is exactly 0."""
    from scipy.optimize import minimize

    if prior not in ("gaussian", "laplace"):
        raise ValueError(f"prior must be 'gaussian' or 'laplace', got {prior!r}")
    Xc, yc, _, _ = _centre(X, y)
    p, gaussian = Xc.shape[1], prior == "gaussian"

    def neg_log_posterior(v):
        w = v if gaussian else v[:p] - v[p:]
        r = yc - Xc @ w
        g = -Xc.T @ r / sigma2
        if gaussian:
            return r @ r / (2 * sigma2) + w @ w / (2 * scale**2), g + w / scale**2
        return r @ r / (2 * sigma2) + v.sum() / scale, np.r_[g, -g] + 1 / scale

    size, bounds = (p, None) if gaussian else (2 * p, [(0, None)] * (2 * p))
    opts = {"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000}
    v = minimize(neg_log_posterior, np.zeros(size), jac=True, method="L-BFGS-B", bounds=bounds,
                 options=opts).x  # fmt: skip
    return v if gaussian else v[:p] - v[p:]


# --------------------------------------------------------------------------- paths


def regularization_paths(X: np.ndarray, y: np.ndarray, alphas, l1_ratio: float = 0.5) -> dict:
    """Ridge (:func:`ridge_path_svd`), lasso and elastic net (scikit-learn's ``lasso_path``,
    ``enet_path``) coefficients over the sorted ``alphas``, one array per penalty."""
    from sklearn.linear_model import enet_path, lasso_path

    alphas = np.sort(np.asarray(alphas, dtype=np.float64))
    Xc, yc, _, _ = _centre(X, y)
    # lasso_path/enet_path take centred data and return alphas in decreasing order
    opts = {"alphas": alphas[::-1], "tol": 1e-10, "max_iter": 100_000}
    _, lasso, _ = lasso_path(Xc, yc, **opts)
    _, enet, _ = enet_path(Xc, yc, l1_ratio=l1_ratio, **opts)
    ridge = ridge_path_svd(X, y, alphas)[0]
    return {"alphas": alphas, "ridge": ridge, "lasso": lasso.T[::-1], "elasticnet": enet.T[::-1],
            "l1_ratio": l1_ratio}  # fmt: skip


_PATH_ALPHAS = np.logspace(-3, 4, 71)


@lru_cache(maxsize=4)
def _path_data(seed: int) -> dict:
    X_train, X_test, y_train, y_test, names = diabetes_split(train_size=300, seed=seed)
    paths = regularization_paths(X_train, y_train, _PATH_ALPHAS)
    return {"paths": paths, "names": names, "split": (X_train, X_test, y_train, y_test)}


def path_figure(alpha: float = 1.0, penalty: str = "lasso") -> Figure:
    """Slider figure: the ``"ridge"``, ``"lasso"`` or ``"elasticnet"`` (``l1_ratio=0.5``) path
    on the diabetes split of ``COURSE_SEED`` with ``alpha`` marked (left) and the weights
    there (right); the title counts the non-zero weights and gives the test R^2."""
    from sklearn.linear_model import ElasticNet, Lasso, Ridge

    opts = {"alpha": alpha, "tol": 1e-8, "max_iter": 100_000}
    fits = {"ridge": Ridge(alpha=alpha), "lasso": Lasso(**opts)}
    fits["elasticnet"] = ElasticNet(l1_ratio=0.5, **opts)  # as in regularization_paths
    if penalty not in fits:
        raise ValueError(f"penalty must be one of {list(fits)}, got {penalty!r}")
    data = _path_data(config.resolve_seed())
    paths, names = data["paths"], data["names"]
    X_train, X_test, y_train, y_test = data["split"]
    model = fits[penalty].fit(X_train, y_train)
    coef, r2 = model.coef_, model.score(X_test, y_test)
    nonzero, colors = int(np.sum(coef != 0)), [f"C{j}" for j in range(len(names))]
    fig, axes = viz.figure(1, 2, size=(11.5, 4.0))
    ax = axes[0, 0]
    for j, name in enumerate(names):
        ax.semilogx(paths["alphas"], paths[penalty][:, j], lw=1.5, color=colors[j], label=name)
    ax.axvline(alpha, color="k", ls="--", lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="alpha (log scale)", ylabel="coefficient (standardised features)")
    ax.set_title(f"{penalty} path", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    ax = axes[0, 1]
    ax.barh(names, coef, color=np.where(coef == 0, "lightgrey", colors))
    for j in np.flatnonzero(coef == 0):
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
    """All monomials of the standardised features up to ``degree``, standardised again with
    training statistics (285 columns for the 10 diabetes features at degree 3)."""
    from sklearn.preprocessing import PolynomialFeatures

    X_train, X_test = standardize_columns(X_train, X_test)
    poly = PolynomialFeatures(degree, include_bias=False).fit(X_train)
    return standardize_columns(poly.transform(X_train), poly.transform(X_test))


def overfit_curve(
    alphas, degree: int = 3, train_size: int = 150, splits: int = 5, seed: int | None = None
) -> dict:
    """Ridge on polynomial diabetes features over ``alphas``, per random split (from ``seed``,
    default ``COURSE_SEED``): train and test MSE at every alpha (one SVD), the alpha that
    ``RidgeCV`` picks by leave-one-out on the training patients alone and its test MSE, and
    the test MSE of least squares on the 10 raw features; means over splits."""
    from sklearn.linear_model import LinearRegression, RidgeCV
    from sklearn.model_selection import train_test_split

    alphas = np.asarray(alphas, dtype=np.float64)
    data = load_sklearn("diabetes", scaled=False)
    rows = {"train_mse": [], "test_mse": [], "cv_alphas": [], "cv_test_mse": [], "linear": []}
    for s in range(splits):
        X_tr, X_te, y_tr, y_te = train_test_split(
            data.x, data.y, train_size=train_size, random_state=1000 * config.resolve_seed(seed) + s
        )
        A, B = polynomial_design(X_tr, X_te, degree)
        coefs, intercepts = ridge_path_svd(A, y_tr, alphas)
        rows["train_mse"].append(((A @ coefs.T + intercepts - y_tr[:, None]) ** 2).mean(axis=0))
        rows["test_mse"].append(((B @ coefs.T + intercepts - y_te[:, None]) ** 2).mean(axis=0))
        cv = RidgeCV(alphas=alphas).fit(A, y_tr)
        rows["cv_alphas"].append(cv.alpha_)
        rows["cv_test_mse"].append(np.mean((cv.predict(B) - y_te) ** 2))
        linear = LinearRegression().fit(X_tr, y_tr)
        rows["linear"].append(np.mean((linear.predict(X_te) - y_te) ** 2))
    train, test = np.mean(rows["train_mse"], axis=0), np.mean(rows["test_mse"], axis=0)
    return {
        "alphas": alphas, "train_mse": train, "test_mse": test, "gap": test - train,
        "cv_alphas": np.array(rows["cv_alphas"]), "cv_test_mse": float(np.mean(rows["cv_test_mse"])),
        "linear_test_mse": float(np.mean(rows["linear"])), "n_features": A.shape[1],
    }  # fmt: skip


@lru_cache(maxsize=4)
def _overfit_cached(seed: int) -> dict:
    return overfit_curve(np.logspace(-4, 5, 91), splits=5, seed=seed)


def overfit_figure(alpha: float = 1.0) -> Figure:
    """Slider figure: train and test MSE of :func:`overfit_curve` (5 splits of ``COURSE_SEED``)
    against alpha, with ``alpha`` and the alphas chosen on the training sets (median)
    marked; the title gives the errors at ``alpha`` (a redraw only interpolates)."""
    curve = _overfit_cached(config.resolve_seed())
    log_a, la = np.log10(curve["alphas"]), math.log10(alpha)
    train = float(10 ** np.interp(la, log_a, np.log10(np.maximum(curve["train_mse"], 1e-12))))
    test = float(10 ** np.interp(la, log_a, np.log10(curve["test_mse"])))
    fig, axes = viz.figure(1, 1, size=(7.5, 4.2))
    ax = axes[0, 0]
    ax.loglog(curve["alphas"], curve["train_mse"], label="train MSE")
    ax.loglog(curve["alphas"], curve["test_mse"], label="test MSE")
    chosen = float(np.median(curve["cv_alphas"]))
    ax.axvline(chosen, color="tab:green", lw=1, label=f"chosen on the training set ({chosen:.3g})")
    ax.axhline(
        curve["linear_test_mse"], color="grey", ls=":", label="linear model, 10 raw features"
    )
    ax.axvline(alpha, color="k", ls="--", lw=1)
    ax.plot([alpha, alpha], [train, test], "o", color="k", ms=4)
    ax.set(
        ylim=(10, 3e5), xlabel="ridge alpha (log scale)", ylabel="mean squared error (log scale)"
    )
    ax.legend(fontsize=8)
    ax.set_title(
        f"alpha={alpha:.3g}: train MSE {train:,.0f}, test MSE {test:,.0f}, gap {test - train:,.0f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- PyTorch


def weight_decay_vs_penalty(
    X, y, optimizer: str = "sgd", weight_decay: float = 0.1, lr: float = 0.05,
    momentum: float = 0.0, steps: int = 50, seed: int | None = None,
) -> dict:  # fmt: skip
    """One MLP trained twice from the same start (``seed``, default ``COURSE_SEED``), full
    batch, float64: ``"sgd"`` or ``"adam"`` with ``weight_decay=wd`` vs without it on
    ``loss + wd/2 ||w||^2``. Returns the largest weight difference and how far they moved."""
    X = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64).reshape(-1, 1)
    start = models.mlp([X.shape[1], 16, 1], "tanh", seed=config.resolve_seed(seed)).double()
    runs = []
    for wd_arg, wd_loss in ((weight_decay, 0.0), (0.0, weight_decay)):
        model = training.clone(start)
        if optimizer == "sgd":
            opt = torch.optim.SGD(model.parameters(), lr, momentum, weight_decay=wd_arg)
        elif optimizer == "adam":
            opt = torch.optim.Adam(model.parameters(), lr, weight_decay=wd_arg)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        for _ in range(steps):
            opt.zero_grad()
            penalty = sum((p**2).sum() for p in model.parameters())
            (nn.functional.mse_loss(model(X), y) + wd_loss / 2 * penalty).backward()
            opt.step()
        runs.append([p.detach() for p in model.parameters()])
    diff = max((a - b).abs().max().item() for a, b in zip(*runs, strict=True))
    moved = max(
        (a - b).abs().max().item() for a, b in zip(runs[0], start.parameters(), strict=True)
    )
    return {"max_diff": diff, "moved": moved}


@dataclass
class AdamState:
    """Moments of a from-scratch Adam: first ``m``, second ``v`` (like ``w``), step count ``t``."""

    m: np.ndarray
    v: np.ndarray
    t: int = 0

    @classmethod
    def like(cls, w) -> AdamState:
        return cls(np.zeros_like(w, dtype=np.float64), np.zeros_like(w, dtype=np.float64))


def adam_step(
    w, grad, state: AdamState, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False,
) -> np.ndarray:  # fmt: skip
    """One Adam step from scratch (``state`` is updated in place); the new weights. Without
    ``decoupled`` (``Adam(weight_decay=wd)``, i.e. L2): ``g = grad + wd * w`` goes through
    ``m_hat / (sqrt(v_hat) + eps)``; with it (PyTorch's AdamW): ``w <- w * (1 - lr * wd)``."""
    (beta1, beta2), g = betas, np.asarray(grad, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if weight_decay and decoupled:
        w = w * (1.0 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * w
    state.t += 1
    state.m = beta1 * state.m + (1 - beta1) * g
    state.v = beta2 * state.v + (1 - beta2) * g**2
    m_hat, v_hat = state.m / (1 - beta1**state.t), state.v / (1 - beta2**state.t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps)


def run_adam(
    steps: int = 100, lr: float = 0.01, weight_decay: float = 0.1, decoupled: bool = False,
    scratch: bool = True, seed: int | None = None,
) -> np.ndarray:  # fmt: skip
    """The final weights after ``steps`` of :func:`adam_step` (``scratch``) or of
    ``torch.optim.Adam``/``AdamW`` on ``1/(2n)||A w - b||^2`` (drawn with ``seed``, default
    ``COURSE_SEED``), whose columns have scales 0.1 to 10."""
    rng = np.random.default_rng(config.resolve_seed(seed))
    A = rng.standard_normal((64, 5)) * np.array([0.1, 0.5, 1.0, 3.0, 10.0])
    b, w = rng.standard_normal(64), rng.standard_normal(5)
    if scratch:
        state = AdamState.like(w)
        for _ in range(steps):
            g = A.T @ (A @ w - b) / len(b)
            w = adam_step(w, g, state, lr=lr, weight_decay=weight_decay, decoupled=decoupled)
        return w
    w = torch.tensor(w, requires_grad=True)
    opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([w], lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * ((torch.from_numpy(A) @ w - torch.from_numpy(b)) ** 2).mean()).backward()
        opt.step()
    return w.detach().numpy()


def dead_weight_trajectories(
    lambdas=(1e-3, 1e-2, 1e-1), steps: int = 200, lr: float = 0.01
) -> dict:
    """Trajectories of a weight with *no* data gradient, from 1, under ``torch.optim.Adam``
    (its L2 gradient ``wd * w`` is divided by its own RMS: ``wd`` cancels) and ``AdamW``
    (shrunk by ``1 - lr * wd`` per step), per weight decay in ``lambdas``."""
    out = {"lambdas": list(lambdas), "steps": steps, "lr": lr, "adam_l2": {}, "adamw": {}}
    for lam in lambdas:
        for key, cls in (("adam_l2", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
            w = torch.ones(1, dtype=torch.float64, requires_grad=True)
            opt, path = cls([w], lr=lr, weight_decay=lam), [1.0]
            for _ in range(steps):
                w.grad = torch.zeros_like(w)  # the data loss does not depend on this weight
                opt.step()
                path.append(w.item())
            out[key][lam] = np.array(path)
    return out


def dead_weight_figure(result: dict) -> Figure:
    """Trajectories of :func:`dead_weight_trajectories`: Adam + L2 (left) vs AdamW (right)."""
    fig, axes = viz.figure(1, 2, size=(11.0, 3.8), sharey=True)
    steps = np.arange(result["steps"] + 1)
    for ax, key in zip(axes[0], ("adam_l2", "adamw"), strict=True):
        for lam, style in zip(result["lambdas"], ("-", "--", ":"), strict=False):
            ax.plot(steps, result[key][lam], style, lw=2, label=f"weight_decay = {lam:g}")
        ax.set(title={"adam_l2": "Adam(weight_decay): L2", "adamw": "AdamW: decoupled"}[key])
        ax.set(xlabel="step", ylabel="weight with no data gradient")
        ax.legend(fontsize=8)
    fig.suptitle(f"A weight the loss ignores, lr = {result['lr']:g}")
    fig.tight_layout()
    return fig


def adam_vs_adamw_mlp(
    weight_decay: float = 0.1, lr: float = 3e-3, steps: int = 600, hidden: int = 256,
    train_size: int = 150, seed: int | None = None,
) -> dict:  # fmt: skip
    """A wide MLP on ``train_size`` diabetes patients (scaled target, full batch; split and
    weights from ``seed``, default ``COURSE_SEED``) under Adam + L2 and AdamW: train and test
    MSE, the weights, and each first-layer weight's decay per step from the optimiser's
    state, ``lr * wd / (sqrt(v_hat) + eps)`` (Adam + L2) or ``lr * wd`` (AdamW)."""
    seed = config.resolve_seed(seed)
    X_tr, X_te, y_tr, y_te, _ = diabetes_split(train_size=train_size, seed=seed)
    X_tr, X_te = torch.from_numpy(X_tr), torch.from_numpy(X_te)
    y_tr, y_te = (torch.from_numpy((t - y_tr.mean()) / y_tr.std())[:, None] for t in (y_tr, y_te))
    results = {}
    for key, cls in (("adam_l2", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        model = models.mlp([X_tr.shape[1], hidden, hidden, 1], seed=seed).double()
        opt = cls(model.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            opt.zero_grad()
            nn.functional.mse_loss(model(X_tr), y_tr).backward()
            opt.step()
        state = opt.state[model[0].weight]
        v_hat = state["exp_avg_sq"] / (1 - opt.defaults["betas"][1] ** int(state["step"]))
        decay = lr * weight_decay / (v_hat.sqrt() + opt.defaults["eps"])
        with torch.no_grad():
            results[key] = {
                "train_mse": nn.functional.mse_loss(model(X_tr), y_tr).item(),
                "test_mse": nn.functional.mse_loss(model(X_te), y_te).item(),
                "weights": torch.cat([p.ravel() for p in model.parameters()]).numpy(),
                "effective_decay": (decay if key == "adam_l2" else 0 * decay + lr * weight_decay)
                .ravel().numpy(),
            }  # fmt: skip
    return results


def effective_decay_figure(result: dict) -> Figure:
    """Histogram (log scale) of the per-weight decay per step in :func:`adam_vs_adamw_mlp`."""
    fig, axes = viz.figure(1, 1, size=(7.5, 3.6))
    ax, decay = axes[0, 0], result["adam_l2"]["effective_decay"]
    bins = np.logspace(np.log10(decay.min()) - 0.2, np.log10(decay.max()) + 0.2, 50)
    ax.hist(decay, bins=bins, color="tab:blue", alpha=0.8, label="Adam + L2: lr·wd / (√v̂ + ε)")
    ax.axvline(result["adamw"]["effective_decay"][0], color="tab:red", lw=2, label="AdamW: lr·wd")
    ax.set(xscale="log", xlabel="decay per step of each first-layer weight (log scale)")
    spread = np.percentile(decay, 95) / np.percentile(decay, 5)
    ax.set(ylabel="number of weights", title=f"Adam + L2: 95th/5th percentile ratio {spread:.1f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
