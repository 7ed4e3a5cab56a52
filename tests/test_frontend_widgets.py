"""The Kling nodes' widgets in the real ComfyUI frontend, in headless Chromium: they follow the capability
table as a user picks models, modes, durations and sound, and a value the model refuses is said and
fixed with one click. The setups, and where expectations come from: frontend_checks.py."""
from __future__ import annotations

import json
import re

import pytest

from frontend_checks import (MODEL_NODES, MULTI_NODE, NODE, PANEL, REPO, SOUND_MODELS, TABLE, TEXT_NODE,
                             assert_no_internal_controls, assert_no_page_errors, assert_renders, fix_label,
                             problems_text, python_plan, python_valid, rule_info, shot, visible)
from kling_api.rules.capabilities import endpoint_models
from kling_devtools.browser import kling_frontend as kf


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
        if model in ("kling-v1-5", "kling-v2-master", "kling-v3"):
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
