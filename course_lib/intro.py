"""Notebook 01: what a weight is.

A single neuron ``y_hat = w * x + b`` fitted by hand to real data (body-mass
index vs. diabetes progression), the same model as ``nn.Linear``, linear
regression solved in closed form (and scored on held-out patients), gradient
descent heading for the same weights, and weights as a model's entire learnt
state: what a hidden layer's activation adds, listing, saving and reloading.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import cache, config, data, viz

__all__ = [
    "closed_form_least_squares",
    "collapse_gap",
    "collapsed_linear",
    "diabetes_bmi",
    "fit_linear_gd",
    "held_out_mse",
    "mse",
    "neuron_figure",
    "parameter_table",
    "predict",
    "save_and_reload",
]


# --------------------------------------------------------------------------- data


@lru_cache(maxsize=1)
def diabetes_bmi() -> tuple[np.ndarray, np.ndarray]:
    """Body-mass index (kg/m^2) and disease progression one year later, 442 patients.

    From scikit-learn's diabetes dataset (Efron et al. 2004), unscaled.
    """
    ds = data.load_sklearn("diabetes", scaled=False)
    bmi = ds.x[:, ds.feature_names.index("bmi")]
    return bmi.copy(), ds.y.astype(np.float64)


# --------------------------------------------------------------------------- one neuron


def predict(x, w: float, b: float) -> np.ndarray:
    """The neuron's output ``w * x + b`` for every input in ``x``."""
    return w * np.asarray(x, dtype=np.float64) + b


def mse(y_true, y_pred) -> float:
    """Mean squared error ``mean((y_true - y_pred) ** 2)``."""
    diff = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    return float(np.mean(diff**2))


def neuron_figure(w: float = 5.0, b: float = 20.0) -> Figure:
    """Scatter of BMI vs progression with the neuron's line; the MSE is in the title."""
    x, y = diabetes_bmi()
    loss = mse(y, predict(x, w, b))
    (w_opt, b_opt), _ = closed_form_least_squares(x[:, None], y)
    fig, axes = viz.figure(size=(6.4, 4.2))
    ax = axes[0, 0]
    ax.scatter(x, y, s=10, alpha=0.5, label="patients")
    grid = np.linspace(x.min() - 1, x.max() + 1, 50)
    ax.plot(grid, predict(grid, w, b), "r-", lw=2, label=f"your neuron: {w:.2f}·x + {b:.1f}")
    ax.plot(grid, predict(grid, w_opt[0], b_opt), "k--", lw=1, label="least squares")
    ax.set_ylim(0, 400)
    ax.set_xlabel("body-mass index (kg/m²)")
    ax.set_ylabel("disease progression after one year")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"w = {w:.2f}, b = {b:.1f}: MSE = {loss:,.0f}")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- linear regression


def closed_form_least_squares(X, y) -> tuple[tuple[np.ndarray, float], float]:
    """Least-squares weights and bias from the normal equations, and the training MSE.

    Solves ``(A^T A) theta = A^T y`` with ``A = [X, 1]`` (a column of ones for
    the bias). Returns ``((w, b), mse)``.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    A = data.with_bias_column(X)
    theta = np.linalg.solve(A.T @ A, A.T @ y)
    w, b = theta[:-1], float(theta[-1])
    return (w, b), mse(y, X @ w + b)


def held_out_mse(X, y, folds: int = 5, seed: int | None = None) -> float:
    """Mean squared error of least squares on patients it was not fitted to.

    ``folds``-fold cross-validation (shuffled with ``seed``, default ``COURSE_SEED``):
    each fold is predicted by the closed-form weights of the other folds.
    """
    from sklearn.model_selection import KFold

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    split = KFold(folds, shuffle=True, random_state=config.resolve_seed(seed))
    errors = np.empty(len(y))
    for train, test in split.split(X):
        (w, b), _ = closed_form_least_squares(X[train], y[train])
        errors[test] = y[test] - (X[test] @ w + b)
    return float(np.mean(errors**2))


def fit_linear_gd(
    X, y, steps: int = 2000, lr: float = 0.1, seed: int | None = None
) -> tuple[nn.Linear, list[float]]:
    """Fit ``nn.Linear(d, 1)`` to ``(X, y)`` by full-batch gradient descent on the MSE.

    Starts from PyTorch's random initial weights drawn with ``seed`` (default
    ``COURSE_SEED``). ``X`` should be standardised (zero mean, unit variance per
    column) for this learning rate to be stable. Returns the layer and the loss per step.
    """
    torch.manual_seed(config.resolve_seed(seed))
    Xt = torch.as_tensor(np.asarray(X), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float64)[:, None]
    layer = nn.Linear(Xt.shape[1], 1).double()
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(layer(Xt), yt)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return layer, losses


# --------------------------------------------------------------------------- weights as state


def collapsed_linear(model: nn.Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    """The single linear map ``x W^T + b`` that ``model``'s Linear layers make *without*
    the activations between them: ``W = W_k ... W_1``, ``b`` carried through likewise."""
    W, b = None, None
    for layer in (m for m in model if isinstance(m, nn.Linear)):
        w_l, b_l = layer.weight.detach(), layer.bias.detach()
        W, b = (w_l, b_l) if W is None else (w_l @ W, w_l @ b + b_l)
    if W is None:
        raise ValueError("the model has no nn.Linear layer")
    return W, b


def collapse_gap(model: nn.Sequential, x) -> float:
    """Largest difference between ``model``'s outputs on ``x`` and those of
    :func:`collapsed_linear`, relative to the outputs' spread.

    About 1e-7 (float32 rounding) when the layers have no activation between them:
    stacked linear layers are one linear layer. Far from 0 with ReLU in between.
    """
    from .training import predict as model_outputs

    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    W, b = collapsed_linear(model)
    out = model_outputs(model, x)
    return float((out - (x @ W.T + b)).abs().max() / out.std())


def parameter_table(model: nn.Module) -> list[tuple[str, tuple[int, ...], int]]:
    """``(name, shape, count)`` for every tensor of the model's ``state_dict``."""
    return [(name, tuple(t.shape), t.numel()) for name, t in model.state_dict().items()]


def save_and_reload(model: nn.Module, path: str | Path, fresh: nn.Module) -> nn.Module:
    """Save ``model.state_dict()`` to ``path`` and load it into ``fresh`` (same architecture)."""
    cache.save_atomic(model.state_dict(), path)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    return fresh
