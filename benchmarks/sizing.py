"""Size a JupyterHub for the course from measurements, and write the sizing where it is used.

    python benchmarks/sizing.py          # regenerate from the committed measurements
    python benchmarks/sizing.py --check  # exit 1 when a generated file is out of date

Reads ``benchmarks/notebooks.json`` (``make bench``: every notebook's kernel peak
memory and CPU time, fast and full mode) and ``benchmarks/rehearsal.json``
(``make rehearsal``: N learners on a local JupyterHub), and derives:

* the memory *guarantee* per learner: their server plus a typical (median)
  notebook kernel in full mode; the *limit*: their server, the heaviest kernel
  and one earlier notebook's kernel left running, plus, when the measurements
  were made on dataset samples, the complete CIFAR-10 training set as float32;
* the CPU guarantee per learner: enough for the whole class to run the
  heaviest notebook at once in fast mode within :data:`CLASS_RUN_SECONDS`
  (one thread per kernel, so the limit is one core);
* memory and cores for classes of 30, 100 and 200 learners.

It writes the instructor guide's sizing section (between the ``<!-- sizing -->``
markers of ``docs/instructor.md``) and every value marked ``# sizing: KEY`` in
the deployment kit (``deploy/``). Each rule is stated in the generated text.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS_JSON = REPO / "benchmarks" / "notebooks.json"
REHEARSAL_JSON = REPO / "benchmarks" / "rehearsal.json"
GUIDE = REPO / "docs" / "instructor.md"
#: Files of the deployment kit whose ``# sizing: KEY`` values come from here.
KIT = [REPO / "deploy" / "z2jh" / "config.yaml", REPO / "deploy" / "tljh" / "install.sh"]
START, END = "<!-- sizing -->", "<!-- /sizing -->"

#: The whole class running the heaviest notebook at once (fast mode) finishes within this.
CLASS_RUN_SECONDS = 120
#: The complete CIFAR-10 training set as float32 (50,000 x 3,072 values x 4 bytes), in MB.
COMPLETE_CIFAR_MB = 50_000 * 3072 * 4 / 2**20
CLASS_SIZES = (30, 100, 200)
#: Day 1 of the two-day plan: the notebooks a learner may leave running by its end.
DAY_ONE = {"01", "02", "03", "04", "10", "11"}
_MARKED = re.compile(r"^(?P<head>.*?)(?P<value>\S+)(?P<tail>\s+# sizing: (?P<key>[\w.]+))$")


class SizingError(RuntimeError):
    """A measurement file is missing or incomplete."""


def ceil_to(value: float, step: float) -> float:
    return math.ceil(round(value / step, 6)) * step


def gigabytes(value_gb: float) -> str:
    """A memory size as JupyterHub spawners read it: ``2G``, ``1.25G``."""
    text = f"{value_gb:.2f}".rstrip("0").rstrip(".")
    return f"{text}G"


def load(path: Path) -> dict:
    if not path.is_file():
        command = "make bench" if path.name == NOTEBOOKS_JSON.name else "make rehearsal"
        raise SizingError(f"{path.name} is missing: run `{command}` to measure")
    return json.loads(path.read_text())


@dataclass
class Sizing:
    """The numbers the guide and the deployment kit use (memory in MB unless named GB)."""

    notebooks: dict
    rehearsal: dict
    mode: str
    server_mb: float
    heaviest: str
    heaviest_mb: float
    median_mb: float
    on_samples: bool
    guarantee_gb: float
    limit_gb: float
    cpu_guarantee: float
    cpu_heaviest: str
    cpu_heaviest_s: float

    @property
    def values(self) -> dict[str, str]:
        """The ``# sizing:`` values of the deployment kit."""
        return {
            "memory.guarantee": gigabytes(self.guarantee_gb),
            "memory.limit": gigabytes(self.limit_gb),
            "cpu.guarantee": f"{self.cpu_guarantee:g}",
            "cpu.limit": "1",
        }


def compute(notebooks: dict, rehearsal: dict) -> Sizing:
    """Apply the rules of the module docstring to the two measurement records."""
    modes = notebooks.get("modes", {})
    if "fast" not in modes or not modes["fast"]:
        raise SizingError("notebooks.json holds no fast-mode measurements: run `make bench`")
    mode = "full" if modes.get("full") else "fast"
    peaks = {stem: m["peak_mb"] for stem, m in modes[mode].items() if "peak_mb" in m}
    heaviest = max(peaks, key=peaks.get)
    median_mb = statistics.median(peaks.values())
    servers = rehearsal.get("totals", {}).get("servers", {})
    if not servers.get("peak_mb_max"):
        raise SizingError("rehearsal.json has no server measurements: run `make rehearsal`")
    server_mb = servers["peak_mb_max"]
    on_samples = "complete datasets" not in notebooks.get("data", "")
    margin = COMPLETE_CIFAR_MB if on_samples else 0.0
    guarantee = ceil_to((server_mb + median_mb) / 1024, 0.25)
    limit = ceil_to((server_mb + peaks[heaviest] + median_mb + margin) / 1024, 0.5)
    cpu = {stem: m["cpu_s"] for stem, m in modes["fast"].items() if "cpu_s" in m}
    cpu_heaviest = max(cpu, key=cpu.get)
    return Sizing(
        notebooks=notebooks,
        rehearsal=rehearsal,
        mode=mode,
        server_mb=server_mb,
        heaviest=heaviest,
        heaviest_mb=peaks[heaviest],
        median_mb=median_mb,
        on_samples=on_samples,
        guarantee_gb=guarantee,
        limit_gb=limit,
        cpu_guarantee=ceil_to(cpu[cpu_heaviest] / CLASS_RUN_SECONDS, 0.05),
        cpu_heaviest=cpu_heaviest,
        cpu_heaviest_s=cpu[cpu_heaviest],
    )


def _mb(value: float) -> str:
    return f"{value:,.0f} MB"


def _notebook_rows(sizing: Sizing) -> list[str]:
    modes = sizing.notebooks["modes"]
    full = modes.get("full", {})
    rows = [
        "| notebook | fast: kernel peak | fast: CPU | full: kernel peak | full: CPU |",
        "|---|---|---|---|---|",
    ]
    for stem, fast in modes["fast"].items():
        cells = []
        for usage in (fast, full.get(stem)):
            if usage and "peak_mb" in usage:
                mark = " (failed)" if "error" in usage else ""
                cells += [_mb(usage["peak_mb"]) + mark, f"{usage['cpu_s']:.0f} s"]
            else:
                cells += ["-", "-"]
        rows.append(f"| {stem} | " + " | ".join(cells) + " |")
    return rows


def _failure_lines(sizing: Sizing) -> list[str]:
    failed = [
        f"{stem} ({mode}: {m['error'].removeprefix(stem + ': ')})"
        for mode, notebooks in sizing.notebooks["modes"].items()
        for stem, m in notebooks.items()
        if "error" in m
    ]
    if not failed:
        return []
    return [
        "",
        "These runs stopped at an error; their numbers cover the notebook up to the failing "
        "cell: " + "; ".join(failed) + ".",
    ]


def _setting_rows(sizing: Sizing) -> list[str]:
    values = sizing.values
    margin = (
        f" + the complete CIFAR-10 training set as float32 ({_mb(COMPLETE_CIFAR_MB)}: the "
        "measurements ran on dataset samples)"
        if sizing.on_samples
        else ""
    )
    return [
        "| per learner | value | rule |",
        "|---|---|---|",
        f"| memory guarantee | {values['memory.guarantee']} | the learner's server "
        f"({_mb(sizing.server_mb)}, the largest in the rehearsal) + a typical notebook's kernel "
        f"(median over the notebooks in {sizing.mode} mode: {_mb(sizing.median_mb)}), "
        "rounded up to 0.25 GB |",
        f"| memory limit | {values['memory.limit']} | the server + the heaviest kernel "
        f"({sizing.heaviest}, {_mb(sizing.heaviest_mb)}) + one earlier notebook's kernel left "
        f"running ({_mb(sizing.median_mb)}){margin}, rounded up to 0.5 GB |",
        f"| CPU guarantee | {values['cpu.guarantee']} core | the whole class runs the heaviest "
        f"notebook ({sizing.cpu_heaviest}, {sizing.cpu_heaviest_s:.0f} CPU seconds in fast mode) "
        f"at the same moment and is done within {CLASS_RUN_SECONDS} s |",
        "| CPU limit | 1 core | one thread per kernel (`OMP_NUM_THREADS=1`) |",
    ]


def _class_rows(sizing: Sizing) -> list[str]:
    totals = sizing.rehearsal["totals"]
    base_mb = totals["hub"]["peak_mb_sum"] + totals["proxy"]["peak_mb_sum"]
    rows = [
        "| learners | memory guaranteed | memory if all reach the limit | cores |",
        "|---|---|---|---|",
    ]
    for n in CLASS_SIZES:
        rows.append(
            f"| {n} | {n * sizing.guarantee_gb:,.0f} GB | {n * sizing.limit_gb:,.0f} GB | "
            f"{math.ceil(n * sizing.cpu_guarantee)} |"
        )
    rows += [
        "",
        f"Add the hub and its proxy ({_mb(base_mb)} together in the rehearsal) and the "
        "operating system. Learners rarely all compute at once: the cores column is the "
        "moment everyone presses *Run All* together.",
    ]
    return rows


def _rehearsal_lines(sizing: Sizing) -> list[str]:
    r = sizing.rehearsal
    fast = sizing.notebooks["modes"]["fast"]
    cores = r["totals"]["cores"]
    cpu = sum(fast[n]["cpu_s"] for n in r["notebooks"] if "cpu_s" in fast.get(n, {}))
    predicted = r["learners"] * cpu / cores
    finish = [res["done_s"] for res in r["results"] if res.get("done_s")]
    first = [res["runs"][0]["first_output"] for res in r["results"] if res["runs"]]
    everything = r["totals"]["all"]
    return [
        f"{r['learners']} learners on {cores} cores ({r['measured']}, {r['software']}), each "
        f"running {' then '.join(r['notebooks'])} in {r['mode']} mode at the same moment: "
        f"first output of {r['notebooks'][0][:2]} after {statistics.median(first):.0f} s (median; worst "
        f"{max(first):.0f} s), all notebooks done {statistics.median(finish):.0f} s after "
        f"logging in (median; worst {max(finish):.0f} s). From the notebooks' CPU time alone "
        f"({cpu:.0f} CPU seconds per learner, `make bench`) the class needs "
        f"{predicted:.0f} s on {cores} cores; sharing the cores, the rehearsal's kernels used "
        f"{r['totals']['kernels']['cpu_s'] / r['learners']:.0f} CPU seconds per learner"
        f"{_load_note(r, cores)}. Hub, proxy, servers and kernels together "
        f"peaked at {everything['peak_mb'] / 1024:.1f} GB and used {everything['cpu_s']:.0f} "
        "CPU seconds. The table per learner is in "
        "[benchmarks/rehearsal.md](../benchmarks/rehearsal.md).",
    ]


def _load_note(record: dict, cores: int) -> str:
    """Say so when other work ran on the machine (the load average before the start)."""
    load = record.get("load_before")
    if load is None or load < 0.5 * cores:
        return ""
    return (
        f" (other work shared the machine: its load average was {load:.1f} when the "
        "rehearsal started, so the times above are longer than on a machine of its own)"
    )


def _left_running_lines(sizing: Sizing) -> list[str]:
    idle = []
    for name in sizing.rehearsal["notebooks"]:
        values = [
            run["kernel_idle_mb"] / run["kernel_peak_mb"]
            for res in sizing.rehearsal["results"]
            for run in res["runs"]
            if run["notebook"] == name and run.get("kernel_idle_mb") and run["kernel_peak_mb"]
        ]
        if values:
            idle.append(f"{name} {statistics.median(values):.0%}")
    peaks = sizing.notebooks["modes"][sizing.mode]
    day1 = [s for s, m in peaks.items() if s[:2] in DAY_ONE and "peak_mb" in m]
    held = sum(peaks[s]["peak_mb"] for s in day1) + sizing.server_mb
    return [
        "A kernel keeps its memory until it is shut down: after its notebook finished, an idle "
        f"kernel still held this share of its peak in the rehearsal: {', '.join(idle)}. "
        "Closing a notebook's tab does not stop its kernel. A learner who works through day 1 "
        f"({', '.join(s[:2] for s in day1)}) without shutting a kernel down holds about "
        f"{held / 1024:.1f} GB, {'over' if held / 1024 > sizing.limit_gb else 'within'} the "
        f"limit of {sizing.values['memory.limit']}; past the limit the system stops the "
        "largest process, and "
        "JupyterLab reports that the kernel died and restarts it. Three things keep this in "
        "check: learners use *File > Close and Shut Down Notebook* (or *Kernel > Shut Down All "
        "Kernels*) when they move on; each server shuts down kernels idle for 30 minutes "
        "(`deploy/jupyter_server_config.json`); the hub stops servers idle for an hour "
        "(its idle culler), which frees the learner's whole memory guarantee.",
    ]


def section(sizing: Sizing) -> str:
    """The instructor guide's sizing section (markdown)."""
    nb = sizing.notebooks
    lines = [
        f"Generated by `benchmarks/sizing.py` from `make bench` ({nb['measured']}, {nb['machine']};"
        f" {nb['data']}) and `make rehearsal` ({sizing.rehearsal['measured']}). Peak memory is"
        " the kernel's resident memory at its highest; CPU time is the kernel's, over the"
        " whole notebook.",
        "",
        *_notebook_rows(sizing),
        *_failure_lines(sizing),
        "",
        *_setting_rows(sizing),
        "",
        *_class_rows(sizing),
        "",
        "**The rehearsal.** " + " ".join(_rehearsal_lines(sizing)),
        "",
        "**Kernels left running.** " + " ".join(_left_running_lines(sizing)),
    ]
    return "\n".join(lines) + "\n"


def apply_marked(text: str, values: dict[str, str]) -> str:
    """Replace the value before each ``# sizing: KEY`` comment with ``values[KEY]``."""
    lines = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        match = _MARKED.match(body)
        if match and match["key"] in values:
            body = f"{match['head']}{values[match['key']]}{match['tail']}"
        lines.append(body + line[len(line.rstrip("\n")) :])
    return "".join(lines)


def replace_section(text: str, section: str) -> str:
    if START not in text or END not in text:
        raise SizingError(f"the guide has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{section}{END}{tail}"


def generated() -> dict[Path, str]:
    """Every file this module writes, with the content it should have."""
    sizing = compute(load(NOTEBOOKS_JSON), load(REHEARSAL_JSON))
    files = {GUIDE: replace_section(GUIDE.read_text(encoding="utf-8"), section(sizing))}
    for path in KIT:
        files[path] = apply_marked(path.read_text(encoding="utf-8"), sizing.values)
    return files


def update() -> str:
    """Write the generated files; a one-line summary of what changed."""
    changed = []
    for path, content in generated().items():
        if path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed.append(str(path.relative_to(REPO)))
    return "updated " + ", ".join(changed) if changed else "already up to date"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            stale = [str(p.relative_to(REPO)) for p, c in generated().items() if p.read_text() != c]
            print("out of date: " + ", ".join(stale) if stale else "up to date")
            return 1 if stale else 0
        print(update())
    except SizingError as error:
        print(f"sizing: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
