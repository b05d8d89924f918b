"""The environment files agree: ranges, lock, Python range, conda and Binder environments."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from course_lib.doctor import python_range_text, read_lock

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "course_lib" / "lock.txt"


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _ranges(group: str | None = None) -> dict[str, Requirement]:
    project = _project()
    lines = project["optional-dependencies"][group] if group else project["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def _environment_pip(path: Path) -> list[str]:
    """The pip requirements of an environment.yml (one per '- ' line under 'pip:')."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if stripped.startswith("- "):
            reqs.append(stripped[2:].strip())
        elif stripped and not stripped.startswith("#"):
            break
    return reqs


def _python_minors(spec: SpecifierSet) -> list[str]:
    return [f"3.{m}" for m in range(0, 40) if spec.contains(f"3.{m}")]


# --------------------------------------------------------------------------- ranges and lock


def test_lock_pins_every_dependency_exactly_and_nothing_else():
    lock = read_lock(LOCK)
    declared = _ranges() | _ranges("dev")
    assert sorted(lock) == sorted(declared), "the lock and pyproject.toml name other packages"


def test_lock_lies_inside_the_ranges():
    lock = read_lock(LOCK)
    for name, req in (_ranges() | _ranges("dev")).items():
        assert req.specifier, f"{req} has no range: say which versions the course works with"
        assert req.specifier.contains(lock[name]), f"lock {name}=={lock[name]} is outside {req}"


def test_torch_is_locked_to_the_cpu_wheel_version_and_bounded():
    assert read_lock(LOCK)["torch"] == "2.13.0"
    torch = _ranges()["torch"]
    assert not torch.specifier.contains("2.14.0") and not torch.specifier.contains("3.0")
    names = set(_ranges()) | set(_ranges("dev")) | set(read_lock(LOCK))
    assert "torchvision" not in names, "there is no CPU build of torchvision: do not depend on it"


def test_read_lock_refuses_a_range(tmp_path):
    bad = tmp_path / "lock.txt"
    bad.write_text("# fine\nnumpy==2.4.6\ntorch>=2.4\n")
    with pytest.raises(ValueError, match=r"lock.txt:3: 'torch>=2.4' is not an exact pin"):
        read_lock(bad)


def test_installed_versions_match_the_lock():
    for name, pinned in read_lock(LOCK).items():
        installed = Version(metadata.version(name))
        assert installed.public == pinned, f"{name} {installed} installed, {pinned} locked"


# --------------------------------------------------------------------------- Python range


def test_python_range_is_what_every_locked_package_requires():
    """Every Python the range admits satisfies each locked package's Requires-Python, and
    the range starts where the most demanding one does: it cannot drift silently."""
    ours = SpecifierSet(_project()["requires-python"])
    minors = _python_minors(ours)
    floors = {}
    for name in read_lock(LOCK):
        spec = SpecifierSet(metadata.metadata(name).get("Requires-Python") or "")
        for minor in minors:
            assert spec.contains(minor), f"{name} requires Python {spec}, the course says {minor}"
        floors[name] = _python_minors(spec)[0]
    highest = max(floors.values(), key=Version)
    assert minors[0] == highest, (
        f"the lock needs Python {highest} at least ({[n for n, f in floors.items() if f == highest]})"
        f" but requires-python starts at {minors[0]}"
    )


def test_python_range_is_stated_alike_everywhere():
    ours = SpecifierSet(_project()["requires-python"])
    minors = _python_minors(ours)
    assert python_range_text(ours) == f"{minors[0]} to {minors[-1]}" == "3.11 to 3.14"
    makefile = (REPO / "Makefile").read_text()
    assert re.search(rf"^PYTHON_MIN := {re.escape(minors[0])}$", makefile, re.M)
    assert re.search(rf"^PYTHON_MAX := {re.escape(minors[-1])}$", makefile, re.M)
    readme = (REPO / "README.md").read_text()
    assert f"Python {minors[0]} to {minors[-1]}" in readme
    assert "3.10+" not in readme and "Python 3.10" not in readme
    ruff = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    assert ruff["target-version"] == "py" + minors[0].replace(".", "")


# --------------------------------------------------------------------------- conda and Binder


@pytest.mark.parametrize("path", ["environment.yml", ".binder/environment.yml"])
def test_environment_files_install_the_locked_runtime_packages(path):
    reqs = _environment_pip(REPO / path)
    packages = [Requirement(r) for r in reqs if not r.startswith("-")]
    lock = read_lock(LOCK)
    runtime = {name: lock[name] for name in _ranges()}
    assert {canonicalize_name(r.name): str(r.specifier) for r in packages} == {
        name: f"=={version}" for name, version in runtime.items()
    }
    python = re.search(r"^\s*- python=(\d+\.\d+)\s*$", (REPO / path).read_text(), re.M)
    assert python, f"{path} must pin a Python version"
    assert python.group(1) in _python_minors(SpecifierSet(_project()["requires-python"]))


def test_conda_environment_installs_the_package_and_binder_does_not():
    assert "-e ." in _environment_pip(REPO / "environment.yml")
    binder = _environment_pip(REPO / ".binder" / "environment.yml")
    # repo2docker copies the whole repository before the environment when a pip line
    # names a local file (-e, -r, -c, a path): every commit would reinstall PyTorch
    local = [
        r for r in binder if re.match(r"(-e|-r|-c|--editable|--requirement|--constraint)\b|\.", r)
    ]
    assert not local, f".binder/environment.yml refers to local files: {local}"


def test_every_subpackage_and_the_notebooks_go_into_the_wheel():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    subpackages = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "course_lib").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert subpackages <= set(setuptools["packages"]), "a course_lib subpackage is not listed"
    assert setuptools["package-dir"] == {"course_lib.notebooks": "notebooks"}
    assert setuptools["package-data"]["course_lib.notebooks"] == ["*.ipynb"]
    assert "lock.txt" in setuptools["package-data"]["course_lib"]


def test_readme_lists_the_versions_ci_runs():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- lock -->(.*?)<!-- /lock -->", readme, re.S)
    assert block, "README.md must list the lock's versions between <!-- lock --> markers"
    listed = dict(re.findall(r"([A-Za-z0-9_.\-]+) (\d[^\s,]*)", block.group(1)))
    lock = read_lock(LOCK)
    assert {canonicalize_name(k): v for k, v in listed.items()} == {n: lock[n] for n in _ranges()}
