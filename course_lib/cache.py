"""Computed artefacts cached on disk: sentence embeddings, weights the course trains once.

:func:`cached` returns ``compute()``'s value and keeps it in the cache folder
(``COURSE_CACHE_DIR``, see :mod:`course_lib.config`) under a key made of the
settings that produced it and, with ``code=``, the source code of the functions
that computed it: change the lesson's code or its settings and the value is
computed afresh. Files are written atomically (:func:`save_atomic`) and read
back with ``torch.load(weights_only=True)``, which never runs code from the
file. A cache folder that cannot be written never costs a result: the value is
returned and a warning says, once, that it could not be kept.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import config

__all__ = ["CacheWarning", "cached", "code_digest", "save_atomic"]

_ARRAY_TAG = "__course_lib.ndarray__"
_warned: set[str] = set()


class CacheWarning(UserWarning):
    """A computed result could not be written to the cache folder (it is still returned)."""


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` through a temporary file and a rename.

    A crash or error while writing leaves any previous file at ``path`` intact
    and no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def code_digest(objects: Iterable[Callable | type | Any]) -> str:
    """SHA-256 of the source code of ``objects`` (functions, classes or modules), in order."""
    digest = hashlib.sha256()
    for obj in objects:
        try:
            source = inspect.getsource(obj)
        except (OSError, TypeError) as exc:
            raise TypeError(
                f"cached(code=...) needs functions, classes or modules with source code, got "
                f"{obj!r}"
            ) from exc
        digest.update(f"{getattr(obj, '__qualname__', obj)!s}\n{source}".encode())
    return digest.hexdigest()


def _encode(value: Any, where: str = "the value") -> Any:
    """``value`` with NumPy arrays and scalars turned into tagged tensors (safe to load)."""
    if isinstance(value, np.ndarray | np.generic):  # before float: np.float64 is a float
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"cached() cannot store {where}: a NumPy array of dtype {arr.dtype}")
        tensor = torch.from_numpy(np.array(arr, order="C"))
        return {_ARRAY_TAG: tensor, "scalar": isinstance(value, np.generic)}
    if value is None or isinstance(value, torch.Tensor | bool | int | float | str):
        return value
    if type(value) in (dict, OrderedDict):
        return type(value)((k, _encode(v, f"{where}[{k!r}]")) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(_encode(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise TypeError(
        f"cached() cannot store {where}: a {type(value).__name__}. It stores tensors, NumPy "
        "arrays of numbers, numbers, strings, None, and dicts, lists and tuples of them."
    )


def _decode(value: Any) -> Any:
    if type(value) in (dict, OrderedDict):
        if _ARRAY_TAG in value:
            arr = value[_ARRAY_TAG].numpy()
            return arr[()] if value.get("scalar") else arr
        return type(value)((k, _decode(v)) for k, v in value.items())
    if type(value) in (list, tuple):
        return type(value)(_decode(v) for v in value)
    return value


def _warn_once(path: Path, exc: BaseException) -> None:
    folder = str(path.parent)
    if folder in _warned:
        return
    _warned.add(folder)
    warnings.warn(
        f"Could not write to the cache folder {folder} ({getattr(exc, 'strerror', None) or exc}): "
        "results are computed but not kept. Set COURSE_CACHE_DIR to a writable folder to keep "
        "them.",
        CacheWarning,
        stacklevel=3,
    )


def cached(
    name: str,
    compute: Callable[[], Any],
    key: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    code: Iterable[Callable | type | Any] = (),
) -> Any:
    """The result of ``compute()``, cached on disk as ``<cache folder>/<name>.pt``.

    ``key`` (a dict of plain values: sizes, seeds, model names) and the digest of
    the source of ``code`` (the functions that compute the value) are stored
    with it; a cached file whose key differs, or that cannot be read, is
    computed afresh and replaced. Values are tensors, NumPy arrays of numbers,
    NumPy and Python numbers, strings, ``None``, and dicts, lists and tuples of
    them; they come back as they went in (any other type is a ``TypeError``
    before anything is written). If the cache folder cannot be written, the
    value is returned all the same and a :class:`CacheWarning` says so once.
    """
    root = Path(cache_dir) if cache_dir is not None else config.cache_dir()
    path = root / f"{name}.pt"
    key = dict(key or {})
    code = list(code)
    if code:
        key["code"] = code_digest(code)
    try:
        stored = torch.load(path, weights_only=True)
        if isinstance(stored, dict) and stored.get("key") == key:
            return _decode(stored["value"])
    except FileNotFoundError:
        pass
    except Exception:  # unreadable, foreign or from an older version: compute it again
        pass
    value = compute()
    encoded = _encode(value)
    try:
        save_atomic({"key": key, "value": encoded}, path)
    except OSError as exc:
        _warn_once(path, exc)
    return value
