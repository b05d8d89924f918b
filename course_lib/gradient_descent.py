"""Notebook 03: gradient descent.

The update ``w <- w - lr * grad`` from scratch, its stability limit
``lr < 2 / L`` (``L`` the largest eigenvalue of the Hessian at a minimum),
batch vs mini-batch vs stochastic updates and a decaying learning rate,
heavy-ball and Nesterov momentum, a from-scratch SGD optimiser that matches
``torch.optim.SGD`` exactly, and the loss of a network along straight lines
through its weight space (not convex).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, viz
from .data import with_bias_column

__all__ = [
    "ILL_CONDITIONED",
    "Quadratic",
    "ScratchSGD",
    "classify",
    "gradient_descent",
    "line_losses",
    "linear_decay",
    "minibatch_curves",
    "minibatch_figure",
    "momentum_race",
    "mse_hessian",
    "line_figure",
    "permuted_hidden_units",
    "regression_losses",
    "stability_limit",
    "steps_to_reach",
    "trajectory_figure",
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
    A = with_bias_column(X)
    return 2.0 / len(A) * A.T @ A


# --------------------------------------------------------------------------- the update rule


def gradient_descent(
    grad: Callable[[np.ndarray], np.ndarray],
    w0,
    lr: float,
    steps: int,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> np.ndarray:
    """Run ``steps`` updates from ``w0``; return the trajectory ``(steps + 1, d)``.

    Without momentum: ``w <- w - lr * grad(w)``. With momentum ``m`` (the "heavy
    ball", in PyTorch's convention): ``v <- m * v + grad(w)``, ``w <- w - lr * v``.
    Nesterov's variant steps along ``grad(w) + m * v`` instead of ``v``: it
    applies the new velocity once more, a look-ahead (PyTorch's ``nesterov=True``).
    """
    w = np.array(w0, dtype=np.float64)
    v = np.zeros_like(w)
    path = [w.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            g = grad(w)
            v = momentum * v + g
            w = w - lr * (g + momentum * v if nesterov else v)
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


def trajectory_figure(
    lr: float = 0.1, momentum: float = 0.0, steps: int = 30, nesterov: bool = False
) -> Figure:
    """Gradient-descent path on :data:`ILL_CONDITIONED` and the loss per step.

    The title gives the learning rate, the stability limit ``2/L`` and the outcome.
    """
    q = ILL_CONDITIONED
    path = gradient_descent(q.grad, START, lr, steps, momentum, nesterov)
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
    kind = "Nesterov momentum" if nesterov and momentum else "momentum"
    fig.suptitle(
        f"lr = {lr:.3g} (limit 2/L = {2 / q.L:.3g}), {kind} {momentum:.2f}: {outcome}, "
        f"loss after {steps} steps = {losses[-1]:.2g}"
    )
    fig.tight_layout()
    return fig


def regression_losses(X, y, lr: float, steps: int) -> np.ndarray:
    """Full-batch gradient descent on the MSE of linear regression from zero weights.

    Returns the training MSE before each step and after the last (``steps + 1`` values).
    """
    A = with_bias_column(X)
    y = np.asarray(y, dtype=np.float64)
    path = gradient_descent(
        lambda th: 2.0 / len(A) * A.T @ (A @ th - y), np.zeros(A.shape[1]), lr, steps
    )
    with np.errstate(over="ignore", invalid="ignore"):
        return np.mean((path @ A.T - y) ** 2, axis=1)


def momentum_race(
    kappa: float = 100.0, tol: float = 1e-6, max_steps: int = 5000
) -> dict[str, int | None]:
    """Steps to bring a 2-D quadratic with condition number ``kappa`` below ``tol``.

    Compares plain gradient descent at its best rate ``1/L``, heavy-ball and
    Nesterov momentum 0.9 at the same rate, and Polyak's tuned heavy ball
    (``lr = 4/(sqrt(L)+sqrt(mu))^2``, ``momentum = ((sqrt(kappa)-1)/(sqrt(kappa)+1))^2``).
    """
    q = Quadratic(_rotated([1.0, kappa], 0.3), np.array([1.0, 0.5]))
    L, mu = q.L, q.mu
    tuned_lr = 4.0 / (np.sqrt(L) + np.sqrt(mu)) ** 2
    tuned_m = ((np.sqrt(L / mu) - 1) / (np.sqrt(L / mu) + 1)) ** 2
    runs = {
        "gradient descent": (1.0 / L, 0.0, False),
        "momentum 0.9": (1.0 / L, 0.9, False),
        "Nesterov 0.9": (1.0 / L, 0.9, True),
        "tuned heavy ball": (tuned_lr, tuned_m, False),
    }
    return {
        name: steps_to_reach(q.loss(gradient_descent(q.grad, START, lr, max_steps, m, nag)), tol)
        for name, (lr, m, nag) in runs.items()
    }


# --------------------------------------------------------------------------- mini-batches


def linear_decay(step: int, total: int) -> float:
    """The learning-rate factor ``1 - step / total``: from 1 at the start down to 0 at ``total``
    (``torch.optim.lr_scheduler.LinearLR(start_factor=1, end_factor=0, total_iters=total)``)."""
    return 1.0 - min(step, total) / total


def minibatch_curves(
    X,
    y,
    batch_sizes: Iterable[int],
    lr: float,
    epochs: int,
    seed: int | None = None,
    decay: bool = False,
) -> dict[int, np.ndarray]:
    """Linear regression by gradient descent on the MSE with several batch sizes.

    Each run starts from zero weights and sees every example once per epoch, in
    an order shuffled with ``seed`` (default ``COURSE_SEED``). With ``decay``
    the learning rate falls linearly to 0 over the run (:func:`linear_decay`).
    Returns, per batch size, the full training loss after every update
    (index 0 = before training), as a function of examples processed.
    """
    A = with_bias_column(X)
    y = np.asarray(y, dtype=np.float64)
    n = len(A)
    curves = {}
    for b in batch_sizes:
        rng = np.random.default_rng(config.resolve_seed(seed))
        total = epochs * int(np.ceil(n / b))
        theta = np.zeros(A.shape[1])
        losses = [np.mean((A @ theta - y) ** 2)]
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, b):
                idx = order[start : start + b]
                grad = 2.0 / len(idx) * A[idx].T @ (A[idx] @ theta - y[idx])
                step_lr = lr * linear_decay(len(losses) - 1, total) if decay else lr
                theta = theta - step_lr * grad
                losses.append(np.mean((A @ theta - y) ** 2))
        curves[b] = np.array(losses)
    return curves


def minibatch_figure(
    curves: dict[int, np.ndarray], n: int, optimum: float, decayed: np.ndarray | None = None
) -> Figure:
    """Excess training loss vs. epochs (examples seen / n) for each batch size.

    ``decayed`` (optional) is a batch-1 curve run with a decaying learning rate,
    drawn dashed.
    """
    fig, axes = viz.figure(size=(7, 4))
    ax = axes[0, 0]
    for b, losses in curves.items():
        updates_per_epoch = int(np.ceil(n / b))
        epochs = np.arange(len(losses)) / updates_per_epoch
        ax.semilogy(
            epochs, losses - optimum, lw=1, label=f"batch {b} ({updates_per_epoch} updates/epoch)"
        )
    if decayed is not None:
        epochs = np.arange(len(decayed)) / n
        ax.semilogy(epochs, decayed - optimum, "k--", lw=1, label="batch 1, lr decayed to 0")
    ax.set(xlabel="epochs (passes over the data)", ylabel="training MSE − optimum")
    ax.legend(fontsize=8)
    final = {b: losses[-1] - optimum for b, losses in curves.items()}
    best = min(final, key=final.get)
    ax.set_title(
        f"after {epochs[-1]:.0f} epochs the lowest excess loss at a fixed lr is batch {best}: "
        f"{final[best]:.3g}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- an optimiser from scratch


class ScratchSGD:
    """Stochastic gradient descent with momentum, written out: what ``torch.optim.SGD`` does.

    ``step()`` applies, to every parameter ``p`` with a gradient ``g``:
    ``buf <- momentum * buf + g`` (``buf = g`` on the first step), then
    ``p <- p - lr * buf``, or with ``nesterov`` ``p <- p - lr * (g + momentum * buf)``.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
    ):
        if lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and not momentum:
            raise ValueError("Nesterov momentum needs a momentum > 0")
        self.params = list(params)
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
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
                buf = self.buffers[i]
                g = g.add(buf, alpha=self.momentum) if self.nesterov else buf
            p.add_(g, alpha=-self.lr)


# --------------------------------------------------------------------------- not a bowl


def line_losses(start: nn.Module, end: nn.Module, x, y, alphas) -> np.ndarray:
    """Cross-entropy of the network with weights ``(1 - a) * start + a * end`` for each ``a``.

    ``start`` and ``end`` are two weight settings of the same architecture; ``a``
    outside [0, 1] extends the line beyond them.
    """
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    probe = copy.deepcopy(end)
    p0, p1 = list(start.parameters()), list(end.parameters())
    losses = []
    with torch.no_grad():
        for a in alphas:
            for p, w0, w1 in zip(probe.parameters(), p0, p1, strict=True):
                p.copy_((1 - a) * w0 + a * w1)
            losses.append(nn.functional.cross_entropy(probe(x), y).item())
    return np.array(losses)


def permuted_hidden_units(model: nn.Sequential) -> nn.Sequential:
    """A copy of a one-hidden-layer MLP with its hidden units in reverse order.

    Rows of the first layer's weight and bias and columns of the second layer's
    weight move together, so the network computes the same function with other weights.
    """
    first, second = (m for m in model if isinstance(m, nn.Linear))
    twin = copy.deepcopy(model)
    t_first, t_second = (m for m in twin if isinstance(m, nn.Linear))
    order = torch.arange(first.out_features - 1, -1, -1)
    with torch.no_grad():
        t_first.weight.copy_(first.weight[order])
        t_first.bias.copy_(first.bias[order])
        t_second.weight.copy_(second.weight[:, order])
    return twin


def line_figure(alphas, from_init, twin_alphas, to_twin) -> Figure:
    """Loss along the line initial -> trained weights (left) and trained -> permuted twin (right)."""
    fig, axes = viz.figure(1, 2, size=(10, 3.6))
    axes[0, 0].plot(alphas, from_init, "o-", ms=3)
    axes[0, 0].axvline(0, color="grey", lw=0.8)
    axes[0, 0].axvline(1, color="grey", lw=0.8)
    axes[0, 0].set(xlabel="a: (1 - a)·initial + a·trained", ylabel="training loss",
                   title="from the initial to the trained weights")  # fmt: skip
    axes[0, 1].plot(twin_alphas, to_twin, "o-", ms=3, color="tab:red")
    axes[0, 1].set(xlabel="a: (1 - a)·trained + a·permuted twin", ylabel="training loss",
                   title="between two equally good minima")  # fmt: skip
    fig.suptitle(
        f"mid-way between the twins the loss is {to_twin[len(to_twin) // 2]:.2f}, "
        f"at either end {to_twin[0]:.2f}: not convex"
    )
    fig.tight_layout()
    return fig
