"""Memory and CPU time of a tree of processes, sampled in the background.

A :class:`ProcessMonitor` walks the processes under its root processes every
``interval`` seconds and keeps, for each process it saw:

* its *peak* resident memory: on Linux the kernel's own high-water mark
  (``VmHWM`` in ``/proc/PID/status``), so a peak between two samples is not
  missed; elsewhere the largest resident size it sampled;
* its CPU time (user + system) at the last sample: a process that exits loses
  at most one interval of CPU time;
* what it is: ``kernel`` (an IPython kernel, labelled with its kernel id),
  ``server`` (a single-user Jupyter server, labelled with its user), ``proxy``
  (configurable-http-proxy), ``root`` (a root process) or ``other``. The
  children of a kernel count as part of it.

It also keeps the peak of the *total* resident memory of the tree (the sum over
its processes at one sample). The benchmarks use it for each notebook's kernel
(``make bench``) and for a whole JupyterHub (``make rehearsal``).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

import psutil

MB = 1024 * 1024
_KERNEL_FILE = re.compile(r"kernel-([0-9a-f-]{36})\.json")


@dataclass
class ProcStat:
    """What the monitor knows about one process."""

    pid: int
    kind: str
    label: str = ""
    peak_rss: int = 0
    rss: int = 0
    cpu: float = 0.0
    alive: bool = True
    handle: psutil.Process | None = field(default=None, repr=False)


@dataclass
class Usage:
    """Memory and CPU of a group of processes (e.g. one kernel and its children)."""

    peak_rss: int
    rss: int
    cpu: float


def classify(proc: psutil.Process, parent: ProcStat | None) -> tuple[str, str]:
    """``(kind, label)`` of a process from its arguments (see the module docstring)."""
    if parent is not None and parent.kind == "kernel":
        return "kernel", parent.label
    try:
        argv = proc.cmdline()
    except (psutil.Error, OSError):
        return "other", ""
    names = [arg.replace("\\", "/").rsplit("/", 1)[-1] for arg in argv]
    pairs = list(pairwise(argv))
    if ("-m", "ipykernel_launcher") in pairs or ("-m", "ipykernel") in pairs:
        kernel_file = next((b for a, b in pairs if a == "-f"), "")
        match = _KERNEL_FILE.search(kernel_file)
        return "kernel", match.group(1) if match else ""
    if "jupyterhub-singleuser" in names:
        try:
            user = proc.environ().get("JUPYTERHUB_USER", "")
        except (psutil.Error, OSError):
            user = ""
        return "server", user
    if "configurable-http-proxy" in names:
        return "proxy", ""
    return "other", ""


def peak_rss(proc: psutil.Process, rss: int) -> int:
    """The process's peak resident memory so far (``VmHWM`` where Linux provides it)."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    return rss


class ProcessMonitor:
    """Samples the processes under ``roots`` every ``interval`` seconds (a daemon thread)."""

    def __init__(self, roots: Iterable[int] = (), interval: float = 0.5) -> None:
        self.interval = interval
        self._roots: list[int] = list(roots)
        self._stats: dict[tuple[int, float], ProcStat] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_total_rss = 0
        self.samples = 0

    def add_root(self, pid: int) -> None:
        with self._lock:
            self._roots.append(pid)

    def __enter__(self) -> ProcessMonitor:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="process-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (after one last sample)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def _tree(self) -> list[psutil.Process]:
        """Every live process under the roots, parents before their children."""
        found = []
        for pid in list(self._roots):
            try:
                root = psutil.Process(pid)
                found += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        return found

    def sample(self) -> None:
        """Take one sample now (the thread does this every ``interval`` seconds)."""
        with self._lock:
            seen, total = set(), 0
            for proc in self._tree():
                stat = self._stat(proc)
                if stat is None or stat.pid in seen:
                    continue
                seen.add(stat.pid)
                if self._measure(stat):
                    total += stat.rss
            for stat in self._stats.values():
                if stat.alive and stat.pid not in seen:
                    stat.alive = False
            self.peak_total_rss = max(self.peak_total_rss, total)
            self.samples += 1

    def _stat(self, proc: psutil.Process) -> ProcStat | None:
        try:
            key = (proc.pid, proc.create_time())
            parent_pid = proc.ppid()
        except psutil.Error:
            return None
        stat = self._stats.get(key)
        if stat is None:
            parent = next(
                (s for s in self._stats.values() if s.pid == parent_pid and s.alive), None
            )
            kind, label = classify(proc, parent)
            if proc.pid in self._roots:
                kind, label = "root", ""
            stat = ProcStat(proc.pid, kind, label, handle=proc)
            self._stats[key] = stat
        return stat

    @staticmethod
    def _measure(stat: ProcStat) -> bool:
        try:
            with stat.handle.oneshot():
                rss = stat.handle.memory_info().rss
                times = stat.handle.cpu_times()
        except psutil.Error:
            stat.alive = False
            return False
        stat.rss = rss
        stat.peak_rss = max(stat.peak_rss, peak_rss(stat.handle, rss), rss)
        stat.cpu = max(stat.cpu, times.user + times.system)
        return True

    def processes(self, kind: str | None = None, label: str | None = None) -> list[ProcStat]:
        """The processes seen so far, optionally of one kind (and label)."""
        with self._lock:
            return [
                s
                for s in self._stats.values()
                if (kind is None or s.kind == kind) and (label is None or s.label == label)
            ]

    def usage(self, kind: str | None = None, label: str | None = None) -> Usage:
        """Summed peak memory, current memory (live processes) and CPU time of a group."""
        group = self.processes(kind, label)
        return Usage(
            peak_rss=sum(s.peak_rss for s in group),
            rss=sum(s.rss for s in group if s.alive),
            cpu=sum(s.cpu for s in group),
        )

    def refresh(self, kind: str, label: str) -> Usage:
        """Measure one group right now (e.g. a kernel the moment its notebook finished)."""
        with self._lock:
            for stat in self._stats.values():
                if stat.kind == kind and stat.label == label and stat.alive:
                    self._measure(stat)
        return self.usage(kind, label)

    def live_pids(self) -> list[int]:
        """Pids of the processes seen that still run (for a last clean-up)."""
        alive = []
        for stat in self.processes():
            try:
                if stat.handle.is_running() and stat.handle.status() != psutil.STATUS_ZOMBIE:
                    alive.append(stat.pid)
            except psutil.Error:
                continue
        return alive


def wait_for(predicate, timeout: float, step: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
