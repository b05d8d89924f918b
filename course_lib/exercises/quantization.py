"""Exercises of notebook 07_quantization.ipynb: checkers and reference solutions.

Checked in the notebook with ``cl.exercises.check("07.N", answer)``; the lesson's code is
in :mod:`course_lib.quantization`.
"""

from __future__ import annotations

import numpy as np
import torch

from . import Wrong, call, compare, integer, number, pair, register, values

_GEN = torch.Generator().manual_seed(7)


def _solution_qparams(x_min, x_max, bits):
    q_min, q_max = 0, 2**bits - 1
    x_min, x_max = min(x_min, 0.0), max(x_max, 0.0)  # the range must contain 0
    scale = (x_max - x_min) / (q_max - q_min)
    zero_point = q_min - round(x_min / scale)
    return scale, int(min(max(zero_point, q_min), q_max))


_QP_CASES = ((-1.0, 3.0, 8), (-0.37, 0.52, 4), (0.2, 1.5, 8), (-2.5, -0.5, 3))


@register(
    "07.1",
    title="scale and zero point",
    hint="Stretch the range to contain 0, divide it by the number of steps (2**bits - 1), "
    "and pick the integer zero point that lands x_min on 0: round(-x_min / scale).",
    solution=_solution_qparams,
)
def _check_qparams(answer):
    for x_min, x_max, bits in _QP_CASES:
        scale, zero_point = _solution_qparams(x_min, x_max, bits)
        got = pair(call(answer, x_min, x_max, bits), 2, "a pair (scale, zero_point)")
        case = f"for range [{x_min}, {x_max}] at {bits} bits"
        g_scale = number(got[0], f"{case} your scale")
        if not np.isclose(g_scale, scale, rtol=1e-5):
            if np.isclose(g_scale, (max(x_max, 0) - min(x_min, 0)) / 2**bits, rtol=1e-5):
                return f"{case} your scale divides by 2**bits: there are 2**bits - 1 steps."
            if np.isclose(g_scale, (x_max - x_min) / (2**bits - 1), rtol=1e-5):
                return f"{case} your range leaves out 0: use min(x_min, 0) and max(x_max, 0)."
            return f"{case} your scale is {g_scale:.6g}, expected {scale:.6g}."
        try:
            g_zp = integer(got[1], f"{case} your zero point")
        except Wrong as exc:
            as_number = number(got[1], f"{case} your zero point")
            if not as_number.is_integer():
                return f"{case} your zero point {as_number:.4g} is not an integer: round it."
            raise Wrong(
                f"{exc} The zero point is an integer code: return int(round(...))."
            ) from None
        if g_zp != zero_point:
            if g_zp == -zero_point:
                return f"{case} your zero point has the wrong sign: it is -x_min / scale."
            return f"{case} your zero point is {g_zp}, expected {zero_point}."
    return None


_X_FQ = torch.randn(500, generator=_GEN) * 0.8


def _solution_fake_quant(x, scale, zero_point, bits):
    q = torch.round(x / scale) + zero_point  # to the integer grid
    q = torch.clamp(q, 0, 2**bits - 1)  # values outside the range saturate
    return (q - zero_point) * scale  # back to real numbers


@register(
    "07.2",
    title="quantise and dequantise",
    hint="Three steps: q = round(x / scale) + zero_point; clamp q to [0, 2**bits - 1]; "
    "return (q - zero_point) * scale.",
    solution=_solution_fake_quant,
)
def _check_fake_quant(answer):
    scale, zero_point, bits = 0.02, 100, 8  # range about [-2.0, 3.1]: some x get clamped
    expected = _solution_fake_quant(_X_FQ * 2.0, scale, zero_point, bits)
    got = call(answer, _X_FQ * 2.0, scale, zero_point, bits)
    problem = compare(got, expected, name="your dequantised values", atol=1e-6)
    if problem is None:
        return None
    arr = values(got, expected)
    if arr is not None:
        got_t = torch.from_numpy(arr)
        x = _X_FQ * 2.0
        no_clamp = (torch.round(x / scale) + zero_point - zero_point) * scale
        if torch.allclose(got_t.float(), no_clamp, atol=1e-6):
            return "values outside the range are not clamped: clamp q to [0, 2**bits - 1]."
        floor = (torch.clamp(torch.floor(x / scale) + zero_point, 0, 255) - zero_point) * scale
        if torch.allclose(got_t.float(), floor, atol=1e-6):
            return "you truncated (floor) instead of rounding to the nearest integer."
        if float((got_t.float() - expected).abs().max()) > 0.5:
            return problem + " Did you subtract the zero point before multiplying by the scale?"
    return problem


_X_STE = torch.linspace(-2.3, 2.3, 37)


def _solution_ste_round(x):
    return x + (torch.round(x) - x).detach()


@register(
    "07.3",
    title="the straight-through estimator",
    hint="Return x + (torch.round(x) - x).detach(): the forward value is round(x), and only "
    "the x outside detach() carries a gradient (of 1).",
    solution=_solution_ste_round,
)
def _check_ste_round(answer):
    x = _X_STE.clone().requires_grad_(True)
    out = call(answer, x)
    if not isinstance(out, torch.Tensor):
        return f"return a tensor, got {type(out).__name__}."
    problem = compare(out.detach(), torch.round(_X_STE), name="your forward value")
    if problem:
        return problem + " The forward pass must give round(x)."
    if not out.requires_grad:
        return "your output carries no gradient: keep x outside the detach()."
    (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if grad is None or torch.all(grad == 0):
        return (
            "the gradient is zero everywhere, as for torch.round itself: pass it straight through."
        )
    return compare(grad, torch.ones_like(_X_STE), name="your gradient")
