"""course_lib.initialization (notebook 02)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from course_lib import exercises
from course_lib import initialization as init


def test_fans_match_torch():
    for shape in ((10, 784), (64, 3, 3, 3), (8, 4, 5)):
        assert init.fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError, match="2\\+ dimensions"):
        init.fans((5,))


def test_std_formulas():
    assert init.xavier_std(100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert init.kaiming_std(50) == pytest.approx(math.sqrt(2 / 50))
    assert init.scheme_std("small", (3, 4)) == 0.01 and init.scheme_std("large", (3, 4)) == 1.0
    with pytest.raises(ValueError, match="not random"):
        init.scheme_std("zeros", (3, 4))


@pytest.mark.parametrize("scheme", list(init.SCHEMES))
def test_init_schemes(scheme):
    w = init.init_(torch.empty(400, 200), scheme, generator=torch.Generator().manual_seed(0))
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
    ours = init.init_(torch.empty(30, 20), "kaiming", generator=torch.Generator().manual_seed(3))
    theirs = nn.init.kaiming_normal_(
        torch.empty(30, 20), generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(ours, theirs)


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
    he = init.depth_stats(20, "relu", "kaiming", width=128, batch=128)
    small = init.depth_stats(20, "relu", "small", width=128, batch=128)
    assert 0.1 < he.ratio() < 10 and small.ratio() < 1e-30
    assert len(he.activation_std) == len(he.gradient_std) == len(he.activations) == 20
    assert he.saturated.shape == (20,) and 0.1 < he.ratio("gradient") < 10
    assert 0 < he.ratio("activation") < 10


def test_depth_stats_tanh_large_saturates():
    stats = init.depth_stats(10, "tanh", "large", width=128, batch=64)
    assert stats.saturated[-1] > 0.8


@pytest.mark.parametrize(
    "params",
    [
        dict(scheme="kaiming", activation="relu", depth=2, gain=0.25),
        dict(scheme="large", activation="tanh", depth=100, gain=4.0),
        dict(scheme="constant", activation="linear", depth=50, gain=1.0),
        dict(scheme="small", activation="relu", depth=100, gain=0.25),
    ],
)
def test_stats_figure_at_slider_extremes(params):
    fig = init.stats_figure(**params)
    stats = init.depth_stats(
        params["depth"], params["activation"], params["scheme"], params["gain"]
    )
    assert isinstance(fig, Figure)
    assert f"variance last/first = {stats.ratio():.3g}" in fig.get_suptitle()


def test_histogram_figure():
    fig = init.histogram_figure("kaiming", "relu", depth=12, layers=(1, 12, 40))
    assert len([ax for ax in fig.axes if ax.patches]) == 2  # layer 40 does not exist


def test_symmetry_experiment():
    constant = init.symmetry_experiment("constant", epochs=2)
    random = init.symmetry_experiment("kaiming", epochs=2)
    assert constant["unit_spread"] == 0.0 and random["unit_spread"] > 0.1
    assert random["accuracy"] > constant["accuracy"]
    assert constant["before"].shape == (16, 64)


def test_train_under_schemes_and_figure(real_data):
    histories = init.train_under_schemes(
        ["small", "kaiming"], depth=4, width=32, n_train=600, epochs=2, lr=0.05
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
    result = exercises.evaluate(id, answer)
    assert result.status == "wrong" and phrase in result.message and "Hint:" in result.message


def test_depth_stats_is_deterministic():
    a = init.depth_stats(5, "relu", "kaiming", width=16, batch=8, seed=4)
    b = init.depth_stats(5, "relu", "kaiming", width=16, batch=8, seed=4)
    assert np.array_equal(a.preactivation_var, b.preactivation_var)
