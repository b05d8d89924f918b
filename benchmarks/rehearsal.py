"""Workshop rehearsal: N learners on a real JupyterHub on this machine, measured.

    make rehearsal                                    # 10 learners, notebooks 01 then 13
    python benchmarks/rehearsal.py --learners 4 --notebooks 01 03 --out /tmp/r

JupyterHub (from this Python environment) starts on 127.0.0.1 with
configurable-http-proxy (``npm ci`` in ``benchmarks/hub``), the dummy
authenticator and the simple local-process spawner. N learners then, all at the
same time, log in through the login form, get their servers started, receive the
notebooks and run each one top to bottom through the Jupyter server's REST and
kernel websocket API (``benchmarks/learner.py``), in fast mode unless ``--full``,
with the course's per-user settings (``course_lib.workshop.user_environment``:
one thread per kernel, the shared dataset folder, a cache in each learner's home).
Each learner closes a notebook (shutting its kernel down) before the next one,
unless ``--keep-kernels``.

The report gives, per learner: login and server start time, and per notebook the
time to first output and to finish, the kernel's peak and idle memory and CPU
time, and errors; for the hub: peak memory of the hub, the proxy, the servers and
the kernels, the peak of their sum, and their CPU time. Every wait is bounded
(``--timeout`` for the whole rehearsal), only loopback addresses are used, and
every process started is stopped at the end, also on an error or Ctrl-C.

It writes ``rehearsal.md`` and ``rehearsal.json`` into ``--out`` (default
``benchmarks/``) and, by default, the instructor guide's sizing section
(``benchmarks/sizing.py``). The exit status is 1 when a learner met an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _path in (str(REPO), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from hub import HubError, LocalHub, kill_all  # noqa: E402
from learner import LearnerResult, NotebookRun, learner_session  # noqa: E402
from procmon import MB, ProcessMonitor  # noqa: E402

from course_lib import workshop  # noqa: E402

NOTEBOOKS = REPO / "notebooks"
SERVER_CONFIG = REPO / "deploy" / "jupyter_server_config.json"
DEFAULT_NOTEBOOKS = ("01", "13")


@dataclass
class Report:
    """The rehearsal's measurements (``rehearsal.json`` holds them as they are)."""

    measured: str
    machine: str
    learners: int
    notebooks: list[str]
    mode: str
    threads: int
    wall_s: float
    software: str
    load_before: float
    results: list[LearnerResult]
    totals: dict = field(default_factory=dict)
    data_unchanged: bool | None = None

    @property
    def failed(self) -> list[str]:
        """Every learner's errors, and every notebook a learner did not finish."""
        problems = []
        for result in self.results:
            finished = {run.notebook for run in result.runs if run.finished is not None}
            missing = [n for n in self.notebooks if n not in finished]
            problems += [f"{result.name}: {e}" for e in result.errors]
            if missing and not result.errors:
                problems.append(f"{result.name}: did not finish {', '.join(missing)}")
        return problems

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


def find_notebooks(names) -> list[Path]:
    """Course notebooks by number (``01``), stem or file name, or paths of other notebooks."""
    available = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    found = []
    for name in names:
        if str(name).endswith(".ipynb") and Path(name).is_file():
            found.append(Path(name).resolve())
            continue
        match = [p for p in available if name in (p.name, p.stem, p.name[:2])]
        if not match:
            raise ValueError(f"no notebook {name!r} in notebooks/ (use a number such as 01)")
        found += match
    return found


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``folder`` (to see it unchanged)."""
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def machine(threads: int) -> str:
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        import psutil

        memory = f", {psutil.virtual_memory().total / 2**30:.0f} GB memory"
    except ImportError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({threads} thread{'s' if threads > 1 else ''} per kernel)"
    )


def software() -> str:
    import subprocess

    import jupyterhub
    from hub import proxy_command

    try:
        proxy = subprocess.run(
            [proxy_command(), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError, TypeError):
        proxy = "?"
    return f"JupyterHub {jupyterhub.__version__}, configurable-http-proxy {proxy}"


def run_learners(hub: LocalHub, names: list[str], paths: list[Path], settings: dict):
    """Every learner at the same time, one thread each; their results in order."""
    pool = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="learner")
    try:
        futures = [pool.submit(learner_session, hub, name, paths, settings) for name in names]
        wait_futures(futures, timeout=max(1.0, settings["deadline"] - time.monotonic()) + 120)
        results = []
        for name, future in zip(names, futures, strict=True):
            if future.done():
                results.append(future.result())
            else:
                results.append(LearnerResult(name, error="still running at the time limit"))
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def totals(monitor: ProcessMonitor, wall: float) -> dict:
    """Peak memory (MB) and CPU seconds of the hub, proxy, servers and kernels, and all."""
    out = {"wall_s": wall, "cores": os.cpu_count()}
    for kind, name in (
        ("root", "hub"),
        ("proxy", "proxy"),
        ("server", "servers"),
        ("kernel", "kernels"),
    ):
        group = monitor.processes(kind)
        out[name] = {
            "count": len({s.label or s.pid for s in group}),
            "peak_mb_sum": sum(s.peak_rss for s in group) / MB,
            "peak_mb_max": max((s.peak_rss for s in group), default=0) / MB,
            "cpu_s": sum(s.cpu for s in group),
        }
    everything = monitor.processes()
    out["all"] = {
        "peak_mb": monitor.peak_total_rss / MB,
        "cpu_s": sum(s.cpu for s in everything),
        "processes": len(everything),
    }
    out["all"]["cpu_share"] = out["all"]["cpu_s"] / (wall * (os.cpu_count() or 1))
    return out


def _with_hub(hub: LocalHub, monitor: ProcessMonitor, names, paths, settings, log):
    """Start the hub, let the learners work, stop everything; results and the hub's log."""
    try:
        with hub:
            monitor.add_root(hub.process.pid)
            monitor.start()
            log(f"hub on {hub.url}; {len(names)} learners start")
            results = run_learners(hub, names, paths, settings)
            monitor.sample()
            return results, hub.log_tail(40)
    finally:
        monitor.stop()
        kill_all(p.handle for p in monitor.processes() if p.handle is not None)


def run(
    learners: int = 10,
    notebooks=DEFAULT_NOTEBOOKS,
    *,
    fast: bool = True,
    data_dir: str | Path | None = None,
    threads: int = 1,
    timeout: float = 1800.0,
    cell_timeout: float = 600.0,
    keep_kernels: bool = False,
    monitor: ProcessMonitor | None = None,
    log=print,
) -> Report:
    """Rehearse a workshop of ``learners`` learners; see the module docstring.

    ``monitor``: the process monitor to use (a fresh one by default); afterwards it
    knows every process the rehearsal started.
    """
    from course_lib import config

    if learners < 1:
        raise ValueError(f"learners must be at least 1, not {learners}")
    paths = find_notebooks(notebooks)
    data = Path(data_dir).resolve() if data_dir else config.data_dir()
    environment = workshop.user_environment(str(data), fast=fast, threads=threads)
    before = snapshot(data)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    start = time.monotonic()
    monitor = monitor or ProcessMonitor(interval=0.5)
    settings = dict(
        deadline=start + timeout,
        cell_timeout=cell_timeout,
        keep_kernels=keep_kernels,
        monitor=monitor,
    )
    names = [f"learner{i:02d}" for i in range(1, learners + 1)]
    log(f"rehearsal: {learners} learners, {', '.join(p.stem for p in paths)}, data {data}")
    hub = LocalHub(environment, server_config=SERVER_CONFIG, start_timeout=min(timeout, 600))
    results, hub_log = _with_hub(hub, monitor, names, paths, settings, log)
    wall = time.monotonic() - start
    report = Report(
        measured=dt.date.today().isoformat(),
        machine=machine(threads),
        learners=learners,
        notebooks=[p.stem for p in paths],
        mode="fast" if fast else "full",
        threads=threads,
        wall_s=wall,
        software=software(),
        load_before=load_before,
        results=results,
        totals=totals(monitor, wall),
        data_unchanged=snapshot(data) == before,
    )
    if report.failed:
        log("hub log (last lines):\n" + hub_log)
    return report


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def learner_table(report: Report) -> list[str]:
    """One row per learner: login, server, and per notebook first output, finish, memory."""
    head = ["learner", "login", "server ready"]
    for name in report.notebooks:
        short = name[:2]
        head += [f"{short} first output", f"{short} finished", f"{short} kernel peak"]
    head += ["all done", "server peak", "errors"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in report.results:
        runs = {run.notebook: run for run in result.runs}
        cells = [result.name, _s(result.login_s), _s(result.server_s)]
        for name in report.notebooks:
            run = runs.get(name, NotebookRun(name))
            cells += [_s(run.first_output), _s(run.finished), _mb(run.kernel_peak_mb)]
        errors = "; ".join(result.errors).replace("|", "/") or "none"
        cells += [_s(result.done_s), _mb(result.server_peak_mb), errors]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def hub_table(report: Report) -> list[str]:
    t = report.totals
    rows = ["| processes | count | peak memory | CPU time |", "|---|---|---|---|"]
    for key, label in (
        ("hub", "JupyterHub"),
        ("proxy", "configurable-http-proxy"),
        ("servers", "single-user servers"),
        ("kernels", "kernels"),
    ):
        part = t[key]
        largest = f" (largest {part['peak_mb_max']:,.0f} MB)" if part["count"] > 1 else ""
        rows.append(
            f"| {label} | {part['count']} | {part['peak_mb_sum']:,.0f} MB"
            f"{' summed' if part['count'] > 1 else ''}{largest} | {part['cpu_s']:,.0f} s |"
        )
    everything = t["all"]
    rows.append(
        f"| all at once (peak of the sum) | {everything['processes']} | "
        f"{everything['peak_mb'] / 1024:,.2f} GB | {everything['cpu_s']:,.0f} s "
        f"({everything['cpu_share']:.0%} of {t['cores']} cores over {t['wall_s']:.0f} s) |"
    )
    return rows


def idle_lines(report: Report) -> list[str]:
    lines = []
    for name in report.notebooks:
        idle = [
            r.kernel_idle_mb
            for res in report.results
            for r in res.runs
            if r.notebook == name and r.kernel_idle_mb
        ]
        if idle:
            lines.append(f"- {name}: {_mb(sorted(idle)[len(idle) // 2])} (median over learners)")
    return lines


def markdown(report: Report) -> str:
    finished = "all learners finished" if not report.failed else f"{len(report.failed)} problems"
    unchanged = {True: "unchanged", False: "CHANGED", None: "not checked"}[report.data_unchanged]
    lines = [
        f"Measured {report.measured} on {report.machine}; {report.software}.",
        "",
        f"{report.learners} learners at the same time, each running "
        f"{' then '.join(report.notebooks)} in {report.mode} mode "
        f"({report.threads} thread per kernel): {finished} in {report.wall_s:.0f} s. "
        "Times per notebook count from opening it (kernel start included); *all done* "
        "counts from the learner's login. Load average before the start: "
        f"{report.load_before:.1f}.",
        "",
        *learner_table(report),
        "",
        "#### The hub",
        "",
        *hub_table(report),
        "",
        "Memory an idle kernel still holds after its notebook finished (what a kernel left "
        "running keeps):",
        "",
        *idle_lines(report),
        "",
        f"The shared dataset folder: {unchanged} after the rehearsal.",
    ]
    if report.failed:
        lines += ["", "Problems:", "", *[f"- {p}" for p in report.failed]]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", "-n", type=int, default=10, help="learners (default 10)")
    parser.add_argument(
        "--notebooks",
        nargs="+",
        default=list(DEFAULT_NOTEBOOKS),
        help="notebooks each learner runs, in order (default: 01 13)",
    )
    parser.add_argument("--full", action="store_true", help="full mode (default: fast mode)")
    parser.add_argument("--threads", type=int, default=1, help="threads per kernel (default 1)")
    parser.add_argument("--data-dir", help="the shared dataset folder (default: COURSE_DATA_DIR)")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds for the whole rehearsal (default 1800)"
    )
    parser.add_argument("--cell-timeout", type=float, default=600, help="seconds per cell")
    parser.add_argument(
        "--keep-kernels",
        action="store_true",
        help="leave each notebook's kernel running, as learners often do",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE,
        help="folder for rehearsal.md and rehearsal.json (default: benchmarks/)",
    )
    parser.add_argument(
        "--no-docs",
        action="store_true",
        help="do not regenerate the instructor guide's sizing section",
    )
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        report = run(
            args.learners,
            args.notebooks,
            fast=not args.full,
            data_dir=args.data_dir,
            threads=args.threads,
            timeout=args.timeout,
            cell_timeout=args.cell_timeout,
            keep_kernels=args.keep_kernels,
        )
    except KeyboardInterrupt:
        print("rehearsal interrupted; every process it started is stopped", file=sys.stderr)
        return 130
    except (HubError, ValueError) as error:
        print(f"rehearsal failed: {error}", file=sys.stderr)
        return 1
    text = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rehearsal.md").write_text(text)
    (args.out / "rehearsal.json").write_text(report.to_json())
    print(text)
    if not args.no_docs and not report.failed:
        import sizing

        try:
            print(f"sizing: {sizing.update()}")
        except sizing.SizingError as error:
            print(f"sizing not updated: {error}", file=sys.stderr)
    return 1 if report.failed else 0


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
