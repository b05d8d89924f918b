"""Notebook 09: Siamese networks and weight sharing.

A Siamese network passes both inputs of a pair through *one* embedding network
(the two "branches" share every weight) and compares the two embeddings by
their distance. Here:

* :class:`SiameseNet` registers the same branch module twice (``left`` and
  ``right``): shared weights are literally the same parameter objects.
* :func:`two_copy_gradients` shows that the gradient of a shared weight is the
  sum of the gradients the two branches would get as separate copies.
* :func:`output_bias_drift`: the output bias cancels in every distance, so its
  gradient is zero up to rounding; SGD leaves it where it is, Adam does not.
* :func:`contrastive_loss` is the loss of Hadsell, Chopra and LeCun (2006);
  :func:`train_siamese` trains a small CNN with it on MNIST digits 0-6 (all pairs
  of each mini-batch), and :func:`verification_auc`, :func:`error_rates` and
  :func:`roc_figure` measure how well distances separate same-digit from
  different-digit pairs, on digits 7-9 that the network never saw.

Every random draw (subset, initial weights, batches, pairs) follows the course
seed (``COURSE_SEED``) unless a ``seed`` is given.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score
from torch import nn

from . import config, data, training, viz

__all__ = [
    "SEEN",
    "UNSEEN",
    "SiameseNet",
    "batch_pairs",
    "contrastive_loss",
    "digit_split",
    "embed",
    "embedding_figure",
    "embedding_net",
    "error_rates",
    "make_pairs",
    "margin_figure",
    "output_bias_drift",
    "pair_distances",
    "pca_variance_share",
    "random_shift",
    "roc_figure",
    "shared_parameter_report",
    "train_siamese",
    "two_copy_gradients",
    "verification_auc",
]

#: Digits used for training, and digits held out of training entirely.
SEEN = (0, 1, 2, 3, 4, 5, 6)
UNSEEN = (7, 8, 9)


# --------------------------------------------------------------------------- the model


def embedding_net(dim: int = 32, seed: int | None = None) -> nn.Sequential:
    """A small CNN that maps a 28x28 image to a ``dim``-dimensional embedding.

    Two 5x5 convolutions with max-pooling (8 and 16 channels), a hidden layer
    of 64 units, and a linear output (no activation: embeddings may be
    negative). 21,952 weights, drawn from ``seed`` (the course seed by default).
    """
    torch.manual_seed(config.resolve_seed(seed))
    return nn.Sequential(
        nn.Unflatten(1, (1, 28)),  # (N, 28, 28) -> (N, 1, 28, 28)
        nn.Conv2d(1, 8, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 64),
        nn.ReLU(),
        nn.Linear(64, dim),
    )


class SiameseNet(nn.Module):
    """Two branches that are one module: ``left`` and ``right`` are the same object.

    PyTorch registers the branch under both names, but ``parameters()`` yields
    each shared tensor once, so an optimiser updates it once, with the sum of
    the gradients from both inputs.
    """

    def __init__(self, branch: nn.Module):
        super().__init__()
        self.left = branch
        self.right = branch  # the same module, not a copy: this is weight sharing

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings of both inputs of each pair."""
        return self.left(x1), self.right(x2)


def shared_parameter_report(model: SiameseNet) -> dict[str, object]:
    """Evidence that the branches share their weights.

    Returns ``same_objects`` (every parameter of ``left`` *is* the one of
    ``right``), ``same_storage`` (same ``data_ptr``), ``n_tensors_left``,
    ``n_tensors_model`` (the model lists each shared tensor once),
    ``n_weights`` (scalars in one branch) and ``n_weights_model``.
    """
    left, right = list(model.left.parameters()), list(model.right.parameters())
    pairs = list(zip(left, right, strict=True)) if len(left) == len(right) else []
    return {
        "same_objects": bool(pairs) and all(a is b for a, b in pairs),
        "same_storage": bool(pairs) and all(a.data_ptr() == b.data_ptr() for a, b in pairs),
        "n_tensors_left": len(left),
        "n_tensors_model": len(list(model.parameters())),
        "n_weights": sum(p.numel() for p in left),
        "n_weights_model": sum(p.numel() for p in model.parameters()),
    }


def pair_distances(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matching rows of two embedding batches."""
    return (z1 - z2).pow(2).sum(dim=1).clamp_min(1e-12).sqrt()


def contrastive_loss(
    z1: torch.Tensor, z2: torch.Tensor, same: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Contrastive loss (Hadsell, Chopra and LeCun 2006), averaged over the pairs.

    With ``d = ||z1 - z2||`` and ``same`` = 1 for a similar pair, 0 otherwise::

        L = same * d^2 / 2 + (1 - same) * max(0, margin - d)^2 / 2

    Similar pairs are pulled together; dissimilar pairs are pushed apart until
    they are ``margin`` away, after which they cost nothing.
    """
    d = pair_distances(z1, z2)
    same = same.to(d.dtype)
    return (same * d.pow(2) + (1 - same) * F.relu(margin - d).pow(2)).mean() / 2


def two_copy_gradients(
    model: SiameseNet,
    x1: torch.Tensor,
    x2: torch.Tensor,
    same: torch.Tensor,
    margin: float = 1.0,
) -> dict[str, dict[str, torch.Tensor]]:
    """Gradients of the contrastive loss with shared weights and with two independent copies.

    ``shared``: the gradient of each parameter of ``model`` (one branch module
    used twice). ``copy_left`` / ``copy_right``: the gradients of two deep
    copies of the branch, one per input, that start from the same weights.
    ``copy_sum`` is their sum, which equals ``shared``. ``model``'s own
    gradients are left as they were.
    """
    branch = model.left
    saved = {n: None if p.grad is None else p.grad.clone() for n, p in branch.named_parameters()}
    branch.zero_grad(set_to_none=True)
    z1, z2 = model(x1, x2)
    contrastive_loss(z1, z2, same, margin).backward()
    shared = {n: p.grad.clone() for n, p in branch.named_parameters()}
    for n, p in branch.named_parameters():  # restore what the caller had
        p.grad = saved[n]

    left, right = copy.deepcopy(branch), copy.deepcopy(branch)
    for m in (left, right):
        m.zero_grad(set_to_none=True)
    contrastive_loss(left(x1), right(x2), same, margin).backward()
    grads_left = {n: p.grad.clone() for n, p in left.named_parameters()}
    grads_right = {n: p.grad.clone() for n, p in right.named_parameters()}
    return {
        "shared": shared,
        "copy_left": grads_left,
        "copy_right": grads_right,
        "copy_sum": {n: grads_left[n] + grads_right[n] for n in grads_left},
    }


# --------------------------------------------------------------------------- data and pairs


def digit_split(n_train: int | None = 12_000, seed: int | None = None) -> dict:
    """MNIST split by class: ``train`` (digits 0-6 of the training set, a random subset of at
    most ``n_train`` drawn with ``seed``), ``test_seen`` (digits 0-6 of the test set) and
    ``test_unseen`` (digits 7-9 of the test set). Each is ``(x, y)`` with ``x`` float in
    [0, 1] of shape (N, 28, 28)."""
    return _digit_split(n_train, config.resolve_seed(seed))


@lru_cache(maxsize=4)
def _digit_split(n_train: int | None, seed: int) -> dict:
    def tensors(ds, classes):
        keep = np.isin(ds.y, classes)
        x = torch.tensor(ds.x[keep] / 255.0, dtype=torch.float32)
        return x, torch.tensor(ds.y[keep])

    x_train, y_train = tensors(data.load_mnist("train"), SEEN)
    if n_train is not None and n_train < len(y_train):
        idx = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))[:n_train]
        idx = idx.sort().values
        x_train, y_train = x_train[idx], y_train[idx]
    test = data.load_mnist("test")
    return {
        "train": (x_train, y_train),
        "test_seen": tensors(test, SEEN),
        "test_unseen": tensors(test, UNSEEN),
    }


def make_pairs(
    labels, n_pairs: int, seed: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_pairs`` random index pairs ``(i, j, same)``, half of them of the same class.

    For each pair, ``i`` is drawn uniformly; ``j`` is drawn among the other
    examples of the same class (``same`` = 1) or among the examples of other
    classes (``same`` = 0), each with probability 1/2.
    """
    y = np.asarray(labels)
    if len(np.unique(y)) < 2:
        raise ValueError("make_pairs needs at least two classes")
    rng = np.random.default_rng(config.resolve_seed(seed))
    i = rng.integers(0, len(y), n_pairs)
    same = rng.random(n_pairs) < 0.5
    j = np.empty(n_pairs, dtype=np.int64)
    for c in np.unique(y):
        members, others = np.flatnonzero(y == c), np.flatnonzero(y != c)
        pos = same & (y[i] == c)
        if len(members) < 2:  # a class with one example cannot form a positive pair
            same[pos] = False
        else:
            j[pos] = rng.choice(members, pos.sum())
            clash = pos & (j == i)  # never pair an example with itself
            while clash.any():
                j[clash] = rng.choice(members, clash.sum())
                clash = pos & (j == i)
        neg = ~same & (y[i] == c)
        j[neg] = rng.choice(others, neg.sum())
    return torch.from_numpy(i), torch.from_numpy(j), torch.from_numpy(same.astype(np.float32))


# --------------------------------------------------------------------------- training and evaluation


def random_shift(x: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None):
    """Shift each image of ``x`` (N, H, W) by a random whole number of pixels in each direction.

    Offsets are drawn in ``[-max_shift, max_shift]``; the image is padded with
    zeros and cropped back to its size. MNIST digits sit in the centre with an
    empty border, so nothing of the digit is lost for small shifts.
    """
    if max_shift <= 0:
        return x
    n, h, w = x.shape
    k = max_shift
    padded = F.pad(x, (k, k, k, k))
    dx = torch.randint(0, 2 * k + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * k + 1, (n,), generator=generator)
    out = torch.empty_like(x)
    for ox in range(2 * k + 1):
        for oy in range(2 * k + 1):
            rows = torch.nonzero((dx == ox) & (dy == oy)).flatten()
            if len(rows):
                out[rows] = padded[rows, oy : oy + h, ox : ox + w]
    return out


def batch_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair ``(i, j)`` with ``i < j`` within a batch, and ``same`` (1 if same label)."""
    i, j = torch.triu_indices(len(labels), len(labels), offset=1)
    return i, j, (labels[i] == labels[j]).float()


def train_siamese(
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int = 2,
    margin: float = 1.0,
    dim: int = 32,
    lr: float = 1e-3,
    batch_size: int = 128,
    max_shift: int = 2,
    seed: int | None = None,
    progress: bool = True,
) -> tuple[SiameseNet, dict]:
    """Train a :class:`SiameseNet` with the contrastive loss on all pairs within each mini-batch.

    Each mini-batch of ``batch_size`` images goes through the shared branch
    once; the loss averages over all ``batch_size * (batch_size - 1) / 2``
    pairs among them (8,128 pairs for 128 images), which is far cheaper than
    embedding every pair separately and gives the same gradient for the same
    pairs. Every image is first shifted by up to ``max_shift`` pixels
    (:func:`random_shift`), so that the network learns strokes rather than
    exact pixel positions. Returns the model and its history: per epoch the
    mean ``loss`` and ``active_negatives`` (the share of different-digit pairs
    still inside the margin, the only ones that give a gradient), and the
    ``positive_share`` of same-digit pairs over all batches.
    """
    from tqdm.auto import tqdm

    seed = config.resolve_seed(seed)
    model = SiameseNet(embedding_net(dim, seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history: dict = {"loss": [], "active_negatives": [], "positive_share": 0.0}
    positives = pairs = 0.0
    for _ in tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, leave=False):
        order = torch.randperm(len(x), generator=generator)
        sums = np.zeros(3)  # loss, active negatives, batches
        for start in range(0, len(x) - batch_size + 1, batch_size):  # full batches only
            idx = order[start : start + batch_size]
            z = model.left(random_shift(x[idx], max_shift, generator))  # one shared branch
            i, j, same = batch_pairs(y[idx])
            loss = contrastive_loss(z[i], z[j], same, margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                inside = (pair_distances(z[i], z[j])[same == 0] < margin).float().mean()
            sums += (loss.item(), inside.item(), 1)
            positives, pairs = positives + same.sum().item(), pairs + len(same)
        history["loss"].append(sums[0] / max(sums[2], 1))
        history["active_negatives"].append(sums[1] / max(sums[2], 1))
    history["positive_share"] = positives / max(pairs, 1)
    return model, history


def output_bias_drift(
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int = 30,
    batch_size: int = 128,
    seed: int | None = None,
) -> dict:
    """How far the output bias moves in ``steps`` contrastive steps under SGD and under Adam.

    The bias of the last layer adds the same vector to every embedding, so it
    cancels in every distance: its gradient is zero up to floating-point
    rounding. Both runs start from the same weights and see the same batches
    (SGD with learning rate 0.1, Adam with 1e-3). Returns ``{"sgd", "adam"}``:
    the largest change of an output-bias entry, and ``grad``: the largest
    ``|gradient|`` any output-bias entry got, next to ``weight_grad``, the mean
    ``|gradient|`` of the output layer's weights.
    """
    seed = config.resolve_seed(seed)
    out: dict = {"grad": 0.0, "weight_grad": 0.0}
    for name, make in (
        ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
        ("adam", lambda p: torch.optim.Adam(p, lr=1e-3)),
    ):
        branch = embedding_net(seed=seed)
        start = branch[-1].bias.detach().clone()
        optimizer = make(branch.parameters())
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        for k in range(steps):
            idx = order[k * batch_size : (k + 1) * batch_size]
            z = branch(x[idx])
            i, j, same = batch_pairs(y[idx])
            optimizer.zero_grad()
            contrastive_loss(z[i], z[j], same).backward()
            optimizer.step()
            out["grad"] = max(out["grad"], branch[-1].bias.grad.abs().max().item())
            out["weight_grad"] = max(out["weight_grad"], branch[-1].weight.grad.abs().mean().item())
        out[name] = (branch[-1].bias.detach() - start).abs().max().item()
    return out


def embed(model: SiameseNet | nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Embeddings of ``x`` (one branch, evaluation mode, no gradients)."""
    branch = model.left if isinstance(model, SiameseNet) else model
    branch.eval()
    with torch.no_grad():
        out = torch.cat([branch(x[k : k + batch_size]) for k in range(0, len(x), batch_size)])
    branch.train()
    return out


def verification_auc(distances, same) -> float:
    """ROC AUC of "same class" predicted by a *small* distance (0.5 = chance, 1 = perfect)."""
    return float(roc_auc_score(np.asarray(same), -np.asarray(distances)))


def error_rates(distances, same, threshold: float) -> tuple[float, float]:
    """``(false_accept, false_reject)`` when pairs closer than ``threshold`` are called "same".

    False accept rate: the share of different-class pairs called "same"; false
    reject rate: the share of same-class pairs called "different".
    """
    d = training.to_numpy(distances)
    is_same = training.to_numpy(same).astype(bool)
    accept = d < threshold
    return float(accept[~is_same].mean()), float((~accept[is_same]).mean())


def roc_figure(threshold: float = 1.0, distances=None, same=None, title: str = "") -> Figure:
    """The ROC curve of distance-based verification, with the point of one ``threshold``.

    Left: the ROC curve (true accept rate against false accept rate over all
    thresholds) and the operating point at ``threshold``; right: the distance
    histograms with the threshold. The title gives both error rates there.
    """
    from sklearn.metrics import roc_curve

    d = training.to_numpy(distances)
    is_same = training.to_numpy(same).astype(bool)
    fpr, tpr, _ = roc_curve(is_same, -d)
    far, frr = error_rates(d, is_same, threshold)
    fig, axes = viz.figure(1, 2, size=(10.0, 4.0))
    ax = axes[0, 0]
    ax.plot(fpr, tpr, label=f"ROC (AUC {verification_auc(d, is_same):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance")
    ax.plot([far], [1 - frr], "ro", label=f"threshold {threshold:.2f}")
    ax.set(xlabel="false accept rate", ylabel="true accept rate")
    ax.legend(fontsize=8, loc="lower right")
    ax = axes[0, 1]
    bins = np.linspace(0, max(3.0, float(d.max())), 60)
    ax.hist(d[is_same], bins=bins, alpha=0.6, label="same digit")
    ax.hist(d[~is_same], bins=bins, alpha=0.6, label="different digits")
    ax.axvline(threshold, color="r", lw=1)
    ax.set_xlabel('distance ("same" when left of the red line)')
    ax.legend(fontsize=8)
    fig.suptitle(
        f"{title}threshold {threshold:.2f}: {far:.1%} of different-digit pairs accepted, "
        f"{frr:.1%} of same-digit pairs rejected",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def pca_variance_share(embeddings, k: int = 2) -> float:
    """The share of the embeddings' variance that their first ``k`` principal components keep."""
    from sklearn.decomposition import PCA

    z = training.to_numpy(embeddings)
    return float(PCA(n_components=k).fit(z).explained_variance_ratio_.sum())


def embedding_figure(embeddings, labels, title: str = "") -> Figure:
    """Scatter of embeddings coloured by digit (projected to 2-D by PCA when needed)."""
    from sklearn.decomposition import PCA

    z = training.to_numpy(embeddings)
    y = training.to_numpy(labels)
    if z.shape[1] > 2:
        z = PCA(n_components=2, random_state=0).fit_transform(z)
    fig, axes = viz.figure(size=(5.0, 4.2))
    ax = axes[0, 0]
    for c in np.unique(y):
        pts = z[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, label=str(c))
    ax.legend(title="digit", fontsize=8, markerscale=2)
    ax.set_xlabel("PC 1" if embeddings.shape[1] > 2 else "z1")
    ax.set_ylabel("PC 2" if embeddings.shape[1] > 2 else "z2")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def margin_figure(margin: float = 1.0, distances=None, same=None) -> Figure:
    """The contrastive loss against the distance for both kinds of pair, at this ``margin``.

    With ``distances`` and ``same`` (test pairs of a trained network) a second
    panel shows their histograms; the title gives the share of dissimilar
    pairs closer than the margin, the ones that still produce a loss and a
    gradient.
    """
    d = np.linspace(0.0, 3.0, 301)
    similar = d**2 / 2
    dissimilar = np.maximum(margin - d, 0.0) ** 2 / 2
    panels = 1 if distances is None else 2
    fig, axes = viz.figure(1, panels)
    ax = axes[0, 0]
    ax.plot(d, similar, label="similar pair: d²/2")
    ax.plot(d, dissimilar, label="dissimilar pair: max(0, m-d)²/2")
    ax.axvline(margin, color="k", ls="--", lw=0.8)
    ax.set_ylim(0, max(2.0, 0.55 * margin**2))
    ax.set_xlabel("distance d between the embeddings")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    title = f"margin m = {margin:.2f}"
    if distances is not None:
        dist = training.to_numpy(distances)
        is_same = training.to_numpy(same).astype(bool)
        inside = float(np.mean(dist[~is_same] < margin)) if (~is_same).any() else 0.0
        ax = axes[0, 1]
        bins = np.linspace(0, max(3.0, float(dist.max())), 60)
        ax.hist(dist[is_same], bins=bins, alpha=0.6, label="same digit")
        ax.hist(dist[~is_same], bins=bins, alpha=0.6, label="different digits")
        ax.axvline(margin, color="k", ls="--", lw=0.8)
        ax.set_xlabel("distance on test pairs")
        ax.legend(fontsize=8)
        title += f": {inside:.0%} of dissimilar test pairs lie inside the margin"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
