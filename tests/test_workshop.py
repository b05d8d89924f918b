"""Workshops on a JupyterHub: the nbgitpuller link, the per-user settings, the deployment kit.

What can be checked without Kubernetes or Docker is checked here: every file of
``deploy/`` parses, carries the course's per-user settings and the measured sizing,
and installs the course the way CI does; the instructor guide's sizing section is
the one the measurements generate. Building the image and deploying it are not run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from course_lib import config, workshop
from course_lib.workshop import nbgitpuller_link, repository_folder, user_environment

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
GUIDE = REPO / "docs" / "instructor.md"
sys.path.insert(0, str(REPO / "benchmarks"))

import sizing  # noqa: E402

# --------------------------------------------------------------------------- the link


def _query(link: str) -> dict[str, str]:
    values = parse_qs(urlsplit(link).query, strict_parsing=True)
    assert all(len(v) == 1 for v in values.values())
    return {key: value[0] for key, value in values.items()}


def test_link_has_nbgitpullers_documented_form():
    link = nbgitpuller_link("https://hub.example.org", "https://github.com/me/weights-course")
    assert link == (
        "https://hub.example.org/hub/user-redirect/git-pull?"
        "repo=https%3A%2F%2Fgithub.com%2Fme%2Fweights-course"
        "&urlpath=lab%2Ftree%2Fweights-course%2Fnotebooks&branch=main"
    )


@pytest.mark.parametrize(
    ("hub", "prefix"),
    [
        ("https://hub.example.org/", "https://hub.example.org/hub/user-redirect/git-pull"),
        ("https://hub.example.org/hub/", "https://hub.example.org/hub/user-redirect/git-pull"),
        ("http://10.0.0.5:8000", "http://10.0.0.5:8000/hub/user-redirect/git-pull"),
        ("https://example.org/jupyter", "https://example.org/jupyter/hub/user-redirect/git-pull"),
    ],
)
def test_link_keeps_the_hubs_address_and_base_path(hub, prefix):
    link = nbgitpuller_link(hub, "https://github.com/me/course")
    assert link.split("?")[0] == prefix


@pytest.mark.parametrize(
    ("repo", "folder"),
    [
        ("https://github.com/me/weights-course.git", "weights-course"),
        ("https://gitlab.example.org/group/sub/course/", "course"),
        ("git@github.com:me/weights-course.git", "weights-course"),
        ("ssh://git@example.org:2222/me/course.git", "course"),
    ],
)
def test_link_opens_the_folder_nbgitpuller_clones_into(repo, folder):
    assert repository_folder(repo) == folder
    link = nbgitpuller_link(
        "https://hub.example.org", repo, branch="feature/x+1", path="notebooks/"
    )
    assert _query(link) == {
        "repo": repo,
        "urlpath": f"lab/tree/{folder}/notebooks",
        "branch": "feature/x+1",
    }


def test_link_to_one_notebook_in_either_interface():
    repo = "https://github.com/me/course"
    lab = nbgitpuller_link("https://h.org", repo, path="notebooks/01_intro_weights.ipynb")
    assert _query(lab)["urlpath"] == "lab/tree/course/notebooks/01_intro_weights.ipynb"
    classic = nbgitpuller_link("https://h.org", repo, path="", app="classic")
    assert _query(classic)["urlpath"] == "tree/course"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"hub": "hub.example.org"}, "not the address of a JupyterHub"),
        ({"hub": "ftp://hub.example.org"}, "not the address of a JupyterHub"),
        ({"hub": "https://hub.example.org/?next=x"}, "query or a fragment"),
        ({"hub": None}, "hub must be the hub's address"),
        ({"repo": ""}, "must be a git repository URL"),
        ({"repo": " https://github.com/me/c"}, "must be a git repository URL"),
        ({"repo": "github.com/me/course"}, "not a git repository URL"),
        ({"repo": "https://github.com/"}, "does not end in a repository name"),
        ({"repo": "https://github.com/me/c?x=1"}, "query or a fragment"),
        ({"branch": "two words"}, "not a valid git branch name"),
        ({"branch": "-rf"}, "not a valid git branch name"),
        ({"branch": "a..b"}, "not a valid git branch name"),
        ({"branch": ""}, "not a valid git branch name"),
        ({"path": "/etc"}, "relative to the repository"),
        ({"path": "../other"}, "relative to the repository"),
        ({"path": "notebooks/./01.ipynb"}, "relative to the repository"),
        ({"app": "vscode"}, "app 'vscode' is not one of"),
    ],
)
def test_link_rejects_invalid_arguments(arguments, message):
    values = {"hub": "https://hub.example.org", "repo": "https://github.com/me/course"}
    with pytest.raises(ValueError, match=re.escape(message)):
        nbgitpuller_link(**{**values, **arguments})


def test_guide_shows_the_link_the_function_makes():
    hub, repo = "https://hub.example.org", "https://github.com/OWNER/weights-course"
    assert nbgitpuller_link(hub, repo) in GUIDE.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- per-user settings


def test_user_environment():
    env = user_environment("/data", fast=True, threads=2)
    assert env == {
        "COURSE_DATA_DIR": "/data",
        "COURSE_CACHE_DIR": "~/.cache/weights-course",
        "COURSE_FAST": "1",
        "COURSE_SOLUTIONS": "hidden",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
    }
    assert user_environment()["COURSE_FAST"] == "0"
    for threads in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            user_environment(threads=threads)


def test_per_user_cache_lands_in_each_learners_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "alice"))
    monkeypatch.setenv("COURSE_CACHE_DIR", workshop.USER_CACHE_DIR)
    assert config.cache_dir() == (tmp_path / "alice" / ".cache" / "weights-course").resolve()


# --------------------------------------------------------------------------- the kit


def _z2jh() -> dict:
    return yaml.safe_load((DEPLOY / "z2jh" / "config.yaml").read_text())


def test_z2jh_config_sets_the_course_environment_and_the_shared_data():
    singleuser = _z2jh()["singleuser"]
    env = singleuser["extraEnv"]
    assert env == user_environment(workshop.SHARED_DATA_DIR)
    assert env["COURSE_SOLUTIONS"] == "hidden" and env["OMP_NUM_THREADS"] == "1"
    (volume,) = singleuser["storage"]["extraVolumes"]
    (mount,) = singleuser["storage"]["extraVolumeMounts"]
    assert mount["name"] == volume["name"]
    assert mount["mountPath"] == env["COURSE_DATA_DIR"]
    assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["readOnly"] is True
    assert singleuser["defaultUrl"] == "/lab"


def test_z2jh_config_culls_idle_servers():
    cull = _z2jh()["cull"]
    assert cull["enabled"] is True and 0 < cull["every"] <= cull["timeout"] <= 4 * 3600


def test_memory_and_cpu_come_from_the_measurements():
    pytest.importorskip("jupyterhub", reason="JupyterHub reads the memory sizes")
    from jupyterhub.traitlets import ByteSpecification

    expected = sizing.compute(
        sizing.load(sizing.NOTEBOOKS_JSON), sizing.load(sizing.REHEARSAL_JSON)
    )
    singleuser = _z2jh()["singleuser"]
    memory = {k: ByteSpecification().validate(None, v) for k, v in singleuser["memory"].items()}
    assert memory["guarantee"] == expected.guarantee_gb * 2**30
    assert memory["limit"] == expected.limit_gb * 2**30
    assert memory["guarantee"] < memory["limit"]
    assert singleuser["cpu"] == {"guarantee": expected.cpu_guarantee, "limit": 1}
    script = (DEPLOY / "tljh" / "install.sh").read_text()
    assert f"limits.memory {expected.values['memory.limit']}  #" in script
    assert "limits.cpu 1  #" in script


def test_generated_files_are_up_to_date():
    """The guide's sizing section and the kit's sizes are what the measurements give."""
    stale = [str(p.relative_to(REPO)) for p, c in sizing.generated().items() if p.read_text() != c]
    assert not stale, f"run `python benchmarks/sizing.py` to regenerate: {stale}"


def test_data_volume_is_the_one_the_config_mounts_and_the_course_command_fills_it():
    from course_lib import cli

    claim, job = yaml.safe_load_all((DEPLOY / "z2jh" / "course-data.yaml").read_text())
    singleuser = _z2jh()["singleuser"]
    (volume,) = singleuser["storage"]["extraVolumes"]
    assert (
        claim["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in claim["spec"]["accessModes"]
    )
    assert claim["metadata"]["name"] == volume["persistentVolumeClaim"]["claimName"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{singleuser['image']['name']}:{singleuser['image']['tag']}"
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == workshop.SHARED_DATA_DIR and not mount.get("readOnly")
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    python, flag, module, *arguments = container["command"]
    assert (python, flag, module) == ("python", "-m", "course_lib")
    args = cli.build_parser().parse_args(arguments)
    assert args.command == "data" and Path(args.dest) == Path(workshop.SHARED_DATA_DIR)


def test_kernel_culler_settings_are_valid_server_configuration():
    from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
    from traitlets.config import Config

    settings = json.loads((DEPLOY / "jupyter_server_config.json").read_text())
    manager = MappingKernelManager(config=Config(settings))
    assert manager.cull_idle_timeout == 1800 and manager.cull_connected is True
    assert manager.cull_interval <= manager.cull_idle_timeout and manager.cull_busy is False


def test_tljh_settings_are_the_course_environment():
    from traitlets.config import Config

    hub_config = Config()
    hub_config.Spawner.environment = {"KEPT": "1"}
    code = (DEPLOY / "tljh" / "jupyterhub_config.py").read_text()
    exec(compile(code, "jupyterhub_config.py", "exec"), {"get_config": lambda: hub_config})
    expected = {"KEPT": "1", **user_environment(workshop.SHARED_DATA_DIR)}
    assert hub_config.Spawner.environment == expected


def test_tljh_steps_are_a_valid_script_using_files_of_the_repository():
    script = DEPLOY / "tljh" / "install.sh"
    bash = shutil.which("bash")
    if bash:
        subprocess.run([bash, "-n", str(script)], check=True)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    for used in re.findall(r'"\$COURSE/([\w./-]+)"', text):
        assert (REPO / used).exists(), used
    assert f"DATA={workshop.SHARED_DATA_DIR}" in text


def _pip_installs(text: str) -> list[str]:
    """The ``pip install`` commands of a Dockerfile, Makefile recipe or script, one line each."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [m.group(0) for m in re.finditer(r"pip\"? install[^\n&;]*", joined)]


def _constraint_files(command: str) -> set[str]:
    return {Path(m).name for m in re.findall(r"(?:-c|--constraint|-r)\s+\"?([^\s\"]+)", command)}


def _expand_make_variables(makefile: str) -> str:
    """The Makefile with ``$(NAME)`` replaced by the values its simple assignments give."""
    values = dict(re.findall(r"^(\w+)\s*[:?]?=[ \t]*(\S*)[ \t]*$", makefile, flags=re.M))
    return re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), makefile)


def test_image_and_tljh_install_the_course_as_ci_does():
    """Same lock as constraints as the Makefile's install (what CI runs), torch from PyTorch's
    CPU index under that lock, every extra package pinned, a Python 3.11 base as in CI."""
    from packaging.specifiers import SpecifierSet

    makefile = _expand_make_variables((REPO / "Makefile").read_text())
    ci_files = set().union(*(_constraint_files(c) for c in _pip_installs(makefile)))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    tljh = (DEPLOY / "tljh" / "install.sh").read_text()
    for text in (dockerfile, tljh):
        installs = _pip_installs(text)
        assert len(installs) == 2, installs
        torch, course = installs
        for command in installs:
            assert "lock.txt" in _constraint_files(command)
            assert ci_files <= _constraint_files(command), (ci_files, command)
        assert "--index-url https://download.pytorch.org/whl/cpu torch" in torch
        extras = re.findall(r'"([\w-]+)==([^"]+)"', course)
        assert {name for name, _ in extras} >= {"nbgitpuller"}
    base = re.search(r"ARG BASE_IMAGE=(quay\.io/jupyter/[\w-]+):python-(3\.\d+)", dockerfile)
    assert base, "the base image must be an official Jupyter Docker Stacks image"
    requires = re.search(r'requires-python = "([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert base.group(2) in SpecifierSet(requires.group(1))
    for source in re.findall(r"^COPY (?:--\S+ )*(\S+) ", dockerfile, flags=re.M):
        assert (REPO / source).exists(), source
    nbgitpuller = re.search(r"ARG NBGITPULLER_VERSION=(\S+)", dockerfile).group(1)
    assert f'"nbgitpuller=={nbgitpuller}"' in tljh


def test_image_build_leaves_local_environments_and_data_out():
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", "data", "**/node_modules", ".git"} <= set(ignored)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?:--\S+ )*(\S+) ", dockerfile, flags=re.M):
        assert source not in ignored


def test_guide_explains_every_file_of_the_kit():
    guide = GUIDE.read_text(encoding="utf-8")
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        assert f"`{path.relative_to(REPO).as_posix()}`" in guide, path
    assert "not run" in guide.lower()  # what was not tested here is said
