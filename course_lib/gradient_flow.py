"""Notebook 11: gradient flow, in the notebook's order.

* :class:`GradientTracker` records with hooks the gradient of every layer's
  weights, the backward signal ``dL/dz`` at every Linear layer's output and the
  share of saturated or dead units; it removes its hooks when it is done.
* :func:`deep_mlp` builds deep sigmoid, tanh or ReLU networks: the plain stack
  (:func:`course_lib.models.mlp` with notebook 02's initialisation), residual or
  batch-normalised; :func:`gradient_profile` measures one backward pass of them.
* :func:`clip_grad_norm` clips the global gradient norm from scratch, as
  ``torch.nn.utils.clip_grad_norm_`` does (notebook 14 uses it too).
* :class:`UpdateRatioTracker` measures the update-to-weight ratio
  ``||W_after - W_before|| / ||W_before||`` of every layer at every optimiser
  step (Karpathy's diagnostic: about 1e-3 is healthy).
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, data, initialization, models, training, viz

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "GradStats",
    "GradientTracker",
    "ResidualBlock",
    "UpdateRatioTracker",
    "clip_grad_norm",
    "clipping_runs",
    "count_hooks",
    "dead_fraction",
    "deep_mlp",
    "digits_batch",
    "digits_train_val",
    "first_last_ratios",
    "global_grad_norm",
    "gradient_flow_figure",
    "gradient_profile",
    "layer_labels",
    "linear_layers",
    "saturated_fraction",
    "update_ratio_figure",
    "update_ratio_run",
]

#: Activation functions of :func:`deep_mlp`.
ACTIVATIONS = {name: models.ACTIVATIONS[name] for name in ("sigmoid", "tanh", "relu")}
#: Architectures of :func:`deep_mlp`: plain stack, residual blocks, BatchNorm before each activation.
ARCHITECTURES = ("plain", "residual", "batchnorm")
_ACTIVATION_NAMES = {cls: name for name, cls in ACTIVATIONS.items()}


# --------------------------------------------------------------------------- what is recorded


@dataclass(frozen=True)
class GradStats:
    """Statistics of one gradient tensor: mean, standard deviation, L2 norm, largest |value|."""

    mean: float
    std: float
    norm: float
    max: float

    @classmethod
    def of(cls, grad: torch.Tensor) -> GradStats:
        """The statistics of ``grad`` (computed in float64, without touching autograd)."""
        g = grad.detach().double()
        std = g.std(unbiased=False).item() if g.numel() > 1 else 0.0
        return cls(g.mean().item(), std, g.norm().item(), g.abs().max().item())


def saturated_fraction(output: torch.Tensor, activation: str) -> float:
    """Share of the outputs within 1 % of the activation's range from its ends, as in notebook 02:
    ``|tanh| > 0.99``; sigmoid below 0.005 or above 0.995. A ReLU never saturates: 0."""
    if activation == "relu":
        return 0.0
    out = output.detach() if activation == "tanh" else 2 * output.detach() - 1  # sigmoid
    return (out.abs() > 0.99).double().mean().item()


def dead_fraction(output: torch.Tensor) -> float:
    """Share of units (columns) whose output is exactly 0 for every example of the batch."""
    return (output.detach() == 0).all(dim=0).double().mean().item()


class _HookOwner:
    """Holds hook handles (``_handles``); :meth:`detach` or leaving ``with`` removes them all."""

    def detach(self) -> None:
        """Remove every hook this object registered."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __exit__(self, *exc) -> None:
        self.detach()


class PassLog:
    """Values that hooks record, one dict ``{name: value}`` per pass (forward or backward):
    a pass starts after :meth:`new_pass` or when a name of the current pass comes again."""

    def __init__(self, names: Iterable[str]):
        self.names = list(names)
        self.passes: list[dict] = []
        self._fresh = True

    def new_pass(self) -> None:
        self._fresh = True

    def add(self, name: str, value) -> None:
        if self._fresh or not self.passes or name in self.passes[-1]:
            self.passes.append({})
            self._fresh = False
        self.passes[-1][name] = value

    def column(self, field: str, step: int = -1) -> np.ndarray:
        """``field`` of the values of pass ``step``, one per name (NaN where none was recorded)."""
        if not self.passes:
            raise RuntimeError("nothing recorded yet: run a pass with the tracker attached")
        record = self.passes[step]
        return np.array([getattr(record[n], field) if n in record else np.nan for n in self.names])


#: What an activation layer's units did on one batch: share saturated, share dead.
UnitStats = namedtuple("UnitStats", ["saturated", "dead"])


# --------------------------------------------------------------------------- the tracker


class GradientTracker(_HookOwner):
    """Per-layer gradient statistics of a model, recorded by hooks.

    ``GradientTracker(model).backward(loss)`` attaches the hooks, runs
    ``loss.backward()`` and removes them; inside ``with GradientTracker(model,
    signals=True) as tracker:`` the hooks are in place for the forward pass too
    (which ``signals`` need) and are removed at the end of the block.

    * ``weights``: the gradient of each Linear layer's weight (tensor hooks),
      one :class:`GradStats` per layer and backward pass.
    * ``signals`` (with ``signals=True``): the gradient of the loss with respect
      to each Linear layer's *output* ``z``, the signal that flows backwards
      from layer to layer.
    * ``units`` (with ``signals=True``): per activation module and forward pass,
      the share of saturated and of dead units (:class:`UnitStats`).
    """

    def __init__(self, model: nn.Module, signals: bool = False):
        self.model = model
        layers = [name for name, _ in linear_layers(model)]
        activations = [n for n, m in model.named_modules() if type(m) in _ACTIVATION_NAMES]
        self.weights = PassLog(f"{name}.weight" for name in layers)
        self.signals = PassLog(layers if signals else [])
        self.units = PassLog(activations if signals else [])
        self._handles: list = []

    # -- attaching and detaching

    @property
    def attached(self) -> bool:
        """True while the hooks are in place."""
        return bool(self._handles)

    def attach(self) -> GradientTracker:
        """Register the hooks (once; attaching twice does nothing)."""
        if self.attached:
            return self
        params = dict(self.model.named_parameters())
        modules = dict(self.model.named_modules())
        for name in self.weights.names:
            hook = _recorder(self.weights, name, GradStats.of)
            self._handles.append(params[name].register_hook(hook))
        for name in self.signals.names:
            self._handles.append(modules[name].register_forward_hook(self._signal_hook(name)))
        for name in self.units.names:
            self._handles.append(modules[name].register_forward_hook(self._unit_hook(name)))
        for log in (self.weights, self.signals, self.units):
            log.new_pass()
        return self

    def __enter__(self) -> GradientTracker:
        return self.attach()

    # -- the hooks

    def _signal_hook(self, name: str):
        record = _recorder(self.signals, name, GradStats.of)

        def forward_hook(module, inputs, output) -> None:
            if output.requires_grad:  # the tensor hook lives as long as this forward's graph
                output.register_hook(record)

        return forward_hook

    def _unit_hook(self, name: str):
        kind = _ACTIVATION_NAMES[type(dict(self.model.named_modules())[name])]

        def forward_hook(module, inputs, output) -> None:
            stats = UnitStats(saturated_fraction(output, kind), dead_fraction(output))
            self.units.add(name, stats)

        return forward_hook

    # -- running and reading

    def backward(self, loss: torch.Tensor) -> dict[str, GradStats]:
        """Run ``loss.backward()`` with the hooks attached; return this pass's weight statistics.

        Hooks attached for this call are removed afterwards (a tracker attached
        by ``with`` stays attached).
        """
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("backward() needs the scalar loss tensor of the forward pass")
        was_attached = self.attached
        if self.signals.names and not was_attached:
            raise RuntimeError(
                "the backward signals are only seen when the tracker is attached before the "
                "forward pass: run forward and backward inside `with GradientTracker(model, "
                "signals=True)`"
            )
        self.attach()
        self.weights.new_pass()
        self.signals.new_pass()
        try:
            loss.backward()
        finally:
            if not was_attached:
                self.detach()
        if self.weights._fresh:  # no hook fired: nothing tracked requires a gradient
            self.weights.passes.append({})
        return self.weights.passes[-1]

    def stat(self, stat: str = "norm", step: int = -1) -> np.ndarray:
        """One statistic (mean, std, norm or max) of each tracked weight gradient, first layer first."""
        return self.weights.column(_check_stat(stat), step)

    def signal_stat(self, stat: str = "norm", step: int = -1) -> np.ndarray:
        """One statistic of the signal ``dL/dz`` at each Linear layer's output, first layer first."""
        return self.signals.column(_check_stat(stat), step)

    def unit_stat(self, which: str = "saturated", step: int = -1) -> np.ndarray:
        """The share of ``saturated`` or ``dead`` units of each activation layer, first layer first."""
        if which not in {"saturated", "dead"}:
            raise ValueError(f"which must be 'saturated' or 'dead', got {which!r}")
        return self.units.column(which, step)

    def table(self, step: int = -1) -> str:
        """The weight-gradient statistics of one backward pass as a text table, one row per layer."""
        if not self.weights.passes:
            raise RuntimeError("nothing recorded yet: run a backward pass with the tracker")
        record = self.weights.passes[step]
        rows = [f"{'parameter':<12}{'layer':>10}{'mean':>11}{'std':>11}{'norm':>11}{'max':>11}"]
        for name, label in zip(self.weights.names, layer_labels(self.model), strict=True):
            if name in record:
                s = record[name]
                numbers = "".join(f"{v:>11.2e}" for v in (s.mean, s.std, s.norm, s.max))
                rows.append(f"{name:<12}{label:>10}{numbers}")
        return "\n".join(rows)


def _recorder(log: PassLog, name: str, summarise):
    return lambda grad: log.add(name, summarise(grad))


def _check_stat(stat: str) -> str:
    if stat not in {"mean", "std", "norm", "max"}:
        raise ValueError(f"stat must be mean, std, norm or max, got {stat!r}")
    return stat


def count_hooks(model: nn.Module) -> int:
    """How many hooks are registered on ``model``: tensor hooks on its parameters plus
    forward and backward hooks on its modules (0 for an untouched model)."""
    tensor_hooks = sum(len(p._backward_hooks or {}) for p in model.parameters())
    module_hooks = sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
        for m in model.modules()
    )
    return tensor_hooks + module_hooks


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """``(name, layer)`` for every ``nn.Linear`` of ``model``, in order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]


def layer_labels(model: nn.Module) -> list[str]:
    """``"784→128"`` (inputs→outputs) for every Linear layer of ``model``, in order."""
    return [f"{m.in_features}→{m.out_features}" for _, m in linear_layers(model)]


# --------------------------------------------------------------------------- deep networks


class ResidualBlock(nn.Module):
    """``h + act(linear(h))``: the skip connection carries the signal past the layer."""

    def __init__(self, linear: nn.Linear, activation: str = "relu"):
        super().__init__()
        self.linear = linear
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.linear(x))


def deep_mlp(
    depth: int,
    activation: str = "sigmoid",
    architecture: str = "plain",
    gain: float = 1.0,
    seed: int | None = None,
) -> nn.Sequential:
    """A 64-64-...-64-10 MLP with ``depth`` Linear layers (``depth - 2`` hidden ones).

    ``architecture`` is ``"plain"`` (:func:`course_lib.models.mlp`), ``"residual"``
    (each hidden layer inside a :class:`ResidualBlock`) or ``"batchnorm"``
    (Linear, BatchNorm1d, activation). Weights follow notebook 02
    (:func:`course_lib.initialization.init_`): He for ReLU, Xavier for sigmoid
    and tanh, times ``gain`` (above 1 the signal grows, below 1 it shrinks);
    biases start at 0.
    """
    if depth < 2:
        raise ValueError(f"depth counts the Linear layers and must be at least 2, got {depth}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    seed = config.resolve_seed(seed)
    layers = list(models.mlp([64] * depth + [10], activation, seed=seed))
    hidden = layers[2:-1:2]  # the Linear layers between the first and the last
    if architecture == "residual":
        layers = layers[:2] + [ResidualBlock(lin, activation) for lin in hidden] + layers[-1:]
    elif architecture == "batchnorm":
        blocks = [[lin, nn.BatchNorm1d(64), ACTIVATIONS[activation]()] for lin in hidden]
        layers = layers[:2] + [m for block in blocks for m in block] + layers[-1:]
    model = nn.Sequential(*layers)
    scheme = "kaiming" if activation == "relu" else "xavier"
    generator = torch.Generator().manual_seed(seed)
    for _, layer in linear_layers(model):
        initialization.init_(layer.weight, scheme, gain, generator)
        nn.init.zeros_(layer.bias)
    return model


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    return data.digits_tensors()


def _shuffled_digits(seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = _digits()
    generator = torch.Generator().manual_seed(config.resolve_seed(seed))
    order = torch.randperm(len(x), generator=generator)
    return x[order], y[order]


def digits_batch(n: int = 256, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of ``n`` standardised 8x8 digit images (64 features) and their labels."""
    x, y = _shuffled_digits(seed)
    return x[:n], y[:n]


def digits_train_val(n_train: int = 1400, seed: int | None = None) -> tuple[tuple, tuple]:
    """The standardised digits split at random into ``(x, y)`` for training and the rest for validation."""
    x, y = _shuffled_digits(seed)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


@lru_cache(maxsize=256)
def gradient_profile(
    depth: int,
    activation: str = "sigmoid",
    architecture: str = "plain",
    gain: float = 1.0,
    *,
    seed: int,
) -> dict[str, np.ndarray | float]:
    """One forward and backward pass of a fresh :func:`deep_mlp` on 256 digits drawn with ``seed``.

    Returns, first layer first: ``signal_norms`` (``||dL/dz||`` at each Linear
    layer's output) and ``weight_norms`` (``||dL/dW||``), their first/last
    ratios ``signal_ratio`` and ``weight_ratio``, the shares of ``saturated``
    and ``dead`` units per activation layer, the global gradient norm ``total``,
    the ``loss`` and ``input_growth``, the norm of the last layer's input over
    that of the digits. Cached: the slider demo calls it on every redraw.
    """
    model = deep_mlp(depth, activation, architecture, gain=gain, seed=seed)
    x, y = digits_batch(256, seed)
    with GradientTracker(model, signals=True) as tracker:  # attached before the forward pass
        loss = nn.functional.cross_entropy(model(x), y)
        tracker.backward(loss)
    with torch.no_grad():
        input_growth = (model[:-1](x).norm() / x.norm()).item()
    signals, weights = tracker.signal_stat("norm"), tracker.stat("norm")
    return {
        "signal_norms": signals,
        "weight_norms": weights,
        "signal_ratio": float(signals[0] / signals[-1]),
        "weight_ratio": float(weights[0] / weights[-1]),
        "saturated": tracker.unit_stat("saturated"),
        "dead": tracker.unit_stat("dead"),
        "total": global_grad_norm(model.parameters()),
        "loss": loss.item(),
        "input_growth": input_growth,
    }


def first_last_ratios(cases: dict[str, tuple], seeds, depth: int = 20) -> dict[str, dict]:
    """For each ``name: (activation, architecture, gain)``, the first/last ratios of the
    signal and of the weight gradient over ``seeds``: ``{name: {"signal": array, "weight": array}}``."""
    profiles = {name: [gradient_profile(depth, *case, seed=s) for s in seeds]
                for name, case in cases.items()}  # fmt: skip
    return {name: {kind: np.array([p[f"{kind}_ratio"] for p in ps]) for kind in ("signal", "weight")}
            for name, ps in profiles.items()}  # fmt: skip


def gradient_flow_figure(
    depth: int = 20, activation: str = "sigmoid", architecture: str = "plain", gain: float = 1.0
) -> Figure:
    """Left: per-layer norms (log scale) of the signal dL/dz (solid) and of the weight
    gradient dL/dW (dashed). Right: share of saturated (sigmoid, tanh) or dead (ReLU)
    units per layer. Both first/last ratios in the title."""
    seed = config.resolve_seed(None)  # the demo follows COURSE_SEED
    prof = gradient_profile(int(depth), activation, architecture, float(gain), seed=seed)
    fig, axes = viz.figure(1, 2, size=(10.0, 3.8))
    ax, units = axes[0, 0], axes[0, 1]
    layers = np.arange(1, len(prof["signal_norms"]) + 1)
    tiny = 1e-45  # a norm that underflowed to 0 is drawn at the bottom of the plot
    ax.semilogy(layers, np.maximum(prof["signal_norms"], tiny), "o-", ms=4, label="signal dL/dz")
    ax.semilogy(layers, np.maximum(prof["weight_norms"], tiny), "s--", ms=3, label="dL/dW")
    ax.set(xlabel="Linear layer (1 = input side)", ylabel="gradient norm")
    ax.legend(fontsize=8)
    which = "dead" if activation == "relu" else "saturated"
    units.bar(layers[:-1], 100 * prof[which], color="tab:red" if which == "dead" else "tab:purple")
    top = min(100.0, max(1.0, 120 * prof[which].max()))  # small shares stay visible
    units.set(ylim=(0, top), xlabel="activation layer (1 = input side)", ylabel=f"% {which}")
    fig.suptitle(
        f"{activation}, {architecture}, depth {depth}, gain {gain:g}: first/last signal "
        f"{prof['signal_ratio']:.2g}, weight gradient {prof['weight_ratio']:.2g}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- clipping


def global_grad_norm(parameters: Iterable[torch.Tensor]) -> float:
    """The L2 norm of all gradients together: ``sqrt(sum ||g_i||^2)`` (parameters without grad skipped)."""
    grads = [p.grad.detach().double() for p in parameters if p.grad is not None]
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads))


def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float, eps: float = 1e-6) -> float:
    """Clip the global gradient norm to ``max_norm`` in place, from scratch; return the norm before.

    Every gradient is multiplied by the same factor ``max_norm / (norm + eps)``
    when that factor is below 1, so the direction of the whole gradient is kept
    and only its length shrinks. This is what ``torch.nn.utils.clip_grad_norm_``
    does (same ``eps``).
    """
    params = [p for p in parameters if p.grad is not None]
    total = global_grad_norm(params)
    scale = max_norm / (total + eps)
    if scale < 1.0:
        for p in params:
            p.grad.detach().mul_(scale)
    return total


def clipping_runs(seed: int | None = None) -> dict:
    """A 20-layer ReLU :func:`deep_mlp` (He x 1.2) trained on 1,400 digits for 10 epochs with
    SGD (learning rate 0.05, momentum 0.9), once without clipping and once with the gradient
    norm clipped at 1: ``{None: History, 1.0: History}``, validated on the other 397 digits."""
    seed = config.resolve_seed(seed)
    train, val = digits_train_val(1400, seed)
    runs = {}
    for clip in (None, 1.0):
        net = deep_mlp(20, "relu", gain=1.2, seed=seed)
        sgd = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        runs[clip] = training.fit(net, train, epochs=10, optimizer=sgd, grad_clip=clip,
                                  val=val, batch_size=64, device="cpu", progress=False,
                                  seed=seed)  # fmt: skip
    return runs


# --------------------------------------------------------------------------- update-to-weight ratio


class UpdateRatioTracker(_HookOwner):
    """The update-to-weight ratio ``||W_after - W_before|| / ||W_before||`` per layer and step.

    It hooks into the optimiser (``register_step_pre_hook`` and
    ``register_step_post_hook``), so it works with any optimiser and with
    :func:`course_lib.training.fit`. For plain SGD the update is ``lr * grad``,
    so the ratio is ``||lr * grad|| / ||W||``. ``ratios`` is a list of arrays,
    one per step, one entry per weight matrix (``labels`` such as ``"784→128"``).
    Call :meth:`detach` (or use ``with``) to remove the hooks.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.labels = layer_labels(model)
        self._weights = [layer.weight for _, layer in linear_layers(model)]
        self.ratios: list[np.ndarray] = []
        self._handles = [
            optimizer.register_step_pre_hook(self._pre),
            optimizer.register_step_post_hook(self._post),
        ]

    def _pre(self, optimizer, args, kwargs) -> None:
        self._before = [w.detach().clone() for w in self._weights]

    def _post(self, optimizer, args, kwargs) -> None:
        pairs = zip(self._weights, self._before, strict=True)
        self.ratios.append(
            np.array([((w.detach() - b).norm() / b.norm()).item() for w, b in pairs])
        )

    def as_array(self) -> np.ndarray:
        """The ratios as a ``(steps, layers)`` array."""
        return np.array(self.ratios).reshape(len(self.ratios), len(self.labels))

    def __enter__(self) -> UpdateRatioTracker:
        return self


def update_ratio_run(lr: float, n_train: int, epochs: int, seed: int | None = None) -> dict:
    """Train a 784-128-64-10 ReLU MLP on MNIST with SGD (momentum 0.9, batches of 64) at ``lr``.

    Returns ``ratios`` (``(steps, 3)``, one column per weight matrix, ``labels``
    such as ``"784→128"``), ``early`` (the median ratio over the first 50
    steps), the training ``loss`` per epoch, the test
    ``accuracy`` and ``dead`` (per hidden layer, the share of ReLUs that output 0
    for every one of 2,000 test images).
    """
    seed = config.resolve_seed(seed)
    (x, y), (x_test, y_test) = data.mnist_tensors(n_train, 2000, seed=seed)
    model = models.mlp([784, 128, 64, 10], seed=seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    with UpdateRatioTracker(model, optimizer) as tracker:
        history = training.fit(model, (x, y), epochs=epochs, optimizer=optimizer, batch_size=64,
                               device="cpu", progress=False, seed=seed)  # fmt: skip
    with torch.no_grad():
        hidden = model[:2](x_test), model[:4](x_test)
    ratios = tracker.as_array()
    return {
        "lr": lr,
        "ratios": ratios,
        "labels": tracker.labels,
        "early": float(np.median(ratios[:50])),
        "loss": history.loss,
        "accuracy": training.evaluate(model, (x_test, y_test), device="cpu")["accuracy"],
        "dead": np.array([dead_fraction(h) for h in hidden]),
    }


def update_ratio_figure(runs: list[dict]) -> Figure:
    """log10 of the update-to-weight ratio per step and layer, one panel per run.

    The grey band marks 1e-3 within a factor of 3 either way; each panel's
    title gives the learning rate, the median ratio of the first steps and of
    the whole run, the share of dead ReLUs in the first hidden layer and the
    test accuracy.
    """
    if not runs:
        raise ValueError("update_ratio_figure() needs at least one run")
    fig, axes = viz.figure(1, len(runs), sharey=True, size=(4.2 * len(runs), 3.8))
    for ax, run in zip(axes[0], runs, strict=True):
        ratios = np.log10(np.maximum(run["ratios"], 1e-12))
        for j, label in enumerate(run["labels"]):
            ax.plot(ratios[:, j], lw=1, label=label)
        ax.axhspan(-3 - math.log10(3), -3 + math.log10(3), color="grey", alpha=0.2)
        ax.axhline(-3, color="k", lw=0.8, ls="--")
        ax.set_xlabel("optimiser step")
        ax.set_title(
            f"lr = {run['lr']:g}: ratio {run['early']:.1e} early, {np.median(run['ratios']):.1e} "
            f"overall\n{run['dead'][0]:.0%} of layer 1 dead, test accuracy {run['accuracy']:.1%}",
            fontsize=9,
        )
    axes[0, 0].set_ylabel("log10 ||ΔW|| / ||W||")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
