"""The CIFAR-10 pipeline of notebook 13, also used by notebook 05 (and its recipe by 08).

1. data: :func:`load_data` (the official batches through
   :func:`course_lib.data.load_cifar10`), per-channel statistics of the *training*
   images (:func:`channel_stats`), and :class:`Normalize`, the model's first layer,
   so that models take raw ``uint8`` images;
2. augmentation as a batched tensor transform (:class:`Augment`: random horizontal
   flips and random shifts with the border reflected, :func:`shift_crop`);
3. the model: :class:`SmallResNet`, a narrow ResNet-9-style network with batch
   normalisation (:class:`ConvBN`, :class:`Residual`);
4. the recipe (:func:`train`): SGD with Nesterov momentum and a one-cycle schedule
   stepped after every batch (:func:`one_cycle_sgd`), label smoothing, weight decay,
   and the ``channels_last`` memory layout that makes convolutions faster on CPUs;
5. evaluation with test-time flips (:func:`predict_proba`, :func:`accuracy`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from . import config, data, training

__all__ = [
    "Augment",
    "ConvBN",
    "Normalize",
    "RECIPE",
    "Residual",
    "TrainingRun",
    "SmallResNet",
    "accuracy",
    "channel_stats",
    "load_data",
    "one_cycle_sgd",
    "predict_proba",
    "shift_crop",
    "train",
    "xy",
]

#: The training recipe of :func:`train`, timed by ``make bench`` (measured on the
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
    """``x + f(x)`` with ``f`` two :class:`ConvBN` blocks of the same width.

    ``skip=False`` leaves the identity path out (the block computes ``f(x)``
    only), for the ablation that shows what the skip connection is for.
    """

    def __init__(self, channels: int, skip: bool = True):
        super().__init__()
        self.a = ConvBN(channels, channels)
        self.b = ConvBN(channels, channels)
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.b(self.a(x))
        return x + out if self.skip else out


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
        residual: bool = True,
    ):
        super().__init__()
        w = width
        self.norm = Normalize(mean, std, channels_last)
        self.stem = ConvBN(3, w, stem_kernel)
        self.layer1 = ConvBN(w, 2 * w, pool=True)
        self.res1 = Residual(2 * w, skip=residual)
        self.layer2 = ConvBN(2 * w, 4 * w, pool=True)
        self.layer3 = ConvBN(4 * w, 8 * w, pool=True)
        self.res3 = Residual(8 * w, skip=residual)
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
class TrainingRun:
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
    seed: int | None = None,
) -> TrainingRun:
    """Train ``model`` on ``train_set`` (a :class:`~course_lib.data.Dataset` or ``(x, y)``).

    The recipe: :class:`Augment` (flip + shift), :func:`one_cycle_sgd`,
    cross-entropy with ``label_smoothing``, batches from :func:`course_lib.training.make_loader`,
    all run by :func:`course_lib.training.fit` (progress bar included).
    ``val`` (optional) is evaluated after every epoch, which costs time. With
    ``snapshots=True`` a :class:`~course_lib.training.WeightSnapshots`
    records every parameter before training and after each epoch. ``seed``
    (default: the course seed, ``COURSE_SEED``) fixes the batch order and the
    augmentation's random numbers.
    """
    seed = config.resolve_seed(seed)
    x, y = xy(train_set)
    torch.manual_seed(seed)
    loader = training.make_loader(x, y, batch_size=batch_size, shuffle=True, seed=seed)
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
        val=xy(val) if val is not None else None,
        transform=Augment(padding, flip, seed=seed),
        callbacks=[recorder] if snapshots else (),
        progress=progress,
        seed=seed,
    )
    return TrainingRun(
        model=model,
        history=history,
        seconds=history.seconds,
        cpu_seconds=time.process_time() - start_cpu,
        images_seen=epochs * len(y),
        snapshots=recorder.snapshots,
    )


def xy(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels as tensors, from a :class:`~course_lib.data.Dataset` or an ``(x, y)`` pair."""
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
    x, y = xy(dataset)
    return (predict_proba(model, x, tta=tta).argmax(1) == y).float().mean().item()
