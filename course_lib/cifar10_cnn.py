"""Notebook 13: a complete CIFAR-10 pipeline, and the weights of every layer.

The pipeline, in the order the notebook builds it:

1. data: :func:`load_data` (the official CIFAR-10 batches through
   :func:`course_lib.data.load_cifar10`), per-channel statistics of the
   *training* images (:func:`channel_stats`), a :class:`Normalize` layer that
   applies them inside the model, so the model takes raw ``uint8`` images;
2. augmentation as a batched tensor transform (:class:`Augment`: random
   horizontal flips and random shifts of up to ``padding`` pixels, with the
   border reflected), applied by :func:`course_lib.training.fit` to every
   training batch;
3. the models: :class:`SmallResNet` (a narrow ResNet-9-style network with
   batch normalisation) and, as the baseline, :class:`TutorialNet` (the small
   CNN of the official PyTorch tutorial);
4. the training recipe (:func:`train`): SGD with Nesterov momentum, a
   one-cycle learning-rate schedule stepped after every batch, label
   smoothing, weight decay, and the ``channels_last`` memory layout that makes
   convolutions faster on CPUs;
5. evaluation with test-time flip augmentation (:func:`predict_proba`),
   the confusion matrix (:func:`confusion_matrix`) and the misclassified
   images;
6. the weights of every layer (:func:`layer_table`, :func:`weight_stats`).

:func:`benchmark` times the whole recipe; :func:`tutorial_baseline` trains the
tutorial network with its own recipe for comparison.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from . import data, training, viz

__all__ = [
    "Augment",
    "ConvBN",
    "Normalize",
    "RECIPE",
    "Residual",
    "Run",
    "SmallResNet",
    "TutorialNet",
    "accuracy",
    "augmentation_figure",
    "batch_loader",
    "benchmark",
    "channel_stats",
    "confidence_figure",
    "confusion_figure",
    "confusion_matrix",
    "format_table",
    "layer_table",
    "layer_weights_figure",
    "load_data",
    "misclassified",
    "one_cycle_sgd",
    "predict_proba",
    "shift_crop",
    "train",
    "tutorial_baseline",
    "weight_stats",
]

#: The training recipe of :func:`train` and :func:`benchmark` (measured on the
#: 5,085-image sample: see the notebook).
RECIPE = {
    "width": 16,
    "epochs": 16,
    "batch_size": 128,
    "lr": 0.2,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "label_smoothing": 0.2,
    "warmup": 0.2,
    "padding": 4,
}


# --------------------------------------------------------------------------- data


def load_data(
    n_train: int | None = None, n_test: int | None = None, seed: int = 0
) -> tuple[data.Dataset, data.Dataset]:
    """CIFAR-10 train and test sets (class-stratified subsets of ``n_train``/``n_test``).

    Images are ``uint8`` arrays of shape ``(N, 3, 32, 32)``, labels ``int64``.
    """
    train_set = data.load_cifar10("train", n=n_train, seed=seed)
    test_set = data.load_cifar10("test", n=n_test, seed=seed)
    return train_set, test_set


def channel_stats(images, chunk: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of ``(N, 3, H, W)`` images, on a 0..1 scale.

    Computed over every pixel of every image (axes 0, 2 and 3). The sums of
    ``x`` and ``x**2`` are accumulated in float64, ``chunk`` images at a time,
    so that the 50,000 CIFAR-10 training images never need a float copy of
    the whole array (1.2 GB). Use the *training* images only: the test set
    must not influence any part of the model.
    """
    x = training.to_tensor(images)
    if x.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros(x.shape[1], dtype=torch.float64)
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk].to(torch.float64) / 255.0
        total += part.sum(dim=(0, 2, 3))
        squares += (part**2).sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (squares / count - mean**2).clamp_min(0).sqrt()
    return mean.float(), std.float()


class Normalize(nn.Module):
    """First layer of the models: raw pixels (0..255, any dtype) -> ``(x/255 - mean) / std``.

    ``mean`` and ``std`` are *buffers*: part of the ``state_dict`` (saved and
    loaded with the model) but not parameters (no gradient, no optimiser
    update). The output uses the ``channels_last`` memory layout when
    ``channels_last`` is true, which oneDNN's CPU convolutions run faster.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels_last: bool = True):
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        if (std_t <= 0).any():
            raise ValueError("std must be positive in every channel")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(dtype=torch.float32, memory_format=fmt)
        return (x / 255.0 - self.mean) / self.std


def shift_crop(images: torch.Tensor, dy, dx) -> torch.Tensor:
    """Shift each image by ``(dy[i], dx[i])`` pixels, reflecting at the border.

    Output pixel ``(r, c)`` of image ``i`` is input pixel ``(r + dy[i], c + dx[i])``,
    with out-of-range coordinates mirrored back inside (``-1 -> 1``,
    ``H -> H - 2``). This equals padding by reflection and cropping an
    ``H x W`` window at offset ``(pad + dy, pad + dx)``, without building the
    padded copy. Works for any dtype, including ``uint8``.
    """
    n, c, h, w = images.shape
    dy = torch.as_tensor(dy, dtype=torch.long).reshape(n, 1)
    dx = torch.as_tensor(dx, dtype=torch.long).reshape(n, 1)
    rows = _reflect(torch.arange(h) + dy, h)  # (n, h)
    cols = _reflect(torch.arange(w) + dx, w)  # (n, w)
    out = images.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


class Augment:
    """Batched data augmentation: random horizontal flip and random shift (crop).

    ``Augment(padding=4)(x)`` flips each image of the batch ``x`` with
    probability ``flip`` and shifts it by a random whole number of pixels in
    ``[-padding, padding]`` along each axis (the equivalent of the classic
    "pad by 4, crop 32x32 at random"). All images are transformed in a few
    tensor operations, not one at a time. The random numbers come from the
    object's own generator, so a run is reproducible from ``seed``.
    """

    def __init__(self, padding: int = 4, flip: float = 0.5, seed: int = 0):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        if not 0.0 <= flip <= 1.0:
            raise ValueError(f"flip is a probability, got {flip}")
        self.padding = padding
        self.flip = flip
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        flip = torch.rand(n, generator=self.generator) < self.flip
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
        if self.padding:
            p = self.padding
            dy = torch.randint(-p, p + 1, (n,), generator=self.generator)
            dx = torch.randint(-p, p + 1, (n,), generator=self.generator)
            x = shift_crop(x, dy, dx)
        return x

    def __repr__(self) -> str:
        return f"Augment(padding={self.padding}, flip={self.flip})"


def batch_loader(x, y, batch_size: int = 128, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` that takes each batch with one indexing operation.

    The default ``DataLoader`` fetches a batch image by image and stacks them;
    here the sampler yields whole lists of indices and ``TensorDataset``
    indexes the tensors with them at once, which is several times faster
    for small images held in memory. Shuffling is reproducible from ``seed``.
    """
    dataset = TensorDataset(training.to_tensor(x), training.to_tensor(y))
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None)


# --------------------------------------------------------------------------- models


class ConvBN(nn.Sequential):
    """3x3 (or ``k x k``) convolution without bias, batch normalisation, ReLU (, 2x2 max-pool).

    The convolution needs no bias: batch normalisation subtracts the mean of
    each channel right after it, which would cancel any bias, and adds its
    own learnt shift (``bn.bias``) instead.
    """

    def __init__(self, c_in: int, c_out: int, k: int = 3, pool: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        if pool:
            self.pool = nn.MaxPool2d(2)


class Residual(nn.Module):
    """``x + f(x)`` with ``f`` two :class:`ConvBN` blocks of the same width."""

    def __init__(self, channels: int):
        super().__init__()
        self.a = ConvBN(channels, channels)
        self.b = ConvBN(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


class SmallResNet(nn.Module):
    """A narrow ResNet-9-style CNN for 32x32 images (Page 2018, "How to train your ResNet").

    ======== ================================ ==========
    layer    operation                        output
    ======== ================================ ==========
    norm     :class:`Normalize` (buffers)     3 x 32 x 32
    stem     ConvBN 3 -> w, k x k             w x 32 x 32
    layer1   ConvBN w -> 2w, max-pool 2       2w x 16 x 16
    res1     2 ConvBN 2w -> 2w, + skip        2w x 16 x 16
    layer2   ConvBN 2w -> 4w, max-pool 2      4w x 8 x 8
    layer3   ConvBN 4w -> 8w, max-pool 2      8w x 4 x 4
    res3     2 ConvBN 8w -> 8w, + skip        8w x 4 x 4
    head     global max-pool, Linear 8w -> 10 10
    ======== ================================ ==========

    The logits are multiplied by ``logit_scale`` (0.125), as in Page's
    network: with batch normalisation the features are large, and the scale
    keeps the initial logits, hence the first gradients, moderate.
    """

    def __init__(
        self,
        width: int = 16,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.25, 0.25, 0.25),
        stem_kernel: int = 3,
        n_classes: int = 10,
        logit_scale: float = 0.125,
        channels_last: bool = True,
    ):
        super().__init__()
        w = width
        self.norm = Normalize(mean, std, channels_last)
        self.stem = ConvBN(3, w, stem_kernel)
        self.layer1 = ConvBN(w, 2 * w, pool=True)
        self.res1 = Residual(2 * w)
        self.layer2 = ConvBN(2 * w, 4 * w, pool=True)
        self.layer3 = ConvBN(4 * w, 8 * w, pool=True)
        self.res3 = Residual(8 * w)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(8 * w, n_classes)
        self.logit_scale = logit_scale
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``8w``-dimensional feature vector before the classifier."""
        x = self.stem(self.norm(x))
        x = self.res1(self.layer1(x))
        x = self.res3(self.layer3(self.layer2(x)))
        return self.pool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)) * self.logit_scale


class TutorialNet(nn.Module):
    """The CNN of PyTorch's "Training a classifier" tutorial (62,006 weights).

    Two 5x5 convolutions (6 and 16 filters) with max-pooling, then three
    fully connected layers (400 -> 120 -> 84 -> 10). A :class:`Normalize`
    layer in front lets it take the same raw images as :class:`SmallResNet`
    (the tutorial normalises with mean 0.5 and std 0.5, the default here).
    """

    def __init__(
        self, mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5)
    ):
        super().__init__()
        self.norm = Normalize(mean, std, channels_last=False)
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(self.norm(x))))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# --------------------------------------------------------------------------- training


def one_cycle_sgd(
    model: nn.Module,
    total_steps: int,
    lr: float = RECIPE["lr"],
    momentum: float = RECIPE["momentum"],
    weight_decay: float = RECIPE["weight_decay"],
    warmup: float = RECIPE["warmup"],
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR]:
    """SGD with Nesterov momentum whose learning rate follows a one-cycle schedule per batch.

    The rate rises linearly from 0 to ``lr`` over the first ``warmup`` share of
    the ``total_steps`` optimiser steps, then falls linearly to 0 at the last
    step (Smith and Topin 2019). :func:`course_lib.training.fit` steps a
    scheduler once per *epoch*; this one must move after every *batch*, so it
    is attached to the optimiser with a step post-hook: every
    ``optimizer.step()`` also advances the schedule.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay
    )
    peak = max(1, round(warmup * total_steps))

    def factor(step: int) -> float:
        # the rate used by optimizer step number `step + 1`
        if step < peak:
            return (step + 1) / peak
        return max(0.0, (total_steps - step) / max(1, total_steps - peak))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    optimizer.register_step_post_hook(lambda opt, args, kwargs: scheduler.step())
    return optimizer, scheduler


@dataclass
class Run:
    """A trained model with its :class:`~course_lib.training.History` and timings.

    ``seconds`` is the wall-clock time of :func:`course_lib.training.fit`
    (including the per-epoch evaluation when ``val`` was given),
    ``cpu_seconds`` the CPU time of this process meanwhile (all threads),
    ``images_seen`` the number of training images processed, and
    ``snapshots`` the recorded parameters (empty unless requested).
    """

    model: nn.Module
    history: training.History
    seconds: float
    cpu_seconds: float
    images_seen: int
    snapshots: list[dict[str, torch.Tensor]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        """Training throughput: ``images_seen / seconds``."""
        return self.images_seen / self.seconds if self.seconds > 0 else float("nan")


def train(
    model: nn.Module,
    train_set,
    epochs: int = RECIPE["epochs"],
    val=None,
    batch_size: int = RECIPE["batch_size"],
    lr: float = RECIPE["lr"],
    weight_decay: float = RECIPE["weight_decay"],
    label_smoothing: float = RECIPE["label_smoothing"],
    padding: int = RECIPE["padding"],
    flip: float = 0.5,
    snapshots: bool = False,
    progress: bool = True,
    seed: int = 0,
) -> Run:
    """Train ``model`` on ``train_set`` (a :class:`~course_lib.data.Dataset` or ``(x, y)``).

    The recipe: :class:`Augment` (flip + shift), :func:`one_cycle_sgd`,
    cross-entropy with ``label_smoothing``, batches from :func:`batch_loader`,
    all run by :func:`course_lib.training.fit` (progress bar included).
    ``val`` (optional) is evaluated after every epoch, which costs time. With
    ``snapshots=True`` a :class:`~course_lib.training.WeightSnapshots`
    records every parameter before training and after each epoch.
    """
    x, y = _xy(train_set)
    torch.manual_seed(seed)
    loader = batch_loader(x, y, batch_size=batch_size, shuffle=True, seed=seed)
    total_steps = max(1, epochs * len(loader))
    optimizer, _ = one_cycle_sgd(model, total_steps, lr=lr, weight_decay=weight_decay)
    recorder = training.WeightSnapshots()
    start_cpu = time.process_time()
    history = training.fit(
        model,
        loader,
        epochs=epochs,
        optimizer=optimizer,
        loss_fn=nn.CrossEntropyLoss(label_smoothing=label_smoothing),
        val=_xy(val) if val is not None else None,
        transform=Augment(padding, flip, seed=seed),
        callbacks=[recorder] if snapshots else (),
        progress=progress,
        seed=seed,
    )
    return Run(
        model=model,
        history=history,
        seconds=history.seconds,
        cpu_seconds=time.process_time() - start_cpu,
        images_seen=epochs * len(y),
        snapshots=recorder.snapshots,
    )


def _xy(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, data.Dataset):
        return training.to_tensor(dataset.x), training.to_tensor(dataset.y)
    x, y = dataset
    return training.to_tensor(x), training.to_tensor(y)


# --------------------------------------------------------------------------- evaluation


def predict_proba(model: nn.Module, x, tta: bool = True, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities ``(N, 10)``; with ``tta`` averaged over each image and its mirror.

    Test-time augmentation: a horizontally flipped airplane is still an
    airplane, so averaging the two predictions removes some of the model's
    left/right idiosyncrasies at the price of a second forward pass.
    """
    x = training.to_tensor(x)
    probs = training.predict(model, x, batch_size=batch_size).softmax(1)
    if tta:
        flipped = training.predict(model, x.flip(3), batch_size=batch_size).softmax(1)
        probs = (probs + flipped) / 2
    return probs


def accuracy(model: nn.Module, dataset, tta: bool = True) -> float:
    """Share of correctly classified images (with test-time flips when ``tta``)."""
    x, y = _xy(dataset)
    return (predict_proba(model, x, tta=tta).argmax(1) == y).float().mean().item()


def confusion_matrix(y_true, y_pred, n_classes: int = 10) -> np.ndarray:
    """``C[i, j]`` = number of images of true class ``i`` predicted as class ``j``.

    Rows are true classes, columns predictions (scikit-learn's convention); the
    diagonal holds the correct predictions.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def confusion_figure(cm: np.ndarray, classes: Sequence[str]) -> Figure:
    """The confusion matrix as a heat map, normalised per true class (row), counts written in."""
    cm = np.asarray(cm)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    acc = np.trace(cm) / max(cm.sum(), 1)
    fig, axes = viz.figure(size=(7.2, 6.2))
    ax = axes[0, 0]
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.grid(False)
    for i in range(len(cm)):
        for j in range(len(cm)):
            if cm[i, j]:
                color = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix: accuracy {acc:.1%} on {cm.sum():,} test images")
    fig.tight_layout()
    return fig


def misclassified(probs, y, k: int = 16) -> np.ndarray:
    """Indices of the ``k`` misclassified images the model was most confident about."""
    probs = viz.to_numpy(probs)
    y = np.asarray(y)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y)
    confidence = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:k]


# --------------------------------------------------------------------------- weights


def layer_table(model: nn.Module, input_shape: Sequence[int] | None = (1, 3, 32, 32)) -> list[dict]:
    """One row per parameter tensor: name, kind, shape, count, share of all parameters, MACs.

    ``macs`` is the number of multiply-accumulate operations the tensor takes
    part in for one input image: for a convolution or linear weight, its
    count times the number of output positions (found by running one
    ``input_shape`` batch through the model); 0 for biases and batch-norm
    parameters. Buffers (normalisation constants, batch-norm running
    statistics) are state but not weights: ``state_dict()`` lists them, this
    table does not.
    """
    positions: dict[str, int] = {}
    if input_shape is not None:
        hooks = [
            m.register_forward_hook(
                lambda mod, inp, out, name=name: positions.__setitem__(
                    name, out[0, 0].numel() if out.ndim > 2 else 1
                )
            )
            for name, m in model.named_modules()
            if isinstance(m, nn.Conv2d | nn.Linear)
        ]
        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            with torch.no_grad():
                model(torch.zeros(*input_shape, device=device))
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
    params = list(model.named_parameters())
    total = sum(p.numel() for _, p in params)
    rows = []
    for name, p in params:
        owner, _, leaf = name.rpartition(".")
        module = model.get_submodule(owner) if owner else model
        macs = p.numel() * positions[owner] if leaf == "weight" and owner in positions else 0
        rows.append(
            {
                "name": name,
                "kind": type(module).__name__,
                "shape": tuple(p.shape),
                "count": p.numel(),
                "share": p.numel() / total,
                "macs": macs,
            }
        )
    return rows


def weight_stats(weights: Mapping[str, torch.Tensor] | nn.Module) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, mean absolute value, max |w| and L2 norm of every tensor.

    ``weights`` is a model (its parameters) or a mapping name -> tensor, e.g. a
    snapshot from :class:`~course_lib.training.WeightSnapshots`.
    """
    if isinstance(weights, nn.Module):
        weights = {n: p.detach() for n, p in weights.named_parameters()}
    out = {}
    for name, t in weights.items():
        v = t.detach().double().cpu().reshape(-1)
        out[name] = {
            "mean": v.mean().item(),
            "std": v.std(unbiased=False).item(),
            "mean_abs": v.abs().mean().item(),
            "max_abs": v.abs().max().item(),
            "norm": v.norm().item(),
        }
    return out


def format_table(rows: Sequence[Mapping], columns: Sequence[str], formats: Mapping[str, str] = ()):
    """Rows of dicts as an aligned plain-text table (``formats`` maps column -> format spec)."""
    formats = dict(formats)
    cells = [[format(r[c], formats.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


# --------------------------------------------------------------------------- slider figures


def augmentation_figure(images, padding: int = 4, flip: float = 0.5, seed: int = 0) -> Figure:
    """Each image (top row) and one random augmentation of it (bottom row).

    The title gives the share of pixel values the augmentation changed.
    """
    x = training.to_tensor(images)[:8]
    aug = Augment(padding, flip, seed=seed)(x)
    changed = (aug != x).float().mean().item()
    grid = torch.cat([x, aug]).permute(0, 2, 3, 1).numpy()
    fig = viz.image_grid(grid, ncols=len(x), size=1.2)
    fig.suptitle(
        f"shift up to ±{padding} px, flip p={flip:.2f}: {changed:.0%} of pixel values changed"
    )
    fig.tight_layout()
    return fig


def layer_weights_figure(
    before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor], layer: str
) -> Figure:
    """Histogram of one parameter tensor at initialisation and after training.

    The title gives both standard deviations and the relative change
    ``||W_after - W_before|| / ||W_before||``.
    """
    w0 = before[layer].detach().double().reshape(-1).numpy()
    w1 = after[layer].detach().double().reshape(-1).numpy()
    rel = np.linalg.norm(w1 - w0) / max(np.linalg.norm(w0), 1e-12)
    fig, axes = viz.figure(size=(6.8, 3.6))
    ax = axes[0, 0]
    lo, hi = min(w0.min(), w1.min()), max(w0.max(), w1.max())
    bins = np.linspace(lo, hi, 61) if hi > lo else 10
    ax.hist(w0, bins=bins, alpha=0.6, color="tab:gray", label=f"initial (std {w0.std():.3g})")
    ax.hist(w1, bins=bins, alpha=0.6, color="tab:blue", label=f"trained (std {w1.std():.3g})")
    ax.set_xlabel("weight value")
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    ax.set_title(f"{layer} ({w0.size:,} values): relative change {rel:.2f}")
    fig.tight_layout()
    return fig


def confidence_figure(probs, y, threshold: float = 0.5) -> Figure:
    """Accuracy and coverage when only predictions with confidence >= ``threshold`` count.

    The title states the accuracy on the images kept and the share kept.
    """
    probs = viz.to_numpy(probs)
    y = np.asarray(y)
    conf = probs.max(1)
    correct = probs.argmax(1) == y
    grid = np.linspace(0.1, 1.0, 91)
    cover = np.array([(conf >= t).mean() for t in grid])
    acc = np.array([correct[conf >= t].mean() if (conf >= t).any() else np.nan for t in grid])
    kept = conf >= threshold
    acc_t = correct[kept].mean() if kept.any() else float("nan")
    fig, axes = viz.figure(size=(6.8, 3.8))
    ax = axes[0, 0]
    ax.plot(grid, acc, label="accuracy on kept images")
    ax.plot(grid, cover, label="share of images kept")
    ax.axvline(threshold, color="k", ls="--", lw=1)
    ax.set_xlabel("confidence threshold (max class probability)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"threshold {threshold:.2f}: accuracy {acc_t:.1%} on {kept.mean():.0%} of images")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- benchmark


def benchmark(
    epochs: int = RECIPE["epochs"],
    width: int = RECIPE["width"],
    threads: int | None = 2,
    n_train: int | None = None,
    data_dir=None,
    per_epoch: bool = False,
    baseline: bool = False,
    baseline_epochs: int | None = None,
    progress: bool = False,
    seed: int = 0,
) -> dict:
    """Train :class:`SmallResNet` with the course recipe on CIFAR-10 and time it.

    Trains on the whole training set in the data directory (or ``n_train``
    images) with ``threads`` CPU threads (``None`` keeps PyTorch's setting),
    then measures the test accuracy with and without test-time flips.
    Returns a dict: ``accuracy``, ``accuracy_no_tta``, ``train_seconds``
    (wall clock of training alone), ``cpu_seconds`` (CPU time of this
    process during training, all threads), ``images_per_second``, ``epochs``,
    ``n_train``, ``n_test``, ``threads``, ``params`` and, with
    ``per_epoch=True``, ``val_accuracy`` per epoch (evaluating every epoch
    adds its time to ``train_seconds``). With ``baseline=True`` it also
    trains :class:`TutorialNet` with the tutorial's recipe on the same data,
    by default for the same time budget (epochs until its training time
    reaches ``train_seconds``; ``baseline_epochs`` fixes the number of
    epochs instead), and adds ``baseline_accuracy`` (its best epoch),
    ``baseline_epochs`` (epochs run) and ``baseline_seconds``.
    """
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        train_set = data.load_cifar10("train", n=n_train, data_dir=data_dir, seed=seed)
        test_set = data.load_cifar10("test", data_dir=data_dir)
        mean, std = channel_stats(train_set.x)
        torch.manual_seed(seed)
        model = SmallResNet(width, mean, std)
        run = train(
            model,
            train_set,
            epochs=epochs,
            val=test_set if per_epoch else None,
            progress=progress,
            seed=seed,
        )
        result = {
            "accuracy": accuracy(model, test_set, tta=True),
            "accuracy_no_tta": accuracy(model, test_set, tta=False),
            "train_seconds": run.seconds,
            "cpu_seconds": run.cpu_seconds,
            "images_per_second": run.images_per_second,
            "epochs": epochs,
            "n_train": len(train_set),
            "n_test": len(test_set),
            "threads": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters()),
        }
        if per_epoch:
            result["val_accuracy"] = list(run.history.val_accuracy)
        if baseline:
            _, history = tutorial_baseline(
                train_set,
                test_set,
                epochs=baseline_epochs or 1000,
                seed=seed,
                progress=progress,
                time_limit=None if baseline_epochs else run.seconds,
            )
            result["baseline_accuracy"] = max(history.val_accuracy)
            result["baseline_epochs"] = history.epochs
            result["baseline_seconds"] = history.seconds
        return result
    finally:
        torch.set_num_threads(old_threads)


def tutorial_baseline(
    train_set,
    test_set,
    epochs: int = 10,
    batch_size: int = 4,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    time_limit: float | None = None,
) -> tuple[TutorialNet, training.History]:
    """Train :class:`TutorialNet` with the tutorial's own recipe; returns it and its history.

    The recipe of PyTorch's "Training a classifier": SGD with learning rate
    0.001 and momentum 0.9, batches of 4, no augmentation, normalisation with
    mean 0.5 and std 0.5. The tutorial stops after 2 epochs on 50,000 images;
    on a small sample more epochs are needed to reach its peak, which is
    ``max(history.val_accuracy)`` (test accuracy after each epoch).
    ``time_limit`` stops it after the first epoch that ends past that many
    seconds (see :func:`course_lib.training.fit`).

    It trains on one CPU thread: a network this small, on batches of 4, gains
    nothing from more threads, and waiting for each other costs them dearly
    when other programs share the CPU.
    """
    torch.manual_seed(seed)
    model = TutorialNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = training.fit(
            model,
            batch_loader(*_xy(train_set), batch_size=batch_size, seed=seed),
            epochs=epochs,
            optimizer=optimizer,
            val=_xy(test_set),
            progress=progress,
            seed=seed,
            time_limit=time_limit,
        )
    finally:
        torch.set_num_threads(threads)
    return model, history
