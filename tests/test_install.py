"""The course as a learner outside a clone installs it (make install-test, marker ``install``).

The wheel is built from a copy of the sources, installed (not editable) into a fresh
virtual environment with the lock as constraints, and used from a temporary folder
outside the repository: the course command copies the notebooks, notebooks 01 and 14
run there in fast mode (nbval), ``doctor`` reports a working set-up, and nothing was
written under the environment's site-packages but Python's own bytecode cache (data
and cache went to the user's folders).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "course_lib" / "lock.txt"


def _run(args, env=None, cwd=None, timeout=900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``folder``, except the bytecode
    Python itself caches in ``__pycache__`` (the install skips compiling: it halves its time)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _build_wheel(work: Path) -> Path:
    """The wheel, built from a copy of the package's sources (the clone stays untouched)."""
    src = work / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(REPO / "course_lib", src / "course_lib", ignore=ignore)
    shutil.copytree(REPO / "notebooks", src / "notebooks", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", dist, src])  # fmt: skip
    (wheel,) = dist.glob("course_lib-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh environment with the wheel and the lock's versions, and an environment for
    running it as a learner would (user folders in a temporary home, no COURSE_* paths)."""
    work = tmp_path_factory.mktemp("install")
    started = time.perf_counter()
    wheel = _build_wheel(work)
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", "--no-compile", "-c", LOCK, wheel,
          "pytest", "nbval"])  # fmt: skip
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
        ).stdout.strip()
    )
    print(
        f"\nwheel built and installed with its dependencies in {time.perf_counter() - started:.0f} s"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COURSE_", "PYTHON", "XDG_"))}
    home = work / "home"
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "share"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"),
        MPLCONFIGDIR=str(home / "mpl"),
        COURSE_FAST="1",
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
    )
    return {"work": work, "venv": venv, "python": python, "site": site, "env": env,
            "home": home, "before": _snapshot(site)}  # fmt: skip


def test_the_course_command_copies_the_notebooks(installed):
    dest = installed["work"] / "learner" / "notebooks"
    _run([installed["venv"] / "bin" / "weights-course", "notebooks", dest],
         env=installed["env"], cwd=installed["work"])  # fmt: skip
    names = sorted(p.name for p in dest.glob("*.ipynb"))
    assert names == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    assert len(names) == 14
    assert not (installed["site"] / "course_lib" / "config.py").samefile(
        REPO / "course_lib" / "config.py"
    )


def test_notebooks_01_and_14_run_in_the_copied_folder(installed, real_data):
    folder = installed["work"] / "learner" / "notebooks"
    env = dict(installed["env"], COURSE_DATA_DIR=str(real_data), OMP_NUM_THREADS="1")
    result = _run(
        [installed["python"], "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=300", "-p", "no:cacheprovider", "-q",
         "01_intro_weights.ipynb", "14_rnn_sentiment.ipynb"],
        env=env, cwd=folder,
    )  # fmt: skip
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_doctor_reports_an_installed_set_up(installed, real_data):
    env = dict(installed["env"], COURSE_DATA_DIR=str(real_data))
    out = _run([installed["python"], "-m", "course_lib", "doctor"], env=env,
               cwd=installed["work"]).stdout  # fmt: skip
    print(out)
    assert f"installed in {installed['site']}" in out.splitlines()[0]
    cache = installed["home"] / "cache" / "weights-course"
    assert f"cache folder {cache} (the user's cache folder), writable" in out
    assert "packages: " in out and "at the tested versions" in out
    assert "widgets: front end" in out and "sliders render" in out
    assert "\u2718" not in out, "doctor found a problem"


def test_nothing_was_written_under_site_packages(installed):
    after = _snapshot(installed["site"])
    before = installed["before"]
    added = sorted(set(after) - set(before))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    assert not added and not changed, f"written under site-packages: {(added + changed)[:20]}"
    assert sysconfig.get_path("purelib") != str(installed["site"])
