"""course_lib.initialization (notebook 02)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from torch import nn

from course_lib import initialization as init


def test_fans_match_torch():
    for shape in ((10, 784), (64, 3, 3, 3), (8, 4, 5)):
        assert init.fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="2\\+ dimensions"):
        init.fans((5,))


def test_std_formulas():
    assert init.xavier_std(100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert init.kaiming_std(50) == pytest.approx(math.sqrt(2 / 50))
    assert init.pytorch_default_std(48) == pytest.approx(1 / math.sqrt(3 * 48))
    assert init.scheme_std("small", (3, 4)) == 0.01 and init.scheme_std("large", (3, 4)) == 1.0
    assert init.scheme_std("pytorch", (8, 4, 3, 3)) == pytest.approx(1 / math.sqrt(3 * 36))
    with pytest.raises(ValueError, match="not random"):
        init.scheme_std("zeros", (3, 4))


def test_relu_layer_factors_follow_from_the_variances():
    factors = {s: init.relu_layer_factor(s, 256) for s in ("small", "large", "xavier", "kaiming")}
    assert factors == pytest.approx({"small": 0.0128, "large": 128, "xavier": 0.5, "kaiming": 1})
    assert init.relu_layer_factor("pytorch", 100) == pytest.approx(1 / 6)


@pytest.mark.parametrize("scheme", list(init.SCHEMES))
def test_init_schemes(scheme):
    w = init.init_(torch.empty(400, 200), scheme, generator=torch.Generator().manual_seed(0))
    if scheme == "pytorch":  # uniform on +-1/sqrt(fan_in)
        assert w.abs().max() <= 1 / math.sqrt(200) and w.abs().max() > 0.99 / math.sqrt(200)
    if scheme in ("zeros", "constant"):
        assert torch.all(w == w[0, 0]) and w[0, 0].item() == pytest.approx(
            0.0 if scheme == "zeros" else 0.05
        )
    else:
        expected = init.scheme_std(scheme, w.shape)
        assert (
            w.std().item() == pytest.approx(expected, rel=0.02)
            and abs(w.mean().item()) < expected * 0.02
        )
    with pytest.raises(ValueError, match="unknown scheme"):
        init.init_(torch.empty(2, 2), "uniformish")


def test_init_equals_torch_with_the_same_generator():
    def gen():
        return torch.Generator().manual_seed(3)

    ours = init.init_(torch.empty(30, 20), "kaiming", generator=gen())
    assert torch.equal(ours, nn.init.kaiming_normal_(torch.empty(30, 20), generator=gen()))
    ours = init.init_(torch.empty(30, 20), "xavier", generator=gen())
    assert torch.equal(ours, nn.init.xavier_normal_(torch.empty(30, 20), generator=gen()))
    ours = init.init_(torch.empty(30, 20, 3), "xavier", uniform=True, generator=gen())
    assert torch.equal(ours, nn.init.xavier_uniform_(torch.empty(30, 20, 3), generator=gen()))
    bound = math.sqrt(6 / (20 * 3 + 30 * 3))  # Glorot's uniform form
    assert ours.abs().max() <= bound and ours.var().item() == pytest.approx(bound**2 / 3, rel=0.1)


@pytest.mark.parametrize(
    "make", [lambda: nn.Linear(40, 30), lambda: nn.Conv2d(6, 8, 5), lambda: nn.Conv2d(3, 4, 3)]
)
def test_pytorch_default_redraws_a_layer_exactly_as_its_constructor(make):
    ours = make()
    torch.manual_seed(11)
    theirs = make()
    torch.manual_seed(11)
    init.pytorch_default_(ours)
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    bound = 1 / math.sqrt(init.fans(ours.weight.shape)[0])
    assert ours.weight.abs().max() <= bound and ours.bias.abs().max() <= bound


def test_deep_mlp_structure():
    model = init.deep_mlp(3, width=8, activation="tanh", scheme="xavier", n_in=5, n_out=2)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert model[0].in_features == 5 and model[-1].out_features == 2
    assert all(torch.all(m.bias == 0) for m in model if isinstance(m, nn.Linear))
    with pytest.raises(ValueError):
        init.deep_mlp(0)
    with pytest.raises(ValueError, match="activation"):
        init.deep_mlp(2, activation="gelu")


def test_depth_stats_he_is_stable_small_vanishes():
    he = init.depth_stats(20, "relu", "kaiming", width=128, batch=128, seed=0)
    small = init.depth_stats(20, "relu", "small", width=128, batch=128, seed=0)
    assert 0.1 < he.ratio() < 10 and small.ratio() < 1e-30
    assert len(he.activation_std) == len(he.gradient_std) == len(he.activations) == 20
    assert he.saturated.shape == he.dead.shape == (20,) and 0.1 < he.ratio("gradient") < 10
    assert 0 < he.ratio("activation") < 10


@pytest.mark.parametrize("scheme", ["small", "large", "xavier", "pytorch"])
def test_relu_variance_follows_the_factor_per_layer(scheme):
    ratios = init.repeated_ratios(scheme, "relu", depth=30, runs=2, seed=0)
    predicted = init.relu_layer_factor(scheme) ** 29
    assert ratios.shape == (2,) and ratios[0] != ratios[1]
    assert np.all(np.abs(np.log10(ratios) - np.log10(predicted)) < 2)


def test_dead_relu_units_and_saturated_tanh_units():
    he = init.depth_stats(50, "relu", "kaiming", seed=1)
    assert he.dead[0] == 0 and he.dead[-1] > 0.2  # alive at first, many dead deep down
    assert np.all(init.depth_stats(10, "tanh", "xavier", seed=1).dead == 0)
    stats = init.depth_stats(10, "tanh", "large", width=128, batch=64, seed=0)
    assert stats.saturated[-1] > 0.8
    assert init.depth_stats(10, "tanh", "xavier", seed=0).saturated.max() < 0.05


def test_tanh_gain_one_is_critical_and_gain_five_thirds_chaotic():
    critical = init.depth_stats(50, "tanh", "xavier", 1.0, seed=2)
    chaotic = init.depth_stats(50, "tanh", "xavier", nn.init.calculate_gain("tanh"), seed=2)
    assert 0.5 < 1 / critical.ratio("gradient") < 2 and 0.005 < critical.ratio() < 0.02
    assert 1 / chaotic.ratio("gradient") > 30 and 0.3 < chaotic.ratio() < 0.6


def _title_ratios(fig: Figure) -> tuple[float, float]:
    title = fig.get_suptitle()
    forward = float(title.split("variance last/first = ")[1].split(",")[0])
    return forward, float(title.split("gradient first/last = ")[1])


@pytest.mark.parametrize(
    "depth, gain, tolerance", [(2, 0.25, 0.5), (2, 4.0, 0.5), (100, 0.25, 3), (100, 4.0, 3)]
)
def test_stats_figure_he_relu_follows_gain_squared_per_layer_at_the_slider_ends(
    depth, gain, tolerance
):
    forward, _ = _title_ratios(init.stats_figure("kaiming", "relu", depth, gain))
    assert abs(np.log10(forward) - (depth - 1) * np.log10(gain**2)) < tolerance


def test_stats_figure_at_the_other_slider_ends():
    forward, backward = _title_ratios(init.stats_figure("kaiming", "relu", 50, 1.0))
    assert 0.05 < forward < 20 and 0.1 < backward < 10  # the default: both preserved
    forward, backward = _title_ratios(init.stats_figure("large", "tanh", 100, 4.0))
    assert 0.3 < forward < 3 and backward > 1e30  # saturated forward, exploding backward
    forward, _ = _title_ratios(init.stats_figure("xavier", "tanh", 100, 1.0))
    assert 0.002 < forward < 0.01  # about 1 / (2 * 100)
    forward, _ = _title_ratios(init.stats_figure("pytorch", "relu", 100, 1.0))
    assert abs(np.log10(forward) - 99 * np.log10(1 / 6)) < 3
    fig = init.stats_figure("large", "relu", 100, 4.0)  # overflows: said, not drawn
    assert "not drawn" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_histogram_figure_names_dead_and_saturated_shares():
    fig = init.histogram_figure("kaiming", "relu", depth=12, layers=(1, 12, 40))
    panels = [ax for ax in fig.axes if ax.patches]
    assert len(panels) == 2  # layer 40 does not exist
    assert panels[0].get_title().startswith("layer 1: 0% dead")
    fig = init.histogram_figure("large", "tanh", depth=5, layers=(5,))
    share = int(fig.axes[0].get_title().split(": ")[1].split("%")[0])
    assert share > 80 and "saturated" in fig.axes[0].get_title()


def test_symmetry_experiment():
    constant = init.symmetry_experiment("constant", epochs=2, seed=0)
    random = init.symmetry_experiment("kaiming", epochs=2, seed=0)
    assert constant["unit_spread"] == 0.0 and random["unit_spread"] > 0.1
    assert random["accuracy"] > constant["accuracy"]
    assert constant["before"].shape == (16, 64)


def test_train_under_schemes_and_figure(real_data):
    histories = init.train_under_schemes(
        ["small", "kaiming"], depth=4, width=32, n_train=600, epochs=2, lr=0.05, seed=0
    )
    assert histories["kaiming"].val_accuracy[-1] > 0.6 and histories["small"].val_accuracy[-1] < 0.2
    fig = init.training_figure(histories)
    assert "best: kaiming" in fig.get_suptitle()


# --------------------------------------------------------------------------- exercises


@pytest.mark.parametrize(
    "id, answer, phrase",
    [
        ("02.1", lambda i, o: 2 / (i + o), "variance"),
        ("02.1", lambda i, o: math.sqrt(1 / i), "LeCun"),
        ("02.1", lambda i, o: math.sqrt(1 / (i + o)), "is off"),
        ("02.1", lambda i, o: float("nan"), "NaN"),
        ("02.2", lambda i: math.sqrt(1 / i), "factor 2"),
        ("02.2", lambda i: 2 / i, "is off"),
        ("02.2", lambda i, extra: 1.0, "TypeError"),
        ("02.3", lambda s: (s[1], s[0]), "kernel size"),
        ("02.3", lambda s: init.fans(s)[::-1], "swapped"),
        ("02.3", lambda s: 5, "pair"),
        ("02.3", lambda s: (1, 2), "expected"),
    ],
)
def test_wrong_answers_get_hints(id, answer, phrase):
    assert_feedback(id, answer, phrase)


def test_depth_stats_is_deterministic():
    a = init.depth_stats(5, "relu", "kaiming", width=16, batch=8, seed=4)
    b = init.depth_stats(5, "relu", "kaiming", width=16, batch=8, seed=4)
    assert np.array_equal(a.preactivation_var, b.preactivation_var)
