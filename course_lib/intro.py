"""Notebook 01: what a weight is.

A single neuron ``y_hat = w * x + b`` fitted by hand to real data (body-mass
index vs. diabetes progression), the same model as ``nn.Linear``, linear
regression solved in closed form, and weights as a model's entire learnt state.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import data, exercises, viz

__all__ = [
    "closed_form_least_squares",
    "count_parameters",
    "diabetes_bmi",
    "fit_linear_gd",
    "mlp",
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
    A = np.hstack([X, np.ones((len(X), 1))])
    theta = np.linalg.solve(A.T @ A, A.T @ y)
    w, b = theta[:-1], float(theta[-1])
    return (w, b), mse(y, X @ w + b)


def fit_linear_gd(
    X, y, steps: int = 2000, lr: float = 0.1, seed: int = 0
) -> tuple[nn.Linear, list[float]]:
    """Fit ``nn.Linear(d, 1)`` to ``(X, y)`` by full-batch gradient descent on the MSE.

    ``X`` should be standardised (zero mean, unit variance per column) for
    this learning rate to be stable. Returns the layer and the loss per step.
    """
    torch.manual_seed(seed)
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


def mlp(sizes: list[int], seed: int = 0) -> nn.Sequential:
    """A ReLU multi-layer perceptron with layer widths ``sizes`` (input first, output last)."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {sizes}")
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar weights (and biases) in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def parameter_table(model: nn.Module) -> list[tuple[str, tuple[int, ...], int]]:
    """``(name, shape, count)`` for every tensor of the model's ``state_dict``."""
    return [(name, tuple(t.shape), t.numel()) for name, t in model.state_dict().items()]


def save_and_reload(model: nn.Module, path: str | Path, fresh: nn.Module) -> nn.Module:
    """Save ``model.state_dict()`` to ``path`` and load it into ``fresh`` (same architecture)."""
    data.save_atomic(model.state_dict(), path)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    return fresh


# --------------------------------------------------------------------------- exercises

_RNG = np.random.default_rng(1)
_Y_TRUE = _RNG.normal(150, 70, size=40)
_Y_PRED = _Y_TRUE + _RNG.normal(10, 40, size=40)


def _solution_mse(y_true, y_pred):
    return np.mean((y_true - y_pred) ** 2)


@exercises.register(
    "01.1",
    title="mean squared error",
    hint="Subtract, square each difference, then average: np.mean((y_true - y_pred) ** 2).",
    solution=_solution_mse,
)
def _check_mse(answer):
    got = exercises.call(answer, _Y_TRUE, _Y_PRED)
    expected = _solution_mse(_Y_TRUE, _Y_PRED)
    problem = exercises.compare(got, expected, name="your MSE")
    if problem and np.isclose(float(np.ravel(got)[0]), expected * len(_Y_TRUE)):
        return "you returned the sum of squared errors: divide by the number of examples."
    if problem and np.isclose(float(np.ravel(got)[0]), np.sqrt(expected)):
        return "you returned the root of the MSE (RMSE): leave out the square root."
    return problem


_X_LS = _RNG.normal(size=(60, 3))
_Y_LS = _X_LS @ np.array([2.0, -1.0, 0.5]) + 3.0 + _RNG.normal(0, 0.1, size=60)


def _solution_least_squares(X, y):
    A = np.hstack([X, np.ones((len(X), 1))])  # a column of ones carries the bias
    theta = np.linalg.solve(A.T @ A, A.T @ y)  # the normal equations
    return theta[:-1], theta[-1]


@exercises.register(
    "01.2",
    title="least squares in closed form",
    hint="Append a column of ones to X (for the bias), then solve (A^T A) theta = A^T y "
    "with np.linalg.solve; the last entry of theta is the bias.",
    solution=_solution_least_squares,
)
def _check_least_squares(answer):
    got = exercises.call(answer, _X_LS, _Y_LS)
    if not (isinstance(got, tuple | list) and len(got) == 2):
        return "return a pair (w, b): the weight vector and the bias."
    w_exp, b_exp = _solution_least_squares(_X_LS, _Y_LS)
    problem = exercises.compare(got[0], w_exp, name="your weight vector w", rtol=1e-4)
    if problem:
        return problem + " Did you include a column of ones for the bias?"
    return exercises.compare(got[1], b_exp, name="your bias b", rtol=1e-4)


def _solution_count(sizes):
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=False))


@exercises.register(
    "01.3",
    title="counting the weights of an MLP",
    hint="A Linear layer from n_in to n_out has an n_out x n_in weight matrix and n_out biases.",
    solution=_solution_count,
)
def _check_count(answer):
    for sizes in ([64, 32, 10], [784, 300, 100, 10], [3, 1]):
        got = exercises.call(answer, list(sizes))
        expected = _solution_count(sizes)
        if np.ndim(got) != 0:
            return f"return a single number, got {type(got).__name__}."
        if got != expected:
            weights_only = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
            if got == weights_only:
                return f"for sizes {sizes} you counted the weights but not the biases."
            return f"for sizes {sizes} you got {got}, expected {expected}."
    return None
