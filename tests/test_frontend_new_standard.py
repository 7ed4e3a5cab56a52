"""Kling's new-standard models in the real frontend (both canvases, the pinned and the newest frontend; see
frontend_checks.py): picked by a user's clicks, a new-standard model shows `resolution` instead of `mode`,
has no sound switch where it always has sound (kling-3.0-turbo), refuses an end frame with a warning and
one fix; a legacy model brings `mode` back. Expectations come from kling_api's widget plan."""
from __future__ import annotations

import pytest
from frontend_checks import (
    NODE,
    TABLE,
    TEXT_NODE,
    assert_no_page_errors,
    assert_renders,
    fix_label,
    pick,
    problems_text,
    python_plan,
    python_valid,
    rule_info,
    shot,
    visible,
)

from kling_devtools.browser import kling_frontend as kf

TURBO, LEGACY = "kling-3.0-turbo", "kling-v3"




@pytest.mark.browser
def test_turbo_shows_resolution_has_no_sound_switch_refuses_an_end_frame_and_v3_brings_mode_back(kling_page,
                                                                                                  ui_setup):
    caps = TABLE.get(TURBO)
    assert caps.resolutions and not caps.modes and caps.sound_always and not caps.allowed_combos("sound")
    load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [load_image, node], zoom=0.9)
    st = kf.state(kling_page, node)
    assert not TABLE.get(st["widgets"]["model_name"]["value"]).is_new_standard  # the default is a legacy model
    assert visible(st, "mode") and not visible(st, "resolution")

    pick(kling_page, node, "model_name", TURBO, ui_setup)
    st = kf.state(kling_page, node)
    assert visible(st, "resolution") and not visible(st, "mode"), st["order"]
    assert not visible(st, "sound") and not visible(st, "cfg_scale")
    assert st["widgets"]["resolution"]["values"] == list(caps.resolutions)
    assert st["widgets"]["duration"]["values"] == list(caps.durations)
    assert_renders(st, python_plan(NODE, st))
    info = rule_info(st["panel"]["info"].split("\n"))
    assert any("always makes sound" in line for line in info), info  # said, not switchable
    assert any("needs an API key" in line for line in info), info
    assert problems_text(st) == ""
    if not ui_setup.static_vue_widgets:  # the resolution menu offers the model's resolutions (a real click)
        assert kf.open_combo_menu(kling_page, node, "resolution") == list(caps.resolutions)
        kf.close_menus(kling_page)
    pick(kling_page, node, "resolution", "1080p", ui_setup)
    pick(kling_page, node, "duration", "3", ui_setup)
    shot(kling_page, "frontend_new_standard_turbo")
    queued = kf.graph_to_prompt(kling_page)["output"][str(node)]["inputs"]
    assert (queued["model_name"], queued["resolution"], queued["duration"]) == (TURBO, "1080p", "3")

    # an end frame: Turbo takes the first frame only; the choice is kept, the node says why, one click fixes
    kf.connect(kling_page, load_image, 0, node, "image_tail")
    st = kf.state(kling_page, node)
    assert st["tail_connected"] and st["widgets"]["model_name"]["value"] == TURBO
    assert "image_tail" in problems_text(st) and TURBO in problems_text(st), problems_text(st)
    assert_renders(st, python_plan(NODE, st, ["image_tail"]))
    label = fix_label(st)
    assert label.startswith("Fix: use ") and TURBO not in label, label
    shot(kling_page, "frontend_new_standard_turbo_end_frame")
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    fixed = st["widgets"]["model_name"]["value"]
    assert fixed != TURBO and not problems_text(st) and not fix_label(st), st["panel"]
    assert python_valid(fixed, st["widgets"]["resolution"]["value"], st["widgets"]["duration"]["value"], True,
                        st["widgets"]["sound"]["value"])
    kf.disconnect(kling_page, node, "image_tail")

    # back to a legacy model: mode again, no resolution, a sound switch
    pick(kling_page, node, "model_name", LEGACY, ui_setup)
    st = kf.state(kling_page, node)
    assert visible(st, "mode") and not visible(st, "resolution") and visible(st, "sound"), st["order"]
    assert st["widgets"]["mode"]["values"] == list(TABLE.get(LEGACY).modes)
    assert_renders(st, python_plan(NODE, st))
    assert not any("needs an API key" in line for line in rule_info(st["panel"]["info"].split("\n")))
    queued = kf.graph_to_prompt(kling_page)["output"][str(node)]["inputs"]
    assert queued["model_name"] == LEGACY and queued["mode"] in TABLE.get(LEGACY).modes
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_text_to_video_on_a_new_standard_model_shows_resolution_not_mode(kling_page, ui_setup):
    node = kf.add_node(kling_page, TEXT_NODE, (100, 100))
    kf.frame_node(kling_page, [node], zoom=0.9)
    for model in (TURBO, "kling-2.6", LEGACY):
        pick(kling_page, node, "model_name", model, ui_setup)
        st = kf.state(kling_page, node)
        caps = TABLE.get(model)
        assert visible(st, "resolution") == caps.is_new_standard, (model, st["order"])
        assert visible(st, "mode") == (not caps.is_new_standard), (model, st["order"])
        assert visible(st, "sound") == bool(caps.allowed_combos("sound")), model
        assert visible(st, "aspect_ratio"), model
        assert_renders(st, python_plan(TEXT_NODE, st))
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_a_negative_prompt_carried_to_a_new_api_model_is_named_and_one_click_clears_it(kling_page, ui_setup):
    """A workflow's negative prompt (the examples carry one) on a new-API model, which has no place for it:
    the node says so before anything is queued, and its fix empties the text; a legacy model keeps it."""
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [node], zoom=0.9)
    kf.set_value(kling_page, node, "negative_prompt", "blurry, distorted")  # typed, as text widgets are
    st = kf.state(kling_page, node)
    assert problems_text(st) == "", problems_text(st)  # the default legacy model takes it
    pick(kling_page, node, "model_name", TURBO, ui_setup)
    st = kf.state(kling_page, node)
    assert "negative_prompt" in problems_text(st) and TURBO in problems_text(st), problems_text(st)
    assert fix_label(st) == "Fix: clear negative_prompt"
    shot(kling_page, "frontend_new_standard_negative_prompt")
    kf.click_fix(kling_page, node)
    st = kf.state(kling_page, node)
    assert st["widgets"]["negative_prompt"]["value"] == "" and problems_text(st) == "", problems_text(st)
    assert st["widgets"]["model_name"]["value"] == TURBO  # only the text changed
    assert_no_page_errors(kling_page)
