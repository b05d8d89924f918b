"""Shared fixtures: headless plotting, scratch data and cache folders, a local HTTP server.

Tests never write into the repository's data/ folder and never reach the internet: the
data folder is an empty scratch folder unless COURSE_DATA_DIR names the dataset samples
(tests that need them ask for the ``real_data`` fixture), and downloads may only reach
servers on 127.0.0.1 that the tests start themselves.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import urllib.parse
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: The dataset samples named by COURSE_DATA_DIR when the test session started (or None).
SAMPLES = Path(os.environ["COURSE_DATA_DIR"]) if os.environ.get("COURSE_DATA_DIR") else None


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(autouse=True)
def _scratch_folders(tmp_path_factory, monkeypatch):
    """Tests never write into the real cache or data folders, nor download from the internet."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    from course_lib import download

    real_urlopen = download.urllib.request.urlopen

    def loopback_only(url, *args, **kwargs):
        host = urllib.parse.urlsplit(getattr(url, "full_url", url)).hostname
        if host not in {"127.0.0.1", "localhost"}:
            raise AssertionError(f"a test tried to download from {url}: tests stay offline")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(download.urllib.request, "urlopen", loopback_only)


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
    """The real dataset samples named by COURSE_DATA_DIR (CI and developers have them)."""
    if SAMPLES is None or not (SAMPLES / "cifar-10-batches-py").is_dir():
        message = "no dataset samples: set COURSE_DATA_DIR to run the tests on the real data"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has the samples: never skip there
        pytest.skip(message)
    return SAMPLES


@pytest.fixture
def real_data(monkeypatch) -> Path:
    """Point the loaders at the real dataset samples (skipped where there are none, never in CI)."""
    path = data_dir_or_skip()
    monkeypatch.setenv("COURSE_DATA_DIR", str(path))
    return path


def assert_feedback(id: str, answer, *fragments: str, status: str = "wrong"):
    """Check ``answer`` for exercise ``id``: the feedback has ``status``, each fragment and a hint."""
    from course_lib import exercises

    result = exercises.evaluate(id, answer)
    assert result.status == status, result.message
    for fragment in fragments:
        assert fragment in result.message, result.message
    if status != "correct":
        assert "Hint:" in result.message, result.message
    return result


@pytest.fixture
def one_thread():
    """One torch thread for the test: small models gain nothing from threads, and the
    suite runs in parallel workers (pytest-xdist) on few cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
