"""course_lib.doctor: each check says what is right, and what to fix when it is not."""

from __future__ import annotations

import importlib
import json
import os
import ssl
import sys
from importlib import metadata
from pathlib import Path

import pytest

import course_lib as cl

doctor = importlib.import_module("course_lib.doctor")  # cl.doctor is the function
OK, WARN, FAIL = doctor.OK, doctor.WARN, doctor.FAIL


def test_cl_doctor_prints_one_screen(capsys):
    assert cl.doctor() is None
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("course_lib ") and "running from the clone" in lines[0]
    assert lines[-1].startswith("Verdict: ")
    assert len(lines) < 30
    for topic in (
        "Python",
        "packages:",
        "widgets:",
        "data folder",
        "MNIST",
        "CIFAR-10",
        "MR",
        "cache folder",
        "threads:",
        "TLS certificates",
        "device:",
    ):
        assert topic in out, f"the report says nothing about {topic}"


def test_render_verdict_counts_problems_and_warnings():
    checks = [doctor.Check(OK, "a"), doctor.Check(WARN, "b", "do b")]
    assert doctor.render(checks).endswith("Verdict: ready, with 1 warning(s).")
    checks.append(doctor.Check(FAIL, "c", "do c"))
    text = doctor.render(checks)
    assert "\u2718 c\n    fix: do c" in text and text.endswith("1 problem(s) to fix, 1 warning(s).")
    assert doctor.render([doctor.Check(OK, "a")]).endswith("everything is ready.")


# --------------------------------------------------------------------------- versions


def test_python_check(monkeypatch):
    assert doctor.check_python().status == OK
    monkeypatch.setattr(doctor.platform, "python_version", lambda: "3.10.12")
    check = doctor.check_python()
    assert check.status == FAIL and "3.11 to 3.14" in check.what and "PYTHON=" in check.fix


def test_python_range_text():
    from packaging.specifiers import SpecifierSet

    assert doctor.python_range_text(SpecifierSet(">=3.11,<3.15")) == "3.11 to 3.14"
    assert doctor.python_range_text(SpecifierSet("==3.12.*")) == "3.12"


def test_packages_at_the_lock_are_ok():
    checks = doctor.check_packages()
    assert [c.status for c in checks] == [OK]
    n = len(doctor.runtime_requirements())
    assert (
        f"{n} of {n} at the tested versions" in checks[0].what and "torch 2.13.0" in checks[0].what
    )


def test_packages_outside_the_range_missing_or_untested(monkeypatch):
    real = metadata.version
    fake = {"numpy": "1.26.4", "tqdm": "4.69.0"}

    def version(name):
        if name == "matplotlib":
            raise metadata.PackageNotFoundError(name)
        return fake.get(name) or real(name)

    monkeypatch.setattr(doctor.metadata, "version", version)
    summary, *problems = doctor.check_packages()
    assert summary.status == WARN
    found = {c.what.split()[0]: c for c in problems}
    assert found["numpy"].status == FAIL and "outside the course's range" in found["numpy"].what
    assert found["numpy"].fix == 'python -m pip install "numpy==2.4.6"'
    assert found["matplotlib"].status == FAIL and "not installed" in found["matplotlib"].what
    assert found["tqdm"].status == WARN and "tested with 4.70.1" in found["tqdm"].what


# --------------------------------------------------------------------------- widgets


def _extension(base: Path, version: str) -> Path:
    folder = base.joinpath(*doctor.WIDGET_EXTENSION)
    folder.mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"version": version}))
    return base


def test_find_widget_frontend_takes_the_first_folder_that_has_it(tmp_path):
    a, b = tmp_path / "a", _extension(tmp_path / "b", "5.0.16")
    _extension(tmp_path / "c", "3.0.0")
    found = doctor.find_widget_frontend([a, b, tmp_path / "c"])
    assert found == (b.joinpath(*doctor.WIDGET_EXTENSION), "5.0.16")
    assert doctor.find_widget_frontend([a]) is None


def test_labextension_dirs_of_another_server_leave_out_this_environment(tmp_path):
    own = Path(sys.prefix, "share", "jupyter", "labextensions")
    here = doctor.labextension_dirs(Path(sys.prefix))
    assert here[0] == own
    other = doctor.labextension_dirs(tmp_path)
    assert other[0] == tmp_path / "share" / "jupyter" / "labextensions" and own not in other


def test_server_prefix_of_the_kernels_parent_process(monkeypatch):
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getpid()))
    prefix, how = doctor.server_prefix()
    assert prefix == Path(sys.executable).parent.parent and "running this kernel" in how
    monkeypatch.delenv("JPY_PARENT_PID")
    prefix, how = doctor.server_prefix()
    assert prefix == Path(sys.prefix) and how == "this environment's JupyterLab"


def test_widgets_check(monkeypatch, tmp_path):
    assert doctor.check_widgets().status == OK  # the course environment has the front end
    monkeypatch.setattr(doctor, "server_prefix", lambda: (tmp_path, "a server"))
    monkeypatch.setattr(doctor, "labextension_dirs", lambda prefix: [prefix / "lab"])
    check = doctor.check_widgets()
    assert check.status == FAIL and "sliders show as text" in check.what
    assert "jupyterlab_widgets" in check.fix and str(tmp_path) in check.fix
    _extension(tmp_path / "lab", "3.6.0")
    check = doctor.check_widgets()
    assert check.status == FAIL and "for ipywidgets 7" in check.what
    monkeypatch.setattr(doctor, "server_prefix", lambda: (None, "no JupyterLab found"))
    assert doctor.check_widgets().status == WARN


# --------------------------------------------------------------------------- data and folders


def test_datasets_missing_in_an_empty_folder(tmp_path):
    checks = doctor.run_checks(tmp_path)
    lines = [c for c in checks if c.what.strip().startswith(("MNIST", "CIFAR-10", "MR"))]
    assert [c.status for c in lines] == [WARN] * 3
    assert [bool(c.fix) for c in lines] == [False, False, True]
    assert "python -m course_lib data fetches MNIST, CIFAR-10, MR" in lines[-1].fix


def test_datasets_present_are_read_and_described(real_data):
    checks = {c.what.split(":")[0].strip(): c for c in doctor.run_checks(real_data)}
    assert checks["MR"].status == OK and "10,662 sentences" in checks["MR"].what
    assert "complete" in checks["MR"].what
    assert checks["MNIST"].status == OK and "10,000 test images" in checks["MNIST"].what


def test_a_corrupt_dataset_is_a_problem(tmp_path):
    (tmp_path / "rt-polaritydata").mkdir()
    (tmp_path / "rt-polaritydata" / "rt-polarity.pos").write_text("one line\n")
    check = doctor.check_dataset("MR", "rt-polaritydata", "load_mr", (10_662, 0), tmp_path)
    assert check.status == FAIL and check.fix


def test_writable(tmp_path):
    assert doctor.writable(tmp_path) and doctor.writable(tmp_path / "not" / "yet")
    (tmp_path / "file").write_text("x")
    assert not doctor.writable(tmp_path / "file")


def test_read_only_folders(monkeypatch, tmp_path):
    monkeypatch.setattr(doctor, "writable", lambda path: False)
    complete = [doctor.Check(OK, "MR: fine")]
    data_check, _, cache_check = doctor.check_folders(tmp_path, tmp_path / "c", complete)
    assert data_check.status == OK and "read-only, holds every dataset" in data_check.what
    assert cache_check.status == WARN and "COURSE_CACHE_DIR" in cache_check.fix
    missing = [doctor.Check(WARN, "MR: not in the data folder yet")]
    data_check = doctor.check_folders(tmp_path, tmp_path / "c", missing)[0]
    assert data_check.status == FAIL and "cannot be fetched" in data_check.what


# --------------------------------------------------------------------------- machine


def test_threads_above_the_usable_cores_are_a_warning(monkeypatch):
    import torch

    assert doctor.usable_cores() >= 1
    monkeypatch.setattr(doctor, "usable_cores", lambda: 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert doctor.check_threads().status == OK
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    check = doctor.check_threads()
    assert check.status == WARN and "OMP_NUM_THREADS=2" in check.fix


def test_tls_without_certifi(monkeypatch, tmp_path):
    assert doctor.check_tls().status == OK
    monkeypatch.setitem(sys.modules, "certifi", None)  # import certifi fails
    paths = ssl.get_default_verify_paths()
    check = doctor.check_tls()
    if any(p and Path(p).exists() for p in (paths.cafile, paths.capath)):
        assert check.status == WARN and "pip install certifi" in check.fix
    nothing = ssl.DefaultVerifyPaths(None, None, "", "", "", "")
    monkeypatch.setattr(doctor.ssl, "get_default_verify_paths", lambda: nothing)
    check = doctor.check_tls()
    assert check.status == FAIL and "downloads will fail" in check.what


def test_device_and_mode(monkeypatch):
    assert doctor.check_device().status == OK
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    assert doctor.check_device().status == FAIL
    monkeypatch.setenv("COURSE_FAST", "maybe")
    check = doctor.check_mode()
    assert check.status == FAIL and "COURSE_FAST=1" in check.what


@pytest.mark.parametrize("variable", ["COURSE_DATA_DIR", "COURSE_CACHE_DIR"])
def test_folder_origin_is_named(monkeypatch, tmp_path, variable):
    monkeypatch.setenv(variable, str(tmp_path))
    text = "\n".join(c.what for c in doctor.run_checks())
    assert f"{tmp_path} ({variable})" in text
