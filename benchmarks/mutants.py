"""Plant plausible bugs in each lesson's code and see whether the lesson notices.

    python benchmarks/mutants.py                 # every notebook's mutants (make mutants)
    python benchmarks/mutants.py 06 13           # only these notebooks
    python benchmarks/mutants.py --list          # what would be planted, without running
    python benchmarks/mutants.py --jobs 2        # two notebooks at once (make mutants does)

Each notebook has a list of mutants in ``benchmarks/mutants/NN_name.toml``::

    [[mutant]]
    name = "ReLU left out of the MLP"
    file = "course_lib/models.py"
    find = "layers.append(ACTIVATIONS[activation]())"
    replace = "pass"

For every mutant, a copy of the repository is made in a temporary folder, ``find`` is
replaced by ``replace`` in ``file`` (it must occur exactly once), and then, in that
copy, with an empty cache folder (so that no cached result hides the bug):

1. the notebook runs in fast mode (nbval): the mutant is *caught by a claim* when a
   ``cl.claim`` fails, or *caught by an error* when the notebook fails otherwise;
2. the notebook's unit tests run (``tests/test_<topic>.py``, and the test file of the
   mutated module when that is a shared module).

The notebook and its tests are first run without any mutant: a baseline that fails
makes that notebook's results meaningless, so its mutants are reported as not run. The table goes to
``benchmarks/mutants.md`` and into the README between ``<!-- mutants -->`` markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "benchmarks" / "mutants"
RESULTS = REPO / "benchmarks" / "mutants.md"
README = REPO / "README.md"
sys.path.insert(0, str(REPO))

from course_lib.config import TOPICS  # noqa: E402

#: What is copied into each mutant's repository: everything but these.
IGNORED = {".git", ".venv", "data", "site", "build", "node_modules", "__pycache__", ".pytest_cache"}


@dataclass
class Mutant:
    notebook: str  # "06_pruning"
    name: str
    file: str
    find: str
    replace: str
    claim: str = ""  # filled in by the run: what caught it
    by_notebook: str = ""  # "claim", "error" or "" (missed)
    by_tests: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def load_specs(numbers: list[str] | None = None) -> list[Mutant]:
    """The mutants of the notebooks ``numbers`` (all when None), checked against the code."""
    mutants = []
    for spec in sorted(SPECS.glob("[0-9][0-9]_*.toml")):
        if numbers and spec.name[:2] not in numbers:
            continue
        entries = tomllib.loads(spec.read_text(encoding="utf-8")).get("mutant", [])
        for entry in entries:
            m = Mutant(spec.stem, entry["name"], entry["file"], entry["find"], entry["replace"])
            count = (REPO / m.file).read_text(encoding="utf-8").count(m.find)
            if count != 1:
                raise SystemExit(
                    f"{spec.name}: mutant {m.name!r}: the text to replace occurs {count} times in "
                    f"{m.file} (it must occur exactly once): update the spec to today's code."
                )
            mutants.append(m)
    return mutants


def copy_repository(dest: Path) -> Path:
    """A copy of the working tree (without the environment, data, caches and git)."""
    shutil.copytree(REPO, dest, ignore=lambda d, names: [n for n in names if n in IGNORED])
    return dest


def _env(root: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        COURSE_FAST="1",
        COURSE_CACHE_DIR=str(cache),
        PYTHONPATH=str(root),  # the copy's course_lib, not the editable install's
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        MPLBACKEND="Agg",
    )
    env.pop("COURSE_SEED", None)
    return env


def _pytest(root: Path, args: list[str], env: dict, timeout: float) -> tuple[bool, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *args]
    try:
        done = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    return done.returncode == 0, done.stdout + done.stderr


def _tests_for(notebook: str, file: str) -> list[str]:
    tests = [f"tests/test_{TOPICS[notebook[:2]]}.py"]
    module = Path(file).stem
    shared = f"tests/test_{module}.py"
    if file.startswith("course_lib/") and shared not in tests and (REPO / shared).exists():
        tests.append(shared)
    return tests


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CLAIM_FAILED = re.compile(r"AssertionError: Claim not confirmed: (.+)")


def failed_claim(output: str) -> str:
    """The statement of the claim that stopped a notebook, from nbval's report ("" if none).

    The report shows the traceback twice over, in colour, with the source line that raises
    (``f"Claim not confirmed: {statement}..."``): only the exception's own line counts."""
    for line in _ANSI.sub("", output).splitlines():
        found = _CLAIM_FAILED.search(line)
        if found:
            return found.group(1).strip()
    return ""


def run_notebook_and_tests(root: Path, notebook: str, file: str, timeout: float):
    """(notebook outcome, claim, tests passed) for the repository at ``root``."""
    with tempfile.TemporaryDirectory(prefix="mutant-cache-") as cache:
        env = _env(root, Path(cache))
        nb_args = ["--nbval-lax", "--nbval-current-env", f"notebooks/{notebook}.ipynb"]
        nb_ok, nb_out = _pytest(root, nb_args, env, timeout)
        tests_ok, _ = _pytest(root, _tests_for(notebook, file), env, timeout)
    claim = "" if nb_ok else failed_claim(nb_out)
    outcome = "" if nb_ok else ("claim" if claim else "error")
    return outcome, claim, tests_ok


def run(mutants: list[Mutant], timeout: float, jobs: int = 1) -> None:
    """Plant each mutant in turn; with ``jobs`` > 1, several notebooks at once (each in its
    own copy of the repository)."""
    by_notebook: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_notebook.setdefault(m.notebook, []).append(m)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for _ in pool.map(lambda item: _run_notebook(*item, timeout), by_notebook.items()):
            pass


def _run_notebook(notebook: str, group: list[Mutant], timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="mutant-") as tmp:
        root = copy_repository(Path(tmp) / "repo")
        outcome, claim, tests_ok = run_notebook_and_tests(root, notebook, group[0].file, timeout)
        if outcome or not tests_ok:
            # Without a passing baseline nothing can be said about this notebook's mutants:
            # they are reported as not run, and the other notebooks go on.
            print(f"{notebook}: the notebook or its tests fail without any mutant "
                  f"({outcome or 'tests'}: {claim}); its mutants were not run", flush=True)  # fmt: skip
            for m in group:
                m.by_notebook = "baseline failed"
            return
        print(f"{notebook}: baseline passes; {len(group)} mutants", flush=True)
        for m in group:
            path = root / m.file
            original = path.read_text(encoding="utf-8")
            path.write_text(original.replace(m.find, m.replace, 1), encoding="utf-8")
            start = time.perf_counter()
            try:
                m.by_notebook, m.claim, tests_ok = run_notebook_and_tests(
                    root, notebook, m.file, timeout
                )
            finally:
                path.write_text(original, encoding="utf-8")
            m.by_tests = not tests_ok
            m.seconds = time.perf_counter() - start
            print(f"{notebook[:2]} {_mark(m.by_notebook == 'claim')} claims {_mark(m.by_tests)} tests  "
                  f"{m.name} ({m.seconds:.0f} s)", flush=True)  # fmt: skip


def _mark(caught: bool) -> str:
    return "\u2714" if caught else "\u2718"


def table(mutants: list[Mutant]) -> str:
    """The markdown report: per notebook, each mutant and what caught it, then kill rates."""
    lines = [
        "| notebook | planted bug | caught by the notebook's claims | caught by the unit tests |",
        "|---|---|---|---|",
    ]
    for m in mutants:
        by_nb = {"claim": f"yes: {m.claim}", "error": "an error, not a claim", "": "**no**",
                 "baseline failed": "not run: the notebook or its tests fail without the bug"}  # fmt: skip
        caught = by_nb[m.by_notebook].replace("|", "\\|")
        lines.append(
            f"| {m.notebook[:2]} | {m.name} | {caught} | {'yes' if m.by_tests else '**no**'} |"
        )
    lines += [
        "",
        "| notebook | mutants | caught by claims | caught by unit tests |",
        "|---|---|---|---|",
    ]
    for notebook in dict.fromkeys(m.notebook for m in mutants):
        group = [m for m in mutants if m.notebook == notebook]
        claims = sum(m.by_notebook == "claim" for m in group)
        tests = sum(m.by_tests for m in group)
        lines.append(f"| {notebook} | {len(group)} | {claims} | {tests} |")
    claims = sum(m.by_notebook == "claim" for m in mutants)
    tests = sum(m.by_tests for m in mutants)
    lines.append(f"| all | {len(mutants)} | {claims} | {tests} |")
    return "\n".join(lines)


def _write(report: str) -> None:
    stamp = (
        f"Measured {dt.date.today().isoformat()} on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()} (fast mode, seed 0)."
    )
    RESULTS.write_text(f"# Planted bugs (make mutants)\n\n{stamp}\n\n{report}\n", encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    start, end = "<!-- mutants -->", "<!-- /mutants -->"
    if start in readme and end in readme:
        head, rest = readme.split(start, 1)
        tail = rest.split(end, 1)[1]
        README.write_text(f"{head}{start}\n{stamp}\n\n{report}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook numbers (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    args = parser.parse_args(argv)
    mutants = load_specs(args.notebooks or None)
    if args.list:
        for m in mutants:
            print(f"{m.notebook}: {m.name} ({m.file})")
        return 0
    run(mutants, args.timeout, args.jobs)
    report = table(mutants)
    print(report)
    if not args.no_write:
        _write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
