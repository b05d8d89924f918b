"""course_lib.gradient_flow (notebook 11)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from torch import nn

import course_lib as cl
from course_lib import gradient_flow as gf
from course_lib import initialization


def _batch():
    return gf.digits_batch(32, seed=1)


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


# --------------------------------------------------------------------------- what is recorded


def test_gradstats_of_a_known_tensor():
    s = gf.GradStats.of(torch.tensor([3.0, -4.0]))
    assert s.mean == pytest.approx(-0.5) and s.norm == pytest.approx(5.0)
    assert s.max == pytest.approx(4.0) and s.std == pytest.approx(3.5)
    assert gf.GradStats.of(torch.tensor([2.0])).std == 0.0


def test_saturated_fraction_uses_notebook_02s_band():
    tanh = torch.tensor([[0.995, -0.995, 0.5, 0.0]])
    assert gf.saturated_fraction(tanh, "tanh") == pytest.approx(0.5)
    sigmoid = torch.tensor([[0.996, 0.004, 0.99, 0.5]])  # 0.99 is inside the band's edge
    assert gf.saturated_fraction(sigmoid, "sigmoid") == pytest.approx(0.5)
    assert gf.saturated_fraction(torch.zeros(3, 4), "relu") == 0.0


def test_dead_fraction_counts_units_zero_for_every_example():
    h = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert gf.dead_fraction(h) == pytest.approx(0.5)  # columns 0 and 3
    assert gf.dead_fraction(torch.relu(torch.randn(500, 8) + 3)) == 0.0


def test_passlog_starts_a_new_pass_when_a_name_repeats():
    log = gf.PassLog(["a", "b"])
    for name, value in (("a", 1), ("b", 2), ("a", 3)):
        log.add(name, gf.GradStats(value, 0.0, value, value))
    assert len(log.passes) == 2 and np.isnan(log.column("norm")[1])
    assert list(log.column("norm", step=0)) == [1, 2]
    log.new_pass()
    log.add("b", gf.GradStats(4, 0.0, 4, 4))
    assert len(log.passes) == 3
    with pytest.raises(RuntimeError, match="nothing recorded"):
        gf.PassLog(["a"]).column("norm")


# --------------------------------------------------------------------------- the tracker


def test_tracker_backward_records_weight_gradients_and_detaches():
    model = gf.deep_mlp(4, "relu", seed=0)
    x, y = _batch()
    tracker = gf.GradientTracker(model)
    stats = tracker.backward(_loss(model, x, y))
    assert set(stats) == set(tracker.weights.names) and len(stats) == 4
    assert not tracker.attached and gf.count_hooks(model) == 0
    by_hand = [layer.weight.grad.norm().item() for _, layer in gf.linear_layers(model)]
    assert np.allclose(tracker.stat("norm"), by_hand, rtol=1e-5)
    assert "0.weight" in tracker.table() and "64→10" in tracker.table()


def test_tracker_records_each_pass_not_the_accumulated_gradient():
    model = gf.deep_mlp(3, "tanh", seed=0)
    x, y = _batch()
    tracker = gf.GradientTracker(model)
    first = tracker.backward(_loss(model, x, y))["0.weight"].norm
    second = tracker.backward(_loss(model, x, y))["0.weight"].norm
    assert len(tracker.weights.passes) == 2 and first == pytest.approx(second, rel=1e-5)
    assert model[0].weight.grad.norm().item() == pytest.approx(2 * first, rel=1e-5)


def test_signals_equal_the_gradient_of_the_loss_with_respect_to_each_layer_output():
    model = gf.deep_mlp(5, "sigmoid", "batchnorm", seed=0)
    x, y = _batch()
    outputs = []
    handles = [m.register_forward_hook(lambda m, i, o: outputs.append(o)) for m in model
               if isinstance(m, nn.Linear)]  # fmt: skip
    expected = torch.autograd.grad(_loss(model, x, y), outputs)
    for h in handles:
        h.remove()
    with gf.GradientTracker(model, signals=True) as tracker:
        tracker.backward(_loss(model, x, y))
    assert np.allclose(tracker.signal_stat("norm"), [g.norm().item() for g in expected], rtol=1e-5)
    assert np.allclose(tracker.signal_stat("max"), [g.abs().max().item() for g in expected])


def test_signal_at_the_logits_is_softmax_minus_one_hot_over_n():
    model = gf.deep_mlp(3, "relu", seed=2)
    x, y = _batch()
    with gf.GradientTracker(model, signals=True) as tracker:
        logits = model(x)
        tracker.backward(nn.functional.cross_entropy(logits, y))
    by_hand = (logits.softmax(1) - nn.functional.one_hot(y, 10)).detach() / len(y)
    assert tracker.signal_stat("norm")[-1] == pytest.approx(by_hand.norm().item(), rel=1e-5)


def test_tracker_counts_saturated_and_dead_units_per_activation_layer():
    model = gf.deep_mlp(4, "relu", seed=0)
    with torch.no_grad():
        model[2].bias.fill_(-1e3)  # every unit of the second hidden layer is off
    x, y = _batch()
    with gf.GradientTracker(model, signals=True) as tracker:
        tracker.backward(_loss(model, x, y))
    dead = tracker.unit_stat("dead")
    assert dead.shape == (3,) and dead[0] < 0.5 and dead[1] == 1.0
    assert np.all(tracker.unit_stat("saturated") == 0)
    sigmoid = gf.deep_mlp(3, "sigmoid", gain=20.0, seed=0)
    with gf.GradientTracker(sigmoid, signals=True) as tracker:
        tracker.backward(_loss(sigmoid, x, y))
    assert tracker.unit_stat("saturated").max() > 0.5
    with pytest.raises(ValueError):
        tracker.unit_stat("asleep")


def test_tracker_as_context_manager_sees_every_pass_then_nothing():
    model = gf.deep_mlp(5, "sigmoid", seed=0)
    x, y = _batch()
    with gf.GradientTracker(model, signals=True) as tracker:
        assert tracker.attached and gf.count_hooks(model) > 0
        for _ in range(2):
            model.zero_grad()
            _loss(model, x, y).backward()
    assert not tracker.attached and gf.count_hooks(model) == 0
    assert len(tracker.weights.passes) == 2 and len(tracker.signals.passes) == 2
    assert len(tracker.units.passes) == 2 and np.all(tracker.signal_stat() > 0)
    _loss(model, x, y).backward()  # detached: not recorded
    assert len(tracker.weights.passes) == 2


def test_tracker_errors_say_what_to_do():
    model = gf.deep_mlp(3, "relu", seed=0)
    tracker = gf.GradientTracker(model)
    with pytest.raises(RuntimeError, match="nothing recorded"):
        tracker.stat()
    with pytest.raises(RuntimeError, match="nothing recorded"):
        tracker.table()
    with pytest.raises(TypeError, match="scalar loss"):
        tracker.backward(torch.ones(3))
    x, y = _batch()
    tracker.backward(_loss(model, x, y))
    with pytest.raises(ValueError, match="mean, std, norm or max"):
        tracker.stat("median")
    with pytest.raises(RuntimeError, match="before the forward"):
        gf.GradientTracker(model, signals=True).backward(_loss(model, x, y))
    assert gf.count_hooks(model) == 0


def test_count_hooks_and_layer_labels():
    model = gf.deep_mlp(3, "relu", seed=0)
    assert gf.count_hooks(model) == 0
    h1 = model[0].weight.register_hook(lambda g: None)
    h2 = model[1].register_forward_hook(lambda m, i, o: None)
    assert gf.count_hooks(model) == 2
    h1.remove()
    h2.remove()
    assert gf.count_hooks(model) == 0
    assert gf.layer_labels(cl.models.mlp([784, 128, 64, 10])) == ["784→128", "128→64", "64→10"]


# --------------------------------------------------------------------------- networks


def test_deep_mlp_plain_is_the_shared_mlp_with_notebook_02s_initialisation():
    plain = gf.deep_mlp(6, "tanh", seed=3)
    reference = cl.models.mlp([64] * 6 + [10], "tanh", seed=3)
    assert [type(m) for m in plain] == [type(m) for m in reference]
    generator = torch.Generator().manual_seed(3)
    for (_, ours), (_, theirs) in zip(
        gf.linear_layers(plain), gf.linear_layers(reference), strict=True
    ):
        expected = initialization.init_(theirs.weight.detach().clone(), "xavier", 1.0, generator)
        assert torch.equal(ours.weight, expected) and torch.all(ours.bias == 0)
    relu = gf.deep_mlp(40, "relu", gain=2.0, seed=0)
    weights = torch.cat([lin.weight.flatten() for _, lin in gf.linear_layers(relu)[1:-1]])
    assert weights.std().item() == pytest.approx(2 * np.sqrt(2 / 64), rel=0.03)  # He x gain


def test_deep_mlp_variants_follow_the_seed():
    res = gf.deep_mlp(6, "sigmoid", "residual", seed=0)
    assert (
        sum(isinstance(m, gf.ResidualBlock) for m in res) == 4 and len(gf.linear_layers(res)) == 6
    )
    bn = gf.deep_mlp(6, "tanh", "batchnorm", seed=0)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in bn) == 4
    assert torch.equal(gf.deep_mlp(3, seed=1)[0].weight, gf.deep_mlp(3, seed=1)[0].weight)
    assert not torch.equal(gf.deep_mlp(3, seed=1)[0].weight, gf.deep_mlp(3, seed=2)[0].weight)
    cl.setup(seed=2, quiet=True)
    try:
        assert torch.equal(gf.deep_mlp(3)[0].weight, gf.deep_mlp(3, seed=2)[0].weight)
    finally:
        cl.setup(seed=0, quiet=True)
    for bad in (dict(depth=1), dict(depth=3, activation="gelu"), dict(depth=3, architecture="x")):
        with pytest.raises(ValueError):
            gf.deep_mlp(**bad)


def test_residual_block_adds_its_input():
    block = gf.ResidualBlock(nn.Linear(4, 4), "relu")
    x = torch.randn(3, 4)
    assert torch.allclose(block(x), x + torch.relu(block.linear(x)))


def test_digits_batches_and_splits_follow_the_seed():
    x, y = gf.digits_batch(256, seed=0)
    assert x.shape == (256, 64) and y.shape == (256,)
    full, _ = cl.data.digits_tensors()
    assert any(torch.equal(x[0], row) for row in full)  # rows of the standardised digits
    assert not torch.equal(gf.digits_batch(8, 0)[1], gf.digits_batch(8, 1)[1])
    (xt, yt), (xv, yv) = gf.digits_train_val(n_train=1400, seed=0)
    assert xt.shape == (1400, 64) and len(xv) == len(yv) == 397 and len(yt) == 1400
    assert torch.equal(xt[:256], x)  # the batch is the start of the same shuffle


# --------------------------------------------------------------------------- what the notebook says


def test_sigmoid_signal_vanishes_relu_he_keeps_it():
    sigmoid = gf.gradient_profile(20, "sigmoid", seed=0)
    relu = gf.gradient_profile(20, "relu", seed=0)
    assert sigmoid["signal_ratio"] < 1e-10 and 0.25 < relu["signal_ratio"] < 4
    assert len(sigmoid["weight_norms"]) == len(sigmoid["signal_norms"]) == 20
    assert len(sigmoid["saturated"]) == len(sigmoid["dead"]) == 19
    assert sigmoid["saturated"].max() < 0.02  # the slope, not saturation
    # per layer the sigmoid signal shrinks by about its slope, at most 1/4
    assert sigmoid["signal_ratio"] ** (1 / 19) == pytest.approx(0.24, abs=0.02)


def test_weight_gradient_ratio_misses_what_the_signal_shows():
    small = gf.gradient_profile(20, "relu", gain=0.5, seed=0)
    healthy = gf.gradient_profile(20, "relu", seed=0)
    assert small["signal_ratio"] == pytest.approx(0.5**19, rel=0.5)
    assert 0.25 < small["weight_ratio"] < 4
    assert small["total"] * 50 < healthy["total"]


def test_skip_connections_and_batchnorm_keep_the_signal():
    residual = gf.gradient_profile(20, "sigmoid", "residual", seed=0)
    batchnorm = gf.gradient_profile(20, "sigmoid", "batchnorm", seed=0)
    assert residual["signal_ratio"] > 0.1 and residual["weight_ratio"] < 0.05
    assert residual["input_growth"] > 5 and residual["saturated"].max() > 0.3
    assert batchnorm["signal_ratio"] > 0.25


def test_deep_relu_networks_have_dead_units_at_initialisation():
    dead = gf.gradient_profile(20, "relu", seed=0)["dead"]
    assert dead[0] == 0 and dead[-5:].mean() > 0.1


def test_gain_above_one_explodes_the_relu_signal():
    exploding = gf.gradient_profile(20, "relu", gain=1.5, seed=0)
    healthy = gf.gradient_profile(20, "relu", seed=0)
    assert 500 < exploding["signal_ratio"] < 10_000 and exploding["total"] > 1000 * healthy["total"]
    per_layer = gf.gradient_profile(20, "sigmoid", gain=2.0, seed=0)["signal_ratio"] ** (1 / 19)
    assert 0.3 < per_layer < 0.6


def test_first_last_ratios_collects_both_views():
    ratios = gf.first_last_ratios({"s": ("sigmoid", "plain", 1.0)}, seeds=[0, 1])
    assert ratios["s"]["signal"].shape == (2,) and np.all(ratios["s"]["weight"] < 1e-9)


@pytest.mark.parametrize(
    "activation, architecture, gain, says",
    [
        ("sigmoid", "plain", 1.0, lambda p: p["signal_ratio"] < 1e-10),
        ("relu", "plain", 0.5, lambda p: p["signal_ratio"] < 1e-4 and p["weight_ratio"] > 0.25),
        ("relu", "plain", 2.0, lambda p: p["signal_ratio"] > 1e4),
        ("sigmoid", "residual", 1.0, lambda p: p["signal_ratio"] > 0.1),
    ],
)
def test_gradient_flow_figure_shows_what_the_lesson_says_at_the_slider_ends(
    activation, architecture, gain, says
):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig = gf.gradient_flow_figure(20, activation, architecture, gain)
    prof = gf.gradient_profile(
        20, activation, architecture, gain, seed=cl.config.resolve_seed(None)
    )
    assert says(prof)
    signal_line, weight_line = fig.axes[0].get_lines()[:2]
    assert np.allclose(signal_line.get_ydata(), np.maximum(prof["signal_norms"], 1e-45))
    assert np.allclose(weight_line.get_ydata(), np.maximum(prof["weight_norms"], 1e-45))
    which = "dead" if activation == "relu" else "saturated"
    heights = [bar.get_height() for bar in fig.axes[1].patches]
    assert np.allclose(heights, 100 * prof[which]) and which in fig.axes[1].get_ylabel()
    assert f"first/last signal {prof['signal_ratio']:.2g}" in fig.get_suptitle()


# --------------------------------------------------------------------------- clipping


def test_clip_grad_norm_matches_torch():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 4), nn.Linear(5, 4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 5) * 10
    for m in (a, b):
        (m(x) ** 2).sum().backward()
    ours = gf.clip_grad_norm(a.parameters(), 1.0)
    theirs = nn.utils.clip_grad_norm_(b.parameters(), 1.0)
    assert ours == pytest.approx(theirs.item(), rel=1e-5) and ours > 1.0
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-8)
    assert gf.global_grad_norm(a.parameters()) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_alone():
    layer = nn.Linear(3, 2)
    layer.weight.grad = torch.full((2, 3), 0.01)
    before = layer.weight.grad.clone()
    total = gf.clip_grad_norm(layer.parameters(), 1.0)
    assert total == pytest.approx(0.01 * np.sqrt(6), rel=1e-6)
    assert torch.equal(layer.weight.grad, before)
    assert gf.global_grad_norm([nn.Parameter(torch.ones(2))]) == 0.0
    assert gf.clip_grad_norm(nn.Linear(2, 2).parameters(), 1.0) == 0.0  # no gradients yet


def test_clipping_rescues_the_too_large_initialisation():
    runs = gf.clipping_runs(seed=0)
    assert not np.isfinite(runs[None].loss[-1])
    assert runs[1.0].val_accuracy[-1] > 0.7 and len(runs[1.0].loss) == 10


# --------------------------------------------------------------------------- update ratio


def test_update_ratio_tracker_equals_lr_times_grad_for_sgd():
    model = gf.deep_mlp(3, "relu", seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _batch()
    with gf.UpdateRatioTracker(model, optimizer) as tracker:
        _loss(model, x, y).backward()
        expected = [
            (0.1 * layer.weight.grad.norm() / layer.weight.norm()).item()
            for _, layer in gf.linear_layers(model)
        ]
        optimizer.step()
    assert tracker.as_array().shape == (1, 3) and tracker.labels == ["64→64", "64→64", "64→10"]
    assert np.allclose(tracker.ratios[0], expected, rtol=1e-4)
    optimizer.step()  # detached: not recorded
    assert len(tracker.ratios) == 1


def test_update_ratios_low_healthy_and_too_high(real_data):
    low, good, high = (gf.update_ratio_run(lr, n_train=3000, epochs=2, seed=0)
                       for lr in (1e-4, 1e-2, 0.5))  # fmt: skip
    assert good["ratios"].shape == (94, 3) and good["labels"] == ["784→128", "128→64", "64→10"]
    assert np.median(low["ratios"]) < 1e-4 < 1.5e-3 < np.median(good["ratios"]) < 7e-3
    assert high["early"] > 1.5e-2 and high["dead"][0] > 0.5 and good["dead"][0] < 0.1
    assert good["accuracy"] > 0.6 and max(low["accuracy"], high["accuracy"]) < 0.3
    fig = gf.update_ratio_figure([low, good, high])
    assert [line.get_label() for line in fig.axes[0].get_lines()[:3]] == good["labels"]
    assert "lr = 0.5" in fig.axes[2].get_title() and "dead" in fig.axes[2].get_title()
    with pytest.raises(ValueError):
        gf.update_ratio_figure([])


# --------------------------------------------------------------------------- exercises


def _per_tensor(grads, max_norm):
    return [g * min(1.0, max_norm / (float(g.norm()) + 1e-6)) for g in grads]


def _always_scale(grads, max_norm):
    total = torch.sqrt(sum((g**2).sum() for g in grads))
    return [g * max_norm / total for g in grads]


def _l1(grads, max_norm):
    total = sum(g.abs().sum() for g in grads)
    return [g * min(1.0, max_norm / float(total)) for g in grads]


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (_per_tensor, "each tensor on its own"),
        (_always_scale, "left unchanged"),
        (_l1, "is off"),
        (lambda grads, max_norm: grads[0], "list"),
        (lambda grads, max_norm: [g * float("nan") for g in grads], "NaN"),
        (lambda grads: grads, "raised TypeError"),
    ],
)
def test_clip_wrong_answers(answer, phrase):
    assert_feedback("11.1", answer, phrase)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda b, a: float((a.norm() - b.norm()).abs() / b.norm()), "norm of the difference"),
        (lambda b, a: float((a - b).norm() / a.norm()), "is off"),
        (lambda b, a: (a - b).abs() / b.abs(), "single number"),
        (lambda b, a: float("nan"), "NaN"),
    ],
)
def test_ratio_wrong_answers(answer, phrase):
    assert_feedback("11.2", answer, phrase)


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda h: float((h == 0).float().mean()), "zero outputs"),
        (lambda h: float((h == 0).any(dim=0).float().mean()), "all, not any"),
        (lambda h: float((h == 0).all(dim=1).float().mean()), "columns"),
        (lambda h: int((h == 0).all(dim=0).sum()), "not their number"),
        (lambda h: (h == 0).all(dim=0), "single number"),
        (lambda h: 0.5, "should be 0.3"),
    ],
)
def test_dead_share_wrong_answers(answer, phrase):
    assert_feedback("11.3", answer, phrase)


def test_dead_share_solution_is_dead_fraction():
    assert_feedback("11.3", gf.dead_fraction, status="correct")
