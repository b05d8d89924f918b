"""The package's shape: lessons depend only on earlier lessons, and nothing grows too long.

A topic module (one per notebook) imports the shared modules and, for a deliberate reuse
of an earlier lesson, an earlier notebook's module, never a later one. No module of the
package holds more than 600 lines and no function more than 60, so that each reads as
its notebook's companion.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from course_lib.config import TOPICS

PACKAGE = Path(__file__).resolve().parent.parent / "course_lib"
NUMBER = {topic: number for number, topic in TOPICS.items()}
MODULES = sorted(PACKAGE.rglob("*.py"))


def _imported_topics(path: Path) -> set[str]:
    """The topic modules that ``path`` imports (relative imports of the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = (node.module or "").split(".")[0]
            names = [base] if base else [a.name for a in node.names]
            found |= {n for n in names if n in NUMBER}
    return found


@pytest.mark.parametrize("topic", list(NUMBER), ids=list(NUMBER))
def test_a_lesson_imports_no_later_lesson(topic):
    for path in (PACKAGE / f"{topic}.py", PACKAGE / "exercises" / f"{topic}.py"):
        later = {t for t in _imported_topics(path) if NUMBER[t] > NUMBER[topic]}
        assert not later, f"{path.relative_to(PACKAGE.parent)} imports later lessons: {later}"


def test_shared_modules_import_no_lesson():
    """Building blocks sit below the lessons (the course command may warm a lesson's cache)."""
    tools = {"cli", "doctor", "__main__"}
    for path in PACKAGE.glob("*.py"):
        if path.stem not in NUMBER and path.stem not in tools:
            imported = _imported_topics(path)
            assert not imported, f"the shared module {path.name} imports lessons: {imported}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_modules_and_functions_stay_short(path):
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= 600, f"{path.name} has {lines} lines (at most 600)"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= 60, f"{path.name}: {node.name} has {length} lines (at most 60)"
