"""course_lib.quantization (notebook 07)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import assert_feedback
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


def _levels_inside(ax, color, low, high):
    """x positions of the vertical grid lines of ``color`` that fall inside [low, high]."""
    from matplotlib.colors import same_color

    xs = [line.get_xdata()[0] for line in ax.lines if len(line.get_xdata())]
    colors = [line.get_color() for line in ax.lines if len(line.get_xdata())]
    return [x for x, c in zip(xs, colors, strict=True) if same_color(c, color) and low <= x <= high]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # as test_slider_ranges does
def test_bitwidth_figure_at_the_slider_ends_shows_what_the_lesson_says(weight):
    narrow = int((weight.amax(1) - weight.amin(1)).argmin())
    low, high = weight[narrow].min().item(), weight[narrow].max().item()
    two = cl.widgets.render(Q.bitwidth_figure, bits=2, weight=weight)
    assert two.get_suptitle().startswith("2 bits (4 levels)")
    assert len(_levels_inside(two.axes[0], "tab:red", low, high)) <= 1  # per tensor: 0 or 1 level
    assert len(_levels_inside(two.axes[0], "tab:blue", -np.inf, np.inf)) == 4  # per row: 4 levels
    assert len(_levels_inside(two.axes[0], "tab:blue", low, high)) >= 3  # fitted to the row
    eight = cl.widgets.render(Q.bitwidth_figure, bits=8, weight=weight)
    assert eight.get_suptitle().startswith("8 bits (256 levels)")
    assert len(_levels_inside(eight.axes[0], "tab:red", low, high)) >= 2
    err_t, err_c = (Q.quantization_error(weight, 8, per_channel=pc) for pc in (False, True))
    assert err_c < err_t < 0.02  # at 8 bits both are small, and per channel still wins
    assert f"per-tensor {err_t:.2%}" in eight.get_suptitle()
    assert cl.widgets.render(Q.bitwidth_figure, bits=4, weight=weight, row=0)


# --------------------------------------------------------------------------- integer-only arithmetic


def test_symmetric_scale_equals_the_symmetric_observer(weight):
    obs = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    obs(weight)
    scale, zero_point = obs.calculate_qparams()
    assert torch.equal(Q.symmetric_scale(weight).reshape(1), scale) and zero_point.item() == 0


@pytest.mark.parametrize("m", [0.7, 1.23e-4, 3.1e-9, 0.99999999999])
def test_fixed_point_multiplier_represents_m(m):
    m0, shift = Q.fixed_point_multiplier(m)
    assert 2**30 <= m0 < 2**31 and shift >= -1  # -1 only when m rounds up to 1
    assert m0 / 2 ** (31 + shift) == pytest.approx(m, rel=1e-9)


def test_fixed_point_multiplier_rejects_multipliers_outside_0_1():
    for m in (0.0, 1.5):
        with pytest.raises(ValueError, match="multiplier"):
            Q.fixed_point_multiplier(m)


def test_integer_linear_rounds_like_the_real_multiplier():
    g = torch.Generator().manual_seed(8)
    q_x = torch.randint(0, 256, (40, 30), generator=g)
    q_w = torch.randint(-128, 128, (20, 30), generator=g)
    bias_q = torch.randint(-5000, 5000, (20,), generator=g)
    m = 3.7e-4
    m0, shift = Q.fixed_point_multiplier(m)
    ours = Q.integer_linear(q_x, 100, q_w, bias_q, m0, shift, 128)
    acc = ((q_x - 100) @ q_w.T + bias_q).double()
    reference = torch.clamp(torch.round(acc * m) + 128, 0, 255).long()
    assert ours.dtype == torch.int64 and ours.min() >= 0 and ours.max() <= 255
    differ = ours != reference
    assert differ.double().mean() < 0.01  # only where acc * m sits on a rounding tie
    tie = (acc * m - (acc * m).floor() - 0.5).abs()
    assert not differ.any() or tie[differ].max() < 1e-4


def test_int8_linear_from_scratch_equals_torchs_quantised_linear():
    torch.manual_seed(0)
    linear = nn.Linear(64, 32)
    x = torch.randn(100, 64)
    x_qp = tuple(v.item() for v in Q.affine_qparams(x.min(), x.max()))
    with torch.no_grad():
        y = linear(x)
    y_qp = tuple(v.item() for v in Q.affine_qparams(y.min(), y.max()))
    ours = Q.int8_linear_from_scratch(linear, x, x_qp, y_qp)
    theirs = Q.int8_linear_torch(linear, x, x_qp, y_qp).long()
    assert (ours - theirs).abs().max() <= 1 and (ours != theirs).double().mean() < 0.005
    assert (Q.dequantize(ours, *y_qp) - y).norm() / y.norm() < 0.02


# --------------------------------------------------------------------------- calibration


def test_calibrated_range_minmax_and_percentile():
    g = torch.Generator().manual_seed(9)
    relu_like = torch.relu(torch.randn(10_000, generator=g))
    relu_like[:5] = 50.0  # a few outliers
    assert Q.calibrated_range(relu_like, "minmax") == (0.0, 50.0)
    low, high = Q.calibrated_range(relu_like, "percentile", percentile=99.9)
    assert low == 0.0 and 2.0 < high < 4.0  # the outliers are cut, zero kept
    signed = torch.randn(10_000, generator=g)
    low, high = Q.calibrated_range(signed, "percentile", percentile=99)
    assert low == pytest.approx(-2.33, abs=0.15) and high == pytest.approx(2.33, abs=0.15)
    with pytest.raises(ValueError, match="method"):
        Q.calibrated_range(signed, "mse")


def test_range_error_trades_clipping_for_rounding():
    g = torch.Generator().manual_seed(10)
    a = torch.relu(torch.randn(20_000, generator=g)) ** 2  # a long right tail
    minmax, pct = Q.calibrated_range(a, "minmax"), Q.calibrated_range(a, "percentile")
    assert Q.range_error(a, *minmax, bits=8) < Q.range_error(a, *pct, bits=8)
    assert Q.range_error(a, *pct, bits=3) < Q.range_error(a, *minmax, bits=3)
    assert Q.range_error(a, *minmax, bits=8) < Q.range_error(a, *minmax, bits=4)


# --------------------------------------------------------------------------- latency over batch sizes


def test_latency_vs_batch_and_its_figure():
    before = torch.get_num_threads()
    big, small = nn.Linear(256, 256), nn.Linear(256, 4)
    result = Q.latency_vs_batch({"fp32": big, "int8": small}, torch.randn(64, 256), batches=(1, 64))
    assert result["batch"].tolist() == [1, 64] and torch.get_num_threads() == before
    assert result["fp32"][1] > result["fp32"][0] > 0  # a bigger batch takes longer
    fig = cl.widgets.render(Q.latency_figure, result=result)
    speedup = result["fp32"] / result["int8"]
    assert f"{speedup[0]:.2f}x as fast at batch 1" in fig.get_suptitle()
    assert f"{speedup[1]:.2f}x at batch 64" in fig.get_suptitle()


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
