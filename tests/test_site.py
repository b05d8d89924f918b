"""The course site: notebooks executed into a book of static pages that works offline.

``make site`` builds every notebook; here two course notebooks (01, with math, a
slider demo and a live progress bar; 03, with a log-scale slider) and a tiny one
(a dropdown demo, a progress widget) are built once in fast mode. The tests check
the pages, their frame players, claim lists, navigation and search index, then open
the site in headless Chromium with every request that leaves ``file://`` blocked:
formulas must be typeset, images load, the console stay clean, and moving a frame
slider must change the figure. Tiny notebooks check that failures and hangs end the
build with a clear message instead of blocking it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_NAME = "site_frame_slider.png"
TEST_REPO = "course-owner/weights-course"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_site", REPO / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_site", module)
    spec.loader.exec_module(module)
    return module


site = _load_builder()
from sitebuild import assets, book, notebooks  # noqa: E402  (importable once the builder is)


def _notebook(path: Path, *code: str, header: str = "A tiny notebook.") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.name[:2]} · Tiny\n\n{header}")]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in code]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


_TINY_HEADER = """A tiny notebook where $a^2 + b^2 = c^2$ holds.

**What you will learn**
- that a dropdown demo becomes a select over its frames.

**Prerequisites:** 01 · What a weight is.

**Time:** about 5 minutes to read and do."""

_TINY_CODE = [
    "import ipywidgets as W\nfrom course_lib import claims, widgets\n"
    "W.IntProgress(value=7, max=10, description='progress')",
    "claims.claim(2 + 2 == 4, 'two and two make four', '2 + 2 = 4')",
    "import matplotlib.pyplot as plt\n\n"
    "def bars(kind='a'):\n"
    "    fig, ax = plt.subplots(figsize=(3, 2))\n"
    "    ax.bar([0, 1, 2], {'a': [1, 2, 3], 'b': [3, 1, 2], 'c': [2, 3, 1]}[kind])\n"
    "    ax.set_title(f'kind {kind}')\n"
    "    return fig\n\n"
    "demo = widgets.interact(bars, kind=widgets.dropdown(['a', 'b', 'c'], 'b', 'kind'))",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Notebooks 01 and 03 and a tiny one, built once in fast mode: (site folder, pages)."""
    if not assets._complete() and shutil.which("npm") is None:
        _unavailable("the site's scripts are not installed and npm is missing: make site-assets")
    tmp = tmp_path_factory.mktemp("site")
    tiny = _notebook(tmp / "99_tiny.ipynb", *_TINY_CODE, header=_TINY_HEADER)
    sources = [
        REPO / "notebooks" / "01_intro_weights.ipynb",
        REPO / "notebooks" / "03_gradient_descent.ipynb",
    ]
    before = [path.read_bytes() for path in sources]
    with pytest.MonkeyPatch.context() as patch:  # the notebooks' caches stay out of the repository
        patch.setenv("COURSE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        pages = site.build(
            [*sources, tiny], tmp / "out", fast=True, repo=TEST_REPO, log=lambda _: None
        )
    assert [path.read_bytes() for path in sources] == before, "the build wrote into notebooks/"
    return tmp / "out", {page.number: page for page in pages}


def _html(out: Path, name: str) -> str:
    return (out / name).read_text(encoding="utf-8")


def _soup(out: Path, name: str):
    from bs4 import BeautifulSoup

    return BeautifulSoup(_html(out, name), "html.parser")


def _claim_rows(soup) -> list[tuple[str, ...]]:
    """(result, statement, evidence) of each row of a page's claims list."""
    rows = soup.select("#course-claims tbody tr")
    return [tuple(td.get_text(strip=True) for td in row.find_all("td")) for row in rows]


# --------------------------------------------------------------------------- notebooks


def test_discovers_the_course_notebooks():
    assert site.discover() == NOTEBOOKS
    assert site.select(["01"]) == [REPO / "notebooks" / "01_intro_weights.ipynb"]
    with pytest.raises(site.BuildError, match="no notebook"):
        site.select(["99_missing"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_header_feeds_the_book(path):
    header = notebooks.read_header(path)
    assert header.title and not header.title.startswith(("#", path.name[:2])), header.title
    assert header.description and header.description[-1] in ".!?", header.description
    assert 3 <= len(header.learn) <= 6, f"'What you will learn' bullets: {header.learn}"
    assert header.minutes and 10 <= header.minutes <= 120, header.time
    assert header.prerequisites, "no **Prerequisites:** line"
    earlier = notebooks.prerequisite_numbers(header, [p.name[:2] for p in NOTEBOOKS], path.name[:2])
    assert earlier or path.name[:2] == "01", f"no earlier notebook named: {header.prerequisites}"


def test_prerequisites_are_read_as_notebook_numbers():
    known = [f"{n:02d}" for n in range(1, 15)]
    header = notebooks.Header(
        "t", "d", prerequisites="01 (weights), 03 · Gradient descent; 11 helps."
    )
    assert notebooks.prerequisite_numbers(header, known) == ["01", "03", "11"]
    assert notebooks.prerequisite_numbers(header, known, before="11") == ["01", "03"]
    header.prerequisites = "the 17,435-image sample and 60,000 images; 99 is no notebook"
    assert notebooks.prerequisite_numbers(header, known) == []
    later = notebooks.read_header(REPO / "notebooks" / "05_visualization.ipynb")
    assert notebooks.prerequisite_numbers(later, known, before="05") == ["01", "02", "03"]


def test_the_repository_comes_from_one_setting(monkeypatch):
    monkeypatch.delenv(book.REPO_SETTING, raising=False)
    assert book.repository() == ""
    monkeypatch.setenv(book.REPO_SETTING, "https://github.com/owner/course.git")
    assert book.repository() == "owner/course"
    assert book.repository("someone/else") == "someone/else"
    with pytest.raises(site.BuildError, match="OWNER/NAME"):
        book.repository("not a repository")
    page = notebooks.Page(NOTEBOOKS[0], notebooks.read_header(NOTEBOOKS[0]))
    assert book.binder_url(page, book.Context("fast", "owner/course")) == (
        "https://mybinder.org/v2/gh/owner/course/HEAD?labpath=notebooks%2F01_intro_weights.ipynb"
    )
    assert "/gh/OWNER/REPO/HEAD" in book.binder_url(page, book.Context("fast", ""))


def test_missing_npm_packages_are_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(assets, "NODE_MODULES", tmp_path / "node_modules")
    monkeypatch.setattr(assets.shutil, "which", lambda name: None)
    with pytest.raises(site.BuildError, match="npm is not installed.*make site-assets"):
        assets.ensure_packages(log=lambda _: None)


# --------------------------------------------------------------------------- the built site


def test_pages_hold_the_executed_notebooks_in_a_book(built):
    out, pages = built
    assert [p.status for p in pages.values()] == ["ok", "ok", "ok"]
    soup = _soup(out, "01_intro_weights.html")
    assert soup.title.get_text() == "01 · What a weight is"
    outputs = " ".join(pre.get_text() for pre in soup.select(".jp-OutputArea-output pre"))
    assert outputs.count("\u2714 ") >= 4, "claim-check lines missing from the outputs"
    cells = soup.select("main .jp-Cell")
    first_code = next(k for k, cell in enumerate(cells) if "jp-CodeCell" in cell["class"])
    top = " ".join(cell.get_text(" ") for cell in cells[:first_code])
    for part in ("What you will learn", "Prerequisites:", "Time:", "Run it", "on Binder"):
        assert part in top, f"{part!r} is not above the first code cell"
    assert soup.select_one("a[rel=next]")["href"] == "03_gradient_descent.html"
    assert soup.select_one("a[rel=prev]") is None
    middle = _soup(out, "03_gradient_descent.html")
    assert middle.select_one("a[rel=prev]")["href"] == "01_intro_weights.html"
    assert middle.select_one("a[rel=next]")["href"] == "99_tiny.html"
    panel = middle.select_one(".course-panel")
    assert [a["href"] for a in panel.select("dd a")][:1] == ["01_intro_weights.html"]
    binder = (
        f"https://mybinder.org/v2/gh/{TEST_REPO}/HEAD?labpath=notebooks%2F03_gradient_descent.ipynb"
    )
    assert panel.select_one("a.course-binder")["href"] == binder
    assert (out / panel.select_one("a.course-download")["href"]).is_file()

    index = _soup(out, "index.html")
    links = [a["href"] for a in index.select(".course-map td.title a")]
    assert links == ["01_intro_weights.html", "03_gradient_descent.html", "99_tiny.html"]
    first = index.select(".course-map tbody tr")[0]
    assert len(first.select("details li")) == len(pages["01"].header.learn) >= 3
    cells = [td.get_text(strip=True) for td in first.find_all("td")]
    assert cells[3] == "30 min" and re.fullmatch(r"\d+ s", cells[4])
    assert cells[5] == f"{len(pages['01'].claims)}/{len(pages['01'].claims)}"
    assert "executed in fast mode" in " ".join(index.footer.get_text().split())


def test_claims_checked_are_listed_with_date_and_mode(built):
    out, pages = built
    claims = pages["01"].claims
    soup = _soup(out, "01_intro_weights.html")
    printed = [
        line[2:]
        for pre in soup.select(".jp-OutputArea-output pre")
        for line in pre.get_text().splitlines()
        if line.startswith("\u2714 ")
    ]
    rows = _claim_rows(soup)
    assert len(rows) == len(claims) == len(printed) >= 4, "every claim the notebook printed"
    for (result, statement, evidence), line in zip(rows, printed, strict=True):
        assert result == "\u2714 passed"
        assert line == f"{statement} ({evidence})" if evidence else line == statement
    summary = soup.select_one("#course-claims p").get_text(" ", strip=True)
    assert re.search(r"When this page was built \(\d{4}-\d\d-\d\d, fast mode\)", summary)
    assert f"{len(claims)} of {len(claims)} claims held" in summary
    tiny = _claim_rows(_soup(out, "99_tiny.html"))
    assert tiny == [("\u2714 passed", "two and two make four", "2 + 2 = 4")]


def test_slider_demos_become_frame_players(built):
    out, pages = built
    soup = _soup(out, "01_intro_weights.html")
    (demo,) = pages["01"].demos
    (player,) = soup.select(".course-frames")
    data = json.loads(player["data-course-frames"])
    assert 9 <= len(data["frames"]) <= 15 and len(data["labels"]) == len(data["frames"])
    digests = {hashlib.sha256((out / f).read_bytes()).hexdigest() for f in data["frames"]}
    assert len(digests) == len(data["frames"]), "every slider position draws its own figure"
    default = demo["control"]["default_index"]
    assert data["labels"][default] == "5", "the default weight w = 5 is among the frames"
    slider = player.select_one("input[type=range]")
    assert (slider["min"], slider["max"], slider["value"]) == (
        "0",
        str(len(data["frames"]) - 1),
        str(default),
    )
    assert player.select_one("img.course-frame")["src"] == data["frames"][default]
    assert "bias b = 20" in player.get_text(), "the fixed controls are named"
    total = demo["control"]["positions"]
    assert f"for {len(data['frames'])} of the {total} positions of weight w" in player.get_text()
    views = soup.find_all("script", type="application/vnd.jupyter.widget-view+json")
    assert views, "the progress bar stays a live widget"
    assert demo["model_id"] not in str(soup), "the demo's widget state is replaced by its frames"

    tiny = _soup(out, "99_tiny.html").select_one(".course-frames select")
    options = [(o["value"], o.get_text(), o.has_attr("selected")) for o in tiny.find_all("option")]
    assert options == [("0", "a", False), ("1", "b", True), ("2", "c", False)]


def test_every_script_style_and_font_is_in_the_site(built):
    out, _ = built
    for name in ("index.html", "01_intro_weights.html", "99_tiny.html"):
        soup = _soup(out, name)
        sources = [tag["src"] for tag in soup.find_all(["script", "img"], src=True)]
        sources += [tag["href"] for tag in soup.find_all("link", href=True)]
        assert any(src.endswith("tex-chtml-full.js") for src in sources), name
        for source in sources:
            assert not re.match(r"(https?:)?//", source), f"{name} loads {source} from the network"
            if not source.startswith("data:"):
                assert (out / source).is_file(), f"{name}: {source} is not in the site"
        assert not re.search(r"cdnjs|unpkg|jsdelivr|googleapis", _html(out, name)), name
    for path in ("mathjax/tex-chtml-full.js", "require.js", "html-manager/embed-amd.js"):
        assert (out / "assets" / path).is_file(), path
    fonts = out / "assets" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert list(fonts.glob("*.woff")), "MathJax's fonts"
    assert "mathjax" in (out / "assets" / "THIRD-PARTY-LICENSES.txt").read_text(encoding="utf-8")


def test_search_index_covers_every_page(built):
    out, _ = built
    script = (out / "search-index.js").read_text(encoding="utf-8")
    documents = json.loads(script.split("=", 1)[1].strip().rstrip(";"))
    assert len({doc["id"] for doc in documents}) == len(documents)
    for name in ("01_intro_weights", "03_gradient_descent", "99_tiny"):
        soup = _soup(out, f"{name}.html")
        mine = [doc for doc in documents if doc["url"].split("#")[0] == f"{name}.html"]
        assert mine, f"no search documents for {name}"
        for doc in mine:
            if "#" in doc["url"]:
                assert soup.find(id=doc["url"].split("#", 1)[1]), doc["url"]
    assert any("stability limit" in doc["text"].lower() for doc in documents)


# --------------------------------------------------------------------------- failures

# Only course_lib.claims, loaded under its own name (the whole package imports torch, too
# slow for the 5 s cell limit of the test below on a busy machine).
_CLAIMS_ONLY = """import importlib.util, pathlib, sys
path = pathlib.Path(importlib.util.find_spec("course_lib").origin).parent / "claims.py"
spec = importlib.util.spec_from_file_location("course_lib.claims", path)
claims = sys.modules["course_lib.claims"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(claims)"""


def test_a_failing_or_hanging_notebook_fails_the_build_clearly(tmp_path):
    work = tmp_path / "nb"
    work.mkdir()
    broken = _notebook(
        work / "97_broken.ipynb",
        "print('before')\n" + _CLAIMS_ONLY,
        "claims.claim(True, 'this one holds')",
        "claims.claim(False, 'this one does not', 'ratio 3.0')",
    )
    hung = _notebook(work / "98_hung.ipynb", "import time\ntime.sleep(600)")
    out = tmp_path / "site"
    with pytest.raises(site.BuildError) as info:
        site.build([broken, hung], out, fast=True, cell_timeout=5, log=lambda _: None)
    message = str(info.value)
    assert "2 of 2 notebooks failed" in message
    assert "97_broken.ipynb" in message and "Claim not confirmed: this one does not" in message
    assert "98_hung.ipynb" in message and "longer than 5 s" in message
    # The broken notebook's page still shows how far it got, and which claim failed.
    page = _soup(out, "97_broken.html")
    assert "1 of 2 claims held" in page.select_one("#course-claims p").get_text(" ")
    assert _claim_rows(page) == [
        ("\u2714 passed", "this one holds", ""),
        ("\u2718 failed", "this one does not", "ratio 3.0"),
    ]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.count("failed</span>") == 2


def test_a_notebook_past_its_time_limit_is_stopped(tmp_path):
    hung = _notebook(tmp_path / "99_hung.ipynb", "import time\ntime.sleep(600)")
    out = tmp_path / "site"
    with pytest.raises(site.BuildError, match=r"did not finish within 8 s"):
        site.build([hung], out, fast=True, notebook_timeout=8, log=lambda _: None)
    assert "timed out" in (out / "index.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- in a browser


def _unavailable(message: str):
    """Skip on a developer's machine, fail in CI (which installs Chromium)."""
    if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(
            f"Chromium not found at {CHROMIUM}: apt-get install chromium, or set COURSE_CHROMIUM"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: make test installs it (.[dev])")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = chromium.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(60_000)
        yield context
    finally:
        playwright.stop()


class Offline:
    """A page whose requests may only read ``file://`` (and data:) URLs; all else is blocked."""

    def __init__(self, context, url: str):
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.page = context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url} ({r.failure})"))
        self.page.goto(url, wait_until="load")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def check_clean(self) -> None:
        assert not self.blocked, f"requests left the page: {self.blocked}"
        assert not self.failed, f"requests failed: {self.failed}"
        assert not self.errors, f"console errors: {self.errors}"


_MATHJAX_STARTED = (
    "() => window.MathJax && window.MathJax.startup && window.MathJax.startup.promise"
)
_TYPESET = "() => window.MathJax.startup.promise.then(() => document.querySelectorAll('mjx-container').length)"
_RAW_MATH = """() => Array.from(document.querySelectorAll('.jp-RenderedMarkdown, .course-map td')).map(el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll('mjx-container, code, pre, script').forEach(n => n.remove());
    return copy.textContent;
}).filter(text => text.includes('$'))"""
_BROKEN_IMAGES = """() => Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src.slice(0, 100))"""


def _check_page(context, out: Path, name: str) -> Offline:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    view = Offline(context, (out / name).as_uri())
    try:
        view.page.wait_for_function(_MATHJAX_STARTED, timeout=30_000)
    except PlaywrightTimeout:
        pytest.fail(f"{name}: MathJax did not start (is it in assets/?); failed: {view.failed}")
    typeset = view.page.evaluate(_TYPESET)
    assert typeset > 0, f"{name}: no formula typeset"
    assert view.page.evaluate(_RAW_MATH) == [], f"{name}: raw $...$ left in the rendered text"
    assert view.page.evaluate(_BROKEN_IMAGES) == [], f"{name}: images that did not load"
    return view


def test_the_site_works_offline_in_chromium(built, browser):
    out, _ = built
    for name in ("index.html", "03_gradient_descent.html"):
        view = _check_page(browser, out, name)
        view.check_clean()
        view.page.close()

    view = _check_page(browser, out, "01_intro_weights.html")
    page = view.page
    page.wait_for_selector(".widget-hprogress", state="attached")  # the live widget renders
    player = page.locator(".course-frames").first
    image = player.locator("img.course-frame")
    player.scroll_into_view_if_needed()
    before_src, before_png = image.get_attribute("src"), image.screenshot()
    if os.environ.get("COURSE_SCREENSHOT_DIR"):
        page.evaluate("window.scrollBy(0, -160)")
        page.screenshot(path=str(Path(os.environ["COURSE_SCREENSHOT_DIR"]) / SCREENSHOT_NAME))
    slider = player.locator("input[type=range]")
    slider.focus()
    page.keyboard.press("End")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    assert image.get_attribute("src") != before_src, "moving the slider did not swap the frame"
    assert image.screenshot() != before_png, "the figure on screen did not change"
    assert player.locator("output").inner_text() == "20", "the readout shows the slider's end"
    view.check_clean()
    page.close()


def test_the_dropdown_player_and_search_work_offline(built, browser):
    out, _ = built
    view = _check_page(browser, out, "99_tiny.html")
    page = view.page
    page.wait_for_selector(".widget-hprogress", state="attached")
    image = page.locator(".course-frames img.course-frame")
    before = image.get_attribute("src")
    page.locator(".course-frames select").select_option("2")
    assert image.get_attribute("src") != before and image.get_attribute("src").endswith("-02.png")

    page.fill(".course-search-input", "stability limit")
    first = page.locator(".course-search-results a").first
    first.wait_for()
    assert first.get_attribute("href").startswith("03_gradient_descent.html#")
    first.click()
    page.wait_for_url("**/03_gradient_descent.html#*")
    view.check_clean()
    page.close()
