"""The learner's progress over the course's exercises, kept on the learner's own machine.

Every :func:`course_lib.exercises.check` records its outcome (exercise id,
correct or not, when) in ``progress.json`` in the cache folder
(``COURSE_CACHE_DIR``); ``cl.progress()`` (and ``python -m course_lib progress``)
shows every exercise of the course as done, tried or not yet, per notebook.
Nothing leaves the machine.

The file is rewritten atomically under a lock, so two notebooks checking at the
same moment both count. A file that cannot be read (cut short, edited by hand)
is kept aside as ``progress.json.unreadable`` and a fresh record starts; a cache
folder that cannot be written never stops a check (a warning says so, once).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from . import config

__all__ = ["ProgressWarning", "load", "path", "record", "show", "summary"]

FILE_NAME = "progress.json"
_VERSION = 1
_warned: set[str] = set()


class ProgressWarning(UserWarning):
    """The progress file could not be read or written (the check itself still worked)."""


def path() -> Path:
    """Where the progress is kept: ``progress.json`` in the cache folder."""
    return config.cache_dir() / FILE_NAME


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, ProgressWarning, stacklevel=3)


def _valid(data: Any) -> bool:
    if not (isinstance(data, dict) and data.get("version") == _VERSION):
        return False
    exercises = data.get("exercises")
    return isinstance(exercises, dict) and all(
        isinstance(v, dict) and isinstance(v.get("tries"), int) and isinstance(v.get("done"), bool)
        for v in exercises.values()
    )


def load(file: Path | None = None) -> dict[str, dict]:
    """The recorded exercises: ``{id: {"tries", "done", "first_done", "last", "last_status"}}``.

    A missing file is an empty record; an unreadable one is moved aside (see the
    module's docstring) and counts as empty.
    """
    file = path() if file is None else file
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if _valid(data):
        return data["exercises"]
    aside = file.with_name(file.name + ".unreadable")
    with contextlib.suppress(OSError):
        os.replace(file, aside)
    _warn_once(
        f"unreadable:{file}",
        f"Your progress file {file} could not be read; it was kept as {aside.name} and a new "
        "record starts now.",
    )
    return {}


def _write(file: Path, exercises: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"version": _VERSION, "exercises": exercises}, out, indent=1, sort_keys=True)
        os.replace(tmp, file)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def record(result, when: dt.datetime | None = None) -> None:
    """Add the outcome of one check (a :class:`course_lib.exercises.Result`) to the record."""
    if result.status in {"error", "unfinished"}:  # a checker bug, or a stub not yet touched
        return
    from filelock import FileLock

    file = path()
    stamp = (when or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(file.with_name(f".{file.name}.lock")):
            exercises = load(file)
            entry = exercises.setdefault(result.id, {"tries": 0, "done": False})
            entry["tries"] += 1
            entry["last"], entry["last_status"] = stamp, result.status
            if result.passed and not entry["done"]:
                entry["done"], entry["first_done"] = True, stamp
            _write(file, exercises)
    except OSError as exc:
        _warn_once(
            f"write:{file.parent}",
            f"Could not save your progress in {file.parent} ({exc.strerror or exc}); your "
            "answers are still checked. Set COURSE_CACHE_DIR to a writable folder to keep it.",
        )


def summary() -> list[dict]:
    """One row per exercise of the course, in order: id, notebook, title and state.

    ``state`` is ``"done"`` (correct at least once), ``"tried"`` or ``"not yet"``.
    """
    from . import exercises as ex

    recorded = load()
    rows = []
    for id in ex.all_ids():
        if id.split(".")[0] not in config.TOPICS:
            continue
        entry = recorded.get(id, {})
        state = "done" if entry.get("done") else "tried" if entry.get("tries") else "not yet"
        rows.append(
            {"id": id, "notebook": id.split(".")[0], "title": ex.get(id).title, "state": state,
             "tries": entry.get("tries", 0)}
        )  # fmt: skip
    return rows


_MARK = {"done": "\u2714", "tried": "\u270e", "not yet": "\u00b7"}


def show() -> None:
    """Print the course's exercises as done / tried / not yet, per notebook."""
    rows = summary()
    done = sum(r["state"] == "done" for r in rows)
    lines = [f"Exercises done: {done} of {len(rows)}   (\u2714 done, \u270e tried, \u00b7 not yet)"]
    for notebook in dict.fromkeys(r["notebook"] for r in rows):
        mine = [r for r in rows if r["notebook"] == notebook]
        n_done = sum(r["state"] == "done" for r in mine)
        lines.append(f"  {notebook} {config.TOPICS[notebook]:<22} {n_done}/{len(mine)}")
        for r in mine:
            tries = f" ({r['tries']} tries)" if r["tries"] > 1 else ""
            lines.append(f"      {_MARK[r['state']]} {r['id']} {r['title']}{tries}")
    lines.append(f"Kept on this machine only, in {path()}.")
    print("\n".join(lines))
