"""Text: the MR sentence-polarity data (Pang and Lee 2005) and text as tensors.

Used by notebook 08 (transfer learning) and notebook 14 (recurrent networks).

* :func:`load_mr` reads ``rt-polaritydata/`` as published (Windows-1252 text with
  DOS line endings) or as a UTF-8 copy, downloading the official archive when it
  is missing (see :mod:`course_lib.download`); no checksum is published, so the
  folder's structure and line counts are checked instead.
* :func:`tokenize` and :class:`Vocabulary` turn sentences into token ids;
  :func:`mr_split` is the course's fixed, stratified train / validation / test split;
  :func:`length_bucket_loader` batches sentences of similar length, and
  :func:`tfidf_baseline` is the classic linear baseline on a split.
"""

from __future__ import annotations

import codecs
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from .config import resolve_seed
from .data import Dataset
from .download import (
    DatasetError,
    data_root,
    fetch_archive,
    fetch_missing,
    replace_hint,
)

__all__ = [
    "MR_FILES",
    "MR_FOLDER",
    "MR_LINES",
    "MR_URL",
    "Vocabulary",
    "ensure_mr",
    "length_bucket_loader",
    "load_mr",
    "mr_split",
    "mr_split_indices",
    "read_mr_file",
    "tfidf_baseline",
    "tokenize",
]

MR_URL = "https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz"
MR_FOLDER = "rt-polaritydata"
MR_FILES = {"rt-polarity.neg": 0, "rt-polarity.pos": 1}  # file -> label
MR_LINES = 5331  # sentences per file in v1.0 (no checksum is published)


# --------------------------------------------------------------------------- MR files


def _mr_encoding(raw: bytes) -> str:
    """``"utf-8"`` when ``raw`` is valid UTF-8, else ``"cp1252"`` (the official archive's)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _latin1_fallback(error: UnicodeDecodeError):
    # the five bytes Windows-1252 leaves undefined are read as Latin-1: no byte is lost
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("course_lib.latin1", _latin1_fallback)


def read_mr_file(path: str | os.PathLike, expected_lines: int | None = MR_LINES) -> list[str]:
    """Sentences of one MR file, one per line, as in the official archive or a UTF-8 copy.

    The official ``rt-polaritydata.tar.gz`` holds Windows-1252 text with DOS line
    endings; its ellipsis is byte 0x85, which a Latin-1 decoder would turn into the
    line break U+0085. So the file is read as bytes and split on the line-feed byte
    only; each line loses its carriage return and is decoded as UTF-8 when the whole
    file is valid UTF-8 (a byte-order mark is dropped), else as Windows-1252. Blank
    lines are skipped.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(
            f"{path} cannot be read ({exc.strerror or exc}). Check its permissions, or delete "
            "the folder and run again to download it."
        ) from exc
    if b"\x00" in raw:
        problem = f"{path} contains NUL bytes: it is not a text file"
        raise DatasetError(f"{problem}. " + replace_hint(path), problem)
    raw = raw.removeprefix(codecs.BOM_UTF8)
    encoding = _mr_encoding(raw)
    lines = [
        line.rstrip(b"\r").decode(encoding, errors="course_lib.latin1").strip()
        for line in raw.split(b"\n")
    ]
    lines = [line for line in lines if line]
    if expected_lines is not None and len(lines) != expected_lines:
        problem = (
            f"{path} has {len(lines):,} sentences, but MR v1.0 has {expected_lines:,} per file: "
            "it is truncated or a different file"
        )
        raise DatasetError(f"{problem}. " + replace_hint(path), problem)
    return lines


def _check_mr_folder(folder: Path) -> None:
    missing = [name for name in MR_FILES if not (folder / name).is_file()]
    if missing:
        problem = f"{folder} is not the MR sentence-polarity folder: missing {', '.join(missing)}"
        raise DatasetError(
            f"{problem}. It should hold rt-polarity.pos and rt-polarity.neg; delete it to "
            "download it again.",
            problem,
        )
    for name in MR_FILES:
        read_mr_file(folder / name)


def ensure_mr(data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The ``rt-polaritydata`` folder, downloaded and extracted if missing."""
    root = data_root(data_dir)
    return fetch_missing(
        root,
        MR_FOLDER,
        "MR",
        download,
        lambda: fetch_archive(MR_URL, None, root, MR_FOLDER, _check_mr_folder, "MR"),
    )


def load_mr(
    n: int | None = None,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    seed: int = 0,
) -> Dataset:
    """MR sentences ``x`` (a list of str), labels ``y`` (0 negative, 1 positive)."""
    folder = ensure_mr(data_dir, download)
    _check_mr_folder(folder)
    texts: list[str] = []
    labels: list[int] = []
    for name, label in MR_FILES.items():
        lines = read_mr_file(folder / name)
        texts += lines
        labels += [label] * len(lines)
    y = np.asarray(labels, dtype=np.int64)
    return Dataset(texts, y, ["negative", "positive"], "MR sentence polarity").subset(n, seed)


# --------------------------------------------------------------------------- text to tensors

#: A token is a run of letters/digits, an English clitic such as ``'s`` or ``n't``'s ``'t``,
#: or a single punctuation character. MR is distributed lower-cased and tokenised already.
TOKEN_PATTERN = re.compile(r"[a-z0-9]+|'[a-z]+|[^\w\s]")


def tokenize(sentence: str) -> list[str]:
    """Lower-case ``sentence`` and split it into word, clitic and punctuation tokens.

    >>> tokenize("It's not bad, it's GREAT!")
    ['it', "'s", 'not', 'bad', ',', 'it', "'s", 'great', '!']
    """
    return TOKEN_PATTERN.findall(sentence.lower())


class Vocabulary:
    """A mapping between tokens and integer ids, built from training sentences only.

    Id 0 is the padding token ``<pad>`` and id 1 stands for every unknown
    token ``<unk>``; the other tokens are numbered by decreasing frequency.
    """

    PAD, UNK = 0, 1
    SPECIALS = ("<pad>", "<unk>")

    def __init__(self, tokens: Sequence[str]):
        self.itos = list(self.SPECIALS) + [t for t in tokens if t not in self.SPECIALS]
        self.stoi = {token: i for i, token in enumerate(self.itos)}

    @classmethod
    def build(
        cls, sentences: Iterable[str], min_freq: int = 1, max_size: int | None = None
    ) -> Vocabulary:
        """The tokens of ``sentences`` seen at least ``min_freq`` times (the ``max_size`` commonest)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts = Counter(token for s in sentences for token in tokenize(s))
        # most frequent first; ties in alphabetical order so that the ids are reproducible
        ranked = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        return cls(ranked[:max_size] if max_size is not None else ranked)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def ids(self, sentence: str) -> list[int]:
        """The token ids of one sentence (unknown tokens become ``UNK``)."""
        return [self.stoi.get(t, self.UNK) for t in tokenize(sentence)]

    def encode(self, sentences: Sequence[str], max_len: int | None = None) -> torch.Tensor:
        """A ``(N, L)`` int64 tensor of token ids, right-padded with ``PAD`` (0).

        ``L`` is the longest sentence, or ``max_len`` (longer sentences are cut).
        A sentence without any token becomes a single ``UNK``.
        """
        rows = [self.ids(s) or [self.UNK] for s in sentences]
        if max_len is not None:
            if max_len < 1:
                raise ValueError(f"max_len must be at least 1, got {max_len}")
            rows = [r[:max_len] for r in rows]
        length = max((len(r) for r in rows), default=1)
        out = torch.full((len(rows), length), self.PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of a row of ids, padding left out."""
        return [self.itos[int(i)] for i in ids if int(i) != self.PAD]

    def __repr__(self) -> str:
        return f"Vocabulary({len(self):,} tokens)"


def mr_split_indices(
    test_size: int = 1066, val_size: int = 1066, seed: int = 0
) -> dict[str, np.ndarray]:
    """Sorted indices into ``load_mr()`` of a fixed, class-stratified train / val / test split.

    The defaults hold out 10 % for testing and 10 % for validation (choosing
    the epoch), leaving 8,530 training sentences. The test indices depend
    only on ``test_size`` and ``seed``; ``val_size=0`` gives an empty
    validation set.
    """
    from sklearn.model_selection import train_test_split

    y = load_mr().y
    index = np.arange(len(y))
    rest, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=y)
    if val_size:
        train, val = train_test_split(rest, test_size=val_size, random_state=seed, stratify=y[rest])
    else:
        train, val = rest, np.array([], dtype=np.int64)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def mr_split(test_size: int = 1066, val_size: int = 1066, seed: int = 0) -> dict[str, Dataset]:
    """The MR sentences of :func:`mr_split_indices` as ``{"train", "val", "test"}`` datasets."""
    mr = load_mr()
    return {name: mr[i] for name, i in mr_split_indices(test_size, val_size, seed).items()}


class _LengthBuckets(torch.utils.data.Sampler):
    """Batches of sentences of similar length, in a new random order every epoch."""

    def __init__(self, lengths: torch.Tensor, batch_size: int, seed: int = 0):
        self.lengths, self.batch_size = lengths, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        n = len(self.lengths)
        # shuffle, then sort by length inside windows of 50 batches, then cut into batches
        order = torch.randperm(n, generator=self.generator)
        window = 50 * self.batch_size
        chunks = [order[i : i + window] for i in range(0, n, window)]
        order = torch.cat([c[torch.argsort(self.lengths[c], stable=True)] for c in chunks])
        batches = list(order.split(self.batch_size))
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i].tolist()

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def length_bucket_loader(
    x: torch.Tensor, y, batch_size: int = 64, seed: int = 0
) -> torch.utils.data.DataLoader:
    """A training ``DataLoader`` over padded token ids ``x`` whose batches hold sentences of similar length.

    A model that cuts each batch to its longest sentence (like
    :class:`course_lib.rnn.SentenceRNN`) then wastes far fewer steps on padding
    (about half the compute on MR) without changing what is learnt: every
    sentence is still seen once per epoch, in a random batch order.
    """
    lengths = (x != Vocabulary.PAD).sum(1)
    dataset = torch.utils.data.TensorDataset(x, torch.as_tensor(np.asarray(y), dtype=torch.long))
    sampler = _LengthBuckets(lengths, batch_size, seed)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler)


def tfidf_baseline(
    splits: dict[str, Dataset], n_train: int | None = None, seed: int | None = None
) -> float:
    """Test accuracy of TF-IDF word uni- and bigrams + logistic regression on the same split.

    The classic linear baseline for sentence polarity (compare NBSVM, Wang and
    Manning 2012), fitted on ``splits["train"]`` (or the same ``n_train``
    subset that :func:`course_lib.rnn.train_sentence_model` uses) with :func:`tokenize`.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = splits["train"].subset(n_train, seed=resolve_seed(seed))
    vectorizer = TfidfVectorizer(
        tokenizer=tokenize, lowercase=False, ngram_range=(1, 2), token_pattern=None
    )
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(vectorizer.fit_transform(train.x), train.y)
    return float(clf.score(vectorizer.transform(splits["test"].x), splits["test"].y))
