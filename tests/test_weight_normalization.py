"""course_lib.weight_normalization (notebook 12)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

import course_lib.exercises.weight_normalization as wn_ex
from course_lib import exercises, models
from course_lib import weight_normalization as wn

# --------------------------------------------------------------------------- layers


def test_weight_norm_linear_defaults_and_weight():
    torch.manual_seed(0)
    layer = wn.WeightNormLinear(6, 4)
    assert layer.v.shape == (4, 6) and layer.g.shape == (4,) and layer.bias.shape == (4,)
    assert torch.allclose(layer.weight, layer.v)  # g = ||v|| at initialisation
    with torch.no_grad():
        layer.g.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        layer.v.mul_(5.0)  # the length of v does not matter
    assert torch.allclose(layer.weight.norm(dim=1), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert wn.WeightNormLinear(3, 2, bias=False).bias is None


def test_from_linear_matches_torch_weight_norm_in_outputs_and_gradients():
    torch.manual_seed(1)
    linear = nn.Linear(10, 5).double()
    ours, theirs = wn.WeightNormLinear.from_linear(linear), wn.torch_weight_norm(linear)
    assert ours.v.dtype == torch.float64
    assert not wn.parametrize_is_on(linear) and wn.parametrize_is_on(theirs)
    x = torch.randn(7, 10, dtype=torch.float64)
    assert torch.allclose(ours(x), linear(x)) and torch.allclose(ours(x), theirs(x))
    for layer in (ours, theirs):
        (layer(x) ** 3).sum().backward()
    g, v = wn.weight_norm_parts(theirs)
    assert g.shape == (5, 1) and v.shape == (5, 10)
    assert torch.allclose(ours.g.grad, g.grad.view(-1)) and torch.allclose(ours.v.grad, v.grad)
    assert torch.allclose(ours.bias.grad, theirs.bias.grad)


def test_normalized_linear_outputs_are_bounded_by_the_input_norm():
    torch.manual_seed(2)
    layer = wn.NormalizedLinear(8, 3, bias=False)
    with torch.no_grad():
        layer.v.mul_(100.0)  # scaling v changes nothing
    x = torch.randn(200, 8)
    assert torch.allclose(layer.weight.norm(dim=1), torch.ones(3))
    assert (layer(x).abs().max(1).values <= x.norm(dim=1) + 1e-5).all()
    assert wn.NormalizedLinear(3, 2).bias is not None


def test_fit_scaled_target_separates_the_layers():
    torch.manual_seed(0)
    x = torch.randn(300, 8)
    teacher = 3 * F.normalize(torch.randn(2, 8), dim=1)
    mse_wn = wn.fit_scaled_target(wn.WeightNormLinear(8, 2, bias=False), x, teacher, steps=300)
    mse_norm = wn.fit_scaled_target(wn.NormalizedLinear(8, 2, bias=False), x, teacher, steps=300)
    assert mse_wn < 1e-3 and mse_norm > 1.0


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("kind", ["torch", "scratch", "plain"])
def test_data_dependent_init_gives_unit_variance_preactivations(kind):
    torch.manual_seed(3)
    x = torch.randn(256, 12) * 3 + 2
    base = nn.Linear(12, 6)
    layer = {
        "torch": wn.torch_weight_norm(base),
        "scratch": wn.WeightNormLinear.from_linear(base),
        "plain": base,
    }[kind]
    wn.data_dependent_init(layer, x)
    out = layer(x).detach()
    assert torch.allclose(out.mean(0), torch.zeros(6), atol=1e-5)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(6), atol=1e-5)


def test_data_dependent_init_on_a_network_gives_the_same_function_for_both_kinds():
    torch.manual_seed(4)
    x = torch.rand(128, 784)
    base = models.mlp([784, 256, 128, 10], seed=0)
    plain = wn.data_dependent_init(models.mlp([784, 256, 128, 10], seed=0), x)
    normed = wn.data_dependent_init(wn.apply_weight_norm(base), x)
    assert all(wn.parametrize_is_on(m) for m in normed if isinstance(m, nn.Linear))
    assert not any(wn.parametrize_is_on(m) for m in base if isinstance(m, nn.Linear))
    with torch.no_grad():
        assert torch.allclose(plain(x), normed(x), atol=1e-5)
        first = plain[0](x)
    assert torch.allclose(first.std(0, unbiased=False), torch.ones(256), atol=1e-4)


# --------------------------------------------------------------------------- training comparison


def test_train_steps_reduces_the_loss():
    torch.manual_seed(0)
    x = torch.randn(256, 784)
    y = (x[:, 0] > 0).long()
    losses = wn.train_steps(
        models.mlp([784, 256, 128, 10], seed=0), x, y, lr=0.05, epochs=3, batch_size=64
    )
    assert losses.shape == (12,) and losses[-4:].mean() < losses[:4].mean()


def test_early_and_final_loss():
    runs = np.array([[4.0, 4.0, 1.0, 1.0], [2.0, 2.0, 0.0, 0.0]])
    assert np.allclose(wn.early_loss(runs), [4.0, 2.0])
    assert wn.final_loss(runs) == pytest.approx(0.5)
    assert wn.early_loss(np.array([[np.nan, 1.0, 1.0, 1.0]]))[0] == np.inf
    assert wn.final_loss(np.array([[1.0, 1.0, 1.0, np.inf]])) == np.inf


def test_lr_sweep_and_slider_figure(real_data):
    sweep = wn.lr_sweep(lrs=(0.001, 0.3), seeds=(0,), n_train=512)
    assert sweep["lrs"] == [0.001, 0.3] and sweep["plain"][0.001].shape == (1, 4)
    for lr, expected in ((0.001, 0.001), (0.3, 0.3), (0.01, 0.001), (1.0, 0.3)):
        fig = wn.lr_comparison_figure(lr, sweep)
        early = wn.early_loss(sweep["plain"][expected]).mean()
        assert isinstance(fig, Figure)
        title = fig.axes[0].get_title()
        assert f"lr = {expected:g}" in title and f"early loss plain {early:.2f}" in title


# --------------------------------------------------------------------------- neuron slider


def test_breast_cancer_2d():
    x, y, names = wn.breast_cancer_2d()
    assert x.shape == (569, 2) and set(np.unique(y)) == {0.0, 1.0} and len(names) == 2
    assert np.allclose(x.mean(0), 0, atol=1e-10) and np.allclose(x.std(0), 1)


def test_neuron_metrics_accuracy_depends_only_on_the_direction():
    a = wn.neuron_metrics(225.0, 0.5)
    b = wn.neuron_metrics(225.0, 5.0)
    assert a["accuracy"] == b["accuracy"] > 0.9 and a["log_loss"] != b["log_loss"]
    opposite = wn.neuron_metrics(45.0, 1.0)
    assert opposite["accuracy"] == pytest.approx(1 - a["accuracy"], abs=0.01)


@pytest.mark.parametrize("angle, g", [(0.0, 0.1), (360.0, 20.0), (225.0, 2.0)])
def test_neuron_figure_at_slider_extremes(angle, g):
    fig = wn.neuron_figure(angle, g)
    m = wn.neuron_metrics(angle, g)
    title = fig.axes[0].get_title()
    assert isinstance(fig, Figure) and f"accuracy {m['accuracy']:.1%}" in title
    assert f"log-loss {m['log_loss']:.3f}" in title


# --------------------------------------------------------------------------- spectral norm


def test_power_iteration_matches_svd():
    w = torch.randn(30, 20, generator=torch.Generator().manual_seed(0))
    exact = torch.linalg.matrix_norm(w, ord=2).item()
    assert wn.power_iteration(w, iterations=500) == pytest.approx(exact, rel=1e-6)
    assert wn.power_iteration(torch.diag(torch.tensor([3.0, 1.0])), iterations=50) == pytest.approx(
        3.0
    )


# --------------------------------------------------------------------------- exercises


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda g, v: g[:, None] * v / v.norm(), "whole matrix"),
        (lambda g, v: g[:, None] * v / v.norm(dim=0), "columns"),
        (lambda g, v: F.normalize(v, dim=1), "forgot to multiply by g"),
        (lambda g, v: g * v.T / v.norm(dim=1), "shape"),
        (lambda g, v: v * float("nan"), "NaN"),
        (lambda g: g, "raised TypeError"),
    ],
)
def test_weight_wrong_answers(answer, phrase):
    result = exercises.evaluate("12.1", answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message


def _t(v, x):
    return x @ (v / v.norm(dim=1, keepdim=True)).T


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda v, x: (1 / _t(v, x).var(0, unbiased=False), -_t(v, x).mean(0)), "variance"),
        (lambda v, x: (1 / _t(v, x).std(0), -_t(v, x).mean(0) / _t(v, x).std(0)), "unbiased"),
        (
            lambda v, x: (
                1 / _t(v, x).std(0, unbiased=False),
                _t(v, x).mean(0) / _t(v, x).std(0, unbiased=False),
            ),
            "wrong sign",
        ),
        (lambda v, x: 1 / _t(v, x).std(0, unbiased=False), "pair"),
        (lambda v, x: (torch.ones(5), torch.zeros(5)), "is off"),
        (lambda v: (v, v), "raised TypeError"),
    ],
)
def test_init_wrong_answers(answer, phrase):
    result = exercises.evaluate("12.2", answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message


@pytest.mark.parametrize(
    "answer, phrase",
    [
        (lambda w, n: float(w.norm()), "Frobenius"),
        (lambda w, n: float(w.norm(dim=1).max()), "row norm"),
        (lambda w, n: float(torch.linalg.matrix_norm(w, ord=2)) ** 2, "squared"),
        (lambda w, n: torch.linalg.svdvals(w), "single number"),
        (lambda w, n: 1.0, "largest singular value is"),
        (lambda w, n: float("nan"), "estimate is nan"),
        (lambda w: 1.0, "raised TypeError"),
    ],
)
def test_power_wrong_answers(answer, phrase):
    result = exercises.evaluate("12.3", answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message


def test_power_solution_is_the_largest_singular_value():
    w = wn_ex._W_SN
    assert wn_ex._solution_power(w, 200) == pytest.approx(
        torch.linalg.matrix_norm(w, ord=2).item(), rel=1e-4
    )
    assert math.isfinite(wn_ex._solution_power(w, 1))
