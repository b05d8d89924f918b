"""Notebook 02: weight initialisation.

Why weights cannot start equal (symmetry), and how the scale of the initial
weights decides whether signals and gradients survive a deep network:
constant, small N(0, 0.01^2), large N(0, 1), Xavier/Glorot (Glorot and Bengio
2010, normal and uniform), Kaiming/He (He et al. 2015) and PyTorch's own default,
written from scratch and compared with ``torch.nn.init`` and ``nn.Linear``/``nn.Conv2d``;
per-layer statistics forward and backward, saturated and dead units, and training
under each scheme.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, data, models, training, viz

__all__ = [
    "ACTIVATIONS",
    "SCHEMES",
    "DepthStats",
    "deep_mlp",
    "depth_stats",
    "fans",
    "histogram_figure",
    "init_",
    "kaiming_std",
    "pytorch_default_",
    "pytorch_default_std",
    "relu_layer_factor",
    "repeated_ratios",
    "scheme_std",
    "stats_figure",
    "symmetry_experiment",
    "train_under_schemes",
    "training_figure",
    "xavier_std",
]

#: Initialisation schemes of the notebook, with a short description.
SCHEMES = {
    "zeros": "all weights 0",
    "constant": "all weights 0.05",
    "small": "N(0, 0.01²)",
    "large": "N(0, 1)",
    "xavier": "Xavier/Glorot: N(0, 2/(fan_in+fan_out))",
    "kaiming": "Kaiming/He: N(0, 2/fan_in)",
    "pytorch": "PyTorch's default: U(±1/√fan_in)",
}


#: The activations compared here (a selection of :data:`course_lib.models.ACTIVATIONS`).
ACTIVATIONS = {name: models.ACTIVATIONS[name] for name in ("relu", "tanh", "linear")}


# --------------------------------------------------------------------------- from scratch


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``: ``(out, in)`` or ``(out, in, *kernel)``.

    A convolution kernel's receptive field multiplies both: every output unit
    sees ``in * kh * kw`` inputs and every input feeds ``out * kh * kw`` outputs.
    """
    if len(shape) < 2:
        raise ValueError(
            f"fan-in and fan-out need a weight with 2+ dimensions, got shape {tuple(shape)}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def xavier_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Glorot and Bengio's standard deviation ``gain * sqrt(2 / (fan_in + fan_out))``."""
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


def kaiming_std(fan_in: int, gain: float = math.sqrt(2.0)) -> float:
    """He et al.'s standard deviation ``gain / sqrt(fan_in)`` (gain sqrt(2) for ReLU)."""
    return gain / math.sqrt(fan_in)


def pytorch_default_std(fan_in: int) -> float:
    """The std of ``nn.Linear``'s and ``nn.Conv2d``'s default weights: ``1 / sqrt(3 * fan_in)``.

    PyTorch calls ``kaiming_uniform_(w, a=sqrt(5))``: He's formula with the gain
    ``sqrt(2 / (1 + a^2)) = sqrt(1/3)`` of a leaky ReLU of slope ``a``. Computed in
    that order, so that sampling matches PyTorch to the last bit.
    """
    slope = math.sqrt(5.0)
    return math.sqrt(2.0 / (1 + slope**2)) / math.sqrt(fan_in)


def scheme_std(scheme: str, shape: Sequence[int]) -> float:
    """Standard deviation of the random schemes (``small``, ``large``, ``xavier``,
    ``kaiming``, ``pytorch``)."""
    fan_in, fan_out = fans(shape)
    stds = {
        "small": 0.01,
        "large": 1.0,
        "xavier": xavier_std(fan_in, fan_out),
        "kaiming": kaiming_std(fan_in),
        "pytorch": pytorch_default_std(fan_in),
    }
    if scheme not in stds:
        raise ValueError(f"scheme {scheme!r} is not random; choose one of {sorted(stds)}")
    return stds[scheme]


def relu_layer_factor(scheme: str, width: int = 256) -> float:
    """What one Linear + ReLU layer of ``width`` inputs multiplies the signal's second
    moment by: ``width * Var(w) / 2`` (ReLU keeps half of it). 1 for He, 1/2 for Xavier
    on square layers, 1/6 for PyTorch's default."""
    return width * scheme_std(scheme, (width, width)) ** 2 / 2


def init_(
    weight: torch.Tensor, scheme: str, gain: float = 1.0, generator=None, uniform: bool = False
) -> torch.Tensor:
    """Fill ``weight`` in place according to ``scheme`` (see :data:`SCHEMES`), times ``gain``.

    Random schemes draw from N(0, std^2), or with ``uniform`` from U(-a, a) with
    ``a = sqrt(3) * std`` (the uniform distribution on [-a, a] has variance a^2/3).
    ``pytorch`` is always uniform.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {list(SCHEMES)}")
    with torch.no_grad():
        if scheme == "zeros":
            return weight.zero_()
        if scheme == "constant":
            return weight.fill_(0.05 * gain)
        std = gain * scheme_std(scheme, weight.shape)
        if uniform or scheme == "pytorch":
            bound = math.sqrt(3.0) * std
            return weight.uniform_(-bound, bound, generator=generator)
        return weight.normal_(0.0, std, generator=generator)


def pytorch_default_(layer: nn.Linear | nn.Conv2d) -> nn.Module:
    """Re-draw ``layer``'s weight and bias as its constructor does, from scratch.

    Weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (:func:`pytorch_default_std`); bias:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too. Uses the global random generator, like
    PyTorch: after the same ``torch.manual_seed`` it reproduces a new layer exactly.
    """
    init_(layer.weight, "pytorch")
    if layer.bias is not None:
        bound = 1 / math.sqrt(fans(layer.weight.shape)[0])
        with torch.no_grad():
            layer.bias.uniform_(-bound, bound)
    return layer


# --------------------------------------------------------------------------- deep networks


def deep_mlp(
    depth: int,
    width: int = 256,
    activation: str = "relu",
    scheme: str = "kaiming",
    gain: float = 1.0,
    n_in: int | None = None,
    n_out: int | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """``depth`` Linear layers (zero biases) each followed by ``activation``.

    Weights drawn by :func:`init_` from ``seed`` (default ``COURSE_SEED``).
    ``n_in``/``n_out`` set the input and output sizes (default ``width``);
    the last layer has no activation when ``n_out`` is given (it produces logits).
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {list(ACTIVATIONS)}")
    generator = torch.Generator().manual_seed(config.resolve_seed(seed))
    sizes = [n_in or width] + [width] * (depth - 1) + [n_out or width]
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        init_(linear.weight, scheme, gain, generator)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not (n_out is not None and i == depth - 1):
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@dataclass
class DepthStats:
    """Per-layer statistics of one forward and backward pass (index 0 = first layer)."""

    preactivation_var: np.ndarray  # variance of each Linear layer's output (before the activation)
    activation_std: np.ndarray  # std of each layer's output after the activation
    gradient_std: np.ndarray  # std of the loss gradient w.r.t. each layer's weight
    saturated: np.ndarray  # share of outputs with |output| > 0.99 (meaningful for tanh)
    dead: np.ndarray  # share of units whose output is exactly 0 for every example (ReLU)
    activations: list[np.ndarray]  # a sample of each layer's outputs, for histograms

    def ratio(self, which: str = "preactivation") -> float:
        """Last layer's value divided by the first layer's.

        ``which`` is ``"preactivation"`` (variance), ``"activation"`` (std) or ``"gradient"`` (std).
        """
        values = {
            "preactivation": self.preactivation_var,
            "activation": self.activation_std,
            "gradient": self.gradient_std,
        }[which]
        return float(values[-1] / values[0]) if values[0] > 0 else float("nan")


def depth_stats(
    depth: int = 50,
    activation: str = "relu",
    scheme: str = "kaiming",
    gain: float = 1.0,
    width: int = 256,
    batch: int = 256,
    seed: int | None = None,
) -> DepthStats:
    """Push a batch of N(0, 1) inputs through a deep MLP and back; record per-layer statistics.

    Runs in float64 so that exploding values stay finite long enough to be measured.
    The loss is the mean squared output against a random target. ``seed``
    (default ``COURSE_SEED``) draws the weights, the inputs and the target.
    """
    seed = config.resolve_seed(seed)
    torch.manual_seed(seed)
    model = deep_mlp(depth, width, activation, scheme, gain, seed=seed).double()
    x = torch.randn(batch, width, dtype=torch.float64)
    pre, outputs = [], []
    h = x
    for module in model:
        h = module(h)
        (pre if isinstance(module, nn.Linear) else outputs).append(h)
    loss = ((h - torch.randn_like(h)) ** 2).mean()
    loss.backward()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        pre_var = np.array([p.var().item() for p in pre])
        act_std = np.array([o.std().item() for o in outputs])
        grad_std = np.array([m.weight.grad.std().item() for m in linears])
        saturated = np.array([(o.abs() > 0.99).double().mean().item() for o in outputs])
        dead = np.array([(o == 0).all(dim=0).double().mean().item() for o in outputs])
        sample = [o[:64].flatten().numpy().copy() for o in outputs]
    return DepthStats(pre_var, act_std, grad_std, saturated, dead, sample)


def repeated_ratios(
    scheme: str, activation: str = "relu", depth: int = 50, runs: int = 5, seed: int | None = None
) -> np.ndarray:
    """Variance ratio last/first layer of ``runs`` independent networks (seeds
    ``seed * runs`` to ``seed * runs + runs - 1``, ``seed`` defaulting to ``COURSE_SEED``)."""
    first = config.resolve_seed(seed) * runs
    return np.array(
        [depth_stats(depth, activation, scheme, seed=first + k).ratio() for k in range(runs)]
    )


_DRAWABLE_MAX = 1e250


def stats_figure(
    scheme: str = "kaiming", activation: str = "relu", depth: int = 50, gain: float = 1.0
) -> Figure:
    """Forward (pre-activation variance) and backward (weight-gradient std) per layer, log scale.

    The title gives the forward variance ratio last/first layer and the backward
    gradient ratio first/last layer.
    """
    stats = depth_stats(depth, activation, scheme, gain)
    layers = np.arange(1, depth + 1)
    fig, axes = viz.figure(1, 2, size=(10, 3.6))
    for ax, values, label in (
        (axes[0, 0], stats.preactivation_var, "forward: pre-activation variance"),
        (axes[0, 1], stats.gradient_std, "backward: weight-gradient std"),
    ):
        # float64 overflows near 1e308, and a log axis cannot add its margin beyond it
        drawable = (values > 0) & (values < _DRAWABLE_MAX)
        ax.semilogy(layers, np.where(drawable, values, np.nan), "o-", ms=3)
        if not drawable.all():
            ax.text(
                0.02,
                0.02,
                f"{(~drawable).sum()} layers at 0, beyond {_DRAWABLE_MAX:.0e} "
                "or overflowed: not drawn",
                transform=ax.transAxes,
                fontsize=8,
            )
        ax.set_xlabel("layer")
        ax.set_ylabel(label)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        backward = 1 / stats.ratio("gradient") if stats.gradient_std[-1] > 0 else float("nan")
    fig.suptitle(
        f"{activation}, {scheme} init × {gain:.2f}, {depth} layers: "
        f"variance last/first = {stats.ratio():.3g}, gradient first/last = {backward:.3g}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def histogram_figure(
    scheme: str = "kaiming",
    activation: str = "relu",
    depth: int = 50,
    layers: Sequence[int] = (1, 10, 25, 50),
    gain: float = 1.0,
) -> Figure:
    """Histograms of the activations of a few layers (1-based layer numbers).

    Each panel names its layer's share of saturated outputs (tanh, |output| > 0.99)
    or of dead units (ReLU, 0 for every example in the batch).
    """
    stats = depth_stats(depth, activation, scheme, gain)
    share, what = (stats.saturated, "saturated") if activation == "tanh" else (stats.dead, "dead")
    chosen = {
        f"layer {k}: {share[k - 1]:.0%} {what}": stats.activations[k - 1]
        for k in layers
        if 1 <= k <= depth
    }
    title = f"{activation}, {scheme} init × {gain:.2f}: activations"
    return viz.histograms(chosen, bins=50, title=title, ncols=len(chosen))


# --------------------------------------------------------------------------- symmetry


def symmetry_experiment(
    scheme: str = "constant", hidden: int = 16, epochs: int = 20, seed: int | None = None
) -> dict:
    """Train a one-hidden-layer tanh MLP on scikit-learn's digits from ``scheme``.

    ``seed`` (default ``COURSE_SEED``) draws the split, the weights and the batch
    order. Returns the hidden layer's weights before and after training, the largest
    difference between any two hidden units' incoming weights, and the test accuracy.
    """
    seed = config.resolve_seed(seed)
    digits = data.load_sklearn("digits")
    x = digits.x / 16.0
    idx = np.random.default_rng(seed).permutation(len(x))
    train, test = idx[:1400], idx[1400:]
    model = deep_mlp(2, hidden, "tanh", scheme, n_in=64, n_out=10, seed=seed)
    before = model[0].weight.detach().clone()
    history = training.fit(
        model,
        (x[train], digits.y[train]),
        epochs=epochs,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        val=(x[test], digits.y[test]),
        batch_size=64,
        device="cpu",
        progress=False,
        seed=seed,
    )
    after = model[0].weight.detach()
    spread = (after - after[0]).abs().max().item()
    return {
        "before": before,
        "after": after.clone(),
        "unit_spread": spread,
        "accuracy": history.val_accuracy[-1],
    }


# --------------------------------------------------------------------------- training


def train_under_schemes(
    schemes: Sequence[str],
    activation: str = "relu",
    depth: int = 8,
    width: int = 128,
    n_train: int | None = 4000,
    epochs: int = 3,
    lr: float = 0.01,
    seed: int | None = None,
) -> dict[str, training.History]:
    """Train the same deep MLP on MNIST from each initialisation scheme (SGD with momentum).

    ``seed`` (default ``COURSE_SEED``) draws the subsets, the weights and the batch order.
    """
    seed = config.resolve_seed(seed)
    train, test = data.mnist_tensors(n_train, 2000, seed=seed)
    histories = {}
    for scheme in schemes:
        model = deep_mlp(depth, width, activation, scheme, n_in=784, n_out=10, seed=seed)
        histories[scheme] = training.fit(
            model,
            train,
            epochs=epochs,
            optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
            val=test,
            batch_size=64,
            device="cpu",
            progress=False,
            seed=seed,
        )
    return histories


def training_figure(histories: dict[str, training.History], title: str = "") -> Figure:
    """Training loss and test accuracy per epoch for each scheme."""
    fig, axes = viz.figure(1, 2, size=(10, 3.6))
    for scheme, h in histories.items():
        epochs = np.arange(1, h.epochs + 1)
        loss = np.where(np.isfinite(h.loss), h.loss, np.nan)
        axes[0, 0].plot(epochs, loss, "o-", ms=3, label=scheme)
        axes[0, 1].plot(epochs, h.val_accuracy, "o-", ms=3, label=scheme)
    axes[0, 0].set(xlabel="epoch", ylabel="training loss", yscale="log")
    axes[0, 1].set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1))
    axes[0, 1].legend(fontsize=8)
    best = max(histories, key=lambda s: histories[s].val_accuracy[-1])
    fig.suptitle(title or f"best: {best} at {histories[best].val_accuracy[-1]:.1%} test accuracy")
    fig.tight_layout()
    return fig
