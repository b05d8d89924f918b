"""The workshop rehearsal and the measurements behind the hub sizing (``benchmarks/``).

The process monitor, the notebook measurements of ``make bench`` and the sizing
rules are tested on small processes and notebooks made here. The rehearsal itself
(``test_rehearsal_two_learners``, pytest marker ``hub``) starts a real JupyterHub
with configurable-http-proxy on 127.0.0.1 and has two learners run notebook 01 and a
tiny failing notebook at the same time; it is skipped where JupyterHub or the proxy
is not installed, except in CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import hub  # noqa: E402
import learner  # noqa: E402
import notebook_usage  # noqa: E402
import procmon  # noqa: E402
import rehearsal  # noqa: E402
import sizing  # noqa: E402

ALLOCATE_AND_SPIN = (
    "import time\n"
    "block = bytearray(250 * 2**20)\n"
    "block[::4096] = b'x' * len(block[::4096])\n"
    "start = time.process_time()\n"
    "while time.process_time() - start < 1.0:\n"
    "    pass\n"
    "time.sleep(30)\n"
)


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.fixture
def child():
    """Start a Python child process running ``code`` with extra arguments; stopped after."""
    started = []

    def start(code: str, *args: str) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", code, *args])
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


# --------------------------------------------------------------------------- monitor


def test_monitor_measures_peak_memory_and_cpu_time(child):
    process = child(ALLOCATE_AND_SPIN)
    with procmon.ProcessMonitor([process.pid], interval=0.1) as monitor:
        assert procmon.wait_for(lambda: monitor.usage().cpu >= 1.0, timeout=30)
        monitor.sample()
    usage = monitor.usage()
    assert usage.peak_rss >= 250 * procmon.MB
    assert usage.peak_rss < 1000 * procmon.MB
    assert 1.0 <= usage.cpu < 10
    (stat,) = monitor.processes()
    assert stat.kind == "root"
    assert monitor.peak_total_rss >= 250 * procmon.MB


def test_monitor_classifies_kernels_and_their_children(child):
    kernel_id = str(uuid.uuid4())
    sleeper = "import time; time.sleep(60)"
    fake_kernel = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {sleeper!r}])\n"
        "time.sleep(60)\n"
    )
    launcher = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {fake_kernel!r}, '-m', 'ipykernel_launcher', "
        f"'-f', '/x/kernel-{kernel_id}.json'])\n"
        "time.sleep(60)\n"
    )
    root = child(launcher)
    monitor = procmon.ProcessMonitor([root.pid], interval=0.1)
    try:
        assert procmon.wait_for(lambda: (monitor.sample(), len(monitor.processes()) >= 3)[1], 30)
        kinds = sorted((s.kind, s.label) for s in monitor.processes())
        assert kinds == [("kernel", kernel_id), ("kernel", kernel_id), ("root", "")]
        assert monitor.usage("kernel", kernel_id).peak_rss > 0
    finally:
        stopped = hub.kill_all([s.handle for s in monitor.processes()])
    assert len(stopped) == 3
    monitor.sample()
    assert not any(s.alive for s in monitor.processes())


def test_kill_all_stops_processes_and_spares_reused_pids(child):
    import psutil

    process = child("import time; time.sleep(60)")
    handle = psutil.Process(process.pid)
    assert hub.kill_all([handle], grace=5) == [process.pid]
    assert process.wait(timeout=10) is not None
    assert hub.kill_all([handle]) == []  # already gone: nothing to do


# --------------------------------------------------------------------------- bench


def test_measure_notebook_memory_and_cpu(tmp_path):
    path = _notebook(
        tmp_path / "tiny.ipynb",
        "import numpy as np\nblock = np.ones(300 * 2**20 // 8)\nprint(block.sum())",
        "import time\nstart = time.process_time()\n"
        "while time.process_time() - start < 1.0:\n    pass",
    )
    usage = notebook_usage.measure(path, fast=True, threads=1)
    assert usage.notebook == "tiny" and usage.mode == "fast"
    assert usage.peak_mb >= 300
    assert usage.cpu_s >= 1.0
    assert usage.seconds >= usage.cpu_s * 0.5


def test_measure_reports_the_failing_cell(tmp_path):
    path = _notebook(tmp_path / "bad.ipynb", "x = 1", "1 / 0")
    with pytest.raises(notebook_usage.CellError, match="code cell 2 raised ZeroDivisionError"):
        notebook_usage.measure(path, fast=True)


def test_measure_stops_a_cell_at_its_time_limit(tmp_path):
    path = _notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    start = time.monotonic()
    with pytest.raises(notebook_usage.NotebookError, match="code cell 1 ran longer than 2 s"):
        notebook_usage.measure(path, fast=True, cell_timeout=2)
    assert time.monotonic() - start < 30


def test_kernel_environment_sets_mode_threads_and_inline_figures(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env = notebook_usage.kernel_environment(fast=False, threads=1, cache_dir=Path("/c"))
    assert env["COURSE_FAST"] == "0" and "MPLBACKEND" not in env
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["COURSE_CACHE_DIR"] == str(Path("/c"))


def test_each_notebook_starts_with_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "shared-cache"))
    path = _notebook(
        tmp_path / "cache.ipynb",
        "import os, pathlib\n"
        "cache = pathlib.Path(os.environ['COURSE_CACHE_DIR'])\n"
        f"assert cache != pathlib.Path({str(tmp_path / 'shared-cache')!r}), cache\n"
        "assert not cache.exists() or not any(cache.iterdir()), list(cache.iterdir())",
    )
    notebook_usage.measure(path, fast=True)


# --------------------------------------------------------------------------- learner


def test_decode_reads_text_and_binary_kernel_messages():
    from jupyter_server.services.kernels.connection.base import serialize_binary_message

    message = {"header": {"msg_type": "comm_msg"}, "content": {"x": 1}, "channel": "iopub"}
    assert learner.decode(json.dumps(message)) == message
    binary = serialize_binary_message({**message, "buffers": [b"\x00\x01", b"abc"]})
    assert learner.decode(binary) == message


def test_execute_request_is_a_kernel_protocol_message():
    request = learner.execute_request("print(1)", "session-1", "learner01")
    assert request["header"]["msg_type"] == "execute_request"
    assert request["channel"] == "shell"
    assert request["content"]["code"] == "print(1)"
    assert request["content"]["allow_stdin"] is False
    other = learner.execute_request("print(1)", "session-1", "learner01")
    assert other["header"]["msg_id"] != request["header"]["msg_id"]


def test_find_notebooks_by_number_and_path(tmp_path):
    extra = _notebook(tmp_path / "extra.ipynb", "1")
    found = rehearsal.find_notebooks(["01", "13_cifar10_cnn", str(extra)])
    assert [p.name for p in found] == [
        "01_intro_weights.ipynb",
        "13_cifar10_cnn.ipynb",
        "extra.ipynb",
    ]
    with pytest.raises(ValueError, match="no notebook '99'"):
        rehearsal.find_notebooks(["99"])


# --------------------------------------------------------------------------- sizing


def _records(on_samples=True) -> tuple[dict, dict]:
    fast = {
        "01_a": {"seconds": 5, "peak_mb": 400, "cpu_s": 6},
        "02_b": {"seconds": 9, "peak_mb": 600, "cpu_s": 30},
        "03_c": {"seconds": 7, "peak_mb": 500, "cpu_s": 10},
    }
    full = {name: {**m, "peak_mb": m["peak_mb"] + 200} for name, m in fast.items()}
    notebooks = {
        "measured": "2026-01-01",
        "machine": "a test machine",
        "threads": 1,
        "data": "5,085 CIFAR-10 ... (samples of the datasets)"
        if on_samples
        else "50,000 CIFAR-10 ... (the complete datasets)",
        "modes": {"fast": fast, "full": full},
    }
    run = {
        "notebook": "01_a",
        "first_output": 2.0,
        "finished": 6.0,
        "kernel_peak_mb": 400,
        "kernel_idle_mb": 380,
    }
    results = [{"name": f"l{i}", "runs": [run], "done_s": 8.0 + i} for i in range(2)]
    part = {"count": 1, "peak_mb_sum": 100.0, "peak_mb_max": 100.0, "cpu_s": 1.0}
    rehearsal_record = {
        "measured": "2026-01-02",
        "learners": 2,
        "notebooks": ["01_a"],
        "mode": "fast",
        "software": "JupyterHub x",
        "results": results,
        "totals": {
            "cores": 2,
            "hub": part,
            "proxy": part,
            "kernels": part,
            "servers": {**part, "peak_mb_max": 150.0},
            "all": {"peak_mb": 1200.0, "cpu_s": 20.0},
        },
    }
    return notebooks, rehearsal_record


def test_sizing_rules():
    result = sizing.compute(*_records())
    # guarantee: server 150 + median full kernel 700 = 850 MB -> 1 GB (steps of 0.25 GB)
    assert result.guarantee_gb == 1.0
    # limit: 150 + heaviest 800 + median 700 + complete CIFAR-10 586 = 2236 MB -> 2.5 GB
    assert result.limit_gb == 2.5
    # CPU: the heaviest fast notebook (30 CPU s) for everyone within 120 s -> 0.25 core each
    assert result.cpu_guarantee == 0.25
    assert result.values == {
        "memory.guarantee": "1G",
        "memory.limit": "2.5G",
        "cpu.guarantee": "0.25",
        "cpu.limit": "1",
    }
    complete = sizing.compute(*_records(on_samples=False))
    assert complete.limit_gb == 2.0  # without the margin for the complete data: 1650 MB


def test_sizing_needs_both_measurements(tmp_path):
    notebooks, record = _records()
    with pytest.raises(sizing.SizingError, match="no fast-mode measurements: run `make bench`"):
        sizing.compute({"modes": {}}, record)
    record["totals"]["servers"] = {}
    with pytest.raises(sizing.SizingError, match="no server measurements: run `make rehearsal`"):
        sizing.compute(notebooks, record)
    with pytest.raises(sizing.SizingError, match="notebooks.json is missing: run `make bench`"):
        sizing.load(tmp_path / "notebooks.json")
    with pytest.raises(sizing.SizingError, match="rehearsal.json is missing: run `make rehearsal`"):
        sizing.load(tmp_path / "rehearsal.json")


def test_sizing_rewrites_marked_values_and_the_section():
    text = "a:\n  guarantee: 9G  # sizing: memory.guarantee\n  other: 9G  # not marked\n"
    out = sizing.apply_marked(text, {"memory.guarantee": "1.25G"})
    assert out == "a:\n  guarantee: 1.25G  # sizing: memory.guarantee\n  other: 9G  # not marked\n"
    shell = "tljh-config set limits.memory 2G  # sizing: memory.limit\n"
    assert "limits.memory 3G  #" in sizing.apply_marked(shell, {"memory.limit": "3G"})
    doc = f"intro\n{sizing.START}\nold\n{sizing.END}\nrest\n"
    assert (
        sizing.replace_section(doc, "new\n") == f"intro\n{sizing.START}\nnew\n{sizing.END}\nrest\n"
    )
    with pytest.raises(sizing.SizingError, match="markers"):
        sizing.replace_section("no markers", "new\n")


def test_sizing_section_states_rules_and_numbers():
    text = sizing.section(sizing.compute(*_records()))
    assert "| 02_b | 600 MB | 30 s | 800 MB | 30 s |" in text
    assert "| memory limit | 2.5G |" in text and "| CPU guarantee | 0.25 core |" in text
    assert "| 100 | 100 GB | 250 GB | 25 |" in text
    assert (
        "first output of 01 after 2 s" in text and "of its peak in the rehearsal: 01_a 95%" in text
    )
    # day 1 here: 01, 02, 03 left running = 600 + 800 + 700 MB + the server 150 MB
    assert "holds about 2.2 GB, within the limit of 2.5G" in text


# --------------------------------------------------------------------------- the rehearsal


def _tools_or_skip():
    missing = hub.missing_tools()
    if missing:
        message = "the rehearsal needs " + "; ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs both: never skip there
        pytest.skip(message)


@pytest.mark.hub
def test_rehearsal_two_learners(real_data, tmp_path):
    _tools_or_skip()
    failing = _notebook(tmp_path / "failing.ipynb", "print('before')", "1 / 0", "print('never')")
    dying = _notebook(tmp_path / "dying.ipynb", "import os\nos._exit(1)", "print('never')")
    monitor = procmon.ProcessMonitor(interval=0.5)
    start = time.monotonic()
    report = rehearsal.run(
        2,
        ["01", str(failing), str(dying)],
        data_dir=real_data,
        timeout=240,
        cell_timeout=120,
        monitor=monitor,
        log=lambda message: None,
    )
    assert time.monotonic() - start < 240
    assert [r.name for r in report.results] == ["learner01", "learner02"]
    for result in report.results:
        first, bad, dead = result.runs
        assert not first.error, first.error
        assert 0 < first.first_output < first.finished < result.done_s
        assert first.cells_run == first.cells > 5
        assert first.kernel_peak_mb > 100 and first.kernel_cpu_s > 0.5
        assert result.server_peak_mb > 30 and result.login_s > 0 and result.server_s > 0
        # A cell that raises: its output came, the error names the cell, the rest did not run.
        assert bad.first_output is not None and bad.finished is None
        assert bad.error == "code cell 2: ZeroDivisionError: division by zero"
        assert bad.cells_run == 1
        # A kernel that dies (as one that passes its memory limit does) is reported at once.
        assert dead.error.startswith("the kernel died") and dead.cells_run == 0
    assert len(report.failed) == 4
    totals = report.totals
    assert totals["hub"]["count"] == 1 and totals["proxy"]["count"] == 1
    # Six kernels ran; a kernel that dies in its first cell may live less than one
    # sampling interval, so the monitor is sure to have seen the four others only.
    assert totals["servers"]["count"] == 2 and 4 <= totals["kernels"]["count"] <= 6
    assert totals["all"]["processes"] >= 8  # hub, proxy, 2 servers, at least 4 kernels
    assert totals["all"]["peak_mb"] >= 0.9 * totals["kernels"]["peak_mb_max"]
    assert report.data_unchanged is True
    # Everything the rehearsal started is stopped.
    assert monitor.processes() and monitor.live_pids() == []
    table = rehearsal.markdown(report)
    assert table.count("| learner0") == 2 and "ZeroDivisionError" in table
    json.loads(report.to_json())


def test_sizing_names_runs_that_stopped_at_an_error():
    notebooks, record = _records()
    notebooks["modes"]["full"]["03_c"]["error"] = "03_c: code cell 9 raised AssertionError: x"
    notebooks["modes"]["fast"]["01_a"] = {"error": "01_a: the kernel did not start"}
    text = sizing.section(sizing.compute(notebooks, record))
    assert "| 03_c | 500 MB | 10 s | 700 MB (failed) | 10 s |" in text
    assert "| 01_a | - | - | 600 MB | 6 s |" in text
    assert "stopped at an error" in text and "03_c (full: code cell 9 raised" in text
