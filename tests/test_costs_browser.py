"""Settings > Kling > Costs in a real browser: the limits reach the server, the balance is shown with
Kling's lag, and the page holds no price."""
from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.host]


def wait_for_limits(host, per_prompt, per_day, timeout: float = 10.0) -> dict:
    """The server's effective limits once they equal the wanted ones (or what they are at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        effective = host.get_json("/kling/spend_limits")["effective"]
        if effective == {"per_prompt": per_prompt, "per_day": per_day} or time.monotonic() > deadline:
            return effective
        time.sleep(0.1)


def test_limits_set_in_the_settings_reach_the_server_and_the_balance_is_shown(comfy_page, comfy_host):
    page = comfy_page
    try:
        page.evaluate("async () => { await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerPrompt', 7);"
                      " await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerDay', 40); }")
        assert wait_for_limits(comfy_host, 7.0, 40.0) == {"per_prompt": 7.0, "per_day": 40.0}

        page.evaluate("() => app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
        nav = page.page.locator(".settings-sidebar").get_by_text("Kling", exact=True)
        nav.first.wait_for(timeout=10_000)
        nav.first.click()
        balance = page.page.locator(".kling-costs-balance-text")
        balance.wait_for(timeout=10_000)
        page.page.wait_for_function(
            "() => /units remaining/.test(document.querySelector('.kling-costs-balance-text')?.textContent)",
            timeout=15_000)
        remaining = comfy_host.get_json("/kling/account")["remaining"]
        text = balance.inner_text()
        assert f"{remaining:g} units remaining" in text and "12 hours late" in text, text
        assert "Spent today (task ledger)" in page.page.locator(".kling-costs-spent-text").inner_text()
        page.screenshot("costs_settings")
    finally:
        page.evaluate("async () => { await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerPrompt', 0);"
                      " await app.extensionManager.setting.set('Kling.Costs.MaxUnitsPerDay', 0); }")
        assert wait_for_limits(comfy_host, None, None) == {"per_prompt": None, "per_day": None}
