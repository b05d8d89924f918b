"""The course command: ``python -m course_lib COMMAND`` (installed as ``weights-course``).

* ``notebooks DEST``: copy the course's notebooks into a folder (never over a
  learner's edits unless ``--force``);
* ``data``: fetch and check every dataset, and compute the cached results, for
  an offline venue or a shared read-only folder;
* ``doctor``: what is right and what to fix in this set-up (:mod:`course_lib.doctor`);
* ``progress``: the learner's exercises as done, tried or not yet
  (:mod:`course_lib.exercise_progress`);
* ``link --hub URL --repo URL``: the nbgitpuller link that clones the course for each
  learner of a JupyterHub (:mod:`course_lib.workshop`).

A command is a function that takes the parsed arguments and returns the exit
status, registered with :func:`command` together with the function that adds
its arguments; :func:`main` builds the parser from the registry. Adding one::

    def _greet_arguments(parser):
        parser.add_argument("name")

    @command("greet", "say hello", _greet_arguments)
    def run_greet(args) -> int:
        print(f"hello {args.name}")
        return 0
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import config

__all__ = ["COMMANDS", "CommandError", "command", "copy_notebooks", "main", "notebook_sources"]


class CommandError(Exception):
    """A problem the user can fix; its message says what is wrong and what to do."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: Every command of the course command, by name, in the order they were registered.
COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register the decorated ``run(args) -> exit status`` as the command ``name``."""

    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = Command(name, help, add_arguments, run)
        return run

    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib",
        description="The course 'Weights in Machine Learning and Deep Learning': get the "
        "notebooks, fetch the data, check the set-up.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS.values():
        cmd.add_arguments(sub.add_parser(cmd.name, help=cmd.help, description=cmd.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the course command with ``argv`` (default: the command line); returns the status."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------- notebooks

#: In the destination folder: the SHA-256 of each notebook as this command wrote it, so
#: that a later copy can tell a learner's edits from an older version of the course.
MANIFEST = ".course-notebooks.json"


def notebook_sources() -> dict[str, bytes]:
    """The course's notebooks, ``{file name: content}``, from the clone or the installed package."""
    if config.REPO_ROOT is not None:
        files = {p.name: p.read_bytes() for p in (config.REPO_ROOT / "notebooks").glob("*.ipynb")}
    else:
        from importlib import resources

        folder = resources.files("course_lib").joinpath("notebooks")
        files = {
            item.name: item.read_bytes()
            for item in (folder.iterdir() if folder.is_dir() else [])
            if item.name.endswith(".ipynb")
        }
    if not files:
        raise CommandError(
            "this installation of course_lib holds no notebooks: reinstall the package "
            "(pip install --force-reinstall course-lib) or take them from the course's repository."
        )
    return dict(sorted(files.items()))


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass
class CopyReport:
    """What :func:`copy_notebooks` did with each notebook."""

    copied: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def copy_notebooks(dest: str | os.PathLike, force: bool = False) -> CopyReport:
    """Copy the notebooks into ``dest``.

    A notebook already there is replaced only when it is exactly as this command
    wrote it before (an older version of the course), or with ``force``; one the
    learner changed (edits, saved outputs) is kept and listed in ``report.kept``.
    """
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise CommandError(f"{dest} is a file: give a folder for the notebooks.")
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / MANIFEST
    try:
        written = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        written = {}
    report = CopyReport()
    for name, content in notebook_sources().items():
        target = dest / name
        if not target.exists():
            report.copied.append(name)
        elif (old := target.read_bytes()) == content:
            report.unchanged.append(name)
        elif force or written.get(name) == _sha256(old):
            report.updated.append(name)
        else:
            report.kept.append(name)
            continue
        if name not in report.unchanged:
            _write_atomic(target, content)
        written[name] = _sha256(content)
    _write_atomic(manifest_path, json.dumps(written, indent=1, sort_keys=True).encode())
    return report


def _notebooks_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", type=Path, help="folder to copy the notebooks into")
    parser.add_argument(
        "--force", action="store_true", help="also replace notebooks you changed (edits are lost)"
    )


@command("notebooks", "copy the course's notebooks into a folder", _notebooks_arguments)
def run_notebooks(args: argparse.Namespace) -> int:
    report = copy_notebooks(args.dest, force=args.force)
    dest = args.dest.expanduser().resolve()
    done = [("copied", report.copied), ("updated", report.updated)]
    for verb, names in done + [("already up to date", report.unchanged)]:
        if names:
            print(f"{verb}: {len(names)} notebook(s)")
    if report.kept:
        print(
            f"kept {len(report.kept)} notebook(s) you changed: {', '.join(report.kept)}\n"
            "  To replace them with the course's version (your changes are lost), add --force;\n"
            "  or copy into another folder."
        )
    print(f"Start JupyterLab on them: jupyter lab {dest}")
    return 1 if report.kept else 0


# --------------------------------------------------------------------------- data


def _sizes(name: str, root: Path) -> str:
    """Load (downloading what is missing) and check one dataset; say what it holds."""
    from . import data

    if name == "MR":
        from .text import load_mr

        return f"{len(load_mr(data_dir=root)):,} sentences"
    load = data.load_mnist if name == "MNIST" else data.load_cifar10
    train, test = load("train", data_dir=root), load("test", data_dir=root)
    return f"{len(train):,} training and {len(test):,} test images"


#: The datasets ``data`` fetches, in order (MR first: it is small, and the caches need it).
DATASETS = ("MR", "MNIST", "CIFAR-10")

#: (n_train, n_test) of notebook 08's ``mr_embeddings`` call in each mode: the sentence
#: vectors ``data`` computes ahead (tests/test_cli.py checks them against the notebook).
SENTENCE_CACHES = {"fast": (400, 300), "full": (None, None)}


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def warm_caches(root: Path, cache: Path, modes: list[str]) -> None:
    """Compute notebook 08's sentence vectors for ``modes`` into ``cache``."""
    from . import transfer_learning

    with _environ(COURSE_DATA_DIR=str(root), COURSE_CACHE_DIR=str(cache)):
        for mode in modes:
            n_train, n_test = SENTENCE_CACHES[mode]
            print(f"sentence vectors of notebook 08, {mode} mode:", flush=True)
            transfer_learning.mr_embeddings(n_train=n_train, n_test=n_test, progress=True)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dest",
        type=Path,
        help="dataset folder (default: COURSE_DATA_DIR, else the clone's data/, else the "
        "user's data folder)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="folder for the computed results (default: COURSE_CACHE_DIR, else the clone's "
        "data/cache/, else the user's cache folder)",
    )
    parser.add_argument(
        "--caches",
        choices=["all", "fast", "full", "none"],
        default="all",
        help="which mode's cached results to compute ahead (default: all)",
    )


@command("data", "fetch and check every dataset, compute the cached results", _data_arguments)
def run_data(args: argparse.Namespace) -> int:
    from .data import DatasetError

    root = (args.dest or config.data_dir()).expanduser().resolve()
    cache = (args.cache_dir or config.cache_dir()).expanduser().resolve()
    print(f"datasets in {root}", flush=True)
    failed = []
    for name in DATASETS:
        try:
            print(f"\u2714 {name}: {_sizes(name, root)}, read and checked", flush=True)
        except DatasetError as exc:
            print(f"\u2718 {name}: {exc}", flush=True)
            failed.append(name)
    modes = {"all": ["fast", "full"], "none": []}.get(args.caches, [args.caches])
    if modes and "MR" in failed:
        print("sentence vectors not computed: they need the MR dataset")
    elif modes:
        print(f"cached results in {cache}", flush=True)
        warm_caches(root, cache, modes)
    if failed:
        print(
            f"{len(failed)} dataset(s) missing: {', '.join(failed)}. Fix what is said above "
            "and run this command again; what was fetched is kept."
        )
        return 1
    print(f"Done. Learners who share this folder set COURSE_DATA_DIR={root}")
    return 0


# --------------------------------------------------------------------------- doctor


def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="check this dataset folder instead of the course's"
    )


@command("doctor", "check the set-up: what is right and what to fix", _doctor_arguments)
def run_doctor(args: argparse.Namespace) -> int:
    from .doctor import FAIL, render, run_checks

    checks = run_checks(args.data_dir)
    print(render(checks))
    return 1 if any(c.status == FAIL for c in checks) else 0


# --------------------------------------------------------------------------- progress


def _progress_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir", type=Path, help="read the progress kept in this cache folder"
    )


@command("progress", "show your exercises as done, tried or not yet", _progress_arguments)
def run_progress(args: argparse.Namespace) -> int:
    from . import exercise_progress

    if args.cache_dir is not None:
        os.environ["COURSE_CACHE_DIR"] = str(args.cache_dir)
    exercise_progress.show()
    return 0


# --------------------------------------------------------------------------- link


def _link_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hub", required=True, help="the hub's address, e.g. https://hub.example.org"
    )
    parser.add_argument("--repo", required=True, help="the course's git repository URL")
    parser.add_argument("--branch", default="main", help="the branch learners get (default main)")
    parser.add_argument(
        "--path", default="notebooks", help="folder or notebook to open (default notebooks)"
    )
    parser.add_argument("--app", choices=["lab", "classic"], default="lab")


@command(
    "link", "print the nbgitpuller link that gives each learner the notebooks", _link_arguments
)
def run_link(args: argparse.Namespace) -> int:
    from .workshop import nbgitpuller_link

    try:
        print(nbgitpuller_link(args.hub, args.repo, args.branch, args.path, args.app))
    except ValueError as exc:
        raise CommandError(f"{exc}. Check --hub, --repo, --branch and --path.") from exc
    return 0
