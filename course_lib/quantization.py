"""Notebook 07: quantisation, storing weights in a few bits.

In the notebook's order: affine quantisation from scratch (scale, zero point,
rounding, clamping; per tensor and per output channel) and its agreement with
PyTorch's observers and quantised tensors; the reconstruction error against bit
width (with the slider); integer-only arithmetic of a quantised linear layer
(int8 codes, int32 accumulation, requantisation by a fixed-point multiplier,
Jacob et al. 2018) checked against PyTorch's quantised ``Linear``; calibration of
activation ranges (min-max or percentile); post-training dynamic int8
quantisation of LeNet-300-100 with ``torch.ao.quantization.quantize_dynamic``
(size, accuracy, latency over batch sizes); fake quantisation with the
straight-through estimator and quantisation-aware training (QAT).

About the deprecation warnings
------------------------------
In the pinned PyTorch (2.13) ``torch.ao.quantization`` still works, but it warns
that it is deprecated: PyTorch's documentation asks users of eager-mode
quantisation (``quantize``, ``quantize_dynamic``) to move to ``torchao``'s
``quantize_`` API, and the quantised-tensor constructors
(``torch.quantize_per_tensor``, ...) warn the same. Importing this module
silences exactly those two notices, matched by message and category
(:data:`SILENCED_WARNINGS`); every other warning still shows.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, training, viz
from .pruning import compare_latency, prunable_layers

__all__ = [
    "SILENCED_WARNINGS",
    "QuantLinear",
    "affine_qparams",
    "bitwidth_figure",
    "calibrated_range",
    "compare_codes",
    "dequantize",
    "error_vs_bits",
    "fake_quantize",
    "fake_quantize_ste",
    "fixed_point_multiplier",
    "int8_linear_from_scratch",
    "int8_linear_torch",
    "integer_linear",
    "latency_figure",
    "latency_vs_batch",
    "qat_figure",
    "qat_vs_ptq",
    "qrange",
    "quantization_error",
    "quantize",
    "quantize_weights",
    "range_error",
    "silence_deprecation_warnings",
    "ste_round",
    "symmetric_scale",
    "train_qat",
    "uniform_noise_error",
]

# --------------------------------------------------------------------------- deprecation notices

#: ``(start of the message, category)`` of each notice that
#: :func:`silence_deprecation_warnings` filters.
SILENCED_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    ("torch.ao.quantization is deprecated", DeprecationWarning),
    (
        "torch.quantize_per_tensor, torch.quantize_per_channel and other quantized tensor "
        "creation functions",
        UserWarning,
    ),
)


def silence_deprecation_warnings() -> None:
    """Ignore exactly the two deprecation notices of PyTorch's quantisation API.

    One filter per notice, each restricted to the start of its message and to
    its category; anything else (other deprecations, other torch warnings)
    still shows. Called when this module is imported.
    """
    for message, category in SILENCED_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category)


silence_deprecation_warnings()


# --------------------------------------------------------------------------- affine quantisation


def qrange(bits: int, signed: bool = False) -> tuple[int, int]:
    """Smallest and largest integer code of a ``bits``-bit integer: (0, 2^b - 1) or signed."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be between 1 and 16, got {bits}")
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def affine_qparams(
    x_min, x_max, bits: int = 8, signed: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point that map ``[x_min, x_max]`` onto the ``bits``-bit integer range.

    The range is first stretched to include 0, so that zero (padding, ReLU
    outputs, pruned weights) is represented exactly::

        scale      = (x_max - x_min) / (q_max - q_min)
        zero_point = q_min - round(x_min / scale)      (clamped to [q_min, q_max])

    ``x_min``/``x_max`` may be tensors (one entry per channel). This is what
    PyTorch's ``MinMaxObserver`` computes.
    """
    q_min, q_max = qrange(bits, signed)
    x_min = torch.clamp(torch.as_tensor(x_min, dtype=torch.float32), max=0.0)
    x_max = torch.clamp(torch.as_tensor(x_max, dtype=torch.float32), min=0.0)
    scale = (x_max - x_min) / float(q_max - q_min)
    scale = torch.clamp(scale, min=torch.finfo(torch.float32).eps)  # a constant tensor
    zero_point = q_min - torch.round(x_min / scale)
    return scale, torch.clamp(zero_point, q_min, q_max).to(torch.int64)


def _broadcast(param: torch.Tensor, x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """Shape a per-channel parameter so that it lines up with ``x`` along ``axis``."""
    param = torch.as_tensor(param)
    if param.dim() == 0 or axis is None:
        return param
    shape = [1] * x.dim()
    shape[axis] = -1
    return param.reshape(shape)


def quantize(
    x: torch.Tensor,
    scale,
    zero_point,
    bits: int = 8,
    signed: bool = False,
    axis: int | None = None,
) -> torch.Tensor:
    """Integer codes ``q = clamp(round(x / scale) + zero_point, q_min, q_max)`` (int64).

    ``axis`` says along which dimension per-channel ``scale``/``zero_point``
    vary (``None``: one of each for the whole tensor). Like PyTorch's kernels
    it multiplies by ``1 / scale`` rather than dividing.
    """
    q_min, q_max = qrange(bits, signed)
    scale = _broadcast(scale, x, axis)
    zero_point = _broadcast(zero_point, x, axis)
    q = torch.round(x * (1.0 / scale)) + zero_point
    return torch.clamp(q, q_min, q_max).to(torch.int64)


def dequantize(q: torch.Tensor, scale, zero_point, axis: int | None = None) -> torch.Tensor:
    """Real values ``(q - zero_point) * scale`` of the integer codes ``q`` (float32)."""
    scale = _broadcast(scale, q, axis)
    zero_point = _broadcast(zero_point, q, axis)
    q = q.to(torch.int64)  # uint8/int8 codes would wrap around when the zero point is subtracted
    return ((q - zero_point) * scale).to(torch.float32)


def compare_codes(
    mine: torch.Tensor, theirs: torch.Tensor, x: torch.Tensor, scale, axis: int | None = None
) -> dict[str, float]:
    """How two sets of integer codes for the same ``x`` differ, and whether only at ties.

    Returns the number and fraction of codes that differ, the largest
    difference, and the largest distance of ``x / scale`` from a rounding tie
    (a ``.5``) among the differing codes (0 when none differ). Two correct
    implementations may round a value lying within float precision of a tie
    differently; nothing else should differ.
    """
    diff = (mine.long() - theirs.long()).abs()
    differ = diff > 0
    ratio = (x.double() / _broadcast(torch.as_tensor(scale), x, axis).double())[differ]
    tie_distance = (ratio - ratio.floor() - 0.5).abs()
    return {
        "n_differ": int(differ.sum()),
        "fraction": float(differ.double().mean()),
        "max_diff": int(diff.max()) if diff.numel() else 0,
        "max_tie_distance": float(tie_distance.max()) if len(tie_distance) else 0.0,
    }


def fake_quantize(
    x: torch.Tensor, bits: int = 8, per_channel: bool = False, axis: int = 0, signed: bool = False
) -> torch.Tensor:
    """``dequantize(quantize(x))`` with min/max ranges: ``x`` as the integer grid can hold it.

    ``per_channel=True`` gives every slice along ``axis`` (every output
    neuron of a weight matrix) its own scale and zero point.
    """
    x = x.detach()
    if per_channel:
        dims = [d for d in range(x.dim()) if d != axis]
        x_min, x_max = x.amin(dim=dims), x.amax(dim=dims)
        ax: int | None = axis
    else:
        x_min, x_max, ax = x.min(), x.max(), None
    scale, zero_point = affine_qparams(x_min, x_max, bits, signed)
    return dequantize(quantize(x, scale, zero_point, bits, signed, ax), scale, zero_point, ax)


def quantization_error(weight: torch.Tensor, bits: int, per_channel: bool = False) -> float:
    """Relative reconstruction error ``||w - fake_quantize(w)|| / ||w||`` at ``bits`` bits."""
    w = weight.detach().float()
    w_hat = fake_quantize(w, bits, per_channel=per_channel)
    return float(torch.linalg.vector_norm(w - w_hat) / torch.linalg.vector_norm(w))


def uniform_noise_error(weight: torch.Tensor, bits: int) -> float:
    """Predicted relative per-tensor error if rounding errors were uniform on ``[-s/2, s/2]``.

    Their root mean square is then ``s / sqrt(12)``, with the step
    ``s = (max - min) / (2^b - 1)``; divided by the root mean square of the
    weights it predicts :func:`quantization_error` (per tensor).
    """
    w = weight.detach().float()
    scale = (w.max().clamp(min=0) - w.min().clamp(max=0)) / (2**bits - 1)
    return float(scale / 12**0.5 / w.pow(2).mean().sqrt())


def error_vs_bits(weight: torch.Tensor, bits: Sequence[int] = range(2, 9)) -> dict[str, np.ndarray]:
    """Relative error per bit width, per-tensor and per-channel (rows as channels)."""
    bits = list(bits)
    return {
        "bits": np.array(bits),
        "per_tensor": np.array([quantization_error(weight, b, False) for b in bits]),
        "per_channel": np.array([quantization_error(weight, b, True) for b in bits]),
    }


# --------------------------------------------------------------------------- slider


def bitwidth_figure(bits: int = 4, *, weight: torch.Tensor, row: int | None = None) -> Figure:
    """Quantise ``weight`` (a 2-D matrix) at ``bits`` bits, per tensor and per row.

    Left: the weights of one row (by default the one with the narrowest
    range) with the grid of values each scheme can represent. Right: relative
    error against bit width for both schemes, this setting marked. The errors
    at ``bits`` are in the title.
    """
    w = weight.detach().float()
    curve = error_vs_bits(w)
    spans = w.amax(1) - w.amin(1)
    row = int(spans.argmin()) if row is None else row
    values = w[row].numpy()
    scale_t, zp_t = affine_qparams(w.min(), w.max(), bits)
    scale_c, zp_c = affine_qparams(w[row].min(), w[row].max(), bits)
    q_min, q_max = qrange(bits)
    codes = torch.arange(q_min, q_max + 1)
    grid_t = dequantize(codes, scale_t, zp_t).numpy()
    grid_c = dequantize(codes, scale_c, zp_c).numpy()
    err_t = quantization_error(w, bits, per_channel=False)
    err_c = quantization_error(w, bits, per_channel=True)

    fig, axes = viz.figure(1, 2, size=(12.0, 3.9))
    ax = axes[0, 0]
    ax.hist(values, bins=60, color="0.6", label=f"row {row} weights")
    lo, hi = values.min(), values.max()
    margin = 0.15 * (hi - lo)
    for level in grid_t[(grid_t >= lo - margin) & (grid_t <= hi + margin)]:
        ax.axvline(level, color="tab:red", lw=1.2, alpha=0.8)
    if len(grid_c) <= 64:
        for level in grid_c:
            ax.axvline(level, color="tab:blue", lw=0.8, ls="--", alpha=0.8)
    ax.plot([], [], color="tab:red", label="per-tensor grid")
    ax.plot([], [], color="tab:blue", ls="--", label="per-channel grid")
    ax.set_xlim(lo - margin, hi + margin)
    ax.set_xlabel("weight value")
    ax.legend(fontsize=8, loc="upper right")
    ax = axes[0, 1]
    ax.semilogy(curve["bits"], curve["per_tensor"], "-o", color="tab:red", label="per-tensor")
    ax.semilogy(curve["bits"], curve["per_channel"], "-s", color="tab:blue", label="per-channel")
    ax.semilogy([bits, bits], [err_t, err_c], "k*", ms=12, label=f"{bits} bits")
    ax.set_xlabel("bits per weight")
    ax.set_ylabel("relative error ||w - ŵ|| / ||w||")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"{bits} bits ({2**bits} levels): relative error per-tensor {err_t:.2%}, "
        f"per-channel {err_c:.2%}"
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- integer-only arithmetic


def symmetric_scale(weight: torch.Tensor) -> torch.Tensor:
    """Scale of symmetric signed 8-bit codes (zero point 0): ``max|w| / 127.5``.

    What PyTorch's ``MinMaxObserver(qscheme=torch.per_tensor_symmetric)``
    computes for ``qint8`` weights; codes then run from -128 to 127.
    """
    return (weight.detach().abs().max() / 127.5).clamp_min(torch.finfo(torch.float32).eps)


def fixed_point_multiplier(m: float) -> tuple[int, int]:
    """``(m0, shift)`` with ``m = m0 * 2**-(31 + shift)`` and ``m0`` a 31-bit integer.

    Jacob et al. (2018): the real multiplier ``M = S_x S_w / S_y`` lies in (0, 1),
    so it is a normalised mantissa in [0.5, 1) stored as an integer ``m0`` with
    31 fractional bits, times a power of two that becomes a right shift.
    """
    if not 0.0 < m < 1.0:
        raise ValueError(f"the requantisation multiplier must lie in (0, 1), got {m}")
    mantissa, exponent = math.frexp(m)  # m = mantissa * 2**exponent, mantissa in [0.5, 1)
    m0 = round(mantissa * 2**31)
    if m0 == 2**31:  # the mantissa rounded up to 1.0
        m0, exponent = 2**30, exponent + 1
    return m0, -exponent


def integer_linear(q_x, z_x: int, q_w, bias_q, m0: int, shift: int, z_y: int) -> torch.Tensor:
    """Output codes of a quantised linear layer computed with integers only.

    ``acc = (q_x - z_x) @ q_w.T + bias_q`` is the int32 accumulator (weights
    symmetric, zero point 0; the bias quantised with scale ``S_x S_w``); it is
    requantised to the output's uint8 codes by the fixed-point multiplier
    ``(m0, shift)`` of :func:`fixed_point_multiplier`, a rounding right shift,
    the output zero point ``z_y`` and clamping to 0..255.
    """
    acc = (q_x.long() - z_x) @ q_w.long().T + bias_q.long()
    if acc.abs().max() >= 2**31:
        raise OverflowError("the accumulator left the int32 range")
    total_shift = 31 + shift
    scaled = (acc * m0 + (1 << (total_shift - 1))) >> total_shift  # round(acc * M)
    return torch.clamp(scaled + z_y, 0, 255)


def int8_linear_from_scratch(linear: nn.Linear, x: torch.Tensor, x_qparams, y_qparams):
    """uint8 output codes of ``linear`` on ``x`` by :func:`integer_linear`.

    ``x_qparams`` and ``y_qparams`` are ``(scale, zero_point)`` of the input and
    output (from calibration); the weight gets :func:`symmetric_scale`.
    """
    (s_x, z_x), (s_y, z_y) = x_qparams, y_qparams
    s_w = float(symmetric_scale(linear.weight))
    q_x = quantize(x, s_x, z_x, bits=8)
    q_w = quantize(linear.weight.detach(), s_w, 0, bits=8, signed=True)
    bias_q = torch.round(linear.bias.detach().double() / (s_x * s_w)).long()
    m0, shift = fixed_point_multiplier(s_x * s_w / s_y)
    return integer_linear(q_x, z_x, q_w, bias_q, m0, shift, z_y)


def int8_linear_torch(linear: nn.Linear, x: torch.Tensor, x_qparams, y_qparams):
    """The same layer through PyTorch's quantised ``Linear`` (fbgemm/x86 or qnnpack kernels)."""
    (s_x, z_x), (s_y, z_y) = x_qparams, y_qparams
    layer = torch.ao.nn.quantized.Linear(linear.in_features, linear.out_features)
    s_w = float(symmetric_scale(linear.weight))
    q_w = torch.quantize_per_tensor(linear.weight.detach(), s_w, 0, torch.qint8)
    layer.set_weight_bias(q_w, linear.bias.detach())
    layer.scale, layer.zero_point = float(s_y), int(z_y)
    return layer(torch.quantize_per_tensor(x, float(s_x), int(z_x), torch.quint8)).int_repr()


# --------------------------------------------------------------------------- calibration


def calibrated_range(activations: torch.Tensor, method: str = "minmax", percentile=99.9):
    """``(low, high)`` range for quantising activations, from calibration data.

    ``"minmax"`` covers every calibration value; ``"percentile"`` cuts the
    ``100 - percentile`` per cent largest (and, for signed data, smallest)
    values, which are then clipped, so that the rest get finer steps.
    """
    a = activations.detach().flatten().float()
    if method == "minmax":
        return a.min().item(), a.max().item()
    if method != "percentile":
        raise ValueError(f"method must be 'minmax' or 'percentile', got {method!r}")
    if len(a) > 2_000_000:  # torch.quantile's limit on input size
        a = a[torch.randperm(len(a), generator=torch.Generator().manual_seed(0))[:2_000_000]]
    q = torch.quantile(a, torch.tensor([1 - percentile / 100, percentile / 100]))
    low = a.min().item() if a.min() >= 0 else q[0].item()  # ReLU outputs: keep 0 exact
    return low, q[1].item()


def range_error(activations: torch.Tensor, low: float, high: float, bits: int) -> float:
    """Relative error ``||a - â|| / ||a||`` of ``activations`` quantised on ``[low, high]``."""
    scale, zero_point = affine_qparams(low, high, bits)
    a = activations.detach().float()
    a_hat = dequantize(quantize(a, scale, zero_point, bits), scale, zero_point)
    return float(torch.linalg.vector_norm(a - a_hat) / torch.linalg.vector_norm(a))


# --------------------------------------------------------------------------- latency over batch sizes


def latency_vs_batch(
    models: dict[str, nn.Module], x: torch.Tensor, batches: Sequence[int] = (1, 4, 16, 64, 256)
) -> dict[str, np.ndarray]:
    """Median one-thread latency of each model at each batch size (interleaved rounds)."""
    rows = [compare_latency(models, x[:b]) for b in batches]
    return {"batch": np.array(batches), **{k: np.array([r[k] for r in rows]) for k in models}}


def latency_figure(
    result: dict[str, np.ndarray], base: str = "fp32", other: str = "int8"
) -> Figure:
    """Latency per batch (log-log) of two models, and the speed-up ``base / other``."""
    batch = result["batch"]
    speedup = result[base] / result[other]
    fig, axes = viz.figure(1, 2, size=(11.0, 3.6))
    for name in (base, other):
        axes[0, 0].loglog(batch, 1e3 * result[name], "-o", label=name)
    axes[0, 0].set(xlabel="batch size", ylabel="ms per forward pass")
    axes[0, 0].legend(fontsize=8)
    axes[0, 1].semilogx(batch, speedup, "-o", color="k")
    axes[0, 1].axhline(1.0, color="0.5", ls="--", lw=1)
    axes[0, 1].set(xlabel="batch size", ylabel=f"{other} speed-up over {base}")
    fig.suptitle(
        f"{other} vs {base}: {speedup[0]:.2f}x as fast at batch {batch[0]}, "
        f"{speedup[-1]:.2f}x at batch {batch[-1]} (one thread)"
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- fake quantisation and QAT


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` in the forward pass, the identity in the backward pass.

    The straight-through estimator (Bengio et al. 2013): rounding has zero
    gradient almost everywhere, so we pretend it was the identity.
    ``(round(x) - x).detach()`` carries no gradient; adding ``x`` back does.
    """
    return x + (torch.round(x) - x).detach()


def fake_quantize_ste(
    x: torch.Tensor, scale, zero_point, bits: int = 8, signed: bool = False
) -> torch.Tensor:
    """Fake quantisation with a straight-through gradient (per-tensor ``scale``/``zero_point``).

    Forward: ``(clamp(round(x / s) + z, q_min, q_max) - z) * s``. Backward:
    gradient 1 where the code fell inside the integer range, 0 where it was
    clamped: exactly ``torch.fake_quantize_per_tensor_affine``.
    """
    q_min, q_max = qrange(bits, signed)
    scale = torch.as_tensor(scale, dtype=x.dtype)
    zero_point = torch.as_tensor(zero_point, dtype=x.dtype)
    q = torch.clamp(ste_round(x * (1.0 / scale)) + zero_point, q_min, q_max)
    return (q - zero_point) * scale


class QuantLinear(nn.Linear):
    """A Linear layer that uses its weights fake-quantised to ``bits`` bits (per output row).

    The float weights are kept and trained (the *shadow* weights); the forward
    pass sees them quantised, and the straight-through estimator passes the
    gradient through the rounding. Scales and zero points follow the current
    min/max of each row and are not trained.
    """

    def __init__(self, in_features: int, out_features: int, bits: int = 4, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.bits = bits

    @classmethod
    def from_linear(cls, linear: nn.Linear, bits: int) -> QuantLinear:
        """A QuantLinear with the weights and bias of ``linear``."""
        layer = cls(linear.in_features, linear.out_features, bits, bias=linear.bias is not None)
        layer.load_state_dict(linear.state_dict())
        return layer

    def quantized_weight(self) -> torch.Tensor:
        """The weights fake-quantised per row, differentiable through the STE."""
        w = self.weight
        with torch.no_grad():
            scale, zero_point = affine_qparams(w.amin(1), w.amax(1), self.bits)
        q_min, q_max = qrange(self.bits)
        q = torch.clamp(ste_round(w * (1.0 / scale[:, None])) + zero_point[:, None], q_min, q_max)
        return (q - zero_point[:, None]) * scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bits={self.bits}"


def quantize_weights(model: nn.Module, bits: int, per_channel: bool = True) -> nn.Module:
    """Post-training quantisation, simulated: a copy whose Linear weights are fake-quantised.

    Every weight is replaced by the nearest value on its ``bits``-bit grid
    (min/max range, per row or per tensor); biases and activations stay fp32.
    """
    quantized = copy.deepcopy(model)
    with torch.no_grad():
        for layer in prunable_layers(quantized).values():
            layer.weight.copy_(fake_quantize(layer.weight, bits, per_channel=per_channel))
    return quantized


def train_qat(
    model: nn.Module,
    train,
    bits: int,
    epochs: int = 2,
    lr: float = 3e-4,
    seed: int | None = None,
    progress: bool = False,
) -> nn.Module:
    """Quantisation-aware fine-tuning of a trained ``model`` at ``bits`` bits per weight.

    Every ``nn.Linear`` becomes a :class:`QuantLinear` (same weights), the
    network is fine-tuned with Adam for ``epochs``, and the result is
    returned with its weights replaced by their quantised values (plain
    ``nn.Linear`` layers again), ready to be stored in ``bits`` bits.
    """
    qat = copy.deepcopy(model)
    names = list(prunable_layers(qat))
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = qat.get_submodule(parent) if parent else qat
        setattr(owner, child, QuantLinear.from_linear(getattr(owner, child), bits))
    seed = config.resolve_seed(seed)
    training.fit(qat, train, epochs=epochs, lr=lr, seed=seed, progress=progress, device="cpu")
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = qat.get_submodule(parent) if parent else qat
        layer = getattr(owner, child)
        plain = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
        with torch.no_grad():
            plain.weight.copy_(layer.quantized_weight())
            if layer.bias is not None:
                plain.bias.copy_(layer.bias)
        setattr(owner, child, plain)
    return qat.eval()


def qat_vs_ptq(
    model: nn.Module,
    train,
    test,
    bits: Sequence[int],
    epochs: int = 2,
    lr: float = 3e-4,
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Test accuracy after post-training quantisation and after QAT, per bit width."""
    ptq = [training.accuracy(quantize_weights(model, b), test) for b in bits]
    qat = [
        training.accuracy(train_qat(model, train, b, epochs=epochs, lr=lr, seed=seed), test)
        for b in bits
    ]
    return {"bits": np.array(list(bits)), "ptq": np.array(ptq), "qat": np.array(qat)}


def qat_figure(result: dict[str, np.ndarray], fp32_accuracy: float) -> Figure:
    """Bars of test accuracy after post-training quantisation and after QAT, per bit width."""
    bits = result["bits"]
    x = np.arange(len(bits))
    fig, axes = viz.figure(1, 1, size=(6.4, 3.8))
    ax = axes[0, 0]
    ax.bar(x - 0.2, 100 * result["ptq"], width=0.4, label="post-training (PTQ)")
    ax.bar(x + 0.2, 100 * result["qat"], width=0.4, label="quantisation-aware (QAT)")
    ax.axhline(100 * fp32_accuracy, color="k", ls="--", lw=1, label="fp32")
    low = min(result["ptq"].min(), result["qat"].min(), fp32_accuracy)
    ax.set_ylim(max(0.0, 100 * low - 3), 101)
    ax.set_xticks(x, [f"{b} bits" for b in bits])
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="upper center", ncol=3)
    i = int(np.argmin(bits))
    ax.set_title(
        f"{bits[i]} bits per weight: PTQ {100 * result['ptq'][i]:.2f} %, "
        f"QAT {100 * result['qat'][i]:.2f} % (fp32 {100 * fp32_accuracy:.2f} %)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
