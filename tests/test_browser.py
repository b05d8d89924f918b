"""Every notebook in a real browser: JupyterLab driven by Chromium through Playwright.

nbval proves that the notebooks' code runs; this test proves what a learner sees.
For each notebook it opens JupyterLab in headless Chromium, runs all cells, and
checks that

- every code cell ran (an execution count, no ``[*]``) and none shows an error;
- the slider demos render as real sliders: as many ``.widget-slider`` elements as
  the notebook creates with ``cl.widgets.int_slider`` / ``float_slider`` /
  ``log_slider`` (a widget whose front end is missing shows up as the plain text
  ``interactive(children=...)``, so the sliders are counted, not just looked for);
- moving the first slider (to an end of its range, with the keyboard) redraws its
  figure (the ``<img>`` of that demo changes).

JupyterLab runs from this Python environment on 127.0.0.1 with a random token, in
fast mode, on copies of the notebooks in a temporary folder (the repository's
notebooks stay without outputs), with its own temporary configuration, settings
and workspaces (the user's are neither read nor changed). The browser is Debian's
Chromium (``/usr/bin/chromium``, or ``COURSE_CHROMIUM``); Playwright's own browser
downloads are never used. Without Chromium the test skips, except in CI (``CI``
set), where it fails.

Run it with ``make browser-test`` (part of ``make test``). A failing notebook leaves
a screenshot and the server log in ``test-artifacts/``. With
``COURSE_SCREENSHOT_DIR`` set, the run of ``01_intro_weights`` also saves the
README's screenshot of its sliders there (``make screenshot``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
#: Seconds one notebook may take to run all its cells in the browser (fast mode
#: needs under a minute on two quiet cores; the margin covers a busy machine).
RUN_TIMEOUT = float(os.environ.get("COURSE_BROWSER_TIMEOUT", "300"))
#: The notebook whose sliders the README shows (saved when COURSE_SCREENSHOT_DIR is set).
SCREENSHOT_NOTEBOOK = "01_intro_weights"
SCREENSHOT_NAME = "jupyterlab_sliders.png"

SLIDER_CALL = re.compile(r"\bcl\.widgets\.(?:int_slider|float_slider|log_slider)\s*\(")
ANNOUNCEMENTS = "@jupyterlab/apputils-extension:announcements"


def expected_sliders(path: Path) -> int:
    """How many sliders the notebook's code creates for its ``cl.widgets.interact`` demos."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return sum(
        len(SLIDER_CALL.findall("".join(cell["source"])))
        for cell in cells
        if cell["cell_type"] == "code"
    )


def _unavailable(message: str):
    """Skip on a developer's machine, fail in CI (which installs Chromium)."""
    if os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}:
        pytest.fail(message)
    pytest.skip(message)


# --------------------------------------------------------------------------- JupyterLab


@dataclass
class Lab:
    base_url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen
    times: dict[str, dict[str, float]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def api(self, method: str, path: str):
        request = urllib.request.Request(
            self.url(path), method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session (and its kernel) so the next notebook has the CPU to itself."""
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        except (OSError, urllib.error.URLError):
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory, browser, request):
    """JupyterLab from this environment, in fast mode, on copies of the notebooks."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "notebooks"
    root.mkdir()
    for path in NOTEBOOKS:
        shutil.copy2(path, root / path.name)

    # A private configuration: no news pop-up, every cell kept in the page (no
    # virtual scrolling, so all sliders can be counted), fresh settings and workspaces.
    config = tmp / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {ANNOUNCEMENTS: True}}), encoding="utf-8"
    )
    settings = tmp / "settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}), encoding="utf-8")

    env = dict(os.environ)
    # The kernels draw inline as in a learner's JupyterLab (the test process's headless
    # MPLBACKEND would turn every figure into text), and see only this environment's kernels.
    for name in ("MPLBACKEND", "JUPYTER_PATH"):
        env.pop(name, None)
    env.update(
        COURSE_FAST="1",
        COURSE_CACHE_DIR=str(tmp / "cache"),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
        IPYTHONDIR=str(tmp / "ipython"),
    )
    env.setdefault("OMP_NUM_THREADS", "1")

    port, token = _free_port(), secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}"
                )
            try:
                server.api("GET", "/api/status")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 120 s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        process.terminate()  # SIGTERM: the server shuts its kernels down and exits
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _report_times(request.config, server.times)


def _report_times(config, times: dict[str, dict[str, float]]) -> None:
    """Print each notebook's times past pytest's output capture."""
    if not times:
        return
    lines = ["", "notebook times in the browser (s): open, run all cells, slider, total"]
    for name, t in times.items():
        lines.append(
            f"  {name:<28} {t.get('open', 0):6.1f} {t.get('run', 0):7.1f} "
            f"{t.get('slider', 0):6.1f} {t.get('total', 0):7.1f}"
        )
    lines.append(
        f"  {'all':<28} {'':6} {'':7} {'':6} {sum(t['total'] for t in times.values()):7.1f}"
    )
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)


# --------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright (never a downloaded browser)."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(
            f"Chromium not found at {CHROMIUM}: install it "
            "(Debian/Ubuntu: apt-get install chromium) or set COURSE_CHROMIUM"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing: make test installs it (.[dev])")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as error:
        playwright.stop()
        pytest.fail(f"Chromium at {CHROMIUM} did not start: {error}")
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    try:
        yield context
    finally:
        context.close()
        chromium.close()
        playwright.stop()


# --------------------------------------------------------------------------- the test

# JavaScript run in the page, against the JupyterLab application object.
_NOTEBOOK_OPEN = """name => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    return !!(w && w.context && w.context.path === name && w.sessionContext && w.content);
}"""
_RUN_ALL = """async () => {
    const w = window.jupyterapp.shell.currentWidget;
    await w.context.ready;
    await w.sessionContext.ready;
    window.__courseRun = {done: false, result: null};
    window.jupyterapp.commands.execute('notebook:run-all-cells').then(
        r => { window.__courseRun = {done: true, result: String(r)}; },
        e => { window.__courseRun = {done: true, result: 'failed: ' + e}; });
}"""
_STATE = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const cells = w.content.model.cells;
    const errors = [], pending = [];
    for (let i = 0; i < cells.length; i++) {
        const cell = cells.get(i);
        if (cell.type !== 'code') continue;
        if (cell.executionCount === null || cell.executionCount === undefined) pending.push(i);
        for (let j = 0; j < cell.outputs.length; j++) {
            const out = cell.outputs.get(j);
            if (out.type === 'error') {
                const raw = out.toJSON();
                errors.push(`cell ${i}: ${raw.ename}: ${raw.evalue}`);
            }
        }
    }
    const busyPrompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
        .filter(p => p.textContent.includes('*')).length;
    return {run: window.__courseRun, kernel: w.sessionContext.kernelDisplayStatus,
            errors, pending, busyPrompts};
}"""
_FINISHED = f"""() => {{
    const s = ({_STATE})();
    return s.errors.length > 0 || (s.run && s.run.done && s.kernel === 'idle'
        && s.pending.length === 0 && s.busyPrompts === 0) || (s.run && s.run.done
        && s.run.result !== 'true');
}}"""
_DOM_PROBLEMS = """() => {
    const problems = [];
    for (const el of document.querySelectorAll('.jp-OutputArea-output')) {
        const text = el.textContent || '';
        if (text.includes('Traceback (most recent call last)'))
            problems.push('traceback: ' + text.slice(0, 400));
        if (text.includes('Error displaying widget'))
            problems.push('widget error: ' + text.slice(0, 200));
        if (el.dataset.mimeType === 'text/plain' && text.startsWith('interactive(children='))
            problems.push('a slider demo shows as text (widget front end missing)');
    }
    return problems;
}"""
_IMAGE_CHANGED = """([el, before]) => {
    const img = el.querySelector('.widget-output img');
    return !!img && img.getAttribute('src') !== before;
}"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_browser(path, browser, lab):
    sliders = expected_sliders(path)
    assert sliders > 0, (
        f"{path.name}: no cl.widgets.int_slider/float_slider/log_slider call found "
        "(every notebook has a slider demo)"
    )
    page = browser.new_page()
    times: dict[str, float] = {}
    start = time.monotonic()
    try:
        # Open the notebook in a fresh workspace of its own (nothing else restored).
        page.goto(lab.url(f"/lab/workspaces/{path.stem}/tree/{path.name}?token={lab.token}"))
        page.wait_for_function(_NOTEBOOK_OPEN, arg=path.name, timeout=120_000)
        times["open"] = time.monotonic() - start

        # Run all cells; stop waiting at the first error.
        page.evaluate(_RUN_ALL)
        try:
            page.wait_for_function(_FINISHED, timeout=RUN_TIMEOUT * 1000, polling=500)
        except Exception as error:
            state = page.evaluate(_STATE)
            raise AssertionError(
                f"{path.name}: running all cells took over {RUN_TIMEOUT:.0f} s "
                f"(kernel {state['kernel']}, code cells not run yet: {state['pending']})"
            ) from error
        state = page.evaluate(_STATE)
        times["run"] = time.monotonic() - start - times["open"]
        assert not state["errors"], f"{path.name}: cells raised errors: {state['errors']}"
        assert state["run"]["result"] == "true", f"{path.name}: run all cells: {state['run']}"
        assert not state["pending"], f"{path.name}: cells without execution count: {state}"

        # The sliders render (give the widget views a moment to appear), nothing shows an error.
        try:
            page.wait_for_function(
                "n => document.querySelectorAll('.widget-slider').length >= n",
                arg=sliders,
                timeout=30_000,
            )
        except Exception:
            pass
        problems = page.evaluate(_DOM_PROBLEMS)
        assert not problems, f"{path.name}: {problems}"
        rendered = page.locator(".widget-slider").count()
        assert rendered == sliders, (
            f"{path.name}: {rendered} sliders rendered, the code creates {sliders}"
        )

        demo = page.locator(".widget-interact", has=page.locator(".widget-slider")).first
        demo.scroll_into_view_if_needed()
        if _wants_screenshot(path):
            _save_readme_screenshot(page, demo)

        # Move the first slider to the end of its range with the keyboard (one step may
        # leave a figure unchanged, e.g. where it snaps to measured points); the demo's
        # figure must be redrawn.
        t0 = time.monotonic()
        image = demo.locator(".widget-output img").first
        image.wait_for(state="attached", timeout=30_000)
        before = image.get_attribute("src")
        handle = demo.locator(".widget-slider .noUi-handle").first
        now, top = (float(handle.get_attribute(a)) for a in ("aria-valuenow", "aria-valuemax"))
        handle.focus()
        page.keyboard.press("Home" if now >= top else "End")
        try:
            page.wait_for_function(
                _IMAGE_CHANGED, arg=[demo.element_handle(), before], timeout=120_000
            )
        except Exception as error:
            output = demo.locator(".widget-output").inner_text()
            raise AssertionError(
                f"{path.name}: moving the first slider did not redraw its figure "
                f"(slider value {handle.get_attribute('aria-valuenow')}); output: {output[:500]}"
            ) from error
        times["slider"] = time.monotonic() - t0
        problems = page.evaluate(_DOM_PROBLEMS)
        assert not problems, f"{path.name} after moving a slider: {problems}"
        times["total"] = time.monotonic() - start
        lab.times[path.stem] = times
    except BaseException:
        _save_failure(page, lab, path)
        raise
    finally:
        page.close()
        lab.shut_down_kernels()


def _save_failure(page, lab: Lab, path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(ARTIFACTS / f"browser-{path.stem}.png"))
    except Exception:
        pass
    try:
        shutil.copy(lab.log, ARTIFACTS / "browser-server.log")
    except OSError:
        pass


def _wants_screenshot(path: Path) -> bool:
    return bool(os.environ.get("COURSE_SCREENSHOT_DIR")) and path.stem == SCREENSHOT_NOTEBOOK


def _save_readme_screenshot(page, demo) -> None:
    """The slider demo with its code cell at the top of the viewport, side panel closed."""
    folder = Path(os.environ["COURSE_SCREENSHOT_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate(
        """() => { const shell = window.jupyterapp.shell;
                   if (!shell.leftCollapsed) shell.collapseLeft();
                   if (!shell.rightCollapsed) shell.collapseRight(); }"""
    )
    demo.locator("img").first.wait_for(state="visible")
    demo.evaluate("el => el.closest('.jp-Cell').scrollIntoView({block: 'start'})")
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)
    target = folder / SCREENSHOT_NAME
    page.screenshot(path=str(target))
    try:  # a palette PNG is a fraction of the size and looks the same for a UI
        from PIL import Image

        with Image.open(target) as image:
            image.convert("RGB").quantize(colors=256).save(target, optimize=True)
    except ImportError:
        pass
