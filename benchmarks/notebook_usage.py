"""Run time, kernel peak memory and kernel CPU time of each notebook (for ``make bench``).

Each notebook runs top to bottom in a fresh IPython kernel of this environment
(started by jupyter_client, working in a temporary folder with an empty cache,
drawing figures inline as in JupyterLab), cell after cell as "Run All" does: a
learner's first run on a hub, where every learner has a cache of their own. While it runs, a
:class:`procmon.ProcessMonitor` samples the kernel (and any process it starts):
its peak resident memory (Linux's high-water mark) and its CPU time (user +
system, over all threads). The run time counts from the kernel's start to the
last cell's reply. A cell that raises or runs out of time stops the notebook
with :class:`NotebookError`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from procmon import MB, ProcessMonitor


class NotebookError(RuntimeError):
    """A notebook raised, timed out or its kernel died."""


class CellError(NotebookError):
    """A cell raised an exception; ``usage`` holds what the notebook used up to it."""

    usage: NotebookUsage | None = None


@dataclass
class NotebookUsage:
    """What one notebook cost in one mode."""

    notebook: str
    mode: str
    seconds: float
    peak_mb: float
    cpu_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def kernel_environment(
    fast: bool, threads: int | None = None, cache_dir: Path | None = None
) -> dict[str, str]:
    """This process's environment for a kernel: the mode, inline figures, optional threads
    and cache folder."""
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # a headless backend from a test runner: kernels draw inline
    env["COURSE_FAST"] = "1" if fast else "0"
    if cache_dir is not None:
        env["COURSE_CACHE_DIR"] = str(cache_dir)
    if threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    return env


def code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    ]


def _run_cells(client, codes: list[str], name: str, cell_timeout: float, deadline: float):
    for index, code in enumerate(codes, 1):
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotebookError(f"{name} ran out of time before code cell {index}")
        try:
            reply = client.execute_interactive(
                code,
                allow_stdin=False,
                timeout=min(cell_timeout, left),
                output_hook=lambda msg: None,
            )
        except TimeoutError:
            raise NotebookError(
                f"{name}: code cell {index} ran longer than {min(cell_timeout, left):.0f} s"
            ) from None
        content = reply["content"]
        if content.get("status") != "ok":
            raise CellError(
                f"{name}: code cell {index} raised {content.get('ename')}: {content.get('evalue')}"
            )


def measure(
    path: Path,
    *,
    fast: bool,
    threads: int | None = None,
    cell_timeout: float = 3600,
    notebook_timeout: float = 4 * 3600,
) -> NotebookUsage:
    """Run one notebook in a fresh kernel; its run time, kernel peak memory and CPU time."""
    from jupyter_client.manager import KernelManager

    codes = code_cells(path)
    with (
        tempfile.TemporaryDirectory(prefix="course-bench-") as work,
        open(Path(work) / "kernel.log", "w+") as log,
    ):
        manager = KernelManager(kernel_name="python3")
        start = time.monotonic()
        env = kernel_environment(fast, threads, cache_dir=Path(work) / "cache")
        manager.start_kernel(cwd=work, env=env, stderr=log)
        monitor = ProcessMonitor([manager.provisioner.pid], interval=0.25)
        client = manager.blocking_client()
        try:
            monitor.start()
            client.start_channels()
            client.wait_for_ready(timeout=180)
            _run_cells(client, codes, path.stem, cell_timeout, start + notebook_timeout)
            seconds = time.monotonic() - start
            monitor.sample()
        except CellError as error:
            monitor.sample()
            error.usage = _usage(path, fast, time.monotonic() - start, monitor)
            raise
        except RuntimeError as error:  # timed out, or the kernel died or never answered
            log.seek(0)
            tail = "\n".join(log.read().splitlines()[-15:])
            raise NotebookError(f"{path.stem}: {error}\nkernel log:\n{tail}") from None
        finally:
            monitor.stop()
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    return _usage(path, fast, seconds, monitor)


def _usage(path: Path, fast: bool, seconds: float, monitor: ProcessMonitor) -> NotebookUsage:
    usage = monitor.usage()
    return NotebookUsage(
        path.stem, "fast" if fast else "full", seconds, usage.peak_rss / MB, usage.cpu
    )
