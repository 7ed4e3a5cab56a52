"""Connected inputs a combination refuses (an end frame, a camera move, a motion brush) in the real
frontend: the node keeps the user's choice, says why and fixes it with one click; a workflow saved that
way loads as saved. See frontend_checks.py for the setups."""
from __future__ import annotations

import pytest
from frontend_checks import (
    B64,
    NODE,
    PANEL,
    TABLE,
    assert_no_page_errors,
    assert_renders,
    fix_label,
    node_combination,
    problems_text,
    python_plan,
    python_valid,
    setting_name,
    shot,
    tail_cases,
)

from kling_api.errors import KlingValidationError
from kling_api.rules.request import ImageToVideoRequest
from kling_api.rules.validation import validate
from kling_devtools.browser import kling_frontend as kf

BRUSH = "KlingMotionBrush"
CAMERA = "KlingCameraControl"


@pytest.mark.browser
def test_end_frame_on_a_refusing_combination_warns_and_one_click_fixes(kling_page):
    load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    kf.frame_node(kling_page, [load_image, node], zoom=0.9)
    cases = tail_cases()
    assert any(TABLE.get(m).allowed_combos("image_tail") for m, _, _ in cases)
    assert any(not TABLE.get(m).allowed_combos("image_tail") for m, _, _ in cases)
    shots = 0
    for model, mode, duration in cases:
        kf.disconnect(kling_page, node, "image_tail")
        for name, value in (("model_name", model), (setting_name(model), mode), ("duration", duration)):
            kf.set_value(kling_page, node, name, value)
        st = kf.state(kling_page, node)
        assert not bool(problems_text(st)), (model, mode, duration, problems_text(st))

        kf.connect(kling_page, load_image, 0, node, "image_tail")
        st = kf.state(kling_page, node)
        assert st["tail_connected"]
        # the choice is untouched; the node says why and offers one button
        assert node_combination(st) == (model, mode, duration)
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
        fixed = node_combination(st)
        assert python_valid(*fixed, True), (model, mode, duration, fixed)
        assert not bool(problems_text(st)) and not bool(fix_label(st))
        if caps.allowed_combos("image_tail"):
            assert fixed[0] == model, "the model takes an end frame: only mode/duration should change"
        if shots < 2:
            shot(kling_page, f"frontend_end_frame_fixed_{model}")
            shots += 1
        # what would be queued is the fixed, valid combination
        prompt = kf.graph_to_prompt(kling_page)["output"][str(node)]["inputs"]
        assert (prompt["model_name"], prompt[setting_name(fixed[0])], prompt["duration"]) == fixed
        assert PANEL not in prompt
    assert_no_page_errors(kling_page)


@pytest.mark.browser
def test_workflow_saved_with_an_invalid_combination_loads_as_saved(kling_page):
    model, mode, duration = tail_cases()[0]
    load_image = kf.add_node(kling_page, "LoadImage", (-260, 100))
    node = kf.add_node(kling_page, NODE, (100, 100))
    for name, value in (("model_name", model), (setting_name(model), mode), ("duration", duration)):
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
    assert node_combination(st) == (model, mode, duration)
    assert bool(problems_text(st)) and "image_tail" in problems_text(st)
    assert bool(fix_label(st))
    again = next(n for n in kf.serialize_graph(kling_page)["nodes"] if n["type"] == NODE)
    assert again["widgets_values"] == saved_node["widgets_values"]  # nothing rewritten by loading
    shot(kling_page, "frontend_invalid_workflow_loaded")
    assert_no_page_errors(kling_page)


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
