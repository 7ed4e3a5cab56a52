"""The real ComfyUI frontend loads in headless Chromium with this pack installed."""
from __future__ import annotations

import pytest


@pytest.mark.browser
def test_frontend_loads_and_lists_core_nodes(comfy_page):
    types = comfy_page.registered_node_types()
    assert "LoadImage" in types and "SaveVideo" in types
    assert comfy_page.page.locator("[role=dialog][aria-modal=true]:visible").count() == 0

    comfy_page.evaluate("() => window.app.graph.clear()")  # the default graph of a returning user
    comfy_page.add_node("LoadImage", (200, 150))
    comfy_page.add_node("SaveVideo", (650, 150))
    assert comfy_page.evaluate("() => window.app.graph._nodes.map(n => n.type)") == ["LoadImage", "SaveVideo"]
    comfy_page.page.wait_for_timeout(300)  # let the canvas redraw
    shot = comfy_page.screenshot(f"browser_smoke_{comfy_page.setup.id}")
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert comfy_page.unexpected_errors() == []
