"""course_lib.download: every way a download can go wrong, on servers started here on 127.0.0.1.

Each failure must end in a DatasetError that names the file and says what to do, the
mirror loop must go on to the next mirror, and nothing may be left behind: no partial
file, no archive that failed its check, no temporary folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_data import make_cifar_folder, make_tar
from test_text import make_mr_folder

from course_lib import data, download, text
from course_lib.download import DatasetError

# --------------------------------------------------------------------------- servers


@contextlib.contextmanager
def serve(handler_class):
    """An HTTP server on 127.0.0.1 with ``handler_class``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def raw_server(reply: bytes | None):
    """A TCP server that answers every connection with ``reply`` (or never, for None)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()
    held = []

    def loop():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)
            if reply is not None:
                conn.recv(65536)
                conn.sendall(reply)
                conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _HtmlPage(_Quiet):
    """What a Wi-Fi login portal does: status 200 and a web page, whatever was asked."""

    def do_GET(self):
        body = b"<!DOCTYPE html><html><body>Please log in to the venue Wi-Fi</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ChunkedCut(_Quiet):
    """A chunked body that stops in the middle of a chunk (IncompleteRead)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"2000\r\n" + b"x" * 1000)
        self.wfile.flush()
        self.close_connection = True


class _Truncating(_Quiet):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"x" * 1000)  # then the connection closes early


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def no_leftovers(folder: Path) -> bool:
    """No temporary download or extraction files left behind (the lock files may stay)."""
    return not [
        p
        for p in folder.rglob("*")
        if p.suffix in {".part", ".extract"} or ".write-test." in p.name
    ]


# --------------------------------------------------------------------------- download_file


def test_download_file_success_and_atomicity(http_root, tmp_path):
    www, url = http_root
    payload = os.urandom(200_000)
    (www / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    md5 = hashlib.md5(payload).hexdigest()
    assert download.download_file(url + "blob.bin", dest, md5=md5, progress=False) == dest
    assert dest.read_bytes() == payload and download.md5sum(dest) == md5
    assert _files(dest.parent) == ["blob.bin"]


def test_md5sum(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert download.md5sum(tmp_path / "f") == "900150983cd24fb0d6963f7d28e17f72"


def test_checksum_mismatch_writes_nothing(http_root, tmp_path):
    www, url = http_root
    (www / "blob.bin").write_bytes(b"not what you expected")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download.download_file(url + "blob.bin", dest, md5="0" * 32, progress=False)
    assert _files(dest.parent) == []


def test_offline_says_what_to_do(tmp_path):
    with pytest.raises(DatasetError, match="internet connection") as info:
        download.download_file(
            "http://127.0.0.1:9/nothing.tar.gz", tmp_path / "x", timeout=5, progress=False
        )
    assert "127.0.0.1:9" in str(info.value) and "Could not download x" in str(info.value)
    assert _files(tmp_path) == []


def test_truncated_transfer_with_content_length(tmp_path):
    with serve(_Truncating) as url, pytest.raises(DatasetError, match="Could not download"):
        download.download_file(url + "file", tmp_path / "file", progress=False)
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    "failure, expected",
    [
        ("html", "web page instead of the file"),
        ("chunked", "connection broke before the whole file arrived"),
        ("bad-status", "not valid HTTP"),
        ("silent", "no answer within"),
        ("404", "HTTP 404"),
    ],
)
def test_every_network_failure_moves_on_to_the_next_mirror(http_root, tmp_path, failure, expected):
    www, good = http_root
    (www / "f.gz").write_bytes(b"the real file")
    with contextlib.ExitStack() as stack:
        bad = {
            "html": lambda: stack.enter_context(serve(_HtmlPage)),
            "chunked": lambda: stack.enter_context(serve(_ChunkedCut)),
            "bad-status": lambda: stack.enter_context(raw_server(b"SSH-2.0-OpenSSH_9.2\r\n")),
            "silent": lambda: stack.enter_context(raw_server(None)),
            "404": lambda: good + "missing/",
        }[failure]()
        dest = tmp_path / "out" / "f.gz"
        # the failing mirror alone: a DatasetError naming the file, the reason and what to do
        with pytest.raises(DatasetError) as info:
            download.download_file(bad + "f.gz", dest, timeout=1, progress=False)
        message = str(info.value)
        assert "Could not download f.gz" in message and expected in message, message
        assert "run the cell again" in message and _files(dest.parent) == []
        # the same failure followed by a good mirror: the good one is used
        assert download.download_file(
            [bad + "f.gz", good + "f.gz"], dest, timeout=1, progress=False
        )
    assert dest.read_bytes() == b"the real file" and _files(dest.parent) == ["f.gz"]


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the TLS test")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_certificate_failure_says_what_to_do(tmp_path):
    cert, key = _self_signed_certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/data.tar.gz"
        with pytest.raises(DatasetError, match="certificate could not be verified") as info:
            download.download_file(url, tmp_path / "out" / "data.tar.gz", timeout=5, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert "pip install certifi" in str(info.value) and "Install Certificates" in str(info.value)
    assert _files(tmp_path / "out") == []


def test_certifi_bundle_is_used_when_installed(monkeypatch):
    import certifi

    seen = {}
    real = ssl.create_default_context
    monkeypatch.setattr(
        download.ssl, "create_default_context", lambda **kw: seen.update(kw) or real(**kw)
    )
    download._ssl_context()
    assert seen == {"cafile": certifi.where()}
    monkeypatch.setitem(sys.modules, "certifi", None)  # not installed: the system's store
    seen.clear()
    download._ssl_context()
    assert seen == {}


# --------------------------------------------------------------------------- archives: nothing sticky


def _point_mr_at(monkeypatch, url: str) -> None:
    monkeypatch.setattr(text, "MR_URL", url + "rt-polaritydata.tar.gz")


def test_web_page_instead_of_archive_leaves_nothing_and_next_run_works(
    http_root, tmp_path, monkeypatch
):
    root = tmp_path / "data"
    with serve(_HtmlPage) as portal:
        _point_mr_at(monkeypatch, portal)
        with pytest.raises(DatasetError, match="(?s)web page instead of the file.*COURSE_DATA_DIR"):
            text.load_mr(data_dir=root)
    assert no_leftovers(root) and not (root / "rt-polaritydata.tar.gz").exists()
    www, url = http_root  # the network works again: the next run downloads afresh
    make_tar(make_mr_folder(tmp_path / "src"), www / "rt-polaritydata.tar.gz")
    _point_mr_at(monkeypatch, url)
    assert len(text.load_mr(data_dir=root)) == 2 * text.MR_LINES
    assert no_leftovers(root) and not (root / "rt-polaritydata.tar.gz").exists()


class _CutWithoutLength(_Quiet):
    """Half of the archive, no Content-Length, then the connection closes."""

    archive = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/x-gzip")
        self.end_headers()
        self.wfile.write(self.archive[: len(self.archive) // 2])


def test_archive_cut_short_without_length_is_removed(tmp_path, monkeypatch):
    good = make_tar(make_mr_folder(tmp_path / "src"), tmp_path / "good.tar.gz").read_bytes()
    handler = type("Cut", (_CutWithoutLength,), {"archive": good})
    root = tmp_path / "data"
    with serve(handler) as url:
        _point_mr_at(monkeypatch, url)
        with pytest.raises(DatasetError, match="truncated or corrupt") as info:
            text.load_mr(data_dir=root)
    message = str(info.value)
    assert "It was removed: run the cell again" in message and ".extract" not in message
    assert _files(root) == [".rt-polaritydata.lock"]  # no archive, no temporary folder


def test_archive_without_expected_folder_is_removed(http_root, tmp_path, monkeypatch):
    www, url = http_root
    other = tmp_path / "src" / "something-else"
    other.mkdir(parents=True)
    (other / "file.txt").write_text("hello")
    make_tar(other, www / "rt-polaritydata.tar.gz")
    _point_mr_at(monkeypatch, url)
    root = tmp_path / "data"
    with pytest.raises(DatasetError, match="does not contain the folder 'rt-polaritydata/'"):
        text.load_mr(data_dir=root)
    assert _files(root) == [".rt-polaritydata.lock"]


def test_failed_line_count_check_is_removed_and_names_no_temporary_path(
    http_root, tmp_path, monkeypatch
):
    www, url = http_root
    make_tar(make_mr_folder(tmp_path / "src", lines=100), www / "rt-polaritydata.tar.gz")
    _point_mr_at(monkeypatch, url)
    root = tmp_path / "data"
    with pytest.raises(DatasetError) as info:
        text.load_mr(data_dir=root)
    message = str(info.value)
    assert "rt-polaritydata/rt-polarity.neg has 100 sentences, but MR v1.0 has 5,331" in message
    assert ".extract" not in message and str(tmp_path) not in message.split("extract it into")[0]
    assert _files(root) == [".rt-polaritydata.lock"]


def test_archive_with_wrong_checksum_is_downloaded_afresh(http_root, tmp_path, monkeypatch):
    www, url = http_root
    archive = make_tar(make_cifar_folder(tmp_path / "src"), www / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data, "CIFAR10_URL", url + archive.name)
    monkeypatch.setattr(data, "CIFAR10_MD5", download.md5sum(archive))
    root = tmp_path / "data"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(b"half a download")  # from an earlier run
    assert data.load_cifar10("test", data_dir=root).x.shape == (4, 3, 32, 32)
    assert _files(root) == [".cifar-10-batches-py.lock", "cifar-10-batches-py"] + [
        f"cifar-10-batches-py/{n}" for n in sorted(data.CIFAR10_FILES)
    ]


def test_archive_copied_by_hand_is_used_offline(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    archive = make_tar(make_cifar_folder(tmp_path / "src"), root / "cifar-10-python.tar.gz")
    monkeypatch.setattr(data, "CIFAR10_MD5", download.md5sum(archive))
    monkeypatch.setattr(data, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    assert len(data.load_cifar10("train", data_dir=root)) == 20
    assert not archive.exists()


def test_another_process_finished_first_counts_as_success(tmp_path):
    """The extracted folder meets a finished copy at the rename: both are fine."""
    root = tmp_path / "data"
    make_mr_folder(root)  # "the other process" has just put it in place
    archive = make_tar(make_mr_folder(tmp_path / "src"), tmp_path / "mr.tar.gz")
    target = download._install_extracted(archive, root, "rt-polaritydata", text._check_mr_folder)
    assert target == root / "rt-polaritydata" and no_leftovers(root)
    assert len(text.load_mr(data_dir=root, download=False)) == 2 * text.MR_LINES


# --------------------------------------------------------------------------- concurrent first runs


class _Held(http.server.SimpleHTTPRequestHandler):
    """Serves files only once the test lets it (``release``), counting the requests."""

    release = threading.Event()
    requests: list[str] = []

    def do_GET(self):
        self.requests.append(self.path)
        self.release.wait(60)
        super().do_GET()

    def log_message(self, *args):
        pass


_CHILD = """
import sys
from pathlib import Path
from course_lib import data, text
kind, url, md5, root, ready = sys.argv[1:]
Path(ready).touch()  # this process is about to fetch
if kind == "mr":
    text.MR_URL = url
    print(len(text.load_mr(data_dir=root)), flush=True)
else:
    data.CIFAR10_URL, data.CIFAR10_MD5 = url, md5
    print(len(data.load_cifar10("train", data_dir=root)), flush=True)
"""


@pytest.mark.parametrize("kind", ["mr", "cifar"])
def test_two_processes_fetch_the_same_dataset_at_once(tmp_path, kind):
    """Both succeed, the archive is downloaded once, and the second says it waits."""
    www = tmp_path / "www"
    www.mkdir()
    if kind == "mr":
        archive = make_tar(make_mr_folder(tmp_path / "src"), www / "rt-polaritydata.tar.gz")
        expected = str(2 * text.MR_LINES)
    else:
        archive = make_tar(
            make_cifar_folder(tmp_path / "src", n=40), www / "cifar-10-python.tar.gz"
        )
        expected = "200"
    handler = type("Held", (_Held,), {"release": threading.Event(), "requests": []})
    root = tmp_path / "shared-data"
    env = {**os.environ, "COURSE_CACHE_DIR": str(tmp_path / "cache")}
    with serve(functools.partial(handler, directory=str(www))) as url:
        readies = [tmp_path / f"ready{i}" for i in range(2)]
        children = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CHILD,
                    kind,
                    url + archive.name,
                    download.md5sum(archive),
                    str(root),
                    str(ready),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for ready in readies
        ]
        deadline = time.monotonic() + 60
        while not all(r.exists() for r in readies) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # both are now past their imports: one downloads, one waits
        handler.release.set()
        results = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err
        assert out.strip().splitlines()[-1] == expected
    assert handler.requests == [f"/{archive.name}"], "the archive was downloaded more than once"
    assert sum("waiting for it to finish" in out for out, _ in results) == 1
    assert no_leftovers(root) and not (root / archive.name).exists()


# --------------------------------------------------------------------------- unwritable folders


def test_data_folder_that_is_a_file(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "datasets.zip"
    not_a_folder.write_bytes(b"PK")
    monkeypatch.setenv("COURSE_DATA_DIR", str(not_a_folder))
    for load in (text.load_mr, data.load_mnist, data.load_cifar10):
        with pytest.raises(DatasetError, match="is a file, not a folder. Set COURSE_DATA_DIR"):
            load()
    assert not_a_folder.read_bytes() == b"PK"


def _make_read_only(folder: Path, monkeypatch) -> None:
    """A folder this process cannot write to (root ignores permission bits: simulate it)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return
    real = download.tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(download.tempfile, "mkstemp", refuse)


def test_read_only_data_folder_with_a_dataset_missing(tmp_path, monkeypatch):
    root = tmp_path / "hub-data"
    make_mr_folder(root)  # present datasets still load from a read-only folder
    _make_read_only(root, monkeypatch)
    try:
        assert len(text.load_mr(data_dir=root)) == 2 * text.MR_LINES
        with pytest.raises(DatasetError) as info:
            data.load_cifar10(data_dir=root)
        message = str(info.value)
        assert f"The data folder {root.resolve()} is not writable" in message
        assert "so CIFAR-10 cannot be downloaded into it. Set COURSE_DATA_DIR" in message
        with pytest.raises(DatasetError, match="not writable.*MNIST cannot be downloaded"):
            data.load_mnist(data_dir=root)
    finally:
        root.chmod(0o755)
    assert sorted(p.name for p in root.iterdir()) == ["rt-polaritydata"]
