"""Notebook 10 · Feature importance: what the weights do and do not tell you.

Four ways to ask "which input matters most?", compared on data whose true
effects we know, then on real data:

* **raw coefficients** ``w_j`` of a linear model: the change of the prediction
  per *unit* of feature ``j``, so they depend on the units;
* **standardised coefficients** ``w_j * std(x_j)``: the change per standard
  deviation, unit-free;
* **permutation importance**: how much the test score drops when column ``j``
  is shuffled (Breiman 2001 did it on a random forest's out-of-bag examples;
  the model-agnostic version on held-out data is Fisher, Rudin and Dominici's
  *model reliance*, ``sklearn.inspection.permutation_importance``), and
  :func:`grouped_permutation_importance`, which shuffles correlated columns together;
* **gradient x input**: ``(x_j - baseline_j) * df/dx_j`` per example, from
  autograd; for a linear model it is ``w_j * (x_j - baseline_j)``, which
  :func:`integrated_gradients` also gives (for a nonlinear model they differ).

Two pitfalls are built into the synthetic data: features measured in different
units (the *scale* pitfall of raw weights) and near-duplicate features (the
*correlation* pitfall, where the weight is split arbitrarily between the copies
and each copy's permutation importance collapses).

Importance scores here are *larger = more important*: absolute values for
coefficients and mean absolute values for gradient x input. Every random draw
follows the course seed (``COURSE_SEED``) unless a ``seed`` is given.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, viz
from .data import load_sklearn, standardize_columns

__all__ = [
    "SCALE_FEATURES",
    "bootstrap_coefficients",
    "correlated_experiment",
    "correlation_figure",
    "diabetes_importances",
    "fit_mlp",
    "gradient_x_input",
    "grouped_permutation_importance",
    "importance_table",
    "integrated_gradients",
    "linear_to_torch",
    "make_correlated_data",
    "make_scale_data",
    "mlp_to_torch",
    "permutation_scores",
    "ranking",
    "ranking_figure",
    "scale_figure",
    "scale_split",
    "spearman",
    "standardized_coefficients",
]


# --------------------------------------------------------------------------- importance measures


def standardized_coefficients(coef, X) -> np.ndarray:
    """Coefficients per standard deviation of each feature: ``coef * X.std(axis=0)``.

    Rescaling a feature (grams instead of kilograms) divides its raw
    coefficient by the same factor it multiplies its standard deviation with,
    so the product does not change.
    """
    return np.asarray(coef, dtype=np.float64) * np.asarray(X, dtype=np.float64).std(axis=0)


def gradient_x_input(model: nn.Module, X, baseline=None) -> np.ndarray:
    """Gradient x input attributions ``(x - baseline) * d model(x) / dx`` for every example.

    Computed from scratch with autograd: the inputs get ``requires_grad``, the
    summed output is back-propagated (each example's output depends only on
    its own input, so the sum gives every per-example gradient at once), and
    the gradient is multiplied by the input minus ``baseline`` (default 0, the
    plain "gradient x input"; pass the training mean to measure from an
    average example). ``model`` must map ``(n, p)`` to ``(n,)`` or ``(n, 1)``.
    Returns an ``(n, p)`` array.
    """
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float64
    device = param.device if param is not None else torch.device("cpu")
    x = torch.as_tensor(np.asarray(X), dtype=dtype, device=device).clone().requires_grad_(True)
    out = model(x)
    if out.ndim == 2 and out.shape[1] != 1:
        raise ValueError(f"model must have one output per example, got shape {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(out.sum(), x)
    ref = 0.0 if baseline is None else torch.as_tensor(np.asarray(baseline), dtype=dtype)
    return ((x.detach() - ref) * grad).cpu().numpy()


def integrated_gradients(model: nn.Module, X, baseline, steps: int = 64) -> np.ndarray:
    """Integrated Gradients (Sundararajan et al. 2017) from ``baseline`` to each row of ``X``.

    ``(x - baseline) * mean of df/dx along the straight path from baseline to x``,
    the mean taken at the midpoints of ``steps`` equal segments. The attributions
    of an example add up to ``f(x) - f(baseline)`` (completeness). For a linear
    model the gradient is the same everywhere, so this equals gradient x input
    measured from the same baseline. Returns an ``(n, p)`` array.
    """
    X = np.asarray(X, dtype=np.float64)
    base = np.broadcast_to(np.asarray(baseline, dtype=np.float64), X.shape).copy()
    total = np.zeros_like(X)
    for alpha in (np.arange(steps) + 0.5) / steps:  # midpoints: alpha > 0
        # at base + alpha (x - base), gradient x input from the baseline is alpha (x - base) df/dx
        total += gradient_x_input(model, base + alpha * (X - base), baseline=base) / alpha
    return total / steps


def linear_to_torch(coef, intercept: float = 0.0) -> nn.Linear:
    """An ``nn.Linear(p, 1)`` (float64) holding a fitted linear model's weights."""
    coef = np.asarray(coef, dtype=np.float64).ravel()
    layer = nn.Linear(len(coef), 1).to(torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(coef)[None, :])
        layer.bias.fill_(float(intercept))
    return layer


def mlp_to_torch(mlp) -> nn.Sequential:
    """A PyTorch copy of a fitted scikit-learn ``MLPRegressor`` (ReLU, float64).

    scikit-learn stores layer ``i`` as ``coefs_[i]`` of shape ``(in, out)`` and
    ``intercepts_[i]``; ``nn.Linear`` stores ``weight`` as ``(out, in)``, hence
    the transpose. The weights *are* the model: the copy predicts the same.
    """
    if getattr(mlp, "activation", "relu") != "relu":
        raise ValueError(f"only ReLU networks are supported, got {mlp.activation!r}")
    layers: list[nn.Module] = []
    for i, (W, b) in enumerate(zip(mlp.coefs_, mlp.intercepts_, strict=True)):
        layer = nn.Linear(W.shape[0], W.shape[1]).to(torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            layer.bias.copy_(torch.from_numpy(b))
        layers.append(layer)
        if i < len(mlp.coefs_) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def permutation_scores(model, X, y, n_repeats: int = 20, seed: int | None = None) -> dict:
    """``sklearn.inspection.permutation_importance`` with the model's own score (R^2 here).

    Returns ``mean`` and ``std`` over the ``n_repeats`` shuffles, one per
    feature: the drop in R^2 when that column is shuffled.
    """
    from sklearn.inspection import permutation_importance

    seed = config.resolve_seed(seed)
    result = permutation_importance(model, X, y, n_repeats=n_repeats, random_state=seed)
    return {"mean": result.importances_mean, "std": result.importances_std}


def ranking(scores) -> np.ndarray:
    """Feature indices from most to least important (``scores``: larger = more important)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def spearman(a, b) -> float:
    """Spearman rank correlation of two importance vectors (1 = same ranking, -1 = reversed)."""
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a), np.asarray(b)).statistic)


def importance_table(
    model, X_train, X_test, y_test, n_repeats: int = 20, seed: int | None = None
) -> dict:
    """The four importance scores of a fitted linear scikit-learn model, one array each.

    * ``raw``: ``|coef|``;
    * ``standardized``: ``|coef * std(X_train)|``;
    * ``permutation``: mean drop of test R^2 when a column is shuffled;
    * ``grad_x_input``: mean ``|gradient x input|`` over the test set, computed
      by autograd through the model copied into PyTorch, with baseline 0;
    * ``grad_x_input_centred``: the same with the training mean as baseline.
    """
    coef = np.asarray(model.coef_, dtype=np.float64).ravel()
    torch_model = linear_to_torch(coef, float(np.ravel(model.intercept_)[0]))
    return {
        "raw": np.abs(coef),
        "standardized": np.abs(standardized_coefficients(coef, X_train)),
        "permutation": permutation_scores(model, X_test, y_test, n_repeats, seed)["mean"],
        "grad_x_input": np.abs(gradient_x_input(torch_model, X_test)).mean(axis=0),
        "grad_x_input_centred": np.abs(
            gradient_x_input(torch_model, X_test, baseline=np.mean(X_train, axis=0))
        ).mean(axis=0),
    }


_METHOD_LABELS = {
    "true": "true effect",
    "raw": "|raw coefficient|",
    "standardized": "|standardised coef.|",
    "permutation": "permutation importance",
    "grad_x_input": "|grad x input|",
    "grad_x_input_centred": "|grad x (input - mean)|",
}


def ranking_figure(table: dict, names, title: str = "", reference: str | None = None) -> Figure:
    """One bar panel per importance method, each scaled to its largest value.

    With ``reference`` (a key of ``table``), each panel's title gives the
    Spearman rank correlation with that method.
    """
    methods = list(table)
    fig, axes = viz.figure(
        1, len(methods), size=(min(2.3 * len(methods) + 1.2, 15.0), 3.6), sharey=True
    )
    y = np.arange(len(names))
    for ax, method in zip(axes[0], methods, strict=True):
        scores = np.asarray(table[method], dtype=np.float64)
        top = np.max(np.abs(scores)) or 1.0
        best = ranking(scores)[0]
        colors = ["tab:orange" if i == best else "tab:blue" for i in range(len(scores))]
        ax.barh(y, scores / top, color=colors)
        label = _METHOD_LABELS.get(method, method)
        if reference is not None and method != reference:
            label += f"\n\u03c1 vs {reference} = {spearman(scores, table[reference]):.2f}"
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("share of largest")
    axes[0, 0].set_yticks(y, list(names))
    axes[0, 0].invert_yaxis()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- pitfall 1: units

#: Features of the scale experiment: name, unit, std in that unit, mean, true effect per std.
SCALE_FEATURES = (
    ("mass", "g", 1000.0, 5000.0, 3.0),
    ("temperature", "K", 1.0, 293.0, 2.0),
    ("pressure", "bar", 1.0, 0.0, 1.0),
    ("distance", "km", 0.01, 0.05, 0.5),
    ("noise", "", 1.0, 0.0, 0.0),
)


def make_scale_data(n: int = 1000, noise: float = 1.0, seed: int = 0, mass_std=None) -> dict:
    """Synthetic regression whose features are measured in very different units.

    Each feature is ``mean + std * z`` with ``z`` standard normal, and
    ``y = sum_j effect_j * z_j + noise * eps``: ``effect_j`` is the true effect
    of a one-standard-deviation change (see :data:`SCALE_FEATURES`; the last
    feature has none). ``mass_std`` overrides the spread of the mass column
    (its unit). Returns ``X``, ``y``, ``true_effect``, ``names``, ``units``.
    """
    rng = np.random.default_rng(seed)
    names = [f[0] for f in SCALE_FEATURES]
    stds = np.array([f[2] for f in SCALE_FEATURES])
    if mass_std is not None:
        stds[0] = float(mass_std)
    means = np.array([f[3] for f in SCALE_FEATURES])
    effects = np.array([f[4] for f in SCALE_FEATURES])
    Z = rng.standard_normal((n, len(names)))
    y = Z @ effects + noise * rng.standard_normal(n)
    return {
        "X": means + stds * Z,
        "y": y,
        "true_effect": effects,
        "names": names,
        "units": [f[1] for f in SCALE_FEATURES],
    }


@lru_cache(maxsize=4)
def scale_split(seed: int | None = None) -> tuple[dict, dict]:
    """The notebook's training (1,000) and test (2,000) sets of :func:`make_scale_data`.

    Drawn with seeds ``2 * seed`` and ``2 * seed + 1`` (``seed``: the course
    seed by default), so that the two sets never share a draw.
    """
    seed = config.resolve_seed(seed)
    return make_scale_data(n=1000, seed=2 * seed), make_scale_data(n=2000, seed=2 * seed + 1)


def scale_figure(mass_unit: float = 1.0, seed: int | None = None) -> Figure:
    """Slider figure: measure the *mass* feature in a different unit and refit.

    ``mass_unit`` is the size of the unit in grams (1 = grams, 1000 =
    kilograms, 0.001 = milligrams). Only the unit changes: the data, the true
    effect and the predictions do not. Panels: raw |coefficient|, standardised
    |coefficient| and permutation importance of the five features; the title
    gives where each method ranks *mass* (truly the most important).
    """
    from sklearn.linear_model import LinearRegression

    data, test = scale_split(config.resolve_seed(seed))
    X, X_test = data["X"].copy(), test["X"].copy()
    X[:, 0] /= mass_unit
    X_test[:, 0] /= mass_unit
    # tol=0: scikit-learn >= 1.9 would otherwise drop directions whose singular value is
    # below 1e-6 of the largest, which tiny units (mg) trigger
    model = LinearRegression(tol=0).fit(X, data["y"])
    table = {
        "raw": np.abs(model.coef_),
        "standardized": np.abs(standardized_coefficients(model.coef_, X)),
        "permutation": permutation_scores(model, X_test, test["y"], n_repeats=5, seed=0)["mean"],
    }
    rank = {k: int(np.where(ranking(v) == 0)[0][0]) + 1 for k, v in table.items()}
    unit = _unit_name(mass_unit)
    units = [unit, *data["units"][1:]]
    labels = [f"{n} [{u}]" if u else n for n, u in zip(data["names"], units, strict=True)]
    fig = ranking_figure(table, labels)
    fig.suptitle(
        f"mass in {unit}: raw coef {model.coef_[0]:.3g} per {unit}; rank of mass (truly 1st): "
        f"raw {rank['raw']}, standardised {rank['standardized']}, permutation {rank['permutation']}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _unit_name(grams: float) -> str:
    named = {1e-3: "mg", 1.0: "g", 1e3: "kg", 1e6: "t"}
    for value, name in named.items():
        if math.isclose(grams, value, rel_tol=1e-6):
            return name
    return f"{grams:.3g} g"


# --------------------------------------------------------------------------- pitfall 2: copies


def make_correlated_data(
    rho: float = 0.99, n: int = 500, noise: float = 1.0, seed: int = 0, with_copy: bool = True
) -> dict:
    """One quantity measured twice, plus an independent feature.

    A hidden quantity ``z`` drives the target, ``y = 2 z + 1.5 x3 + noise``.
    It is observed through two measurements ``x1`` and ``x2`` (say two sensors)
    with correlation ``rho``: ``x_i = sqrt(rho) z + sqrt(1 - rho) e_i``, unit
    variance each. ``x3`` is independent. With ``with_copy=False`` only ``x1``
    and ``x3`` are kept (the same draws). Returns ``X``, ``y``, ``names`` and
    ``true_effect`` (the effect of ``z`` and of ``x3``).
    """
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (0, 1), got {rho}")
    rng = np.random.default_rng(seed)
    z, e1, e2, x3, eps = rng.standard_normal((5, n))
    x1 = math.sqrt(rho) * z + math.sqrt(1.0 - rho) * e1
    x2 = math.sqrt(rho) * z + math.sqrt(1.0 - rho) * e2
    y = 2.0 * z + 1.5 * x3 + noise * eps
    if with_copy:
        X, names = np.column_stack([x1, x2, x3]), ["x1", "x2 (copy)", "x3"]
    else:
        X, names = np.column_stack([x1, x3]), ["x1", "x3"]
    return {"X": X, "y": y, "names": names, "true_effect": {"z": 2.0, "x3": 1.5}, "rho": rho}


def bootstrap_coefficients(X, y, n_boot: int = 100, seed: int = 0, alpha: float = 0.0):
    """Least-squares (``alpha=0``) or ridge coefficients refitted on ``n_boot`` bootstrap resamples.

    Each resample draws ``n`` rows with replacement; the fit centres it and
    solves ``(X'X + alpha I) w = X'y`` (scikit-learn's ``Ridge(alpha)``). The
    spread of a coefficient over resamples shows how much the data pins it
    down. Returns an ``(n_boot, p)`` array.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n, p = X.shape
    out = np.empty((n_boot, p))
    for b in range(n_boot):
        i = rng.integers(0, n, n)
        Xc = X[i] - X[i].mean(axis=0)
        yc = y[i] - y[i].mean()
        out[b] = np.linalg.solve(Xc.T @ Xc + alpha * np.eye(p), Xc.T @ yc)
    return out


def grouped_permutation_importance(
    model, X, y, groups: dict, n_repeats: int = 20, seed: int = 0
) -> dict:
    """Drop in the model's score when the columns of a group are shuffled *together*.

    ``groups`` maps a name to a list of column indices; one permutation of the
    rows is applied to all of them, so their joint distribution (and their
    correlation) is kept while their link to the target is broken. Returns
    ``{name: mean drop}``. A group of one column is plain permutation importance.
    """
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    base = model.score(X, y)
    out = {}
    for name, cols in groups.items():
        drops = []
        for _ in range(n_repeats):
            X_perm = X.copy()
            X_perm[:, cols] = X[rng.permutation(len(X))][:, cols]
            drops.append(base - model.score(X_perm, y))
        out[name] = float(np.mean(drops))
    return out


def correlated_experiment(
    rho: float = 0.99,
    n: int = 500,
    n_boot: int = 100,
    n_repeats: int = 20,
    seed: int | None = None,
    ridge_alpha: float = 10.0,
) -> dict:
    """The correlation pitfall in numbers, with and without the second measurement ``x2``.

    Fits least squares on ``n`` training examples, measures permutation
    importance (drop in R^2) on ``n`` test examples, and refits on bootstrap
    resamples of the training set. Returns, for ``"alone"`` (``x1``, ``x3``)
    and ``"with_copy"`` (``x1``, ``x2``, ``x3``): ``coef``, ``perm`` (mean
    importances), ``boot`` (bootstrap coefficients), ``r2`` (test R^2) and
    ``names``. With the copy also ``grouped`` (``x1`` and ``x2`` shuffled
    together), ``ridge_coef`` and ``ridge_boot`` (ridge, ``ridge_alpha``).
    """
    from sklearn.linear_model import LinearRegression, Ridge

    seed = config.resolve_seed(seed)
    out: dict = {"rho": rho}
    for key, with_copy in (("alone", False), ("with_copy", True)):
        data = make_correlated_data(rho, n=2 * n, seed=seed, with_copy=with_copy)
        X_tr, X_te, y_tr, y_te = data["X"][:n], data["X"][n:], data["y"][:n], data["y"][n:]
        model = LinearRegression().fit(X_tr, y_tr)
        out[key] = {
            "coef": model.coef_,
            "perm": permutation_scores(model, X_te, y_te, n_repeats, seed)["mean"],
            "boot": bootstrap_coefficients(X_tr, y_tr, n_boot, seed),
            "r2": model.score(X_te, y_te),
            "names": data["names"],
        }
        if with_copy:
            groups = {"x1 + x2": [0, 1]}
            out[key]["grouped"] = grouped_permutation_importance(
                model, X_te, y_te, groups, n_repeats, seed
            )["x1 + x2"]
            out["ridge_coef"] = Ridge(alpha=ridge_alpha).fit(X_tr, y_tr).coef_
            out["ridge_boot"] = bootstrap_coefficients(X_tr, y_tr, n_boot, seed, ridge_alpha)
    return out


def correlation_figure(rho: float = 0.99, seed: int | None = None) -> Figure:
    """Slider figure: what a second measurement of the same quantity does to importances.

    Left: least-squares coefficients of ``x1`` and ``x2`` over 60 bootstrap
    resamples (dots) and on the sample itself (the star): as ``rho`` grows they
    spread along the line of constant sum (the data pin down ``w1 + w2``, not
    the split). Right: permutation importance of ``x1``, ``x2`` and ``x3``
    with both measurements, and of ``x1`` and of the pair shuffled together.
    The title gives the fitted split and the bootstrap spread of ``w1``.
    """
    res = correlated_experiment(rho, n=500, n_boot=60, n_repeats=5, seed=seed)
    alone, dup = res["alone"], res["with_copy"]
    w1, w2 = dup["coef"][:2]
    fig, axes = viz.figure(1, 2, size=(11.0, 4.2))
    ax = axes[0, 0]
    ax.scatter(dup["boot"][:, 0], dup["boot"][:, 1], s=12, alpha=0.7, label="bootstrap refits")
    ax.plot([w1], [w2], "r*", ms=14, label=f"this sample: {w1:.2f} / {w2:.2f}")
    ax.plot([-2, 4], [w1 + w2 + 2, w1 + w2 - 4], "k--", lw=1, label=f"w1 + w2 = {w1 + w2:.2f}")
    ax.set(xlim=(-1.5, 3.5), ylim=(-1.5, 3.5), aspect="equal")
    ax.set_xlabel("coefficient of x1")
    ax.set_ylabel("coefficient of x2 (copy)")
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[0, 1]
    labels = ["x1 alone", "x1", "x2 (copy)", "x1 + x2\ntogether", "x3"]
    values = [alone["perm"][0], dup["perm"][0], dup["perm"][1], dup["grouped"], dup["perm"][2]]
    ax.bar(labels, values, color=["tab:grey", "tab:blue", "tab:blue", "tab:purple", "tab:green"])
    ax.set_ylabel("permutation importance (drop in R\u00b2)")
    ax.set_ylim(0, max(1.0, max(values) * 1.1))
    fig.suptitle(
        f"rho={rho:.3g}: least squares splits {w1:.2f} / {w2:.2f} (bootstrap std of w1 "
        f"{dup['boot'][:, 0].std():.2f}); x1 keeps {dup['perm'][0] / alone['perm'][0]:.0%} of "
        f"its importance, x1 + x2 together {dup['grouped'] / alone['perm'][0]:.0%}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- real data


def diabetes_importances(
    train_size: int = 300, seed: int | None = None, n_repeats: int = 20, mlp_alpha: float = 30.0
) -> dict:
    """Feature importances on the diabetes data (442 patients, 10 features in raw units).

    * A least-squares model on the raw features: :func:`importance_table`.
    * The same data standardised, bootstrap coefficients (200 resamples) and
      each feature's R^2 on its own (squared correlation with the target).
    * A small MLP (:func:`fit_mlp`) on the standardised features, copied into
      PyTorch for gradient x input, and its permutation importance.

    The split, the resamples, the shuffles and the network's initial weights
    follow ``seed`` (the course seed by default). Returns a dict with ``names``,
    ``linear`` (the table), ``linear_r2``, ``coef_std`` (signed standardised
    coefficients), ``boot``, ``single_r2``, ``mlp`` (``grad_x_input``,
    ``permutation``), ``mlp_r2``, ``net`` (the PyTorch copy), ``S_test`` (the
    standardised test features) and ``copy_error`` (largest difference between
    the network's and its copy's predictions).
    """
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import train_test_split

    seed = config.resolve_seed(seed)
    data = load_sklearn("diabetes", scaled=False)
    X_tr, X_te, y_tr, y_te = train_test_split(
        data.x, data.y, train_size=train_size, random_state=seed
    )
    linear = LinearRegression().fit(X_tr, y_tr)
    table = importance_table(linear, X_tr, X_te, y_te, n_repeats=n_repeats, seed=seed)
    S_tr, S_te = standardize_columns(X_tr, X_te)
    y_mean, y_std = y_tr.mean(), y_tr.std()
    mlp = fit_mlp(S_tr, (y_tr - y_mean) / y_std, mlp_alpha, seed)
    net = mlp_to_torch(mlp)
    with torch.no_grad():
        copy_error = np.abs(net(torch.from_numpy(S_te)).numpy().ravel() - mlp.predict(S_te)).max()
    z_te = (y_te - y_mean) / y_std
    return {
        "names": list(data.feature_names),
        "linear": table,
        "linear_r2": linear.score(X_te, y_te),
        "coef_std": standardized_coefficients(linear.coef_, X_tr),
        "boot": bootstrap_coefficients(S_tr, y_tr, n_boot=200, seed=seed),
        "single_r2": np.array([np.corrcoef(s, y_tr)[0, 1] ** 2 for s in S_tr.T]),
        "mlp": {
            "grad_x_input": np.abs(gradient_x_input(net, S_te)).mean(axis=0),
            "permutation": permutation_scores(mlp, S_te, z_te, n_repeats, seed)["mean"],
        },
        "mlp_r2": mlp.score(S_te, z_te),
        "net": net,
        "S_test": S_te,
        "copy_error": float(copy_error),
    }


def fit_mlp(X, y, alpha: float = 30.0, seed: int = 0):
    """scikit-learn's ``MLPRegressor``: 32 ReLU units, L2 penalty ``alpha``, fitted by L-BFGS."""
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(
        hidden_layer_sizes=(32,), alpha=alpha, solver="lbfgs", max_iter=2000, random_state=seed
    )
    return mlp.fit(X, y)
