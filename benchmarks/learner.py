"""One learner of the workshop rehearsal: log in to the hub, run notebooks on their server.

A learner does what a person in the room does, through the interfaces a browser
uses: logs in through the hub's login form, gets their single-user server started
(through the hub's REST API, as the hub's spawn page does), receives the course's
notebooks (as nbgitpuller would put them in their home folder: here through the
server's contents API), opens a notebook (a session, so a kernel starts) and runs
all its cells in order, as "Run All" does, over the kernel's websocket, stopping at
a notebook's first error; then closes it (its kernel shut down) and opens the next.
A kernel that dies (as one that passes its memory limit does) is reported at once.
Every wait has a time limit.

Times are measured from the moment the learner opens the notebook (kernel start
included): *first output* is when the first output of any cell arrives, *finished*
when the last cell's reply has come.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import websocket
from notebook_usage import code_cells

FOLDER = "weights-course"
OUTPUT_TYPES = {"stream", "display_data", "execute_result", "error", "update_display_data"}
_XSRF_FIELD = re.compile(r'name="_xsrf"\s+value="([^"]+)"')


class LearnerError(RuntimeError):
    """Something the learner did failed (login, server, a request, a time limit)."""


@dataclass
class NotebookRun:
    """One notebook run by one learner."""

    notebook: str
    first_output: float | None = None
    finished: float | None = None
    cells: int = 0
    cells_run: int = 0
    kernel_peak_mb: float | None = None
    kernel_idle_mb: float | None = None
    kernel_cpu_s: float | None = None
    error: str = ""


@dataclass
class LearnerResult:
    """What one learner went through."""

    name: str
    login_s: float | None = None
    server_s: float | None = None
    server_peak_mb: float | None = None
    done_s: float | None = None
    runs: list[NotebookRun] = field(default_factory=list)
    error: str = ""

    @property
    def errors(self) -> list[str]:
        found = [f"{run.notebook}: {run.error}" for run in self.runs if run.error]
        return found + ([self.error] if self.error else [])


def login(hub_url: str, user: str, password: str = "", timeout: float = 60) -> float:
    """Log ``user`` in through the hub's login form; the seconds it took."""
    start = time.monotonic()
    with requests.Session() as browser:
        page = browser.get(f"{hub_url}/hub/login", timeout=timeout)
        match = _XSRF_FIELD.search(page.text)
        if page.status_code != 200 or not match:
            raise LearnerError(f"login page of the hub: HTTP {page.status_code}, no form found")
        reply = browser.post(
            f"{hub_url}/hub/login",
            data={"username": user, "password": password, "_xsrf": match.group(1)},
            allow_redirects=False,
            timeout=timeout,
        )
        if reply.status_code != 302 or not any("login" in c.name for c in browser.cookies):
            raise LearnerError(f"login of {user} refused: HTTP {reply.status_code}")
    return time.monotonic() - start


class Server:
    """A learner's single-user Jupyter server, reached through the hub's proxy."""

    def __init__(self, hub_url: str, user: str, token: str, deadline: float) -> None:
        self.user = user
        self.base = f"{hub_url}/user/{user}/api"
        self.ws_base = self.base.replace("http://", "ws://", 1)
        self.headers = {"Authorization": f"token {token}"}
        self.deadline = deadline

    def left(self, cap: float = 60) -> float:
        """Seconds left before the deadline (at most ``cap``); raise when none are."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise LearnerError("the rehearsal's time limit was reached")
        return min(left, cap)

    def call(self, method: str, path: str, body: dict | None = None):
        reply = requests.request(
            method, self.base + path, json=body, headers=self.headers, timeout=self.left()
        )
        if reply.status_code >= 400:
            raise LearnerError(f"{method} {path}: HTTP {reply.status_code} {reply.text[:300]}")
        return reply.json() if reply.content else None

    def upload(self, notebooks: list[Path]) -> None:
        """Put the notebooks into ``weights-course/`` of the learner's home folder."""
        self.call("PUT", f"/contents/{FOLDER}", {"type": "directory"})
        for path in notebooks:
            content = json.loads(path.read_text(encoding="utf-8"))
            body = {"type": "notebook", "format": "json", "content": content}
            self.call("PUT", f"/contents/{FOLDER}/{path.name}", body)

    def open(self, name: str) -> tuple[str, str]:
        """Open a notebook: a session with a new kernel; ``(session id, kernel id)``."""
        session = self.call(
            "POST",
            "/sessions",
            {
                "path": f"{FOLDER}/{name}",
                "name": name,
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        return session["id"], session["kernel"]["id"]

    def close(self, session_id: str) -> None:
        """Close the notebook and shut its kernel down."""
        self.call("DELETE", f"/sessions/{session_id}")


def decode(raw: str | bytes) -> dict:
    """A kernel message from the websocket (JSON text, or the binary form with buffers)."""
    if isinstance(raw, str):
        return json.loads(raw)
    count = int.from_bytes(raw[:4], "big")
    offsets = [int.from_bytes(raw[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(count)]
    end = offsets[1] if count > 1 else len(raw)
    return json.loads(raw[offsets[0] : end].decode("utf-8"))


def execute_request(code: str, session: str, user: str) -> dict:
    """A kernel ``execute_request`` as the JupyterLab front end sends it."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "session": session,
            "username": user,
            "version": "5.3",
            "date": dt.datetime.now(dt.UTC).isoformat(),
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


class Run:
    """Run all code cells of one notebook over the kernel websocket ("Run All")."""

    def __init__(self, server: Server, path: Path, cell_timeout: float) -> None:
        self.server = server
        self.path = path
        self.cell_timeout = cell_timeout
        self.record = NotebookRun(path.stem)
        self.session = uuid.uuid4().hex
        self.start = 0.0

    def execute(self, ws: websocket.WebSocket, code: str) -> dict:
        """Send one cell and wait for its reply and for the kernel to be idle again."""
        request = execute_request(code, self.session, self.server.user)
        msg_id = request["header"]["msg_id"]
        ws.send(json.dumps(request))
        cell_deadline = time.monotonic() + self.cell_timeout
        reply, idle = None, False
        while reply is None or not idle:
            wait = min(cell_deadline - time.monotonic(), self.server.left(self.cell_timeout))
            if wait <= 0:
                raise LearnerError(f"a cell ran longer than {self.cell_timeout:.0f} s")
            ws.settimeout(wait)
            try:
                msg = decode(ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            kind = msg.get("msg_type") or msg["header"]["msg_type"]
            state = msg.get("content", {}).get("execution_state")
            if kind == "status" and state in {"restarting", "dead"}:
                raise LearnerError(f"the kernel died ({state}), e.g. out of memory")
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if kind in OUTPUT_TYPES and self.record.first_output is None:
                self.record.first_output = time.monotonic() - self.start
            if kind == "status" and state == "idle":
                idle = True
            elif kind == "execute_reply":
                reply = msg["content"]
        return reply

    def cells(self, kernel_id: str) -> None:
        url = f"{self.server.ws_base}/kernels/{kernel_id}/channels?session_id={self.session}"
        header = [f"{k}: {v}" for k, v in self.server.headers.items()]
        ws = websocket.create_connection(url, header=header, timeout=self.server.left())
        try:
            codes = code_cells(self.path)
            self.record.cells = len(codes)
            for index, code in enumerate(codes, 1):
                reply = self.execute(ws, code)
                if reply.get("status") != "ok":
                    name, value = reply.get("ename", reply.get("status")), reply.get("evalue", "")
                    self.record.error = f"code cell {index}: {name}: {value}"[:300]
                    return
                self.record.cells_run = index
            self.record.finished = time.monotonic() - self.start
        finally:
            ws.close()


def run_notebook(
    server: Server, path: Path, *, cell_timeout: float, monitor=None, keep_kernel: bool = False
) -> NotebookRun:
    """Open ``path`` (already uploaded), run all its cells, measure its kernel, close it."""
    run = Run(server, path, cell_timeout)
    run.start = time.monotonic()
    session_id, kernel_id = server.open(path.name)
    try:
        run.cells(kernel_id)
    except (LearnerError, OSError, websocket.WebSocketException) as error:
        run.record.error = str(error) or type(error).__name__
    finally:
        if monitor is not None:
            usage = monitor.refresh("kernel", kernel_id)
            if usage.peak_rss:
                run.record.kernel_peak_mb = usage.peak_rss / 2**20
                run.record.kernel_idle_mb = usage.rss / 2**20
                run.record.kernel_cpu_s = usage.cpu
        if not keep_kernel:
            try:
                server.close(session_id)
            except (LearnerError, OSError) as error:
                run.record.error = run.record.error or f"closing the notebook: {error}"
    return run.record


def learner_session(hub, name: str, notebooks: list[Path], settings: dict) -> LearnerResult:
    """Everything one learner does; errors end up in the result, never raised."""
    result = LearnerResult(name)
    start = time.monotonic()
    deadline, monitor = settings["deadline"], settings.get("monitor")
    try:
        result.login_s = login(hub.url, name)
        left = max(1.0, deadline - time.monotonic())
        result.server_s = hub.start_server(name, timeout=left)
        server = Server(hub.url, name, hub.user_token(name), deadline)
        server.upload(notebooks)
        for path in notebooks:
            record = run_notebook(
                server,
                path,
                cell_timeout=settings["cell_timeout"],
                monitor=monitor,
                keep_kernel=settings.get("keep_kernels", False),
            )
            result.runs.append(record)  # after an error, on to the next notebook
        result.done_s = time.monotonic() - start
    except Exception as error:  # a learner's failure is reported, not raised
        result.error = f"{type(error).__name__}: {error}"[:300]
    if monitor is not None:
        usage = monitor.usage("server", name)
        result.server_peak_mb = usage.peak_rss / 2**20 if usage.peak_rss else None
    return result
