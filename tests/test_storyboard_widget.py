"""The nodes' storyboard widget, through the library: one ``SECONDS: TEXT`` shot per line, the sum the node
shows against the duration, the warning and one-click fix of the widget plan, and which models show it."""
from __future__ import annotations

import pytest

from kling_api.errors import KlingValidationError
from kling_api.rules.request import Shot
from kling_api.rules.storyboard import shots_from_lines, storyboard_models
from kling_api.rules.widget_plan import widget_plan

THREE = "2: a boat leaves the harbour\n3: gulls circle the mast\n\n5: the sun sets behind the island\n"


def test_one_shot_per_line_blank_lines_skipped_and_no_text_is_no_storyboard():
    assert shots_from_lines(THREE) == (Shot(2, "a boat leaves the harbour"), Shot(3, "gulls circle the mast"),
                                       Shot(5, "the sun sets behind the island"))
    assert shots_from_lines("") == shots_from_lines("  \n ") == shots_from_lines(None) == ()


@pytest.mark.parametrize("text, line", [("2: fine\nthree: words", 2), ("a boat", 1), ("2.5: half", 1)])
def test_a_line_not_of_the_form_is_refused_naming_it(text, line):
    with pytest.raises(KlingValidationError) as info:
        shots_from_lines(text)
    assert info.value.field == f"storyboard line {line}" and "SECONDS:TEXT" in str(info.value)


def v3(**values) -> dict:
    return {"model_name": "kling-v3", "mode": "pro", "duration": "10", "sound": "off", "prompt": "",
            "storyboard": THREE, **values}


def test_the_node_shows_the_sum_and_takes_shots_that_add_up():
    plan = widget_plan("image2video", v3(), [])
    assert plan["warning"] is None, plan["warning"]
    assert "Storyboard: 3 shots: 2 + 3 + 5 = 10 s, the duration" in plan["info"]
    assert plan["widgets"]["storyboard"]["visible"]


def test_a_sum_that_misses_the_duration_is_refused_and_one_click_sets_the_duration():
    plan = widget_plan("image2video", v3(duration="5"), [])
    assert plan["warning"].startswith("shots: the shots sum to 10 s; duration is 5 s"), plan["warning"]
    assert "Storyboard: 3 shots: 2 + 3 + 5 = 10 s; duration is 5 s" in plan["info"]
    assert plan["fix"]["values"]["duration"] == "10" and plan["fix"]["values"]["model_name"] == "kling-v3"
    assert widget_plan("image2video", v3(**plan["fix"]["values"]), [])["warning"] is None


@pytest.mark.parametrize("endpoint, extra", [("image2video", {}), ("text2video", {"aspect_ratio": "16:9"})])
def test_a_prompt_beside_the_shots_is_named_and_one_click_clears_it(endpoint, extra):
    plan = widget_plan(endpoint, v3(prompt="a boat", **extra), [])
    assert plan["warning"].startswith("prompt:") and "shots" in plan["warning"], plan["warning"]
    assert plan["fix"] == {"label": "Fix: clear prompt", "values": {"prompt": ""}}
    assert widget_plan(endpoint, v3(**extra), [])["warning"] is None


def test_a_malformed_line_is_the_warning_with_no_combination_fix():
    plan = widget_plan("image2video", v3(storyboard="2: fine\nno seconds here"), [])
    assert plan["warning"].startswith("storyboard line 2=") and plan["fix"] is None, plan


@pytest.mark.parametrize("endpoint", ["image2video", "text2video"])
def test_the_widget_shows_for_the_models_that_take_a_storyboard_and_while_it_holds_one(endpoint):
    takers = set(storyboard_models(endpoint))
    assert {"kling-v3", "kling-3.0", "kling-3.0-turbo"} <= takers and "kling-2.6" not in takers
    base = {"mode": "std", "resolution": "720p", "duration": "5", "sound": "off", "aspect_ratio": "16:9",
            "prompt": "a boat"}
    for model in ("kling-v3", "kling-3.0", "kling-2.6", "kling-v2-5-turbo"):
        shown = widget_plan(endpoint, {**base, "model_name": model, "storyboard": ""}, [])["widgets"]["storyboard"]
        assert shown["visible"] is (model in takers), model
    held = widget_plan(endpoint, {**base, "model_name": "kling-2.6", "prompt": "", "storyboard": "5: a boat"}, [])
    assert held["widgets"]["storyboard"]["visible"] and "kling-2.6" in held["warning"], held["warning"]
