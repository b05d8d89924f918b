"""Companion package of the course "Weights in Machine Learning and Deep Learning".

Notebooks start with::

    import course_lib as cl
    cfg = cl.setup()

Shared parts: :mod:`~course_lib.config` (mode, seed, device, data directory),
:mod:`~course_lib.data` (datasets), :mod:`~course_lib.download` (fetching them
safely), :mod:`~course_lib.cache` (computed artefacts kept on disk),
:mod:`~course_lib.training` (train and evaluate loops), :mod:`~course_lib.models`
(networks several notebooks use), :mod:`~course_lib.vision` (the CIFAR-10 pipeline),
:mod:`~course_lib.text` (the MR sentences as tensors), :mod:`~course_lib.viz`
(plots), :mod:`~course_lib.widgets` (slider demos), :mod:`~course_lib.exercises`
(exercise checkers; ``cl.progress()`` shows the learner's progress, see
:mod:`~course_lib.exercise_progress`) and :func:`~course_lib.claims.claim`
(claim checks). Each
notebook has its own topic module (``cl.intro``, ``cl.initialization``, ...),
imported on first use.
"""

from importlib import import_module

from . import (
    cache,
    claims,
    config,
    data,
    download,
    exercise_progress,
    exercises,
    models,
    text,
    training,
    vision,
    viz,
    widgets,
)
from .claims import claim
from .config import TOPICS, current, is_fast, pick, setup
from .doctor import doctor
from .exercise_progress import show as progress

__version__ = "0.1.0"

__all__ = [
    "TOPICS",
    "cache",
    "claim",
    "claims",
    "config",
    "current",
    "data",
    "doctor",
    "download",
    "exercise_progress",
    "exercises",
    "is_fast",
    "models",
    "pick",
    "progress",
    "setup",
    "text",
    "training",
    "vision",
    "viz",
    "widgets",
    *TOPICS.values(),
]


def __getattr__(name: str):
    """Import a topic module (``cl.pruning``, ...) the first time it is used."""
    if name in TOPICS.values():
        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
