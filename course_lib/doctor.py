"""What is right and what to fix in a course set-up: ``cl.doctor()`` or ``python -m course_lib doctor``.

One screen, one line per check, each problem followed by what to do:

* Python against the range the package declares (``requires-python``);
* the installed packages against the package's ranges and the tested versions
  in ``course_lib/lock.txt``;
* the widget front end (JupyterLab's ``@jupyter-widgets/jupyterlab-manager``)
  in the environment of the Jupyter server: without it sliders show as text;
* the datasets in the data folder: present, readable, complete or a sample;
* whether the data and cache folders can be written;
* threads against the cores this process may use;
* TLS certificates for downloads (certifi, or the system's);
* the device :func:`course_lib.config.get_device` picks.

:func:`run_checks` returns the checks, :func:`render` the screen.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import ssl
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import config

__all__ = [
    "Check",
    "doctor",
    "lock_path",
    "read_lock",
    "render",
    "requires_python",
    "run_checks",
    "runtime_requirements",
]

OK, WARN, FAIL = "ok", "warn", "fail"
_MARK = {OK: "\u2714", WARN: "!", FAIL: "\u2718"}
DISTRIBUTION = "course-lib"
WIDGET_EXTENSION = ("@jupyter-widgets", "jupyterlab-manager")


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``"ok"``, ``"warn"`` or ``"fail"``."""

    status: str
    what: str
    fix: str = ""

    def __str__(self) -> str:
        line = f"{_MARK[self.status]} {self.what}"
        return f"{line}\n    fix: {self.fix}" if self.fix else line


# --------------------------------------------------------------------------- versions


def lock_path() -> Path:
    """``course_lib/lock.txt``: the exact versions the course is tested with."""
    return Path(__file__).resolve().parent / "lock.txt"


def read_lock(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The lock as ``{canonical name: version}`` (every line ``name==version``)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    path = Path(path) if path is not None else lock_path()
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"{path}:{number}: {line!r} is not an exact pin (name==version)")
        pins[canonicalize_name(req.name)] = specs[0].version
    return pins


def _pyproject() -> dict | None:
    if config.REPO_ROOT is None:
        return None
    import tomllib

    return tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def runtime_requirements() -> list:
    """The package's own requirements (``packaging`` Requirements, no extras): from
    pyproject.toml in a clone, from the installed metadata otherwise."""
    from packaging.requirements import Requirement

    project = _pyproject()
    if project is not None:
        lines = project["project"]["dependencies"]
    else:
        lines = metadata.metadata(DISTRIBUTION).get_all("Requires-Dist") or []
    reqs = [Requirement(line) for line in lines]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def requires_python():
    """The package's ``requires-python`` as a ``packaging`` SpecifierSet."""
    from packaging.specifiers import SpecifierSet

    project = _pyproject()
    if project is not None:
        return SpecifierSet(project["project"]["requires-python"])
    return SpecifierSet(metadata.metadata(DISTRIBUTION)["Requires-Python"] or "")


def python_range_text(spec=None) -> str:
    """``"3.11 to 3.14"``: the Python 3 minor versions a SpecifierSet admits."""
    spec = requires_python() if spec is None else spec
    minors = [m for m in range(0, 40) if spec.contains(f"3.{m}")]
    if not minors:
        return f"Python {spec}"
    return f"3.{minors[0]} to 3.{minors[-1]}" if len(minors) > 1 else f"3.{minors[0]}"


def check_python() -> Check:
    spec, version = requires_python(), platform.python_version()
    wanted = python_range_text(spec)
    if spec.contains(version):
        return Check(OK, f"Python {version} (the course runs on {wanted})")
    return Check(
        FAIL,
        f"Python {version}, but the course's packages need Python {wanted}",
        f"make an environment with Python {wanted} (in a clone: make lab PYTHON=python3.12; "
        "Ubuntu 22.04: apt install python3.11 python3.11-venv, then PYTHON=python3.11)",
    )


def check_packages() -> list[Check]:
    """One summary line, plus a line for every package missing, outside its range or untested."""
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    lock, reqs = read_lock(), runtime_requirements()
    found, problems = [], []
    for req in reqs:
        pinned = lock.get(canonicalize_name(req.name))
        install = f'python -m pip install "{req.name}=={pinned}"' if pinned else ""
        try:
            installed = Version(metadata.version(req.name))
        except metadata.PackageNotFoundError:
            problems.append(Check(FAIL, f"{req.name} is not installed", install))
            continue
        if not req.specifier.contains(installed, prereleases=True):
            problems.append(
                Check(FAIL, f"{req.name} {installed} is outside the course's range {req}", install)
            )
        elif pinned is not None and Version(installed.public) != Version(pinned):
            problems.append(
                Check(WARN, f"{req.name} {installed}: the course is tested with {pinned}", install)
            )
        else:
            found.append(f"{req.name} {installed}")
    tested = len(reqs) - len(problems)
    key = ", ".join(f for f in found if f.split()[0] in {"torch", "numpy", "jupyterlab"})
    summary = f"packages: {tested} of {len(reqs)} at the tested versions ({key})"
    return [Check(OK if tested == len(reqs) else WARN, summary), *problems]


# --------------------------------------------------------------------------- widgets


def _prefix_of(executable: Path) -> Path:
    """The environment prefix of a program in its ``bin`` (``Scripts`` on Windows) folder."""
    folder = executable.parent
    return folder.parent if folder.name in {"bin", "Scripts"} else folder


def _program_of(pid: int) -> Path | None:
    """The program a process was started as (``python`` of its environment), if it can be told."""
    try:
        import psutil

        process = psutil.Process(pid)
        program = process.cmdline()[0]
        if not os.path.isabs(program) and os.sep in program:
            program = os.path.join(process.cwd(), program)
        if not os.path.isabs(program):  # started by name from PATH: its real executable
            program = process.exe()
    except Exception:  # no psutil, process gone or not ours to inspect
        return None
    return Path(os.path.normpath(program))


def server_prefix() -> tuple[Path | None, str]:
    """The environment of the Jupyter server, and how it was found.

    In a kernel, the server that started it (``JPY_PARENT_PID``); else this
    environment when it has JupyterLab; else the ``jupyter-lab`` on ``PATH``.
    """
    pid = os.environ.get("JPY_PARENT_PID", "")
    if pid.isdigit():
        program = _program_of(int(pid))
        if program is not None:
            return _prefix_of(program), "the Jupyter server running this kernel"
    here = shutil.which("jupyter-lab", path=str(Path(sys.executable).parent))
    if here:
        return Path(sys.prefix), "this environment's JupyterLab"
    on_path = shutil.which("jupyter-lab")
    if on_path:
        return _prefix_of(Path(on_path)), f"the jupyter-lab on PATH ({on_path})"
    return None, "no JupyterLab found (none in this environment, none on PATH)"


def labextension_dirs(prefix: Path | None) -> list[Path]:
    """Where a JupyterLab server in ``prefix`` looks for prebuilt extensions: its own
    ``share/jupyter/labextensions``, then the user's and the system's folders."""
    try:
        from jupyter_core import paths
    except ImportError:
        dirs = [Path(sys.prefix, "share", "jupyter", "labextensions")]
    else:
        dirs = [Path(p) for p in paths.jupyter_path("labextensions")]
        if prefix is not None:
            own = Path(sys.prefix, "share", "jupyter", "labextensions")
            dirs = [d for d in dirs if d != own or Path(sys.prefix) == prefix]
    if prefix is not None:
        dirs.insert(0, prefix / "share" / "jupyter" / "labextensions")
    return list(dict.fromkeys(dirs))


def find_widget_frontend(dirs: list[Path]) -> tuple[Path, str] | None:
    """The first ``jupyterlab-manager`` extension in ``dirs``: (folder, version)."""
    import json

    for base in dirs:
        package = base.joinpath(*WIDGET_EXTENSION, "package.json")
        if package.is_file():
            try:
                version = json.loads(package.read_text(encoding="utf-8")).get("version", "?")
            except (OSError, ValueError):
                version = "?"
            return package.parent, str(version)
    return None


def check_widgets() -> Check:
    prefix, how = server_prefix()
    fix = (
        "install the widget front end where JupyterLab runs: "
        f"{prefix / 'bin' / 'python' if prefix else 'python'} -m pip install "
        '"jupyterlab_widgets>=3,<4" (or start JupyterLab from the course environment: make lab)'
    )
    if prefix is None:
        return Check(WARN, f"widgets: {how}", "start JupyterLab from the course environment")
    found = find_widget_frontend(labextension_dirs(prefix))
    if found is None:
        return Check(
            FAIL, f"widgets: no widget front end for {how} in {prefix}: sliders show as text", fix
        )
    folder, version = found
    major = version.split(".")[0]
    if major.isdigit() and int(major) < 5:
        return Check(
            FAIL,
            f"widgets: front end {version} in {folder} is for ipywidgets 7: sliders break",
            fix,
        )
    return Check(OK, f"widgets: front end {version} for {how} ({prefix}): sliders render")


# --------------------------------------------------------------------------- folders and data

#: name, folder in the data folder, loader, official number of training and test examples
_DATASETS = (
    ("MNIST", "mnist", "load_mnist", 60_000, 10_000),
    ("CIFAR-10", "cifar-10-batches-py", "load_cifar10", 50_000, 10_000),
    ("MR", "rt-polaritydata", "load_mr", 10_662, 0),
)


def dataset_sizes(loader: str, root: Path) -> tuple[int, int]:
    """(training, test) examples of a dataset read from ``root`` (never downloads)."""
    from . import data, text

    load = getattr(text if loader == "load_mr" else data, loader)
    if loader == "load_mr":
        return len(load(data_dir=root, download=False)), 0
    return len(load("train", data_dir=root, download=False)), len(
        load("test", data_dir=root, download=False)
    )


def check_dataset(name: str, folder: str, loader: str, official: tuple[int, int], root: Path):
    from .data import DatasetError

    if not (root / folder).exists():
        return Check(WARN, f"{name}: not in the data folder yet")
    try:
        sizes = dataset_sizes(loader, root)
    except DatasetError as exc:
        return Check(FAIL, f"{name}: {str(exc).splitlines()[0]}", str(exc).splitlines()[-1])
    if loader == "load_mr":
        held, full = f"{sizes[0]:,} sentences", f"{official[0]:,}"
    else:
        held = f"{sizes[0]:,} training + {sizes[1]:,} test images"
        full = f"{official[0]:,} + {official[1]:,}"
    complete = all(n >= o for n, o in zip(sizes, official, strict=True))
    note = "complete" if complete else f"a sample of the official {full}"
    return Check(OK, f"{name}: {held}, read and checked ({note})")


def writable(path: Path) -> bool:
    """True when a file can be created in ``path`` (or, if it does not exist yet, in the
    nearest folder above it that does, where it would be made)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return False
    try:
        with tempfile.TemporaryFile(dir=probe):
            return True
    except OSError:
        return False


def _origin(variable: str, in_clone: str, installed: str) -> str:
    if os.environ.get(variable, "").strip():
        return variable
    return f"the clone's {in_clone}" if config.REPO_ROOT is not None else installed


def _with_fetch_hint(datasets: list[Check]) -> list[Check]:
    """The dataset lines, indented, the last missing one saying how to fetch them all."""
    missing = [c for c in datasets if c.status == WARN and not c.fix]
    hint = (
        f"python -m course_lib data fetches {', '.join(c.what.split(':')[0] for c in missing)} "
        "(or the first notebook that needs one downloads it)"
    )
    return [
        Check(c.status, "  " + c.what, hint if missing and c is missing[-1] else c.fix)
        for c in datasets
    ]


def check_folders(data: Path, cache: Path, datasets: list[Check]) -> list[Check]:
    complete = all(c.status == OK for c in datasets)
    origin = _origin("COURSE_DATA_DIR", "data/", "the user's data folder")
    if writable(data):
        data_check = Check(OK, f"data folder {data} ({origin}), writable")
    elif complete:
        data_check = Check(OK, f"data folder {data} ({origin}), read-only, holds every dataset")
    else:
        data_check = Check(
            FAIL,
            f"data folder {data} ({origin}) cannot be written: missing datasets cannot be fetched",
            "set COURSE_DATA_DIR to a folder that holds the datasets, or to a writable one",
        )
    origin = _origin("COURSE_CACHE_DIR", "data/cache/", "the user's cache folder")
    if writable(cache):
        cache_check = Check(OK, f"cache folder {cache} ({origin}), writable")
    else:
        cache_check = Check(
            WARN,
            f"cache folder {cache} ({origin}) cannot be written: cached results are recomputed",
            "set COURSE_CACHE_DIR to a writable folder (one per learner on a shared machine)",
        )
    return [data_check, *_with_fetch_hint(datasets), cache_check]


# --------------------------------------------------------------------------- machine


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def check_threads() -> Check:
    import torch

    threads, cores = torch.get_num_threads(), usable_cores()
    omp = os.environ.get("OMP_NUM_THREADS", "unset")
    what = f"threads: PyTorch uses {threads} on {cores} usable cores (OMP_NUM_THREADS={omp})"
    if threads > cores:
        return Check(
            WARN,
            what + ": threads wait on each other",
            f"set OMP_NUM_THREADS={cores} (1 per kernel on a shared machine) before Jupyter starts",
        )
    return Check(OK, what)


def check_tls() -> Check:
    try:
        import certifi
    except ImportError:
        certifi = None
    if certifi is not None:
        bundle = certifi.where()
        try:
            ssl.create_default_context(cafile=bundle)
            return Check(OK, f"TLS certificates for downloads: certifi {certifi.__version__}")
        except (OSError, ssl.SSLError) as exc:
            problem = f"certifi's bundle {bundle} cannot be read ({exc})"
    else:
        problem = "certifi is not installed"
    paths = ssl.get_default_verify_paths()
    system = [p for p in (paths.cafile, paths.capath) if p and Path(p).exists()]
    if system:
        return Check(
            WARN,
            f"TLS certificates: {problem}; the system's are used ({system[0]})",
            "python -m pip install certifi",
        )
    return Check(
        FAIL,
        f"TLS certificates: {problem} and the system has none: downloads will fail",
        "python -m pip install certifi (macOS python.org Python: run 'Install Certificates')",
    )


def check_device() -> Check:
    import torch

    try:
        device = config.get_device()
    except (ValueError, RuntimeError) as exc:
        return Check(FAIL, f"device: {exc}")
    if device.type == "cuda":
        detail = torch.cuda.get_device_name(0)
    elif device.type == "mps":
        detail = "Apple MPS"
    else:
        detail = f"no GPU that torch {torch.__version__} can use; every notebook runs on the CPU"
    return Check(OK, f"device: {device} ({detail})")


def check_mode() -> Check:
    try:
        mode = "fast" if config.is_fast() else "full"
    except ValueError as exc:
        return Check(FAIL, f"mode: {exc}")
    return Check(OK, f"mode: {mode} (COURSE_FAST={os.environ.get('COURSE_FAST', 'unset')})")


# --------------------------------------------------------------------------- report


def run_checks(data_dir: str | os.PathLike | None = None) -> list[Check]:
    """Every check, in the order of the report (``data_dir`` defaults to the course's)."""
    data = Path(data_dir).expanduser().resolve() if data_dir is not None else config.data_dir()
    datasets = [check_dataset(n, f, load, (tr, te), data) for n, f, load, tr, te in _DATASETS]
    return [
        check_python(),
        *check_packages(),
        check_widgets(),
        *check_folders(data, config.cache_dir(), datasets),
        check_mode(),
        check_threads(),
        check_tls(),
        check_device(),
    ]


def _where() -> str:
    if config.REPO_ROOT is not None:
        return f"running from the clone at {config.REPO_ROOT}"
    return f"installed in {Path(__file__).resolve().parent.parent}"


def render(checks: list[Check]) -> str:
    """The report: a heading, one line per check (and its fix), a closing verdict."""
    from . import __version__

    fails = sum(c.status == FAIL for c in checks)
    warns = sum(c.status == WARN for c in checks)
    if fails:
        verdict = f"{fails} problem(s) to fix" + (f", {warns} warning(s)" if warns else "")
    elif warns:
        verdict = f"ready, with {warns} warning(s)"
    else:
        verdict = "everything is ready"
    lines = [f"course_lib {__version__}, {_where()}", *map(str, checks), f"Verdict: {verdict}."]
    return "\n".join(lines)


def doctor(data_dir: str | os.PathLike | None = None) -> None:
    """Print what is right and what to fix in this set-up (see the module's docstring)."""
    print(render(run_checks(data_dir)))
