"""Notebook 13: a complete CIFAR-10 pipeline, and the weights of every layer.

The pipeline itself (data, normalisation, augmentation, :class:`SmallResNet`, the
training recipe, evaluation with test-time flips) lives in :mod:`course_lib.vision`,
because notebook 05 trains the same network. Here, in the order of the notebook:

* normalisation: :func:`per_image_std` (where the widely copied constants come from);
* the augmentation demo: :func:`augmentation_figure`;
* two networks: :class:`TutorialNet` (the CNN of PyTorch's tutorial) and the weights of
  every layer (:func:`layer_table`, :func:`format_table`);
* training: :func:`tutorial_baseline` (the tutorial's own recipe) and :func:`ablation`
  (what augmentation and label smoothing do, in a small run of two variants);
* evaluation: :func:`confusion_matrix`, :func:`confusion_figure`,
  :func:`misclassified`, :func:`confidence_figure`;
* the weights before and after training: :func:`weight_stats`,
  :func:`gradient_weight_cosines`, :func:`layer_weights_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from . import config, training, vision, viz

__all__ = [
    "TutorialNet",
    "ablation",
    "augmentation_figure",
    "confidence_figure",
    "confusion_figure",
    "confusion_matrix",
    "format_table",
    "gradient_weight_cosines",
    "layer_table",
    "layer_weights_figure",
    "misclassified",
    "per_image_std",
    "tutorial_baseline",
    "weight_stats",
]

# --------------------------------------------------------------------------- normalisation


def per_image_std(images, chunk: int = 5000) -> np.ndarray:
    """The standard deviation of each image's pixels, per channel, averaged over the images (0..1 scale).

    Unlike the per-pixel standard deviation of the whole set
    (:func:`course_lib.vision.channel_stats`), it leaves out how much the
    images' own means differ, so it is smaller. Computed ``chunk`` images at a time.
    """
    x = np.asarray(images)
    total = np.zeros(x.shape[1])
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk].astype(np.float64) / 255.0
        total += part.std(axis=(2, 3)).sum(axis=0)
    return total / len(x)


# --------------------------------------------------------------------------- the augmentation demo


def augmentation_figure(images, padding: int = 4, flip: float = 0.5, seed: int = 0) -> Figure:
    """Each image (top row) and one random augmentation of it (bottom row).

    The title gives the share of pixel values the augmentation changed.
    """
    x = training.to_tensor(images)[:8]
    aug = vision.Augment(padding, flip, seed=seed)(x)
    changed = (aug != x).float().mean().item()
    grid = torch.cat([x, aug]).permute(0, 2, 3, 1).numpy()
    fig = viz.image_grid(grid, ncols=len(x), size=1.2)
    fig.suptitle(
        f"shift up to ±{padding} px, flip p={flip:.2f}: {changed:.0%} of pixel values changed"
    )
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- two networks


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
        self.norm = vision.Normalize(mean, std, channels_last=False)
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


def format_table(rows: Sequence[Mapping], columns: Sequence[str], formats: Mapping[str, str] = ()):
    """Rows of dicts as an aligned plain-text table (``formats`` maps column -> format spec)."""
    formats = dict(formats)
    cells = [[format(r[c], formats.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


# --------------------------------------------------------------------------- training


def tutorial_baseline(
    train_set,
    test_set,
    epochs: int = 10,
    batch_size: int = 4,
    lr: float = 1e-3,
    progress: bool = True,
    time_limit: float | None = None,
    seed: int | None = None,
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
    seed = config.resolve_seed(seed)
    torch.manual_seed(seed)
    model = TutorialNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        history = training.fit(
            model,
            training.make_loader(*vision.xy(train_set), batch_size=batch_size, seed=seed),
            epochs=epochs,
            optimizer=optimizer,
            val=vision.xy(test_set),
            progress=progress,
            seed=seed,
            time_limit=time_limit,
        )
    finally:
        torch.set_num_threads(threads)
    return model, history


def ablation(
    train_set, test_set, n: int = 256, epochs: int = 16, seed: int | None = None
) -> dict[str, dict[str, float]]:
    """Train :class:`~course_lib.vision.SmallResNet` on ``n`` training images with and without augmentation.

    Both runs use :func:`course_lib.vision.train` (label smoothing included) with
    batches of 32 and a peak learning rate of 0.1, for ``epochs`` epochs. Returns,
    for ``"augmented"`` and ``"plain"`` (no flips, no shifts): ``train`` and ``test``
    accuracy (one pass, no test-time flips), their difference ``gap``, and the
    top-class probability on the training images: mean ``confidence`` and the share
    ``over_95`` above 0.95.
    """
    seed = config.resolve_seed(seed)
    subset = train_set.subset(n, seed=seed)
    mean, std = vision.channel_stats(subset.x)
    out = {}
    for name, shift, flip in (("augmented", vision.RECIPE["padding"], 0.5), ("plain", 0, 0.0)):
        torch.manual_seed(seed)
        model = vision.SmallResNet(16, mean, std)
        vision.train(model, subset, epochs, batch_size=32, lr=0.1, padding=shift, flip=flip,
                     progress=False, seed=seed)  # fmt: skip
        probs = vision.predict_proba(model, subset.x, tta=False)
        train_acc = (probs.argmax(1).numpy() == subset.y).mean()
        test_acc = vision.accuracy(model, test_set, tta=False)
        confidence = probs.max(1).values
        out[name] = {
            "train": float(train_acc),
            "test": test_acc,
            "gap": float(train_acc - test_acc),
            "confidence": confidence.mean().item(),
            "over_95": (confidence > 0.95).float().mean().item(),
        }
    return out


# --------------------------------------------------------------------------- evaluation


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
    probs = training.to_numpy(probs)
    y = np.asarray(y)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y)
    confidence = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:k]


def confidence_figure(probs, y, threshold: float = 0.5) -> Figure:
    """Accuracy and coverage when only predictions with confidence >= ``threshold`` count.

    The title states the accuracy on the images kept and the share kept.
    """
    probs = training.to_numpy(probs)
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


# --------------------------------------------------------------------------- the weights before and after training


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


def gradient_weight_cosines(model: nn.Module, x, y) -> dict[str, float]:
    """Cosine between each convolution or linear weight and its gradient, on one batch in training mode.

    A weight followed by batch normalisation (in training mode, with the batch's
    statistics) can be rescaled without changing the output, so its gradient is
    orthogonal to it: cosine 0 up to batch norm's ``eps``. ``x`` and ``y`` are a
    batch of images and labels; the loss is cross-entropy. The gradients are cleared afterwards.
    """
    was_training = model.training
    model.train()
    model.zero_grad()
    nn.functional.cross_entropy(model(training.to_tensor(x)), training.to_tensor(y)).backward()
    cosines = {
        f"{name}.weight": F.cosine_similarity(
            m.weight.flatten(), m.weight.grad.flatten(), dim=0
        ).item()
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    }
    model.zero_grad()
    model.train(was_training)
    return cosines


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
