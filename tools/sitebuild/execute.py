"""Executing one notebook for the site, in a child process with time limits.

The child runs the notebook with nbconvert's ExecutePreprocessor (nbclient) and,
after every code cell, runs a hidden request in the same kernel (``silent``: no
output, no execution count) that

- draws every slider demo created so far by ``course_lib.widgets.interact`` at a
  grid of positions of its main control (``course_lib.widgets.export_frames``:
  PNG frames and ``manifest.json`` in ``<export>/frames/``), right after the cell
  that made it, before later cells can change what it draws;
- saves the claims checked so far (``course_lib.claims.checked()``) in
  ``<export>/claims.json``, so a failing claim is listed too.

The time spent there is written to ``<export>/timing.json`` and not counted as the
notebook's run time.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from queue import Empty

from .notebooks import BuildError

#: Seconds allowed for one cell, and for a whole notebook, per mode. Fast mode needs
#: well under a minute per notebook; full mode trains for real on a CPU.
CELL_TIMEOUT = {"fast": 300, "full": 3600}
NOTEBOOK_TIMEOUT = {"fast": 900, "full": 4 * 3600}

_EXPORT_CODE = """\
def _course_site_export(folder, dpi):
    import json, sys
    from pathlib import Path
    widgets = sys.modules.get("course_lib.widgets")
    if widgets is not None and widgets.demos():
        widgets.export_frames(Path(folder) / "frames", dpi=dpi)
    claims = sys.modules.get("course_lib.claims")
    if claims is not None:
        Path(folder, "claims.json").write_text(json.dumps(claims.checked()), encoding="utf-8")
_course_site_export({folder!r}, {dpi!r})
del _course_site_export
"""


class SiteExportError(RuntimeError):
    """Drawing the frames of a slider demo, or saving the claims, failed in the kernel."""


def kernel_env(tmp: Path, fast: bool | None) -> dict[str, str]:
    """The environment the kernels see: this Python's kernel, inline figures, the mode."""
    env = dict(os.environ)
    # A headless MPLBACKEND (as set by test runners) would turn every figure into text;
    # kernels must draw inline as in JupyterLab. Only this environment's kernels count.
    for name in ("MPLBACKEND", "JUPYTER_PATH"):
        env.pop(name, None)
    env["JUPYTER_DATA_DIR"] = str(tmp / "jupyter-data")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "jupyter-runtime")
    if fast is not None:
        env["COURSE_FAST"] = "1" if fast else "0"
    return env


def execute(
    source: Path,
    target: Path,
    export: Path,
    *,
    env: dict[str, str],
    cell_timeout: float,
    notebook_timeout: float,
    frame_dpi: float | None = None,
) -> float:
    """Execute ``source`` into ``target`` in a child process; return its run time.

    The run time is the child's wall time (kernel start included) less the time
    spent drawing frames. Raises :class:`BuildError` when a cell raises (``target``
    then holds the notebook up to the error) or when the notebook runs out of time.
    """
    script = Path(__file__).resolve().parent.parent / "build_site.py"
    command = [sys.executable, str(script), "--execute-one", str(source), str(target)]
    command += ["--export-dir", str(export), "--cell-timeout", str(cell_timeout)]
    if frame_dpi:
        command += ["--frame-dpi", str(frame_dpi)]
    verdict_file = target.with_suffix(".verdict.txt")
    log_file = target.with_suffix(".log")
    start = time.monotonic()
    # The child prints its verdict on stdout; kernel and client logging go to stderr.
    # Files rather than pipes: a hung kernel that outlives the child cannot block reading.
    with open(verdict_file, "w") as out, open(log_file, "w") as err:
        process = subprocess.Popen(command, cwd=target.parent, env=env, stdout=out, stderr=err)
        try:
            process.wait(timeout=notebook_timeout)
        except subprocess.TimeoutExpired:
            # The kernel watches its parent (JPY_PARENT_PID) and exits when it is gone.
            process.kill()
            process.wait()
            raise BuildError(
                f"{source.name} did not finish within {notebook_timeout:.0f} s "
                "(the kernel hung or the notebook is far slower than expected); stopped it"
            ) from None
    seconds = time.monotonic() - start - export_seconds(export)
    if process.returncode != 0:
        verdict = verdict_file.read_text(errors="replace").strip()
        log = log_file.read_text(errors="replace").strip()
        detail = verdict or "\n".join(log.splitlines()[-30:])
        raise BuildError(f"{source.name} failed after {seconds:.0f} s: {detail}")
    return seconds


def export_seconds(export: Path) -> float:
    """Seconds the child spent drawing frames and saving claims (0 when unknown)."""
    try:
        return float(json.loads((export / "timing.json").read_text())["export_seconds"])
    except (OSError, ValueError, KeyError):
        return 0.0


# --------------------------------------------------------------------------- the child


def _poll_in_steps(client, step: float = 0.5) -> None:
    """Make the kernel client's message waits re-check their socket every ``step`` seconds.

    The asyncio ZMQ sockets that nbclient waits on can miss the wake-up for a message
    that has already arrived; the wait then lasts until its time-out (the whole cell
    time-out for an execute reply, for ever for output) although both processes are
    idle. Polling again after a short step finds such a message at once.
    """
    for channel in (client.shell_channel, client.iopub_channel):
        channel.get_msg = _stepwise(channel.get_msg, step)


def _stepwise(get_msg, step: float):
    async def get_msg_in_steps(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = step if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await get_msg(timeout=min(step, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_in_steps


class HiddenExport:
    """The ``on_cell_executed`` hook: frames and claims saved after every code cell."""

    def __init__(self, processor, folder: Path, dpi: float | None):
        self.processor = processor
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.code = _EXPORT_CODE.format(folder=str(folder), dpi=dpi)
        self.seconds = 0.0

    async def __call__(self, cell=None, cell_index=None, execute_reply=None) -> None:
        start = time.monotonic()
        try:
            content = await self._run()
        finally:
            self.seconds += time.monotonic() - start
        if content.get("status") != "ok":
            raise SiteExportError(
                f"after cell {cell_index}: {content.get('ename', 'no reply')}: "
                f"{content.get('evalue', 'the kernel did not answer')}"
            )

    async def _run(self) -> dict:
        client = self.processor.kc
        for _ in range(20):
            msg_id = client.execute(self.code, silent=True, store_history=False)
            reply = await self.processor.async_wait_for_reply(msg_id)
            content = reply["content"] if reply else {}
            # Right after a cell that raised, the kernel may still abort queued requests.
            if content.get("status") != "aborted":
                return content
            await asyncio.sleep(0.1)
        return content

    def write_timing(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        timing = {"export_seconds": round(self.seconds, 3)}
        (self.folder / "timing.json").write_text(json.dumps(timing), encoding="utf-8")


def execute_one(source: Path, target: Path, export: Path, cell_timeout: float, dpi) -> int:
    """Child process: run one notebook with nbclient and write it with its outputs."""
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbconvert.filters import strip_ansi
    from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

    nb = nbformat.read(source, as_version=4)
    processor = ExecutePreprocessor(
        timeout=cell_timeout,
        kernel_name="python3",
        store_widget_state=True,
        startup_timeout=180,
    )
    hidden = HiddenExport(processor, export, dpi)
    processor.on_notebook_start = lambda notebook: _poll_in_steps(processor.kc)
    processor.on_cell_executed = hidden
    status = 0
    try:
        processor.preprocess(nb, {"metadata": {"path": str(target.parent)}})
    except CellTimeoutError as error:
        print(f"a cell ran longer than {cell_timeout:.0f} s and was stopped. {error}")
        status = 3
    except DeadKernelError as error:
        print(f"the kernel died: {error}")
        status = 4
    except CellExecutionError as error:
        print(f"a cell raised {error.ename}: {error.evalue}\n{strip_ansi(error.traceback)}")
        status = 2
    except SiteExportError as error:
        print(f"drawing the slider demos' frames failed {error}")
        status = 5
    hidden.write_timing()
    nbformat.write(nb, target)
    return status
