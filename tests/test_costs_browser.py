"""Costs in a real browser, in every setup (frontend pinned/newest x LiteGraph/Nodes 2.0): Settings >
Kling > Costs sends the limits to the server and shows the balance with Kling's lag, and the node shows
the estimate from the server's widget plan (the page computes nothing)."""
from __future__ import annotations

import random
import time

import pytest

from kling_devtools.browser import kling_frontend as kf

from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient

pytestmark = [pytest.mark.browser, pytest.mark.host]


def wait_for_limits(host, per_prompt, per_day, timeout: float = 10.0) -> dict:
    """The server's effective limits once they equal the wanted ones (or what they are at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        effective = host.get_json("/kling/spend_limits")["effective"]
        if effective == {"per_prompt": per_prompt, "per_day": per_day} or time.monotonic() > deadline:
            return effective
        time.sleep(0.1)


def shot(page, name: str):
    from kling_devtools.browser import SCREENSHOT_DIR, screenshot
    setup = getattr(page, "setup", None)
    return screenshot(page.page, name, directory=SCREENSHOT_DIR / setup.id if setup else None)


def kling_client(host) -> KlingClient:
    return KlingClient(Credentials(api_key=Secret(host.extra_env["KLING_API_KEY"]), source="test"),
                       host.extra_env["KLING_API_BASE"])


def test_limits_set_in_the_settings_reach_the_server_and_the_balance_is_shown(comfy_page, ui_host):
    page = comfy_page
    try:
        page.evaluate("async () => { await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerPrompt', 7);"
                      " await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerDay', 40); }")
        assert wait_for_limits(ui_host, 7.0, 40.0) == {"per_prompt": 7.0, "per_day": 40.0}

        page.evaluate("() => app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
        # the category list: .settings-sidebar up to 1.3x; a <nav> in the dialog in newer frontends
        nav = page.page.locator(".settings-sidebar, [role=dialog] nav").get_by_text("Kling", exact=True)
        nav.first.wait_for(timeout=10_000)
        nav.first.click()
        balance = page.page.locator(".kling-costs-balance-text")
        balance.wait_for(timeout=10_000)
        page.page.wait_for_function(
            "() => /units remaining/.test(document.querySelector('.kling-costs-balance-text')?.textContent)",
            timeout=15_000)
        remaining = kling_client(ui_host).account_costs().remaining
        text = balance.inner_text()
        assert f"{remaining:g} units remaining" in text and "12 hours late" in text, text
        assert "Spent today (task ledger)" in page.page.locator(".kling-costs-spent-text").inner_text()
        shot(page, "costs_settings")
    finally:
        page.evaluate("async () => { await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerPrompt', 0);"
                      " await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerDay', 0); }")
        assert wait_for_limits(ui_host, None, None) == {"per_prompt": None, "per_day": None}


def test_the_estimate_is_shown_on_the_node(comfy_page, ui_host, tmp_path):
    """After one finished kling-v2-5-turbo pro 5 s task, the node shows its deduction as the estimate;
    a combination not run yet shows Kling's price table, and a model the table does not list shows "unknown until the
    first run of this combination"."""
    from kling_devtools.host_workflows import load_ui, node_id_of
    from kling_devtools.sample_images import write_sample_images
    from kling_devtools.workflow_convert import ui_to_api

    for picture in write_sample_images(tmp_path):
        ui_host.upload_image(picture)
    ui = load_ui("kling_image_to_video")
    prompt = ui_to_api(ui, ui_host.object_info())
    kling = node_id_of(ui, "KlingImageToVideo")
    prompt[kling]["inputs"].update(model_name="kling-v2-5-turbo", mode="pro", duration="5",
                                   seed=random.randrange(1 << 40))
    entry = ui_host.run(prompt, timeout=180)
    task_id = ui_host.output_files(entry, kling)[0].stem.removeprefix("Kling_")
    deducted = float(kling_client(ui_host).get_task(task_id).final_unit_deduction)

    page = comfy_page
    kf.install(page.page)
    kf.clear_graph(page)
    node = kf.add_node(page, "KlingImageToVideo", (100, 100))
    kf.frame_node(page, [node])
    for name, value in (("model_name", "kling-v2-5-turbo"), ("mode", "pro"), ("duration", "5")):
        kf.set_value(page, node, name, value)
    kf.settle(page)
    info = kf.state(page, node)["panel"]["info"]
    assert f"Estimated cost: {deducted:g} units per image" in info and "from the ledger" in info, info
    shot(page, "costs_estimate_on_node")
    for name, value in (("model_name", "kling-3.0-turbo"), ("resolution", "720p"), ("duration", "13")):
        kf.set_value(page, node, name, value)  # a combination no test runs
    kf.settle(page)
    info = kf.state(page, node)["panel"]["info"]
    # Not run yet: Kling's price table (Kling 3.0 Turbo at 720p: 0.8 units/s x 13 s).
    assert "Estimated cost: 10.4 units ($1.456) per image" in info and "from Kling's price table" in info, info
    for name, value in (("model_name", "kling-v2-1-master"), ("duration", "10")):
        kf.set_value(page, node, name, value)  # a model the price table does not list
    kf.settle(page)
    info = kf.state(page, node)["panel"]["info"]
    assert "Estimated cost: unknown until the first run of this combination" in info, info
