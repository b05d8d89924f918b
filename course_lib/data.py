"""Datasets of the course, read from their official on-disk formats.

* CIFAR-10, python version (Krizhevsky 2009): ``cifar-10-batches-py/``
* MNIST (LeCun et al. 1998): ``mnist/`` with the four official ``*-ubyte.gz`` files
* scikit-learn's bundled datasets (digits, diabetes, breast cancer, iris, wine)

Every loader looks in the data directory (``COURSE_DATA_DIR``, see
:mod:`course_lib.config`). A dataset that is missing there is downloaded from
its official source (MNIST falls back to well-known mirrors), checked against
its published checksum, extracted, and moved into place atomically, by one process
at a time (see :mod:`course_lib.download`). Nothing is downloaded at import
time, only when a loader is called (and never with ``download=False``). Every
problem with a file, downloaded or found, is a :class:`DatasetError` that
names the file and says what to do.
"""

from __future__ import annotations

import codecs
import gzip
import math
import os
import pickle
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .download import (
    DatasetError,
    data_root,
    dataset_lock,
    download_file,
    fetch_archive,
    fetch_missing,
    offline_hint,
    replace_hint,
    require_writable,
)

__all__ = [
    "DatasetError",
    "Dataset",
    "ensure_cifar10",
    "ensure_mnist",
    "load_cifar10",
    "load_mnist",
    "MNIST_MEAN",
    "MNIST_STD",
    "digits_tensors",
    "load_sklearn",
    "mnist_tensors",
    "standardize_columns",
    "with_bias_column",
    "read_cifar_batch",
    "read_idx",
]


@dataclass
class Dataset:
    """Inputs ``x``, integer labels ``y`` and the class names.

    ``x`` is a NumPy array (images, features) or a list of strings (sentences).
    """

    x: Any
    y: np.ndarray
    classes: list[str]
    name: str = ""
    feature_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index) -> Dataset:
        index = np.asarray(index)
        x = [self.x[i] for i in index] if isinstance(self.x, list) else self.x[index]
        return Dataset(x, self.y[index], self.classes, self.name, self.feature_names)

    def subset(self, n: int | None, seed: int = 0) -> Dataset:
        """A class-stratified random subset of ``n`` examples, in the original order.

        ``n=None`` or ``n >= len(self)`` returns the dataset itself.
        """
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"subset size must be at least 1, got {n}")
        from sklearn.model_selection import train_test_split

        index = np.arange(len(self))
        stratify = self.y if n >= len(np.unique(self.y)) else None
        keep, _ = train_test_split(index, train_size=n, random_state=seed, stratify=stratify)
        return self[np.sort(keep)]

    def vectors(self) -> np.ndarray:
        """``x`` with each example flattened to one float32 vector; uint8 pixels are scaled
        to [0, 1] (MNIST or CIFAR-10 images for a fully connected network)."""
        x = np.asarray(self.x)
        flat = x.reshape(len(x), -1)
        return (flat / 255.0 if x.dtype == np.uint8 else flat).astype(np.float32)

    def __repr__(self) -> str:
        shape = np.shape(self.x) if not isinstance(self.x, list) else (len(self.x),)
        return (
            f"Dataset({self.name!r}, n={len(self)}, x{tuple(shape)}, classes={len(self.classes)})"
        )


# --------------------------------------------------------------------------- sources

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]

MNIST_FOLDER = "mnist"
MNIST_MIRRORS = [
    "http://yann.lecun.com/exdb/mnist/",  # the official host, often unavailable
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
MNIST_FILES = {  # file name -> the well-known MD5 of the official file
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


# --------------------------------------------------------------------------- CIFAR-10


try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy < 2
    from numpy.core.multiarray import _reconstruct


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a CIFAR-10 batch needs, and refuses any other."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # as written by NumPy 1
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # as written by NumPy 2
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python 3 writes protocol-2 bytes as _codecs.encode(str, "latin1"): a pure function
        ("_codecs", "encode"): codecs.encode,
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if "refused global" in str(exc):
            raise DatasetError(
                f"{path} is not a CIFAR-10 file: it asks to load {str(exc).split()[-1]}, which "
                "the CIFAR-10 format never needs, so it was not loaded. " + replace_hint(path)
            ) from exc
        raise DatasetError(_corrupt(path, exc)) from exc
    except MemoryError as exc:  # a length or shape far beyond any CIFAR-10 file
        raise DatasetError(
            f"{path} announces more data than fits in memory: it is corrupt or not a CIFAR-10 "
            "file. " + replace_hint(path)
        ) from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DatasetError(_corrupt(path, exc)) from exc
    except (struct.error, OverflowError) as exc:
        raise DatasetError(_corrupt(path, exc)) from exc
    except OSError as exc:
        raise DatasetError(
            f"{path} cannot be read ({exc.strerror or exc}). Check its permissions."
        ) from exc
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dictionary. "
            + replace_hint(path)
        )
    return obj


def _corrupt(path: Path, exc: Exception) -> str:
    return f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}). " + replace_hint(path)


def _cifar_labels(raw: Any, n: int, path: Path) -> np.ndarray:
    """The labels of a batch as int64 in 0..9, or a :class:`DatasetError` saying what is off."""
    try:
        labels = np.asarray(raw)
    except (ValueError, TypeError):  # ragged nesting
        labels = np.asarray([None])
    problem = None
    if labels.ndim != 1 or labels.dtype.kind not in "iuf":
        problem = (
            f"'labels' should be a list of integers, got {type(raw).__name__} of {labels.dtype}"
        )
    elif labels.dtype.kind == "f" and not np.all(
        np.isfinite(labels) & (labels == np.round(labels))
    ):
        problem = "'labels' holds fractional or non-finite numbers"
    elif labels.size and (labels.min() < 0 or labels.max() > 9):
        problem = f"labels outside 0..9 (from {labels.min()} to {labels.max()})"
    elif len(labels) != n:
        problem = f"{len(labels)} labels for {n} images (one label per row expected)"
    if problem:
        raise DatasetError(f"{path}: {problem}. " + replace_hint(path), f"{path.name}: {problem}")
    return labels.astype(np.int64)


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file: images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64."""
    path = Path(path)
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(
            f"{path} has keys {sorted(map(str, batch))}, not the CIFAR-10 batch keys 'data' and "
            "'labels'. " + replace_hint(path)
        )
    data = batch["data"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3072
    ):
        raise DatasetError(
            f"{path}: 'data' should be a uint8 array of shape (N, 3072), got "
            f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}. "
            + replace_hint(path)
        )
    labels = _cifar_labels(batch["labels"], len(data), path)
    return data.reshape(-1, 3, 32, 32), labels


def _cifar_classes(folder: Path) -> list[str]:
    meta_path = folder / "batches.meta"
    names = _unpickle(meta_path).get("label_names")
    if not isinstance(names, list | tuple) or len(names) != 10:
        raise DatasetError(
            f"{meta_path} does not list the 10 CIFAR-10 class names under 'label_names' (found "
            f"{type(names).__name__}). " + replace_hint(meta_path)
        )
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _check_cifar_folder(folder: Path) -> None:
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        problem = f"{folder} is not a complete CIFAR-10 (python version) folder: missing {', '.join(missing)}"
        raise DatasetError(
            f"{problem}. It should hold data_batch_1..5, test_batch and batches.meta; delete the "
            "folder to download it again, or point COURSE_DATA_DIR elsewhere.",
            problem,
        )


def ensure_cifar10(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The ``cifar-10-batches-py`` folder, downloaded and extracted if missing."""
    root = data_root(data_dir)
    folder = fetch_missing(
        root,
        CIFAR10_FOLDER,
        "CIFAR-10",
        download,
        lambda: fetch_archive(
            CIFAR10_URL, CIFAR10_MD5, root, CIFAR10_FOLDER, _check_cifar_folder, "CIFAR-10"
        ),
    )
    _check_cifar_folder(folder)
    return folder


def load_cifar10(
    split: str = "train",
    n: int | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
) -> Dataset:
    """CIFAR-10 images ``x`` (N, 3, 32, 32) uint8, labels ``y`` and the 10 class names.

    ``split`` is ``"train"`` (the five data batches) or ``"test"``; ``n`` takes a
    class-stratified subset of that many images.
    """
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = ensure_cifar10(data_dir, download)
    classes = _cifar_classes(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [read_cifar_batch(folder / name) for name in names]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return Dataset(x, y, classes, name=f"CIFAR-10 {split}").subset(n, seed)


# --------------------------------------------------------------------------- MNIST

_IDX_DTYPES = {0x08: np.uint8}
_IDX_MAX_BYTES = 1 << 31  # the largest MNIST file holds 47 MB; anything near 2 GB is corrupt


def _idx_error(path: Path, problem: str) -> DatasetError:
    return DatasetError(f"{path} {problem}. " + replace_hint(path), f"{path.name} {problem}")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or uncompressed) as in the MNIST distribution."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if (
                len(magic) < 4
                or magic[:2] != b"\0\0"
                or magic[2] not in _IDX_DTYPES
                or magic[3] < 1
            ):
                raise _idx_error(
                    path, f"is not an IDX file of unsigned bytes (magic {magic.hex() or 'missing'})"
                )
            dims_raw = f.read(4 * magic[3])
            if len(dims_raw) < 4 * magic[3]:
                raise _idx_error(path, "is truncated inside its header")
            dims = struct.unpack(f">{magic[3]}I", dims_raw)
            expected = math.prod(dims)
            if expected > _IDX_MAX_BYTES:
                raise _idx_error(
                    path, f"announces shape {dims} ({expected:,} bytes): it is corrupt"
                )
            body = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        problem = f"cannot be read ({exc}): it is truncated or corrupt"
        raise _idx_error(path, problem) from exc
    if len(body) != expected:
        raise _idx_error(
            path,
            f"should hold {expected:,} bytes of data for shape {dims} but holds "
            f"{'more' if len(body) > expected else f'{len(body):,}'}: it is truncated or corrupt",
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _mnist_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_mnist(folder: Path) -> dict[str, str]:
    return {n: md5 for n, md5 in MNIST_FILES.items() if _mnist_file(folder, n) is None}


def ensure_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The ``mnist`` folder with the four IDX files, downloading any that is missing."""
    root = data_root(data_dir)
    folder = root / MNIST_FOLDER
    missing = _missing_mnist(folder)
    if not missing:
        return folder
    if not download:
        raise DatasetError(
            f"MNIST file {next(iter(missing))} is not in {folder}. "
            + offline_hint(MNIST_FOLDER, root)
        )
    require_writable(folder, "MNIST")
    with dataset_lock(folder, MNIST_FOLDER, "MNIST"):
        for name, md5 in _missing_mnist(
            folder
        ).items():  # again: another process may have been first
            try:
                download_file([m + name for m in MNIST_MIRRORS], folder / name, md5=md5)
            except DatasetError as exc:
                raise DatasetError(f"{exc}\n{offline_hint(MNIST_FOLDER, root)}") from exc
    return folder


def load_mnist(
    split: str = "train",
    n: int | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
) -> Dataset:
    """MNIST digits ``x`` (N, 28, 28) uint8, labels ``y`` and class names ``'0'..'9'``."""
    if split not in {"train", "test"}:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = ensure_mnist(data_dir, download)
    prefix = "train" if split == "train" else "t10k"
    images_path = _mnist_file(folder, f"{prefix}-images-idx3-ubyte.gz")
    labels_path = _mnist_file(folder, f"{prefix}-labels-idx1-ubyte.gz")
    images, labels = read_idx(images_path), read_idx(labels_path)
    fix = "Replace both with the official files (delete them to download them again)."
    if images.ndim == 1 and labels.ndim == 3:
        raise DatasetError(
            f"{images_path.name} holds labels and {labels_path.name} holds images: the two files "
            f"in {folder} are swapped. Rename them, or delete both to download them again."
        )
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(
            f"{images_path} holds shape {images.shape}, not (N, 28, 28) images. {fix}"
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(
            f"{labels_path} holds {labels.shape} labels for {len(images):,} images in "
            f"{images_path.name}: the pair does not match. {fix}"
        )
    if labels.size and labels.max() > 9:
        raise DatasetError(
            f"{labels_path} holds labels up to {labels.max()}, but MNIST digits are 0..9: it is "
            f"not an MNIST labels file. {fix}"
        )
    classes = [str(d) for d in range(10)]
    return Dataset(images, labels.astype(np.int64), classes, f"MNIST {split}").subset(n, seed)


# --------------------------------------------------------------------------- scikit-learn

_SKLEARN = {
    "digits": "load_digits",
    "diabetes": "load_diabetes",
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "wine": "load_wine",
}


def load_sklearn(name: str, standardize: bool = False, **kwargs) -> Dataset:
    """One of scikit-learn's bundled datasets (no download) as a :class:`Dataset`.

    ``x`` is float64 features; for the regression set ``diabetes`` ``y`` is the
    float target and ``classes`` is empty. ``standardize=True`` scales every
    feature to mean 0 and standard deviation 1 (constant features become 0).
    ``kwargs`` go to the scikit-learn loader (e.g. ``scaled=False`` for the raw
    diabetes features).
    """
    if name not in _SKLEARN:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(_SKLEARN)}")
    from sklearn import datasets

    bunch = getattr(datasets, _SKLEARN[name])(**kwargs)
    classes = [str(c) for c in getattr(bunch, "target_names", [])]
    y = bunch.target if not classes else bunch.target.astype(np.int64)
    features = [str(f) for f in getattr(bunch, "feature_names", [])]
    x = bunch.data.astype(np.float64)
    if standardize:
        (x,) = standardize_columns(x)
    return Dataset(x, y, classes, name, features)


# --------------------------------------------------------------------------- arrays and tensors

#: Mean and standard deviation of MNIST's 60,000 training pixels, scaled to [0, 1].
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def standardize_columns(train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every column scaled to mean 0 and std 1 with the statistics of ``train`` alone.

    Returns ``train`` scaled, followed by each of ``others`` (test or validation
    sets) scaled with the same mean and std, so that nothing of them leaks into
    the scaling. Constant columns become 0.
    """
    train = np.asarray(train, dtype=np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return tuple((np.asarray(a, dtype=np.float64) - mean) / std for a in (train, *others))


def with_bias_column(X) -> np.ndarray:
    """``[X, 1]``: the design matrix with a column of ones, whose weight is the bias."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (examples x features), got shape {X.shape}")
    return np.hstack([X, np.ones((len(X), 1))])


def mnist_tensors(
    n_train: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    standardize: bool = False,
) -> tuple[tuple, tuple]:
    """MNIST as flat tensors: ``((x_train, y_train), (x_test, y_test))``.

    Each image is a float32 vector of 784 pixels in [0, 1] (with ``standardize``,
    shifted and scaled by :data:`MNIST_MEAN` and :data:`MNIST_STD`); labels are
    int64. ``n_train`` and ``n_test`` take class-stratified subsets drawn with
    ``seed`` (``None``: all the images in the data folder; 0: none).
    """
    import torch

    def tensors(ds: Dataset) -> tuple:
        x = torch.from_numpy(ds.vectors())
        return ((x - MNIST_MEAN) / MNIST_STD if standardize else x), torch.from_numpy(ds.y)

    def split(name: str, n: int | None) -> tuple:
        if n == 0:  # not wanted: spare the reading
            return torch.zeros(0, 784), torch.zeros(0, dtype=torch.int64)
        return tensors(load_mnist(name, n=n, seed=seed))

    return split("train", n_train), split("test", n_test)


def digits_tensors(standardize: bool = True) -> tuple:
    """scikit-learn's 1,797 8x8 digits: ``(x, y)``, 64 float32 features and int64 labels.

    With ``standardize`` every pixel is scaled to mean 0 and std 1 over the 1,797
    images (the constant border pixels become 0); else pixels keep their 0..16 scale.
    """
    import torch

    digits = load_sklearn("digits", standardize=standardize)
    return torch.tensor(digits.x, dtype=torch.float32), torch.from_numpy(digits.y)
