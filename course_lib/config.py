"""Run-time configuration shared by every notebook: mode, seed, device, data directory.

Every notebook starts with ``cl.setup()``. It seeds Python, NumPy and PyTorch,
chooses the device (CUDA, then Apple MPS, then CPU), reads the mode and the
data directory from the environment, and prints all of it on one line.

Environment variables
---------------------
``COURSE_FAST``
    ``1`` (or ``true``/``yes``/``on``) selects *fast mode*: the same code on
    data subsets with fewer epochs, so that every notebook runs within a minute
    on a laptop CPU. Anything else, or unset, selects *full mode*.
``COURSE_DATA_DIR``
    Where datasets live (and are downloaded to). Defaults to ``data/`` at the
    root of the course's clone when the package runs from one, and otherwise
    (installed from a wheel, in a hub image) to the user's data folder, e.g.
    ``~/.local/share/weights-course`` on Linux (see :func:`data_dir`). A
    relative path is taken relative to the current directory.
``COURSE_CACHE_DIR``
    Where computed artefacts are cached (sentence embeddings, pretrained
    weights the course trains itself). Defaults to ``data/cache/`` in a clone
    and to the user's cache folder otherwise, e.g. ``~/.cache/weights-course``.
``COURSE_DEVICE``
    Force a device (``cpu``, ``cuda``, ``mps``) instead of the automatic choice.
``COURSE_SEED``
    The seed :func:`setup` uses (default 0). Every claim of the course holds for
    seeds 0, 1 and 2; CI runs all three.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")

#: Name of the course's folders in the user's data and cache folders (outside a clone).
APP_NAME = "weights-course"


def _checkout_root() -> Path | None:
    """The clone's root when ``course_lib`` runs from one (editable install or plain
    checkout), recognised by its ``pyproject.toml`` naming this package beside
    ``notebooks/``; None when the package is installed (site-packages)."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not (pyproject.is_file() and (root / "notebooks").is_dir()):
        return None
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "course-lib"' in text else None


#: The root of the course's clone (the folder that holds ``course_lib/`` and
#: ``notebooks/``), or None when the package is installed rather than run from a clone.
REPO_ROOT: Path | None = _checkout_root()

#: Topic module of each notebook (``course_lib.<name>``), in teaching order.
TOPICS = {
    "01": "intro",
    "02": "initialization",
    "03": "gradient_descent",
    "04": "regularization",
    "05": "visualization",
    "06": "pruning",
    "07": "quantization",
    "08": "transfer_learning",
    "09": "siamese",
    "10": "feature_importance",
    "11": "gradient_flow",
    "12": "weight_normalization",
    "13": "cifar10_cnn",
    "14": "rnn",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class Config:
    """What :func:`setup` chose. ``fast`` is True in fast mode."""

    fast: bool
    seed: int
    device: torch.device
    data_dir: Path
    cache_dir: Path | None = None

    @property
    def mode(self) -> str:
        return "fast" if self.fast else "full"

    def __str__(self) -> str:
        cache = f"cache={self.cache_dir} | " if self.cache_dir is not None else ""
        return (
            f"mode={self.mode} | device={self.device} | data={self.data_dir} | {cache}"
            f"seed={self.seed} | torch {torch.__version__}"
        )


_current: Config | None = None


def is_fast() -> bool:
    """True when ``COURSE_FAST`` asks for fast mode (read at every call)."""
    value = os.environ.get("COURSE_FAST", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"COURSE_FAST={value!r} is not understood: use COURSE_FAST=1 for fast mode "
        "or leave it unset (or 0) for full mode."
    )


def pick(fast: T, full: T) -> T:
    """Return ``fast`` in fast mode and ``full`` in full mode.

    Notebooks use it for every size that differs between the modes, e.g.
    ``epochs = cl.pick(fast=2, full=20)``.
    """
    return fast if is_fast() else full


def data_dir() -> Path:
    """The data directory: ``COURSE_DATA_DIR``, else ``data/`` in the clone, else the
    user's data folder (``platformdirs.user_data_path``, never inside the Python
    installation)."""
    value = os.environ.get("COURSE_DATA_DIR", "").strip()
    if value:
        path = Path(value).expanduser()
    elif REPO_ROOT is not None:
        path = REPO_ROOT / "data"
    else:
        import platformdirs

        path = platformdirs.user_data_path(APP_NAME, appauthor=False)
    return path.resolve()


def cache_dir() -> Path:
    """The cache directory: ``COURSE_CACHE_DIR``, else ``data/cache`` in the clone, else
    the user's cache folder (``platformdirs.user_cache_path``)."""
    value = os.environ.get("COURSE_CACHE_DIR", "").strip()
    if value:
        path = Path(value).expanduser()
    elif REPO_ROOT is not None:
        path = REPO_ROOT / "data" / "cache"
    else:
        import platformdirs

        path = platformdirs.user_cache_path(APP_NAME, appauthor=False)
    return path.resolve()


def get_device(prefer: str | None = None) -> torch.device:
    """The device to compute on: CUDA if available, then Apple MPS, then the CPU.

    ``prefer`` (or, when it is not given, the ``COURSE_DEVICE`` environment
    variable) forces one of ``cpu``, ``cuda`` or ``mps``; asking for a device this
    machine does not have is an error that says how to fix it.
    """
    if prefer:
        choice, source = prefer.strip().lower(), f"device={prefer!r}"
    else:
        raw = os.environ.get("COURSE_DEVICE", "")
        choice, source = raw.strip().lower(), f"COURSE_DEVICE={raw}"
    fix = "unset COURSE_DEVICE" if source.startswith("COURSE_DEVICE") else "leave device unset"
    if choice:
        if choice not in {"cpu", "cuda", "mps"}:
            raise ValueError(f"{source} is not a device: use cpu, cuda or mps, or {fix}.")
        if choice == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"{source}, but this machine has no CUDA GPU that PyTorch can use: {fix} "
                "or use cpu."
            )
        if choice == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(
                f"{source}, but Apple's MPS backend is not available here: {fix} or use cpu."
            )
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_from_env() -> int:
    """The seed in ``COURSE_SEED`` (a non-negative integer), or 0 when it is unset."""
    raw = os.environ.get("COURSE_SEED", "").strip()
    if not raw:
        return 0
    try:
        seed = int(raw)
    except ValueError:
        seed = -1
    if seed < 0:
        raise ValueError(
            f"COURSE_SEED={raw!r} is not a seed: use a non-negative integer such as "
            "COURSE_SEED=1, or unset it for seed 0."
        )
    return seed


def resolve_seed(seed: int | None = None) -> int:
    """``seed`` itself, or, when it is None, the seed of the last :func:`setup` (``COURSE_SEED``).

    The course's experiments take ``seed=None`` by default, so that a notebook run
    under ``COURSE_SEED=2`` draws other data subsets, initial weights and batch
    orders everywhere, and every claim is checked under other random draws too.
    """
    return current().seed if seed is None else int(seed)


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int | None = None, device: str | None = None, quiet: bool = False) -> Config:
    """Seed everything, choose the device, read mode and data directory; print them.

    ``seed`` defaults to ``COURSE_SEED`` (0 when unset): every claim of the
    course holds for seeds 0, 1 and 2. Returns the :class:`Config`;
    :func:`current` returns it later.
    """
    global _current
    seed = seed_from_env() if seed is None else seed
    seed_everything(seed)
    _configure_plots()
    config = Config(
        fast=is_fast(),
        seed=seed,
        device=get_device(device),
        data_dir=data_dir(),
        cache_dir=cache_dir(),
    )
    _current = config
    if not quiet:
        print(config)
    return config


def current() -> Config:
    """The configuration of the last :func:`setup` call (runs ``setup`` if none yet)."""
    return _current if _current is not None else setup(quiet=True)


def _configure_plots() -> None:
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (6.4, 4.0),
            "figure.dpi": 90,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
