"""Binder: .binder/ builds the environment before it copies the repository, and sessions
start in fast mode with one thread per kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / ".binder"


def test_start_sets_fast_mode_and_one_thread_then_runs_the_command():
    start = BINDER / "start"
    assert os.access(start, os.X_OK), ".binder/start must be executable"
    env = {k: v for k, v in os.environ.items() if k not in {"COURSE_FAST", "OMP_NUM_THREADS"}}
    out = subprocess.run(
        [str(start), "sh", "-c", 'echo "$COURSE_FAST $OMP_NUM_THREADS $0"', "ran"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == ["1", "1", "ran"]


def test_post_build_installs_the_package_alone_then_fetches_and_warms():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), ".binder/postBuild must be executable"
    lines = [
        line.strip()
        for line in post.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    install = next(i for i, line in enumerate(lines) if "pip install" in line)
    # the environment layer holds every dependency: --no-deps keeps pip from touching it
    assert "--no-deps" in lines[install] and lines[install].endswith(" .")
    warm = next(i for i, line in enumerate(lines) if "course_lib data" in line)
    assert install < warm and "--caches fast" in lines[warm]
    subprocess.run(["bash", "-n", str(post)], check=True)


def _repo2docker() -> str | None:
    return os.environ.get("REPO2DOCKER") or shutil.which("repo2docker")


@pytest.mark.skipif(
    _repo2docker() is None, reason="repo2docker is not installed: make binder-check installs it"
)
def test_repo2docker_builds_the_environment_before_copying_the_repository():
    result = subprocess.run(
        [_repo2docker(), "--no-build", "--debug", str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dockerfile = result.stdout + result.stderr
    env_update = dockerfile.find(
        'env update -p ${NB_PYTHON_PREFIX} --file ".binder/environment.yml"'
    )
    copy_repo = dockerfile.find("COPY --chown=0:0 src/ ${REPO_DIR}/")
    post_build = dockerfile.find("RUN ./.binder/postBuild")
    assert env_update != -1, "repo2docker does not install .binder/environment.yml"
    assert copy_repo != -1 and post_build != -1
    assert env_update < copy_repo < post_build, (
        "the environment must be built before the repository is copied"
    )
    assert 'R2D_ENTRYPOINT="${REPO_DIR}/.binder/start"' in dockerfile
