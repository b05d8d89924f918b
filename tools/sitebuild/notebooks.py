"""The course's notebooks as pages of the site: finding them and reading their headers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = REPO / "notebooks"
COURSE_TITLE = "Weights in Machine Learning and Deep Learning"


class BuildError(RuntimeError):
    """A notebook failed, timed out or could not be rendered, or the set-up is incomplete."""


@dataclass
class Header:
    """What a notebook's first cell says about it (markdown snippets)."""

    title: str
    description: str
    learn: list[str] = field(default_factory=list)
    prerequisites: str = ""
    time: str = ""

    @property
    def minutes(self) -> int | None:
        """The reading-and-doing time in minutes (``about 30 minutes to read``)."""
        match = re.search(r"(\d+)\s*minutes?\s+to\s+read", self.time)
        return int(match.group(1)) if match else None


@dataclass
class Page:
    """One notebook of the site, and what its build produced."""

    source: Path
    header: Header
    seconds: float | None = None
    status: str = "ok"  # ok | error | timeout
    message: str = ""
    executed: Path | None = None
    claims: list[dict] = field(default_factory=list)
    demos: list[dict] = field(default_factory=list)
    frame_seconds: float = 0.0

    @property
    def title(self) -> str:
        return self.header.title

    @property
    def description(self) -> str:
        return self.header.description

    @property
    def number(self) -> str:
        return self.source.name[:2]

    @property
    def stem(self) -> str:
        return self.source.stem

    @property
    def html_name(self) -> str:
        return f"{self.source.stem}.html"


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


def read_header(path: Path) -> Header:
    """Title, one-line description, "What you will learn", prerequisites and time."""
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
    return Header(
        title=title,
        description=sentence,
        learn=_bullets_after(text, "**What you will learn**"),
        prerequisites=_field(paragraphs, "**Prerequisites:**"),
        time=_field(paragraphs, "**Time:**"),
    )


def describe(path: Path) -> tuple[str, str]:
    """Title and one-line description from the notebook's first markdown cell."""
    header = read_header(path)
    return header.title, header.description


def _field(paragraphs: list[str], label: str) -> str:
    for paragraph in paragraphs:
        if paragraph.startswith(label):
            return " ".join(paragraph[len(label) :].split())
    return ""


def _bullets_after(text: str, label: str) -> list[str]:
    """The ``- `` bullets (with their continuation lines) that follow ``label``."""
    if label not in text:
        return []
    bullets: list[str] = []
    for line in text.split(label, 1)[1].splitlines():
        if line.startswith(("- ", "* ")):
            bullets.append(line[2:].strip())
        elif bullets and line.startswith(" ") and line.strip():
            bullets[-1] += " " + line.strip()
        elif bullets or line.strip():
            break
    return bullets


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def prerequisite_numbers(header: Header, known: Iterable[str], before: str = "99") -> list[str]:
    """The earlier notebooks (numbers below ``before``, among ``known``) the prerequisites name.

    Later notebooks named there ("explained in detail in 13") are pointers, not
    prerequisites.
    """
    known = set(known)
    found = []
    for number in re.findall(r"(?<![\d,.])(\d\d)(?![\d,.]\d)", header.prerequisites):
        if number in known and number < before and number not in found:
            found.append(number)
    return found
