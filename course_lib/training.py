"""Train and evaluate loops shared by the notebooks.

The loop is small on purpose, so that a learner can read it in one go::

    history = cl.training.fit(model, train, epochs=5, lr=1e-3, val=test)

``train`` and ``val`` are ``(X, y)`` tensors/arrays or a ``DataLoader``.
``history`` holds per-epoch ``loss``, ``accuracy`` (classification), and the
same for ``val_``; callbacks (for example :class:`WeightSnapshots`) run after
every epoch.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from . import config

__all__ = [
    "History",
    "WeightSnapshots",
    "accuracy",
    "clone",
    "evaluate",
    "fit",
    "make_loader",
    "num_threads",
    "predict",
    "to_numpy",
    "to_tensor",
    "train_epoch",
]


def to_tensor(x, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor from an array, list or tensor (float32 for floats, int64 for integers)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        arr = np.asarray(x)
        if np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float32)
        elif np.issubdtype(arr.dtype, np.integer) and arr.dtype != np.uint8:
            arr = arr.astype(np.int64)
        if not arr.flags.writeable:  # torch.from_numpy warns on read-only arrays
            arr = arr.copy()
        t = torch.from_numpy(np.ascontiguousarray(arr))
    return t.to(dtype) if dtype is not None else t


def to_numpy(x) -> np.ndarray:
    """A NumPy array from an array, list or tensor (on any device, with or without grad)."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, then restore the previous setting.

    ``None`` keeps the current setting. Small models on small batches run
    fastest on one thread, and timings are only comparable at a fixed count.
    """
    previous = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise ValueError(f"the number of threads must be at least 1, got {n}")
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def make_loader(x, y, batch_size: int = 128, shuffle: bool = True, seed: int = 0) -> DataLoader:
    """A ``DataLoader`` over ``(x, y)`` that takes each batch with one indexing operation.

    PyTorch's default loader fetches a batch example by example and stacks them;
    here the sampler yields whole lists of indices and the ``TensorDataset`` is
    indexed with them at once, which is several times faster for data held in
    memory. Shuffling is reproducible from ``seed``.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)}: they must match.")
    dataset = TensorDataset(to_tensor(x), to_tensor(y))
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, sampler=batches, batch_size=None)


def _as_loader(data, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Sequence) and len(data) == 2:
        return make_loader(data[0], data[1], batch_size, shuffle, seed)
    raise TypeError("data must be a DataLoader or an (x, y) pair of arrays or tensors.")


@dataclass
class History:
    """Per-epoch metrics of a :func:`fit` run (lists, one entry per epoch)."""

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, list[float]]:
        return {k: v for k, v in vars(self).items() if isinstance(v, list) and v}

    @property
    def epochs(self) -> int:
        return len(self.loss)


class WeightSnapshots:
    """Callback that keeps a copy of every parameter after each epoch (and before training).

    ``snapshots[i]`` maps parameter names to CPU tensors; index 0 is the
    initial state when the callback is passed to :func:`fit`.
    """

    def __init__(self, names: Iterable[str] | None = None):
        self.names = set(names) if names is not None else None
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def capture(self, model: nn.Module) -> None:
        self.snapshots.append(
            {
                name: p.detach().cpu().clone()
                for name, p in model.named_parameters()
                if self.names is None or name in self.names
            }
        )

    def __call__(self, epoch: int, model: nn.Module, history: History) -> None:
        self.capture(model)


def _is_classification(loss_fn) -> bool:
    return isinstance(loss_fn, nn.CrossEntropyLoss | nn.NLLLoss)


def evaluate(
    model: nn.Module,
    data,
    loss_fn: Callable | None = None,
    batch_size: int = 512,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Mean loss (and accuracy for classification) of ``model`` on ``data``."""
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    device = torch.device(device) if device is not None else _model_device(model)
    loader = _as_loader(data, batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    total, loss_sum, correct = 0, 0.0, 0
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss_sum += loss_fn(out, yb).item() * len(yb)
            if _is_classification(loss_fn):
                correct += (out.argmax(1) == yb).sum().item()
            total += len(yb)
    model.train(was_training)
    if total == 0:
        raise ValueError("evaluate() got no data.")
    result = {"loss": loss_sum / total}
    if _is_classification(loss_fn):
        result["accuracy"] = correct / total
    return result


def accuracy(model: nn.Module, data, batch_size: int = 512) -> float:
    """Share of ``data`` (an ``(x, y)`` pair or a ``DataLoader``) that ``model`` classifies right."""
    return evaluate(model, data, batch_size=batch_size)["accuracy"]


def predict(model: nn.Module, x, batch_size: int = 512) -> torch.Tensor:
    """Model outputs for ``x`` in evaluation mode, without gradients, on the CPU."""
    device = _model_device(model)
    x = to_tensor(x)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat(
            [model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        )
    model.train(was_training)
    return out


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def fit(
    model: nn.Module,
    train,
    epochs: int = 1,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: Callable | None = None,
    val=None,
    batch_size: int = 128,
    callbacks: Sequence[Callable] = (),
    device: torch.device | str | None = None,
    grad_clip: float | None = None,
    transform: Callable | None = None,
    scheduler=None,
    progress: bool = True,
    seed: int = 0,
    time_limit: float | None = None,
) -> History:
    """Train ``model`` and return its :class:`History`.

    ``optimizer`` defaults to Adam with learning rate ``lr``; ``loss_fn`` to
    cross-entropy. ``transform`` (e.g. augmentation) is applied to each
    training batch of inputs. ``grad_clip`` clips the global gradient norm.
    ``scheduler`` (if given) is stepped once per epoch. Each callback is called
    as ``callback(epoch, model, history)`` after every epoch; a callback with a
    ``capture(model)`` method (like :class:`WeightSnapshots`) also records the
    state before training. ``time_limit`` (seconds) ends training after the
    first epoch that finishes past it, for comparisons at equal time budgets;
    ``history.epochs`` then says how many epochs ran.
    """
    from tqdm.auto import tqdm

    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    device = torch.device(device) if device is not None else config.current().device
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    optimizer = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=lr)
    loader = _as_loader(train, batch_size, shuffle=True, seed=seed)
    history = History()
    for cb in callbacks:
        if hasattr(cb, "capture"):
            cb.capture(model)
    start = time.perf_counter()
    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        loss, acc = train_epoch(model, loader, optimizer, loss_fn, device, transform, grad_clip)
        if scheduler is not None:
            scheduler.step()
        bar.set_postfix(_record_epoch(history, loss, acc, model, val, loss_fn, device))
        for cb in callbacks:
            cb(epoch, model, history)
        if time_limit is not None and time.perf_counter() - start >= time_limit:
            break
    history.seconds = time.perf_counter() - start
    return history


def _record_epoch(history: History, loss, acc, model, val, loss_fn, device) -> dict[str, str]:
    """Append one epoch's metrics (and the validation ones) to ``history``; the progress text."""
    history.loss.append(loss)
    if acc is not None:
        history.accuracy.append(acc)
    postfix = {"loss": f"{loss:.4f}"}
    if val is not None:
        metrics = evaluate(model, val, loss_fn, device=device)
        history.val_loss.append(metrics["loss"])
        if "accuracy" in metrics:
            history.val_accuracy.append(metrics["accuracy"])
            postfix["val_acc"] = f"{metrics['accuracy']:.3f}"
    return postfix


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable,
    device: torch.device,
    transform: Callable | None = None,
    grad_clip: float | None = None,
) -> tuple[float, float | None]:
    """One pass over ``loader``: the mean training loss and, for classification, accuracy.

    Each batch: ``transform`` (if any) on the inputs, forward, backward, clipping of
    the global gradient norm to ``grad_clip`` (if given), one optimiser step.
    """
    model.train()
    total, loss_sum, correct = 0, 0.0, 0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        if transform is not None:
            xb = transform(xb)
        optimizer.zero_grad()
        out = model(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        loss_sum += loss.item() * len(yb)
        total += len(yb)
        if _is_classification(loss_fn):
            correct += (out.argmax(1) == yb).sum().item()
    if total == 0:
        raise ValueError("fit() got no training data.")
    return loss_sum / total, (correct / total if _is_classification(loss_fn) else None)


def clone(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (same architecture and weights, independent parameters)."""
    return copy.deepcopy(model)
