"""What the frontend tests share: the nodes under test, their expectations computed in Python from
``kling_api`` (the rules, validation and widget plans; never from the JavaScript under test, which holds
no rule), and the checks every page ends with.

The browser tests run in four setups: the frontend the host pins and the newest one
(kling_devtools.host.newest_frontend()), each in the LiteGraph canvas and in Nodes 2.0 (ids like
``fe1.58.1-vue``; see conftest.UI_SETUPS). Screenshots go to artifacts/screenshots/<setup>/frontend_*.png.
"""
from __future__ import annotations

import time
from pathlib import Path

from kling_api.costs.estimates import is_cost_line
from kling_api.errors import KlingValidationError
from kling_api.rules.capabilities import capability_table
from kling_api.rules.request import ImageToVideoRequest
from kling_api.rules.validation import validate
from kling_api.rules.widget_plan import widget_plan
from kling_devtools.browser import SCREENSHOT_DIR, screenshot
from kling_devtools.browser import kling_frontend as kf
from kling_devtools.host import ComfyHost

REPO = Path(__file__).resolve().parents[1]
TABLE = capability_table()
NODE = kf.KLING_NODE
TEXT_NODE = "KlingTextToVideo"
MULTI_NODE = "KlingMultiImageToVideo"
MODEL_NODES = (NODE, TEXT_NODE, MULTI_NODE)  # the nodes whose widgets follow the table
SOUND_MODELS = [m for m in TABLE.model_names if TABLE.get(m).allowed_combos("sound")]
B64 = "aGVsbG8="  # any image reference: only the widget rules are checked here
# The frontend asks api.comfy.org and friends; nothing else may log an error.
EXTRA_NOISE: list[str] = []
ENDPOINTS = {NODE: "image2video", TEXT_NODE: "text2video", MULTI_NODE: "multi-image2video"}
PANEL = "kling_plan"  # the node's panel widget (info, warning, fix button); never a plain control
visible, problems_text, fix_label = kf.visible, kf.problems_text, kf.fix_label


def setting_name(model: str) -> str:
    """The widget that holds a model's quality setting: ``resolution`` on the new standard, ``mode`` on legacy."""
    return "resolution" if TABLE.get(model).resolutions and not TABLE.get(model).modes else "mode"


def setting_values(model: str) -> tuple[str, ...]:
    """The choices of the model's quality setting (see setting_name)."""
    caps = TABLE.get(model)
    return (caps.resolutions if setting_name(model) == "resolution" else caps.modes) or ("std",)


def node_combination(st: dict) -> tuple[str, str, str]:
    """(model, quality setting, duration) as the node holds them, the setting read from the model's widget."""
    widgets = st["widgets"]
    model = widgets["model_name"]["value"]
    return model, widgets[setting_name(model)]["value"], widgets["duration"]["value"]


def python_valid(model: str, setting: str, duration: str, tail: bool, sound: str | None = None) -> bool:
    """Whether the library accepts this combination (with an end frame if ``tail``): what the page must agree
    with. ``setting`` is the mode of a legacy model or the resolution of a new-standard one."""
    quality = {setting_name(model): setting}
    try:
        validate(ImageToVideoRequest(model_name=model, image=B64, image_tail=B64 if tail else None,
                                     duration=str(duration), sound=sound, **quality))
    except KlingValidationError:
        return False
    return True


def python_plan(node_type: str, st: dict, linked: list[str] = (), **extra) -> dict:
    """The plan kling_api.rules.widget_plan computes for the values the node holds."""
    values = {name: w["value"] for name, w in st["widgets"].items() if name != PANEL}
    return widget_plan(ENDPOINTS[node_type], {**values, **extra}, list(linked))


def rule_info(lines) -> list[str]:
    """Info lines of the widget rules, without the cost lines the route appends (kling_api.costs.estimates)."""
    return [line for line in lines if line and not is_cost_line(line)]


def assert_renders(st: dict, plan: dict) -> None:
    """The node shows exactly the server's answer: warning, fix label, info lines (those of the rules)."""
    assert problems_text(st) == (f"⚠ {plan['warning']}" if plan["warning"] else ""), (problems_text(st), plan)
    assert fix_label(st) == (plan["fix"]["label"] if plan["fix"] else ""), (fix_label(st), plan)
    assert rule_info(st["panel"]["info"].split("\n")) == rule_info(plan["info"]), (st["panel"], plan)
    assert st["panel"]["info"].split("\n") == (st["plan"]["info"] or [""]), "every info line of the answer is shown"


def pick(page, node: int, name: str, value: str, setup) -> None:
    """A user's pick with real clicks on the node's own control; where frontend 1.32.9's early Nodes 2.0
    drew the node's widget list before the control was shown, there is no control to click (set as a
    script)."""
    if setup.static_vue_widgets and name not in (kf.state(page, node)["dom"] or []):
        kf.set_value(page, node, name, value, script=True)
    else:
        kf.choose_combo(page, node, name, value)
    assert kf.state(page, node)["widgets"][name]["value"] == value


def shot(page, name: str):
    """A screenshot per setup: artifacts/screenshots/<setup>/<name>.png."""
    return screenshot(page.page, name, directory=SCREENSHOT_DIR / page.setup.id if page.setup else None)


def assert_no_internal_controls(page, node: int) -> None:
    """No state or fix holder shown as a plain control: in Nodes 2.0 no row of ours besides the panel."""
    st = kf.state(page, node)
    if st["dom"] is not None:
        text = page.evaluate(f"() => document.querySelector('[data-node-id=\"{node}\"]').innerText")
        for name in (PANEL, "kling_fix", "kling_constraints"):
            assert name not in text, text


def assert_no_page_errors(page) -> None:
    assert page.unexpected_errors(EXTRA_NOISE) == []


def tail_cases() -> list[tuple[str, str, str]]:
    """(model, mode or resolution, duration) combinations that refuse an end frame: one per model, as the table says."""
    cases = []
    for name in TABLE.model_names:
        caps = TABLE.get(name)
        for setting in setting_values(name):
            bad = [d for d in caps.durations if not python_valid(name, setting, d, True)]
            if bad:
                cases.append((name, setting, bad[0]))
                break
    return cases


def new_prompt_id(host: ComfyHost, before: set[str], timeout: float = 120.0) -> str | None:
    """The prompt a click in the page queued: the first history entry not in ``before`` (None after
    ``timeout`` s). The page queues it through the frontend, so no prompt id comes back to the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = set(host.history()) - before
        if new:
            return next(iter(new))
        time.sleep(0.3)
    return None
