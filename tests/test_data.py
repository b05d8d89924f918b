"""course_lib.data: the real samples, and every error path on files made here."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_dir_or_skip

from course_lib import data, download
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
        ({"labels": [1], "data": np.zeros((2, 3072), np.uint8)}, "1 labels for 2 images"),
        ({"labels": [11], "data": np.zeros((1, 3072), np.uint8)}, "labels outside 0..9"),
        ({"labels": [-1], "data": np.zeros((1, 3072), np.uint8)}, "labels outside 0..9"),
        ({"labels": [1.5], "data": np.zeros((1, 3072), np.uint8)}, "fractional"),
        ({"labels": [float("nan")], "data": np.zeros((1, 3072), np.uint8)}, "fractional"),
        ({"labels": ["cat"], "data": np.zeros((1, 3072), np.uint8)}, "list of integers"),
        ({"labels": None, "data": np.zeros((1, 3072), np.uint8)}, "list of integers"),
        ({"labels": [[1, 2], [3]], "data": np.zeros((2, 3072), np.uint8)}, "list of integers"),
        ({"labels": np.array([1 + 2j]), "data": np.zeros((1, 3072), np.uint8)}, "list of integers"),
        ({"labels": [1], "data": [[0] * 3072]}, "should be a uint8 array"),
        ([1, 2, 3], "holds a list"),
    ],
)
def test_cifar_malformed_batches(tmp_path, content, message):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(DatasetError, match=message) as info:
        data.read_cifar_batch(path)
    assert str(path) in str(info.value) and "run the cell again" in str(info.value)


def test_cifar_whole_number_float_labels_are_accepted(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"labels": [3.0, 9.0], "data": np.zeros((2, 3072), np.uint8)}))
    x, y = data.read_cifar_batch(path)
    assert y.tolist() == [3, 9] and y.dtype == np.int64 and x.shape == (2, 3, 32, 32)


def test_cifar_pickle_announcing_an_absurd_size(tmp_path):
    huge_bytes = tmp_path / "huge_bytes"  # BINBYTES8 announcing 2**62 bytes
    huge_bytes.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc")
    huge_string = tmp_path / "huge_string"  # BINSTRING announcing 4 GB
    huge_string.write_bytes(b"\x80\x02T" + struct.pack("<I", 0xFFFFFFF0) + b"abc")
    raw = pickle.dumps({"data": np.zeros(4, np.uint8), "labels": [1]}, protocol=2)
    huge_shape = tmp_path / "huge_shape"  # an array whose shape claims 2**31 elements
    huge_shape.write_bytes(raw.replace(b"K\x04\x85", b"J\x00\x00\x00\x7f\x85"))
    for path in (huge_bytes, huge_string, huge_shape):
        with pytest.raises(DatasetError, match="corrupt|more data than fits") as info:
            data.read_cifar_batch(path)
        assert str(path) in str(info.value) and "download it afresh" in str(info.value)


@pytest.mark.parametrize(
    "meta", [{"label_names": ["a"]}, {}, {"label_names": None}, {"label_names": "airplane"}]
)
def test_cifar_meta_without_class_names(tmp_path, meta):
    folder = make_cifar_folder(tmp_path)
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    with pytest.raises(DatasetError, match="10 CIFAR-10 class names.*run the cell again"):
        data.load_cifar10(data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- first runs


def test_cifar_download_and_extract(http_root, tmp_path, monkeypatch):
    www, url = http_root
    archive = make_tar(make_cifar_folder(tmp_path / "src"), www / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data, "CIFAR10_URL", url + archive.name)
    monkeypatch.setattr(data, "CIFAR10_MD5", download.md5sum(archive))
    root = tmp_path / "data"
    ds = data.load_cifar10("test", data_dir=root)
    assert ds.x.shape == (4, 3, 32, 32)
    # the archive is removed; the lock file stays (deleting it would race with a waiting process)
    assert sorted(p.name for p in root.iterdir()) == [
        ".cifar-10-batches-py.lock",
        "cifar-10-batches-py",
    ]


def test_mnist_downloads_missing_files_from_mirrors(http_root, tmp_path, monkeypatch):
    www, url = http_root
    src = make_mnist_folder(tmp_path / "src")
    (www / "mirror").mkdir()
    md5s = {}
    for f in src.iterdir():
        (www / "mirror" / f.name).write_bytes(f.read_bytes())
        md5s[f.name] = download.md5sum(f)
    monkeypatch.setattr(data, "MNIST_MIRRORS", [url + "down/", url + "mirror/"])
    monkeypatch.setattr(data, "MNIST_FILES", md5s)
    ds = data.load_mnist("train", data_dir=tmp_path / "data")
    assert ds.x.shape == (6, 28, 28)


def test_mnist_download_failure_says_what_to_do(http_root, tmp_path, monkeypatch):
    _, url = http_root
    monkeypatch.setattr(data, "MNIST_MIRRORS", [url + "down/"])
    with pytest.raises(DatasetError, match="COURSE_DATA_DIR"):
        data.load_mnist(data_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == [".mnist.lock"]


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


def test_idx_header_sizes_that_overflow(tmp_path):
    path = tmp_path / "overflow"
    dims = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">3I", *dims) + b"\0" * 16)
    with pytest.raises(DatasetError, match="announces shape .* it is corrupt") as info:
        data.read_idx(path)
    assert "run the cell again" in str(info.value)
    wrapped = tmp_path / "wrapped"  # 2**16 * 2**16 wraps to 0 in 32-bit arithmetic
    wrapped.write_bytes(bytes([0, 0, 8, 2]) + struct.pack(">2I", 2**16, 2**16))
    with pytest.raises(DatasetError, match="should hold 4,294,967,296 bytes|announces shape"):
        data.read_idx(wrapped)


def test_mnist_label_count_mismatch(tmp_path):
    folder = make_mnist_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(3))))
    with pytest.raises(DatasetError, match="does not match. Replace both"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


def test_mnist_labels_outside_0_to_9(tmp_path):
    folder = make_mnist_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.full(4, 200))))
    with pytest.raises(DatasetError, match="labels up to 200, but MNIST digits are 0..9"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


def test_mnist_images_and_labels_swapped(tmp_path):
    folder = make_mnist_folder(tmp_path)
    images, labels = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    a, b = images.read_bytes(), labels.read_bytes()
    images.write_bytes(b)
    labels.write_bytes(a)
    with pytest.raises(DatasetError, match="are swapped. Rename them"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


def test_mnist_wrong_image_shape(tmp_path):
    folder = make_mnist_folder(tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((4, 8, 8))))
    )
    with pytest.raises(DatasetError, match=r"not \(N, 28, 28\) images. Replace both"):
        data.load_mnist("test", data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- scikit-learn


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


# --------------------------------------------------------------------------- arrays and tensors


def test_mnist_tensors_are_flat_and_standardised(real_data):
    (x, y), _ = data.mnist_tensors(n_train=300, n_test=100)
    assert x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0  # pixels in [0, 1]
    (x, y), (xt, yt) = data.mnist_tensors(standardize=True, n_train=500, n_test=200)
    assert x.shape == (500, 784) and xt.shape == (200, 784)
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and len(yt) == 200
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05
    assert set(y.tolist()) == set(range(10))


def test_digits_tensors():
    x, y = data.digits_tensors()
    assert x.shape == (1797, 64) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert abs(x.mean().item()) < 1e-5 and x.std(0).max().item() == pytest.approx(1.0, abs=1e-3)
    raw, _ = data.digits_tensors(standardize=False)
    assert raw.min() == 0 and raw.max() == 16


def test_standardize_columns_uses_the_training_statistics_only():
    train = np.array([[1.0, 5.0], [3.0, 5.0]])
    test = np.array([[5.0, 7.0]])
    train_s, test_s = data.standardize_columns(train, test)
    assert np.allclose(train_s, [[-1.0, 0.0], [1.0, 0.0]])  # the constant column becomes 0
    assert np.allclose(test_s, [[3.0, 2.0]])  # (5 - 2) / 1 and (7 - 5) / 1
    (only,) = data.standardize_columns(train)
    assert np.allclose(only, train_s)


def test_with_bias_column():
    assert data.with_bias_column([[2.0], [3.0]]).tolist() == [[2.0, 1.0], [3.0, 1.0]]
    with pytest.raises(ValueError, match="2-D"):
        data.with_bias_column([1.0, 2.0])
