"""Shared fixtures: headless plotting, a scratch cache, and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _scratch_cache(tmp_path_factory, monkeypatch):
    """Tests never write into the real cache directory."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def http_root(tmp_path):
    """A folder served over HTTP on 127.0.0.1; yields (folder, base_url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


_NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Add up the time of every cell of each notebook run by nbval."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] = _NOTEBOOK_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _NOTEBOOK_SECONDS:
        terminalreporter.section("notebook run times (all cells, kernel start included)")
        for path, seconds in sorted(_NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{seconds:6.1f} s  {path}")


def data_dir_or_skip() -> Path:
    """The real dataset samples, when the machine has them (CI and developers do)."""
    value = os.environ.get("COURSE_DATA_DIR")
    path = Path(value) if value else SHARED_DATA
    if not (path / "cifar-10-batches-py").is_dir():
        message = "no dataset folder: set COURSE_DATA_DIR to run tests on the real samples"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has the samples: never skip there
        pytest.skip(message)
    return path


@pytest.fixture
def real_data(monkeypatch) -> Path:
    """Point the loaders at the real dataset samples (skipped where there are none, never in CI)."""
    path = data_dir_or_skip()
    monkeypatch.setenv("COURSE_DATA_DIR", str(path))
    return path
