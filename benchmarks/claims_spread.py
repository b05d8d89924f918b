"""How much each notebook's claims vary across seeds and threads, against their bounds.

    python benchmarks/claims_spread.py                      # fast mode, seeds 0-4, 1 thread
    python benchmarks/claims_spread.py --mode full 13 14    # full mode, two notebooks
    python benchmarks/claims_spread.py --threads 1 2        # also compare thread counts
    python benchmarks/claims_spread.py --jobs 2             # two runs at once

Each notebook is executed once per seed (``COURSE_SEED``) and thread count
(``OMP_NUM_THREADS``), through nbclient with errors allowed, so that a failing claim
does not hide the ones after it. A last cell saves ``cl.claims.checked()``: every
claim's statement, evidence, whether it passed, and, where the notebook gives it,
the measured ``value`` and its ``bound``. Per claim the table gives the number of
runs, how many passed, and the mean, minimum and maximum of the value. It goes to
``benchmarks/claims_spread.md`` and into the README between ``<!-- spread -->``
markers (``make claims-spread``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
RESULTS = REPO / "benchmarks" / "claims_spread.md"
README = REPO / "README.md"

_SAVE_CELL = (
    "import json as _json\n"
    "import course_lib as _cl\n"
    "with open({path!r}, 'w', encoding='utf-8') as _f:\n"
    "    _json.dump(_cl.claims.checked(), _f)\n"
)


def execute(notebook: Path, out: Path, timeout: float) -> None:
    """Run ``notebook`` (in this process's environment) and save its checked claims to ``out``."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_SAVE_CELL.format(path=str(out))))
    with tempfile.TemporaryDirectory(prefix="kernel-") as sockets:
        # Unix sockets instead of TCP ports: with many kernels starting at once, a port
        # picked for one kernel can be taken by another, and the client then waits forever.
        km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(sockets) / "k"))
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            allow_errors=True,
            resources={"metadata": {"path": str(notebook.parent)}},
        )
        client.execute()


def run_one(notebook: Path, mode: str, seed: int, threads: int, timeout: float) -> list[dict]:
    """The checked claims of one run, in a child process with the run's environment."""
    env = dict(os.environ)
    env.update(
        COURSE_FAST="1" if mode == "fast" else "0",
        COURSE_SEED=str(seed),
        OMP_NUM_THREADS=str(threads),
        MPLBACKEND="Agg",
    )
    with tempfile.TemporaryDirectory(prefix="spread-") as tmp:
        out = Path(tmp) / "claims.json"
        cmd = [sys.executable, __file__, "--execute-one", str(notebook), str(out), str(timeout)]
        # A run whose kernel died or hung (seen rarely when many kernels start at once) is
        # tried once more; a failing claim is not a reason to retry, it is the result.
        for _ in range(2):
            try:
                subprocess.run(cmd, env=env, check=False, timeout=timeout * 2)
            except subprocess.TimeoutExpired:
                continue
            if out.exists():
                return json.loads(out.read_text(encoding="utf-8"))
        return [{"statement": f"(the run of {notebook.name} did not finish)", "passed": False}]


def summarise(runs: dict[tuple, list[dict]]) -> list[dict]:
    """One row per claim statement, in the order they first appeared."""
    rows: dict[tuple[str, str], dict] = {}
    for (name, _, _), claims in runs.items():
        for c in claims:
            row = rows.setdefault(
                (name, c["statement"]),
                {"notebook": name, "statement": c["statement"], "runs": 0, "passed": 0,
                 "values": [], "bound": c.get("bound", "")},
            )  # fmt: skip
            row["runs"] += 1
            row["passed"] += bool(c.get("passed"))
            if c.get("value") is not None:
                row["values"].append(float(c["value"]))
    return list(rows.values())


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def table(rows: list[dict], runs_per_notebook: int) -> str:
    lines = [
        "| notebook | claim | passed | mean | min | max | asserted |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        v = r["values"]
        stats = [_fmt(statistics.fmean(v)), _fmt(min(v)), _fmt(max(v))] if v else ["", "", ""]
        missing = runs_per_notebook - r["runs"]
        passed = f"{r['passed']}/{r['runs']}" + (
            f" ({missing} runs stopped before)" if missing else ""
        )
        statement = r["statement"].replace("|", "\\|")
        lines.append(
            f"| {r['notebook'][:2]} | {statement} | {passed} | {' | '.join(stats)} | {r['bound']} |"
        )
    return "\n".join(lines)


def _write(report: str, settings: str) -> None:
    stamp = (
        f"Measured {dt.date.today().isoformat()} on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}: {settings}."
    )
    RESULTS.write_text(f"# Spread of the claims (make claims-spread)\n\n{stamp}\n\n{report}\n")
    readme = README.read_text(encoding="utf-8")
    start, end = "<!-- spread -->", "<!-- /spread -->"
    if start in readme and end in readme:
        head, rest = readme.split(start, 1)
        tail = rest.split(end, 1)[1]
        README.write_text(f"{head}{start}\n{stamp}\n\n{report}\n{end}{tail}", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook numbers (default: all)")
    parser.add_argument("--mode", choices=["fast", "full"], default="fast")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per cell")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--execute-one", nargs=3, metavar=("NOTEBOOK", "OUT", "TIMEOUT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.execute_one:
        notebook, out, timeout = args.execute_one
        execute(Path(notebook), Path(out), float(timeout))
        return 0
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.name[:2] in args.notebooks]
    keys = [(p.stem, s, t) for p in paths for t in args.threads for s in args.seeds]

    def one(key: tuple) -> list[dict]:
        start = time.perf_counter()
        claims = run_one(NOTEBOOKS / f"{key[0]}.ipynb", args.mode, key[1], key[2], args.timeout)
        failed = sum(not c.get("passed") for c in claims)
        print(f"{key[0]} seed {key[1]}, {key[2]} thread(s): {failed} claims failed "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        return claims

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = dict(zip(keys, pool.map(one, keys), strict=True))
    rows = summarise(runs)
    report = table(rows, len(args.seeds) * len(args.threads))
    print(report)
    if not args.no_write:
        settings = (
            f"{args.mode} mode, seeds {', '.join(map(str, args.seeds))}, "
            f"{' and '.join(map(str, args.threads))} thread(s)"
        )
        _write(report, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
