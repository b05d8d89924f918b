"""course_lib.quantization (notebook 07)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from torch import nn
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

import course_lib as cl
from course_lib import exercises, models, training
from course_lib import pruning as P
from course_lib import quantization as Q

AO_NOTICE = "torch.ao.quantization is deprecated and will be removed in 2.10."
QTENSOR_NOTICE = (
    "torch.quantize_per_tensor, torch.quantize_per_channel and other quantized tensor creation "
    "functions that produce tensors with dtype torch.quint8, torch.qint8, and torch.qint32 are "
    "deprecated and will be removed in a future PyTorch release."
)


@pytest.fixture(autouse=True)
def _quantization_notices_silenced():
    """pytest resets warning filters around each test: install the module's filters again."""
    with warnings.catch_warnings():
        Q.silence_deprecation_warnings()
        yield


@pytest.fixture(scope="module")
def weight():
    """A 30 x 50 matrix whose rows have very different ranges (as trained layers do)."""
    g = torch.Generator().manual_seed(0)
    row_scale = torch.logspace(-2, 0, 30)[:, None]
    return torch.randn(30, 50, generator=g) * row_scale


@pytest.fixture(scope="module")
def task():
    """A 10-class task on 784 noisy inputs: class c adds 1 to its own block of 78 inputs."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(600) % 10
    x = torch.randn(600, 784, generator=g)
    x[:, :780] += nn.functional.one_hot(y, 10).repeat_interleave(78, dim=1).float()  # class block
    return (x[:400], y[:400]), (x[400:], y[400:])


# --------------------------------------------------------------------------- warnings


def test_only_the_two_deprecation_notices_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Q.silence_deprecation_warnings()
        warnings.warn(AO_NOTICE, DeprecationWarning, stacklevel=1)
        warnings.warn(QTENSOR_NOTICE, UserWarning, stacklevel=1)
        warnings.warn("some_function is deprecated", DeprecationWarning, stacklevel=1)
        warnings.warn(AO_NOTICE, UserWarning, stacklevel=1)  # right text, other category
        warnings.warn("torch.nn.something else", UserWarning, stacklevel=1)
    shown = [(str(w.message), w.category) for w in caught]
    assert shown == [
        ("some_function is deprecated", DeprecationWarning),
        (AO_NOTICE, UserWarning),
        ("torch.nn.something else", UserWarning),
    ]


def test_real_quantisation_calls_are_quiet_but_other_torch_warnings_show():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Q.silence_deprecation_warnings()
        torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(4, 2)), {nn.Linear})
        torch.tensor(torch.ones(2))  # torch's "copy construct" UserWarning
    messages = [str(w.message) for w in caught]
    assert not any("deprecated" in m for m in messages), messages
    assert any("copy construct" in m for m in messages), messages


def test_silenced_warnings_lists_the_two_notices():
    assert [c for _, c in Q.SILENCED_WARNINGS] == [DeprecationWarning, UserWarning]
    assert AO_NOTICE.startswith(Q.SILENCED_WARNINGS[0][0])
    assert QTENSOR_NOTICE.startswith(Q.SILENCED_WARNINGS[1][0])


# --------------------------------------------------------------------------- affine quantisation


def test_qrange():
    assert Q.qrange(8) == (0, 255) and Q.qrange(8, signed=True) == (-128, 127)
    assert Q.qrange(2) == (0, 3) and Q.qrange(4, signed=True) == (-8, 7)
    with pytest.raises(ValueError, match="bits"):
        Q.qrange(0)


def test_affine_qparams_equal_the_observers(weight):
    obs = MinMaxObserver(dtype=torch.quint8)
    obs(weight)
    scale, zp = Q.affine_qparams(weight.min(), weight.max())
    ref_scale, ref_zp = obs.calculate_qparams()
    assert torch.equal(scale.reshape(1), ref_scale) and zp.item() == ref_zp.item()
    per_row = PerChannelMinMaxObserver(
        ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_affine
    )
    per_row(weight)
    scales, zps = Q.affine_qparams(weight.amin(1), weight.amax(1), signed=True)
    ref_scales, ref_zps = per_row.calculate_qparams()
    assert torch.equal(scales, ref_scales) and torch.equal(zps, ref_zps.long())


def test_affine_qparams_include_zero_and_survive_constant_input():
    scale, zp = Q.affine_qparams(0.5, 2.0, bits=8)  # stretched to [0, 2]
    assert scale.item() == pytest.approx(2.0 / 255) and zp.item() == 0
    scale, zp = Q.affine_qparams(-3.0, -1.0, bits=4)  # stretched to [-3, 0]
    assert scale.item() == pytest.approx(3.0 / 15) and zp.item() == 15
    scale, zp = Q.affine_qparams(0.0, 0.0)
    assert scale.item() > 0 and zp.item() == 0


def test_quantize_and_dequantize_round_trip_and_clamp(weight):
    scale, zp = Q.affine_qparams(weight.min(), weight.max(), bits=8)
    q = Q.quantize(weight, scale, zp)
    assert q.dtype == torch.int64 and q.min() >= 0 and q.max() <= 255
    assert (Q.dequantize(q, scale, zp) - weight).abs().max() <= scale / 2 * (1 + 1e-5)
    outside = Q.quantize(torch.tensor([-100.0, 100.0]), scale, zp)
    assert outside.tolist() == [0, 255]
    codes = torch.tensor([0, 255], dtype=torch.uint8)  # no wrap-around below the zero point
    assert Q.dequantize(codes, 0.5, 100).tolist() == [-50.0, 77.5]


@pytest.mark.parametrize("axis", [0, 1])
def test_per_channel_codes_agree_with_torch(weight, axis):
    other = 1 - axis
    scales, zps = Q.affine_qparams(weight.amin(other), weight.amax(other), signed=True)
    ours = Q.quantize(weight, scales, zps, signed=True, axis=axis)
    theirs = torch.quantize_per_channel(weight, scales, zps, axis, torch.qint8)
    stats = Q.compare_codes(ours, theirs.int_repr(), weight, scales, axis=axis)
    assert stats["max_diff"] <= 1 and stats["max_tie_distance"] < 1e-4
    assert torch.equal(Q.dequantize(theirs.int_repr(), scales, zps, axis=axis), theirs.dequantize())


def test_per_tensor_codes_agree_with_torch_except_at_ties():
    w = torch.randn(300, 784, generator=torch.Generator().manual_seed(5)) * 0.05
    scale, zp = Q.affine_qparams(w.min(), w.max())
    theirs = torch.quantize_per_tensor(w, scale.item(), zp.item(), torch.quint8)
    stats = Q.compare_codes(Q.quantize(w, scale, zp), theirs.int_repr(), w, scale)
    assert stats["max_diff"] <= 1 and stats["fraction"] < 1e-4
    assert stats["max_tie_distance"] < 1e-4


def test_compare_codes_counts_differences():
    x = torch.tensor([0.1, 0.25, 0.9])
    same = Q.compare_codes(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 2]), x, 0.1)
    assert same == {"n_differ": 0, "fraction": 0.0, "max_diff": 0, "max_tie_distance": 0.0}
    diff = Q.compare_codes(torch.tensor([0, 2, 9]), torch.tensor([0, 3, 7]), x, 0.1)
    assert (
        diff["n_differ"] == 2 and diff["max_diff"] == 2 and diff["fraction"] == pytest.approx(2 / 3)
    )
    assert diff["max_tie_distance"] == pytest.approx(0.5, abs=1e-5)  # 9.0 is far from a tie


def test_fake_quantize_equals_torch(weight):
    for bits in (8, 3):
        q_max = 2**bits - 1
        scale, zp = Q.affine_qparams(weight.min(), weight.max(), bits)
        ref = torch.fake_quantize_per_tensor_affine(weight, scale.item(), zp.item(), 0, q_max)
        assert torch.equal(Q.fake_quantize(weight, bits), ref)
        scales, zps = Q.affine_qparams(weight.amin(1), weight.amax(1), bits)
        ref = torch.fake_quantize_per_channel_affine(weight, scales, zps.int(), 0, 0, q_max)
        assert torch.allclose(Q.fake_quantize(weight, bits, per_channel=True), ref, atol=1e-7)


def test_quantization_error_falls_with_bits_and_per_channel_wins(weight):
    errors = [Q.quantization_error(weight, b) for b in range(2, 9)]
    assert all(a > b for a, b in zip(errors, errors[1:], strict=False))
    assert 1.9 < errors[-2] / errors[-1] < 2.3
    assert Q.quantization_error(weight, 4, per_channel=True) < 0.5 * errors[2]
    curve = Q.error_vs_bits(weight, bits=[3, 5])
    assert curve["bits"].tolist() == [3, 5]
    assert curve["per_tensor"][1] == pytest.approx(errors[3])
    assert np.all(curve["per_channel"] < curve["per_tensor"])


def test_uniform_noise_error_predicts_the_error_at_high_bit_widths():
    w = torch.randn(200, 300, generator=torch.Generator().manual_seed(3))
    for bits in (6, 8):
        predicted = Q.uniform_noise_error(w, bits)
        assert predicted == pytest.approx(Q.quantization_error(w, bits), rel=0.03)
    step = (w.max() - w.min()) / 255
    assert Q.uniform_noise_error(w, 8) == pytest.approx(
        float(step / 12**0.5 / w.pow(2).mean().sqrt())
    )


@pytest.mark.parametrize("bits", [2, 8])
def test_bitwidth_figure_at_slider_extremes(weight, bits):
    fig = cl.widgets.render(Q.bitwidth_figure, bits=bits, weight=weight)
    assert isinstance(fig, Figure)
    title = fig._suptitle.get_text()
    err_t = Q.quantization_error(weight, bits)
    err_c = Q.quantization_error(weight, bits, per_channel=True)
    assert title.startswith(f"{bits} bits ({2**bits} levels)")
    assert f"per-tensor {err_t:.2%}" in title and f"per-channel {err_c:.2%}" in title
    assert cl.widgets.render(Q.bitwidth_figure, bits=bits, weight=weight, row=0)


# --------------------------------------------------------------------------- post-training int8


def test_quantize_dynamic_int8_copies_and_shrinks(task):
    model = models.LeNet300100(seed=0).eval()
    int8 = Q.quantize_dynamic_int8(model)
    assert isinstance(model.fc1, nn.Linear)  # the original is untouched
    assert isinstance(int8.fc1, torch.ao.nn.quantized.dynamic.Linear)
    assert int8.fc1.weight().dtype == torch.qint8
    x = task[1][0][:50]
    with torch.no_grad():
        assert torch.allclose(int8(x), model(x), atol=0.05)
    ratio = models.state_dict_bytes(model) / models.state_dict_bytes(int8)
    assert 3.5 < ratio < 4.1


def test_state_dict_bytes_counts_four_bytes_per_float():
    assert 4 * 110 < models.state_dict_bytes(nn.Linear(10, 10)) < 4 * 110 + 2000


def test_cpu_latency_is_positive_and_restores_threads():
    before = torch.get_num_threads()
    seconds = Q.cpu_latency(nn.Linear(20, 5), torch.randn(8, 20), repeats=3)
    assert 0 < seconds < 1 and torch.get_num_threads() == before


# --------------------------------------------------------------------------- STE and QAT


def test_ste_round_rounds_forward_and_passes_gradients():
    x = torch.tensor([-1.6, -0.4, 0.5, 1.5, 2.7], requires_grad=True)
    out = Q.ste_round(x)
    assert out.tolist() == torch.round(x.detach()).tolist()
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.tolist() == [1.0] * 5


@pytest.mark.parametrize("bits", [8, 2])
def test_fake_quantize_ste_matches_torch_values_and_gradients(bits):
    x = (torch.randn(2000, generator=torch.Generator().manual_seed(2)) * 1.5).requires_grad_(True)
    scale, zp = Q.affine_qparams(-1.0, 2.0, bits)
    ours = Q.fake_quantize_ste(x, scale, zp, bits)
    ref = torch.fake_quantize_per_tensor_affine(x, scale.item(), zp.item(), 0, 2**bits - 1)
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    assert torch.equal(ours, ref)
    assert torch.equal(g_ours == 0, g_ref == 0) and 0 < int((g_ref == 0).sum()) < 2000
    assert torch.allclose(g_ours, g_ref)


def test_quant_linear_uses_quantised_weights_and_trains_the_shadow():
    base = nn.Linear(6, 4)
    layer = Q.QuantLinear.from_linear(base, bits=2)
    assert torch.equal(layer.weight, base.weight) and "bits=2" in repr(layer)
    w_hat = layer.quantized_weight()
    assert torch.allclose(w_hat, Q.fake_quantize(base.weight, 2, per_channel=True), atol=1e-6)
    assert all(len(torch.unique(row)) <= 4 for row in w_hat.detach())
    x = torch.randn(3, 6)
    assert torch.allclose(layer(x), nn.functional.linear(x, w_hat, base.bias))
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_quantize_weights_puts_every_row_on_its_grid():
    model = models.LeNet300100(seed=0)
    ptq = Q.quantize_weights(model, bits=3)
    assert not torch.equal(ptq.fc1.weight, model.fc1.weight)
    assert all(len(torch.unique(row)) <= 8 for row in ptq.fc2.weight)
    per_tensor = Q.quantize_weights(model, bits=3, per_channel=False)
    assert len(torch.unique(per_tensor.fc1.weight)) <= 8


def test_train_qat_returns_plain_layers_on_the_grid(task):
    train, test = task
    model, _ = P.train_lenet(train, epochs=3, progress=False)
    assert training.accuracy(model, test) > 0.95
    qat = Q.train_qat(model, train, bits=2, epochs=1, lr=3e-4)
    assert type(qat.fc1) is nn.Linear and not qat.training
    assert all(len(torch.unique(row)) <= 4 for row in qat.fc1.weight)
    assert isinstance(model.fc1, nn.Linear) and type(model.fc1) is nn.Linear
    assert training.accuracy(qat, test) > 0.8


def test_qat_vs_ptq_and_its_figure(task):
    train, test = task
    model, _ = P.train_lenet(train, epochs=2, progress=False)
    result = Q.qat_vs_ptq(model, train, test, bits=[2, 4], epochs=1, lr=3e-4)
    assert result["bits"].tolist() == [2, 4] and result["ptq"].shape == result["qat"].shape == (2,)
    assert result["ptq"][1] == training.accuracy(Q.quantize_weights(model, 4), test)
    fig = cl.widgets.render(Q.qat_figure, result=result, fp32_accuracy=0.95)
    title = fig.axes[0].get_title()
    assert title.startswith("2 bits per weight") and f"QAT {100 * result['qat'][0]:.2f} %" in title
    assert "fp32 95.00 %" in title


# --------------------------------------------------------------------------- exercises


def test_exercise_07_1_typical_mistakes():
    def with_scale(formula):
        def answer(x_min, x_max, bits):
            lo, hi = min(x_min, 0.0), max(x_max, 0.0)
            scale = formula(lo, hi, x_min, x_max, bits)
            return scale, int(min(max(-round(lo / scale), 0), 2**bits - 1))

        return answer

    assert_feedback(
        "07.1", with_scale(lambda lo, hi, a, b, bits: (hi - lo) / 2**bits), "2**bits - 1 steps"
    )
    assert_feedback(
        "07.1", with_scale(lambda lo, hi, a, b, bits: (b - a) / (2**bits - 1)), "leaves out 0"
    )
    solution = exercises.get("07.1").solution
    assert_feedback("07.1", lambda *args: (solution(*args)[0], -solution(*args)[1]), "wrong sign")
    assert_feedback(
        "07.1",
        lambda a, b, bits: (solution(a, b, bits)[0], -min(a, 0.0) / solution(a, b, bits)[0]),
        "not an integer",
    )
    assert_feedback("07.1", lambda *args: solution(*args)[0], "pair")
    assert_feedback("07.1", lambda *args: ("0.1", [1, 2]), "not the text '0.1'")


def test_exercise_07_2_typical_mistakes():
    assert_feedback("07.2", lambda x, s, z, b: (torch.round(x / s) + z - z) * s, "not clamped")
    assert_feedback(
        "07.2",
        lambda x, s, z, b: (torch.clamp(torch.floor(x / s) + z, 0, 2**b - 1) - z) * s,
        "floor",
    )
    assert_feedback(
        "07.2",
        lambda x, s, z, b: torch.clamp(torch.round(x / s) + z, 0, 2**b - 1) * s,
        "zero point",
    )


def test_exercise_07_3_typical_mistakes():
    assert_feedback("07.3", torch.round, "gradient is zero everywhere")
    assert_feedback("07.3", lambda x: torch.round(x).detach(), "no gradient")
    assert_feedback("07.3", lambda x: x * 1.0, "forward value")
    assert_feedback("07.3", lambda x: x.detach().numpy().round(), "return a tensor")
