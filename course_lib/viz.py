"""Plotting helpers shared by the notebooks.

Every helper returns a matplotlib ``Figure`` (it never calls ``plt.show``), so
the same function serves a static cell, a slider demo (see
:mod:`course_lib.widgets`) and a test that inspects the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .training import to_numpy

__all__ = ["figure", "histograms", "image_grid", "plot_history", "show"]


def figure(nrows: int = 1, ncols: int = 1, size: tuple[float, float] | None = None, **kw):
    """``plt.subplots`` with the course's default size per panel; returns ``(fig, axes)``."""
    if size is None:
        size = (min(4.2 * ncols, 13.0), 3.4 * nrows)
    return plt.subplots(nrows, ncols, figsize=size, squeeze=False, **kw)


def show(fig: Figure) -> None:
    """Display ``fig`` once in a notebook and release it from pyplot."""
    from IPython.display import display

    plt.close(fig)
    display(fig)


def plot_history(history, title: str | None = None) -> Figure:
    """Loss (and accuracy, when recorded) per epoch of a :class:`~course_lib.training.History`."""
    metrics = history.as_dict() if hasattr(history, "as_dict") else dict(history)
    has_acc = bool(metrics.get("accuracy") or metrics.get("val_accuracy"))
    fig, axes = figure(1, 2 if has_acc else 1)
    for key, ax in (("loss", axes[0, 0]), ("accuracy", axes[0, -1] if has_acc else None)):
        if ax is None:
            continue
        for prefix, style in (("", "-o"), ("val_", "--s")):
            values = metrics.get(prefix + key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, ms=3, label="validation" if prefix else "train")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_grid(
    images,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    cmap: str | None = None,
    normalize: bool = False,
    size: float = 1.3,
) -> Figure:
    """A grid of images: ``(N, H, W)`` grey or ``(N, 3, H, W)``/``(N, H, W, 3)`` colour.

    With ``normalize=True`` each image is rescaled to [0, 1] on its own (for
    weights, whose range is arbitrary); a grey ``normalize`` image uses a
    diverging colour map centred on zero.
    """
    arr = to_numpy(images).astype(np.float64)
    if arr.ndim == 4 and arr.shape[1] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 3), got shape {arr.shape}")
    n = len(arr)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if title else 0)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = arr[i]
        if img.ndim == 2:
            if normalize:
                lim = np.abs(img).max() or 1.0
                ax.imshow(img, cmap=cmap or "RdBu_r", vmin=-lim, vmax=lim)
            else:
                ax.imshow(img, cmap=cmap or "gray")
        else:
            if normalize:
                lo, hi = img.min(), img.max()
                img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
            elif img.max() > 1.0:
                img = img / 255.0
            ax.imshow(np.clip(img, 0, 1))
        if titles is not None and i < len(titles):
            ax.set_title(str(titles[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def histograms(
    values: Mapping[str, object],
    bins: int = 60,
    title: str | None = None,
    ncols: int = 4,
    sharex: bool = False,
) -> Figure:
    """One histogram panel per named array (e.g. per layer), with its std in the panel title."""
    names = list(values)
    if not names:
        raise ValueError("histograms() needs at least one array")
    ncols = min(ncols, len(names))
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = figure(nrows, ncols, size=(3.2 * ncols, 2.4 * nrows + 0.4), sharex=sharex)
    for ax, name in zip(axes.flat, names, strict=False):
        data = to_numpy(values[name]).ravel()
        ax.hist(data, bins=bins, color="tab:blue", alpha=0.8)
        ax.set_title(f"{name}\nstd={data.std():.3g}", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
