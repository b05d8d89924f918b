"""course_lib.cache: results kept on disk, keyed by settings and code, never lost."""

from __future__ import annotations

import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import cache


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_computes_once_and_again_on_a_new_key(tmp_path):
    compute, calls = _counting({"w": torch.arange(3.0)})
    first = cache.cached("thing", compute, {"n": 3}, cache_dir=tmp_path)
    again = cache.cached("thing", compute, {"n": 3}, cache_dir=tmp_path)
    assert torch.equal(first["w"], again["w"]) and len(calls) == 1
    cache.cached("thing", compute, {"n": 4}, cache_dir=tmp_path)
    assert len(calls) == 2


def test_every_promised_type_comes_back_as_it_went_in(tmp_path):
    value = {
        "tensor": torch.randn(2, 3),
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "strided": np.arange(10)[::3],
        "bools": np.array([True, False]),
        "uint8": np.zeros((2, 2), np.uint8),
        "np_scalar": np.float64(2.5),
        "np_int": np.int64(7),
        "zero_d": np.array(1.5),
        "numbers": [1, 2.5, True, None, "text"],
        "tuple": (np.ones(2), torch.zeros(1)),
        "state": OrderedDict(weight=torch.ones(2, 2)),
        "nested": {"a": [{"b": np.eye(2)}]},
    }
    compute, calls = _counting(value)
    cache.cached("all", compute, cache_dir=tmp_path)
    back = cache.cached("all", compute, cache_dir=tmp_path)
    assert len(calls) == 1, "the file was not read back"
    for name in value:
        expected, got = value[name], back[name]
        assert type(got) is type(expected), name
    assert torch.equal(back["tensor"], value["tensor"])
    for name in ("array", "strided", "bools", "uint8", "zero_d"):
        assert back[name].dtype == value[name].dtype and np.array_equal(back[name], value[name])
    assert back["np_scalar"] == 2.5 and back["np_int"] == 7 and back["zero_d"].shape == ()
    assert back["numbers"] == [1, 2.5, True, None, "text"]
    assert np.array_equal(back["tuple"][0], np.ones(2)) and torch.equal(
        back["tuple"][1], torch.zeros(1)
    )
    assert list(back["state"]) == ["weight"] and np.array_equal(
        back["nested"]["a"][0]["b"], np.eye(2)
    )


@pytest.mark.parametrize(
    "value", [object(), {"f": lambda: 1}, np.array(["a", "b"]), np.array([1, "x"], dtype=object)]
)
def test_unsupported_values_are_refused_before_writing(tmp_path, value):
    with pytest.raises(TypeError, match="cannot store"):
        cache.cached("bad", lambda: value, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("pwned"),))


def test_a_planted_pickle_is_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thing.pt").write_bytes(pickle.dumps({"key": {}, "value": _Evil()}, protocol=2))
    assert cache.cached("thing", lambda: [1, 2], cache_dir=tmp_path) == [1, 2]
    assert not (tmp_path / "pwned").exists()


def test_recovers_from_a_corrupt_file(tmp_path):
    (tmp_path / "thing.pt").write_bytes(b"garbage")
    assert cache.cached("thing", lambda: [1, 2], cache_dir=tmp_path) == [1, 2]
    assert cache.cached("thing", lambda: 1 / 0, cache_dir=tmp_path) == [1, 2]


def _v1():
    return 1


def _v2():
    return 2


def test_changing_the_code_recomputes(tmp_path):
    compute, calls = _counting(np.ones(3))
    cache.cached("c", compute, {"n": 1}, cache_dir=tmp_path, code=[_v1])
    cache.cached("c", compute, {"n": 1}, cache_dir=tmp_path, code=[_v1])
    assert len(calls) == 1
    cache.cached("c", compute, {"n": 1}, cache_dir=tmp_path, code=[_v2])
    assert len(calls) == 2
    assert cache.code_digest([_v1]) != cache.code_digest([_v2])
    assert cache.code_digest([_v1, _v2]) != cache.code_digest([_v2, _v1])
    with pytest.raises(TypeError, match="source code"):
        cache.code_digest([len])


@pytest.mark.parametrize("how", ["file-in-the-way", "read-only"])
def test_unwritable_cache_folder_returns_the_value_and_warns_once(tmp_path, monkeypatch, how):
    if how == "file-in-the-way":
        blocker = tmp_path / "cache"
        blocker.write_text("not a folder")
        folder = blocker / "sub"
    else:
        folder = tmp_path / "ro"
        folder.mkdir()

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(cache.tempfile, "mkstemp", refuse)  # root ignores chmod
    monkeypatch.setattr(cache, "_warned", set())
    with pytest.warns(cache.CacheWarning, match="Set COURSE_CACHE_DIR to a writable folder"):
        assert np.array_equal(cache.cached("a", lambda: np.ones(2), cache_dir=folder), np.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second result: no second warning
        assert cache.cached("b", lambda: [3], cache_dir=folder) == [3]


class _Unsaveable:
    def __reduce__(self):
        raise RuntimeError("this object cannot be saved")


def test_save_atomic_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "state.pt"
    cache.save_atomic({"a": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="cannot be saved"):
        cache.save_atomic({"a": _Unsaveable()}, path)  # fails half-way through writing
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]
