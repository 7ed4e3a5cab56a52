"""Drive ComfyUI's real frontend in headless Chromium (Debian's /usr/bin/chromium) with Playwright.

    from kling_devtools.browser import BrowserSession
    with BrowserSession() as b:
        page = b.open_comfy(host.url)          # ready: window.app, app.graph, LiteGraph exist
        assert "LoadImage" in page.registered_node_types()
        page.screenshot("smoke")               # -> artifacts/screenshots/smoke.png
        assert not page.unexpected_errors()

Never runs ``playwright install``; the browser is the system one (``KLING_CHROMIUM`` overrides).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import REPO_ROOT
from ..http import http_request

SCREENSHOT_DIR = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("KLING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
DIALOG_SELECTOR = "[role=dialog][aria-modal=true]:visible"
CLOSE_BUTTON_SELECTOR = ("[role=dialog][aria-modal=true]:visible button:has(i.pi-times), "
                         "[role=dialog][aria-modal=true]:visible button:has(i[class*='lucide--x']), "
                         "[role=dialog][aria-modal=true]:visible .p-dialog-close-button")
READY_JS = "() => !!(window.app && window.app.graph && window.LiteGraph)"
SETUP_HINT = "run scripts/setup_host.sh --browser (installs Debian's chromium; playwright comes from requirements-dev.txt)"

# Console noise a bare ComfyUI 0.3.75 page produces on a closed network (see comfyui-host.md).
KNOWN_NOISE = [
    re.compile(r"user\.css"),
    re.compile(r"userdata"),
    re.compile(r"api\.comfy\.org"),
    re.compile(r"dbus", re.I),
    re.compile(r"Failed to load resource: the server responded with a status of 404"),
    re.compile(r"Failed to load resource: net::ERR_(NAME_NOT_RESOLVED|INTERNET_DISCONNECTED|CONNECTION_REFUSED)"),
    # Frontend 1.32.9 sets an undeclared setting while GraphView loads (settingStore onChange(undefined)):
    # on every page load, bare ComfyUI included.
    re.compile(r"TypeError: Cannot read properties of undefined \(reading 'id'\)\s+at onChange "),
]
# A newer frontend (kling_devtools.host.newest_frontend()) against ComfyUI 0.3.75, exact patterns only:
NEWER_FRONTEND_NOISE = [
    # it lists the queue and history through GET /api/jobs, which 0.3.75 does not have (404)
    re.compile(r"^\[Jobs API\] Error fetching jobs: JobsApiError: Failed to fetch jobs: 404\n"),
    re.compile(r"^Failed to fetch queue: JobsApiError: Failed to fetch jobs: 404\n"),
]
# Frontend bugs outside the pack, by the frontend version that has them (window.__COMFYUI_FRONTEND_VERSION__):
# each excused once per page load, and only if logged before the app was ready.
FRONTEND_LOAD_BUGS = {
    # 1.45.20 (pinned by ComfyUI 0.27.0): src/stores/appModeStore.ts reads app.rootGraph while GraphView
    # mounts, before app.setup() creates the graph; a ComfyUI with no custom nodes logs it too, once per
    # load (1.58.1 checks app.isGraphReady first).
    "1.45.20": [re.compile(r"^ComfyApp graph accessed before initialization "
                           r"\(http://127\.0\.0\.1:\d+/assets/dialogService-[\w-]+\.js\)$")],
}


class BrowserNotInstalled(RuntimeError):
    """Playwright or Chromium is missing; the message says how to install them."""


def safe_name(name: str) -> str:
    """``name`` as a file name (screenshots are named after tests and setups)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "shot"


def screenshot(page, name: str, *, full_page: bool = False, directory: Path | None = None) -> Path:
    """Save a PNG of a Playwright page as ``artifacts/screenshots/<name>.png`` (git-ignored)."""
    out_dir = Path(directory or SCREENSHOT_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{safe_name(name)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


class ComfyPage:
    """A Playwright page on a ComfyUI server, with console capture and a few ComfyUI helpers."""

    def __init__(self, context, url: str):
        self.context = context
        self.url = url.rstrip("/")
        self.page = context.new_page()
        self.canvas = "litegraph"
        self.setup = None  # the conftest UiSetup, when opened through open_ui
        self.console: list[dict[str, Any]] = []     # every console message: {type, text, url}
        self.page_errors: list[str] = []            # uncaught exceptions in the page
        self.frontend_version = ""                  # window.__COMFYUI_FRONTEND_VERSION__, once ready
        self.console_at_ready = 0                   # how many console messages came before the app was ready
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    def _on_console(self, msg) -> None:
        loc = msg.location or {}
        self.console.append({"type": msg.type, "text": msg.text, "url": loc.get("url", "")})

    # -- loading ---------------------------------------------------------------------------
    def open(self, timeout: float = 60.0, canvas: str = "litegraph") -> "ComfyPage":
        self.page.goto(self.url + "/", wait_until="domcontentloaded", timeout=timeout * 1000)
        self.wait_ready(timeout)
        self.console_at_ready = len(self.console)
        self.frontend_version = self.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ || ''")
        self.dismiss_dialogs()
        if canvas == "vue":  # what "Try it out" does; 1.32.9 ignores the stored value at page load
            self.evaluate("async () => await window.app.extensionManager.setting.set('Comfy.VueNodes.Enabled', true)")
            self.page.wait_for_timeout(300)
            # 1.32.9 then offers "Prefer the legacy design? Switch back" in a toast over the canvas: close it
            close = self.page.locator(".p-toast .p-toast-close-button, .p-toast button:has(i.pi-times)")
            if close.count():
                close.first.click()
                self.page.wait_for_timeout(200)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.page.wait_for_function(READY_JS, timeout=timeout * 1000)

    def dismiss_dialogs(self, appear_timeout: float = 1.5) -> int:
        """Close modal dialogs (the first-run Templates dialog opens ~1.5 s after the app is ready).

        Waits up to ``appear_timeout`` s for one to appear. In frontend 1.32.9 Escape does NOT close
        the Templates dialog (headless or not), so after Escape this clicks the dialog's close
        button (``pi-times`` / ``lucide--x`` icon), then the mask. Returns how many it closed."""
        dialog = self.page.locator(DIALOG_SELECTOR)
        try:
            dialog.first.wait_for(state="visible", timeout=appear_timeout * 1000)
        except Exception:  # noqa: BLE001 - playwright TimeoutError: nothing to close
            return 0
        closed = 0
        for _ in range(5):
            if not dialog.count():
                break
            self.page.keyboard.press("Escape")
            if self._gone(dialog):
                closed += 1
                continue
            close_btn = self.page.locator(CLOSE_BUTTON_SELECTOR)
            if close_btn.count():
                close_btn.first.click()
            else:
                self.page.mouse.click(3, 3)  # outside the dialog, on its mask
            if self._gone(dialog):
                closed += 1
        self.page.mouse.move(self.page.viewport_size["width"] // 2, self.page.viewport_size["height"] // 2)
        return closed  # ^ park the pointer on the canvas so no tooltip shows in screenshots

    def _gone(self, dialog, timeout: float = 1.5) -> bool:
        deadline = time.monotonic() + timeout
        before = dialog.count()
        while time.monotonic() < deadline:
            if dialog.count() < before:
                return True
            time.sleep(0.1)
        return False

    # -- inspection ------------------------------------------------------------------------
    def evaluate(self, js: str, arg: Any = None) -> Any:
        return self.page.evaluate(js, arg)

    def registered_node_types(self) -> list[str]:
        return self.evaluate("() => Object.keys(window.LiteGraph.registered_node_types)")

    def add_node(self, node_type: str, pos: tuple[float, float] = (100, 100)) -> int:
        """Create a node through LiteGraph, add it to the graph; returns its id."""
        return self.evaluate("""([type, pos]) => {
            const node = window.LiteGraph.createNode(type);
            if (!node) throw new Error('unknown node type ' + type);
            node.pos = pos;
            window.app.graph.add(node);
            window.app.graph.setDirtyCanvas(true, true);
            return node.id;
        }""", [node_type, list(pos)])

    def extensions(self) -> list[str]:
        return self.evaluate("() => (window.app.extensions || []).map(e => e.name)")

    def graph_to_prompt(self) -> dict:
        """``app.graphToPrompt()``: ``{"workflow": ..., "output": <API-format prompt>}``."""
        return self.evaluate("async () => await window.app.graphToPrompt()")

    def errors(self) -> list[str]:
        return [m["text"] + (f" ({m['url']})" if m["url"] else "") for m in self.console
                if m["type"] == "error"] + self.page_errors

    def unexpected_errors(self, extra_noise: list[str] = ()) -> list[str]:
        """Console errors and page exceptions, minus KNOWN_NOISE and ``extra_noise`` regexes."""
        noise = KNOWN_NOISE + NEWER_FRONTEND_NOISE + [re.compile(p) for p in extra_noise]
        errors = self.errors()
        loading = [m["text"] + (f" ({m['url']})" if m["url"] else "")
                   for m in self.console[:self.console_at_ready] if m["type"] == "error"]
        for bug in FRONTEND_LOAD_BUGS.get(self.frontend_version, ()):
            hit = next((e for e in loading if bug.search(e)), None)
            if hit is not None:
                errors.remove(hit)  # the first only: a second one would not be the frontend's own
        return [e for e in errors if not any(n.search(e) for n in noise)]

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        return screenshot(self.page, name, full_page=full_page)

    def close(self) -> None:
        """Close the page and its context (idempotent)."""
        for close in (self.page.close, self.context.close):
            try:
                close()
            except Exception:  # noqa: BLE001 - the browser may already be gone
                pass


class BrowserSession:
    """Playwright + headless system Chromium. Each ``open_comfy`` gets its own fresh browser context
    (no shared storage, so every page load is a first run); the profile is a temp dir removed on close."""

    def __init__(self, *, headless: bool = True, executable_path: str | None = None,
                 viewport: tuple[int, int] = (1400, 900), extra_args: list[str] = ()):
        self.headless = headless
        self.executable_path = executable_path or CHROMIUM
        self.viewport = {"width": viewport[0], "height": viewport[1]}
        self.args = CHROMIUM_ARGS + list(extra_args)
        self._pw = None
        self.browser = None
        self._profile: str | None = None
        self._pages: list[ComfyPage] = []

    def start(self) -> "BrowserSession":
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as e:
            raise BrowserNotInstalled(f"the playwright package is missing ({e}): {SETUP_HINT}") from e
        if not (os.path.isfile(self.executable_path) and os.access(self.executable_path, os.X_OK)):
            raise BrowserNotInstalled(f"no Chromium at {self.executable_path}: {SETUP_HINT}")
        self._profile = tempfile.mkdtemp(prefix="kling-chromium-")
        self._pw = sync_playwright().start()
        try:
            # launch() gives Chromium a fresh temp --user-data-dir of its own (removed on close); HOME
            # points at our temp dir so nothing lands in ~/.config/chromium or ~/.pki either.
            self.browser = self._pw.chromium.launch(
                executable_path=self.executable_path, headless=self.headless, args=self.args,
                env={**os.environ, "HOME": self._profile},
            )
        except BaseException:
            self.close()
            raise
        return self

    def new_context(self):
        return self.browser.new_context(viewport=self.viewport, service_workers="block")

    def open_comfy(self, url: str, timeout: float = 60.0, *, canvas: str = "litegraph") -> ComfyPage:
        """Open ComfyUI at ``url`` in a fresh context, wait until ready, dismiss the Templates dialog.

        ``canvas``: "litegraph" or "vue" (Nodes 2.0). It is a stored user setting: it is stored off on the
        server before the page loads (POST /settings/<id>) and, for "vue", switched on in the page as a
        user does; the first-run tutorial is marked done the same way."""
        for key, value in (("Comfy.VueNodes.Enabled", False), ("Comfy.TutorialCompleted", True)):
            http_request("POST", f"{url.rstrip('/')}/settings/{key}", json_body=value)
        page = ComfyPage(self.new_context(), url)
        page.canvas = canvas
        self._pages.append(page)
        return page.open(timeout, canvas)

    def close(self) -> None:
        for p in self._pages:
            p.close()
        self._pages.clear()
        if self.browser is not None:
            try:
                self.browser.close()
            except Exception:  # noqa: BLE001
                pass
            self.browser = None
        if self._pw is not None:
            self._pw.stop()
            self._pw = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def __enter__(self) -> "BrowserSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
