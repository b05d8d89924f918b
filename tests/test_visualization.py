"""Tests of course_lib.visualization (notebook 05)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure

import course_lib as cl
from course_lib import exercises, vision
from course_lib import visualization as V

# --------------------------------------------------------------------------- measures


def test_smoothness_of_noise_smooth_and_checkerboard():
    torch.manual_seed(0)
    assert abs(V.smoothness(torch.randn(200, 3, 5, 5))) < 0.05
    ramp = torch.arange(25.0).reshape(5, 5) + 10
    assert V.smoothness(ramp) > 0.95
    assert V.smoothness(torch.ones(4, 4)) == pytest.approx(1.0)
    checker = (-1.0) ** (torch.arange(5).view(-1, 1) + torch.arange(5))
    assert V.smoothness(checker) == pytest.approx(-1.0)
    assert V.smoothness(torch.zeros(3, 3)) == 0.0
    with pytest.raises(ValueError):
        V.smoothness(torch.ones(5))


def test_smoothness_agrees_with_exercise_solution_on_one_image():
    img = np.random.default_rng(0).normal(size=(6, 6)).cumsum(0)
    assert V.smoothness(img) == pytest.approx(exercises.get("05.3").solution(img))


def test_colour_share_extremes_and_random_average():
    grey = torch.randn(4, 1, 3, 3).expand(4, 3, 3, 3)
    assert np.allclose(V.colour_share(grey), 0.0)
    opponent = torch.zeros(2, 3, 3, 3)
    opponent[:, 0], opponent[:, 1] = 1.0, -1.0
    assert np.allclose(V.colour_share(opponent), 1.0)
    torch.manual_seed(0)
    assert V.colour_share(torch.randn(2000, 3, 3, 3)).mean() == pytest.approx(2 / 3, abs=0.01)
    with pytest.raises(ValueError):
        V.colour_share(torch.randn(4, 1, 3, 3))


def test_relative_change_per_snapshot():
    snaps = [
        {"w": torch.tensor([3.0, 4.0])},
        {"w": torch.tensor([3.0, 4.5])},
        {"w": torch.zeros(2)},
    ]
    rc = V.relative_change(snaps)
    assert np.allclose(rc["w"], [0.0, 0.1, 1.0])
    with pytest.raises(ValueError, match="zeros"):
        V.relative_change([{"w": torch.zeros(2)}])
    with pytest.raises(ValueError, match="snapshots"):
        V.relative_change([])


def test_rank_correlation_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=30), rng.normal(size=30)
    assert V.rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert V.rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert V.rank_correlation([1, 2, 3], [3.0, 2.0, -5.0]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        V.rank_correlation([1], [2])


def test_frozen_pixels():
    x = np.zeros((3, 4, 4), dtype=np.uint8)
    x[0, 1, 2] = 5
    x[2, 3, 3] = 1
    mask = V.frozen_pixels(x)
    assert mask.shape == (4, 4) and mask.sum() == 14
    assert not mask[1, 2] and not mask[3, 3]


def test_kurtosis_from_scratch_equals_scipy():
    from scipy.stats import kurtosis

    g = torch.Generator().manual_seed(0)
    uniform = torch.rand(200_000, generator=g) * 2 - 1
    assert V.kurtosis(uniform) == pytest.approx(1.8, abs=0.01)
    assert V.kurtosis(torch.randn(200_000, generator=g)) == pytest.approx(3.0, abs=0.05)
    shifted = torch.randn(50, 40, generator=g).exp() + 3.0  # skewed, far from zero mean
    assert V.kurtosis(shifted) == pytest.approx(kurtosis(shifted.numpy().ravel(), fisher=False))


def test_outside_initial_box():
    w0 = torch.full((4, 25), 0.1)  # fan-in 25: the box is +-0.2
    w1 = w0.clone()
    w1[0, :5] = 0.3
    share = V.outside_initial_box([{"w": w0}, {"w": w1}], ["w"])
    assert share == {"w": pytest.approx(5 / 100)}
    assert V.outside_initial_box([{"w": w0}, {"w": w1}], ["w"], epoch=0) == {"w": 0.0}


def test_ink_frequency_and_movement_by_ink():
    images = np.zeros((100, 2, 2), dtype=np.uint8)
    images[:1, 0, 0] = 9  # pixel 0 inked in 1 % of the images
    images[:50, 1, 1] = 3  # pixel 3 inked in half of them
    frequency = V.ink_frequency(images)
    assert frequency.tolist() == [[0.01, 0.0], [0.0, 0.5]]
    w0 = torch.zeros(3, 4)
    w1 = torch.tensor([[0.2, 5.0, 5.0, 0.1]] * 3)  # the never-inked pixels are ignored
    moved = V.movement_by_ink(w0, w1, frequency)
    assert moved == {
        "rare": pytest.approx(0.2),
        "often": pytest.approx(0.1),
        "ratio": pytest.approx(2),
    }


def test_adam_travel_does_not_depend_on_the_gradients_size():
    small, large = V.adam_travel(1e-4), V.adam_travel(1.0)
    assert small == pytest.approx(large, rel=0.01)
    assert 3e-3 < large < 1e-2  # several learning rates (1e-3) for a single gradient
    assert V.adam_travel(1.0, lr=1e-2) == pytest.approx(10 * large, rel=1e-3)


def test_gradient_cosines_orthogonal_for_batch_normalised_convolutions():
    torch.manual_seed(0)
    model = vision.SmallResNet(4, stem_kernel=5)
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(16) % 10
    names = V.cnn_weight_names(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cosines = V.gradient_cosines(model, x, y, names)
    assert max(abs(cosines[n]) for n in names[:-1]) < 1e-4
    assert abs(cosines["fc.weight"]) > 1e-3
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched


# --------------------------------------------------------------------------- CNN helpers and figures


def test_cnn_weight_names_in_order():
    names = V.cnn_weight_names(vision.SmallResNet(4))
    assert names[0] == "stem.conv.weight" and names[-1] == "fc.weight"
    assert len(names) == 9  # 8 convolutions and the classifier


def test_filter_images_scales():
    w = torch.zeros(2, 3, 3, 3)
    w[0, 0] = 2.0
    w[1, 2] = -1.0
    img = V.filter_images(w, per_filter=False)
    assert img.shape == (2, 3, 3, 3)
    assert np.allclose(img[0, :, :, 0], 1.0) and np.allclose(img[0, :, :, 1], 0.5)
    assert np.allclose(img[1, :, :, 2], 0.25)
    own = V.filter_images(w)
    assert np.allclose(own[1, :, :, 2], 0.0) and np.allclose(own[0], img[0])
    assert np.allclose(V.filter_images(torch.zeros(1, 3, 2, 2)), 0.5)


def _snapshots(epochs=3):
    torch.manual_seed(0)
    model = vision.SmallResNet(4, stem_kernel=5)
    snaps = [{n: p.detach().clone() for n, p in model.named_parameters()}]
    for e in range(epochs):
        snaps.append({n: w * 0.9 + 0.01 * (e + 1) for n, w in snaps[-1].items()})
    return snaps


def _numbers(title: str) -> dict[str, float]:
    """``{"smoothness": ..., "colour share": ...}`` read from a filter figure's title."""
    import re

    return {k: float(v) for k, v in re.findall(r"(smoothness|colour share) (-?[\d.]+)", title)}


@pytest.mark.filterwarnings("error::RuntimeWarning")  # as test_slider_ranges does
def test_filter_figure_at_the_slider_ends_shows_what_the_lesson_says():
    snaps = _snapshots()  # each epoch shrinks the weights and adds a grey, smooth offset
    first_fig = cl.widgets.render(V.filter_figure, snapshots=snaps, epoch=0)
    last_fig = cl.widgets.render(V.filter_figure, snapshots=snaps, epoch=-1)
    assert "at initialisation" in first_fig.get_suptitle()
    assert "after epoch 3" in last_fig.get_suptitle()
    first = _numbers(first_fig.get_suptitle())
    last = _numbers(last_fig.get_suptitle())
    assert abs(first["smoothness"]) < 0.15 and abs(first["colour share"] - 2 / 3) < 0.1  # noise
    assert last["smoothness"] > first["smoothness"] + 0.3  # the offset is smooth ...
    assert last["colour share"] < first["colour share"] - 0.2  # ... and grey


def _bar_heights(ax) -> np.ndarray:
    return np.array([p.get_height() for p in ax.patches])


@pytest.mark.filterwarnings("error::RuntimeWarning")  # as test_slider_ranges does
def test_histogram_figure_at_the_slider_ends_shows_what_the_lesson_says():
    snaps = _snapshots()
    names = V.cnn_weight_names(vision.SmallResNet(4))
    start = cl.widgets.render(V.histogram_figure, snapshots=snaps, epoch=0, names=names)
    assert "epoch 0: median relative change 0.00" in start.get_suptitle()
    heights = _bar_heights(start.axes[0])  # grey (initial) bars, then blue (this epoch) bars
    assert np.array_equal(heights[: len(heights) // 2], heights[len(heights) // 2 :])
    end = cl.widgets.render(V.histogram_figure, snapshots=snaps, epoch=3, names=names)
    change = V.relative_change([snaps[0], snaps[3]], names)
    assert f"epoch 3: median relative change {np.median([c[-1] for c in change.values()]):.2f}" in (
        end.get_suptitle()
    )
    heights = _bar_heights(end.axes[0])
    assert not np.array_equal(heights[: len(heights) // 2], heights[len(heights) // 2 :])
    assert len([ax for ax in end.axes if ax.get_visible() and ax.axison]) == len(names)


def test_relative_change_figure_names_the_top_layer():
    fig = V.relative_change_figure({"a": np.array([0, 0.2]), "b": np.array([0, 0.7])})
    assert isinstance(fig, Figure)
    assert "b (0.70)" in fig.axes[0].get_title()


def test_train_cifar_cnn_tiny(real_data):
    model, run, test_set = V.train_cifar_cnn(
        n_train=100, n_test=50, epochs=1, width=4, progress=False
    )
    assert model.stem.conv.weight.shape == (4, 3, 5, 5)
    assert len(run.snapshots) == 2 and len(run.history.val_accuracy) == 1
    assert len(test_set) == 50
    assert not torch.equal(
        run.snapshots[0]["stem.conv.weight"], run.snapshots[1]["stem.conv.weight"]
    )


# --------------------------------------------------------------------------- MLP on MNIST


def test_mnist_mlp_takes_raw_images():
    model = V.mnist_mlp(hidden=16)
    x = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    assert model(x).shape == (5, 10)
    assert model[2].weight.shape == (16, 784)
    torch.testing.assert_close(model(x), model(x.float()))


def test_train_mnist_mlp_frozen_pixels_do_not_move(real_data):
    model, history, snaps, train_set = V.train_mnist_mlp(
        n_train=1000, epochs=2, hidden=16, progress=False, seed=0
    )
    assert len(snaps) == 3 and history.val_accuracy[-1] > 0.3  # chance: 0.1
    mask = torch.from_numpy(V.frozen_pixels(train_set.x).ravel())
    assert mask.sum() > 50
    moved = snaps[-1]["2.weight"] - snaps[0]["2.weight"]
    assert moved[:, mask].abs().max() == 0.0
    assert moved[:, ~mask].abs().mean() > 1e-3


def test_adam_moves_rarely_inked_pixels_far_more_than_sgd(real_data):
    runs = {
        opt: V.train_mnist_mlp(n_train=2000, epochs=2, optimizer=opt, progress=False, seed=1)
        for opt in ("adam", "sgd")
    }
    ink = V.ink_frequency(runs["adam"][3].x)
    ratio = {
        opt: V.movement_by_ink(r[2][0]["2.weight"], r[2][-1]["2.weight"], ink)["ratio"]
        for opt, r in runs.items()
    }
    assert ratio["adam"] > 4 * ratio["sgd"] and ratio["sgd"] < 0.25
    assert all(r[1].val_accuracy[-1] > 0.6 for r in runs.values())  # chance: 0.1
    with pytest.raises(ValueError, match="optimizer"):
        V.train_mnist_mlp(n_train=100, epochs=1, optimizer="lbfgs", progress=False)


def test_mnist_mlp_follows_the_seed():
    a, b = V.mnist_mlp(hidden=8, seed=3), V.mnist_mlp(hidden=8, seed=3)
    assert torch.equal(a[2].weight, b[2].weight)
    assert not torch.equal(a[2].weight, V.mnist_mlp(hidden=8, seed=4)[2].weight)


def test_movement_figure_one_panel_per_run():
    snaps = [{"w": torch.zeros(4, 784)}, {"w": torch.ones(4, 784)}]
    fig = V.movement_figure({"Adam": snaps, "SGD": snaps}, "w")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["Adam: largest 1.000", "SGD: largest 1.000"]


@pytest.mark.parametrize("units", [1, 64])
def test_template_figure(units):
    torch.manual_seed(0)
    w = torch.randn(64, 784)
    fig = cl.widgets.render(V.template_figure, weights=w, units=units)
    assert f"{units} first-layer weight images" in fig.axes[0].get_title()


def test_template_mosaic_tiles_and_scales():
    w = torch.zeros(3, 784)
    w[0, 0], w[1, 783], w[2, 5] = 2.0, -4.0, 0.5
    m = V.template_mosaic(w, ncols=2, gap=1)
    assert m.shape == (57, 57)
    assert m[0, 0] == 1.0 and m[27, 29 + 27] == -1.0 and m[29, 5] == 1.0
    assert np.isnan(m[28, 0]) and np.isnan(m[40, 40])


# --------------------------------------------------------------------------- exercises


def test_exercise_05_1_typical_mistakes():
    assert_feedback("05.1", lambda w0, w1: np.linalg.norm(w1 - w0), "divide by ||w0||")
    assert_feedback(
        "05.1", lambda w0, w1: np.linalg.norm(w1) / np.linalg.norm(w0) - 1, "compared the norms"
    )
    assert_feedback("05.1", lambda w0, w1: np.abs(w1 - w0).mean() / np.abs(w0).mean(), "off")


def test_exercise_05_2_typical_mistakes():
    sol = exercises.get("05.2").solution
    assert_feedback("05.2", lambda f: np.sqrt(sol(f)), "energies")
    assert_feedback("05.2", lambda f: 1 - sol(f), "brightness share")
    assert_feedback("05.2", lambda f: sol(f)[:3], "shape")


def test_exercise_05_3_typical_mistakes():
    def horizontal_only(w):
        return (w[:, :-1] * w[:, 1:]).sum() / (0.5 * (w[:, :-1] ** 2 + w[:, 1:] ** 2).sum())

    def unnormalised(w):
        return (w[:, :-1] * w[:, 1:]).sum() + (w[:-1, :] * w[1:, :]).sum()

    assert_feedback("05.3", horizontal_only, "vertical pairs")
    assert_feedback("05.3", unnormalised, "off")
