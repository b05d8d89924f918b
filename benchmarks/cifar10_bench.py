"""The CIFAR-10 benchmark of ``make bench``: the course's recipe against the tutorial's CNN.

:func:`benchmark` trains :class:`course_lib.vision.SmallResNet` with the course's
recipe on the CIFAR-10 images in the data folder and times it; with ``baseline`` it
also trains the PyTorch tutorial's CNN for the same time
(:func:`course_lib.cifar10_cnn.tutorial_baseline`).
"""

from __future__ import annotations

import torch

from course_lib import data, training
from course_lib.cifar10_cnn import tutorial_baseline
from course_lib.vision import RECIPE, SmallResNet, accuracy, channel_stats, train


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
    """Train :class:`~course_lib.vision.SmallResNet` with the course recipe on CIFAR-10 and time it.

    Trains on the whole training set in the data directory (or ``n_train``
    images) with ``threads`` CPU threads (``None`` keeps PyTorch's setting),
    then measures the test accuracy with and without test-time flips.
    Returns a dict: ``accuracy``, ``accuracy_no_tta``, ``train_seconds``
    (wall clock of training alone), ``cpu_seconds`` (CPU time of this
    process during training, all threads), ``images_per_second``, ``epochs``,
    ``n_train``, ``n_test``, ``threads``, ``params`` and, with
    ``per_epoch=True``, ``val_accuracy`` per epoch (evaluating every epoch
    adds its time to ``train_seconds``). With ``baseline=True`` it also
    trains :class:`~course_lib.cifar10_cnn.TutorialNet` with the tutorial's recipe on the same data,
    by default for the same time budget (epochs until its training time
    reaches ``train_seconds``; ``baseline_epochs`` fixes the number of
    epochs instead), and adds ``baseline_accuracy`` (its best epoch),
    ``baseline_epochs`` (epochs run) and ``baseline_seconds``.
    """
    with training.num_threads(threads):
        train_set = data.load_cifar10("train", n=n_train, data_dir=data_dir, seed=seed)
        test_set = data.load_cifar10("test", data_dir=data_dir)
        result = _course_cnn(train_set, test_set, epochs, width, per_epoch, progress, seed)
        if baseline:
            _, history = tutorial_baseline(
                train_set,
                test_set,
                epochs=baseline_epochs or 1000,
                seed=seed,
                progress=progress,
                time_limit=None if baseline_epochs else result["train_seconds"],
            )
            result["baseline_accuracy"] = max(history.val_accuracy)
            result["baseline_epochs"] = history.epochs
            result["baseline_seconds"] = history.seconds
        return result


def _course_cnn(train_set, test_set, epochs, width, per_epoch, progress, seed) -> dict:
    """Train and time the course's CNN; its accuracies and timings."""
    mean, std = channel_stats(train_set.x)
    torch.manual_seed(seed)
    model = SmallResNet(width, mean, std)
    val = test_set if per_epoch else None
    run = train(model, train_set, epochs=epochs, val=val, progress=progress, seed=seed)
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
    return result
