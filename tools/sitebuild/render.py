"""Rendering an executed notebook to a page of the site (nbconvert's lab template).

The page is nbconvert's JupyterLab-look HTML with its scripts served from the site's
own ``assets/`` folder (require.js, the Jupyter widgets HTML manager for the widgets
that stay live, such as progress bars, and MathJax 3, the version JupyterLab
itself renders with), and with the course's additions: the book's navigation and
search box, a panel with the notebook's time, prerequisites, run links and claims,
each slider demo replaced by a frame player over its pre-rendered frames, and the
list of claims checked when the site was built.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from . import book
from .notebooks import COURSE_TITLE, Page

__all__ = ["COURSE_TITLE", "claims_html", "frames_html", "prune_widget_state", "render"]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"

#: The scripts every page loads, relative to the site's root.
REQUIRE_JS = "assets/require.js"
WIDGET_MANAGER = "assets/html-manager/embed-amd.js"
MATHJAX = "assets/mathjax/tex-chtml-full.js"

_PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block extra_css %}
{{ super() }}
<link rel="stylesheet" href="assets/course-site.css">
{% endblock extra_css %}
{%- block html_head_js_mathjax -%}
<script src="assets/mathjax-config.js"></script>
<script defer id="MathJax-script" src="{{ resources.course.mathjax }}"></script>
{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}
{%- endblock html_head_js_mermaidjs -%}
{%- block body_header -%}
{{ super() }}
{{ resources.course.header }}
{%- endblock body_header -%}
{% block rawcell scoped %}
{%- if cell.metadata.get('course_html') -%}
<div class="jp-Cell jp-MarkdownCell jp-Notebook-cell course-cell">
<div class="jp-Cell-inputWrapper">
<div class="jp-Collapser jp-InputCollapser jp-Cell-inputCollapser"></div>
<div class="jp-InputArea jp-Cell-inputArea">
{%- if resources.global_content_filter.include_input_prompt -%}{{ self.empty_in_prompt() }}{%- endif -%}
<div class="jp-RenderedHTMLCommon course-cell-body">{{ cell.source }}</div>
</div>
</div>
</div>
{%- else -%}
{{ super() }}
{%- endif -%}
{% endblock rawcell %}
{% block body_footer %}
{{ resources.course.footer }}
<script src="assets/course-site.js"></script>
{{ super() }}
{% endblock body_footer %}
"""


def render(page: Page, pages: list[Page], target: Path, context: book.Context) -> None:
    """Render ``page`` (executed) to ``target``, with the navigation among ``pages``."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(page.executed, as_version=4)
    nb.metadata["title"] = f"{page.number} · {page.title}"
    attach_frames(nb, page)
    attach_default_figures(nb)
    prune_widget_state(nb)
    _insert_html(nb, 1, book.panel_html(page, pages, context))
    _insert_html(nb, len(nb.cells), claims_html(page, context))
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"course_page.html.j2": _PAGE_TEMPLATE})],
        template_file="course_page.html.j2",
        require_js_url=REQUIRE_JS,
        widget_renderer_url=WIDGET_MANAGER,
    )
    course = {
        "mathjax": MATHJAX,
        "header": book.header_html(page, pages),
        "footer": book.footer_html(page, pages),
    }
    resources = {"course": course, "metadata": {"name": page.stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    target.write_text(body, encoding="utf-8")


def _insert_html(nb, position: int, fragment: str) -> None:
    """Add ``fragment`` as a cell of the page (the panel after the first cell, the claims last)."""
    import nbformat

    cell = nbformat.v4.new_raw_cell(fragment)
    cell.metadata["course_html"] = True
    nb.cells.insert(min(position, len(nb.cells)), cell)


# --------------------------------------------------------------------------- slider demos


def attach_frames(nb, page: Page) -> int:
    """Replace each slider demo that has frames by its frame player (an HTML output)."""
    by_model = {demo["model_id"]: demo for demo in page.demos if demo.get("frames")}
    count = 0
    for cell in nb.cells:
        for k, output in enumerate(cell.get("outputs", [])):
            view = output.get("data", {}).get(WIDGET_VIEW)
            demo = by_model.get(view.get("model_id")) if view else None
            if demo:
                count += 1
                player = frames_html(demo, page.stem, f"{page.number}-demo{count}")
                cell.outputs[k] = _display({"text/html": player})
    return count


def _display(data: dict):
    import nbformat

    return nbformat.v4.new_output("display_data", data=data)


def frames_html(demo: dict, stem: str, key: str) -> str:
    """A range input (or a select, for a dropdown) that swaps the demo's frames."""
    control = demo["control"]
    frames = [f"frames/{stem}/{name}" for name in demo["frames"]]
    labels = control["labels"]
    default = control["default_index"]
    label = html.escape(control["description"])
    field_id = f"course-frames-{key}"
    if control["kind"] == "dropdown":
        options = "".join(
            f'<option value="{k}"{" selected" if k == default else ""}>{html.escape(text)}</option>'
            for k, text in enumerate(labels)
        )
        field = f'<select id="{field_id}" class="course-frames-input">{options}</select>'
    else:
        field = (
            f'<input id="{field_id}" class="course-frames-input" type="range" min="0" '
            f'max="{len(frames) - 1}" step="1" value="{default}" '
            f'aria-valuetext="{html.escape(labels[default])}">'
            f'<output for="{field_id}">{html.escape(labels[default])}</output>'
        )
    fixed = ", ".join(
        f"{html.escape(item['description'])} = {html.escape(item['label'])}"
        for item in demo.get("fixed", [])
    )
    fixed_note = f" The other controls stay at their defaults: {fixed}." if fixed else ""
    data = html.escape(json.dumps({"frames": frames, "labels": labels}), quote=True)
    return (
        f'<div class="course-frames jp-OutputArea-output tex2jax_ignore" data-course-frames="{data}">'
        f'<div class="course-frames-control"><label for="{field_id}">{label}</label>{field}</div>'
        f'<img class="course-frame" src="{html.escape(frames[default])}" '
        f'alt="the figure for {label} = {html.escape(labels[default])}">'
        f'<p class="course-frames-note">{_coverage(len(frames), control, label)}'
        f"{fixed_note} Run the notebook to move every control.</p></div>"
    )


def _coverage(count: int, control: dict, label: str) -> str:
    total = control.get("positions", count)
    kind = "choices" if control["kind"] == "dropdown" else "positions"
    if total <= count:
        return f"Pre-rendered for all {count} {kind} of {label}."
    return f"Pre-rendered for {count} of the {total} {kind} of {label}."


def attach_default_figures(nb) -> int:
    """Replace each remaining slider demo by the figure of its default values.

    A demo without frames (its notebook failed before they were drawn) still shows
    that figure, taken from the stored widget state, where its Output widget holds
    it. Returns how many demos got a figure.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in nb.cells:
        for k, output in enumerate(cell.get("outputs", [])):
            view = output.get("data", {}).get(WIDGET_VIEW)
            figures = _figures_of(view.get("model_id"), state, set()) if view else []
            if figures:
                cell.outputs[k] = _display({"image/png": figures[0], "text/plain": "<Figure>"})
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
    for child in _children(model):
        figures += _figures_of(child, state, seen)
    return figures


def _children(model: dict) -> list[str]:
    """The model ids a widget model refers to (children, layout, style, ...)."""
    found = []
    stack = list(model.values())
    while stack:
        value = stack.pop()
        if isinstance(value, str) and value.startswith("IPY_MODEL_"):
            found.append(value[len("IPY_MODEL_") :])
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return found


def prune_widget_state(nb) -> int:
    """Keep only the widget models that a remaining live widget view needs.

    Slider demos are shown by their frame players (or default figures); their
    widgets' state (with a copy of the figure inside) would only add weight. Without any live widget the
    page loads no widget manager at all. Returns the number of models kept.
    """
    widgets = nb.metadata.get("widgets", {}).get(WIDGET_STATE)
    if widgets is None:
        return 0
    state = widgets.get("state", {})
    keep: set[str] = set()
    stack = [
        output["data"][WIDGET_VIEW].get("model_id")
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    while stack:
        model_id = stack.pop()
        if model_id in state and model_id not in keep:
            keep.add(model_id)
            stack.extend(_children(state[model_id].get("state", {})))
    if not keep:
        del nb.metadata["widgets"]
        return 0
    widgets["state"] = {key: value for key, value in state.items() if key in keep}
    return len(keep)


# --------------------------------------------------------------------------- claims


def claims_html(page: Page, context: book.Context) -> str:
    """The claims checked when the site was built: statement, evidence, passed."""
    when = f"{context.built_date}, {context.mode} mode"
    if not page.claims:
        summary = "This notebook checked no claims" + (
            " before it stopped." if page.status != "ok" else "."
        )
        return (
            f'<section class="course-claims tex2jax_ignore" id="course-claims"><h2>Claims checked</h2>'
            f"<p>{summary} (built {when})</p></section>"
        )
    passed = sum(1 for claim in page.claims if claim["passed"])
    rows = "".join(
        f'<tr class="{"passed" if c["passed"] else "failed"}">'
        f'<td class="verdict">{"&#10004; passed" if c["passed"] else "&#10008; failed"}</td>'
        f"<td>{html.escape(c['statement'])}</td><td>{html.escape(c['evidence'])}</td></tr>"
        for c in page.claims
    )
    return (
        f'<section class="course-claims tex2jax_ignore" id="course-claims"><h2>Claims checked</h2>'
        f"<p>Every quantitative statement of this notebook is asserted in its code. "
        f"When this page was built ({when}), {passed} of {len(page.claims)} claims held.</p>"
        f"<table><thead><tr><th>result</th><th>statement</th><th>evidence</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></section>"
    )
