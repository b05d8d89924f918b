"""course_lib.text: the MR sentence-polarity files as published, and text as tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_dir_or_skip
from test_data import make_tar

from course_lib import text
from course_lib.data import Dataset
from course_lib.download import DatasetError

#: sentences with the characters that make MR's official bytes tricky: é (0xE9), the
#: ellipsis (0x85, a line break U+0085 if decoded as Latin-1), en and em dashes (0x96, 0x97)
MR_SENTENCES = [
    "a {word} café film number {i} . ",
    "{word} \u2026 and then some \u2013 film {i} \u2014 really",
]


def make_mr_folder(
    root: Path, encoding: str = "utf-8", lines: int = text.MR_LINES, newline: str = "\n"
) -> Path:
    """A folder in MR's layout; ``encoding="cp1252", newline="\\r\\n"`` gives the official bytes."""
    folder = root / "rt-polaritydata"
    folder.mkdir(parents=True)
    for name, word in (("rt-polarity.pos", "wonderful"), ("rt-polarity.neg", "dreadful")):
        text = "".join(MR_SENTENCES[i % 2].format(word=word, i=i) + newline for i in range(lines))
        (folder / name).write_bytes(text.encode(encoding))
    return folder


# --------------------------------------------------------------------------- the MR files


def test_real_mr_sample():
    root = data_dir_or_skip()
    mr = text.load_mr(data_dir=root, download=False)
    assert len(mr) == 10662 and np.bincount(mr.y).tolist() == [5331, 5331]
    first_positive = mr.x[int(np.argmax(mr.y == 1))]
    assert first_positive.startswith("the rock is destined to be the 21st century's new")
    assert mr.classes == ["negative", "positive"]
    # the official bytes: Windows-1252 (0x85 is the ellipsis, 0xE9 is é) with CRLF endings
    joined = "\n".join(mr.x)
    assert "\x85" not in joined and "\r" not in joined and "\u2026" in joined and "é" in joined


def test_mr_download_and_extract(http_root, tmp_path, monkeypatch):
    www, url = http_root
    official = make_mr_folder(tmp_path / "src", encoding="cp1252", newline="\r\n")
    make_tar(official, www / "rt-polaritydata.tar.gz")
    monkeypatch.setattr(text, "MR_URL", url + "rt-polaritydata.tar.gz")
    mr = text.load_mr(data_dir=tmp_path / "data")
    assert len(mr) == 2 * text.MR_LINES and "café" in mr.x[0] and "\u2026" in mr.x[1]


@pytest.mark.parametrize(
    "encoding, newline, bom",
    [("cp1252", "\r\n", b""), ("utf-8", "\r\n", b"\xef\xbb\xbf"), ("cp1252", "\n", b"")],
    ids=["official-bytes", "utf8-bom-crlf", "cp1252-lf"],
)
def test_mr_official_bytes_and_utf8_copy_read_the_same(tmp_path, encoding, newline, bom):
    make_mr_folder(tmp_path / "utf8", "utf-8")
    folder = make_mr_folder(tmp_path / "other", encoding, newline=newline)
    for f in folder.iterdir():
        f.write_bytes(bom + f.read_bytes())
    if encoding == "cp1252":
        assert b"\x85" in (folder / "rt-polarity.pos").read_bytes()  # the tricky byte is there
    u = text.load_mr(data_dir=tmp_path / "utf8", download=False)
    other = text.load_mr(data_dir=tmp_path / "other", download=False)
    assert len(other) == 2 * text.MR_LINES and other.x == u.x and np.array_equal(other.y, u.y)
    assert other.x[0] == "a dreadful café film number 0 ."
    assert other.x[1] == "dreadful \u2026 and then some \u2013 film 1 \u2014 really"
    assert u.y[: text.MR_LINES].sum() == 0 and u.y[text.MR_LINES :].min() == 1  # neg 0, pos 1
    assert "wonderful" in u.x[-1]


def test_real_mr_official_bytes_equal_a_utf8_redistribution(real_data, tmp_path):
    official = text.load_mr(data_dir=real_data, download=False)
    copy = tmp_path / "rt-polaritydata"
    copy.mkdir()
    for name in text.MR_FILES:
        raw = (real_data / "rt-polaritydata" / name).read_bytes()
        assert raw.count(b"\r\n") == text.MR_LINES  # the samples hold the official bytes
        utf8_lf = raw.decode("cp1252").replace("\r\n", "\n")
        (copy / name).write_bytes(utf8_lf.encode("utf-8"))
    utf8 = text.load_mr(data_dir=tmp_path, download=False)
    assert len(official) == 10662 and official.x == utf8.x and np.array_equal(official.y, utf8.y)


def test_real_mr_first_run_from_the_official_archive(real_data, tmp_path, http_root, monkeypatch):
    """The whole first-run path: the archive as published, served locally, then load_mr()."""
    www, url = http_root
    make_tar(real_data / "rt-polaritydata", www / "rt-polaritydata.tar.gz")
    monkeypatch.setattr(text, "MR_URL", url + "rt-polaritydata.tar.gz")
    root = tmp_path / "fresh"
    mr = text.load_mr(data_dir=root)
    assert len(mr) == 10662 and np.bincount(mr.y).tolist() == [5331, 5331]
    assert mr.x == text.load_mr(data_dir=real_data, download=False).x
    assert sorted(p.name for p in root.iterdir()) == [".rt-polaritydata.lock", "rt-polaritydata"]


def test_mr_truncated_file(tmp_path):
    folder = make_mr_folder(tmp_path)
    (folder / "rt-polarity.pos").write_text("just one line\n")
    with pytest.raises(DatasetError, match="rt-polarity.pos has 1 sentences"):
        text.load_mr(data_dir=tmp_path, download=False)


def test_mr_missing_file_and_binary_file(tmp_path):
    folder = make_mr_folder(tmp_path)
    (folder / "rt-polarity.neg").write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(DatasetError, match="NUL bytes"):
        text.load_mr(data_dir=tmp_path, download=False)
    (folder / "rt-polarity.neg").unlink()
    with pytest.raises(DatasetError, match="missing rt-polarity.neg"):
        text.load_mr(data_dir=tmp_path, download=False)


def test_mr_missing_without_download(tmp_path):
    with pytest.raises(DatasetError, match="MR is not in"):
        text.load_mr(data_dir=tmp_path, download=False)


# --------------------------------------------------------------------------- text as tensors


def test_tokenize_splits_words_clitics_and_punctuation():
    assert text.tokenize("It's not BAD, isn't it?") == [
        "it", "'s", "not", "bad", ",", "isn", "'t", "it", "?",
    ]  # fmt: skip
    assert text.tokenize("   ") == []


def test_vocabulary_build_encode_decode():
    vocab = text.Vocabulary.build(["a good film .", "a bad film .", "a film"], min_freq=2)
    assert vocab.itos[:2] == ["<pad>", "<unk>"]
    assert vocab.itos[2:] == ["a", "film", "."]  # by frequency, ties alphabetically
    assert len(vocab) == 5 and "film" in vocab and "good" not in vocab
    x = vocab.encode(["a good film", "film"])
    assert x.dtype == torch.long and x.shape == (2, 3)
    assert x.tolist() == [[2, text.Vocabulary.UNK, 3], [3, 0, 0]]
    assert vocab.decode(x[1]) == ["film"]
    assert vocab.encode(["a film . a film"], max_len=2).shape == (1, 2)
    assert vocab.encode([""]).tolist() == [[text.Vocabulary.UNK]]
    with pytest.raises(ValueError):
        text.Vocabulary.build(["a"], min_freq=0)
    with pytest.raises(ValueError):
        vocab.encode(["a"], max_len=0)
    assert "5 tokens" in repr(vocab)
    assert len(text.Vocabulary.build(["a b c d"], max_size=2)) == 4


def test_mr_split_is_fixed_stratified_and_disjoint(real_data):
    splits = text.mr_split()
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 8530, "val": 1066, "test": 1066}
    for ds in splits.values():
        assert np.bincount(ds.y).tolist() == [len(ds) // 2] * 2
    sets = [set(ds.x) for ds in splits.values()]
    assert not (sets[0] & sets[2]) or len(sets[0] & sets[2]) < 5  # MR has a few duplicates
    idx = text.mr_split_indices()
    assert all(np.all(np.diff(i) > 0) for i in idx.values())  # sorted, no repeats
    assert not set(idx["train"]) & set(idx["test"]) and not set(idx["val"]) & set(idx["test"])
    no_val = text.mr_split(val_size=0)
    assert no_val["test"].x == splits["test"].x  # the test split does not depend on val_size
    assert len(no_val["val"]) == 0 and len(no_val["train"]) == 10662 - 1066


def test_length_bucket_loader_groups_similar_lengths():
    lengths = torch.randint(1, 40, (500,))
    x = torch.zeros(500, 40, dtype=torch.long)
    for i, n in enumerate(lengths):
        x[i, :n] = 5
    y = np.arange(500) % 2
    loader = text.length_bucket_loader(x, y, batch_size=50, seed=0)
    seen, spreads = [], []
    for xb, yb in loader:
        n = (xb != 0).sum(1)
        spreads.append((n.max() - n.min()).item())
        seen += xb[:, 0].tolist()
        assert len(xb) == len(yb) <= 50
    assert len(seen) == 500 and len(loader) == 10
    assert np.mean(spreads) < 8  # a random batch of 50 would span almost all of 1..39
    first = [b[0].sum().item() for b in text.length_bucket_loader(x, y, 50, seed=0)]
    again = [b[0].sum().item() for b in text.length_bucket_loader(x, y, 50, seed=0)]
    assert first == again  # reproducible from the seed


def test_tfidf_baseline_on_a_toy_split():
    rng = np.random.default_rng(0)

    def make(n):
        y = rng.integers(0, 2, n)
        x = [
            ("a truly great film" if label else "a truly awful film") + f" w{i}"
            for i, label in enumerate(y)
        ]
        return Dataset(x, y, ["neg", "pos"])

    splits = {"train": make(60), "test": make(40)}
    assert text.tfidf_baseline(splits) == 1.0
    assert text.tfidf_baseline(splits, n_train=10) == 1.0
