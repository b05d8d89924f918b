"""The course command: python -m course_lib notebooks / data / doctor."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import cli, config, data, text

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))


# --------------------------------------------------------------------------- the parser


def test_every_command_is_registered_and_listed_in_help(capsys):
    assert list(cli.COMMANDS) == ["notebooks", "data", "doctor", "progress", "link"]
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name, cmd in cli.COMMANDS.items():
        assert name in out and cmd.help in out


def test_a_new_command_needs_only_a_function_and_its_arguments(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))

    @cli.command("greet", "say hello", lambda p: p.add_argument("name"))
    def run_greet(args):
        print(f"hello {args.name}")
        return 3

    assert cli.main(["greet", "Ada"]) == 3
    assert capsys.readouterr().out == "hello Ada\n"


def test_no_or_unknown_command_is_a_usage_error(capsys):
    for argv in ([], ["frobnicate"]):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_python_dash_m_runs_the_command(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "course_lib", "notebooks", str(tmp_path / "nb")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "nb").glob("*.ipynb")) == NOTEBOOKS


# --------------------------------------------------------------------------- notebooks


def test_notebooks_copies_all_fourteen(tmp_path, capsys):
    assert len(NOTEBOOKS) == 14
    assert cli.main(["notebooks", str(tmp_path / "a" / "b")]) == 0
    dest = tmp_path / "a" / "b"
    for name in NOTEBOOKS:
        assert (dest / name).read_bytes() == (REPO / "notebooks" / name).read_bytes()
    out = capsys.readouterr().out
    assert "copied: 14 notebook(s)" in out and f"jupyter lab {dest.resolve()}" in out
    assert cli.main(["notebooks", str(dest)]) == 0
    assert "already up to date: 14 notebook(s)" in capsys.readouterr().out


def test_notebooks_keeps_a_learners_edits_unless_forced(tmp_path, capsys):
    dest = tmp_path / "nb"
    cli.copy_notebooks(dest)
    edited = dest / NOTEBOOKS[2]
    edited.write_text(edited.read_text() + " ")
    missing = dest / NOTEBOOKS[5]
    missing.unlink()
    assert cli.main(["notebooks", str(dest)]) == 1
    out = capsys.readouterr().out
    assert f"kept 1 notebook(s) you changed: {NOTEBOOKS[2]}" in out and "--force" in out
    assert edited.read_text().endswith(" ") and missing.is_file()
    assert cli.main(["notebooks", str(dest), "--force"]) == 0
    assert edited.read_bytes() == (REPO / "notebooks" / NOTEBOOKS[2]).read_bytes()


def test_notebooks_updates_an_unedited_copy_of_an_older_course(tmp_path, monkeypatch):
    dest = tmp_path / "nb"
    old = {name: b'{"old": "%d"}' % i for i, name in enumerate(NOTEBOOKS)}
    monkeypatch.setattr(cli, "notebook_sources", lambda: old)
    cli.copy_notebooks(dest)
    (dest / NOTEBOOKS[0]).write_bytes(b'{"old": "edited"}')  # the learner's work
    monkeypatch.undo()
    report = cli.copy_notebooks(dest)
    assert report.kept == [NOTEBOOKS[0]] and len(report.updated) == 13
    assert (dest / NOTEBOOKS[1]).read_bytes() == (REPO / "notebooks" / NOTEBOOKS[1]).read_bytes()
    manifest = json.loads((dest / cli.MANIFEST).read_text())
    assert set(manifest) == set(NOTEBOOKS)


def test_notebooks_refuses_a_file_as_destination(tmp_path, capsys):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    assert cli.main(["notebooks", str(target)]) == 2
    assert "is a file: give a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


def test_notebooks_come_from_the_installed_package_outside_a_clone(monkeypatch, tmp_path):
    package = tmp_path / "site-packages" / "course_lib"
    (package / "notebooks").mkdir(parents=True)
    (package / "notebooks" / "01_x.ipynb").write_text("{}")
    (package / "notebooks" / "__init__.py").write_text("")

    def files(name):
        assert name == "course_lib"
        return package

    monkeypatch.setattr(config, "REPO_ROOT", None)
    monkeypatch.setattr("importlib.resources.files", files)
    assert cli.notebook_sources() == {"01_x.ipynb": b"{}"}
    (package / "notebooks" / "01_x.ipynb").unlink()
    with pytest.raises(cli.CommandError, match="holds no notebooks: reinstall"):
        cli.notebook_sources()


# --------------------------------------------------------------------------- data


def test_data_fetches_and_checks_every_dataset(real_data, tmp_path, capsys):
    code = cli.main(["data", "--dest", str(real_data), "--caches", "none"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"datasets in {real_data.resolve()}" in out
    assert "\u2714 MR: 10,662 sentences, read and checked" in out
    assert re.search(r"\u2714 MNIST: [\d,]+ training and 10,000 test images", out)
    assert re.search(r"\u2714 CIFAR-10: [\d,]+ training and [\d,]+ test images", out)
    assert f"COURSE_DATA_DIR={real_data.resolve()}" in out


def test_data_reports_each_failure_and_goes_on(monkeypatch, tmp_path, capsys):
    def offline(*args, **kwargs):
        raise data.DatasetError("Could not download x: offline.\nCheck your connection.")

    monkeypatch.setattr(data, "load_cifar10", offline)
    monkeypatch.setattr(text, "load_mr", offline)
    monkeypatch.setattr(data, "load_mnist", lambda split, data_dir: list(range(3)))
    code = cli.main(["data", "--dest", str(tmp_path), "--caches", "all"])
    out = capsys.readouterr().out
    assert code == 1
    assert "\u2718 CIFAR-10: Could not download x: offline." in out
    assert "\u2714 MNIST: 3 training and 3 test images" in out
    assert "sentence vectors not computed: they need the MR dataset" in out
    assert "2 dataset(s) missing: MR, CIFAR-10" in out


def test_data_warms_the_sentence_vectors_of_each_mode(monkeypatch, tmp_path, capsys):
    from course_lib import transfer_learning

    calls = []

    def record(n_train, n_test, progress):
        calls.append((n_train, n_test, config.data_dir(), config.cache_dir()))

    monkeypatch.setattr(transfer_learning, "mr_embeddings", record)
    monkeypatch.setattr(cli, "_sizes", lambda name, root: "fine")
    dest, cache = tmp_path / "d", tmp_path / "c"
    assert cli.main(["data", "--dest", str(dest), "--cache-dir", str(cache)]) == 0
    assert calls == [(400, 300, dest, cache), (None, None, dest, cache)]
    assert f"cached results in {cache}" in capsys.readouterr().out
    assert config.cache_dir() != cache, "the command leaves the environment as it was"
    calls.clear()
    assert cli.main(["data", "--dest", str(dest), "--caches", "full"]) == 0
    assert [c[:2] for c in calls] == [(None, None)]


def test_warmed_sizes_are_notebook_08s():
    source = (REPO / "notebooks" / "08_transfer_learning.ipynb").read_text()
    call = re.search(
        r"mr_embeddings\(n_train=cl\.pick\(fast=(\d+), full=None\), "
        r"n_test=cl\.pick\(fast=(\d+), full=None\)\)",
        source,
    )
    assert call, "notebook 08 no longer calls mr_embeddings as cli.SENTENCE_CACHES expects"
    assert cli.SENTENCE_CACHES == {
        "fast": (int(call.group(1)), int(call.group(2))),
        "full": (None, None),
    }


def test_data_computes_real_sentence_vectors_once(real_data, tmp_path, capsys):
    cache = tmp_path / "cache"
    argv = ["data", "--dest", str(real_data), "--cache-dir", str(cache), "--caches", "fast"]
    assert cli.main(argv) == 0
    written = sorted(p.name for p in cache.iterdir())
    assert written and all(name.startswith("minilm_") for name in written)
    stamps = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert cli.main(argv) == 0, "a second run reads the cache"
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps


# --------------------------------------------------------------------------- doctor


def test_doctor_command_prints_the_report_and_fails_on_a_problem(monkeypatch, capsys):
    doctor = importlib.import_module("course_lib.doctor")  # cl.doctor is the function

    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("course_lib ") and "Verdict:" in out
    monkeypatch.setattr(doctor, "check_tls", lambda: doctor.Check(doctor.FAIL, "no TLS", "fix"))
    assert cli.main(["doctor"]) == 1
    assert "\u2718 no TLS\n    fix: fix" in capsys.readouterr().out


def test_link_prints_the_nbgitpuller_link_and_refuses_bad_input(capsys):
    from course_lib.workshop import nbgitpuller_link

    args = ["--hub", "https://hub.example.org", "--repo", "https://github.com/me/weights-course"]
    assert cli.main(["link", *args]) == 0
    link = capsys.readouterr().out.strip()
    assert link == nbgitpuller_link(
        "https://hub.example.org", "https://github.com/me/weights-course"
    )
    assert link.startswith("https://hub.example.org/hub/user-redirect/git-pull?repo=")
    assert cli.main(["link", "--hub", "not a url", "--repo", "https://github.com/me/x"]) != 0
    assert "Check --hub" in capsys.readouterr().err
