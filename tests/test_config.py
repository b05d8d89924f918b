"""course_lib.config: mode, device, data directory, seeding."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import course_lib as cl
from course_lib import config


@pytest.mark.parametrize(
    "value, fast", [("1", True), ("true", True), ("YES", True), ("", False), ("0", False)]
)
def test_mode_from_environment(monkeypatch, value, fast):
    monkeypatch.setenv("COURSE_FAST", value)
    assert config.is_fast() is fast
    assert config.pick(fast="f", full="F") == ("f" if fast else "F")


def test_unknown_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="COURSE_FAST=1"):
        config.is_fast()


def test_data_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert config.REPO_ROOT is not None, "the tests run from the clone"
    assert config.data_dir() == config.REPO_ROOT / "data"
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COURSE_DATA_DIR", "sub")
    assert config.data_dir() == (tmp_path / "sub").resolve()


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    assert config.cache_dir() == config.REPO_ROOT / "data" / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    assert config.cache_dir() == tmp_path.resolve()


@pytest.mark.skipif(sys.platform != "linux", reason="XDG folders are Linux's")
def test_outside_a_clone_data_and_cache_go_to_the_users_folders(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "REPO_ROOT", None)
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert config.data_dir() == (tmp_path / "share" / "weights-course").resolve()
    assert config.cache_dir() == (tmp_path / "cache" / "weights-course").resolve()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "shared-data"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "my-cache"))
    assert config.data_dir() == (tmp_path / "shared-data").resolve()
    assert config.cache_dir() == (tmp_path / "my-cache").resolve()


def test_a_clone_is_recognised_by_its_pyproject_and_notebooks(monkeypatch, tmp_path):
    fake = tmp_path / "site-packages" / "course_lib" / "config.py"
    fake.parent.mkdir(parents=True)
    monkeypatch.setattr(config, "__file__", str(fake))
    assert config._checkout_root() is None  # installed: nothing beside the package
    root = fake.parent.parent
    (root / "notebooks").mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert config._checkout_root() is None  # another project's files
    (root / "pyproject.toml").write_text('[project]\nname = "course-lib"\n')
    assert config._checkout_root() == root.resolve()


def test_setup_prints_the_data_and_cache_folders(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "c"))
    cfg = cl.setup(seed=0)
    line = capsys.readouterr().out
    assert f"data={(tmp_path / 'd').resolve()} | cache={(tmp_path / 'c').resolve()} |" in line
    assert cfg.cache_dir == (tmp_path / "c").resolve()


def test_device_choice(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if torch.backends.mps.is_available()
        else "cpu"
    )
    assert config.get_device().type == expected
    assert config.get_device("cpu").type == "cpu"
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert config.get_device().type == "cpu"
    with pytest.raises(ValueError, match="'tpu' is not a device: use cpu, cuda or mps"):
        config.get_device("tpu")
    monkeypatch.setenv("COURSE_DEVICE", "gpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE=gpu is not a device.*unset COURSE_DEVICE"):
        config.get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="COURSE_DEVICE=cuda, but this machine has no CUDA"):
            config.get_device()
    if not torch.backends.mps.is_available():
        with pytest.raises(RuntimeError, match="device='mps', but Apple's MPS"):
            config.get_device("mps")


def test_get_device_docstring_is_intact():
    doc = config.get_device.__doc__
    assert "COURSE_DEVICE" in doc and "COURSE_CACHE_DIR" not in doc and "MPS" in doc


def test_seed_from_environment(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_SEED", raising=False)
    assert cl.setup(quiet=True).seed == 0
    monkeypatch.setenv("COURSE_SEED", "2")
    assert cl.setup(quiet=True).seed == 2 and cl.current().seed == 2
    first = torch.rand(1).item()
    assert cl.setup(seed=2, quiet=True).seed == 2 and torch.rand(1).item() == first
    assert cl.setup(seed=5, quiet=True).seed == 5  # an explicit seed wins
    for bad in ("two", "-1", "1.5"):
        monkeypatch.setenv("COURSE_SEED", bad)
        with pytest.raises(ValueError, match="COURSE_SEED=.*non-negative integer"):
            cl.setup(quiet=True)


def test_setup_seeds_everything_and_prints_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    cfg = cl.setup(seed=7)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "mode=fast" in out and str(tmp_path) in out and "device=" in out
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    cl.setup(seed=7, quiet=True)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert capsys.readouterr().out == ""
    assert cfg.fast and cfg.mode == "fast" and cfg.data_dir == Path(tmp_path).resolve()
    assert cl.current().seed == 7


def test_topics_cover_fourteen_notebooks_in_order():
    assert list(config.TOPICS) == [f"{i:02d}" for i in range(1, 15)]
    assert len(set(config.TOPICS.values())) == 14


def test_topic_modules_are_imported_on_demand():
    assert cl.intro.__name__ == "course_lib.intro"
    with pytest.raises(AttributeError):
        cl.not_a_module  # noqa: B018


def test_claim(capsys):
    cl.claim(1 < 2, "one is less than two", "1 < 2")
    assert capsys.readouterr().out == "\u2714 one is less than two (1 < 2)\n"
    with pytest.raises(AssertionError, match="Claim not confirmed: wrong .ratio 3.0."):
        cl.claim(False, "wrong", "ratio 3.0")


def test_resolve_seed_follows_setup(monkeypatch):
    monkeypatch.setenv("COURSE_SEED", "2")
    cl.setup(quiet=True)
    assert config.resolve_seed() == 2 and config.resolve_seed(None) == 2
    assert config.resolve_seed(5) == 5 and config.resolve_seed(0) == 0
    cl.setup(seed=0, quiet=True)
    assert config.resolve_seed() == 0
