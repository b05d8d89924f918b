"""course_lib.exercise_progress: each check is recorded on the learner's machine, safely."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

import course_lib as cl
from course_lib import exercise_progress as progress
from course_lib import exercises


def _ok(*args):
    return exercises.get("01.3").solution(*args)


def test_checks_are_recorded_and_shown(capsys):
    assert progress.load() == {}
    cl.exercises.check("01.3", lambda sizes: 0)  # wrong
    cl.exercises.check("01.3", _ok)  # right
    cl.exercises.check("01.1", lambda a, b: "x")  # tried only
    cl.exercises.check("99.9", _ok)  # unknown id: nothing recorded
    record = progress.load()
    assert set(record) == {"01.1", "01.3"}
    assert record["01.3"]["tries"] == 2 and record["01.3"]["done"] is True
    assert record["01.3"]["last_status"] == "correct" and record["01.1"]["done"] is False
    capsys.readouterr()
    cl.progress()
    out = capsys.readouterr().out
    assert out.startswith(f"Exercises done: 1 of {len(progress.summary())}")
    assert "\u2714 01.3 counting the weights of an MLP (2 tries)" in out
    assert "\u270e 01.1 mean squared error" in out and "\u00b7 01.2 least squares" in out
    assert "  01 intro" in out and "  14 rnn" in out and str(progress.path()) in out


def test_a_later_wrong_answer_keeps_done():
    cl.exercises.check("01.3", _ok)
    cl.exercises.check("01.3", lambda sizes: 1)
    entry = progress.load()["01.3"]
    assert entry["done"] and entry["last_status"] == "wrong" and entry["tries"] == 2


def test_summary_covers_every_exercise_in_order():
    rows = progress.summary()
    ids = [r["id"] for r in rows]
    assert ids == sorted(ids) and len(ids) >= 28 and not any(i.startswith("99.") for i in ids)
    assert {r["state"] for r in rows} == {"not yet"}


@pytest.mark.parametrize(
    "content", [b"{not json", b"", b'{"version": 1, "exercises": {"01.1": 3}}', b"\xff\xfe"]
)
def test_an_unreadable_file_is_kept_aside_and_a_new_record_starts(content):
    file = progress.path()
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content)
    progress._warned.clear()
    with pytest.warns(progress.ProgressWarning, match="could not be read"):
        cl.exercises.check("01.3", _ok)
    assert progress.load()["01.3"]["done"]
    assert file.with_name("progress.json.unreadable").read_bytes() == content


def test_an_unwritable_cache_folder_never_stops_a_check(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(blocker))
    progress._warned.clear()
    with pytest.warns(progress.ProgressWarning, match="Could not save your progress"):
        cl.exercises.check("01.3", _ok)
    assert "[correct]" in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        cl.exercises.check("01.3", _ok)


def test_checker_errors_and_untouched_stubs_are_not_recorded():
    progress.record(exercises.Result("01.1", False, "error", "the checker failed"))
    cl.exercises.check("01.2", ...)
    assert progress.load() == {}


_WRITER = """
import sys
from course_lib import exercise_progress, exercises
for i in range(int(sys.argv[1])):
    exercise_progress.record(exercises.Result(sys.argv[2], i % 2 == 0, "wrong", ""))
"""


def test_two_processes_writing_at_once_lose_nothing():
    children = [
        subprocess.Popen([sys.executable, "-c", _WRITER, "25", id]) for id in ("02.1", "02.2")
    ]
    for child in children:
        assert child.wait(timeout=120) == 0
    record = progress.load()
    assert record["02.1"]["tries"] == 25 and record["02.2"]["tries"] == 25
    data = json.loads(progress.path().read_text())
    assert data["version"] == 1
    assert not [p for p in progress.path().parent.iterdir() if p.suffix == ".part"]


def test_the_course_command_shows_the_same(tmp_path, monkeypatch, capsys):
    from course_lib import cli

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "elsewhere"))
    cl.exercises.check("01.3", _ok)  # recorded in tmp_path/elsewhere
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "empty"))
    capsys.readouterr()
    assert cli.main(["progress", "--cache-dir", str(tmp_path / "elsewhere")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Exercises done: 1 of") and "\u2714 01.3" in out
