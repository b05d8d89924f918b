"""Every slider demo whose figure is a plain function draws at every corner of its ranges.

The demos are read from the notebooks themselves (each ``cl.widgets.interact`` call whose
function is a topic-module function and whose controls are literal), so a slider added
to a notebook is covered here without a new test. Every dropdown option with all sliders
at their low ends and at their high ends, and each slider alone at either end, must draw
a figure without a single ``RuntimeWarning`` (overflow, division by zero, ...). Demos that draw precomputed
results (``functools.partial`` or a lambda over a notebook's variables) are covered by
their topic's tests.
"""

from __future__ import annotations

import ast
import itertools
import json
import warnings
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import course_lib as cl

REPO = Path(__file__).resolve().parent.parent


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def _aliases(setup_cell: str) -> dict[str, str]:
    """``from course_lib import topic as alias`` lines of a notebook's set-up cell."""
    aliases = {}
    for node in ast.walk(ast.parse(setup_cell)):
        if isinstance(node, ast.ImportFrom) and node.module == "course_lib":
            aliases.update({a.asname or a.name: a.name for a in node.names})
    return aliases


def _pure_demos() -> list[tuple[str, str, dict]]:
    """(notebook, function name, {parameter: control}) of every plain-function demo."""
    demos = []
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = _code_cells(path)
        aliases = _aliases(cells[0])
        for cell in cells:
            for node in ast.walk(ast.parse(cell)):
                if not (
                    isinstance(node, ast.Call) and ast.unparse(node.func) == "cl.widgets.interact"
                ):
                    continue
                fn = node.args[0]
                if not (isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name)):
                    continue  # partial or lambda over the notebook's results
                module = getattr(cl, aliases[fn.value.id])
                names = {"cl": cl, **{a: getattr(cl, m) for a, m in aliases.items()}}
                controls = {kw.arg: eval(ast.unparse(kw.value), names) for kw in node.keywords}
                demos.append((path.stem, f"{module.__name__}.{fn.attr}", controls))
    return demos


def _choices(control) -> list:
    """A dropdown's options, or a slider's two ends."""
    if hasattr(control, "options"):
        return [o[1] if isinstance(o, tuple) else o for o in control.options]
    if control.__class__.__name__ == "FloatLogSlider":
        return [control.base**control.min, control.base**control.max]
    return [control.min, control.max]


def _corners(controls: dict) -> list[dict]:
    """Every dropdown option with all sliders at their low ends, then at their high ends,
    and each slider alone at either end with the other controls at their defaults."""
    defaults = {p: c.value for p, c in controls.items()}
    sliders = [p for p, c in controls.items() if not hasattr(c, "options")]
    dropdowns = [p for p in controls if p not in sliders]
    combos = []
    for end in (0, 1):
        for options in itertools.product(*(_choices(controls[p]) for p in dropdowns)):
            combo = dict(defaults, **dict(zip(dropdowns, options, strict=True)))
            combos.append(combo | {p: _choices(controls[p])[end] for p in sliders})
    for p in sliders:
        combos += [dict(defaults, **{p: v}) for v in _choices(controls[p])]
    unique = {tuple(sorted(c.items())): c for c in combos}
    return list(unique.values())


DEMOS = _pure_demos()


def test_the_plain_demos_are_found():
    names = {name.split(".")[-1] for _, name, _ in DEMOS}
    assert {"neuron_figure", "stats_figure", "trajectory_figure", "gradient_flow_figure"} <= names
    assert len(DEMOS) >= 10


@pytest.mark.parametrize(
    "notebook, name, controls", DEMOS, ids=[f"{n[:2]}-{f.split('.')[-1]}" for n, f, _ in DEMOS]
)
def test_every_corner_draws_without_warnings(notebook, name, controls):
    module_name, fn_name = name.rsplit(".", 1)
    fn = getattr(getattr(cl, module_name.split(".")[-1]), fn_name)
    for params in _corners(controls):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            fig = cl.widgets.render(fn, **params)
        assert isinstance(fig, Figure) and fig.axes, f"{notebook} {fn_name}{params}"
