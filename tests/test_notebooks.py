"""Every notebook follows the course's notebook contract (its run is checked by nbval)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from course_lib.config import TOPICS

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _ids(paths):
    return pytest.mark.parametrize("path", paths, ids=[p.stem for p in paths])


def test_one_notebook_per_topic_in_teaching_order():
    """Notebook NN has its topic module, its exercises and its test file (config.TOPICS)."""
    assert [p.name[:2] for p in NOTEBOOKS] == list(TOPICS), "one notebook per topic, in order"
    for path in NOTEBOOKS:
        topic = TOPICS[path.name[:2]]
        for companion in (f"course_lib/{topic}.py", f"course_lib/exercises/{topic}.py",
                          f"tests/test_{topic}.py"):  # fmt: skip
            assert (REPO / companion).is_file(), f"{path.name} has no {companion}"


@_ids(NOTEBOOKS)
def test_stored_without_outputs(path):
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: a code cell has stored outputs"
            assert cell.get("execution_count") is None, (
                f"{path.name}: a code cell has an execution count"
            )


@_ids(NOTEBOOKS)
def test_follows_the_notebook_contract(path):
    nb = _load(path)
    cells = nb["cells"]
    number = path.name[:2]
    first = _source(cells[0])
    assert cells[0]["cell_type"] == "markdown" and first.startswith(f"# {number} ·"), "title cell"
    for heading in ("What you will learn", "Prerequisites", "Time"):
        assert heading in first, f"{path.name}: the first cell lacks '{heading}'"
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    markdown = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    setup_cell = next(_source(c) for c in cells if c["cell_type"] == "code")
    assert "import course_lib as cl" in setup_cell and "cl.setup(" in setup_cell
    assert "cl.widgets.interact(" in code, f"{path.name}: no slider demo"
    assert "interact_manual" not in code
    assert len(re.findall(r"cl\.claim\(", code)) >= 4, f"{path.name}: too few claim checks"
    checks = set(re.findall(r'cl\.exercises\.check\("(\d\d)\.(\d)"', code))
    assert 2 <= len(checks) <= 3 and {n for n, _ in checks} == {number}, f"{path.name}: exercises"
    assert "## Summary" in markdown and "## References" in markdown
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@_ids(NOTEBOOKS)
def test_code_cells_stay_short(path):
    """The design: heavy code lives in course_lib; a cell rarely exceeds 15 lines."""
    for cell in _load(path)["cells"]:
        if cell["cell_type"] == "code":
            lines = [line for line in _source(cell).splitlines() if line.strip()]
            assert len(lines) <= 15, (
                f"{path.name}: a code cell has {len(lines)} lines:\n{_source(cell)}"
            )


@_ids(NOTEBOOKS)
def test_exercise_stubs_are_unsolved(path):
    """Stored stubs must not solve the exercise (the learner does)."""
    for cell in _load(path)["cells"]:
        src = _source(cell)
        if cell["cell_type"] == "code" and "cl.exercises.check(" in src and "def " in src:
            assert "raise NotImplementedError" in src or "..." in src, f"{path.name}: solved stub"


def test_readme_course_map_and_times_cover_every_notebook():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    course_map = readme.split("## Course map", 1)[1].split("\n## ", 1)[0]
    times = readme.split("<!-- times -->", 1)[1].split("<!-- /times -->", 1)[0]
    for number, stem in ((p.name[:2], p.stem) for p in NOTEBOOKS):
        assert f"](notebooks/{stem}.ipynb)" in course_map, (
            f"README course map lacks a link to {stem}"
        )
        assert re.search(rf"^\| {number} \| \d+(\.\d)? s \|", times, re.M), (
            f"README's table of fast-mode times lacks notebook {number}"
        )
    assert "in progress" not in course_map
    guide = (REPO / "docs" / "instructor.md").read_text(encoding="utf-8")
    for number in TOPICS:
        assert f"\n| {number} |" in guide, (
            f"docs/instructor.md's time table lacks notebook {number}"
        )
