"""The environment files agree, and the pins keep the CPU build of torch."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pytest brings tomli
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _environment_pip() -> list[str]:
    """The pip requirements of environment.yml (one per '- ' line under 'pip:')."""
    lines = (REPO / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    reqs = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if stripped.startswith("- "):
            reqs.append(stripped[2:].strip())
        elif stripped and not stripped.startswith("#"):
            break
    return reqs


def test_every_dependency_is_pinned_exactly():
    for req in _pyproject()["project"]["dependencies"]:
        assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.+\-]*", req), f"not pinned: {req}"


def test_torch_is_pinned_to_the_cpu_wheel_version():
    deps = _pyproject()["project"]["dependencies"]
    assert "torch==2.13.0" in deps
    assert not any(d.startswith("torchvision") for d in deps), "no CPU build of torchvision exists"


def test_environment_yml_matches_pyproject():
    packages = [r for r in _environment_pip() if not r.startswith("-")]
    assert sorted(packages) == sorted(_pyproject()["project"]["dependencies"])
    assert "-e ." in _environment_pip(), "environment.yml must install the course package itself"


def test_environment_python_satisfies_requires_python():
    text = (REPO / "environment.yml").read_text()
    version = re.search(r"- python=(\d+)\.(\d+)", text)
    assert version, "environment.yml must pin a Python version"
    minimum = re.search(r">=(\d+)\.(\d+)", _pyproject()["project"]["requires-python"])
    assert tuple(map(int, version.groups())) >= tuple(map(int, minimum.groups()))


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for req in _pyproject()["project"]["dependencies"]:
        name, pinned = req.split("==")
        assert version(name).split("+")[0] == pinned, (
            f"{name} {version(name)} installed, {pinned} pinned"
        )
