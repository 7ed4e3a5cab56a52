"""The pack's web extension in the real ComfyUI frontend, in headless Chromium, in four setups: the
frontend the host pins and the newest one (tests/support/newest_frontend.txt), each in the LiteGraph
canvas and in Nodes 2.0 (ids like ``fe1.58.1-vue``; see conftest.UI_SETUPS).

Every expectation about models, modes and durations is read in Python from ``kling_api.rules.capabilities``
(and ``kling_api.rules.validation`` / ``kling_api.rules.widget_plan``), never from the JavaScript under test, which
holds no rule. Screenshots go to artifacts/screenshots/<setup>/frontend_*.png.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import comfy_host as ch
import kling_frontend as kf
from kling_api.rules.capabilities import NO_MODE, capability_table, endpoint_models, markdown_table
from kling_api.errors import KlingValidationError
from kling_api.rules.request import ImageToVideoRequest
from kling_api.rules.validation import validate
from kling_api.costs.estimates import is_cost_line
from kling_api.rules.widget_plan import widget_plan

REPO = Path(__file__).resolve().parents[1]
TABLE = capability_table()
NODE = kf.KLING_NODE
TEXT_NODE = "KlingTextToVideo"
MULTI_NODE = "KlingMultiImageToVideo"
MODEL_NODES = (NODE, TEXT_NODE, MULTI_NODE)  # the nodes whose widgets follow the table
SOUND_MODELS = [m for m in TABLE.model_names if TABLE.get(m).allowed_combos("sound")]
SECRET_API_KEY = "kling-ui-test-APIKEY-7f3a9c"
SECRET_ACCESS_KEY = "kling-ui-test-ACCESS-51be02"
SECRET_SECRET_KEY = "kling-ui-test-SECRET-d04e77"
SECRETS = (SECRET_API_KEY, SECRET_ACCESS_KEY, SECRET_SECRET_KEY)
B64 = "aGVsbG8="  # any image reference: only the widget rules are checked here
# The frontend asks api.comfy.org and friends; nothing else may log an error.
EXTRA_NOISE: list[str] = []
ENDPOINTS = {NODE: "image2video", TEXT_NODE: "text2video", MULTI_NODE: "multi-image2video"}
PANEL = "kling_plan"  # the node's panel widget (info, warning, fix button); never a plain control
visible, problems_text, fix_label = kf.visible, kf.problems_text, kf.fix_label


def python_valid(model: str, mode: str, duration: str, tail: bool, sound: str | None = None) -> bool:
    try:
        validate(ImageToVideoRequest(model_name=model, image=B64, image_tail=B64 if tail else None,
                                     mode=mode, duration=str(duration), sound=sound))
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


def shot(page, name: str):
    """A screenshot per setup: artifacts/screenshots/<setup>/<name>.png."""
    from browser import SCREENSHOT_DIR, screenshot
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


@pytest.fixture
def kling_page(comfy_page):
    """A ComfyUI page with the Kling extension loaded and the helpers installed."""
    names = comfy_page.extensions()
    assert "Kling.ImageToVideo.Constraints" in names and "Kling.Credentials" in names, names
    kf.install(comfy_page.page)
    kf.clear_graph(comfy_page)  # start from an empty canvas, not the default SD graph
    return comfy_page


# --------------------------------------------------------------------------------------------------
# the node and its widgets


def test_the_page_holds_no_kling_rule():
    """The web extension renders the server's plan: no model name, no capability table in web/*.js."""
    for path in sorted((REPO / "web").glob("*.js")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"kling-v\d", text), f"{path.name} names a model"
        assert "/kling/capabilities" not in text, f"{path.name} reads the capability table"
    assert not (REPO / "web" / "kling_constraints.js").exists()


@pytest.mark.browser
def test_kling_node_renders_with_its_widgets(kling_page, comfy_host):
    info = comfy_host.object_info(NODE)[NODE]
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node])
    kf.settle(kling_page)
    st = kf.state(kling_page, node)
    widget_inputs = [name for section in ("required", "optional")
                     for name, spec in info["input"].get(section, {}).items()
                     if isinstance(spec[0], list) or spec[0] in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")]
    for name in widget_inputs:
        assert name in st["widgets"], f"no widget for input {name}: {st['order']}"
    # nothing of ours besides the panel, which nothing needs to show yet (it comes last, never serialised)
    extra = [name for name in st["order"] if name not in widget_inputs and name != "control_after_generate"]
    assert extra in ([], [PANEL]), st["order"]
    assert not problems_text(st) and not fix_label(st) and not rule_info(st["panel"]["info"].split("\n"))
    assert st["panel"]["info"].split("\n") == (st["plan"]["info"] or [""]), st["panel"]  # the cost lines
    assert_no_internal_controls(kling_page, node)
    default = TABLE.get(st["widgets"]["model_name"]["value"])
    assert default is not None
    assert visible(st, "cfg_scale") == default.cfg_scale
    assert visible(st, "model_name") and visible(st, "duration")
    assert st["widgets"]["duration"]["values"] == list(default.durations)
    expected = python_plan(NODE, st)
    assert {k: v for k, v in st["plan"].items() if k != "info"} == {k: v for k, v in expected.items() if k != "info"}
    assert rule_info(st["plan"]["info"]) == rule_info(expected["info"]), "the page shows what the server's plan says"
    if st["dom"] is None:  # LiteGraph: hidden widgets take no room, the visible ones are stacked without gaps
        ys = [(w["y"], w["height"]) for n, w in ((n, st["widgets"][n]) for n in st["order"]) if not w["hidden"]]
        for (y0, h0), (y1, _) in zip(ys, ys[1:]):
            assert abs(y0 + h0 - y1) < 0.5, ys
    picture = shot(kling_page, "frontend_node_default")
    assert picture.stat().st_size > 10_000
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_example_workflows_load_without_errors(kling_page):
    files = sorted((REPO / "example_workflows").glob("*.json"))
    assert len(files) >= 3, files
    for path in files:
        workflow = json.loads(path.read_text())
        kf.load_workflow(kling_page, workflow)
        kf.install(kling_page.page)
        ids = kling_page.evaluate("(types) => app.graph._nodes.filter(n => types.includes(n.type)).map(n => n.id)",
                                  list(MODEL_NODES))
        # Every example has a Kling node with a model (checked here), except the one of Kling Video Extend.
        assert ids or "KlingVideoExtend" in {n["type"] for n in workflow["nodes"]}, f"{path.name}: no Kling node"
        for node in ids:
            st = kf.state(kling_page, node)
            assert "model_name" in st["widgets"] and "duration" in st["widgets"]
            assert problems_text(st) == "", f"{path.name}: example shows a problem: {problems_text(st)}"
        kf.fit_view(kling_page)
        shot(kling_page, f"frontend_example_{path.stem}")
        types = {n["type"] for n in workflow["nodes"]}
        registered = set(kling_page.registered_node_types())
        assert types <= registered, f"{path.name}: unknown node types {types - registered}"
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_switching_models_follows_the_capability_table(kling_page):
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node])
    models = TABLE.model_names
    # the model menu offers exactly the table's models (a real click on the widget)
    assert kf.open_combo_menu(kling_page, node, "model_name") == models
    kf.close_menus(kling_page)

    for i, model in enumerate(models):
        before = kf.state(kling_page, node)
        kf.choose_combo(kling_page, node, "model_name", model)  # the user's gesture
        st = kf.state(kling_page, node)
        caps = TABLE.get(model)
        assert st["widgets"]["model_name"]["value"] == model
        assert visible(st, "cfg_scale") == caps.cfg_scale, model
        assert visible(st, "mode") == caps.has_mode_choice, model
        assert st["widgets"]["duration"]["values"] == list(caps.durations), model
        if caps.has_mode_choice:
            assert st["widgets"]["mode"]["values"] == list(caps.modes), model
        # never silently changed
        assert st["widgets"]["mode"]["value"] == before["widgets"]["mode"]["value"]
        assert st["widgets"]["duration"]["value"] == before["widgets"]["duration"]["value"]
        # the node height follows the visible widgets
        if st["dom"] is None and visible(st, "cfg_scale") != visible(before, "cfg_scale") and not (
                problems_text(st) or problems_text(before)):
            grew = st["size"][1] > before["size"][1]
            assert grew == visible(st, "cfg_scale"), (model, before["size"], st["size"])
        if model in ("kling-v1", "kling-v2-master", "kling-v3"):
            shot(kling_page, f"frontend_model_{model}")

    # the duration menu offers the model's durations only (real click)
    for model in (models[0], max(models, key=lambda m: len(TABLE.get(m).durations))):
        kf.set_value(kling_page, node, "model_name", model)
        kf.set_value(kling_page, node, "duration", TABLE.get(model).durations[0])
        offered = kf.open_combo_menu(kling_page, node, "duration")
        kf.close_menus(kling_page)
        assert offered == list(TABLE.get(model).durations), model
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_early_nodes2_keeps_its_first_widget_list(kling_page, ui_setup):
    """Where Nodes 2.0 can hide widgets, a pick shows and hides them in the node's DOM. Where it draws the
    widget list only once (frontend 1.32.9), the DOM keeps its first list while the widgets' flags follow
    the plan, and a refused value still shows the warning and its one-click fix."""
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node])
    kf.settle(kling_page, 300)
    with_cfg = next(m for m in TABLE.model_names if TABLE.get(m).cfg_scale)
    without_cfg = next(m for m in TABLE.model_names if not TABLE.get(m).cfg_scale and m not in SOUND_MODELS)
    kf.set_value(kling_page, node, "model_name", without_cfg)
    before = kf.state(kling_page, node)
    kf.set_value(kling_page, node, "model_name", with_cfg)
    after = kf.state(kling_page, node)
    assert after["widgets"]["cfg_scale"]["hidden"] is False and before["widgets"]["cfg_scale"]["hidden"] is True
    if not ui_setup.vue:
        return
    if not ui_setup.static_vue_widgets:
        assert "cfg_scale" in after["dom"] and "cfg_scale" not in before["dom"], (before["dom"], after["dom"])
        return
    assert after["dom"] == before["dom"], "this frontend's Nodes 2.0 now redraws the widget list: drop the fallback"
    shot(kling_page, "frontend_early_nodes2_static_widgets")
    # the fallback: a value the model refuses is said, and one click fixes it
    if "sound" in before["dom"]:  # shown although this model has none: its menu offers "off" only, but a
        kf.set_value(kling_page, node, "model_name", without_cfg)  # workflow saved with sound on may hold it
        kf.set_value(kling_page, node, "sound", "on", script=True)
        st = kf.state(kling_page, node)
        assert_renders(st, python_plan(NODE, st))
        assert problems_text(st) and fix_label(st) == "Fix: use sound off", st["panel"]
        kf.click_fix(kling_page, node)
        assert kf.state(kling_page, node)["widgets"]["sound"]["value"] == "off"
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_duration_the_model_does_not_make_is_shown_not_changed(kling_page):
    long_model = max(TABLE.model_names, key=lambda m: len(TABLE.get(m).durations))
    odd = next(d for d in TABLE.get(long_model).durations
               if any(d not in TABLE.get(m).durations for m in TABLE.model_names))
    short_model = next(m for m in TABLE.model_names if odd not in TABLE.get(m).durations)
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node])
    kf.set_value(kling_page, node, "model_name", long_model)
    kf.set_value(kling_page, node, "duration", odd)
    kf.set_value(kling_page, node, "model_name", short_model)
    st = kf.state(kling_page, node)
    assert st["widgets"]["duration"]["value"] == odd  # kept as the user left it
    assert bool(problems_text(st)) and odd in problems_text(st)
    assert bool(fix_label(st))
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    assert st["widgets"]["model_name"]["value"] == short_model
    assert st["widgets"]["duration"]["value"] in TABLE.get(short_model).durations
    assert not bool(problems_text(st))
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_sound_is_offered_only_by_models_with_sound(kling_page):
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node])
    assert "kling-v2-5-turbo" not in SOUND_MODELS and "kling-v2-6" in SOUND_MODELS
    kf.choose_combo(kling_page, node, "model_name", "kling-v2-5-turbo")  # the user's gesture
    st = kf.state(kling_page, node)
    assert not visible(st, "sound") and st["widgets"]["sound"]["value"] == "off"
    shot(kling_page, "frontend_sound_hidden")
    kf.choose_combo(kling_page, node, "model_name", "kling-v2-6")
    st = kf.state(kling_page, node)
    assert visible(st, "sound") and problems_text(st) == ""
    shot(kling_page, "frontend_sound_shown")
    for model in TABLE.model_names:
        kf.set_value(kling_page, node, "model_name", model)
        st = kf.state(kling_page, node)
        assert visible(st, "sound") == (model in SOUND_MODELS), model
        if TABLE.get(model).durations and st["widgets"]["duration"]["value"] in TABLE.get(model).durations:
            assert problems_text(st) == "", (model, problems_text(st))
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_sound_on_where_the_model_or_mode_has_none_warns_and_one_click_fixes(kling_page):
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node], zoom=0.9)
    # a model with sound on some modes only (kling-v2-6: pro): the node says so, the fix picks the mode
    model = next(m for m in SOUND_MODELS
                 if len(TABLE.get(m).allowed_combos("sound")) < len(TABLE.get(m).modes) * len(TABLE.get(m).durations))
    caps = TABLE.get(model)
    silent_mode = next(m for m in caps.modes if not any(c[0] == m for c in caps.allowed_combos("sound")))
    for name, value in (("model_name", model), ("mode", silent_mode), ("duration", caps.durations[0]),
                        ("sound", "on")):
        kf.set_value(kling_page, node, name, value)
    st = kf.state(kling_page, node)
    text = problems_text(st)
    assert visible(st, "sound") and model in text and "sound" in text, text
    assert_renders(st, python_plan(NODE, st))
    assert bool(fix_label(st)) and "mode" in fix_label(st), st["panel"]
    shot(kling_page, "frontend_sound_needs_mode")
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    fixed = (st["widgets"]["model_name"]["value"], st["widgets"]["mode"]["value"], st["widgets"]["duration"]["value"])
    assert fixed[0] == model and st["widgets"]["sound"]["value"] == "on"
    assert python_valid(*fixed, False, "on") and not bool(problems_text(st)), fixed

    # sound on, then a model without sound: the widget stays in sight with the warning until sound is off
    silent = next(m for m in TABLE.model_names if m not in SOUND_MODELS and st["widgets"]["mode"]["value"]
                  in (TABLE.get(m).modes or (st["widgets"]["mode"]["value"],)))
    kf.set_value(kling_page, node, "model_name", silent)
    st = kf.state(kling_page, node)
    text = problems_text(st)
    assert visible(st, "sound") and silent in text and all(m in text for m in SOUND_MODELS), text
    assert fix_label(st) == "Fix: use sound off", st["panel"]
    assert_renders(st, python_plan(NODE, st))
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    assert st["widgets"]["model_name"]["value"] == silent and st["widgets"]["sound"]["value"] == "off"
    assert not visible(st, "sound") and not bool(problems_text(st))
    prompt = kf.graph_to_prompt(kling_page)["output"][str(node)]["inputs"]
    assert prompt["model_name"] == silent and prompt["sound"] == "off"
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_text_to_video_widgets_follow_the_capability_table(kling_page, comfy_host):
    offered = comfy_host.object_info(TEXT_NODE)[TEXT_NODE]["input"]["required"]["model_name"][1]["options"]
    assert offered == endpoint_models("text2video")
    node = kf.add_node(kling_page, TEXT_NODE, (100, 100))
    kf.frame_node(kling_page, [node])
    for model in offered:
        kf.set_value(kling_page, node, "model_name", model)
        st = kf.state(kling_page, node)
        caps = TABLE.get(model)
        assert visible(st, "cfg_scale") == caps.cfg_scale, model
        assert visible(st, "mode") == caps.has_mode_choice, model
        assert visible(st, "sound") == (model in SOUND_MODELS), model
        assert st["widgets"]["duration"]["values"] == list(caps.durations), model
        if model in ("kling-v2-master", "kling-v3"):
            shot(kling_page, f"frontend_text_model_{model}")
    # a model the text endpoint does not take (e.g. a value from elsewhere): said, and fixed within the node's models
    other = next(m for m in TABLE.model_names if m not in offered)
    kf.set_value(kling_page, node, "model_name", other, script=True)  # not offered: no click can pick it
    kf.set_value(kling_page, node, "duration", TABLE.get(other).durations[0], script=True)
    st = kf.state(kling_page, node)
    assert other in problems_text(st) and bool(fix_label(st)), problems_text(st)
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    assert st["widgets"]["model_name"]["value"] in offered and not bool(problems_text(st))
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_multi_image_widgets_follow_the_table_and_video_extend_has_no_model_rules(kling_page, comfy_host):
    multi, extend = MULTI_NODE, "KlingVideoExtend"
    offered = comfy_host.object_info(multi)[multi]["input"]["required"]["model_name"][1]["options"]
    assert offered == endpoint_models("multi-image2video")
    node = kf.add_node(kling_page, multi, (100, 100))
    kf.frame_node(kling_page, [node])
    st = kf.state(kling_page, node)
    caps = TABLE.get(st["widgets"]["model_name"]["value"])
    assert st["widgets"]["duration"]["values"] == list(caps.durations)
    assert visible(st, "mode") == caps.has_mode_choice and not bool(problems_text(st))
    # a duration the model does not make (e.g. from another node's workflow): said, and one click fixes it
    odd = next(d for d in TABLE.all_durations if d not in caps.durations)
    kf.set_value(kling_page, node, "duration", odd, script=True)  # not offered: no click can pick it
    st = kf.state(kling_page, node)
    assert odd in problems_text(st) and bool(fix_label(st)), problems_text(st)
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    assert st["widgets"]["duration"]["value"] in caps.durations and not bool(problems_text(st))
    assert st["widgets"]["model_name"]["value"] in offered
    # Video Extend takes the source video's model and mode: nothing of the table to follow on the node
    st = kf.state(kling_page, kf.add_node(kling_page, extend, (100, 700)))
    assert not problems_text(st) and not fix_label(st), st["panel"]
    assert_no_page_errors(kling_page)


def _tail_cases() -> list[tuple[str, str, str]]:
    """(model, mode, duration) combinations that refuse an end frame: one per model, as the table says."""
    cases = []
    for name in TABLE.model_names:
        caps = TABLE.get(name)
        for mode in caps.modes or ("std",):
            bad = [d for d in caps.durations if not python_valid(name, mode, d, True)]
            if bad:
                cases.append((name, mode, bad[0]))
                break
    return cases


@pytest.mark.browser
def test_end_frame_on_a_refusing_combination_warns_and_one_click_fixes(kling_page):
    load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [load_image, node], zoom=0.9)
    cases = _tail_cases()
    assert any(TABLE.get(m).allowed_combos("image_tail") for m, _, _ in cases)
    assert any(not TABLE.get(m).allowed_combos("image_tail") for m, _, _ in cases)
    shots = 0
    for model, mode, duration in cases:
        kf.disconnect(kling_page, node, "image_tail")
        for name, value in (("model_name", model), ("mode", mode), ("duration", duration)):
            kf.set_value(kling_page, node, name, value)
        st = kf.state(kling_page, node)
        assert not bool(problems_text(st)), (model, mode, duration, problems_text(st))

        kf.connect(kling_page, load_image, 0, node, "image_tail")
        st = kf.state(kling_page, node)
        assert st["tail_connected"]
        # the choice is untouched; the node says why and offers one button
        assert (st["widgets"]["model_name"]["value"], st["widgets"]["mode"]["value"],
                st["widgets"]["duration"]["value"]) == (model, mode, duration)
        text = problems_text(st)
        assert bool(problems_text(st)) and "image_tail" in text and model in text, text
        caps = TABLE.get(model)
        assert_renders(st, python_plan(NODE, st, ["image_tail"]))
        assert bool(fix_label(st)) and fix_label(st).startswith("Fix: use ")
        if shots < 2:
            kf.frame_node(kling_page, [load_image, node], zoom=0.9)
            shot(kling_page, f"frontend_end_frame_warning_{model}")

        kf.click_fix(kling_page, node)  # ONE real click
        st = kf.state(kling_page, node)
        fixed = (st["widgets"]["model_name"]["value"], st["widgets"]["mode"]["value"],
                 st["widgets"]["duration"]["value"])
        assert python_valid(*fixed, True), (model, mode, duration, fixed)
        assert not bool(problems_text(st)) and not bool(fix_label(st))
        if caps.allowed_combos("image_tail"):
            assert fixed[0] == model, "the model takes an end frame: only mode/duration should change"
        if shots < 2:
            shot(kling_page, f"frontend_end_frame_fixed_{model}")
            shots += 1
        # what would be queued is the fixed, valid combination
        prompt = kf.graph_to_prompt(kling_page)["output"][str(node)]["inputs"]
        assert (prompt["model_name"], prompt["mode"], prompt["duration"]) == fixed
        assert PANEL not in prompt
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_workflow_saved_with_an_invalid_combination_loads_as_saved(kling_page):
    model, mode, duration = _tail_cases()[0]
    load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    for name, value in (("model_name", model), ("mode", mode), ("duration", duration)):
        kf.set_value(kling_page, node, name, value)
    kf.connect(kling_page, load_image, 0, node, "image_tail")
    saved = kf.serialize_graph(kling_page)
    saved_node = next(n for n in saved["nodes"] if n["type"] == NODE)
    assert None not in saved_node["widgets_values"]  # no hole left by our non-serialised widgets
    assert len(saved_node["widgets_values"]) == kling_page.evaluate(
        f"() => app.graph.getNodeById({node}).widgets.filter(w => w.serialize !== false).length")

    kf.clear_graph(kling_page)
    kf.load_workflow(kling_page, saved)
    kf.install(kling_page.page)
    loaded_id = kling_page.evaluate(f"() => app.graph._nodes.find(n => n.type === '{NODE}').id")
    kf.frame_node(kling_page, [loaded_id], zoom=0.9)
    st = kf.state(kling_page, loaded_id)
    assert (st["widgets"]["model_name"]["value"], st["widgets"]["mode"]["value"],
            st["widgets"]["duration"]["value"]) == (model, mode, duration)
    assert bool(problems_text(st)) and "image_tail" in problems_text(st)
    assert bool(fix_label(st))
    again = next(n for n in kf.serialize_graph(kling_page)["nodes"] if n["type"] == NODE)
    assert again["widgets_values"] == saved_node["widgets_values"]  # nothing rewritten by loading
    shot(kling_page, "frontend_invalid_workflow_loaded")
    assert_no_page_errors(kling_page)


# --------------------------------------------------------------------------------------------------
# help pages and tooltips


def test_help_page_model_table_matches_the_capability_table():
    doc = (REPO / "web" / "docs" / f"{NODE}.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- capability-table:start -->\n(.*?)\n<!-- capability-table:end -->", doc, re.S)
    assert block, "the capability-table markers are missing from the help page"
    assert block.group(1).strip() == markdown_table().strip(), (
        "web/docs/KlingImageToVideo.md is out of date; paste kling_api.rules.capabilities.markdown_table() "
        "between its capability-table markers:\n" + markdown_table())


@pytest.mark.host
def test_every_input_and_output_has_a_tooltip(comfy_host):
    locale = json.loads((REPO / "locales" / "en" / "nodeDefs.json").read_text(encoding="utf-8"))
    info = comfy_host.object_info()
    kling = {name: d for name, d in info.items() if d.get("python_module", "").endswith(kf.PACK_LINK_NAME)}
    assert set(kling) == set(locale), (sorted(kling), sorted(locale))
    for name, d in kling.items():
        entry = locale[name]
        assert entry["display_name"] == d["display_name"]
        inputs = {i: spec for section in ("required", "optional") for i, spec in d["input"].get(section, {}).items()}
        assert sorted(entry["inputs"]) == sorted(inputs), name
        for i, spec in inputs.items():
            assert entry["inputs"][i].get("tooltip"), f"{name}.{i} has no tooltip"
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            assert entry["inputs"][i].get("name") == options.get("display_name", i), f"{name}.{i}"
        assert sorted(entry["outputs"], key=int) == [str(i) for i in range(len(d["output"]))], name
        for i, out_name in enumerate(d["output_name"]):
            assert entry["outputs"][str(i)].get("tooltip"), f"{name} output {i} has no tooltip"
            assert entry["outputs"][str(i)].get("name") == out_name
    served = comfy_host.get_json("/i18n")["en"]["nodeDefs"]
    assert served[NODE] == locale[NODE]  # the server hands our locale to the frontend


@pytest.mark.browser
def test_node_help_panel_shows_the_pack_docs(kling_page, ui_host):
    for name in ("KlingImageToVideo", "KlingTaskResult", "KlingCameraControl", "KlingMotionBrush"):
        r = ui_host.request("GET", f"{kf.EXTENSION_BASE}/docs/{name}.md")
        assert r.status == 200, (name, r.status)
        assert r.body.decode("utf-8").startswith("# Kling "), name
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node], top=330)  # room above the node for the selection toolbox
    kling_page.evaluate(f"() => {{ app.canvas.deselectAll?.(); app.canvas.selectNode(app.graph.getNodeById({node})); "
                        f"app.canvas.setDirty(true, true); }}")
    info = kling_page.page.locator("[data-testid=info-button]")
    info.first.wait_for(state="visible", timeout=10_000)
    info.first.click()
    panel = kling_page.page.get_by_text("Widgets that follow the model")
    panel.first.wait_for(state="visible", timeout=10_000)
    assert kling_page.page.get_by_text("Fix: use").count() >= 1
    kling_page.page.wait_for_timeout(300)
    shot(kling_page, "frontend_help_panel")
    assert_no_page_errors(kling_page)


# --------------------------------------------------------------------------------------------------
# credentials


@pytest.fixture(scope="module")
def keyless_host(comfy_install, ui_setup):
    """A ComfyUI without KLING_* variables, so the file-backed credentials flow can be seen (serving the
    setup's frontend)."""
    host = ch.ComfyHost(env={"KLING_API_BASE": "http://127.0.0.1:9"}, install=comfy_install,
                        front_end_root=ui_setup.front_end_root())
    try:
        host.start()
    except ch.HostError as e:
        pytest.fail(str(e), pytrace=False)
    yield host
    host.stop()


def _open_kling_settings(page) -> None:
    page.evaluate("() => app.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
    # the category list: .settings-sidebar up to 1.3x; a <nav> in the dialog in newer frontends
    nav = page.page.locator(".settings-sidebar, [role=dialog] nav").get_by_text("Kling", exact=True)
    nav.first.wait_for(timeout=10_000)
    nav.first.click()
    page.page.locator("[data-kling-credentials]").wait_for(timeout=10_000)


def _status(page, expected: str, timeout: float = 10_000) -> str:
    loc = page.page.locator("[data-kling-status]")
    loc.wait_for(timeout=timeout)
    page.page.wait_for_function(
        "(want) => document.querySelector('[data-kling-status]')?.textContent === want", arg=expected,
        timeout=timeout)
    return loc.inner_text()


def _fill_dialog(page, *, api_key: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None):
    page.page.locator("[data-kling-action=set]").click()
    dialog = page.page.locator("dialog.kling-cred-dialog")
    dialog.wait_for(timeout=5000)
    if api_key is not None:
        dialog.locator("input[name=api_key]").fill(api_key)
    else:
        dialog.locator("input[value=pair]").check()
        dialog.locator("input[name=access_key]").fill(access_key)
        dialog.locator("input[name=secret_key]").fill(secret_key)
    return dialog


@pytest.mark.browser
def test_credentials_dialog_sets_and_clears_keys_that_never_reach_the_page(open_ui, keyless_host):
    page = open_ui(keyless_host)
    try:
        kf.install(page.page)
        kf.clear_graph(page)
        node = kf.add_node(page, NODE, (100, 100))
        _open_kling_settings(page)
        assert _status(page, "not configured") == "not configured"
        shot(page, "frontend_credentials_not_configured")

        # API key
        dialog = _fill_dialog(page, api_key=SECRET_API_KEY)
        shot(page, "frontend_credentials_dialog")
        dialog.locator("[data-action=save]").click()
        assert _status(page, "configured (file)") == "configured (file)"
        assert not page.page.locator("dialog.kling-cred-dialog").count()  # removed, inputs with it
        assert keyless_host.get_json("/kling/credentials") == {"configured": True, "source": "file", "kind": "api_key"}
        shot(page, "frontend_credentials_configured")

        # Clear (through the frontend's own confirm dialog)
        page.page.locator("[data-kling-action=clear]").click()
        confirm = page.page.get_by_role("button", name=re.compile(r"^\W*(Delete|Confirm)\s*$"))
        confirm.first.wait_for(timeout=5000)
        shot(page, "frontend_credentials_clear_confirm")
        confirm.first.click()
        assert _status(page, "not configured") == "not configured"
        assert keyless_host.get_json("/kling/credentials")["configured"] is False

        # access key + secret key
        dialog = _fill_dialog(page, access_key=SECRET_ACCESS_KEY, secret_key=SECRET_SECRET_KEY)
        dialog.locator("[data-action=save]").click()
        assert _status(page, "configured (file)") == "configured (file)"
        status = keyless_host.get_json("/kling/credentials")
        assert status == {"configured": True, "source": "file", "kind": "access_key"} or \
            (status["configured"] and status["source"] == "file"), status

        # nothing secret anywhere the page or a client can see
        page.page.keyboard.press("Escape")
        page.page.wait_for_timeout(300)
        kf.set_value(page, node, "prompt", "a cat")
        prompt = kf.graph_to_prompt(page)
        workflow = kf.serialize_graph(page)
        storage = kf.browser_storage(page)
        settings_body = keyless_host.request("GET", "/settings").body.decode()
        settings_file = keyless_host.user_dir / "default" / "comfy.settings.json"
        on_disk = settings_file.read_text() if settings_file.is_file() else ""
        dom = page.page.content()
        for secret in SECRETS:
            for where, text in (("graphToPrompt", kf.dumps(prompt)), ("workflow", kf.dumps(workflow)),
                                ("browser storage", kf.dumps(storage)), ("GET /settings", settings_body),
                                ("comfy.settings.json", on_disk), ("page DOM", dom),
                                ("GET /kling/credentials", kf.dumps(keyless_host.get_json("/kling/credentials")))):
                assert secret not in text, f"a key leaked into {where}"
        settings = json.loads(settings_body)
        assert settings.get("Kling.Credentials", "") == ""  # the setting's own value is never a key
        # Settings > Kling > Costs asks for the balance; this host's Kling is a closed port, so the route
        # answers 502 (shown in the panel as the server's words): that one error is expected here.
        assert page.unexpected_errors([r"^Failed to load resource: the server responded with a status of 502 "
                                       r"\(Bad Gateway\) \(http://127\.0\.0\.1:\d+/api/kling/account\)$"]) == []
    finally:
        keyless_host.request("DELETE", "/kling/credentials")


@pytest.mark.browser
def test_credentials_from_the_environment_are_shown_as_such(comfy_page):
    """The session host gets KLING_API_KEY from the environment: the row says so and Clear is disabled."""
    _open_kling_settings(comfy_page)
    assert _status(comfy_page, "configured (environment)") == "configured (environment)"
    assert comfy_page.page.locator("[data-kling-action=clear]").is_disabled()
    shot(comfy_page, "frontend_credentials_environment")


# --------------------------------------------------------------------------------------------------
# a run from the page, against the emulator


PROGRESS_TEXT_JS = """(id) => {
    const has = (t) => typeof t === 'string' && t.includes('Kling:');
    const el = document.querySelector(`[data-node-id="${id}"]`);  // Nodes 2.0: the node's own DOM
    if (el && has(el.innerText)) return el.innerText.split('\\n').find(has);
    const n = app.graph.getNodeById(id);
    for (const w of n.widgets || []) {
        if (has(w.value)) return w.value;
        if (has(w.element?.value) || has(w.element?.innerText)) return w.element.value || w.element.innerText;
    }
    return null;
}"""


@pytest.mark.browser
@pytest.mark.slow
def test_workflow_queued_from_the_page_shows_progress_text_and_the_video_preview(kling_page, ui_host, tmp_path,
                                                                                  request):
    emulator = request.getfixturevalue("emulator_process")
    emulator.set_config({"max_height": 240, "processing_seconds": 6})
    try:
        from sample_images import write_sample_images

        start, _ = write_sample_images(tmp_path)
        uploaded = ui_host.upload_image(start, name="kling_ui_start.png")
        load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
        node = kf.add_node(kling_page, NODE, (100, 100))
        save = kf.add_node(kling_page, "SaveVideo", (560, 100))
        kf.set_value(kling_page, load_image, "image", uploaded["name"], script=True)  # core node: not under test
        kf.set_value(kling_page, node, "prompt", "a slow pan over a gradient")
        import time as _time  # a seed of its own: the same prompt again would be served from ComfyUI's cache
        kf.set_value(kling_page, node, "seed", int(_time.time() * 1000) % 1_000_000_007)
        kf.set_value(kling_page, node, "control_after_generate", "fixed")
        kf.connect(kling_page, load_image, 0, node, "image")
        video_slot = kling_page.evaluate(f"() => app.graph.getNodeById({node}).outputs.findIndex(o => o.type === 'VIDEO')")
        kf.connect(kling_page, node, video_slot, save, "video")
        kf.frame_node(kling_page, [load_image, node, save], zoom=0.75)
        before = set(ui_host.history())

        kling_page.page.get_by_role("button", name=re.compile(r"^\s*Run\s*$")).first.click()  # the user's Run
        # while Kling (the emulator) works, the node shows the pack's progress text
        progress = kling_page.page.wait_for_function(PROGRESS_TEXT_JS, arg=node, timeout=60_000).json_value()
        assert progress.startswith("Kling:"), progress
        shot(kling_page, "frontend_progress_text")
        deadline = 120
        import time

        t0 = time.monotonic()
        prompt_id = None
        while time.monotonic() - t0 < deadline and prompt_id is None:
            new = set(ui_host.history()) - before
            prompt_id = next(iter(new), None)
            time.sleep(0.3)
        assert prompt_id, "the Run button queued nothing"
        entry = ui_host.wait(prompt_id, timeout=deadline)
        videos = entry["outputs"][str(node)]["images"]
        assert videos and videos[0]["filename"].endswith(".mp4")

        # the node's preview: a <video> element playing /view?filename=<the mp4>
        try:
            _wait_for_video(kling_page, node, videos[0]["filename"])
        except Exception:
            shot(kling_page, "frontend_video_preview_missing")
            raise
        kling_page.page.wait_for_timeout(800)
        shot(kling_page, "frontend_video_preview")
        assert_no_page_errors(kling_page)
    finally:
        emulator.reset()


def _wait_for_video(page, node: int, name: str) -> None:
        page.page.wait_for_function(
            """([id, name]) => {
                const n = app.graph.getNodeById(id);
                const v = n?.videoContainer?.querySelector('video') ||
                  Array.from(document.querySelectorAll('video')).find(v => (v.src || '').includes(name));
                return !!v && (v.src || '').includes(encodeURIComponent(name).replace(/%2F/g, '/')) && v.readyState >= 1;
            }""", arg=[node, name], timeout=30_000)


# --------------------------------------------------------------------------------------------------
# camera control, motion brush and the trajectory editor

BRUSH = "KlingMotionBrush"
CAMERA = "KlingCameraControl"


def python_feature_valid(model: str, mode: str, duration: str, feature: str) -> bool:
    extra = {"camera_control": {"camera_control": {"type": "simple", "config": {"zoom": 1}}},
             "motion_brush": {"dynamic_masks": [{"mask": B64, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}]},
             }[feature]
    try:
        validate(ImageToVideoRequest(model_name=model, image=B64, mode=mode, duration=str(duration), **extra))
    except KlingValidationError:
        return False
    return True


@pytest.mark.browser
def test_camera_and_brush_on_a_refusing_model_warn_and_one_click_fixes(kling_page):
    node = kf.add_node(kling_page, NODE, (100, 100))
    camera = kf.add_node(kling_page, CAMERA, (-260, 100))
    brush = kf.add_node(kling_page, BRUSH, (-260, 420))
    kf.frame_node(kling_page, [camera, node], zoom=0.8)
    kf.set_value(kling_page, node, "model_name", "kling-v2-5-turbo")
    kf.connect(kling_page, camera, 0, node, "camera_control")
    st = kf.state(kling_page, node)
    text = problems_text(st)
    camera_models = [m for m in TABLE.model_names if TABLE.get(m).allowed_combos("camera_control")]
    assert "camera_control" in text and all(m in text for m in camera_models), text
    shot(kling_page, "frontend_camera_warning")
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    fixed = (st["widgets"]["model_name"]["value"], st["widgets"]["mode"]["value"], st["widgets"]["duration"]["value"])
    assert python_feature_valid(*fixed, "camera_control"), fixed
    assert not bool(problems_text(st))
    # a preset the model does not offer (read from the camera node's widget)
    kf.set_value(kling_page, camera, "type", "down_back")
    kf.settle(kling_page, 300)
    text = problems_text(kf.state(kling_page, node))
    assert "down_back" in text and "simple" in text, text
    kf.set_value(kling_page, camera, "type", "simple")
    # the motion brush as well: the two cannot go together
    kf.connect(kling_page, brush, 0, node, "motion_brush")
    text = problems_text(kf.state(kling_page, node))
    assert "cannot be used together" in text and "camera_control" in text, text
    assert_renders(kf.state(kling_page, node), python_plan(NODE, kf.state(kling_page, node),
                                                           ["camera_control", "motion_brush"], camera_type="simple"))
    assert_no_page_errors(kling_page)


def _editor_box(page, brush: int) -> dict:
    return kf.js(page.page, """(() => {
        const n = window.__kt.node(arg);
        const root = n.__klingTrajectory.root;
        const c = n.__klingTrajectory.canvas;
        const r = c.getBoundingClientRect();
        return {left: r.left, top: r.top, width: r.width, height: r.height, cw: c.clientWidth, ch: c.clientHeight,
                image: root.dataset.image, points: root.dataset.points};
    })()""", brush)


def _client_point(box: dict, image_size: tuple[int, int], x: float, y: float) -> tuple[float, float]:
    """Image pixel -> client px, by the editor's documented layout: the image contain-fitted, centred."""
    iw, ih = image_size
    scale = min(box["cw"] / iw, box["ch"] / ih)
    ox, oy = (box["cw"] - iw * scale) / 2, (box["ch"] - ih * scale) / 2
    ratio = box["width"] / box["cw"]
    return box["left"] + (ox + x * scale) * ratio, box["top"] + (oy + y * scale) * ratio


def _brush_value(page, brush: int) -> list:
    return json.loads(kf.state(page, brush)["widgets"]["trajectories"]["value"])


def _close(points, expected, tol: float = 3.0) -> bool:
    return len(points) == len(expected) and all(abs(a - b) <= tol for p, q in zip(points, expected)
                                                for a, b in zip(p, q))


def _wait_for_points(page, brush: int, counts: str, timeout: int = 10_000) -> None:
    """Until the editor shows ``counts`` points per path ("3,1,0,0,0,0"): a busy machine may take
    longer than any fixed pause to handle a click, and the next click must meet the drawn state."""
    page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.points === '{counts}'",
        timeout=timeout)


def _wait_for_value(page, brush: int, accept, timeout: float = 10.0) -> list:
    """The trajectories value once ``accept(value)`` holds (polled), else the last value seen."""
    deadline = time.monotonic() + timeout
    value = _brush_value(page, brush)
    while not accept(value) and time.monotonic() < deadline:
        kf.settle(page, 100)
        value = _brush_value(page, brush)
    return value


@pytest.mark.browser
@pytest.mark.slow
def test_trajectory_editor_draw_save_reload_and_run(kling_page, ui_host, tmp_path, request):
    from sample_images import START_NAME, write_sample_images

    emulator = request.getfixturevalue("emulator_process")
    start, _ = write_sample_images(tmp_path)
    ui_host.upload_image(start, name=START_NAME)
    workflow = json.loads((REPO / "example_workflows" / "kling_motion_brush.json").read_text())
    brush_entry = next(n for n in workflow["nodes"] if n["type"] == BRUSH)
    brush_entry["widgets_values"][0] = "[]"  # start with no path: the user draws it
    kf.load_workflow(kling_page, workflow)
    kf.install(kling_page.page)
    brush = brush_entry["id"]
    kf.frame_node(kling_page, [brush], zoom=1.0, top=150, left=300)  # room for the selection toolbox
    kling_page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.image === '640x384'", timeout=15_000)
    size = (640, 384)
    mouse = kling_page.page.mouse

    def at(x: float, y: float) -> tuple[float, float]:
        """Where image pixel (x, y) is on screen now (a user aims at what they see)."""
        return _client_point(_editor_box(kling_page, brush), size, x, y)

    # click three points of path 1 (the sun rises to the right), then drag the middle one
    for count, (x, y) in enumerate(((160, 250), (300, 150), (480, 80)), 1):
        mouse.click(*at(x, y))
        _wait_for_points(kling_page, brush, f"{count},0,0,0,0,0")
    mouse.move(*at(300, 150))
    mouse.down()
    for step in range(1, 6):
        mouse.move(*at(300 + 12 * step, 150 - 8 * step))
    mouse.up()
    _wait_for_value(kling_page, brush, lambda v: bool(v) and _close(v[0], [[160, 250], [360, 110], [480, 80]]))
    # path 2 (green): a single point is kept while drawing, but a path needs 2-77 points
    kf.js(kling_page.page, "window.__kt.node(arg).__klingTrajectory.root.querySelector('[data-path=\"1\"]').click()",
          brush)
    kling_page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.active === '1'", timeout=5000)
    mouse.click(*at(500, 300))
    _wait_for_points(kling_page, brush, "3,1,0,0,0,0")
    # right-click off a point: nothing (far enough: the hit radius is 9 CSS px, ~20 image px on a small editor)
    mouse.click(*at(600, 340), button="right")
    kf.settle(kling_page, 150)
    value = _wait_for_value(kling_page, brush, lambda v: len(v) == 2)
    assert _close(value[0], [[160, 250], [360, 110], [480, 80]]), value
    assert _close(value[1], [[500, 300]]), value
    mouse.click(*at(*value[1][0]), button="right")  # right-click the point: removed
    _wait_for_points(kling_page, brush, "3,0,0,0,0,0")
    value = _wait_for_value(kling_page, brush, lambda v: len(v) == 1)
    assert len(value) == 1 and _close(value[0], [[160, 250], [360, 110], [480, 80]]), value
    shot(kling_page, "frontend_trajectory_editor")

    # save, clear, reload: the JSON and the drawing come back as saved
    saved = kf.serialize_graph(kling_page)
    saved_brush = next(n for n in saved["nodes"] if n["type"] == BRUSH)
    assert saved_brush["widgets_values"] == [json.dumps(value, separators=(",", ":"))]
    kf.clear_graph(kling_page)
    kf.load_workflow(kling_page, saved)
    kf.install(kling_page.page)
    assert _brush_value(kling_page, brush) == value
    kling_page.page.wait_for_function(
        f"() => app.graph.getNodeById({brush}).__klingTrajectory.root.dataset.points === '3,0,0,0,0,0'",
        timeout=10_000)
    # still editable after the reload, on a zoomed-out canvas: drag the last point
    kf.frame_node(kling_page, [brush], zoom=0.75, top=60, left=300)
    box = _editor_box(kling_page, brush)
    assert box["width"] < box["cw"]  # the editor really is scaled with the canvas
    mouse.move(*at(*value[0][2]))
    mouse.down()
    for step in range(1, 5):
        mouse.move(*at(value[0][2][0] + 5 * step, value[0][2][1] + 5 * step))
    mouse.up()
    moved = _wait_for_value(kling_page, brush, lambda v: bool(v) and _close(v[0][2:], [[value[0][2][0] + 20,
                                                                                      value[0][2][1] + 20]]))
    assert _close(moved[0][:2], value[0][:2], tol=0) and _close(moved[0][2:], [[value[0][2][0] + 20, value[0][2][1] + 20]]), moved
    value = moved
    shot(kling_page, "frontend_trajectory_editor_reloaded")

    # run it from the page: the emulator receives the path flipped to Kling's bottom-left origin
    emulator.reset()
    kling = next(n["id"] for n in saved["nodes"] if n["type"] == NODE)
    kf.set_value(kling_page, kling, "seed", int(time.time()) % 100000)
    before = set(ui_host.history())
    kling_page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    deadline = time.monotonic() + 120
    prompt_id = None
    while prompt_id is None and time.monotonic() < deadline:
        prompt_id = next(iter(set(ui_host.history()) - before), None)
        time.sleep(0.3)
    assert prompt_id, "nothing was queued"
    entry = ui_host.wait(prompt_id, timeout=180)
    assert entry["status"]["status_str"] == "success"
    creates = [r for r in emulator.requests() if r["method"] == "POST" and r["path"].startswith("/v1/")]
    assert len(creates) == 1
    body = creates[0]["json"]
    assert body["dynamic_masks"][0]["trajectories"] == [{"x": x, "y": 383 - y} for x, y in value[0]]
    assert body["static_mask"] and len(body["dynamic_masks"]) == 1
    assert_no_page_errors(kling_page)


# --------------------------------------------------------------------------------------------------
# the README's pictures of the node (made here, in the newest frontend, in both canvases)

README_SHOTS = {"litegraph": "docs/images/node-litegraph.png", "vue": "docs/images/node-nodes2.png"}
UPDATE_DOCS_ENV = "KLING_UPDATE_DOCS_SCREENSHOTS"  # =1: write the README's pictures into docs/images/


def test_readme_shows_the_node_in_both_canvases():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for path in README_SHOTS.values():
        assert f"]({path})" in readme, f"the README does not show {path}"
        data = (REPO / path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 400_000, (path, len(data))


@pytest.mark.browser
def test_node_picture_for_the_readme(kling_page, ui_setup):
    """The Image to Video node with an end frame on a refusing combination: warning and fix shown, in this
    setup's canvas. In the newest frontend with KLING_UPDATE_DOCS_SCREENSHOTS=1 the picture replaces the
    README's (docs/images/), else it goes to artifacts/screenshots/<setup>/."""
    import os

    load_image = kf.add_node(kling_page, "LoadImage", (-300, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    model, mode, duration = _tail_cases()[0]
    for name, value in (("model_name", model), ("mode", mode), ("duration", duration)):
        kf.set_value(kling_page, node, name, value)
    kf.connect(kling_page, load_image, 0, node, "image_tail")
    kf.frame_node(kling_page, [node], zoom=0.85, top=120, left=300)
    kf.settle(kling_page, 400)
    st = kf.state(kling_page, node)
    assert problems_text(st) and fix_label(st), st["panel"]
    box = kling_page.evaluate("""(id) => {
        const el = document.querySelector(`[data-node-id="${id}"]`);
        if (el) { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }
        const n = app.graph.getNodeById(id);
        const [x, y] = window.__kt.toClient(n.pos[0], n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT);
        const s = app.canvas.ds.scale;
        return [x, y, n.size[0] * s, (n.size[1] + LiteGraph.NODE_TITLE_HEIGHT) * s];
    }""", node)
    margin = 12
    clip = {"x": max(0, box[0] - margin), "y": max(0, box[1] - margin),
            "width": box[2] + 2 * margin, "height": min(box[3] + 2 * margin, 900 - max(0, box[1] - margin))}
    from browser import SCREENSHOT_DIR
    target = SCREENSHOT_DIR / ui_setup.id / f"readme_node_{ui_setup.canvas}.png"
    if not ui_setup.pinned and os.environ.get(UPDATE_DOCS_ENV) == "1":
        target = REPO / README_SHOTS[ui_setup.canvas]
    target.parent.mkdir(parents=True, exist_ok=True)
    kling_page.page.screenshot(path=str(target), clip=clip)
    assert target.stat().st_size > 5_000
    assert_no_page_errors(kling_page)
