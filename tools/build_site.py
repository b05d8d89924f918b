"""Build the course site: every notebook executed and rendered as a book that works offline.

    python tools/build_site.py                 # every notebook, into site/
    python tools/build_site.py --out /tmp/s 01_intro_weights 03_gradient_descent
    COURSE_FAST=1 python tools/build_site.py   # fast mode (what ``make site`` and CI use)
    COURSE_SITE_REPO=owner/name python tools/build_site.py   # Binder links to that repository

Each notebook (``notebooks/NN_*.ipynb``, found by name) is copied to a temporary
folder and executed there (``sitebuild.execute``) in the mode of the environment
(``COURSE_FAST``). After every cell, the same kernel draws each new slider demo at a
grid of positions of its main slider (``course_lib.widgets.export_frames``) and
saves the claims checked so far (``course_lib.claims.checked``). Each notebook is
then rendered with its outputs to ``<out>/<name>.html`` (``sitebuild.render``:
nbconvert's lab template) with the book around it (``sitebuild.book``): the course
map as ``<out>/index.html``, previous/next links, a search box over every page
(MiniSearch, client-side), a panel with the notebook's time, prerequisites and run
links (Binder, locally), frame players for its slider demos (``<out>/frames/``)
and the list of claims checked. Every script, style and font the pages load is in
``<out>/assets/`` (``sitebuild.assets``: npm packages pinned in
``tools/site-assets``), so the site works offline, from ``file://`` too. Nothing
is written into ``notebooks/``.

A notebook runs in a child process with a time limit per cell and one for the
whole notebook, so a hung kernel fails the build with a message instead of
blocking it. A notebook that raises is still rendered (its error shows on its
page); the build then lists the failures and exits with status 1.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sitebuild import assets, book  # noqa: E402
from sitebuild.execute import (  # noqa: E402
    CELL_TIMEOUT,
    NOTEBOOK_TIMEOUT,
    execute,
    execute_one,
    kernel_env,
)
from sitebuild.notebooks import (  # noqa: E402
    NOTEBOOKS,
    REPO,
    BuildError,
    Page,
    describe,
    discover,
    read_header,
    select,
)
from sitebuild.render import render  # noqa: E402

__all__ = ["BuildError", "Page", "build", "describe", "discover", "main", "select"]

SITE = REPO / "site"


def build(
    notebooks: Sequence[Path] | None = None,
    out_dir: Path = SITE,
    *,
    fast: bool | None = None,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    repo: str | None = None,
    frame_dpi: float | None = None,
    log: Callable[[str], None] = print,
) -> list[Page]:
    """Execute and render ``notebooks`` (all by default) into ``out_dir``.

    ``fast`` forces the mode (``None``: ``COURSE_FAST`` decides); ``repo`` names the
    GitHub repository of the Binder links (``None``: ``COURSE_SITE_REPO``). Raises
    :class:`BuildError` after the whole build when any notebook failed.
    """
    start = time.monotonic()
    notebooks = list(notebooks) if notebooks is not None else discover()
    if not notebooks:
        raise BuildError(f"no notebooks to build (looked for NN_*.ipynb in {NOTEBOOKS})")
    mode = _mode(fast)
    context = book.Context(mode, book.repository(repo))
    if not context.repo:
        log(
            f"note: {book.REPO_SETTING} is not set; the Binder links use the placeholder "
            f"{book.REPO_PLACEHOLDER}"
        )
    assets.ensure_packages(log)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    limits = (cell_timeout or CELL_TIMEOUT[mode], notebook_timeout or NOTEBOOK_TIMEOUT[mode])
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp_name:
        tmp = Path(tmp_name)
        env = kernel_env(tmp, mode == "fast")
        pages = [_run(source, tmp, env, limits, frame_dpi, log) for source in notebooks]
        write_site(pages, out_dir, context, log)
    size, files = assets.site_size(out_dir)
    log(
        f"site: {out_dir} ({size / 2**20:.1f} MB in {files} files), "
        f"built in {time.monotonic() - start:.0f} s"
    )
    failed = [p for p in pages if p.status != "ok"]
    if failed:
        raise BuildError(
            f"{len(failed)} of {len(pages)} notebooks failed:\n"
            + "\n".join(f"- {p.source.name}: {p.message}" for p in failed)
        )
    return pages


def _mode(fast: bool | None) -> str:
    if fast is None:
        sys.path.insert(0, str(REPO))
        from course_lib.config import is_fast

        try:
            fast = is_fast()
        except ValueError as error:
            raise BuildError(str(error)) from None
    return "fast" if fast else "full"


def _run(source: Path, tmp: Path, env: dict, limits, frame_dpi, log) -> Page:
    """Execute one notebook in ``tmp``; the page records its time, frames and claims."""
    page = Page(source, read_header(source))
    work = tmp / source.stem
    work.mkdir()
    copy = work / source.name
    shutil.copy2(source, copy)
    executed = work / f"{source.stem}.executed.ipynb"
    export = work / "export"
    log(f"[{'fast' if env.get('COURSE_FAST') == '1' else 'full'}] {source.name} ...")
    start = time.monotonic()
    try:
        page.seconds = execute(
            copy,
            executed,
            export,
            env=env,
            cell_timeout=limits[0],
            notebook_timeout=limits[1],
            frame_dpi=frame_dpi,
        )
    except BuildError as error:
        page.seconds = time.monotonic() - start
        page.status = "timeout" if "did not finish" in str(error) else "error"
        page.message = str(error)
        log(f"  FAILED: {error}")
    page.executed = executed if executed.is_file() else None
    page.claims = _read_json(export / "claims.json", [])
    page.demos = _read_json(export / "frames" / "manifest.json", [])
    page.frame_seconds = sum(demo.get("seconds", 0) for demo in page.demos)
    frames = sum(len(demo["frames"]) for demo in page.demos)
    if page.status == "ok":
        log(
            f"  {page.seconds:.1f} s; {len(page.claims)} claims; {len(page.demos)} slider "
            f"demos, {frames} frames in {page.frame_seconds:.1f} s"
        )
    return page


def _read_json(path: Path, default):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def write_site(pages: list[Page], out_dir: Path, context: book.Context, log) -> None:
    """Pages, frames, notebooks to download, course map, search index and assets."""
    assets.copy_assets(out_dir)
    (out_dir / "notebooks").mkdir(exist_ok=True)
    documents: list[dict] = []
    for page in pages:
        shutil.copy2(page.source, out_dir / "notebooks" / page.source.name)
        _copy_frames(page, out_dir)
        if page.executed is None:
            continue
        target = out_dir / page.html_name
        render(page, pages, target, context)
        documents += book.search_documents(page, target.read_text(encoding="utf-8"))
    book.write_search_index(documents, out_dir)
    log(f"course map: {book.write_index(pages, out_dir, context)}")


def _copy_frames(page: Page, out_dir: Path) -> None:
    target = out_dir / "frames" / page.stem
    if target.exists():
        shutil.rmtree(target)
    if not page.executed or not any(demo["frames"] for demo in page.demos):
        return
    source = page.executed.parent / "export" / "frames"
    target.mkdir(parents=True)
    for demo in page.demos:
        for name in demo["frames"]:
            shutil.copy2(source / name, target / name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "notebooks", nargs="*", help="notebooks by name, stem or number (default: all)"
    )
    parser.add_argument("--out", type=Path, default=SITE, help="output folder (default: site/)")
    parser.add_argument("--cell-timeout", type=float, help="seconds allowed per cell")
    parser.add_argument("--notebook-timeout", type=float, help="seconds allowed per notebook")
    parser.add_argument(
        "--repo",
        help=f"GitHub repository (OWNER/NAME) for the Binder links (default: ${book.REPO_SETTING})",
    )
    parser.add_argument(
        "--frame-dpi", type=float, help="resolution of the slider frames (default: the figure's)"
    )
    parser.add_argument("--execute-one", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--export-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.execute_one:
        source, target = args.execute_one
        export = args.export_dir or target.parent / "export"
        timeout = args.cell_timeout or CELL_TIMEOUT["full"]
        return execute_one(source, target, export, timeout, args.frame_dpi)
    try:
        build(
            select(args.notebooks) if args.notebooks else None,
            args.out,
            cell_timeout=args.cell_timeout,
            notebook_timeout=args.notebook_timeout,
            repo=args.repo,
            frame_dpi=args.frame_dpi,
        )
    except BuildError as error:
        print(f"site build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
