"""Notebook 03: gradient descent.

The update ``w <- w - lr * grad`` from scratch, its stability limit
``lr < 2 / L`` (``L`` the largest eigenvalue of the Hessian), batch vs
mini-batch vs stochastic updates, momentum, and a from-scratch SGD optimiser
that matches ``torch.optim.SGD`` exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from . import viz

__all__ = [
    "Quadratic",
    "ScratchSGD",
    "classify",
    "gradient_descent",
    "minibatch_curves",
    "minibatch_figure",
    "momentum_race",
    "regression_losses",
    "mse_hessian",
    "stability_limit",
    "steps_to_reach",
    "trajectory_figure",
    "ILL_CONDITIONED",
]


# --------------------------------------------------------------------------- quadratic bowls


@dataclass(frozen=True)
class Quadratic:
    """The loss ``0.5 (w - w_star)^T H (w - w_star)`` with a symmetric positive-definite ``H``."""

    H: np.ndarray
    w_star: np.ndarray

    def loss(self, w) -> float | np.ndarray:
        d = np.asarray(w, dtype=np.float64) - self.w_star
        return 0.5 * np.einsum("...i,ij,...j->...", d, self.H, d)

    def grad(self, w) -> np.ndarray:
        return self.H @ (np.asarray(w, dtype=np.float64) - self.w_star)

    @property
    def L(self) -> float:
        """Largest eigenvalue of the Hessian (the curvature along the steepest direction)."""
        return float(np.linalg.eigvalsh(self.H)[-1])

    @property
    def mu(self) -> float:
        """Smallest eigenvalue of the Hessian."""
        return float(np.linalg.eigvalsh(self.H)[0])


def _rotated(eigenvalues: Sequence[float], angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    return R @ np.diag(eigenvalues) @ R.T


#: The bowl of the notebook's slider: curvatures 1 and 10, tilted by 30 degrees.
ILL_CONDITIONED = Quadratic(_rotated([1.0, 10.0], np.pi / 6), np.array([1.0, 0.5]))
START = np.array([-2.0, 2.0])


def stability_limit(H) -> float:
    """The largest stable learning rate of gradient descent on a quadratic: ``2 / lambda_max(H)``."""
    return 2.0 / float(np.linalg.eigvalsh(np.asarray(H, dtype=np.float64))[-1])


def mse_hessian(X) -> np.ndarray:
    """Hessian of the MSE ``mean((X w + b - y)^2)`` in ``(w, b)``: ``(2/n) A^T A`` with ``A = [X, 1]``."""
    X = np.asarray(X, dtype=np.float64)
    A = np.hstack([X, np.ones((len(X), 1))])
    return 2.0 / len(X) * A.T @ A


# --------------------------------------------------------------------------- the update rule


def gradient_descent(
    grad: Callable[[np.ndarray], np.ndarray],
    w0,
    lr: float,
    steps: int,
    momentum: float = 0.0,
) -> np.ndarray:
    """Run ``steps`` updates from ``w0``; return the trajectory ``(steps + 1, d)``.

    Without momentum: ``w <- w - lr * grad(w)``. With momentum ``m`` (the "heavy
    ball", in PyTorch's convention): ``v <- m * v + grad(w)``, ``w <- w - lr * v``.
    """
    w = np.array(w0, dtype=np.float64)
    v = np.zeros_like(w)
    path = [w.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            v = momentum * v + grad(w)
            w = w - lr * v
            path.append(w.copy())
    return np.array(path)


def classify(losses: Sequence[float]) -> str:
    """``"diverges"``, ``"oscillates"`` (converging with overshoots) or ``"converges"``."""
    losses = np.asarray(losses, dtype=np.float64)
    if not np.isfinite(losses[-1]) or losses[-1] > losses[0]:
        return "diverges"
    if np.any(np.diff(losses) > 0):
        return "oscillates"
    return "converges"


def steps_to_reach(losses: Sequence[float], tol: float) -> int | None:
    """First step at which the loss falls below ``tol`` (``None`` if never)."""
    below = np.nonzero(np.asarray(losses) < tol)[0]
    return int(below[0]) if below.size else None


def _overshoots(path: np.ndarray, q: Quadratic, tol: float = 1e-9) -> bool:
    """True if the coordinate along the steepest eigenvector changes sign (zig-zag)."""
    _, vecs = np.linalg.eigh(q.H)
    along = (path - q.w_star) @ vecs[:, -1]
    along = np.where(np.abs(along) > tol, along, 0.0)
    return bool(np.any(along[1:] * along[:-1] < 0))


def trajectory_figure(lr: float = 0.1, momentum: float = 0.0, steps: int = 30) -> Figure:
    """Gradient-descent path on :data:`ILL_CONDITIONED` and the loss per step.

    The title gives the learning rate, the stability limit ``2/L`` and the outcome.
    """
    q = ILL_CONDITIONED
    path = gradient_descent(q.grad, START, lr, steps, momentum)
    losses = q.loss(path)
    outcome = classify(losses)
    if outcome != "diverges" and _overshoots(path, q):
        outcome = "oscillates" if outcome == "converges" else outcome
    fig, axes = viz.figure(1, 2, size=(10, 4))
    ax = axes[0, 0]
    g1, g2 = np.meshgrid(np.linspace(-3, 4, 120), np.linspace(-2.5, 3.5, 120))
    grid_loss = q.loss(np.stack([g1, g2], -1))
    ax.contour(g1, g2, grid_loss, levels=np.geomspace(0.01, 80, 14), cmap="viridis", linewidths=0.8)
    shown = path[np.all(np.abs(path) < 50, axis=1)]
    ax.plot(shown[:, 0], shown[:, 1], "o-", color="tab:red", ms=3, lw=1)
    ax.plot(*q.w_star, "k*", ms=12)
    ax.set(xlim=(-3, 4), ylim=(-2.5, 3.5), xlabel="$w_1$", ylabel="$w_2$", aspect="equal")
    axes[0, 1].semilogy(np.where(np.isfinite(losses) & (losses > 0), losses, np.nan), "o-", ms=3)
    axes[0, 1].set(xlabel="step", ylabel="loss")
    fig.suptitle(
        f"lr = {lr:.3g} (limit 2/L = {2 / q.L:.3g}), momentum {momentum:.2f}: {outcome}, "
        f"loss after {steps} steps = {losses[-1]:.2g}"
    )
    fig.tight_layout()
    return fig


def regression_losses(X, y, lr: float, steps: int) -> np.ndarray:
    """Full-batch gradient descent on the MSE of linear regression from zero weights.

    Returns the training MSE before each step and after the last (``steps + 1`` values).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    A = np.hstack([X, np.ones((len(X), 1))])
    path = gradient_descent(
        lambda th: 2.0 / len(A) * A.T @ (A @ th - y), np.zeros(A.shape[1]), lr, steps
    )
    with np.errstate(over="ignore", invalid="ignore"):
        return np.mean((path @ A.T - y) ** 2, axis=1)


def momentum_race(
    kappa: float = 100.0, tol: float = 1e-6, max_steps: int = 5000
) -> dict[str, int | None]:
    """Steps to bring a 2-D quadratic with condition number ``kappa`` below ``tol``.

    Compares plain gradient descent at its best rate ``1/L``, momentum 0.9 at the
    same rate, and Polyak's tuned heavy ball (``lr = 4/(sqrt(L)+sqrt(mu))^2``,
    ``momentum = ((sqrt(kappa)-1)/(sqrt(kappa)+1))^2``).
    """
    q = Quadratic(_rotated([1.0, kappa], 0.3), np.array([1.0, 0.5]))
    L, mu = q.L, q.mu
    tuned_lr = 4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2
    tuned_m = ((np.sqrt(L / mu) - 1) / (np.sqrt(L / mu) + 1)) ** 2
    runs = {
        "gradient descent": (1.0 / L, 0.0),
        "momentum 0.9": (1.0 / L, 0.9),
        "tuned heavy ball": (tuned_lr, tuned_m),
    }
    return {
        name: steps_to_reach(q.loss(gradient_descent(q.grad, START, lr, max_steps, m)), tol)
        for name, (lr, m) in runs.items()
    }


# --------------------------------------------------------------------------- mini-batches


def minibatch_curves(
    X,
    y,
    batch_sizes: Iterable[int],
    lr: float,
    epochs: int,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Linear regression by gradient descent on the MSE with several batch sizes.

    Each run starts from zero weights and sees every example once per epoch.
    Returns, per batch size, the full training loss after every update
    (index 0 = before training), as a function of examples processed.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    A = np.hstack([X, np.ones((len(X), 1))])
    n = len(A)
    curves = {}
    for b in batch_sizes:
        rng = np.random.default_rng(seed)
        theta = np.zeros(A.shape[1])
        losses = [np.mean((A @ theta - y) ** 2)]
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, b):
                idx = order[start : start + b]
                grad = 2.0 / len(idx) * A[idx].T @ (A[idx] @ theta - y[idx])
                theta = theta - lr * grad
                losses.append(np.mean((A @ theta - y) ** 2))
        curves[b] = np.array(losses)
    return curves


def minibatch_figure(curves: dict[int, np.ndarray], n: int, optimum: float) -> Figure:
    """Excess training loss vs. epochs (examples seen / n) for each batch size."""
    fig, axes = viz.figure(size=(7, 4))
    ax = axes[0, 0]
    for b, losses in curves.items():
        updates_per_epoch = int(np.ceil(n / b))
        epochs = np.arange(len(losses)) / updates_per_epoch
        ax.semilogy(
            epochs, losses - optimum, lw=1, label=f"batch {b} ({updates_per_epoch} updates/epoch)"
        )
    ax.set(xlabel="epochs (passes over the data)", ylabel="training MSE − optimum")
    ax.legend(fontsize=8)
    final = {b: losses[-1] - optimum for b, losses in curves.items()}
    best = min(final, key=final.get)
    ax.set_title(
        f"after {epochs[-1]:.0f} epochs the lowest excess loss is batch {best}: {final[best]:.3g}"
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- an optimiser from scratch


class ScratchSGD:
    """Stochastic gradient descent with momentum, written out: what ``torch.optim.SGD`` does.

    ``step()`` applies, to every parameter ``p`` with a gradient ``g``:
    ``buf <- momentum * buf + g`` (``buf = g`` on the first step), ``p <- p - lr * buf``.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, momentum: float = 0.0):
        if lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.params = list(params)
        self.lr = lr
        self.momentum = momentum
        self.buffers: dict[int, torch.Tensor] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.momentum:
                if i not in self.buffers:
                    self.buffers[i] = g.clone()
                else:
                    self.buffers[i].mul_(self.momentum).add_(g)
                g = self.buffers[i]
            p.add_(g, alpha=-self.lr)
