"""course_lib.transfer_learning (notebook 08)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from torch import nn

from course_lib import exercises, models
from course_lib import transfer_learning as tl
from course_lib.data import Dataset


@pytest.fixture(scope="module")
def encoder():
    return tl.load_encoder()


SENTENCES = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate ."]


# --------------------------------------------------------------------------- the pretrained encoder


def test_load_encoder_is_offline_and_22_7m_parameters(encoder):
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert encoder.get_embedding_dimension() == 384
    assert sum(p.numel() for p in encoder.parameters()) == 22_713_216
    assert tl.load_encoder() is encoder  # loaded once


def test_frozen_classifier_trains_only_its_head(encoder):
    model = tl.FrozenEncoderClassifier(encoder)
    trainable, total = (
        models.count_parameters(model, trainable_only=True),
        models.count_parameters(model),
    )
    assert (trainable, total) == (384 * 2 + 2, 22_713_216 + 770)
    emb = model.embed(SENTENCES)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    cached = tl.encode_sentences(SENTENCES, progress=False)
    assert torch.allclose(emb, cached, atol=1e-5)
    nn.functional.cross_entropy(model(SENTENCES), torch.tensor([1, 0])).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    groups = dict((name, (n, t)) for name, n, t in tl.parameter_groups(model))
    assert groups["head"] == (770, True)
    assert groups["layer 0"] == (1_774_464, False) and groups["embeddings"][1] is False
    assert list(groups) == ["embeddings", *[f"layer {i}" for i in range(6)], "pooler", "head"]
    assert sum(n for n, _ in groups.values()) == total


def test_encode_sentences_is_cached(encoder, monkeypatch):
    first = tl.encode_sentences(SENTENCES[:1], progress=False)
    assert first.shape == (1, 384) and first.dtype == torch.float32

    def no_encoder():
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(tl, "load_encoder", no_encoder)
    assert torch.equal(tl.encode_sentences(SENTENCES[:1], progress=False), first)
    with pytest.raises(AssertionError):
        tl.encode_sentences(SENTENCES[1:], progress=False)  # a different list is not cached


def test_encode_sentences_returns_ordinary_tensors(encoder):
    """Fresh vectors (not read from the cache) can be trained on: no inference tensors."""
    emb = tl.encode_sentences(["an entirely new sentence ."], progress=False)
    assert not emb.is_inference()
    head = nn.Linear(384, 2)
    nn.functional.cross_entropy(head(emb), torch.tensor([1])).backward()


def test_encoding_speed_times_the_encoder_every_call(encoder, monkeypatch):
    calls = []
    real = tl._encode
    monkeypatch.setattr(
        tl, "_encode", lambda enc, s, progress=False: calls.append(len(s)) or real(enc, s)
    )
    speed = tl.encoding_speed(SENTENCES * 8)
    assert speed > 0 and calls == [8, 16]  # a warm-up and the timed pass, never the cache


def test_freeze():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert tl.freeze(model[0]) is model[0]
    assert models.count_parameters(model, trainable_only=True) == 10
    assert not any(p.requires_grad for p in model[0].parameters())


# --------------------------------------------------------------------------- heads and baselines


def _separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 5)) + 2.0 * (2 * y[:, None] - 1) * np.array([1, 0, 0, 0, 0])
    return torch.tensor(x, dtype=torch.float32), y


def test_train_linear_head_separates_separable_data():
    x, y = _separable()
    head = tl.train_linear_head(x, y)
    acc = (head(x).argmax(1).numpy() == y).mean()
    assert acc > 0.95 and head.weight.shape == (2, 5)
    strong = tl.train_linear_head(x, y, weight_decay=10.0)
    assert strong.weight.norm() < 0.2 * head.weight.norm()  # the penalty shrinks the weights


def test_head_objective_is_what_the_probe_minimises():
    x, y = _separable()
    head = tl.train_linear_head(x, y)
    ce = nn.functional.cross_entropy(head(x), torch.as_tensor(y))
    # the penalty is ||W||^2 / (2 n) by default
    expected = ce + head.weight.pow(2).sum() / (2 * len(y))
    assert tl.head_objective(head, x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    best = tl.head_objective(head, x, y).item()
    for scale in (0.9, 1.1):  # the probe sits at the minimum: nearby heads are worse
        other = nn.Linear(5, 2)
        with torch.no_grad():
            other.weight.copy_(head.weight * scale)
            other.bias.copy_(head.bias)
        assert tl.head_objective(other, x, y).item() > best


def test_probe_cross_validation():
    x, y = _separable(300)
    accs = tl.probe_cross_validation(x, y, folds=5, seed=0)
    assert accs.shape == (5,) and accs.min() > 0.9
    noise = tl.probe_cross_validation(torch.randn(300, 5), y, folds=5, seed=0)
    assert abs(noise.mean() - 0.5) < 0.1  # no signal: chance, not memorised training labels


def test_bag_of_embeddings_learns_and_ignores_padding():
    words = ["good fun", "great joy", "bad bore", "awful mess"]
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80)
    sentences = [words[2 * (1 - label) + rng.integers(0, 2)] + " film" for label in y]
    model, vocab = tl.train_bag_of_embeddings(sentences, y, steps=60)
    pred = model(vocab.encode(sentences)).argmax(1).numpy()
    assert (pred == y).mean() == 1.0 and "bore" in vocab
    x = vocab.encode(["good fun film", "bad film"])
    assert torch.allclose(model(x[1:, :2]), model(x[1:]), atol=1e-6)


def _toy_mr(n=120, seed=2):
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    emb = torch.tensor(rng.normal(size=(n, 8)) + 1.5 * (2 * y[:, None] - 1), dtype=torch.float32)
    sentences = [("nice" if label else "poor") + f" w{i}" for i, label in enumerate(y)]
    train, test = (
        Dataset(sentences[:80], y[:80], ["neg", "pos"]),
        Dataset(sentences[80:], y[80:], ["neg", "pos"]),
    )
    return {"train": train, "test": test, "train_emb": emb[:80], "test_emb": emb[80:]}


def test_text_learning_curve_and_figure():
    mr = _toy_mr()
    curve = tl.text_learning_curve(
        mr, sizes=[4, 80], seed=0, n_draws=2, scratch_steps=40, progress=False
    )
    assert curve["pretrained"].shape == curve["scratch"].shape == (2, 2)
    assert curve["pretrained"].min() > 0.85 and curve["scratch"][1].mean() > 0.85
    # the draws follow the seed: another seed draws other labelled sentences
    other = tl.text_learning_curve(
        mr, sizes=[4], seed=5, n_draws=2, scratch_steps=40, progress=False
    )
    assert other["scratch"].shape == (1, 2)
    for n_labels in (1, 4, 80, 10_000):
        fig = tl.learning_curve_figure(curve, n_labels)
        i = 0 if n_labels <= 4 else 1
        title = fig.axes[0].get_title()
        assert isinstance(fig, Figure) and title.startswith(f"{curve['sizes'][i]:,} labels")


def test_learning_curve_figure_at_slider_extremes():
    """At the fewest labels the title shows the probe far ahead, at the most the gap closed."""
    curve = {
        "sizes": np.array([25, 50, 9596]),
        "pretrained": np.array([[0.66, 0.68], [0.70, 0.71], [0.75, 0.75]]),
        "scratch": np.array([[0.52, 0.53], [0.54, 0.55], [0.745, 0.755]]),
    }
    low = tl.learning_curve_figure(curve, 25).axes[0].get_title()
    high = tl.learning_curve_figure(curve, 9596).axes[0].get_title()
    assert low == "25 labels: pretrained 67.0% vs scratch 52.5% (gap +14.5 points)"
    assert high == "9,596 labels: pretrained 75.0% vs scratch 75.0% (gap +0.0 points)"


def test_fine_tune_encoder_moves_the_features_and_is_cached(encoder, monkeypatch):
    """Fine-tuning beats the probe's training objective, which no head on the frozen
    features can beat (with the encoder's learning rate at 0 it cannot); it is cached."""
    words = ["a gorgeous , witty film .", "dull and lifeless .", "a joy to watch .", "a mess ."]
    x = [f"{w} {i}" for i in range(4) for w in words]
    y = np.array([1, 0, 1, 0] * 4)
    train = Dataset(x, y, ["neg", "pos"])
    emb = tl.encode_sentences(x, progress=False)
    mr = {"train": train, "test": train, "train_emb": emb, "test_emb": emb}
    tuned = tl.fine_tune_encoder(
        mr, n_train=16, epochs=2, batch_size=8, lr_head=0.0, seed=0, progress=False
    )
    assert tuned["tuned"]["objective"] < 0.95 * tuned["probe"]["objective"]
    assert 0 < tuned["encoder_change"] < 0.01 and tuned["head_change"] == 0.0
    still = tl.fine_tune_encoder(
        mr, n_train=16, epochs=2, batch_size=8, lr_encoder=0.0, seed=0, progress=False
    )
    assert still["encoder_change"] == 0.0
    assert (
        still["tuned"]["objective"] > tuned["probe"]["objective"] - 1e-4
    )  # the probe is the optimum
    monkeypatch.setattr(tl, "load_encoder", None)  # a cached result needs no encoder
    again = tl.fine_tune_encoder(
        mr, n_train=16, epochs=2, batch_size=8, lr_head=0.0, seed=0, progress=False
    )
    assert again == tuned


def test_mr_embeddings_fast_subset(real_data, monkeypatch):
    calls = []

    def fake_encode(sentences, progress=True):
        calls.append(list(sentences))
        return torch.arange(len(sentences), dtype=torch.float32)[:, None].repeat(1, 384)

    monkeypatch.setattr(tl, "encode_sentences", fake_encode)
    d = tl.mr_embeddings(n_train=40, n_test=20)
    assert len(d["train"]) == 40 and len(d["test"]) == 20 and len(calls[0]) == 60
    assert np.bincount(d["train"].y).tolist() == [20, 20]
    encoded = calls[0]
    for split in ("train", "test"):
        rows = d[f"{split}_emb"][:, 0].long()
        assert [encoded[i] for i in rows] == d[split].x  # each embedding is its own sentence
    assert not set(d["train"].x) & set(d["test"].x)


# --------------------------------------------------------------------------- vision


def _toy_task(n, classes, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, 3, 32, 32, generator=g) * 0.1
    x[:, 0] += y[:, None, None].float()  # the class is the brightness of the red channel
    return {"x_train": x, "y_train": y, "x_test": x.clone(), "y_test": y.clone()}


def test_cifar_animals_vehicles(real_data):
    d = tl.cifar_animals_vehicles(n_animals=300)
    a, v = d["animals"], d["vehicles"]
    assert a["x_train"].shape == (300, 3, 32, 32) and a["classes"] == list(tl.ANIMALS)
    assert set(a["y_train"].tolist()) == set(range(6)) and set(v["y_test"].tolist()) == set(
        range(4)
    )
    assert torch.allclose(a["x_train"].mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(a["x_train"].std((0, 2, 3)), torch.ones(3), atol=1e-3)
    assert len(v["y_train"]) > 1500 and v["x_test"].dtype == torch.float32


def test_small_cnn_shapes():
    model = tl.small_cnn(4, width=8)
    assert [name for name, _ in model.named_children()] == [*tl.LAYERS, "head"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)


def test_train_cnn_augments_with_the_course_pipeline(monkeypatch):
    from course_lib import vision

    seen = []
    real = vision.Augment.__call__
    monkeypatch.setattr(
        vision.Augment, "__call__", lambda self, x: seen.append(self.padding) or real(self, x)
    )
    task = _toy_task(32, 4)
    tl.train_cnn(tl.small_cnn(4, width=4), task["x_train"], task["y_train"], steps=2)
    assert seen and set(seen) == {4}


def test_train_cnn_leaves_frozen_layers_untouched():
    task = _toy_task(64, 4)
    model = tl.small_cnn(4, width=4)
    tl.freeze(model.conv1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = tl.train_cnn(model, task["x_train"], task["y_train"], steps=20, lr=3e-3)
    after = model.state_dict()
    assert history.epochs == 10 and history.loss[-1] < history.loss[0]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("conv1"))
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_pretrain_animals_is_cached_and_keyed_by_its_code(monkeypatch):
    task = _toy_task(48, 6)
    model, acc = tl.pretrain_animals(task, epochs=2, width=4, seed=0, progress=False)
    again, acc2 = tl.pretrain_animals(task, epochs=2, width=4, seed=0, progress=False)
    assert 0.0 <= acc <= 1.0 and acc == acc2
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )
    calls = []
    real = tl.train_cnn

    def changed_training(*args, **kwargs):  # another training function: not the cached weights
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tl, "train_cnn", changed_training)
    tl.pretrain_animals(task, epochs=2, width=4, seed=0, progress=False)
    assert calls == [1]


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_transfer_cnn_copies_and_freezes_the_first_k_layers(mode):
    source = tl.small_cnn(6, width=4)
    for k in range(len(tl.LAYERS) + 1):
        model = tl.transfer_cnn(source, k, mode, seed=3)
        for i, name in enumerate(tl.LAYERS):
            same = torch.equal(
                getattr(model, name)[0 if i < 3 else 1].weight,
                getattr(source, name)[0 if i < 3 else 1].weight,
            )
            frozen = not any(p.requires_grad for p in getattr(model, name).parameters())
            assert same == (i < k) and frozen == (i < k and mode == "frozen")
        assert model.head.out_features == 4 and model.head.weight.requires_grad
    with pytest.raises(ValueError):
        tl.transfer_cnn(source, 5)
    with pytest.raises(ValueError):
        tl.transfer_cnn(source, 1, "partly")


def test_transfer_sweep_and_figure(monkeypatch):
    source = tl.small_cnn(6, width=4)
    task = _toy_task(40, 4)
    sweep = tl.transfer_sweep(
        source, task, per_class=[2, 5], seed=0, n_draws=1, steps=3, progress=False
    )
    assert sweep["scratch"].shape == (2, 1)
    for mode in tl.MODES:
        assert sweep[mode].shape == (2, 1, 4) and ((sweep[mode] >= 0) & (sweep[mode] <= 1)).all()
    for per_class in (1, 2, 5, 500):
        fig = tl.transfer_figure(sweep, per_class)
        i = 0 if per_class <= 3 else 1
        assert fig.axes[0].get_title().startswith(f"{sweep['per_class'][i]} labels per class")

    def no_training(*args, **kwargs):
        raise AssertionError("a cached result needs no training")

    monkeypatch.setattr(torch.optim, "Adam", no_training)
    again = tl.transfer_sweep(
        source, task, per_class=[2, 5], seed=0, n_draws=1, steps=3, progress=False
    )
    assert all(np.array_equal(again[k], sweep[k]) for k in sweep)


def test_transfer_sweep_is_keyed_by_its_code(monkeypatch):
    source, task = tl.small_cnn(6, width=4), _toy_task(40, 4)
    tl.transfer_sweep(
        source, task, per_class=[2], seed=0, n_draws=1, steps=2, ks=(4,), progress=False
    )
    runs = []
    real = tl._transfer_run
    monkeypatch.setattr(tl, "_transfer_run", lambda *a: runs.append(1) or real(*a))
    tl.transfer_sweep(
        source, task, per_class=[2], seed=0, n_draws=1, steps=2, ks=(4,), progress=False
    )
    assert len(runs) == 4  # scratch, frozen, fine-tuned, self-transfer: computed again


def test_selffer_copies_the_scratch_network_of_the_same_draw(monkeypatch):
    """BnB: the first k layers of the vehicle network trained from scratch on the same
    images, copied and frozen; the animal network is the base of AnB and AnB+ only."""
    source, task = tl.small_cnn(6, width=4), _toy_task(40, 4)
    calls, real = [], tl._transfer_run

    def record(base, k, mode, run_task, vehicles):
        model, acc = real(base, k, mode, run_task, vehicles)
        calls.append((base, k, mode, run_task[3], model))
        return model, acc

    monkeypatch.setattr(tl, "_transfer_run", record)
    tl.transfer_sweep(
        source, task, per_class=[3], seed=0, n_draws=2, steps=2, ks=(4,), progress=False
    )
    for draw in (0, 1):
        runs = [c for c in calls if c[3] == draw]
        scratch = [c for c in runs if c[1] == 0]
        assert len(scratch) == 1 and scratch[0][0] is source
        selffer = [c for c in runs if c[0] is scratch[0][4]]
        assert [(c[1], c[2]) for c in selffer] == [(4, "frozen")]
        animal = sorted(c[2] for c in runs if c[0] is source and c[1] == 4)
        assert animal == ["finetune", "frozen"]


def test_transfer_sweep_subset_of_k():
    source = tl.small_cnn(6, width=4)
    sweep = tl.transfer_sweep(
        source, _toy_task(40, 4), per_class=[3], seed=0, n_draws=2, steps=2, ks=(3,), progress=False
    )
    for mode in tl.MODES:
        assert (
            np.isnan(sweep[mode][0, :, [0, 1, 3]]).all()
            and not np.isnan(sweep[mode][0, :, 2]).any()
        )
    assert "k=3" in tl.transfer_figure(sweep).axes[0].get_title()
    with pytest.raises(ValueError):
        tl.transfer_sweep(source, _toy_task(40, 4), per_class=[3], ks=(5,), progress=False)


def test_transfer_figure_names_the_best_transfer():
    nan = np.nan
    sweep = {
        "per_class": np.array([10, 100]),
        "scratch": np.array([[0.40, 0.42], [0.60, 0.62]]),
        "frozen": np.array([[[nan, nan, 0.45, 0.30]] * 2, [[nan, nan, 0.64, 0.40]] * 2]),
        "finetune": np.array([[[nan, nan, 0.47, 0.44]] * 2, [[nan, nan, 0.66, 0.68]] * 2]),
        "selffer": np.array([[[nan, nan, 0.41, 0.41]] * 2, [[nan, nan, 0.61, 0.61]] * 2]),
    }
    low, high = (tl.transfer_figure(sweep, n).axes[0] for n in (10, 100))
    assert (
        low.get_title()
        == "10 labels per class: scratch 41.0 %, best transfer (finetune, k=3) 47.0 %"
    )
    assert (
        high.get_title()
        == "100 labels per class: scratch 61.0 %, best transfer (finetune, k=4) 68.0 %"
    )
    assert [len(line.get_xdata()) for line in low.lines[:3]] == [3, 3, 3]  # k = 0, 3, 4


# --------------------------------------------------------------------------- exercises


def test_count_wrong_answers():
    def all_trainable(model):
        n = sum(p.numel() for p in model.parameters())
        return n, n

    def tensors(model):
        ps = list(model.parameters())
        return sum(p.requires_grad for p in ps), len(ps)

    def swapped(model):
        return models.count_parameters(model), models.count_parameters(model, trainable_only=True)

    assert_feedback("08.1", all_trainable, "requires_grad False")
    assert_feedback("08.1", tensors, "numel")
    assert_feedback("08.1", swapped, "wrong way round")


def test_transfer_wrong_answers():
    def not_frozen(source, target, k):
        for name in tl.LAYERS[:k]:
            getattr(target, name).load_state_dict(getattr(source, name).state_dict())
        return target

    def not_copied(source, target, k):
        for name in tl.LAYERS[:k]:
            tl.freeze(getattr(target, name))
        return target

    def one_too_many(source, target, k):
        return exercises.get("08.2").solution(source, target, min(k + 1, 4))

    def backwards(source, target, k):  # copies the target's weights into the source
        for name in tl.LAYERS[:k]:
            getattr(source, name).load_state_dict(getattr(target, name).state_dict())
            tl.freeze(getattr(target, name))
        return target

    def everything(source, target, k):
        target.load_state_dict(source.state_dict())
        return target

    assert_feedback("08.2", not_frozen, "not frozen")
    assert_feedback("08.2", not_copied, "not copied")
    assert_feedback("08.2", backwards, "not copied from the source")
    assert_feedback("08.2", one_too_many, "only the first k layers")
    assert_feedback("08.2", everything, "raised RuntimeError")
    assert_feedback("08.2", lambda s, t, k: None, "return")
