"""Tests of course_lib.cifar10_cnn (notebook 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_feedback
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix as sk_confusion

import course_lib as cl
from course_lib import cifar10_cnn as T


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


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and tests may run in parallel (pytest-xdist)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- data


def test_load_data_shapes_and_subsets(real_data):
    tr, te = T.load_data(n_train=200, n_test=100)
    assert tr.x.shape == (200, 3, 32, 32) and tr.x.dtype == np.uint8
    assert te.x.shape == (100, 3, 32, 32)
    assert sorted(np.unique(tr.y)) == list(range(10))  # stratified: every class present
    assert tr.classes[0] == "airplane" and len(tr.classes) == 10


def test_channel_stats_matches_numpy():
    x = _images(10).numpy()
    x[:, 1] //= 3
    mean, std = T.channel_stats(x)
    ref = x.astype(np.float64) / 255
    np.testing.assert_allclose(mean.numpy(), ref.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), ref.std(axis=(0, 2, 3)), rtol=1e-6)
    assert std[1] < std[0] / 2
    with pytest.raises(ValueError, match="shape"):
        T.channel_stats(x[0])
    m2, s2 = T.channel_stats(x, chunk=3)  # chunked sums give the same result
    torch.testing.assert_close(m2, mean)
    torch.testing.assert_close(s2, std)


def test_normalize_standardises_and_uses_buffers():
    x = _images(20)
    mean, std = T.channel_stats(x)
    norm = T.Normalize(mean, std)
    out = norm(x)
    assert out.dtype == torch.float32
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0
    )
    assert list(norm.parameters()) == []
    assert set(norm.state_dict()) == {"mean", "std"}
    with pytest.raises(ValueError, match="positive"):
        T.Normalize((0.5, 0.5, 0.5), (0.2, 0.0, 0.2))


def test_shift_crop_equals_reflect_pad_and_crop():
    x = _images(5).float()
    dy = torch.tensor([-4, 0, 3, 4, -1])
    dx = torch.tensor([2, -4, 0, 4, 1])
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    ref = torch.stack(
        [padded[i, :, 4 + dy[i] : 36 + dy[i], 4 + dx[i] : 36 + dx[i]] for i in range(5)]
    )
    assert torch.equal(T.shift_crop(x, dy, dx), ref)
    u8 = _images(2)
    assert torch.equal(T.shift_crop(u8, [0, 0], [0, 0]), u8)
    assert T.shift_crop(u8, [1, 2], [3, 4]).dtype == torch.uint8


def test_augment_identity_flip_and_reproducibility():
    x = _images(16)
    assert torch.equal(T.Augment(padding=0, flip=0.0)(x), x)
    assert torch.equal(T.Augment(padding=0, flip=1.0)(x), x.flip(3))
    a, b = T.Augment(seed=3)(x), T.Augment(seed=3)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, T.Augment(seed=4)(x))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert "padding=4" in repr(T.Augment())
    with pytest.raises(ValueError):
        T.Augment(padding=-1)
    with pytest.raises(ValueError):
        T.Augment(flip=1.5)


def test_batch_loader_covers_every_example_once():
    x, y = torch.arange(10).view(10, 1).float(), torch.arange(10)
    batches = list(T.batch_loader(x, y, batch_size=4, seed=0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    again = torch.cat([b[1] for b in T.batch_loader(x, y, batch_size=4, seed=0)])
    assert torch.equal(seen, again)
    ordered = torch.cat([b[1] for b in T.batch_loader(x, y, batch_size=3, shuffle=False)])
    assert ordered.tolist() == list(range(10))


# --------------------------------------------------------------------------- models


def test_small_resnet_shapes_and_parameter_count():
    model = T.SmallResNet(16)
    out = model(_images(2))
    assert out.shape == (2, 10)
    assert model.features(_images(2)).shape == (2, 128)
    assert sum(p.numel() for p in model.parameters()) == 412_954
    assert model.stem.conv.weight.shape == (16, 3, 3, 3)
    assert model.stem.conv.bias is None
    assert T.SmallResNet(8, stem_kernel=5).stem.conv.weight.shape == (8, 3, 5, 5)
    assert model.layer3.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_conv_bn_block_halves_the_image_when_pooling():
    block = T.ConvBN(3, 8, pool=True)
    assert block(torch.randn(2, 3, 16, 16)).shape == (2, 8, 8, 8)
    assert T.ConvBN(3, 8)(torch.randn(2, 3, 16, 16)).shape == (2, 8, 16, 16)
    assert [name for name, _ in block.named_children()] == ["conv", "bn", "relu", "pool"]
    assert (block(torch.randn(2, 3, 16, 16)) >= 0).all()  # ends with a ReLU


def test_residual_adds_its_input():
    block = T.Residual(4).eval()
    for p in block.b.bn.parameters():
        torch.nn.init.zeros_(p)  # f(x) = relu(0) = 0, so the block is the identity
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x)


def test_tutorial_net_is_the_tutorial_architecture():
    net = T.TutorialNet()
    assert sum(p.numel() for p in net.parameters()) == 62_006
    assert net(_images(3)).shape == (3, 10)
    assert net.conv1.weight.shape == (6, 3, 5, 5) and net.fc1.in_features == 400


# --------------------------------------------------------------------------- training


def test_one_cycle_schedule_rises_then_falls_to_zero():
    model = torch.nn.Linear(2, 1)
    opt, _ = T.one_cycle_sgd(model, total_steps=10, lr=1.0, warmup=0.2)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    rates = []
    for _ in range(10):
        rates.append(opt.param_groups[0]["lr"])
        model(torch.ones(1, 2)).sum().backward()
        opt.step()
    assert rates[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert rates[-1] == pytest.approx(1 / 8) and opt.param_groups[0]["lr"] == 0.0
    assert all(a >= b for a, b in zip(rates[1:], rates[2:], strict=False))
    with pytest.raises(ValueError):
        T.one_cycle_sgd(model, total_steps=0)


def test_train_learns_an_easy_task_and_records_snapshots():
    x, y = _two_colour_task()
    torch.manual_seed(0)
    model = T.SmallResNet(4, *T.channel_stats(x))
    run = T.train(model, (x, y), epochs=3, batch_size=16, snapshots=True, progress=False)
    assert run.history.epochs == 3 and len(run.snapshots) == 4
    assert run.images_seen == 3 * len(y) and run.images_per_second > 0
    assert run.cpu_seconds > 0
    assert T.accuracy(model, (x, y)) == 1.0
    assert not torch.equal(run.snapshots[0]["fc.weight"], run.snapshots[-1]["fc.weight"])


def test_predict_proba_averages_the_mirror_image():
    torch.manual_seed(0)
    model = T.SmallResNet(4).eval()
    x = _images(4)
    plain = T.predict_proba(model, x, tta=False)
    both = T.predict_proba(model, x, tta=True)
    mirrored = T.predict_proba(model, x.flip(3), tta=False)
    torch.testing.assert_close(both, (plain + mirrored) / 2)
    torch.testing.assert_close(both.sum(1), torch.ones(4))


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
    model = T.SmallResNet(8)
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


@pytest.mark.parametrize(
    ("padding", "flip", "expected"), [(0, 0.0, "0% of pixel"), (8, 1.0, "±8 px")]
)
def test_augmentation_figure_extremes(padding, flip, expected):
    fig = cl.widgets.render(T.augmentation_figure, images=_images(8), padding=padding, flip=flip)
    assert expected in fig._suptitle.get_text()
    if padding:
        changed = float(fig._suptitle.get_text().split(": ")[1].split("%")[0])
        assert changed > 80


def test_layer_weights_figure_reports_relative_change():
    before = {"w": torch.ones(100)}
    after = {"w": torch.full((100,), 1.5)}
    fig = cl.widgets.render(T.layer_weights_figure, before=before, after=after, layer="w")
    assert "relative change 0.50" in fig.axes[0].get_title()
    same = cl.widgets.render(T.layer_weights_figure, before=before, after=before, layer="w")
    assert "relative change 0.00" in same.axes[0].get_title()


@pytest.mark.parametrize(
    ("threshold", "expected"), [(0.1, "accuracy 50.0% on 100%"), (1.0, "on 25%")]
)
def test_confidence_figure_extremes(threshold, expected):
    probs = np.array([[1.0, 0.0], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])
    y = np.array([0, 1, 0, 1])
    fig = cl.widgets.render(T.confidence_figure, probs=probs, y=y, threshold=threshold)
    assert expected in fig.axes[0].get_title()


# --------------------------------------------------------------------------- benchmark and baseline


def test_benchmark_tiny_run_reports_everything(real_data):
    torch.set_num_threads(3)
    result = T.benchmark(epochs=1, width=4, threads=1, n_train=100)
    assert torch.get_num_threads() == 3  # restored
    assert result["n_train"] == 100 and result["threads"] == 1 and result["epochs"] == 1
    assert "baseline_accuracy" not in result
    assert 0.0 <= result["accuracy"] <= 1.0 and result["train_seconds"] > 0
    assert result["images_per_second"] == pytest.approx(100 / result["train_seconds"])
    assert result["params"] == sum(p.numel() for p in T.SmallResNet(4).parameters())
    with_base = T.benchmark(
        epochs=1, width=4, threads=1, n_train=100, baseline=True, baseline_epochs=1
    )
    assert with_base["baseline_epochs"] == 1 and 0.0 <= with_base["baseline_accuracy"] <= 1.0
    assert with_base["baseline_seconds"] > 0
    same_budget = T.benchmark(epochs=1, width=4, threads=1, n_train=100, baseline=True)
    # the tutorial CNN trains epoch after epoch until it has used the course CNN's time
    assert same_budget["baseline_seconds"] >= same_budget["train_seconds"]
    assert same_budget["baseline_epochs"] >= 1


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
