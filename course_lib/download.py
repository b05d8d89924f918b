"""Fetching datasets safely: downloads, checksums, archives, locks and writable folders.

Used by :mod:`course_lib.data`. Every failure is a :class:`DatasetError` whose
message names the file and says what to do, and nothing is left half-written:

* :func:`download_file` writes to a temporary file beside the destination and
  renames it only when the whole file arrived (and matches its MD5), trying each
  mirror in turn; a web page served instead of the file (a Wi-Fi login page),
  a cut connection, a TLS certificate failure or a timeout moves on to the next
  mirror and ends in one message that lists what happened with each.
* :func:`fetch_archive` downloads an archive, extracts it into a temporary
  folder, checks what it holds and only then moves the dataset folder into
  place. A failed check removes the archive and the temporary folder, so the
  next run starts afresh.
* :func:`dataset_lock` lets two processes (two notebooks, two learners on one
  shared folder) fetch the same dataset at once: the second waits for the first
  and then uses what it fetched.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import socket
import ssl
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

__all__ = [
    "DatasetError",
    "data_root",
    "dataset_lock",
    "download_file",
    "fetch_archive",
    "fetch_missing",
    "md5sum",
    "offline_hint",
    "replace_hint",
    "require_writable",
]


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt, truncated or cannot be downloaded.

    The message always names the file and says what to do. ``problem``, when
    given, is the finding alone (without the advice), for messages that wrap it.
    """

    def __init__(self, message: str, problem: str | None = None):
        super().__init__(message)
        self.problem = problem or message


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file (read in chunks)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- folders


def require_writable(root: Path, what: str) -> None:
    """Make sure ``root`` is a folder this process can write ``what`` into, or say how to fix it.

    Nothing is created unless the folder (or its nearest existing parent) is writable.
    """
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DatasetError(
            f"The data folder {root} is a file, not a folder (or lies inside one), so {what} "
            "cannot be saved there. Set COURSE_DATA_DIR to a folder (or unset it to use the "
            "default)."
        )
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"The data folder {root} is not writable ({exc.strerror or exc}), so {what} cannot "
            "be downloaded into it. Set COURSE_DATA_DIR to a folder you can write to, or ask "
            f"whoever manages {root} to add the dataset there."
        ) from exc


@contextlib.contextmanager
def dataset_lock(root: Path, folder: str, what: str) -> Iterator[None]:
    """Hold the lock that lets one process at a time fetch ``folder`` into ``root``.

    A second process waits (and says so) until the first is done; it must then
    look again for what the first one fetched. The lock is released if the
    process dies, so a crash never blocks the next run.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(root / f".{folder}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"Another process is fetching {what} into {root}: waiting for it to finish ...")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- dataset folders


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """The data folder (``data_dir`` or ``COURSE_DATA_DIR``), refused if it is a file."""
    from . import config

    root = Path(data_dir).expanduser().resolve() if data_dir is not None else config.data_dir()
    if root.exists() and not root.is_dir():
        raise DatasetError(
            f"The data folder {root} is a file, not a folder. Set COURSE_DATA_DIR to the folder "
            "that holds (or should hold) the datasets, or unset it to use the default."
        )
    return root


def offline_hint(folder: str, data_dir: Path) -> str:
    """What to do on a machine without internet access."""
    return (
        f"If this machine has no internet access, copy the dataset folder '{folder}' "
        f"(official layout) into {data_dir}, or set COURSE_DATA_DIR to a folder that holds it."
    )


def replace_hint(path: Path) -> str:
    """What to do about a dataset file that is corrupt or foreign."""
    return (
        f"Delete the folder {path.parent} and run the cell again to download it afresh (or "
        "restore the official file)."
    )


def fetch_missing(root: Path, folder: str, what: str, download: bool, fetch) -> Path:
    """``root/folder``, fetched with ``fetch()`` (under the dataset's lock) if it is missing."""
    target = root / folder
    if target.exists():
        return target
    if not download:
        raise DatasetError(f"{what} is not in {root}. {offline_hint(folder, root)}")
    try:
        fetch()
    except DatasetError as exc:
        if "Could not download" in str(exc):
            raise DatasetError(f"{exc}\n{offline_hint(folder, root)}") from exc
        raise
    return target


# --------------------------------------------------------------------------- downloads


class _Failure(Exception):
    """What went wrong with one URL (the mirror loop goes on to the next)."""


def _ssl_context() -> ssl.SSLContext:
    """The default TLS context, with certifi's certificates when certifi is installed.

    A stock macOS Python has no certificates of its own until its 'Install
    Certificates' script runs; certifi's bundle makes downloads work without it.
    """
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _looks_like_html(first_bytes: bytes) -> bool:
    head = first_bytes.lstrip()[:64].lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def _reason(exc: BaseException, timeout: float, received: int = 0) -> str:
    """A learner-readable reason for a failed request, with what to do about it."""
    inner = getattr(exc, "reason", None)
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {exc.reason}"
    if isinstance(inner, ssl.SSLCertVerificationError) or isinstance(
        exc, ssl.SSLCertVerificationError
    ):
        return (
            "the server's TLS certificate could not be verified. Install certifi "
            "(pip install certifi); on macOS you can instead run 'Install Certificates.command' "
            "from your Python's folder in Applications. On a network that inspects traffic, "
            "ask its administrators for their certificate"
        )
    if isinstance(inner, TimeoutError | socket.timeout) or isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (slow or no connection)"
    if isinstance(exc, http.client.IncompleteRead):
        got = received + len(exc.partial)
        return f"the connection broke before the whole file arrived ({got:,} bytes received)"
    if isinstance(exc, http.client.HTTPException):
        return f"the reply was not valid HTTP ({type(exc).__name__}: {exc})"
    if isinstance(exc, ssl.SSLError) or isinstance(inner, ssl.SSLError):
        return f"the secure connection failed ({inner or exc})"
    return str(inner or exc) or type(exc).__name__


def _fetch(url: str, out, timeout: float, label: str, progress: bool) -> None:
    """Stream ``url`` into the open file ``out``; raise :class:`_Failure` with the reason."""
    from tqdm.auto import tqdm

    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=_ssl_context()) as resp:
            ctype = resp.headers.get("Content-Type", "")
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=not progress
            ) as bar:
                while block := resp.read(1 << 16):
                    if received == 0 and (ctype.startswith("text/html") or _looks_like_html(block)):
                        raise _Failure(
                            "the server sent a web page instead of the file (a Wi-Fi login page "
                            "or an error page?): open any web page in a browser to log in, then "
                            "run again"
                        )
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
    except _Failure:
        raise
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        ssl.SSLError,
        OSError,
        ValueError,
    ) as exc:
        raise _Failure(_reason(exc, timeout, received)) from exc
    if total is not None and received != total:
        raise _Failure(f"truncated download: got {received:,} of {total:,} bytes")


def download_file(
    urls: str | Sequence[str],
    dest: str | os.PathLike,
    md5: str | None = None,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download the first of ``urls`` that works to ``dest``, atomically.

    The bytes go to a temporary file beside ``dest``; only a complete file (as
    long as the server announced, not a web page, and matching ``md5`` when
    given) is renamed to ``dest``. On failure the temporary file is removed and
    a :class:`DatasetError` lists what went wrong with each URL.
    """
    dest = Path(dest)
    require_writable(dest.parent, dest.name)
    urls = [urls] if isinstance(urls, str) else list(urls)
    failures = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, timeout, dest.name, progress)
            if md5 is not None and (got := md5sum(tmp)) != md5:
                raise _Failure(f"checksum mismatch: MD5 {got}, expected {md5}")
            os.replace(tmp, dest)
            return dest
        except _Failure as exc:
            failures.append(f"  {url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DatasetError(
        f"Could not download {dest.name}:\n" + "\n".join(failures) + "\n"
        "Check your internet connection and run the cell again. Nothing was written."
    )


# --------------------------------------------------------------------------- archives


def _extract(archive: Path, into: Path) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(into, filter="data")
            else:  # Python 3.11.0-3.11.3: refuse absolute or escaping member names ourselves
                for member in tar.getmembers():
                    if member.name.startswith("/") or ".." in Path(member.name).parts:
                        raise DatasetError(f"unsafe member name {member.name!r}")
                    if not (member.isfile() or member.isdir()):
                        raise DatasetError(f"unexpected link or device {member.name!r}")
                tar.extractall(into)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise DatasetError(f"it is truncated or corrupt: {exc}") from exc


def _install_extracted(archive: Path, root: Path, folder: str, check) -> Path:
    """Extract ``archive``, ``check`` the dataset folder in it, move it to ``root/folder``."""
    target = root / folder
    tmp_dir = Path(tempfile.mkdtemp(dir=root, prefix=f".{folder}.", suffix=".extract"))
    try:
        _extract(archive, tmp_dir)
        extracted = tmp_dir / folder
        if not extracted.is_dir():
            raise DatasetError(f"it does not contain the folder '{folder}/'")
        try:
            check(extracted)
        except DatasetError as exc:  # name what the learner knows, not the temporary folder
            problem = exc.problem.replace(str(extracted), folder)
            raise DatasetError(problem, problem) from exc
        try:
            os.replace(extracted, target)
        except OSError:
            if not target.is_dir():  # not "another process finished first": a real failure
                raise
            check(target)
        return target
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def fetch_archive(
    url: str, md5: str | None, root: Path, folder: str, check: Callable[[Path], None], what: str
) -> Path:
    """``root/folder``, downloaded as the archive at ``url`` and extracted, if it is missing.

    An archive already in ``root`` (copied there by hand for an offline venue) is
    used when it matches ``md5``. One process at a time fetches a dataset; one
    that waited uses what the other fetched. On any failure the archive and every
    temporary folder are removed, so the next run downloads afresh.
    """
    target = root / folder
    require_writable(root, what)
    with dataset_lock(root, folder, what):
        if target.exists():  # another process fetched it while this one waited
            check(target)
            return target
        archive = root / url.rsplit("/", 1)[-1]
        if archive.exists() and md5 is not None and md5sum(archive) != md5:
            archive.unlink()  # an incomplete or foreign file: start afresh
        if not archive.exists():
            download_file(url, archive, md5=md5)
        try:
            _install_extracted(archive, root, folder, check)
        except DatasetError as exc:
            archive.unlink(missing_ok=True)
            raise DatasetError(
                f"The archive {archive.name} failed its check ({exc.problem}). It was removed: "
                "run the cell again to download it afresh (if this keeps happening, download "
                f"{url} yourself and extract it into {root})."
            ) from exc
        archive.unlink()
    return target
