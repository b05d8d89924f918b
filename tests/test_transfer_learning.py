"""course_lib.transfer_learning (notebook 08)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_feedback
from matplotlib.figure import Figure
from torch import nn

from course_lib import exercises
from course_lib import transfer_learning as TL


@pytest.fixture(scope="module")
def encoder():
    return TL.load_encoder()


SENTENCES = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate ."]


# --------------------------------------------------------------------------- the pretrained encoder


def test_load_encoder_is_offline_and_22_7m_parameters(encoder):
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert encoder.get_embedding_dimension() == 384
    assert sum(p.numel() for p in encoder.parameters()) == 22_713_216
    assert TL.load_encoder() is encoder  # loaded once


def test_frozen_classifier_trains_only_its_head(encoder):
    model = TL.FrozenEncoderClassifier(encoder)
    trainable, total = TL.count_parameters(model)
    assert (trainable, total) == (384 * 2 + 2, 22_713_216 + 770)
    emb = model.embed(SENTENCES)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    cached = TL.encode_sentences(SENTENCES, progress=False)
    assert torch.allclose(emb, cached, atol=1e-5)
    nn.functional.cross_entropy(model(SENTENCES), torch.tensor([1, 0])).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    groups = dict((name, (n, t)) for name, n, t in TL.parameter_groups(model))
    assert groups["head"] == (770, True)
    assert groups["layer 0"] == (1_774_464, False) and groups["embeddings"][1] is False
    assert list(groups) == ["embeddings", *[f"layer {i}" for i in range(6)], "pooler", "head"]
    assert sum(n for n, _ in groups.values()) == total


def test_encode_sentences_is_cached(encoder, monkeypatch):
    first = TL.encode_sentences(SENTENCES[:1], progress=False)
    assert first.shape == (1, 384) and first.dtype == torch.float32

    def no_encoder():
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(TL, "load_encoder", no_encoder)
    assert torch.equal(TL.encode_sentences(SENTENCES[:1], progress=False), first)
    with pytest.raises(AssertionError):
        TL.encode_sentences(SENTENCES[1:], progress=False)  # a different list is not cached


def test_freeze_and_count_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    assert TL.count_parameters(model) == (26, 26)
    assert TL.freeze(model[0]) is model[0]
    assert TL.count_parameters(model) == (10, 26)
    assert not any(p.requires_grad for p in model[0].parameters())


# --------------------------------------------------------------------------- heads and baselines


def test_train_linear_head_separates_separable_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 5)) + 2.0 * (2 * y[:, None] - 1) * np.array([1, 0, 0, 0, 0])
    head = TL.train_linear_head(torch.tensor(x, dtype=torch.float32), y)
    acc = (head(torch.tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean()
    assert acc > 0.95 and head.weight.shape == (2, 5)
    strong = TL.train_linear_head(torch.tensor(x, dtype=torch.float32), y, weight_decay=10.0)
    assert strong.weight.norm() < 0.2 * head.weight.norm()  # the penalty shrinks the weights


def test_bag_of_embeddings_learns_and_ignores_padding():
    words = ["good fun", "great joy", "bad bore", "awful mess"]
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80)
    sentences = [words[2 * (1 - label) + rng.integers(0, 2)] + " film" for label in y]
    model, vocab = TL.train_bag_of_embeddings(sentences, y, steps=60)
    pred = model(vocab.encode(sentences)).argmax(1).numpy()
    assert (pred == y).mean() == 1.0 and "bore" in vocab
    x = vocab.encode(["good fun film", "bad film"])
    assert torch.allclose(model(x[1:, :2]), model(x[1:]), atol=1e-6)


def test_text_learning_curve_and_figure():
    rng = np.random.default_rng(2)
    n = 120
    y = np.tile([0, 1], n // 2)
    emb = torch.tensor(rng.normal(size=(n, 8)) + 1.5 * (2 * y[:, None] - 1), dtype=torch.float32)
    sentences = [("nice" if label else "poor") + f" w{i}" for i, label in enumerate(y)]
    curve = TL.text_learning_curve(
        sentences[:80], y[:80], emb[:80], sentences[80:], y[80:], emb[80:],
        sizes=[4, 80], seeds=(0, 1), scratch_steps=40, progress=False,
    )  # fmt: skip
    assert curve["pretrained"].shape == curve["scratch"].shape == (2, 2)
    assert curve["pretrained"].min() > 0.85 and curve["scratch"][1].mean() > 0.85
    for n_labels in (1, 4, 80, 10_000):
        fig = TL.learning_curve_figure(curve, n_labels)
        i = 0 if n_labels <= 4 else 1
        title = fig.axes[0].get_title()
        assert isinstance(fig, Figure) and title.startswith(f"{curve['sizes'][i]:,} labels")
        assert f"pretrained {curve['pretrained'][i].mean():.1%}" in title


def test_mr_embeddings_fast_subset(real_data, monkeypatch):
    calls = []

    def fake_encode(sentences, progress=True):
        calls.append(list(sentences))
        return torch.arange(len(sentences), dtype=torch.float32)[:, None].repeat(1, 384)

    monkeypatch.setattr(TL, "encode_sentences", fake_encode)
    d = TL.mr_embeddings(n_train=40, n_test=20)
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
    d = TL.cifar_animals_vehicles(n_animals=300)
    a, v = d["animals"], d["vehicles"]
    assert a["x_train"].shape == (300, 3, 32, 32) and a["classes"] == list(TL.ANIMALS)
    assert set(a["y_train"].tolist()) == set(range(6)) and set(v["y_test"].tolist()) == set(
        range(4)
    )
    assert torch.allclose(a["x_train"].mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert len(v["y_train"]) > 1500 and v["x_test"].dtype == torch.float32


def test_small_cnn_shapes_and_augment():
    model = TL.small_cnn(4, width=8)
    assert [name for name, _ in model.named_children()] == [*TL.LAYERS, "head"]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    x = torch.randn(5, 3, 32, 32)
    torch.manual_seed(0)
    out = TL.augment(x)
    assert out.shape == x.shape and not torch.equal(out, x)


def test_train_cnn_leaves_frozen_layers_untouched():
    task = _toy_task(64, 4)
    model = TL.small_cnn(4, width=4)
    TL.freeze(model.conv1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = TL.train_cnn(model, task["x_train"], task["y_train"], steps=20, lr=3e-3)
    after = model.state_dict()
    assert history.epochs == 10 and history.loss[-1] < history.loss[0]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("conv1"))
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_pretrain_animals_is_cached():
    task = _toy_task(48, 6)
    model, acc = TL.pretrain_animals(task, epochs=2, width=4, progress=False)
    again, acc2 = TL.pretrain_animals(task, epochs=2, width=4, progress=False)
    assert 0.0 <= acc <= 1.0 and acc == acc2
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("mode", TL.MODES)
def test_transfer_cnn_copies_and_freezes_the_first_k_layers(mode):
    source = TL.small_cnn(6, width=4)
    for k in range(len(TL.LAYERS) + 1):
        model = TL.transfer_cnn(source, k, mode, seed=3)
        for i, name in enumerate(TL.LAYERS):
            same = torch.equal(
                getattr(model, name)[0 if i < 3 else 1].weight,
                getattr(source, name)[0 if i < 3 else 1].weight,
            )
            frozen = not any(p.requires_grad for p in getattr(model, name).parameters())
            assert same == (i < k) and frozen == (i < k and mode == "frozen")
        assert model.head.out_features == 4 and model.head.weight.requires_grad
    with pytest.raises(ValueError):
        TL.transfer_cnn(source, 5)
    with pytest.raises(ValueError):
        TL.transfer_cnn(source, 1, "partly")


def test_transfer_sweep_and_figure(monkeypatch):
    source = TL.small_cnn(6, width=4)
    task = _toy_task(40, 4)
    sweep = TL.transfer_sweep(source, task, per_class=[2, 5], seeds=(0,), steps=3, progress=False)
    assert sweep["scratch"].shape == (2, 1) and sweep["frozen"].shape == (2, 1, 4)
    assert ((sweep["finetune"] >= 0) & (sweep["finetune"] <= 1)).all()
    for per_class in (1, 2, 5, 500):
        fig = TL.transfer_figure(sweep, per_class)
        i = 0 if per_class <= 3 else 1
        title = fig.axes[0].get_title()
        assert isinstance(fig, Figure)
        assert title.startswith(
            f"{sweep['per_class'][i]} labels per class: scratch {sweep['scratch'][i].mean() * 100:.1f} %"
        )
    monkeypatch.setattr(TL, "train_cnn", None)  # a cached result needs no training
    again = TL.transfer_sweep(source, task, per_class=[2, 5], seeds=(0,), steps=3, progress=False)
    assert all(np.array_equal(again[k], sweep[k]) for k in sweep)


def test_transfer_sweep_subset_of_k():
    source = TL.small_cnn(6, width=4)
    sweep = TL.transfer_sweep(
        source,
        _toy_task(40, 4),
        per_class=[3],
        seeds=(0, 1),
        steps=2,
        ks=(3,),
        use_cache=False,
        progress=False,
    )
    assert (
        np.isnan(sweep["frozen"][0, :, [0, 1, 3]]).all()
        and not np.isnan(sweep["frozen"][0, :, 2]).any()
    )
    title = TL.transfer_figure(sweep).axes[0].get_title()
    assert "k=3" in title
    with pytest.raises(ValueError):
        TL.transfer_sweep(source, _toy_task(40, 4), per_class=[3], ks=(5,), progress=False)


# --------------------------------------------------------------------------- exercises


def test_count_wrong_answers():
    def all_trainable(model):
        n = sum(p.numel() for p in model.parameters())
        return n, n

    def tensors(model):
        ps = list(model.parameters())
        return sum(p.requires_grad for p in ps), len(ps)

    def swapped(model):
        return TL.count_parameters(model)[::-1]

    assert_feedback("08.1", all_trainable, "requires_grad False")
    assert_feedback("08.1", tensors, "numel")
    assert_feedback("08.1", swapped, "wrong way round")


def test_transfer_wrong_answers():
    def not_frozen(source, target, k):
        for name in TL.LAYERS[:k]:
            getattr(target, name).load_state_dict(getattr(source, name).state_dict())
        return target

    def not_copied(source, target, k):
        for name in TL.LAYERS[:k]:
            TL.freeze(getattr(target, name))
        return target

    def one_too_many(source, target, k):
        return exercises.get("08.2").solution(source, target, min(k + 1, 4))

    def backwards(source, target, k):  # copies the target's weights into the source
        for name in TL.LAYERS[:k]:
            getattr(source, name).load_state_dict(getattr(target, name).state_dict())
            TL.freeze(getattr(target, name))
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
