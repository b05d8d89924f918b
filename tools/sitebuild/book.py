"""The site as a book: course map, navigation, run links and the search index."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from .notebooks import COURSE_TITLE, BuildError, Page, discover, prerequisite_numbers

#: The setting that names the course's public GitHub repository (``owner/name``), for
#: the Binder links; ``--repo`` on the command line overrides it.
REPO_SETTING = "COURSE_SITE_REPO"
#: What the links use while the setting is unset: visibly a placeholder, not an address.
REPO_PLACEHOLDER = "OWNER/REPO"
BINDER = "https://mybinder.org/v2/gh/{repo}/HEAD?labpath={path}"
SEARCH_INDEX = "search-index.js"


@dataclass
class Context:
    """What every page of one build shares."""

    mode: str
    repo: str = ""
    built: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def built_date(self) -> str:
        return self.built.strftime("%Y-%m-%d")

    @property
    def repo_or_placeholder(self) -> str:
        return self.repo or REPO_PLACEHOLDER


def repository(value: str | None = None) -> str:
    """The ``owner/name`` of the course's GitHub repository: ``value``, else the setting."""
    value = (value if value is not None else os.environ.get(REPO_SETTING, "")).strip()
    value = re.sub(r"^(https?://)?(www\.)?github\.com/", "", value).removesuffix(".git").strip("/")
    if value and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
        raise BuildError(
            f"{REPO_SETTING} (or --repo) must name a GitHub repository as OWNER/NAME, got {value!r}"
        )
    return value


def binder_url(page: Page, context: Context) -> str:
    path = quote(f"notebooks/{page.source.name}", safe="")
    return BINDER.format(repo=context.repo_or_placeholder, path=path)


def _markdown(text: str) -> str:
    """Inline markdown (code, emphasis, math left for MathJax) as HTML, without a <p>."""
    from nbconvert.filters import markdown2html

    rendered = markdown2html(text).strip()
    return re.sub(r"^<p>(.*)</p>$", r"\1", rendered, flags=re.S)


def _neighbours(page: Page, pages: list[Page]) -> tuple[Page | None, Page | None]:
    index = pages.index(page)
    before = pages[index - 1] if index > 0 else None
    after = pages[index + 1] if index + 1 < len(pages) else None
    return before, after


def _link(page: Page | None, rel: str, arrow: str) -> str:
    if page is None:
        return f'<span class="course-{rel} course-none"></span>'
    text = f"{page.number} · {html.escape(page.title)}"
    text = f"{arrow} {text}" if rel == "prev" else f"{text} {arrow}"
    return f'<a class="course-{rel}" rel="{rel}" href="{html.escape(page.html_name)}">{text}</a>'


def search_box() -> str:
    return (
        '<div class="course-search" role="search">'
        '<input type="search" class="course-search-input" placeholder="Search the course"'
        ' aria-label="Search the course" autocomplete="off">'
        '<ol class="course-search-results" hidden></ol></div>'
    )


def header_html(page: Page, pages: list[Page]) -> str:
    """The bar on top of every notebook page: course map, previous/next, search."""
    before, after = _neighbours(page, pages)
    return (
        '<nav class="course-nav tex2jax_ignore" aria-label="Course">'
        f'<a class="course-home" href="index.html">{html.escape(COURSE_TITLE)}</a>'
        f"{_link(before, 'prev', '&larr;')}{_link(after, 'next', '&rarr;')}"
        f"{search_box()}</nav>"
    )


def footer_html(page: Page, pages: list[Page]) -> str:
    before, after = _neighbours(page, pages)
    return (
        '<nav class="course-nav course-nav-bottom tex2jax_ignore" aria-label="Pages">'
        f"{_link(before, 'prev', '&larr;')}"
        '<a class="course-home" href="index.html">course map</a>'
        f"{_link(after, 'next', '&rarr;')}</nav>"
    )


def panel_html(page: Page, pages: list[Page], context: Context) -> str:
    """Under the notebook's own header: its prerequisites as links, run links, this build."""
    known = {p.number: p for p in pages}
    all_numbers = [p.name[:2] for p in _all_sources(pages)]
    numbers = prerequisite_numbers(page.header, all_numbers, before=page.number)
    links = [
        f'<a href="{html.escape(known[n].html_name)}">{n} · {html.escape(known[n].title)}</a>'
        if n in known
        else n
        for n in numbers
    ]
    rows = []
    if links:
        rows.append(("Read first", ", ".join(links)))
    rows.append(("Run it", run_links(page, context)))
    rows.append(("This page", _build_summary(page, context)))
    body = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<aside class="course-panel tex2jax_ignore"><dl>{body}</dl></aside>'


def _all_sources(pages: list[Page]) -> list[Path]:
    return discover() + [p.source for p in pages]


def run_links(page: Page, context: Context) -> str:
    binder = html.escape(binder_url(page, context))
    note = (
        f' <span class="course-placeholder">(a template: the site was built without '
        f"{REPO_SETTING}=owner/name)</span>"
        if not context.repo
        else ""
    )
    download = html.escape(f"notebooks/{page.source.name}")
    return (
        f'<a class="course-binder" href="{binder}">on Binder</a>{note}; '
        f"locally: <code>make lab</code> in a clone of the course, then open "
        f"<code>notebooks/{html.escape(page.source.name)}</code> "
        f'(<a class="course-download" href="{download}" download>download the notebook</a>)'
    )


def _build_summary(page: Page, context: Context) -> str:
    ran = {"ok": "executed", "error": "failed", "timeout": "timed out"}[page.status]
    seconds = f" in {page.seconds:.0f} s" if page.seconds is not None else ""
    text = f"{ran}{seconds} in {context.mode} mode on {context.built_date}; "
    if not page.claims:
        return text + "no claims checked"
    passed = sum(1 for claim in page.claims if claim["passed"])
    verdict = "all held" if passed == len(page.claims) else f"{passed} held"
    return text + f'<a href="#course-claims">{len(page.claims)} claims checked, {verdict}</a>'


# --------------------------------------------------------------------------- course map


def write_index(pages: list[Page], out_dir: Path, context: Context) -> Path:
    """The course map: one entry per notebook with what it teaches, times and claims."""
    rows = "\n".join(_index_row(page, out_dir) for page in pages)
    total = sum(p.seconds or 0 for p in pages)
    minutes = sum(p.header.minutes or 0 for p in pages)
    built = context.built.strftime("%Y-%m-%d %H:%M UTC")
    index = out_dir / "index.html"
    index.write_text(
        _INDEX.format(
            title=html.escape(COURSE_TITLE),
            rows=rows,
            search=search_box(),
            mode=context.mode,
            built=built,
            count=len(pages),
            total=f"{total / 60:.1f}",
            hours=f"{minutes / 60:.1f}",
        ),
        encoding="utf-8",
    )
    return index


def _index_row(page: Page, out_dir: Path) -> str:
    if page.status == "ok":
        run = f"{page.seconds:.0f} s"
    elif page.status == "timeout":
        run = '<span class="bad">timed out</span>'
    else:
        run = '<span class="bad">failed</span>'
    title = html.escape(page.title)
    if (out_dir / page.html_name).is_file():
        title = f'<a href="{html.escape(page.html_name)}">{title}</a>'
    learn = "".join(f"<li>{_markdown(item)}</li>" for item in page.header.learn)
    learn = (
        f"<details><summary>what you will learn</summary><ul>{learn}</ul></details>"
        if learn
        else ""
    )
    reading = f"{page.header.minutes} min" if page.header.minutes else ""
    passed = sum(1 for claim in page.claims if claim["passed"])
    claims = f"{passed}/{len(page.claims)}" if page.claims else "none"
    return (
        f"<tr><td>{page.number}</td><td class='title'>{title}</td>"
        f"<td>{_markdown(page.description)}{learn}</td><td class='time'>{reading}</td>"
        f"<td class='time'>{run}</td><td class='time'>{claims}</td></tr>"
    )


_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<link rel="stylesheet" href="assets/course-site.css">
<script src="assets/mathjax-config.js"></script>
<script defer id="MathJax-script" src="assets/mathjax/tex-chtml-full.js"></script>
</head>
<body class="course-index">
<nav class="course-nav tex2jax_ignore" aria-label="Course"><span class="course-home">{title}</span>{search}</nav>
<main>
<h1>{title}</h1>
<p>A hands-on course about the numbers inside models, as a book. Each page is a
notebook executed top to bottom when this site was built, with every figure, every
claim check and its exercises. The slider demos move through figures drawn in advance
(run the notebook for every control), and each page lists the claims that were checked
and held. Read the notebooks in order; each names the ones it builds on.</p>
<table class="course-map">
<thead><tr><th>#</th><th>notebook</th><th>what it is about</th><th>reading and doing</th>
<th>run time</th><th>claims held</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<footer>{count} notebooks, about {hours} hours of reading and doing; executed in {mode}
mode, {total} min in all (wall time of each notebook, kernel start included).
Built {built}.</footer>
</main>
<script src="assets/course-site.js"></script>
</body>
</html>
"""


# --------------------------------------------------------------------------- search


def search_documents(page: Page, rendered: str) -> list[dict]:
    """One search document per section of a rendered page: heading, prose and code."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(rendered, "html.parser")
    docs: list[dict] = []
    current = {"anchor": "", "section": page.title, "text": [], "code": []}
    for cell in soup.select("main .jp-Cell"):
        if "jp-CodeCell" in cell.get("class", []):
            source = cell.select_one(".jp-InputArea .highlight pre, .jp-InputArea pre")
            if source is not None:
                current["code"].append(source.get_text(" ", strip=True))
            continue
        for element in cell.select(".jp-RenderedMarkdown > *"):
            if re.fullmatch(r"h[1-6]", element.name) and element.get("id"):
                docs.append(current)
                heading = element.get_text(" ", strip=True).rstrip("¶").strip()
                current = {"anchor": element["id"], "section": heading, "text": [], "code": []}
            else:
                current["text"].append(element.get_text(" ", strip=True))
    docs.append(current)
    return [
        {
            "id": f"{page.stem}-{number}",
            "url": page.html_name + (f"#{doc['anchor']}" if doc["anchor"] else ""),
            "page": f"{page.number} · {page.title}",
            "section": doc["section"],
            "text": " ".join(doc["text"]),
            "code": " ".join(doc["code"]),
        }
        for number, doc in enumerate(d for d in docs if d["text"] or d["code"])
    ]


def write_search_index(documents: list[dict], out_dir: Path) -> Path:
    """The documents as a script (``file://`` pages cannot fetch JSON), read by MiniSearch."""
    target = out_dir / SEARCH_INDEX
    payload = json.dumps(documents, ensure_ascii=False, separators=(",", ":"))
    target.write_text(f"window.COURSE_SEARCH_DOCUMENTS = {payload};\n", encoding="utf-8")
    return target
