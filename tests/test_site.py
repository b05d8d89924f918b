"""The course site renders: notebooks executed into static HTML pages and a course map.

``make site`` builds every notebook; here one notebook is built (fast mode) to check
that a page holds the executed outputs, and tiny notebooks check that failures and
hangs end the build with a clear message instead of blocking it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_site", REPO / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_site", module)
    spec.loader.exec_module(module)
    return module


site = _load_builder()


def _notebook(path: Path, *code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.name[:2]} · Tiny\n\nA tiny notebook.")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in code]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


def test_discovers_the_course_notebooks():
    assert site.discover() == NOTEBOOKS
    assert site.select(["01"]) == [REPO / "notebooks" / "01_intro_weights.ipynb"]
    with pytest.raises(site.BuildError, match="no notebook"):
        site.select(["99_missing"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_has_a_title_and_a_one_line_description(path):
    title, description = site.describe(path)
    assert title and not title.startswith(("#", path.name[:2])), title
    assert description and "\n" not in description, description
    assert description[-1] in ".!?", f"not one whole sentence: {description!r}"


def test_site_renders_an_executed_notebook(tmp_path):
    source = REPO / "notebooks" / "01_intro_weights.ipynb"
    before = source.read_bytes()
    pages = site.build([source], tmp_path, fast=True, log=lambda _: None)

    assert [p.status for p in pages] == ["ok"] and pages[0].seconds > 0
    assert source.read_bytes() == before, "the build must not write into notebooks/"
    page = (tmp_path / "01_intro_weights.html").read_text(encoding="utf-8")
    # Executed outputs: the claim checks' lines, the slider demo's figure of its
    # default values (as a plain image and inside the stored widget state).
    claims = re.findall(r"\u2714 [^<\n]+", page)
    assert len(claims) >= 4, f"claim-check lines missing from the page: {claims}"
    assert re.search(
        r'<img(?=[^>]*class="course-static-figure")(?=[^>]*src="data:image/png;base64,)', page
    ), "the slider demo's default figure is missing from the page"
    assert 'type="application/vnd.jupyter.widget-state+json"' in page
    assert 'href="index.html"' in page
    assert "<title>01 · What a weight is</title>" in page

    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'href="01_intro_weights.html"' in index
    assert "What a weight is" in index and "fast mode" in index
    assert re.search(r"<td class='time'>\d+ s</td>", index)


def test_a_failing_or_hanging_notebook_fails_the_build_clearly(tmp_path):
    work = tmp_path / "nb"
    work.mkdir()
    broken = _notebook(work / "97_broken.ipynb", "print('before')", "raise ValueError('boom')")
    hung = _notebook(work / "98_hung.ipynb", "import time\ntime.sleep(600)")
    out = tmp_path / "site"
    with pytest.raises(site.BuildError) as info:
        site.build([broken, hung], out, fast=True, cell_timeout=5, log=lambda _: None)
    message = str(info.value)
    assert "2 of 2 notebooks failed" in message
    assert "97_broken.ipynb" in message and "ValueError: boom" in message
    assert "98_hung.ipynb" in message and "longer than 5 s" in message
    # The broken notebook's page still shows how far it got; the map marks both.
    assert "boom" in (out / "97_broken.html").read_text(encoding="utf-8")
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count("failed</span>") == 2


def test_a_notebook_past_its_time_limit_is_stopped(tmp_path):
    hung = _notebook(tmp_path / "99_hung.ipynb", "import time\ntime.sleep(600)")
    out = tmp_path / "site"
    with pytest.raises(site.BuildError, match=r"did not finish within 8 s"):
        site.build([hung], out, fast=True, notebook_timeout=8, log=lambda _: None)
    assert "timed out" in (out / "index.html").read_text(encoding="utf-8")
