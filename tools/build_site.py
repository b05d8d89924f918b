"""Build the course site: every notebook executed and rendered to static HTML.

    python tools/build_site.py                 # every notebook, into site/
    python tools/build_site.py --out /tmp/s 01_intro_weights 03_gradient_descent
    COURSE_FAST=1 python tools/build_site.py   # fast mode (what ``make site`` and CI use)

Each notebook (``notebooks/NN_*.ipynb``, found by name) is copied to a temporary
folder and executed there by nbconvert's ExecutePreprocessor in the mode of the
environment (``COURSE_FAST``), with the widget state stored so that the slider
demos show the figure of their default values. It is then rendered with its
outputs to ``<out>/<name>.html`` (JupyterLab look), and ``<out>/index.html`` maps
the course: title, one-line description and run time of each notebook. Nothing is
written into ``notebooks/``.

A notebook runs in a child process with a time limit per cell and one for the
whole notebook, so a hung kernel fails the build with a message instead of
blocking it. A notebook that raises is still rendered (its error shows on its
page); the build then lists the failures and exits with status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
SITE = REPO / "site"
COURSE_TITLE = "Weights in Machine Learning and Deep Learning"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
#: The html-manager release line that renders ipywidgets 8 state in static pages.
HTML_MANAGER_RANGE = "^1.0"

#: Seconds allowed for one cell, and for a whole notebook, per mode. Fast mode needs
#: well under a minute per notebook; full mode trains for real on a CPU.
CELL_TIMEOUT = {"fast": 300, "full": 3600}
NOTEBOOK_TIMEOUT = {"fast": 900, "full": 4 * 3600}


class BuildError(RuntimeError):
    """A notebook failed, timed out or could not be rendered."""


@dataclass
class Page:
    """One notebook of the site."""

    source: Path
    title: str
    description: str
    seconds: float | None = None
    status: str = "ok"  # ok | error | timeout
    message: str = ""

    @property
    def number(self) -> str:
        return self.source.name[:2]

    @property
    def html_name(self) -> str:
        return f"{self.source.stem}.html"


# --------------------------------------------------------------------------- notebooks


def discover(folder: Path = NOTEBOOKS) -> list[Path]:
    """The course's notebooks in teaching order (``NN_name.ipynb``)."""
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def select(names: Iterable[str], folder: Path = NOTEBOOKS) -> list[Path]:
    """Notebooks by path, file name, stem or number (``01``)."""
    available = discover(folder)
    chosen = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path.resolve())
            continue
        matches = [p for p in available if name in (p.name, p.stem, p.name[:2])]
        if not matches:
            raise BuildError(f"no notebook {name!r} in {folder}")
        chosen.extend(matches)
    return chosen


def describe(path: Path) -> tuple[str, str]:
    """Title and one-line description from the notebook's first markdown cell."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    first = next((c for c in cells if c["cell_type"] == "markdown"), None)
    text = _source(first) if first else ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    title = path.stem
    if paragraphs and paragraphs[0].startswith("#"):
        title = paragraphs.pop(0).lstrip("#").strip()
        title = re.sub(r"^\d\d\s*[·:.\-–]\s*", "", title)
    body = next((p for p in paragraphs if not p.startswith(("#", "**", "-", "*"))), "")
    body = " ".join(body.split())
    sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z\"(])", body, maxsplit=1)[0] if body else ""
    return title, sentence


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


# --------------------------------------------------------------------------- execution


def _kernel_env(tmp: Path, fast: bool | None) -> dict[str, str]:
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
    *,
    env: dict[str, str],
    cell_timeout: float,
    notebook_timeout: float,
) -> float:
    """Execute ``source`` into ``target`` in a child process; return the wall time.

    Raises :class:`BuildError` when a cell raises (``target`` then holds the
    notebook up to the error) or when the notebook runs out of time.
    """
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--execute-one",
        str(source),
        str(target),
        "--cell-timeout",
        str(cell_timeout),
    ]
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
    seconds = time.monotonic() - start
    if process.returncode != 0:
        verdict = verdict_file.read_text(errors="replace").strip()
        log = log_file.read_text(errors="replace").strip()
        detail = verdict or "\n".join(log.splitlines()[-30:])
        raise BuildError(f"{source.name} failed after {seconds:.0f} s: {detail}")
    return seconds


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


def _execute_one(source: Path, target: Path, cell_timeout: float) -> int:
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
    processor.on_notebook_start = lambda notebook: _poll_in_steps(processor.kc)
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
    nbformat.write(nb, target)
    return status


# --------------------------------------------------------------------------- rendering

# The lab template, with a link back to the course map and, in every slider demo, the
# figure of the default values as a plain image. The image shows where the widget
# JavaScript cannot load (offline, scripts blocked); once the widgets render (they
# include the same figure) it is hidden.
_PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block extra_css %}
{{ super() }}
<style type="text/css">
.course-nav { padding: 8px 0 16px; font-family: var(--jp-ui-font-family); font-size: 14px; }
.course-static-figure { display: block; max-width: 100%; }
.jupyter-widgets:has(> .widget-subarea) > .course-static-figure { display: none; }
</style>
{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
<nav class="course-nav"><a href="index.html">&larr; {{ resources.course_title }}: course map</a></nav>
{%- endblock body_header -%}
{%- block data_widget_view scoped %}
{%- set div_id = uuid4() %}
<div id="{{ div_id }}" class="jupyter-widgets jp-OutputArea-output {{ extra_class }}">
<script type="text/javascript">
var element = document.getElementById('{{ div_id }}');
</script>
<script type="application/vnd.jupyter.widget-view+json">
{{ output.data['application/vnd.jupyter.widget-view+json'] | json_dumps | escape_html_script }}
</script>
{%- for png in output.metadata.get('course_default_figures', []) %}
<img class="course-static-figure" src="data:image/png;base64,{{ png }}" alt="the figure drawn by the sliders' default values">
{%- endfor %}
</div>
{%- endblock data_widget_view -%}
"""


def attach_default_figures(nb) -> int:
    """Copy each slider demo's current figure into its output's metadata (for the page).

    The figure lives in the stored widget state: the demo's Output widget holds it.
    Returns how many demos got a figure.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if not view:
                continue
            figures = _figures_of(view.get("model_id"), state, set())
            if figures:
                output.setdefault("metadata", {})["course_default_figures"] = figures
                count += 1
    return count


def _figures_of(model_id, state: dict, seen: set) -> list[str]:
    if model_id not in state or model_id in seen:
        return []
    seen.add(model_id)
    model = state[model_id].get("state", {})
    figures = [
        "".join(out["data"]["image/png"]).replace("\n", "")
        for out in model.get("outputs", [])
        if isinstance(out, dict) and "image/png" in out.get("data", {})
    ]
    for child in model.get("children", []):
        if isinstance(child, str) and child.startswith("IPY_MODEL_"):
            figures += _figures_of(child[len("IPY_MODEL_") :], state, seen)
    return figures


def render(executed: Path, target: Path, title: str = "") -> None:
    """Render an executed notebook to one static HTML page (``title``: the page's title)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    if title:
        nb.metadata["title"] = title
    attach_default_figures(nb)
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"course_page.html.j2": _PAGE_TEMPLATE})],
        template_file="course_page.html.j2",
        html_manager_semver_range=HTML_MANAGER_RANGE,
    )
    resources = {"course_title": COURSE_TITLE, "metadata": {"name": executed.stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    target.write_text(body, encoding="utf-8")


def write_index(pages: Sequence[Page], out_dir: Path, mode: str) -> Path:
    """The course map: one row per notebook, linking its page."""
    from nbconvert.filters import markdown2html

    rows = []
    for page in pages:
        description = markdown2html(page.description).strip()
        description = re.sub(r"^<p>(.*)</p>$", r"\1", description, flags=re.S)
        if page.status == "ok":
            run = f"{page.seconds:.0f} s"
        elif page.status == "timeout":
            run = '<span class="bad">timed out</span>'
        else:
            run = '<span class="bad">failed</span>'
        link = (
            f'<a href="{html.escape(page.html_name)}">{html.escape(page.title)}</a>'
            if (out_dir / page.html_name).is_file()
            else html.escape(page.title)
        )
        rows.append(
            f"<tr><td>{page.number}</td><td>{link}</td>"
            f"<td>{description}</td><td class='time'>{run}</td></tr>"
        )
    total = sum(p.seconds or 0 for p in pages)
    built = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    index = out_dir / "index.html"
    index.write_text(
        _INDEX.format(
            title=html.escape(COURSE_TITLE),
            rows="\n".join(rows),
            mode=mode,
            built=built,
            count=len(pages),
            total=f"{total / 60:.1f}",
        ),
        encoding="utf-8",
    )
    return index


_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid #ddd; }}
td.time {{ white-space: nowrap; text-align: right; }}
.bad {{ color: #b00020; font-weight: 600; }}
code {{ background: #f3f3f3; padding: 0 .2em; border-radius: 3px; }}
footer {{ margin-top: 1.5rem; color: #666; font-size: .9rem; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>A hands-on course about the numbers inside models. Each page is a notebook executed
top to bottom, with every figure and every claim check (<code>&#10004;</code> lines) it
printed. The sliders are live when you run the notebooks in JupyterLab; here they show the
figure of their default values.</p>
<table>
<thead><tr><th>#</th><th>notebook</th><th>what it is about</th><th>run time</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<footer>{count} notebooks executed in {mode} mode, {total} min in all (wall time of each
notebook, kernel start included). Built {built}.</footer>
</body>
</html>
"""


# --------------------------------------------------------------------------- the build


def build(
    notebooks: Sequence[Path] | None = None,
    out_dir: Path = SITE,
    *,
    fast: bool | None = None,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    log: Callable[[str], None] = print,
) -> list[Page]:
    """Execute and render ``notebooks`` (all by default) into ``out_dir``.

    ``fast`` forces the mode (``None``: ``COURSE_FAST`` decides). Raises
    :class:`BuildError` after the whole build when any notebook failed.
    """
    notebooks = list(notebooks) if notebooks is not None else discover()
    if not notebooks:
        raise BuildError(f"no notebooks to build (looked for NN_*.ipynb in {NOTEBOOKS})")
    if fast is None:
        sys.path.insert(0, str(REPO))
        from course_lib.config import is_fast

        try:
            fast = is_fast()
        except ValueError as error:
            raise BuildError(str(error)) from None
    mode = "fast" if fast else "full"
    cell_timeout = cell_timeout or CELL_TIMEOUT[mode]
    notebook_timeout = notebook_timeout or NOTEBOOK_TIMEOUT[mode]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    pages = []
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp_name:
        tmp = Path(tmp_name)
        work = tmp / "notebooks"
        work.mkdir()
        env = _kernel_env(tmp, fast)
        for source in notebooks:
            title, description = describe(source)
            page = Page(source, title, description)
            pages.append(page)
            copy = work / source.name
            shutil.copy2(source, copy)
            executed = work / f"{source.stem}.executed.ipynb"
            log(f"[{mode}] {source.name} ...")
            start = time.monotonic()
            try:
                page.seconds = execute(
                    copy,
                    executed,
                    env=env,
                    cell_timeout=cell_timeout,
                    notebook_timeout=notebook_timeout,
                )
            except BuildError as error:
                page.seconds = time.monotonic() - start
                page.status = "timeout" if "did not finish" in str(error) else "error"
                page.message = str(error)
                log(f"  FAILED: {error}")
            if executed.is_file():
                render(executed, out_dir / page.html_name, f"{page.number} · {page.title}")
            if page.status == "ok":
                log(f"  {page.seconds:.1f} s -> {out_dir / page.html_name}")
    index = write_index(pages, out_dir, mode)
    log(f"course map: {index}")
    failed = [p for p in pages if p.status != "ok"]
    if failed:
        raise BuildError(
            f"{len(failed)} of {len(pages)} notebooks failed:\n"
            + "\n".join(f"- {p.source.name}: {p.message}" for p in failed)
        )
    return pages


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", help="notebooks by name, stem or number (default: all)"
    )
    parser.add_argument("--out", type=Path, default=SITE, help="output folder (default: site/)")
    parser.add_argument("--cell-timeout", type=float, help="seconds allowed per cell")
    parser.add_argument("--notebook-timeout", type=float, help="seconds allowed per notebook")
    parser.add_argument("--execute-one", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.execute_one:
        source, target = args.execute_one
        return _execute_one(source, target, args.cell_timeout or CELL_TIMEOUT["full"])
    try:
        notebooks = select(args.notebooks) if args.notebooks else None
        build(
            notebooks,
            args.out,
            cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout,
        )
    except BuildError as error:
        print(f"site build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
