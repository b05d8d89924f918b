"""Tests of course_lib.cifar10_cnn (notebook 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix as sk_confusion

import course_lib as cl
from course_lib import cifar10_cnn as T
from course_lib import vision


def _images(n=6, seed=0, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _two_colour_task(n=64):
    """Half the images pure red, half pure blue (plus noise): trivially learnable."""
    g = torch.Generator().manual_seed(1)
    y = torch.arange(n) % 2
    x = torch.randint(0, 40, (n, 3, 32, 32), generator=g)
    x[y == 0, 0] += 200
    x[y == 1, 2] += 200
    return x.to(torch.uint8), y


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# --------------------------------------------------------------------------- normalisation


def test_per_image_std_is_the_average_std_of_each_image():
    x = _images(10).numpy()
    x[:5] //= 4  # dark images: the images' means differ
    ref = (x.astype(np.float64) / 255).std(axis=(2, 3)).mean(axis=0)
    np.testing.assert_allclose(T.per_image_std(x), ref, rtol=1e-12)
    np.testing.assert_allclose(T.per_image_std(x, chunk=3), ref, rtol=1e-12)
    assert np.all(T.per_image_std(x) < vision.channel_stats(x)[1].numpy() - 0.01)


# --------------------------------------------------------------------------- the baseline


def test_tutorial_net_is_the_tutorial_architecture():
    net = T.TutorialNet()
    assert sum(p.numel() for p in net.parameters()) == 62_006
    assert net(_images(3)).shape == (3, 10)
    assert net.conv1.weight.shape == (6, 3, 5, 5) and net.fc1.in_features == 400


# --------------------------------------------------------------------------- evaluation


def test_confusion_matrix_matches_scikit_learn():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 10, 300), rng.integers(0, 10, 300)
    cm = T.confusion_matrix(t, p)
    assert np.array_equal(cm, sk_confusion(t, p, labels=range(10)))
    assert cm.sum() == 300
    with pytest.raises(ValueError):
        T.confusion_matrix([0, 1], [0])


def test_confusion_figure_states_the_accuracy():
    cm = np.array([[8, 2], [1, 9]])
    fig = T.confusion_figure(cm, ["cat", "dog"])
    assert isinstance(fig, Figure)
    assert "accuracy 85.0%" in fig.axes[0].get_title()


def test_misclassified_sorted_by_confidence():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([1, 1, 1, 0])
    assert T.misclassified(probs, y).tolist() == [0, 3, 2]
    assert T.misclassified(probs, y, k=1).tolist() == [0]


# --------------------------------------------------------------------------- weights


def test_layer_table_counts_and_shares():
    model = vision.SmallResNet(8)
    rows = T.layer_table(model)
    assert sum(r["count"] for r in rows) == sum(p.numel() for p in model.parameters())
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    first = rows[0]
    assert first["name"] == "stem.conv.weight" and first["kind"] == "Conv2d"
    assert first["shape"] == (8, 3, 3, 3) and first["count"] == 216
    assert {r["kind"] for r in rows} == {"Conv2d", "BatchNorm2d", "Linear"}
    macs = {r["name"]: r["macs"] for r in rows}
    assert macs["stem.conv.weight"] == 216 * 32 * 32
    assert macs["res3.a.conv.weight"] == 64 * 64 * 9 * 4 * 4
    assert macs["fc.weight"] == 640 and macs["fc.bias"] == 0 and macs["stem.bn.weight"] == 0
    assert model.training  # restored
    assert all(r["macs"] == 0 for r in T.layer_table(model, input_shape=None))
    assert not any("running" in r["name"] or r["name"].startswith("norm") for r in rows)


def test_gradient_of_a_weight_before_batch_norm_is_perpendicular_to_it():
    torch.manual_seed(0)
    model = vision.SmallResNet(4).eval()
    cosines = T.gradient_weight_cosines(model, _images(16), torch.arange(16) % 10)
    assert set(cosines) == {n for n, _ in model.named_parameters() if n.endswith("conv.weight")} | {
        "fc.weight"
    }
    assert max(abs(c) for n, c in cosines.items() if n != "fc.weight") < 1e-3
    assert abs(cosines["fc.weight"]) > 1e-2
    assert not model.training and all(p.grad is None for p in model.parameters())


def test_ablation_trains_the_same_model_with_and_without_augmentation(monkeypatch):
    calls, train = [], vision.train

    def spy(model, data, epochs, **kwargs):
        calls.append((data.x.copy(), epochs, kwargs))
        return train(model, data, epochs, **kwargs)

    monkeypatch.setattr(vision, "train", spy)
    x, y = _two_colour_task(80)
    data = cl.data.Dataset(x.numpy(), y.numpy(), [str(i) for i in range(10)])
    out = T.ablation(data, data, n=32, epochs=2, seed=0)
    (x_aug, e_aug, aug), (x_plain, e_plain, plain) = calls
    assert np.array_equal(x_aug, x_plain) and len(x_aug) == 32 and e_aug == e_plain == 2
    assert (
        aug["padding"] == 4 and aug["flip"] == 0.5 and plain["padding"] == 0 and plain["flip"] == 0
    )
    assert aug["seed"] == plain["seed"] == 0 and "label_smoothing" not in plain
    for v in out.values():
        assert v["gap"] == pytest.approx(v["train"] - v["test"])
        assert 0.1 <= v["confidence"] <= 1 and 0 <= v["over_95"] <= 1


def test_weight_stats_from_model_and_snapshot():
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0, 3.0], [0.0, 4.0, -6.0]]))
    stats = T.weight_stats(layer)["weight"]
    assert stats["mean"] == pytest.approx(0.0)
    assert stats["mean_abs"] == pytest.approx(16 / 6)
    assert stats["max_abs"] == 6.0
    assert stats["norm"] == pytest.approx(np.sqrt(66))
    assert stats["std"] == pytest.approx(np.std([1, -2, 3, 0, 4, -6]))
    snap = T.weight_stats({"w": torch.ones(4)})
    assert snap["w"]["std"] == 0.0


def test_format_table_aligns_columns():
    text = T.format_table(
        [{"name": "a", "count": 1000}, {"name": "long_name", "count": 5}],
        ["name", "count"],
        {"count": ","},
    )
    lines = text.splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1
    assert "1,000" in lines[1] and lines[0].split() == ["name", "count"]


# --------------------------------------------------------------------------- slider figures


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(("padding", "flip", "seed"), [(0, 0.0, 0), (8, 1.0, 20), (4, 0.5, 0)])
def test_augmentation_figure_at_slider_extremes(padding, flip, seed):
    """No shift and no flip change nothing; the largest shift with certain flips changes most pixels."""
    fig = cl.widgets.render(
        T.augmentation_figure, images=_images(8), padding=padding, flip=flip, seed=seed
    )
    title = fig.get_suptitle()
    assert f"±{padding} px, flip p={flip:.2f}" in title
    changed = float(title.split(": ")[1].split("%")[0])
    if padding == 0 and flip == 0:
        assert changed == 0
    else:
        assert changed > 80  # random pixels: any shift or flip changes almost every value


def test_layer_weights_figure_reports_relative_change():
    before = {"w": torch.ones(100)}
    after = {"w": torch.full((100,), 1.5)}
    fig = cl.widgets.render(T.layer_weights_figure, before=before, after=after, layer="w")
    assert "relative change 0.50" in fig.axes[0].get_title()
    same = cl.widgets.render(T.layer_weights_figure, before=before, after=before, layer="w")
    assert "relative change 0.00" in same.axes[0].get_title()


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(
    ("threshold", "expected"), [(0.1, "accuracy 50.0% on 100%"), (0.9, "accuracy 100.0% on 25%")]
)
def test_confidence_figure_at_slider_extremes(threshold, expected):
    """The lowest threshold keeps every image; the highest keeps only the confident, right one."""
    probs = np.array([[1.0, 0.0], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    y = np.array([0, 1, 0, 1])
    fig = cl.widgets.render(T.confidence_figure, probs=probs, y=y, threshold=threshold)
    assert expected in fig.axes[0].get_title()
    accuracy, coverage = (line.get_ydata() for line in fig.axes[0].get_lines()[:2])
    assert coverage[0] == 1.0 and np.all(np.diff(coverage) <= 0)  # fewer images kept as it rises


def test_tutorial_baseline_runs_the_tutorial_recipe():
    x, y = _two_colour_task(128)
    torch.set_num_threads(3)
    model, history = T.tutorial_baseline((x, y), (x, y), epochs=2, progress=False)
    assert torch.get_num_threads() == 3  # it trains on one thread, then restores the setting
    assert isinstance(model, T.TutorialNet)
    assert len(history.val_accuracy) == 2
    assert history.val_accuracy[-1] == 1.0
    _, timed = T.tutorial_baseline((x, y), (x, y), epochs=5, progress=False, time_limit=0.0)
    assert timed.epochs == 1


# --------------------------------------------------------------------------- exercises


def test_exercise_13_1_typical_mistakes():
    assert_feedback(
        "13.1",
        lambda x: (x.astype(float).mean(axis=(0, 2, 3)), x.astype(float).std(axis=(0, 2, 3))),
        "0..255 scale",
    )
    assert_feedback(
        "13.1",
        lambda x: ((x / 255).mean(axis=(2, 3)), (x / 255).std(axis=(2, 3))),
        "one row per image",
    )
    assert_feedback("13.1", lambda x: (x / 255).mean(axis=(0, 2, 3)), "pair")


def test_exercise_13_2_typical_mistakes():
    def transposed(t, p, n):
        return T.confusion_matrix(p, t, n)

    def rates(t, p, n):
        cm = T.confusion_matrix(t, p, n)
        return cm / cm.sum(1, keepdims=True)

    assert_feedback("13.2", transposed, "transposed")
    assert_feedback("13.2", rates, "counts")


def test_exercise_13_3_typical_mistakes():
    assert_feedback("13.3", lambda ci, co, k, bias: co * ci * k * k, "forgot the biases")
    assert_feedback("13.3", lambda ci, co, k, bias: co * ci * k + (co if bias else 0), "k * k")
    assert_feedback("13.3", lambda ci, co, k, bias: [co, ci, k, k], "single number")
