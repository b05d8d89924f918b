"""Datasets of the course, read from their official on-disk formats.

* CIFAR-10, python version (Krizhevsky 2009): ``cifar-10-batches-py/``
* MNIST (LeCun et al. 1998): ``mnist/`` with the four official ``*-ubyte.gz`` files
* MR sentence polarity v1.0 (Pang and Lee 2005): ``rt-polaritydata/``
* scikit-learn's bundled datasets (digits, diabetes, breast cancer, iris, wine)

Every loader looks in the data directory (``COURSE_DATA_DIR``, see
:mod:`course_lib.config`). A dataset that is missing there is downloaded from
its official source (MNIST falls back to well-known mirrors), checked against
its published checksum (MR has none: its structure and line counts are
checked instead), extracted, and moved into place atomically: a download or
extraction that fails leaves nothing half-written behind. Nothing is
downloaded at import time, only when a loader is called (and never with
``download=False``).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import config

__all__ = [
    "DatasetError",
    "Dataset",
    "cached",
    "download_file",
    "md5sum",
    "ensure_cifar10",
    "ensure_mnist",
    "ensure_mr",
    "load_cifar10",
    "load_mnist",
    "load_mr",
    "load_sklearn",
    "read_cifar_batch",
    "read_idx",
    "read_mr_file",
    "save_atomic",
]


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt, truncated or cannot be downloaded.

    The message always names the file and says what to do.
    """


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

MR_URL = "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz"
MR_FOLDER = "rt-polaritydata"
MR_FILES = {"rt-polarity.neg": 0, "rt-polarity.pos": 1}  # file -> label
MR_LINES = 5331  # sentences per file in v1.0 (no checksum is published)


def _resolve(data_dir: str | os.PathLike | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir is not None else config.data_dir()


def _offline_hint(folder: str, data_dir: Path) -> str:
    return (
        f"If this machine has no internet access, copy the dataset folder '{folder}' "
        f"(official layout) into {data_dir}, or set COURSE_DATA_DIR to a folder that holds it."
    )


# --------------------------------------------------------------------------- download


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file (read in chunks)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    md5: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download the first of ``urls`` that works to ``dest``, atomically.

    The bytes go to a temporary file beside ``dest``; only a complete file
    (as long as the server announced, and matching ``md5`` when given) is
    renamed to ``dest``. On failure the temporary file is removed and a
    :class:`DatasetError` lists what went wrong with each URL.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    urls = [urls] if isinstance(urls, str) else list(urls)
    failures = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length")
                total = int(total) if total and total.isdigit() else None
                received = 0
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress
                ) as bar:
                    while block := resp.read(1 << 16):
                        out.write(block)
                        received += len(block)
                        bar.update(len(block))
            if total is not None and received != total:
                raise DatasetError(f"truncated download: got {received:,} of {total:,} bytes")
            if md5 is not None:
                got = md5sum(tmp)
                if got != md5:
                    raise DatasetError(f"checksum mismatch: MD5 {got}, expected {md5}")
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, DatasetError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            failures.append(f"  {url}: {reason}")
        finally:
            if tmp.exists():
                tmp.unlink()
    raise DatasetError(
        f"Could not download {dest.name}:\n" + "\n".join(failures) + "\n"
        "Check your internet connection and run the cell again. Nothing was written."
    )


def _extract_tar(archive: Path, data_dir: Path, folder: str, check) -> Path:
    """Extract ``archive`` into a temporary folder, ``check`` it, then move ``folder`` into place."""
    target = data_dir / folder
    tmp_dir = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{folder}.", suffix=".extract"))
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(tmp_dir, filter="data")
                else:  # Python < 3.10.12: refuse absolute or escaping member names ourselves
                    for member in tar.getmembers():
                        if member.name.startswith("/") or ".." in Path(member.name).parts:
                            raise DatasetError(f"{archive}: unsafe member name {member.name!r}")
                    tar.extractall(tmp_dir)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise DatasetError(
                f"{archive} is truncated or corrupt ({exc}). Delete it and run again to download "
                "a fresh copy."
            ) from exc
        extracted = tmp_dir / folder
        if not extracted.is_dir():
            raise DatasetError(
                f"{archive} does not contain the folder '{folder}/': it is not the expected "
                "archive. Delete it and run again."
            )
        check(extracted)
        os.replace(extracted, target)
        return target
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _fetch_archive(url: str, md5: str | None, data_dir: Path, folder: str, check) -> Path:
    archive = data_dir / url.rsplit("/", 1)[-1]
    if archive.exists():
        if md5 is not None and md5sum(archive) != md5:
            raise DatasetError(
                f"{archive} does not match the published MD5 {md5}: it is incomplete or a "
                "different file. Delete it and run again to download it afresh."
            )
    else:
        try:
            download_file(url, archive, md5=md5)
        except DatasetError as exc:
            raise DatasetError(f"{exc}\n{_offline_hint(folder, data_dir)}") from exc
    target = _extract_tar(archive, data_dir, folder, check)
    archive.unlink()
    return target


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
                "the CIFAR-10 format never needs, so it was not loaded. Replace the folder with "
                "the official cifar-10-batches-py (delete it to download it again)."
            ) from exc
        raise DatasetError(_corrupt(path, exc)) from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, struct.error) as exc:
        raise DatasetError(_corrupt(path, exc)) from exc
    if not isinstance(obj, dict):
        raise DatasetError(
            f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch dictionary. "
            "Replace it with the official file (delete the folder to download it again)."
        )
    return obj


def _corrupt(path: Path, exc: Exception) -> str:
    return (
        f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}). Delete the folder "
        f"'{path.parent.name}' and run again to download it afresh (or restore the file)."
    )


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch file: images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64."""
    path = Path(path)
    batch = _unpickle(path)
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(
            f"{path} has keys {sorted(map(str, batch))}, not the CIFAR-10 batch keys 'data' and "
            "'labels'. Replace it with the official file."
        )
    data, labels = batch["data"], np.asarray(batch["labels"], dtype=np.int64)
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3072
        and len(data) == len(labels)
    ):
        raise DatasetError(
            f"{path}: 'data' should be a uint8 array of shape (N, 3072) with one label per row, "
            f"got {getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')} and "
            f"{len(labels)} labels. Replace it with the official file."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{path}: labels outside 0..9. Replace it with the official file.")
    return data.reshape(-1, 3, 32, 32), labels


def _check_cifar_folder(folder: Path) -> None:
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(
            f"{folder} is not a complete CIFAR-10 (python version) folder: missing "
            f"{', '.join(missing)}. It should hold data_batch_1..5, test_batch and batches.meta; "
            "delete the folder to download it again, or point COURSE_DATA_DIR elsewhere."
        )


def ensure_cifar10(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The ``cifar-10-batches-py`` folder, downloaded and extracted if missing."""
    root = _resolve(data_dir)
    folder = root / CIFAR10_FOLDER
    if not folder.exists():
        if not download:
            raise DatasetError(f"CIFAR-10 is not in {root}. {_offline_hint(CIFAR10_FOLDER, root)}")
        root.mkdir(parents=True, exist_ok=True)
        _fetch_archive(CIFAR10_URL, CIFAR10_MD5, root, CIFAR10_FOLDER, _check_cifar_folder)
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
    meta = _unpickle(folder / "batches.meta")
    classes = [str(c) for c in meta.get("label_names", [])]
    if len(classes) != 10:
        raise DatasetError(f"{folder / 'batches.meta'} does not list the 10 CIFAR-10 class names.")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [read_cifar_batch(folder / name) for name in names]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return Dataset(x, y, classes, name=f"CIFAR-10 {split}").subset(n, seed)


# --------------------------------------------------------------------------- MNIST

_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or uncompressed) as in the MNIST distribution."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path} cannot be read as a gzip file ({exc}): it is truncated or corrupt. Delete "
            "it and run again to download it afresh."
        ) from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] < 1:
        raise DatasetError(
            f"{path} is not an IDX file of unsigned bytes (magic {raw[:4].hex() or 'missing'}). "
            "Replace it with the official MNIST file."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path} is truncated inside its header. Delete it and run again.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path} should hold {expected:,} bytes of data for shape {dims} but holds "
            f"{len(raw) - header:,}: it is truncated or corrupt. Delete it and run again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _mnist_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def ensure_mnist(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The ``mnist`` folder with the four IDX files, downloading any that is missing."""
    root = _resolve(data_dir)
    folder = root / MNIST_FOLDER
    for name, md5 in MNIST_FILES.items():
        if _mnist_file(folder, name) is not None:
            continue
        if not download:
            raise DatasetError(
                f"MNIST file {name} is not in {folder}. {_offline_hint(MNIST_FOLDER, root)}"
            )
        try:
            download_file([m + name for m in MNIST_MIRRORS], folder / name, md5=md5)
        except DatasetError as exc:
            raise DatasetError(f"{exc}\n{_offline_hint(MNIST_FOLDER, root)}") from exc
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
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_path} holds shape {images.shape}, not (N, 28, 28) images.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(
            f"{labels_path} holds {labels.shape} labels for {len(images):,} images in "
            f"{images_path.name}: the pair does not match. Replace both with the official files."
        )
    classes = [str(d) for d in range(10)]
    return Dataset(images, labels.astype(np.int64), classes, f"MNIST {split}").subset(n, seed)


# --------------------------------------------------------------------------- MR


def _mr_encoding(raw: bytes) -> str:
    """``"utf-8"`` when ``raw`` is valid UTF-8, else ``"cp1252"`` (the official archive's)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _latin1_fallback(error: UnicodeDecodeError):
    # the five bytes Windows-1252 leaves undefined are read as Latin-1: no byte is lost
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("course_lib.latin1", _latin1_fallback)


def read_mr_file(path: str | os.PathLike, expected_lines: int | None = MR_LINES) -> list[str]:
    """Sentences of one MR file, one per line, as in the official archive or a UTF-8 copy.

    The official ``rt-polaritydata.tar.gz`` holds Windows-1252 text with DOS line
    endings; its ellipsis is byte 0x85, which a Latin-1 decoder would turn into the
    line break U+0085. So the file is read as bytes and split on the line-feed byte
    only; each line loses its carriage return and is decoded as UTF-8 when the whole
    file is valid UTF-8 (a byte-order mark is dropped), else as Windows-1252. Blank
    lines are skipped.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"{path} cannot be read ({exc.strerror or exc}). Check its permissions, or delete "
            "the folder and run again to download it."
        ) from exc
    if b"\x00" in raw:
        raise DatasetError(f"{path} contains NUL bytes: it is not a text file. Replace it.")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    encoding = _mr_encoding(raw)
    lines = [
        line.rstrip(b"\r").decode(encoding, errors="course_lib.latin1").strip()
        for line in raw.split(b"\n")
    ]
    lines = [line for line in lines if line]
    if expected_lines is not None and len(lines) != expected_lines:
        raise DatasetError(
            f"{path} has {len(lines):,} sentences, but MR v1.0 has {expected_lines:,} per file: "
            "it is truncated or a different file. Delete the folder and run again to download it."
        )
    return lines


def _check_mr_folder(folder: Path) -> None:
    missing = [name for name in MR_FILES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(
            f"{folder} is not the MR sentence-polarity folder: missing {', '.join(missing)}. "
            "It should hold rt-polarity.pos and rt-polarity.neg; delete it to download again."
        )
    for name in MR_FILES:
        read_mr_file(folder / name)


def ensure_mr(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The ``rt-polaritydata`` folder, downloaded and extracted if missing."""
    root = _resolve(data_dir)
    folder = root / MR_FOLDER
    if not folder.exists():
        if not download:
            raise DatasetError(f"MR is not in {root}. {_offline_hint(MR_FOLDER, root)}")
        root.mkdir(parents=True, exist_ok=True)
        _fetch_archive(MR_URL, None, root, MR_FOLDER, _check_mr_folder)
    return folder


def load_mr(
    n: int | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
) -> Dataset:
    """MR sentences ``x`` (a list of str), labels ``y`` (0 negative, 1 positive)."""
    folder = ensure_mr(data_dir, download)
    _check_mr_folder(folder)
    texts: list[str] = []
    labels: list[int] = []
    for name, label in MR_FILES.items():
        lines = read_mr_file(folder / name)
        texts += lines
        labels += [label] * len(lines)
    y = np.asarray(labels, dtype=np.int64)
    return Dataset(texts, y, ["negative", "positive"], "MR sentence polarity").subset(n, seed)


# --------------------------------------------------------------------------- cache


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and a rename.

    A crash or error while writing leaves any previous file at ``path`` intact
    and no partial file behind.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def cached(name: str, compute, key: dict | None = None, cache_dir: str | os.PathLike | None = None):
    """The result of ``compute()``, cached on disk under ``name`` in the cache directory.

    ``key`` (a dict of plain values: sizes, seeds, model names) is stored with
    the result; a cached file whose key differs, or that cannot be read, is
    recomputed and replaced (atomically, see :func:`save_atomic`). Results are
    tensors, arrays, dicts or lists of them (anything ``torch.save`` writes
    and ``torch.load(weights_only=True)`` reads back).
    """
    import torch

    root = Path(cache_dir) if cache_dir is not None else config.cache_dir()
    path = root / f"{name}.pt"
    key = dict(key or {})
    if path.exists():
        try:
            stored = torch.load(path, weights_only=True)
            if isinstance(stored, dict) and stored.get("key") == key:
                return stored["value"]
        except Exception:  # unreadable or foreign: recompute below
            pass
    value = compute()
    save_atomic({"key": key, "value": value}, path)
    return value


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
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    return Dataset(x, y, classes, name, features)
