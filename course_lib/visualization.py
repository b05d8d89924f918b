"""Notebook 05: looking at weights.

In the notebook's order, each picture with a number that states what it shows:

* the first-layer filters of a CNN trained on CIFAR-10 (the network and the
  pipeline of :mod:`course_lib.vision`), before and after training: random
  noise becomes smooth colour blobs and edge detectors, measured by the
  spatial autocorrelation of the weights (:func:`smoothness`) and by how their
  energy splits between brightness and colour (:func:`colour_share`);
* per-layer weight histograms over training (:func:`histogram_figure`, with an
  epoch slider), their shape (:func:`kurtosis`), and the relative change of each
  layer ``||W_t - W_0|| / ||W_0||`` (:func:`relative_change`), with the
  scale invariance that batch normalisation gives the convolutions
  (:func:`gradient_cosines`);
* the first-layer weights of an MLP on MNIST, one 28x28 image per hidden unit:
  the weights of pixels that are 0 in every image never move
  (:func:`frozen_pixels`); Adam gives the rarely inked pixels full-size steps,
  SGD does not (:func:`ink_frequency`, :func:`movement_by_ink`,
  :func:`adam_travel`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from . import config, data, models, training, vision, viz

__all__ = [
    "adam_travel",
    "cnn_weight_names",
    "colour_share",
    "filter_figure",
    "filter_images",
    "frozen_pixels",
    "gradient_cosines",
    "histogram_figure",
    "ink_frequency",
    "kurtosis",
    "mnist_mlp",
    "movement_by_ink",
    "movement_figure",
    "outside_initial_box",
    "rank_correlation",
    "relative_change",
    "relative_change_figure",
    "smoothness",
    "template_figure",
    "template_mosaic",
    "train_cifar_cnn",
    "train_mnist_mlp",
]


# --------------------------------------------------------------------------- the first layer of a CNN on CIFAR-10


def cnn_weight_names(model: nn.Module) -> list[str]:
    """Names of the convolution and linear weight matrices of ``model``, input to output."""
    return [
        name + ".weight"
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear) and m.weight is not None
    ]


def train_cifar_cnn(
    n_train: int | None = None,
    epochs: int = 10,
    width: int = 16,
    seed: int | None = None,
    n_test: int | None = None,
    **kwargs,
) -> tuple[nn.Module, vision.TrainingRun, data.Dataset]:
    """Train :class:`~course_lib.vision.SmallResNet` with a 5x5 first layer on CIFAR-10.

    The pipeline and recipe of notebook 13 (:func:`course_lib.vision.train`),
    with weight snapshots before training and after every epoch. The first
    layer gets 5x5 filters (instead of 3x3) so that there is more to see in
    each filter. Returns the model, the run (``run.snapshots``) and the test set.
    """
    seed = config.resolve_seed(seed)
    train_set, test_set = vision.load_data(n_train=n_train, n_test=n_test, seed=seed)
    mean, std = vision.channel_stats(train_set.x)
    torch.manual_seed(seed)
    model = vision.SmallResNet(width, mean, std, stem_kernel=5)
    run = vision.train(
        model, train_set, epochs=epochs, val=test_set, snapshots=True, seed=seed, **kwargs
    )
    return model, run, test_set


def filter_images(filters, per_filter: bool = True) -> np.ndarray:
    """RGB filters ``(F, 3, k, k)`` as images ``(F, k, k, 3)`` in [0, 1], with 0 as mid-grey.

    Each filter is divided by its own largest absolute weight (``per_filter``,
    the usual way to look at filters), or all by the largest one in the
    tensor (weak filters then look weak). Positive weights on the red channel
    look red, negative ones cyan; a filter with the same weights in all three
    channels looks grey.
    """
    w = training.to_numpy(filters).astype(np.float64)
    if per_filter:
        lim = np.abs(w).reshape(len(w), -1).max(1).reshape(-1, 1, 1, 1)
        lim = np.where(lim > 0, lim, 1.0)
    else:
        lim = np.abs(w).max() or 1.0
    return np.clip(0.5 + 0.5 * w / lim, 0, 1).transpose(0, 2, 3, 1)


def filter_figure(
    snapshots: Sequence[Mapping[str, torch.Tensor]],
    epoch: int = -1,
    layer: str = "stem.conv.weight",
) -> Figure:
    """The first-layer filters at snapshot ``epoch`` (0 = initialisation, -1 = last).

    The title gives the epoch, the smoothness and the mean colour share.
    """
    epoch = range(len(snapshots))[epoch]
    w = snapshots[epoch][layer]
    rho = smoothness(w)
    share = colour_share(w).mean()
    fig = viz.image_grid(filter_images(w), ncols=8, size=1.0)
    when = "at initialisation" if epoch == 0 else f"after epoch {epoch}"
    fig.suptitle(f"{layer} {when}: smoothness {rho:.2f}, colour share {share:.2f}")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- measures of structure


def smoothness(weights) -> float:
    """Spatial lag-1 autocorrelation of filters or weight images, pooled over all of them.

    For a tensor ``(..., H, W)`` this is

    .. math:: \\rho = \\frac{\\sum w_{r,c}\\,w_{r,c+1} + \\sum w_{r,c}\\,w_{r+1,c}}
                          {\\tfrac12\\sum (w_{r,c}^2 + w_{r,c+1}^2)
                           + \\tfrac12\\sum (w_{r,c}^2 + w_{r+1,c}^2)}

    over every pair of horizontal and vertical neighbours: close to 0 for
    independent random weights, near 1 for smooth patterns (blobs, soft
    edges), negative for checkerboards. It is not centred: a filter that is
    constant in space counts as perfectly smooth.
    """
    w = torch.as_tensor(training.to_numpy(weights), dtype=torch.float64)
    if w.ndim < 2:
        raise ValueError(f"need at least 2 spatial dimensions, got shape {tuple(w.shape)}")
    h_pairs = w[..., :, :-1] * w[..., :, 1:]
    v_pairs = w[..., :-1, :] * w[..., 1:, :]
    h_energy = 0.5 * (w[..., :, :-1] ** 2 + w[..., :, 1:] ** 2)
    v_energy = 0.5 * (w[..., :-1, :] ** 2 + w[..., 1:, :] ** 2)
    denom = h_energy.sum() + v_energy.sum()
    if denom == 0:
        return 0.0
    return ((h_pairs.sum() + v_pairs.sum()) / denom).item()


def colour_share(filters) -> np.ndarray:
    """Share of each RGB filter's energy that is colour rather than brightness.

    A filter ``w`` of shape ``(3, k, k)`` splits into its brightness part (the
    mean over the three channels, the same in each) and its colour part (what
    is left, summing to zero over the channels):
    ``share = ||w - mean_c w||^2 / ||w||^2``. A pure edge detector on
    brightness has share 0; a red-versus-green detector has share 1; random
    independent weights have 2/3 on average (two of the three directions in
    colour space are colour). Returns one value per filter.
    """
    w = torch.as_tensor(training.to_numpy(filters), dtype=torch.float64)
    if w.ndim != 4 or w.shape[1] != 3:
        raise ValueError(f"expected filters of shape (F, 3, k, k), got {tuple(w.shape)}")
    colour = w - w.mean(dim=1, keepdim=True)
    total = (w**2).sum(dim=(1, 2, 3)).clamp_min(1e-30)
    return ((colour**2).sum(dim=(1, 2, 3)) / total).numpy()


# --------------------------------------------------------------------------- weight histograms over training


def histogram_figure(
    snapshots: Sequence[Mapping[str, torch.Tensor]],
    epoch: int = -1,
    names: Sequence[str] | None = None,
    ncols: int = 4,
) -> Figure:
    """Per-layer histograms of the weights after ``epoch`` (blue) over the initial ones (grey).

    Each panel keeps the same bins for every epoch, so moving the epoch
    slider shows the distribution change. The title gives the epoch and the
    median relative change of the layers shown.
    """
    epoch = range(len(snapshots))[epoch]
    names = list(names) if names is not None else list(snapshots[0])
    changes = relative_change([snapshots[0], snapshots[epoch]], names)
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = viz.figure(
        nrows, min(ncols, len(names)), size=(3.0 * min(ncols, len(names)), 2.2 * nrows + 0.6)
    )
    for ax, name in zip(axes.flat, names, strict=False):
        every = torch.cat([s[name].reshape(-1) for s in snapshots]).double()
        lo, hi = every.min().item(), every.max().item()
        bins = np.linspace(lo, hi, 51) if hi > lo else 10
        ax.hist(
            training.to_numpy(snapshots[0][name]).ravel(), bins=bins, color="tab:gray", alpha=0.5
        )
        ax.hist(
            training.to_numpy(snapshots[epoch][name]).ravel(),
            bins=bins,
            color="tab:blue",
            alpha=0.7,
        )
        ax.set_title(f"{name}\nchange {changes[name][-1]:.2f}", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    median = float(np.median([c[-1] for c in changes.values()]))
    fig.suptitle(f"epoch {epoch}: median relative change {median:.2f} (grey: initial weights)")
    fig.tight_layout()
    return fig


def kurtosis(weights) -> float:
    """Kurtosis ``E[(w - mean)^4] / var^2`` of all the numbers in ``weights``.

    1.8 for a uniform distribution, 3 for a Gaussian, more for heavier tails
    (``scipy.stats.kurtosis(w, fisher=False)`` computes the same).
    """
    w = torch.as_tensor(training.to_numpy(weights), dtype=torch.float64).flatten()
    centred = w - w.mean()
    return ((centred**4).mean() / (centred**2).mean() ** 2).item()


def outside_initial_box(snapshots, names: Sequence[str], epoch: int = -1) -> dict[str, float]:
    """Share of each layer's weights beyond the initial box ``±1/sqrt(fan-in)`` after ``epoch``."""
    out = {}
    for name in names:
        w0 = snapshots[0][name]
        bound = 1 / np.sqrt(w0[0].numel())  # fan-in: the inputs of one output
        out[name] = (snapshots[epoch][name].abs() > bound).double().mean().item()
    return out


# --------------------------------------------------------------------------- how far each layer moved


def relative_change(
    snapshots: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """``||W_t - W_0|| / ||W_0||`` for every named tensor and every snapshot ``t``.

    ``snapshots`` is :attr:`course_lib.training.WeightSnapshots.snapshots`
    (index 0: before training). Returns ``{name: array of len(snapshots)}``;
    the first entry of each array is 0.
    """
    if not snapshots:
        raise ValueError("no snapshots: pass WeightSnapshots(...).snapshots after training")
    names = list(names) if names is not None else list(snapshots[0])
    out = {}
    for name in names:
        w0 = snapshots[0][name].double()
        norm0 = w0.norm().item()
        if norm0 == 0:
            raise ValueError(f"{name} is all zeros at the start: its relative change is undefined")
        out[name] = np.array([(s[name].double() - w0).norm().item() / norm0 for s in snapshots])
    return out


def relative_change_figure(changes: Mapping[str, np.ndarray]) -> Figure:
    """Relative change of each layer against the epoch, one line per layer."""
    fig, axes = viz.figure(size=(7.5, 4.0))
    ax = axes[0, 0]
    for name, c in changes.items():
        ax.plot(np.arange(len(c)), c, "-o", ms=3, label=name)
    final = {n: c[-1] for n, c in changes.items()}
    top = max(final, key=final.get)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$\|W_t - W_0\| \,/\, \|W_0\|$")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(f"largest relative change: {top} ({final[top]:.2f})")
    fig.tight_layout()
    return fig


def gradient_cosines(model: nn.Module, x, y, names: Sequence[str]) -> dict[str, float]:
    """Cosine between each named weight and its loss gradient, on one batch in training mode.

    A convolution followed by batch normalisation computes the same for ``w``
    and ``c w`` (c > 0): its loss is scale invariant, so its gradient is
    orthogonal to ``w`` (cosine 0 up to rounding). A copy of ``model`` is used,
    so the batch-normalisation statistics of ``model`` stay as they are.
    """
    net = training.clone(model).train()
    params = dict(net.named_parameters())
    loss = nn.functional.cross_entropy(net(training.to_tensor(x)), training.to_tensor(y))
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    return {
        n: nn.functional.cosine_similarity(params[n].detach().flatten(), g.flatten(), dim=0).item()
        for n, g in zip(names, grads, strict=True)
    }


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two sequences: the Pearson correlation of their ranks.

    +1 when ``b`` grows whenever ``a`` grows, -1 when it always shrinks. Ties
    are broken by order of appearance (enough for measured, continuous values).
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two sequences of equal length >= 2, got {len(a)} and {len(b)}")
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable")
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable")
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------- an MLP on MNIST


def mnist_mlp(hidden: int = 64, seed: int | None = None) -> nn.Sequential:
    """``Flatten -> Linear(784, hidden) -> ReLU -> Linear(hidden, 10)`` for 28x28 digits.

    It takes raw ``uint8`` images and scales them to [0, 1] itself.
    """
    layers = models.mlp([28 * 28, hidden, 10], flatten=True, seed=config.resolve_seed(seed))
    return nn.Sequential(_Scale(1 / 255.0), *layers)


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() * self.factor


def train_mnist_mlp(
    n_train: int | None = None,
    epochs: int = 5,
    hidden: int = 64,
    optimizer: str = "adam",
    lr: float | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> tuple[nn.Module, training.History, list[dict[str, torch.Tensor]], data.Dataset]:
    """Train :func:`mnist_mlp` with snapshots of its weights, no weight decay.

    ``optimizer`` is ``"adam"`` (learning rate 1e-3 unless ``lr`` says
    otherwise) or ``"sgd"`` (with momentum 0.9, learning rate 0.1). Returns the
    model, the history (test accuracy per epoch), the snapshots and the
    training set (whose pixels :func:`frozen_pixels` inspects).
    """
    seed = config.resolve_seed(seed)
    train_set = data.load_mnist("train", n=n_train, seed=seed)
    test_set = data.load_mnist("test", n=min(len(train_set), 10_000), seed=seed)
    for ds in (train_set, test_set):  # the loader may return read-only views of the files
        if not ds.x.flags.writeable:
            ds.x = ds.x.copy()
    model = mnist_mlp(hidden, seed)
    if optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr or 1e-3)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr or 0.1, momentum=0.9)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    recorder = training.WeightSnapshots()
    history = training.fit(
        model,
        (train_set.x, train_set.y),
        epochs=epochs,
        optimizer=opt,
        val=(test_set.x, test_set.y),
        callbacks=[recorder],
        progress=progress,
        seed=seed,
    )
    return model, history, recorder.snapshots, train_set


def template_mosaic(weights, ncols: int = 8, gap: int = 1) -> np.ndarray:
    """Rows of a ``(units, 784)`` weight matrix tiled as 28x28 images into one array.

    Each tile is divided by its own largest absolute weight (so every unit
    spans -1..1 and its pattern is visible whatever its scale); the gaps are
    NaN (drawn blank).
    """
    w = training.to_numpy(weights).astype(np.float64).reshape(-1, 28, 28)
    n = len(w)
    nrows = int(np.ceil(n / ncols))
    size = 28 + gap
    mosaic = np.full((nrows * size - gap, ncols * size - gap), np.nan)
    for k, tile in enumerate(w):
        r, c = divmod(k, ncols)
        lim = np.abs(tile).max() or 1.0
        mosaic[r * size : r * size + 28, c * size : c * size + 28] = tile / lim
    return mosaic


def template_figure(weights, units: int = 32, title: str | None = None) -> Figure:
    """The first ``units`` rows of a ``(hidden, 784)`` weight matrix as 28x28 images.

    Red: positive weights (the unit is excited by ink there), blue: negative.
    The title gives the smoothness of the images shown.
    """
    w = training.to_numpy(weights)[:units]
    rho = smoothness(w.reshape(-1, 28, 28))
    ncols = min(8, len(w))
    mosaic = template_mosaic(w, ncols=ncols)
    fig, axes = viz.figure(size=(1.1 * ncols + 0.4, 1.1 * mosaic.shape[0] / 29 + 0.7))
    ax = axes[0, 0]
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title or f"{len(w)} first-layer weight images: smoothness {rho:.2f}", fontsize=10)
    fig.tight_layout()
    return fig


def frozen_pixels(images) -> np.ndarray:
    """Boolean mask ``(H, W)`` of the pixels that are 0 in every image of ``images``.

    The gradient of a first-layer weight is (error signal) x (its input pixel),
    so the weights of these pixels get an exactly zero gradient and, with an
    optimiser without weight decay, never move.
    """
    x = training.to_numpy(images)
    return ~(x != 0).any(axis=0)


def adam_travel(gradient: float, steps: int = 200, lr: float = 1e-3) -> float:
    """How far ``torch.optim.Adam`` moves a weight that gets one gradient and then zeros.

    Adam divides each step by the running root mean square of the weight's own
    gradients, so the distance does not depend on the gradient's size (SGD
    would move it by ``lr * gradient``).
    """
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w], lr=lr)
    for t in range(steps):
        w.grad = torch.tensor([gradient if t == 0 else 0.0])
        opt.step()
    return abs(w.item())


def ink_frequency(images) -> np.ndarray:
    """Share of ``images`` in which each pixel is not 0 (inked), as an ``(H, W)`` array."""
    x = training.to_numpy(images)
    return (x != 0).mean(axis=0)


def movement_by_ink(w_start, w_end, frequency, rare: float = 0.01, often: float = 0.2):
    """Mean ``|W_end - W_start|`` of first-layer weights, by how often their pixel is inked.

    ``w_start``/``w_end`` are ``(hidden, 784)``; returns the mean over the pixels
    inked in ``0 < f <= rare`` of the images (rarely), over those inked in
    ``f > often`` of them (often), and their ratio ``rare / often``.
    """
    moved = (training.to_tensor(w_end) - training.to_tensor(w_start)).abs().mean(0).numpy()
    f = np.asarray(frequency).ravel()
    rarely = moved[(f > 0) & (f <= rare)].mean()
    frequently = moved[f > often].mean()
    return {"rare": float(rarely), "often": float(frequently), "ratio": float(rarely / frequently)}


def movement_figure(runs: Mapping[str, Sequence[Mapping[str, torch.Tensor]]], layer: str) -> Figure:
    """Mean ``|W_end - W_start|`` per input pixel (28x28) of ``layer``, one panel per run."""
    fig, axes = viz.figure(1, len(runs), size=(3.6 * len(runs), 3.4))
    for ax, (name, snaps) in zip(axes.flat, runs.items(), strict=True):
        moved = (snaps[-1][layer] - snaps[0][layer]).abs().mean(0).reshape(28, 28)
        image = ax.imshow(moved.numpy(), cmap="viridis")
        ax.set_title(f"{name}: largest {moved.max():.3f}", fontsize=9)
        ax.axis("off")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("how far each pixel's first-layer weights moved (mean |W_end - W_start|)")
    fig.tight_layout()
    return fig
