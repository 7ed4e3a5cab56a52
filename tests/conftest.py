"""Shared fixtures: a real ComfyUI host with this pack, the Kling API emulator, a real browser.

Markers (applied automatically from the fixtures a test uses, or by hand):
  host     needs the real ComfyUI install (scripts/setup_host.sh); deselect with -m "not host".
  browser  also needs Chromium + Playwright (scripts/setup_host.sh --browser); -m "not browser".
A test that needs the host FAILS (it does not skip) when the host is not installed.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import pytest

from kling_devtools import browser as _br
from kling_devtools import host as _ch
from kling_devtools.browser import kling_frontend as kf
from kling_devtools.sample_images import write_sample_images

EMULATOR_API_KEY = "emulator-test-key"
# Tiny videos keep ComfyUI's decode cheap; reset() returns to these flags. A test that needs
# full-size output can emulator_process.set_config(max_height=None).
EMULATOR_ARGS = ["--max-height", "128"]

HOST_FIXTURES = {"comfy_host", "comfy_install", "ui_host"}
BROWSER_FIXTURES = {"browser_session", "comfy_page", "ui_setup", "open_ui"}


class UiSetup(NamedTuple):
    """One of the four setups every browser test runs in: a frontend version x a canvas."""

    frontend: str  # version of comfyui-frontend-package
    canvas: str    # "litegraph" or "vue" (Nodes 2.0, setting Comfy.VueNodes.Enabled)
    pinned: bool   # the frontend the host's ComfyUI pins (installed in the venv), else an unzipped newer one

    @property
    def id(self) -> str:
        return f"fe{self.frontend}-{self.canvas}"

    @property
    def vue(self) -> bool:
        return self.canvas == "vue"

    @property
    def static_vue_widgets(self) -> bool:
        """Nodes 2.0 of frontend 1.32.9 and earlier draw a node's widget list once, when the node is added:
        no extension can hide or show a widget there afterwards (the node falls back to its warning + fix)."""
        return self.vue and tuple(int(p) for p in re.findall(r"\d+", self.frontend)[:3]) <= (1, 32, 9)

    def front_end_root(self):
        return None if self.pinned else _ch.frontend_root(self.frontend)


def _pinned_frontend() -> str:
    try:
        return _ch.pinned_frontend(_ch.find_comfyui().comfyui_dir) or "pinned"
    except _ch.HostNotInstalled:
        return "pinned"  # the host fixtures fail with the setup hint


UI_SETUPS = [UiSetup(version, canvas, pinned)
             for version, pinned in ((_pinned_frontend(), True), (_ch.newest_frontend(), False))
             for canvas in ("litegraph", "vue")]
#: For a test of the LiteGraph canvas only (``@pytest.mark.parametrize("ui_setup", LITEGRAPH_SETUPS,
#: indirect=True, ids=...)``): Nodes 2.0 lays nodes out with CSS, so a canvas-size behaviour has no
#: counterpart there to test.
LITEGRAPH_SETUPS = [setup for setup in UI_SETUPS if not setup.vue]


def pytest_configure(config):
    config.addinivalue_line("markers", "host: needs a real ComfyUI host (install with scripts/setup_host.sh)")
    config.addinivalue_line("markers", "browser: needs the host and Chromium/Playwright "
                                       "(install with scripts/setup_host.sh --browser)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & BROWSER_FIXTURES and not item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.browser)
        if names & (HOST_FIXTURES | BROWSER_FIXTURES) and not item.get_closest_marker("host"):
            item.add_marker(pytest.mark.host)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tails of the ComfyUI and emulator logs to the report."""
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    host = funcargs.get("comfy_host")
    if isinstance(host, _ch.ComfyHost):
        rep.sections.append((f"ComfyUI log tail ({host.log_path})", host.log_tail(60)))
    emu = funcargs.get("emulator_process")
    if isinstance(emu, _ch.EmulatorProcess):
        rep.sections.append((f"emulator log tail ({emu.log_path})", emu.log_tail(40)))


@pytest.fixture(scope="session")
def comfy_install() -> _ch.ComfyInstall:
    """``(comfyui_dir, python)``; fails (not skips) with the setup hint when the host is missing."""
    problem = None
    try:
        return _ch.find_comfyui()
    except _ch.HostNotInstalled as e:
        problem = str(e)
    if problem:  # failed outside the except block: no chained traceback
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def emulator_process():
    """The Kling API emulator (``python -m kling_api.emulator``), once per session."""
    emu = _ch.EmulatorProcess(api_key=EMULATOR_API_KEY, extra_args=EMULATOR_ARGS)
    problem = None
    try:
        emu.start()
    except _ch.HostError as e:
        problem = f"the Kling API emulator did not start: {e}"
    if problem:
        pytest.fail(problem, pytrace=False)
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def comfy_host(request, comfy_install):
    """One ComfyUI per session with this pack linked as custom_nodes/comfyui-kling and
    KLING_API_BASE / KLING_API_KEY pointing at the emulator."""
    emu = request.getfixturevalue("emulator_process")
    env = {"KLING_API_BASE": emu.url, "KLING_API_KEY": emu.api_key}
    host = _ch.ComfyHost(env=env, install=comfy_install)
    problem = None
    try:
        host.start()
    except _ch.HostError as e:
        problem = str(e)
    if problem:
        pytest.fail(problem, pytrace=False)
    yield host
    host.stop()


@pytest.fixture(scope="session")
def browser_session():
    """Headless system Chromium via Playwright, once per session."""
    session = _br.BrowserSession()
    problem = None
    try:
        session.start()
    except _br.BrowserNotInstalled as e:
        problem = str(e)
    if problem:
        pytest.fail(problem, pytrace=False)
    yield session
    session.close()


@pytest.fixture(scope="session", params=UI_SETUPS, ids=[s.id for s in UI_SETUPS])
def ui_setup(request) -> UiSetup:
    """The setup a browser test runs in (every browser test runs in all four)."""
    return request.param


@pytest.fixture(scope="session")
def frontend_hosts(comfy_host):
    """Session hosts per frontend version: the pinned one is ``comfy_host``; a newer frontend gets its own
    ComfyUI (same environment) serving it with --front-end-root. Started on first use."""
    hosts: dict[str, _ch.ComfyHost] = {}

    def host_for(setup: UiSetup) -> _ch.ComfyHost:
        if setup.pinned:
            return comfy_host
        if setup.frontend not in hosts:
            host = _ch.ComfyHost(env=comfy_host.extra_env, install=comfy_host.install,
                                 front_end_root=setup.front_end_root())
            hosts[setup.frontend] = host
            host.start()
        return hosts[setup.frontend]

    yield host_for
    for host in hosts.values():
        host.stop()


@pytest.fixture(scope="session")
def ui_host(ui_setup, frontend_hosts):
    """The ComfyUI serving this setup's frontend (the emulator as Kling)."""
    problem = None
    try:
        return frontend_hosts(ui_setup)
    except _ch.HostError as e:  # HostNotInstalled too
        problem = str(e)
    if problem:
        pytest.fail(problem, pytrace=False)


@pytest.fixture
def open_ui(browser_session, ui_setup):
    """``open_ui(host)``: a fresh page on ``host`` in this setup's canvas (closed after the test)."""
    pages = []

    def open_page(host) -> "_br.ComfyPage":
        page = browser_session.open_comfy(host.url, canvas=ui_setup.canvas)
        page.setup = ui_setup
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.close()


@pytest.fixture
def comfy_page(open_ui, ui_host):
    """A fresh browser context on this setup's host, ready (app, graph, LiteGraph) with dialogs closed."""
    return open_ui(ui_host)


@pytest.fixture
def kling_page(comfy_page):
    """A ComfyUI page with the Kling extension loaded, the helpers installed and an empty canvas."""
    names = comfy_page.extensions()
    assert "Kling.ImageToVideo.Constraints" in names and "Kling.Credentials" in names, names
    kf.install(comfy_page.page)
    kf.clear_graph(comfy_page)  # start from an empty canvas, not the default SD graph
    return comfy_page


@pytest.fixture(scope="session")
def sample_host(comfy_host, tmp_path_factory):
    """The session host with the sample start and end pictures in its input folder."""
    for picture in write_sample_images(tmp_path_factory.mktemp("inputs")):
        comfy_host.upload_image(picture)
    return comfy_host


@pytest.fixture(scope="session")
def object_info(comfy_host):
    return comfy_host.object_info()


@pytest.fixture
def fresh_emulator(emulator_process):
    """The session emulator with no tasks, requests or faults left from earlier tests."""
    emulator_process.reset()
    return emulator_process
