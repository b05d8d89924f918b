"""Notebook 11: gradient flow.

How large the gradient of each layer is, and why it matters:

* :class:`GradientTracker` records per-layer gradient statistics (mean, std,
  norm, largest magnitude) with hooks. It takes the loss explicitly
  (``tracker.backward(loss)``) or watches the backward passes run inside a
  ``with`` block, and removes every hook it attached when it is done.
* :func:`deep_mlp` builds deep sigmoid, tanh or ReLU networks, plain, residual
  or batch-normalised, to show vanishing gradients (sigmoid), healthy ones (ReLU
  with He initialisation) and the architectural fixes (skip connections,
  normalisation).
* :func:`clip_grad_norm` clips the global gradient norm from scratch, as
  ``torch.nn.utils.clip_grad_norm_`` does.
* :class:`UpdateRatioTracker` measures the update-to-weight ratio
  ``||W_after - W_before|| / ||W_before||`` of every layer at every optimiser
  step (Karpathy's diagnostic: about 1e-3 is healthy).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import data, models, training, viz

__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "GradStats",
    "GradientTracker",
    "ResidualBlock",
    "UpdateRatioTracker",
    "clip_grad_norm",
    "count_hooks",
    "deep_mlp",
    "digits_batch",
    "digits_train_val",
    "first_last_ratio",
    "global_grad_norm",
    "gradient_flow_figure",
    "gradient_profile",
    "linear_layers",
    "update_ratio_figure",
    "update_ratio_run",
]

#: Activation functions of :func:`deep_mlp`.
ACTIVATIONS = {name: models.ACTIVATIONS[name] for name in ("sigmoid", "tanh", "relu")}
#: Architectures of :func:`deep_mlp`: plain stack, residual blocks, BatchNorm before each activation.
ARCHITECTURES = ("plain", "residual", "batchnorm")


# --------------------------------------------------------------------------- the tracker


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
        return cls(
            mean=g.mean().item(),
            std=g.std(unbiased=False).item() if g.numel() > 1 else 0.0,
            norm=g.norm().item(),
            max=g.abs().max().item(),
        )


class GradientTracker:
    """Per-layer gradient statistics of a model, recorded by hooks during backward passes.

    Two ways to use it. Give it the loss explicitly::

        tracker = GradientTracker(model)
        stats = tracker.backward(loss)      # attaches hooks, runs loss.backward(), detaches

    or watch every backward pass inside a ``with`` block::

        with GradientTracker(model) as tracker:
            loss.backward()
        tracker.records[-1]

    Either way the hooks are removed afterwards: the model is left as it was.

    What is recorded:

    * ``records``: one dict per backward pass, ``{parameter name: GradStats}``,
      for the gradient of each tracked parameter (tensor hooks on the
      parameters). ``params="weights"`` (default) tracks the weights of the
      ``nn.Linear`` and convolution layers; ``"all"`` every parameter.
    * ``output_records`` (with ``outputs=True``): the gradient of the loss with
      respect to each Linear/convolution layer's *output*, the backward signal
      that flows from layer to layer. A forward hook on each layer puts a
      tensor hook on its output, so the tracker must be attached *before* the
      forward pass (``with``).
    """

    def __init__(self, model: nn.Module, params: str = "weights", outputs: bool = False):
        if params not in {"weights", "all"}:
            raise ValueError(f"params must be 'weights' or 'all', got {params!r}")
        self.model = model
        layers = dict(linear_layers(model))
        if params == "weights":
            self.names = [f"{name}.weight" for name in layers]
        else:
            self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.layer_names = list(layers) if outputs else []
        self.records: list[dict[str, GradStats]] = []
        self.output_records: list[dict[str, GradStats]] = []
        self._handles: list = []
        # True until the first hook of the next backward pass fires, per kind of record
        self._new_pass = {"params": True, "outputs": True}

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
        for name in self.names:
            self._handles.append(params[name].register_hook(self._param_hook(name)))
        modules = dict(self.model.named_modules())
        for name in self.layer_names:
            self._handles.append(modules[name].register_forward_hook(self._output_hook(name)))
        self._new_pass = dict.fromkeys(self._new_pass, True)
        return self

    def detach(self) -> None:
        """Remove every hook this tracker registered."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> GradientTracker:
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    # -- recording

    def _record(self, kind: str, name: str, grad: torch.Tensor) -> None:
        records = self.records if kind == "params" else self.output_records
        # a name seen twice means a new backward pass has started
        if self._new_pass[kind] or not records or name in records[-1]:
            records.append({})
            self._new_pass[kind] = False
        records[-1][name] = GradStats.of(grad)

    def _param_hook(self, name: str):
        return lambda grad: self._record("params", name, grad)

    def _output_hook(self, name: str):
        def record(grad: torch.Tensor) -> None:
            self._record("outputs", name, grad)

        def forward_hook(module, inputs, output) -> None:
            if output.requires_grad:  # the tensor hook lives as long as this forward's graph
                output.register_hook(record)

        return forward_hook

    def backward(self, loss: torch.Tensor, **kwargs) -> dict[str, GradStats]:
        """Run ``loss.backward(**kwargs)`` with the hooks attached; return this pass's statistics.

        The loss is an argument on purpose: the tracker never looks for a loss
        anywhere else. Hooks attached for this call are removed afterwards
        (a tracker already attached by ``with`` stays attached).
        """
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("backward() needs the scalar loss tensor of the forward pass")
        was_attached = self.attached
        if self.layer_names and not was_attached:
            raise RuntimeError(
                "output gradients are only seen when the tracker is attached before the forward "
                "pass: run forward and backward inside `with GradientTracker(model, outputs=True)`"
            )
        self.attach()
        self._new_pass = dict.fromkeys(self._new_pass, True)
        try:
            loss.backward(**kwargs)
        finally:
            if not was_attached:
                self.detach()
        if self._new_pass["params"]:  # no hook fired: nothing tracked requires a gradient
            self.records.append({})
            self._new_pass["params"] = False
        return self.records[-1]

    # -- reading

    def stat(self, stat: str = "norm", step: int = -1) -> np.ndarray:
        """One statistic (``mean``, ``std``, ``norm`` or ``max``) per tracked parameter, in layer order."""
        return self._column(self.records, self.names, stat, step)

    def output_stat(self, stat: str = "norm", step: int = -1) -> np.ndarray:
        """One statistic of the gradient w.r.t. each layer's output, in layer order."""
        return self._column(self.output_records, self.layer_names, stat, step)

    @staticmethod
    def _column(records, names, stat: str, step: int) -> np.ndarray:
        if stat not in {"mean", "std", "norm", "max"}:
            raise ValueError(f"stat must be mean, std, norm or max, got {stat!r}")
        if not records:
            raise RuntimeError("nothing recorded yet: run a backward pass with the tracker")
        record = records[step]
        return np.array([getattr(record[n], stat) if n in record else np.nan for n in names])

    def table(self, step: int = -1) -> str:
        """The statistics of one backward pass as a text table (one row per tracked parameter)."""
        if not self.records:
            raise RuntimeError("nothing recorded yet: run a backward pass with the tracker")
        record = self.records[step]
        rows = [f"{'parameter':<24}{'mean':>11}{'std':>11}{'norm':>11}{'max':>11}"]
        for name in self.names:
            if name in record:
                s = record[name]
                rows.append(f"{name:<24}{s.mean:>11.2e}{s.std:>11.2e}{s.norm:>11.2e}{s.max:>11.2e}")
        return "\n".join(rows)


def count_hooks(model: nn.Module) -> int:
    """How many hooks are registered on ``model``: tensor hooks on its parameters plus
    forward and backward hooks on its modules (0 for an untouched model)."""
    tensor_hooks = sum(len(p._backward_hooks or {}) for p in model.parameters())
    module_hooks = sum(
        len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
        for m in model.modules()
    )
    return tensor_hooks + module_hooks


# --------------------------------------------------------------------------- deep networks


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` for every ``nn.Linear`` and convolution of ``model``, in order."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [(name, m) for name, m in model.named_modules() if isinstance(m, kinds)]


class ResidualBlock(nn.Module):
    """``x + act(linear(x))``: the skip connection carries the gradient past the layer."""

    def __init__(self, width: int, activation: str = "relu"):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.linear(x))


def deep_mlp(
    depth: int,
    activation: str = "sigmoid",
    architecture: str = "plain",
    width: int = 64,
    in_dim: int = 64,
    out_dim: int = 10,
    gain: float = 1.0,
    seed: int = 0,
) -> nn.Sequential:
    """A multi-layer perceptron with ``depth`` Linear layers (``depth - 2`` hidden ones).

    ``architecture`` is ``"plain"`` (Linear, activation, ...), ``"residual"``
    (each hidden layer inside a :class:`ResidualBlock`) or ``"batchnorm"``
    (Linear, BatchNorm1d, activation). Weights are initialised for the
    activation as in notebook 02: He (Kaiming) for ReLU, Xavier (Glorot) with
    the activation's gain for sigmoid and tanh; ``gain`` multiplies them (a
    gain above 1 makes activations and gradients explode). Biases start at 0.
    """
    if depth < 2:
        raise ValueError(f"depth counts the Linear layers and must be at least 2, got {depth}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    torch.manual_seed(seed)
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = [nn.Linear(in_dim, width), act()]
    for _ in range(depth - 2):
        if architecture == "residual":
            layers.append(ResidualBlock(width, activation))
        elif architecture == "batchnorm":
            layers += [nn.Linear(width, width), nn.BatchNorm1d(width), act()]
        else:
            layers += [nn.Linear(width, width), act()]
    layers.append(nn.Linear(width, out_dim))
    model = nn.Sequential(*layers)
    for _, layer in linear_layers(model):
        if activation == "relu":
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        else:
            nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain(activation))
        with torch.no_grad():
            layer.weight.mul_(gain)
        nn.init.zeros_(layer.bias)
    return model


def digits_batch(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of ``n`` standardised 8x8 digit images (64 features) and their labels."""
    x, y = data.digits_tensors()
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx], y[idx]


def digits_train_val(n_train: int = 1400, seed: int = 0) -> tuple[tuple[torch.Tensor, ...], ...]:
    """The standardised digits split at random into ``(x, y)`` for training and the rest for validation."""
    x, y = data.digits_tensors()
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    train, val = order[:n_train], order[n_train:]
    return (x[train], y[train]), (x[val], y[val])


def first_last_ratio(norms) -> float:
    """Gradient norm of the first layer divided by that of the last layer."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.ndim != 1 or len(norms) < 2:
        raise ValueError("need the norms of at least two layers")
    return float(norms[0] / norms[-1])


@lru_cache(maxsize=256)
def gradient_profile(
    depth: int,
    activation: str = "sigmoid",
    architecture: str = "plain",
    gain: float = 1.0,
    seed: int = 0,
) -> dict[str, np.ndarray | float]:
    """Gradients of one backward pass of a fresh :func:`deep_mlp` on a batch of 256 digits.

    Returns ``weight_norms`` (the gradient norm of each Linear layer's weight,
    first layer first), ``output_norms`` (the norm of the gradient w.r.t. each
    Linear layer's output: the backward signal), ``ratio`` (first/last weight
    gradient norm), ``total`` (the global gradient norm over all parameters)
    and ``loss``. Cached: the slider demo calls it on every redraw.
    """
    model = deep_mlp(depth, activation, architecture, gain=gain, seed=seed)
    x, y = digits_batch(256, seed)
    with GradientTracker(model, outputs=True) as tracker:  # attached before the forward pass
        loss = nn.functional.cross_entropy(model(x), y)
        tracker.backward(loss)
    weight_norms = tracker.stat("norm")
    return {
        "weight_norms": weight_norms,
        "output_norms": tracker.output_stat("norm"),
        "ratio": first_last_ratio(weight_norms),
        "total": global_grad_norm(model.parameters()),
        "loss": loss.item(),
    }


def gradient_flow_figure(
    depth: int = 20, activation: str = "sigmoid", architecture: str = "plain", gain: float = 1.0
) -> Figure:
    """Per-layer gradient norms (log scale) of a deep MLP; first/last ratio in the title.

    Solid: the gradient of each Linear layer's weight matrix. Dashed: the
    gradient w.r.t. that layer's output (the signal passed backwards).
    """
    prof = gradient_profile(int(depth), activation, architecture, float(gain))
    fig, axes = viz.figure(size=(7.0, 4.0))
    ax = axes[0, 0]
    layers = np.arange(1, len(prof["weight_norms"]) + 1)
    tiny = 1e-45  # a norm that underflowed to 0 is drawn at the bottom of the plot
    ax.semilogy(layers, np.maximum(prof["weight_norms"], tiny), "o-", ms=4, label="dL/dW (weights)")
    ax.semilogy(
        layers, np.maximum(prof["output_norms"], tiny), "s--", ms=3, label="dL/dh (layer outputs)"
    )
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("gradient norm")
    ax.legend(fontsize=8)
    ax.set_title(
        f"{activation}, {architecture}, depth {depth}, gain {gain:g}: "
        f"first/last = {prof['ratio']:.2g}\nglobal gradient norm {prof['total']:.3g}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- clipping


def global_grad_norm(parameters: Iterable[torch.Tensor]) -> float:
    """The L2 norm of all gradients together: ``sqrt(sum ||g_i||^2)`` (parameters without grad skipped)."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))


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


# --------------------------------------------------------------------------- update-to-weight ratio


class UpdateRatioTracker:
    """The update-to-weight ratio ``||W_after - W_before|| / ||W_before||`` per layer and step.

    It hooks into the optimiser (``register_step_pre_hook`` and
    ``register_step_post_hook``), so it works with any optimiser and with
    :func:`course_lib.training.fit`. For plain SGD the update is ``lr * grad``,
    so the ratio is ``||lr * grad|| / ||W||``. ``ratios`` is a list of arrays,
    one per step, one entry per weight matrix (``names``). Call
    :meth:`detach` (or use ``with``) to remove the hooks.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer):
        self.names = [f"{name}.weight" for name, _ in linear_layers(model)]
        self._weights = [layer.weight for _, layer in linear_layers(model)]
        self.ratios: list[np.ndarray] = []
        self._before: list[torch.Tensor] = []
        self._handles = [
            optimizer.register_step_pre_hook(self._pre),
            optimizer.register_step_post_hook(self._post),
        ]

    def _pre(self, optimizer, args, kwargs) -> None:
        self._before = [w.detach().clone() for w in self._weights]

    def _post(self, optimizer, args, kwargs) -> None:
        self.ratios.append(
            np.array(
                [
                    ((w.detach() - b).norm() / b.norm()).item()
                    for w, b in zip(self._weights, self._before, strict=True)
                ]
            )
        )

    def as_array(self) -> np.ndarray:
        """The ratios as a ``(steps, layers)`` array."""
        return np.array(self.ratios).reshape(len(self.ratios), len(self.names))

    def detach(self) -> None:
        """Remove the optimiser hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> UpdateRatioTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.detach()


def update_ratio_run(
    lr: float,
    n_train: int = 4000,
    epochs: int = 1,
    momentum: float = 0.9,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Train a 784-128-64-10 ReLU MLP on MNIST with SGD at ``lr``, tracking update ratios.

    Returns ``ratios`` (a ``(steps, 3)`` array, one column per weight matrix),
    ``names``, the training ``loss`` per epoch (from :func:`training.fit`), the
    first-batch loss ``loss_start``, and the test ``accuracy``.
    """
    (x, y), (x_test, y_test) = data.mnist_tensors(n_train, 2000)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    with torch.no_grad():
        loss_start = nn.functional.cross_entropy(model(x), y).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    with UpdateRatioTracker(model, optimizer) as tracker:
        history = training.fit(
            model,
            (x, y),
            epochs=epochs,
            optimizer=optimizer,
            batch_size=batch_size,
            device="cpu",
            progress=False,
            seed=seed,
        )
    metrics = training.evaluate(model, (x_test, y_test), device="cpu")
    return {
        "lr": lr,
        "ratios": tracker.as_array(),
        "names": tracker.names,
        "loss": history.loss,
        "loss_start": loss_start,
        "accuracy": metrics["accuracy"],
    }


def update_ratio_figure(runs: list[dict]) -> Figure:
    """log10 of the update-to-weight ratio per step and layer, one panel per run.

    The grey band marks 1e-3 within a factor of 3 either way; each panel's
    title gives the learning rate, the median ratio and the test accuracy.
    """
    if not runs:
        raise ValueError("update_ratio_figure() needs at least one run")
    fig, axes = viz.figure(1, len(runs), sharey=True)
    for ax, run in zip(axes[0], runs, strict=True):
        ratios = np.log10(np.maximum(run["ratios"], 1e-12))
        for j, name in enumerate(run["names"]):
            ax.plot(ratios[:, j], lw=1, label=name)
        ax.axhspan(-3 - math.log10(3), -3 + math.log10(3), color="grey", alpha=0.2)
        ax.axhline(-3, color="k", lw=0.8, ls="--")
        ax.set_xlabel("optimiser step")
        ax.set_title(
            f"lr = {run['lr']:g}: median ratio {np.median(run['ratios']):.1e}\n"
            f"test accuracy {run['accuracy']:.1%}",
            fontsize=10,
        )
    axes[0, 0].set_ylabel("log10 ||ΔW|| / ||W||")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig
