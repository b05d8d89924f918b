"""A real JupyterHub on 127.0.0.1 for the workshop rehearsal, and its admin REST API.

:class:`LocalHub` starts JupyterHub (from this Python environment) with
configurable-http-proxy (from ``benchmarks/hub/node_modules``, installed by
``npm ci``), the dummy authenticator and the simple local-process spawner: every
learner's single-user server runs as the current user, with its own home folder
in a temporary directory. Hub, proxy and servers listen on free loopback ports
only. Everything it starts is stopped by :meth:`LocalHub.stop` (also on an
error or Ctrl-C, when used as a context manager): the hub is asked to stop its
servers and proxy, and whatever still runs after that is killed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
PROXY_DIR = REPO / "benchmarks" / "hub"
LOOPBACK = "127.0.0.1"
SERVICE = "rehearsal"


class HubError(RuntimeError):
    """The hub, the proxy or a learner's server could not be started or reached."""


def jupyterhub_command() -> str | None:
    """The ``jupyterhub`` executable beside this Python, if JupyterHub is installed."""
    found = Path(sys.executable).parent / "jupyterhub"
    return str(found) if found.is_file() else shutil.which("jupyterhub")


def proxy_command() -> str | None:
    """configurable-http-proxy: the project's npm install (``make rehearsal``), else PATH."""
    local = PROXY_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
    return str(local) if local.is_file() else shutil.which("configurable-http-proxy")


def missing_tools() -> list[str]:
    """What the rehearsal needs and this machine lacks, with how to install it."""
    missing = []
    if jupyterhub_command() is None:
        missing.append("jupyterhub (pip install jupyterhub into the course environment)")
    if proxy_command() is None:
        missing.append(f"configurable-http-proxy (npm ci --prefix {PROXY_DIR.relative_to(REPO)})")
    if shutil.which("node") is None:
        missing.append("node (Node.js 20 or newer, for configurable-http-proxy)")
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


_CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.ip = {ip!r}
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = {ip!r}
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_file!r}
c.JupyterHub.pid_file = {hub_pid_file!r}
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.api_url = "http://{ip}:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid_file!r}
c.ConfigurableHTTPProxy.should_start = True
c.JupyterHub.services = [{{"name": {service!r}, "api_token": {token!r}}}]
c.JupyterHub.load_roles = [
    {{
        "name": "rehearsal-driver",
        "scopes": ["admin:users", "admin:servers", "tokens", "read:users"],
        "services": [{service!r}],
    }}
]
c.SimpleLocalProcessSpawner.home_dir_template = {home_template!r}
c.Spawner.ip = {ip!r}
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {start_timeout}
c.Spawner.environment = {environment!r}
"""


class LocalHub:
    """JupyterHub on free loopback ports in a temporary folder (a context manager).

    ``environment``: the variables of every learner's server and kernels (the
    course's per-user settings). ``server_config``: a Jupyter server configuration
    file every learner's server loads (as the deployment kit's image does).
    """

    def __init__(
        self,
        environment: dict[str, str],
        *,
        server_config: Path | None = None,
        start_timeout: float = 300,
    ) -> None:
        missing = missing_tools()
        if missing:
            raise HubError("the rehearsal needs " + "; ".join(missing))
        self.environment = environment
        self.server_config = server_config
        self.start_timeout = start_timeout
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.folder: Path | None = None
        #: Every process of the hub seen so far (checked against pid reuse before a kill).
        self.seen: list[psutil.Process] = []

    def __enter__(self) -> LocalHub:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _config(self) -> str:
        tmp = self.folder
        singleuser = str(Path(jupyterhub_command()).parent / "jupyterhub-singleuser")
        args = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        path = os.pathsep.join(
            [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
        )
        environment = {"PATH": path, **self.environment}
        if self.server_config is not None:
            folder = tmp / "etc-jupyter" / "jupyter_server_config.d"
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.server_config, folder / self.server_config.name)
            environment["JUPYTER_CONFIG_PATH"] = str(folder.parent)
        return _CONFIG.format(
            ip=LOOPBACK,
            port=self.port,
            hub_port=free_port(),
            proxy_api_port=free_port(),
            db_url=f"sqlite:///{tmp / 'jupyterhub.sqlite'}",
            cookie_file=str(tmp / "jupyterhub_cookie_secret"),
            hub_pid_file=str(tmp / "jupyterhub.pid"),
            proxy_pid_file=str(tmp / "proxy.pid"),
            proxy=proxy_command(),
            service=SERVICE,
            token=self.token,
            home_template=str(tmp / "home" / "{username}"),
            singleuser=singleuser,
            args=args,
            start_timeout=int(self.start_timeout),
            environment=environment,
        )

    def start(self, timeout: float = 120) -> None:
        """Start the hub and wait until its REST API answers."""
        self._tmp = tempfile.TemporaryDirectory(prefix="course-hub-")
        self.folder = Path(self._tmp.name)
        (self.folder / "home").mkdir()
        config = self.folder / "jupyterhub_config.py"
        config.write_text(self._config())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "JPY_"))}
        self.log_path = self.folder / "jupyterhub.log"
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [jupyterhub_command(), "-f", str(config)],
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_stop_with_parent,
            )
        self.seen.append(psutil.Process(self.process.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HubError(f"JupyterHub exited at start:\n{self.log_tail()}")
            try:
                self.api("GET", "/hub/api/")
                return
            except (HubError, OSError):
                time.sleep(0.5)
        raise HubError(f"JupyterHub did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, AttributeError):
            return "(no hub log)"

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30):
        """Call the hub's REST API as the rehearsal's admin service; the decoded JSON."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read().decode() or "null"
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            raise HubError(f"{method} {path}: HTTP {error.code} {detail}") from None
        except urllib.error.URLError as error:
            raise HubError(f"{method} {path}: {error.reason}") from None
        return json.loads(text)

    def start_server(self, user: str, timeout: float) -> float:
        """Start ``user``'s server and wait until it is ready; the seconds it took."""
        start = time.monotonic()
        self.api("POST", f"/hub/api/users/{user}/server", {})
        deadline = start + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/hub/api/users/{user}")
            server = (model.get("servers") or {}).get("")
            if server and server.get("ready"):
                return time.monotonic() - start
            if not model.get("pending") and not server:
                raise HubError(f"the server of {user} stopped while starting:\n{self.log_tail()}")
            time.sleep(0.5)
        raise HubError(f"the server of {user} was not ready within {timeout:.0f} s")

    def user_token(self, user: str) -> str:
        """An API token of ``user`` (what their browser's session would carry)."""
        reply = self.api(
            "POST", f"/hub/api/users/{user}/tokens", {"note": "rehearsal", "expires_in": 7200}
        )
        return reply["token"]

    def stop(self, timeout: float = 30) -> None:
        """Stop the hub (it stops the servers and the proxy), then kill whatever is left."""
        if self.process is not None:
            self.seen += _descendants(self.process.pid)
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        kill_all(self.seen)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _stop_with_parent() -> None:
    """In the hub's process before it starts (Linux): SIGTERM when the driver dies.

    Even a driver killed outright (SIGKILL) then leaves no hub behind: the hub
    stops its servers and proxy on SIGTERM.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_all(processes, grace: float = 5) -> list[int]:
    """Terminate those of ``processes`` (psutil handles) that still run; their pids.

    A handle whose pid now belongs to another process (pid reuse) is left alone.
    """
    procs = []
    for proc in processes:
        try:
            if (
                proc.is_running()
                and proc.status() != psutil.STATUS_ZOMBIE
                and proc.pid != os.getpid()
            ):
                procs.append(proc)
        except psutil.Error:
            continue
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace)
    return [p.pid for p in procs]
