"""Notebook 12: weight normalisation.

Weight normalisation (Salimans and Kingma 2016) writes every weight vector as a
length times a direction, ``w = g * v / ||v||``, and trains ``g`` and ``v``
instead of ``w``. In the notebook's order:

* :class:`WeightNormLinear` is that layer from scratch; it agrees exactly with
  ``torch.nn.utils.parametrizations.weight_norm`` (:func:`torch_weight_norm`).
* :class:`NormalizedLinear` normalises the rows with ``F.normalize`` and has
  no ``g``: a different layer, whose outputs can never exceed ``||x||``.
* :func:`neuron_figure`: one weight-normalised neuron, direction vs length.
* :func:`data_dependent_init` is the paper's initialisation, which makes the
  first batch's pre-activations zero-mean and unit-variance, exactly what
  batch normalisation would output on that batch; :func:`lr_sweep` trains a
  plain and a weight-normalised MLP on MNIST from the same initial function
  over a grid of learning rates, and :func:`norm_growth_run` follows ``||v||``
  and ``g`` through one run.
* :func:`power_iteration` estimates the largest singular value, the quantity
  that spectral normalisation (Miyato et al. 2018) divides by.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from . import config, data, models, viz

__all__ = [
    "NormalizedLinear",
    "WeightNormLinear",
    "best_learning_rate",
    "breast_cancer_2d",
    "data_dependent_init",
    "direction_step_factors",
    "first_quarter_loss",
    "fit_to_teacher",
    "last_quarter_loss",
    "lr_comparison_figure",
    "lr_sweep",
    "neuron_figure",
    "neuron_metrics",
    "norm_growth_figure",
    "norm_growth_run",
    "power_iteration",
    "sgd_step_losses",
    "starting_pair",
    "sweep_table",
    "torch_weight_norm",
    "weight_norm_parts",
    "with_weight_norm",
]


# --------------------------------------------------------------------------- the layers


class WeightNormLinear(nn.Module):
    """A linear layer with weight normalisation, from scratch: ``w_i = g_i * v_i / ||v_i||``.

    Each output unit ``i`` has a direction ``v_i`` (a row of ``v``, any length)
    and a length ``g_i``; the effective weight matrix is :attr:`weight`. With
    the default initialisation ``v`` is drawn like ``nn.Linear``'s weight and
    ``g = ||v_i||``, so the layer starts out as that ``nn.Linear``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        base = nn.Linear(in_features, out_features, bias=bias)
        self.v = nn.Parameter(base.weight.detach().clone())
        self.g = nn.Parameter(base.weight.detach().norm(dim=1))
        self.bias = nn.Parameter(base.bias.detach().clone()) if bias else None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> WeightNormLinear:
        """The weight-normalised layer that computes exactly what ``linear`` computes now."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        layer = layer.to(device=linear.weight.device, dtype=linear.weight.dtype)
        with torch.no_grad():
            layer.v.copy_(linear.weight)
            layer.g.copy_(linear.weight.norm(dim=1))
            if linear.bias is not None:
                layer.bias.copy_(linear.bias)
        return layer

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight ``g[:, None] * v / ||v||`` (norm of each row of ``v``)."""
        return self.g[:, None] * self.v / self.v.norm(dim=1, keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def torch_weight_norm(linear: nn.Linear) -> nn.Linear:
    """A copy of ``linear`` with PyTorch's weight normalisation (``parametrizations.weight_norm``).

    ``dim=0`` gives one ``g`` per output unit, as in :class:`WeightNormLinear`.
    The original layer is not modified.
    """
    return parametrizations.weight_norm(copy.deepcopy(linear), name="weight", dim=0)


def weight_norm_parts(module: nn.Module) -> tuple[nn.Parameter, nn.Parameter]:
    """``(g, v)`` of a layer with weight normalisation: PyTorch's parametrisation
    (``parametrizations.weight.original0``, ``g`` of shape ``(out, 1)``, and
    ``original1``) or :class:`WeightNormLinear` (``g`` of shape ``(out,)``)."""
    if isinstance(module, WeightNormLinear):
        return module.g, module.v
    p = module.parametrizations.weight
    return p.original0, p.original1


# --------------------------------------------------------------------------- what g adds


class NormalizedLinear(nn.Module):
    """A linear layer whose weight rows are scaled to length 1 (``F.normalize``), with no ``g``.

    Every output unit computes ``v_i . x / ||v_i|| + b_i``, so by Cauchy-Schwarz
    ``|output_i - b_i| <= ||x||`` whatever ``v`` is: the layer has lost the
    ability to choose the scale of its weights. It is *not* weight normalisation.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        base = nn.Linear(in_features, out_features, bias=bias)
        self.v = nn.Parameter(base.weight.detach().clone())
        self.bias = nn.Parameter(base.bias.detach().clone()) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight: the rows of ``v`` scaled to unit length."""
        return F.normalize(self.v, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def fit_to_teacher(
    layer: nn.Module, x: torch.Tensor, teacher: torch.Tensor, steps: int = 300, lr: float = 0.05
) -> float:
    """Fit ``layer`` (no bias) to the outputs ``x @ teacher.T`` with Adam; return the final MSE."""
    y = x @ teacher.T
    optimizer = torch.optim.Adam(layer.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(layer(x), y)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return F.mse_loss(layer(x), y).item()


# --------------------------------------------------------------------------- a neuron with g and v


@lru_cache(maxsize=1)
def breast_cancer_2d() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Two standardised features of the breast-cancer data (569 tumours), labels, feature names."""
    ds = data.load_sklearn("breast_cancer", standardize=True)
    names = ["worst radius", "worst concave points"]
    cols = [ds.feature_names.index(n) for n in names]
    return ds.x[:, cols], ds.y.astype(np.float64), names


def _direction(angle: float) -> np.ndarray:
    return np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])


def neuron_metrics(angle: float, g: float) -> dict[str, float]:
    """Accuracy and log-loss of ``p = sigmoid(g * v/||v|| . x)`` with ``v`` at ``angle`` degrees."""
    x, y, _ = breast_cancer_2d()
    z = g * (x @ _direction(angle))
    p = 1.0 / (1.0 + np.exp(-z))
    eps = 1e-12
    log_loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    return {"accuracy": float(np.mean((z > 0) == (y == 1))), "log_loss": float(log_loss)}


def neuron_figure(angle: float = 225.0, g: float = 2.0) -> Figure:
    """A weight-normalised neuron on two tumour features: the direction sets the boundary,
    ``g`` how steeply the probability changes across it. Accuracy and log-loss in the title."""
    x, y, names = breast_cancer_2d()
    m = neuron_metrics(angle, g)
    direction = _direction(angle)
    grid = np.linspace(-3.5, 3.5, 141)
    gx, gy = np.meshgrid(grid, grid)
    prob = 1.0 / (1.0 + np.exp(-g * (gx * direction[0] + gy * direction[1])))
    fig, axes = viz.figure(size=(5.6, 4.6))
    ax = axes[0, 0]
    im = ax.contourf(gx, gy, prob, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.5)
    fig.colorbar(im, ax=ax, label="p(benign)")
    for label, marker, text in ((0, "x", "malignant"), (1, "o", "benign")):
        pts = x[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=8, marker=marker, c="k", alpha=0.5, label=text)
    ax.arrow(0, 0, direction[0], direction[1], width=0.04, color="tab:green")
    ax.set_xlim(-3.5, 3.5)
    ax.set_ylim(-3.5, 3.5)
    ax.set_xlabel(f"{names[0]} (standardised)")
    ax.set_ylabel(f"{names[1]} (standardised)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(
        f"angle {angle:.0f}°, g = {g:.2g}: accuracy {m['accuracy']:.1%}, "
        f"log-loss {m['log_loss']:.3f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- initialisation


def data_dependent_init(model: nn.Module, x: torch.Tensor, eps: float = 1e-8) -> nn.Module:
    """Salimans and Kingma's initialisation, in place: unit-variance pre-activations on ``x``.

    Layer by layer, with ``t = x . v/||v||`` the pre-activation of each unit on
    the batch, set ``g = 1/std(t)`` and ``b = -mean(t)/std(t)``, so that
    ``g * t + b`` has mean 0 and variance 1 on this batch: what batch
    normalisation would output. Works for weight-normalised layers (made with
    :func:`torch_weight_norm`, :class:`WeightNormLinear`) and, for comparison,
    for plain ``nn.Linear`` layers (their rows are rescaled the same way, so
    both kinds of network start from the same function). Other modules are
    applied as they are. Returns ``model``.
    """
    h = x
    with torch.no_grad():
        for module in model.children() if isinstance(model, nn.Sequential) else [model]:
            if isinstance(module, nn.Linear | WeightNormLinear):
                normed = isinstance(module, WeightNormLinear) or parametrize.is_parametrized(
                    module, "weight"
                )
                v = weight_norm_parts(module)[1] if normed else module.weight
                direction = v / v.norm(dim=1, keepdim=True)
                t = h @ direction.T
                mean, std = t.mean(0), t.std(0, unbiased=False) + eps
                if normed:
                    g = weight_norm_parts(module)[0]
                    g.copy_((1.0 / std).view_as(g))
                else:
                    module.weight.copy_(direction / std[:, None])
                module.bias.copy_(-mean / std)
            h = module(h)
    return model


# --------------------------------------------------------------------------- training comparison


def with_weight_norm(model: nn.Sequential) -> nn.Sequential:
    """A copy of ``model`` with PyTorch's weight normalisation on every ``nn.Linear``."""
    model = copy.deepcopy(model)
    for module in model:
        if isinstance(module, nn.Linear):
            parametrizations.weight_norm(module, name="weight", dim=0)
    return model


def starting_pair(x: torch.Tensor, seed: int | None = None) -> dict[str, nn.Sequential]:
    """A 784-256-128-10 ReLU MLP (:func:`course_lib.models.mlp`) given
    :func:`data_dependent_init` on ``x``, as it is (``"plain"``) and with weight
    normalisation (``"weight norm"``): the same function, two parametrisations."""
    base = models.mlp([784, 256, 128, 10], seed=config.resolve_seed(seed))
    return {
        "plain": data_dependent_init(copy.deepcopy(base), x),
        "weight norm": data_dependent_init(with_weight_norm(base), x),
    }


def sgd_step_losses(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    momentum: float = 0.9,
    seed: int | None = None,
    on_step: Callable[[nn.Module], None] | None = None,
) -> np.ndarray:
    """One epoch of SGD on cross-entropy in batches of 128; the loss of every step.

    ``on_step(model)``, if given, is called after every step.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    order = torch.randperm(
        len(x), generator=torch.Generator().manual_seed(config.resolve_seed(seed))
    )
    losses = []
    for start in range(0, len(x), 128):
        idx = order[start : start + 128]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(model)
    return np.array(losses)


@lru_cache(maxsize=4)
def lr_sweep(
    seeds: tuple[int, ...] = (0, 1),
    n_train: int = 6000,
    lrs: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3),
) -> dict:
    """Per-step training losses of the :func:`starting_pair` over learning rates and seeds.

    For each seed both networks start from the same function (initialised on
    the first 512 of ``n_train`` MNIST images drawn with that seed) and train
    for one epoch (:func:`sgd_step_losses`, momentum 0.9). Returns ``{"lrs",
    "seeds", "plain", "weight norm"}``; the last two map each learning rate to
    a ``(seeds, steps)`` array (a diverged run holds NaN or inf).
    """
    result: dict = {"lrs": list(lrs), "seeds": list(seeds), "plain": {}, "weight norm": {}}
    for lr in lrs:
        runs: dict[str, list[np.ndarray]] = {"plain": [], "weight norm": []}
        for seed in seeds:
            (x, y), _ = data.mnist_tensors(n_train, 0, seed=seed)
            for kind, model in starting_pair(x[:512], seed).items():
                with np.errstate(all="ignore"):
                    runs[kind].append(sgd_step_losses(model, x, y, lr, seed=seed))
        for kind in runs:
            result[kind][lr] = np.array(runs[kind])
    return result


def _quarter_mean(losses: np.ndarray, first: bool) -> np.ndarray:
    losses = np.atleast_2d(losses)
    quarter = max(1, losses.shape[1] // 4)
    with np.errstate(all="ignore"):
        mean = (losses[:, :quarter] if first else losses[:, -quarter:]).mean(1)
    return np.where(np.isfinite(mean), mean, np.inf)


def first_quarter_loss(losses: np.ndarray) -> np.ndarray:
    """Mean loss over the first quarter of the steps, one value per run (row); inf if diverged."""
    return _quarter_mean(losses, first=True)


def last_quarter_loss(losses: np.ndarray) -> np.ndarray:
    """Mean loss over the last quarter of the steps, one value per run (row); inf if diverged."""
    return _quarter_mean(losses, first=False)


def sweep_table(sweep: dict) -> str:
    """Per learning rate, the mean first- and last-quarter losses of both networks."""
    rows = [f"{'lr':>6} | first quarter: plain  weight norm | last quarter: plain  weight norm"]
    for lr in sweep["lrs"]:
        first = [first_quarter_loss(sweep[k][lr]).mean() for k in ("plain", "weight norm")]
        last = [last_quarter_loss(sweep[k][lr]).mean() for k in ("plain", "weight norm")]
        rows.append(f"{lr:>6g} | {first[0]:20.2f} {first[1]:12.3g} | "
                    f"{last[0]:19.3f} {last[1]:12.3g}")  # fmt: skip
    return "\n".join(rows)


def best_learning_rate(sweep: dict, kind: str) -> float:
    """The learning rate of ``sweep`` with the lowest last-quarter loss (mean over seeds)."""
    return min(sweep["lrs"], key=lambda lr: float(last_quarter_loss(sweep[kind][lr]).mean()))


def lr_comparison_figure(lr: float = 0.01, sweep: dict | None = None) -> Figure:
    """Training loss per step of the plain and the weight-normalised MLP at learning rate ``lr``.

    ``sweep`` is the result of :func:`lr_sweep` (computed with its defaults
    when omitted); ``lr`` is rounded to the nearest learning rate of the
    sweep. The title gives both mean losses over the first quarter of training.
    """
    sweep = sweep if sweep is not None else lr_sweep()
    lrs = np.array(sweep["lrs"])
    lr = float(lrs[np.argmin(np.abs(np.log(lrs) - math.log(lr)))])
    fig, axes = viz.figure(size=(6.6, 4.0))
    ax = axes[0, 0]
    early = {}
    for kind, colour in (("plain", "tab:blue"), ("weight norm", "tab:orange")):
        losses = sweep[kind][lr]
        early[kind] = float(np.mean(first_quarter_loss(losses)))
        for k, run in enumerate(losses):
            with np.errstate(invalid="ignore"):
                shown = np.clip(run, 0, 5)
            ax.plot(shown, color=colour, lw=1, alpha=0.8, label=kind if k == 0 else None)
    ax.set_ylim(0, 5)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("training loss (clipped at 5)")
    ax.legend(fontsize=8)
    ax.set_title(
        f"lr = {lr:g}: first-quarter loss plain {early['plain']:.2f} vs weight norm "
        f"{early['weight norm']:.2f}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- ||v|| and g in a run


def _unit_parts(layers: list[nn.Module]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per weight-normalised layer, copies of ``(g_i, ||v_i||)`` over its units."""
    parts = [weight_norm_parts(m) for m in layers]
    return [(g.detach().view(-1).clone(), v.detach().norm(dim=1)) for g, v in parts]


def direction_step_factors(model: nn.Module) -> np.ndarray:
    """Per weight-normalised layer, the mean over units of ``(g / ||v||)^2``: how many times
    larger an SGD step moves the direction of ``w`` than it would without the reparametrisation."""
    layers = [m for m in model.modules() if parametrize.is_parametrized(m, "weight")]
    return np.array([float(((g / v) ** 2).mean()) for g, v in _unit_parts(layers)])


def norm_growth_run(
    lr: float, momentum: float = 0.9, n_train: int = 6000, seed: int | None = None
) -> dict:
    """One epoch of the weight-normalised network of :func:`starting_pair` at ``lr``, watching ``v``.

    Returns the ``loss`` of every step and, per layer (columns) before the first
    step and after every step (rows): ``v_norm``, the mean ``||v_i||`` over the
    layer's units, and ``step_factor``, the mean ``(g_i / ||v_i||)^2``
    (:func:`direction_step_factors`); ``shrink`` (per step and layer) is the
    largest relative decrease of any unit's ``||v_i||`` in that step (0: none shrank).
    """
    seed = config.resolve_seed(seed)
    (x, y), _ = data.mnist_tensors(n_train, 0, seed=seed)
    model = starting_pair(x[:512], seed)["weight norm"]
    layers = [m for m in model if isinstance(m, nn.Linear)]
    history = [_unit_parts(layers)]
    with np.errstate(all="ignore"):
        losses = sgd_step_losses(
            model, x, y, lr, momentum, seed, on_step=lambda _: history.append(_unit_parts(layers))
        )
    shrink = [
        [
            float((1 - now / before).clamp(min=0).max())
            for (_, before), (_, now) in zip(a, b, strict=True)
        ]
        for a, b in zip(history, history[1:], strict=False)
    ]
    return {
        "lr": lr,
        "momentum": momentum,
        "loss": losses,
        "v_norm": np.array([[float(v.mean()) for _, v in step] for step in history]),
        "step_factor": np.array(
            [[float(((g / v) ** 2).mean()) for g, v in step] for step in history]
        ),
        "shrink": np.array(shrink),
    }


def norm_growth_figure(runs: list[dict]) -> Figure:
    """Loss, mean ``||v||`` and mean ``(g / ||v||)^2`` per step (log scales), one colour per
    layer and one line style per run (solid, dashed, ...)."""
    fig, axes = viz.figure(1, 3, size=(12.0, 3.6))
    styles = ["-", "--", ":", "-."]
    for k, run in enumerate(runs):
        style = styles[k % len(styles)]
        label = f"lr {run['lr']:g}, momentum {run['momentum']:g}"
        axes[0, 0].semilogy(run["loss"], style, color="k", lw=1, label=label)
        for j in range(run["v_norm"].shape[1]):
            axes[0, 1].semilogy(run["v_norm"][:, j], style, color=f"C{j}", lw=1)
            layer = f"layer {j + 1}" if k == 0 else None
            axes[0, 2].semilogy(run["step_factor"][:, j], style, color=f"C{j}", lw=1, label=layer)
    titles = ("training loss", "mean ||v|| of each layer", "direction step factor (g / ||v||)²")
    for ax, title in zip(axes[0], titles, strict=True):
        ax.set_xlabel("SGD step")
        ax.set_title(title, fontsize=10)
    axes[0, 0].legend(fontsize=7)
    axes[0, 2].legend(fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- spectral norm


def power_iteration(w: torch.Tensor, iterations: int = 100, seed: int = 0) -> float:
    """Estimate the largest singular value of ``w`` by power iteration.

    Alternately ``v = W^T u / ||W^T u||`` and ``u = W v / ||W v||``; then
    ``sigma = u . W v``. Spectral normalisation runs one such step per forward
    pass and divides the weight by ``sigma``.
    """
    w = w.detach().double()
    u = torch.randn(w.shape[0], generator=torch.Generator().manual_seed(seed), dtype=w.dtype)
    u = u / u.norm()
    v = w.T @ u
    for _ in range(iterations):
        v = w.T @ u
        v = v / v.norm()
        u = w @ v
        u = u / u.norm()
    return float(u @ w @ v)
