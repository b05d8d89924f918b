"""course_lib.gradient_flow (notebook 11)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import course_lib as cl
from course_lib import exercises
from course_lib import gradient_flow as G


def _batch(model_in=64):
    x, y = G.digits_batch(32, seed=1)
    return x[:, :model_in], y


# --------------------------------------------------------------------------- tracker


def test_gradstats_of_a_known_tensor():
    s = G.GradStats.of(torch.tensor([3.0, -4.0]))
    assert s.mean == pytest.approx(-0.5) and s.norm == pytest.approx(5.0)
    assert s.max == pytest.approx(4.0) and s.std == pytest.approx(3.5)
    assert G.GradStats.of(torch.tensor([2.0])).std == 0.0


def test_tracker_backward_records_parameter_gradients_and_detaches():
    model = G.deep_mlp(4, "relu")
    x, y = _batch()
    tracker = G.GradientTracker(model)
    stats = tracker.backward(nn.functional.cross_entropy(model(x), y))
    assert set(stats) == set(tracker.names)
    assert len(tracker.names) == 4 and not tracker.attached and G.count_hooks(model) == 0
    for name, layer in G.linear_layers(model):
        assert stats[f"{name}.weight"].norm == pytest.approx(
            layer.weight.grad.norm().item(), rel=1e-5
        )
    assert np.allclose(
        tracker.stat("norm"),
        [layer.weight.grad.norm().item() for _, layer in G.linear_layers(model)],
    )
    assert "0.weight" in tracker.table()


def test_tracker_records_each_pass_not_the_accumulated_gradient():
    model = G.deep_mlp(3, "tanh")
    x, y = _batch()
    tracker = G.GradientTracker(model, params="all")
    assert len(tracker.names) == 6  # weights and biases of 3 layers
    first = tracker.backward(nn.functional.cross_entropy(model(x), y))["0.weight"].norm
    second = tracker.backward(nn.functional.cross_entropy(model(x), y))["0.weight"].norm
    assert len(tracker.records) == 2 and first == pytest.approx(second, rel=1e-5)
    assert model[0].weight.grad.norm().item() == pytest.approx(2 * first, rel=1e-5)


def test_tracker_as_context_manager_with_outputs():
    model = G.deep_mlp(5, "sigmoid")
    x, y = _batch()
    with G.GradientTracker(model, outputs=True) as tracker:
        assert tracker.attached and G.count_hooks(model) > 0
        for _ in range(2):
            model.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
    assert not tracker.attached and G.count_hooks(model) == 0
    assert len(tracker.records) == 2 and len(tracker.output_records) == 2
    out = tracker.output_stat("norm")
    assert out.shape == (5,) and np.all(out > 0)
    # nothing is recorded once detached
    nn.functional.cross_entropy(model(x), y).backward()
    assert len(tracker.records) == 2


def test_tracker_errors():
    model = G.deep_mlp(3, "relu")
    with pytest.raises(ValueError):
        G.GradientTracker(model, params="some")
    tracker = G.GradientTracker(model)
    with pytest.raises(RuntimeError):
        tracker.stat()
    with pytest.raises(RuntimeError):
        tracker.table()
    with pytest.raises(TypeError):
        tracker.backward(torch.ones(3))
    x, y = _batch()
    tracker.backward(nn.functional.cross_entropy(model(x), y))
    with pytest.raises(ValueError):
        tracker.stat("median")
    outputs = G.GradientTracker(model, outputs=True)
    with pytest.raises(RuntimeError, match="before the forward"):
        outputs.backward(nn.functional.cross_entropy(model(x), y))
    assert G.count_hooks(model) == 0


# --------------------------------------------------------------------------- networks


def test_deep_mlp_structure_and_init():
    plain = G.deep_mlp(6, "relu")
    assert len(G.linear_layers(plain)) == 6
    res = G.deep_mlp(6, "sigmoid", "residual")
    assert sum(isinstance(m, G.ResidualBlock) for m in res) == 4
    bn = G.deep_mlp(6, "tanh", "batchnorm")
    assert sum(isinstance(m, nn.BatchNorm1d) for m in bn) == 4
    w = G.deep_mlp(3, "relu", width=400, in_dim=400)[2].weight
    assert w.std().item() == pytest.approx(np.sqrt(2 / 400), rel=0.05)  # He
    w2 = G.deep_mlp(3, "relu", width=400, in_dim=400, gain=2.0)[2].weight
    assert w2.std().item() == pytest.approx(2 * np.sqrt(2 / 400), rel=0.05)
    assert torch.equal(G.deep_mlp(3, seed=1)[0].weight, G.deep_mlp(3, seed=1)[0].weight)
    for bad in (dict(depth=1), dict(depth=3, activation="gelu"), dict(depth=3, architecture="x")):
        with pytest.raises(ValueError):
            G.deep_mlp(**bad)


def test_residual_block_adds_its_input():
    block = G.ResidualBlock(4, "relu")
    x = torch.randn(3, 4)
    assert torch.allclose(block(x), x + torch.relu(block.linear(x)))


def test_digits_batch_is_standardised():
    x, y = G.digits_batch(256, seed=0)
    assert x.shape == (256, 64) and y.shape == (256,)
    full, _ = cl.data.digits_tensors()
    assert any(torch.equal(x[0], row) for row in full)  # rows of the standardised digits
    assert not torch.equal(G.digits_batch(8, 0)[1], G.digits_batch(8, 1)[1])


def test_count_hooks():
    model = G.deep_mlp(3, "relu")
    assert G.count_hooks(model) == 0
    h1 = model[0].weight.register_hook(lambda g: None)
    h2 = model[1].register_forward_hook(lambda m, i, o: None)
    assert G.count_hooks(model) == 2
    h1.remove()
    h2.remove()
    assert G.count_hooks(model) == 0


def test_digits_train_val_and_linear_layers():
    (xt, yt), (xv, yv) = G.digits_train_val(n_train=1400, seed=0)
    assert xt.shape == (1400, 64) and len(xv) == len(yv) == 397 and len(yt) == 1400
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.ReLU(), nn.Linear(8, 2))
    assert [name for name, _ in G.linear_layers(model)] == ["0", "3"]


def test_first_last_ratio():
    assert G.first_last_ratio([1e-6, 1.0, 2.0]) == pytest.approx(5e-7)
    with pytest.raises(ValueError):
        G.first_last_ratio([1.0])


def test_vanishing_and_healthy_gradient_profiles():
    sigmoid = G.gradient_profile(20, "sigmoid")
    relu = G.gradient_profile(20, "relu")
    residual = G.gradient_profile(20, "sigmoid", "residual")
    batchnorm = G.gradient_profile(20, "sigmoid", "batchnorm")
    assert sigmoid["ratio"] < 1e-9
    assert 0.1 < relu["ratio"] < 10
    assert residual["ratio"] > 1e-3 and batchnorm["ratio"] > 0.1
    assert len(sigmoid["weight_norms"]) == len(sigmoid["output_norms"]) == 20
    exploding = G.gradient_profile(20, "relu", gain=1.5)
    assert exploding["total"] > 1000 * relu["total"]


@pytest.mark.parametrize(
    "depth, activation, architecture, gain",
    [
        (2, "sigmoid", "plain", 0.5),
        (50, "sigmoid", "plain", 1.0),
        (50, "relu", "residual", 2.0),
        (20, "tanh", "batchnorm", 1.0),
    ],
)
def test_gradient_flow_figure_at_slider_extremes(depth, activation, architecture, gain):
    fig = G.gradient_flow_figure(depth, activation, architecture, gain)
    ratio = G.gradient_profile(depth, activation, architecture, gain)["ratio"]
    assert isinstance(fig, Figure)
    title = fig.axes[0].get_title()
    assert f"first/last = {ratio:.2g}" in title and f"depth {depth}" in title


# --------------------------------------------------------------------------- clipping


def test_clip_grad_norm_matches_torch():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 4), nn.Linear(5, 4)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 5) * 10
    for m in (a, b):
        (m(x) ** 2).sum().backward()
    ours = G.clip_grad_norm(a.parameters(), 1.0)
    theirs = nn.utils.clip_grad_norm_(b.parameters(), 1.0)
    assert ours == pytest.approx(theirs.item(), rel=1e-5) and ours > 1.0
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, rtol=1e-5, atol=1e-8)
    assert G.global_grad_norm(a.parameters()) == pytest.approx(1.0, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_alone():
    layer = nn.Linear(3, 2)
    layer.weight.grad = torch.full((2, 3), 0.01)
    before = layer.weight.grad.clone()
    total = G.clip_grad_norm(layer.parameters(), 1.0)
    assert total == pytest.approx(0.01 * np.sqrt(6), rel=1e-6)
    assert torch.equal(layer.weight.grad, before)
    assert G.global_grad_norm([nn.Parameter(torch.ones(2))]) == 0.0
    assert G.clip_grad_norm(nn.Linear(2, 2).parameters(), 1.0) == 0.0  # no gradients yet


# --------------------------------------------------------------------------- update ratio


def test_update_ratio_tracker_equals_lr_times_grad_for_sgd():
    model = G.deep_mlp(3, "relu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _batch()
    with G.UpdateRatioTracker(model, optimizer) as tracker:
        nn.functional.cross_entropy(model(x), y).backward()
        expected = [
            (0.1 * layer.weight.grad.norm() / layer.weight.norm()).item()
            for _, layer in G.linear_layers(model)
        ]
        optimizer.step()
    assert tracker.as_array().shape == (1, 3)
    assert np.allclose(tracker.ratios[0], expected, rtol=1e-4)
    optimizer.step()  # detached: not recorded
    assert len(tracker.ratios) == 1


def test_update_ratio_run_and_figure(real_data):
    good = G.update_ratio_run(0.01, n_train=1000)
    bad = G.update_ratio_run(1e-4, n_train=1000)
    assert good["ratios"].shape == (16, 3) and good["names"] == ["0.weight", "2.weight", "4.weight"]
    assert 2e-4 < np.median(good["ratios"]) < 1e-2 and np.median(bad["ratios"]) < 1e-4
    assert 0 <= bad["accuracy"] <= 1 and len(good["loss"]) == 1
    fig = G.update_ratio_figure([bad, good])
    assert isinstance(fig, Figure) and "median ratio" in fig.axes[0].get_title()
    with pytest.raises(ValueError):
        G.update_ratio_figure([])


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
    result = exercises.evaluate("11.1", answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message


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
    result = exercises.evaluate("11.2", answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message
