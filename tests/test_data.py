"""course_lib.data: the real samples, and every error path on files made here."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import pickle
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_dir_or_skip

from course_lib import data
from course_lib.data import DatasetError

# --------------------------------------------------------------------------- helpers


def _cifar_batch(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "batch_label": "training batch",
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
    }


def make_cifar_folder(root: Path, n: int = 4) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(pickle.dumps(_cifar_batch(n, i), protocol=2))
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    meta = {"label_names": names, "num_cases_per_batch": n, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def make_tar(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_mnist_folder(root: Path, n_train: int = 6, n_test: int = 4, compress: bool = True) -> Path:
    folder = root / "mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files = {
            f"{prefix}-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (n, 28, 28))),
            f"{prefix}-labels-idx1-ubyte": idx_bytes(rng.integers(0, 10, n)),
        }
        for name, raw in files.items():
            if compress:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


def make_mr_folder(root: Path, encoding: str = "utf-8", lines: int = data.MR_LINES) -> Path:
    folder = root / "rt-polaritydata"
    folder.mkdir(parents=True)
    for name, word in (("rt-polarity.pos", "wonderful"), ("rt-polarity.neg", "dreadful")):
        text = "".join(f"a {word} café film number {i} . \n" for i in range(lines))
        (folder / name).write_bytes(text.encode(encoding))
    return folder


def no_leftovers(folder: Path) -> bool:
    """No temporary download or extraction files left behind."""
    return not [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


# --------------------------------------------------------------------------- real samples


def test_real_cifar10_sample():
    root = data_dir_or_skip()
    train = data.load_cifar10("train", data_dir=root, download=False)
    test = data.load_cifar10("test", data_dir=root, download=False)
    assert (len(train), len(test)) == (5085, 1017)
    assert train.x.shape == (5085, 3, 32, 32) and train.x.dtype == np.uint8
    assert train.classes[:3] == ["airplane", "automobile", "bird"] and len(train.classes) == 10
    # the first images of the official data_batch_1: frog, truck, truck, deer, automobile
    assert train.y[:5].tolist() == [6, 9, 9, 4, 1]
    assert test.y[:5].tolist() == [3, 8, 8, 0, 6]  # cat, ship, ship, airplane, frog
    assert set(np.bincount(train.y)) and np.bincount(train.y).min() >= 475


def test_real_mnist_sample():
    root = data_dir_or_skip()
    train = data.load_mnist("train", data_dir=root, download=False)
    test = data.load_mnist("test", data_dir=root, download=False)
    assert (len(train), len(test)) == (17435, 10000)
    assert train.x.shape[1:] == (28, 28) and train.x.dtype == np.uint8
    assert train.y[:5].tolist() == [5, 0, 4, 1, 9]  # the famous first training digits
    assert test.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert train.classes == [str(d) for d in range(10)]


def test_real_mr_sample():
    root = data_dir_or_skip()
    mr = data.load_mr(data_dir=root, download=False)
    assert len(mr) == 10662 and np.bincount(mr.y).tolist() == [5331, 5331]
    first_positive = mr.x[int(np.argmax(mr.y == 1))]
    assert first_positive.startswith("the rock is destined to be the 21st century's new")
    assert mr.classes == ["negative", "positive"]
    # the official bytes: Windows-1252 (0x85 is the ellipsis, 0xE9 is é) with CRLF endings
    text = "\n".join(mr.x)
    assert "\x85" not in text and "\r" not in text and "\u2026" in text and "é" in text


def test_subset_is_stratified_and_deterministic():
    ds = data.Dataset(np.arange(1000)[:, None], np.repeat(np.arange(4), 250), list("abcd"))
    sub = ds.subset(100, seed=3)
    assert len(sub) == 100 and np.bincount(sub.y).tolist() == [25, 25, 25, 25]
    assert np.all(np.diff(sub.x[:, 0]) > 0)  # original order kept
    assert np.array_equal(sub.x, ds.subset(100, seed=3).x)
    assert not np.array_equal(sub.x, ds.subset(100, seed=4).x)
    assert ds.subset(None) is ds and ds.subset(5000) is ds
    with pytest.raises(ValueError):
        ds.subset(0)


def test_vectors_flatten_and_scale_pixels():
    images = np.array([[[0, 255], [51, 102]], [[255, 0], [0, 0]]], dtype=np.uint8)
    v = data.Dataset(images, np.array([0, 1]), ["a", "b"]).vectors()
    assert v.dtype == np.float32 and v.shape == (2, 4)
    assert np.allclose(v[0], [0.0, 1.0, 0.2, 0.4]) and v[1].tolist() == [1.0, 0.0, 0.0, 0.0]
    features = data.Dataset(np.array([[3.5, -1.0]]), np.array([0]), ["a"]).vectors()
    assert features.tolist() == [[3.5, -1.0]]  # features are not pixels: not rescaled


def test_subset_of_text_dataset():
    ds = data.Dataset([f"s{i}" for i in range(10)], np.array([0, 1] * 5), ["neg", "pos"])
    sub = ds.subset(4)
    assert isinstance(sub.x, list) and len(sub.x) == 4 and np.bincount(sub.y).tolist() == [2, 2]
    assert repr(sub).startswith("Dataset(")


# --------------------------------------------------------------------------- CIFAR-10 errors


def test_cifar_fake_folder_loads(tmp_path):
    make_cifar_folder(tmp_path, n=4)
    ds = data.load_cifar10("train", data_dir=tmp_path, download=False)
    assert ds.x.shape == (20, 3, 32, 32) and len(ds.y) == 20
    assert data.load_cifar10("test", data_dir=tmp_path, download=False).x.shape == (4, 3, 32, 32)
    with pytest.raises(ValueError, match="split"):
        data.load_cifar10("valid", data_dir=tmp_path)


def test_cifar_missing_dataset_without_download(tmp_path):
    with pytest.raises(DatasetError, match="COURSE_DATA_DIR"):
        data.load_cifar10(data_dir=tmp_path, download=False)


def test_cifar_wrong_layout_names_missing_files(tmp_path):
    folder = make_cifar_folder(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="missing data_batch_3"):
        data.load_cifar10(data_dir=tmp_path, download=False)


def test_cifar_truncated_pickle(tmp_path):
    folder = make_cifar_folder(tmp_path)
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError, match="data_batch_2 is truncated or corrupt"):
        data.load_cifar10(data_dir=tmp_path, download=False)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_cifar_foreign_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    folder = make_cifar_folder(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": _Evil()}, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match=r"not a CIFAR-10 file.*system"):
        data.load_cifar10("test", data_dir=tmp_path, download=False)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ({"labels": [1]}, "not the CIFAR-10 batch keys"),
        ({"labels": [1, 2], "data": np.zeros((2, 100), np.uint8)}, r"shape \(N, 3072\)"),
        ({"labels": [1], "data": np.zeros((2, 3072), np.uint8)}, "one label per row"),
        ({"labels": [11], "data": np.zeros((1, 3072), np.uint8)}, "labels outside"),
        ([1, 2, 3], "holds a list"),
    ],
)
def test_cifar_malformed_batches(tmp_path, content, message):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DatasetError, match=message):
        data.read_cifar_batch(path)


def test_cifar_meta_without_class_names(tmp_path):
    folder = make_cifar_folder(tmp_path)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a"]}, protocol=2))
    with pytest.raises(DatasetError, match="10 CIFAR-10 class names"):
        data.load_cifar10(data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- downloads


def test_download_file_success_and_atomicity(http_root, tmp_path):
    www, url = http_root
    payload = os.urandom(200_000)
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    md5 = hashlib.md5(payload).hexdigest()
    assert data.download_file(url + "blob.bin", dest, md5=md5, progress=False) == dest
    assert dest.read_bytes() == payload and data.md5sum(dest) == md5
    assert no_leftovers(dest.parent)


def test_download_checksum_mismatch_writes_nothing(http_root, tmp_path):
    www, url = http_root
    (www / "blob.bin").write_bytes(b"not what you expected")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        data.download_file(url + "blob.bin", dest, md5="0" * 32, progress=False)
    assert list(dest.parent.iterdir()) == []


def test_download_falls_back_to_next_mirror(http_root, tmp_path):
    www, url = http_root
    (www / "good").mkdir()
    (www / "good" / "f.gz").write_bytes(b"abc")
    dest = data.download_file(
        [url + "missing/f.gz", url + "good/f.gz"], tmp_path / "f.gz", progress=False
    )
    assert dest.read_bytes() == b"abc"


def test_download_offline_says_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match="internet connection") as info:
        data.download_file(
            "http://127.0.0.1:9/nothing.tar.gz", tmp_path / "x", timeout=5, progress=False
        )
    assert "127.0.0.1:9" in str(info.value)
    assert list(tmp_path.iterdir()) == []


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)  # then the connection closes early

    def log_message(self, *args):
        pass


def test_download_truncated_transfer_writes_nothing(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file"
        with pytest.raises(DatasetError, match="Could not download"):
            data.download_file(url, tmp_path / "file", progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []


def test_cifar_download_and_extract(http_root, tmp_path, monkeypatch):
    www, url = http_root
    archive = make_tar(make_cifar_folder(tmp_path / "src"), www / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data, "CIFAR10_URL", url + archive.name)
    monkeypatch.setattr(data, "CIFAR10_MD5", data.md5sum(archive))
    root = tmp_path / "data"
    ds = data.load_cifar10("test", data_dir=root)
    assert ds.x.shape == (4, 3, 32, 32)
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py"]  # archive removed


def test_existing_archive_with_wrong_checksum(tmp_path, monkeypatch):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"half a download")
    with pytest.raises(DatasetError, match="Delete it"):
        data.ensure_cifar10(tmp_path)
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_truncated_archive_leaves_nothing(http_root, tmp_path, monkeypatch):
    www, url = http_root
    src = make_mr_folder(tmp_path / "src")
    good = make_tar(src, tmp_path / "good.tar.gz").read_bytes()
    (www / "rt-polaritydata.tar.gz").write_bytes(good[: len(good) // 2])
    monkeypatch.setattr(data, "MR_URL", url + "rt-polaritydata.tar.gz")
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        data.load_mr(data_dir=root)
    assert sorted(p.name for p in root.iterdir()) == ["rt-polaritydata.tar.gz"]  # only the archive


def test_archive_without_expected_folder(http_root, tmp_path, monkeypatch):
    www, url = http_root
    other = tmp_path / "src" / "something-else"
    other.mkdir(parents=True)
    (other / "file.txt").write_text("hello")
    make_tar(other, www / "rt-polaritydata.tar.gz")
    monkeypatch.setattr(data, "MR_URL", url + "rt-polaritydata.tar.gz")
    with pytest.raises(DatasetError, match="does not contain the folder 'rt-polaritydata/'"):
        data.load_mr(data_dir=tmp_path / "data")
    assert no_leftovers(tmp_path / "data")


def test_mr_download_and_extract(http_root, tmp_path, monkeypatch):
    www, url = http_root
    make_tar(make_mr_folder(tmp_path / "src", encoding="latin-1"), www / "rt-polaritydata.tar.gz")
    monkeypatch.setattr(data, "MR_URL", url + "rt-polaritydata.tar.gz")
    mr = data.load_mr(data_dir=tmp_path / "data")
    assert len(mr) == 2 * data.MR_LINES and "café" in mr.x[0]


def test_mnist_downloads_missing_files_from_mirrors(http_root, tmp_path, monkeypatch):
    www, url = http_root
    src = make_mnist_folder(tmp_path / "src")
    (www / "mirror").mkdir()
    md5s = {}
    for f in src.iterdir():
        (www / "mirror" / f.name).write_bytes(f.read_bytes())
        md5s[f.name] = data.md5sum(f)
    monkeypatch.setattr(data, "MNIST_MIRRORS", [url + "down/", url + "mirror/"])
    monkeypatch.setattr(data, "MNIST_FILES", md5s)
    ds = data.load_mnist("train", data_dir=tmp_path / "data")
    assert ds.x.shape == (6, 28, 28)


def test_mnist_download_failure_says_what_to_do(http_root, tmp_path, monkeypatch):
    _, url = http_root
    monkeypatch.setattr(data, "MNIST_MIRRORS", [url + "down/"])
    with pytest.raises(DatasetError, match="COURSE_DATA_DIR"):
        data.load_mnist(data_dir=tmp_path)
    assert no_leftovers(tmp_path)


# --------------------------------------------------------------------------- MNIST errors


def test_mnist_fake_folder_compressed_and_not(tmp_path):
    make_mnist_folder(tmp_path / "a")
    make_mnist_folder(tmp_path / "b", compress=False)
    a = data.load_mnist("test", data_dir=tmp_path / "a", download=False)
    b = data.load_mnist("test", data_dir=tmp_path / "b", download=False)
    assert np.array_equal(a.x, b.x) and a.x.shape == (4, 28, 28)


def test_mnist_missing_file_without_download(tmp_path):
    folder = make_mnist_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz is not in"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


def test_mnist_truncated_gzip(tmp_path):
    folder = make_mnist_folder(tmp_path)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        data.load_mnist("train", data_dir=tmp_path, download=False)


def test_idx_errors(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"PK\x03\x04 zip file")
    with pytest.raises(DatasetError, match="not an IDX file"):
        data.read_idx(bad_magic)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((3, 28, 28)))[:-5])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        data.read_idx(short)
    header = tmp_path / "header"
    header.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DatasetError, match="header"):
        data.read_idx(header)


def test_mnist_label_count_mismatch(tmp_path):
    folder = make_mnist_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(DatasetError, match="does not match"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


def test_mnist_wrong_image_shape(tmp_path):
    folder = make_mnist_folder(tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((4, 8, 8))))
    )
    with pytest.raises(DatasetError, match=r"not \(N, 28, 28\)"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- MR errors


def test_mr_latin1_and_utf8_read_the_same(tmp_path):
    make_mr_folder(tmp_path / "u", "utf-8")
    make_mr_folder(tmp_path / "l", "latin-1")
    u = data.load_mr(data_dir=tmp_path / "u", download=False)
    lat = data.load_mr(data_dir=tmp_path / "l", download=False)
    assert u.x == lat.x and "café" in u.x[0]
    assert u.y[: data.MR_LINES].sum() == 0 and u.y[data.MR_LINES :].min() == 1  # neg 0, pos 1
    assert "dreadful" in u.x[0] and "wonderful" in u.x[-1]


def test_mr_truncated_file(tmp_path):
    folder = make_mr_folder(tmp_path)
    (folder / "rt-polarity.pos").write_text("just one line\n")
    with pytest.raises(DatasetError, match="rt-polarity.pos has 1 sentences"):
        data.load_mr(data_dir=tmp_path, download=False)


def test_mr_missing_file_and_binary_file(tmp_path):
    folder = make_mr_folder(tmp_path)
    (folder / "rt-polarity.neg").write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(DatasetError, match="NUL bytes"):
        data.load_mr(data_dir=tmp_path, download=False)
    (folder / "rt-polarity.neg").unlink()
    with pytest.raises(DatasetError, match="missing rt-polarity.neg"):
        data.load_mr(data_dir=tmp_path, download=False)


def test_mr_missing_without_download(tmp_path):
    with pytest.raises(DatasetError, match="MR is not in"):
        data.load_mr(data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- scikit-learn, cache


def test_load_sklearn():
    digits = data.load_sklearn("digits")
    assert digits.x.shape == (1797, 64) and digits.classes[:2] == ["0", "1"]
    diabetes = data.load_sklearn("diabetes", scaled=False)
    assert diabetes.classes == [] and diabetes.y.dtype == np.float64
    assert diabetes.feature_names[2] == "bmi" and diabetes.x[:, 2].max() > 40
    scaled = data.load_sklearn("digits", standardize=True).x
    assert np.allclose(scaled.mean(0), 0) and np.all(
        np.isin(np.round(scaled.std(0), 6), [0.0, 1.0])
    )
    with pytest.raises(ValueError, match="choose one of"):
        data.load_sklearn("mnist")


def test_cached_computes_once_and_recomputes_on_new_key(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"w": torch.arange(3.0)}

    first = data.cached("thing", compute, {"n": 3}, cache_dir=tmp_path)
    again = data.cached("thing", compute, {"n": 3}, cache_dir=tmp_path)
    assert torch.equal(first["w"], again["w"]) and len(calls) == 1
    data.cached("thing", compute, {"n": 4}, cache_dir=tmp_path)
    assert len(calls) == 2


def test_cached_recovers_from_a_corrupt_file(tmp_path):
    (tmp_path / "thing.pt").write_bytes(b"garbage")
    assert data.cached("thing", lambda: [1, 2], cache_dir=tmp_path) == [1, 2]
    assert data.cached("thing", lambda: 1 / 0, cache_dir=tmp_path) == [1, 2]


class _Unsaveable:
    def __reduce__(self):
        raise RuntimeError("this object cannot be saved")


def test_save_atomic_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "state.pt"
    data.save_atomic({"a": torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match="cannot be saved"):
        data.save_atomic({"a": _Unsaveable()}, path)  # fails half-way through writing
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_md5sum(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert data.md5sum(tmp_path / "f") == "900150983cd24fb0d6963f7d28e17f72"
