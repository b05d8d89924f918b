"""course_lib.weight_normalization (notebook 12)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.nn.utils import parametrize

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
    assert not parametrize.is_parametrized(linear) and parametrize.is_parametrized(theirs, "weight")
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


def test_fit_to_teacher_separates_the_layers():
    torch.manual_seed(0)
    x = torch.randn(300, 8)
    teacher = 3 * F.normalize(torch.randn(2, 8), dim=1)
    mse_wn = wn.fit_to_teacher(wn.WeightNormLinear(8, 2, bias=False), x, teacher, steps=300)
    mse_norm = wn.fit_to_teacher(wn.NormalizedLinear(8, 2, bias=False), x, teacher, steps=300)
    floor = F.mse_loss(x @ teacher.T / 3, x @ teacher.T).item()
    assert mse_wn < 1e-3 and 0.5 * floor < mse_norm < floor


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


def test_starting_pair_is_one_function_in_two_parametrisations():
    torch.manual_seed(4)
    x = torch.rand(128, 784)
    pair = wn.starting_pair(x, seed=0)
    plain, normed = pair["plain"], pair["weight norm"]
    assert all(parametrize.is_parametrized(m, "weight") for m in normed if isinstance(m, nn.Linear))
    assert not any(parametrize.is_parametrized(m) for m in plain)
    with torch.no_grad():
        assert torch.allclose(plain(x), normed(x), atol=1e-5)
        first = plain[0](x)
    assert torch.allclose(first.std(0, unbiased=False), torch.ones(256), atol=1e-4)
    assert not torch.equal(wn.starting_pair(x, seed=1)["plain"][0].weight, plain[0].weight)


def test_with_weight_norm_copies():
    base = models.mlp([5, 4, 3], seed=0)
    normed = wn.with_weight_norm(base)
    assert not parametrize.is_parametrized(base[0]) and parametrize.is_parametrized(normed[0])
    x = torch.randn(6, 5)
    assert torch.allclose(base(x), normed(x), atol=1e-6)


def test_direction_steps_are_g_over_v_squared_times_the_plain_step():
    """One plain SGD step on w vs on (g, v): the change of w's direction is (g/||v||)^2 larger."""
    torch.manual_seed(0)
    x, target = torch.randn(64, 8), torch.randn(64, 3)
    plain = nn.Linear(8, 3, bias=False)
    normed = wn.torch_weight_norm(plain)
    with torch.no_grad():
        wn.weight_norm_parts(normed)[0].mul_(4.0)  # g = 4 ||v||: factor 16
        plain.weight.mul_(4.0)  # the same w
    factor = wn.direction_step_factors(normed)
    assert factor == pytest.approx([16.0], rel=1e-5)
    moves = []
    for layer in (plain, normed):
        before = layer.weight.detach().clone()
        sgd = torch.optim.SGD(layer.parameters(), lr=1e-4)
        F.mse_loss(layer(x), target).backward()
        sgd.step()
        change = layer.weight.detach() - before
        radial = (change * before).sum(1, keepdim=True) / before.norm(dim=1, keepdim=True) ** 2
        moves.append((change - radial * before).norm().item())  # the part that turns w
    assert moves[1] / moves[0] == pytest.approx(16.0, rel=0.01)


# --------------------------------------------------------------------------- training comparison


def test_sgd_step_losses_reduces_the_loss_and_calls_back():
    torch.manual_seed(0)
    x = torch.randn(512, 784)
    y = (x[:, 0] > 0).long()
    seen = []
    losses = wn.sgd_step_losses(
        models.mlp([784, 256, 128, 10], seed=0), x, y, lr=0.05, seed=0, on_step=seen.append
    )
    assert losses.shape == (4,) and len(seen) == 4 and losses[-1] < losses[0]


def test_quarter_losses():
    runs = np.array([[4.0, 4.0, 1.0, 1.0], [2.0, 2.0, 0.0, 0.0]])
    assert np.allclose(wn.first_quarter_loss(runs), [4.0, 2.0])
    assert np.allclose(wn.last_quarter_loss(runs), [1.0, 0.0])
    assert wn.first_quarter_loss(np.array([[np.nan, 1.0, 1.0, 1.0]]))[0] == np.inf
    assert wn.last_quarter_loss(np.array([[1.0, 1.0, 1.0, np.inf]]))[0] == np.inf


def _fake_sweep():
    steps = np.ones((2, 8))
    return {
        "lrs": [0.001, 0.01, 0.1],
        "seeds": [0, 1],
        "plain": {0.001: 2 * steps, 0.01: 1.5 * steps, 0.1: 0.5 * steps},
        "weight norm": {0.001: 0.6 * steps, 0.01: 1.0 * steps, 0.1: np.full((2, 8), np.nan)},
    }


def test_best_learning_rate_and_sweep_table():
    sweep = _fake_sweep()
    assert wn.best_learning_rate(sweep, "plain") == 0.1
    assert wn.best_learning_rate(sweep, "weight norm") == 0.001  # a diverged run is never best
    table = wn.sweep_table(sweep)
    assert len(table.splitlines()) == 4 and "inf" in table.splitlines()[-1]


@pytest.mark.parametrize("lr, expected", [(0.001, 0.001), (0.3, 0.1), (0.02, 0.01)])
def test_lr_comparison_figure_draws_the_nearest_learning_rate(lr, expected):
    sweep = _fake_sweep()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig = wn.lr_comparison_figure(lr, sweep)
    title = fig.axes[0].get_title()
    plain = wn.first_quarter_loss(sweep["plain"][expected]).mean()
    assert f"lr = {expected:g}" in title and f"plain {plain:.2f}" in title
    assert len(fig.axes[0].get_lines()) == 4  # two seeds, two networks


def test_lr_sweep_on_mnist(real_data):
    sweep = wn.lr_sweep(seeds=(0,), n_train=2048, lrs=(0.003, 0.3))
    assert sweep["lrs"] == [0.003, 0.3] and sweep["plain"][0.003].shape == (1, 16)
    plain, normed = sweep["plain"], sweep["weight norm"]
    # weight norm's larger direction steps: far ahead at 0.003, blown up at 0.3
    assert wn.last_quarter_loss(normed[0.003])[0] < wn.last_quarter_loss(plain[0.003])[0] - 1
    assert wn.last_quarter_loss(normed[0.3])[0] > 10 > 1 > wn.last_quarter_loss(plain[0.3])[0]


def test_norm_growth_brakes_large_steps(real_data):
    plain_sgd = wn.norm_growth_run(0.1, momentum=0.0, n_train=1024, seed=0)
    assert plain_sgd["v_norm"].shape == (9, 3) and plain_sgd["shrink"].shape == (8, 3)
    assert plain_sgd["shrink"].max() < 1e-5  # orthogonal steps only lengthen v
    assert (
        plain_sgd["loss"].max() > 10
        and plain_sgd["v_norm"][-1, -1] > 3 * plain_sgd["v_norm"][0, -1]
    )
    assert (plain_sgd["step_factor"][-1] < plain_sgd["step_factor"][0]).all()
    calm = wn.norm_growth_run(0.01, momentum=0.9, n_train=1024, seed=0)
    assert (calm["v_norm"][-1] / calm["v_norm"][0]).max() < 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig = wn.norm_growth_figure([plain_sgd, calm])
    assert len(fig.axes[1].get_lines()) == 6 and "||v||" in fig.axes[1].get_title()


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
