"""A queue-time refusal stands under the inputs its node's rules read, not under every input.

ComfyUI attaches the text a node's validate_inputs returns to each input of that method's signature (and
to ``input_types`` when it takes the linked types), so each node names only what its queue-time rules read;
ComfyUI's own range checks keep the other inputs, and the text fields' formats are checked when the node
runs, still before anything is sent.
"""
from __future__ import annotations

import json
import random

import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import creates, load_ui, node_id_of
from kling_devtools.workflow_convert import ui_to_api

from kling_api.rules.motion import CAMERA_AXES

pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]

#: What each node's queue-time rules read: the combination (and the spend guard's), the linked types,
#: and prompt where the endpoint needs one.
I2V_RULES = {"model_name", "mode", "duration", "sound", "resolution", "storyboard", "input_types"}  # shots add up
T2V_RULES = {"model_name", "mode", "duration", "prompt", "aspect_ratio", "sound", "resolution", "storyboard"}
MULTI_RULES = {"model_name", "mode", "duration", "prompt", "aspect_ratio", "input_types"}
CAMERA_RULES = {"type", *CAMERA_AXES}
BRUSH_RULES = {"trajectories", "input_types"}
TEXT_FIELDS = {"prompt", "negative_prompt", "external_task_id", "callback_url"}


def workflow_prompt(object_info: dict, workflow: str, node_type: str, **inputs) -> tuple[dict, str]:
    ui = load_ui(workflow)
    prompt = ui_to_api(ui, object_info)
    node = node_id_of(ui, node_type)
    prompt[node]["inputs"].update(inputs)
    for other in prompt.values():  # a new seed: ComfyUI must not answer from its cache
        if "seed" in other["inputs"]:
            other["inputs"]["seed"] = random.randrange(1 << 40)
    return prompt, node


def refusal_inputs(host, prompt: dict, node: str) -> tuple[set[str], str]:
    """The inputs the node's refusal stands under, and its text; every error must be the custom one."""
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(prompt)
    errors = info.value.node_errors[node]["errors"]
    assert {error["type"] for error in errors} == {"custom_validation_failed"}, errors
    return {error["extra_info"]["input_name"] for error in errors}, json.dumps(errors)


@pytest.mark.parametrize("workflow, node_type, inputs, words, rules", [
    ("kling_image_to_video", "KlingImageToVideo", {"duration": "7"}, "duration", I2V_RULES),
    ("kling_start_end_frame", "KlingImageToVideo", {"mode": "std", "duration": "5"},
     "image_tail needs mode=pro and duration=10 on kling-v2-5-turbo", I2V_RULES),
    ("kling_text_to_video", "KlingTextToVideo", {"model_name": "kling-v2-1"}, "does not make videos from text",
     T2V_RULES),
    ("kling_multi_image_to_video", "KlingMultiImageToVideo", {"duration": "7"}, "duration", MULTI_RULES),
    ("kling_camera_control", "KlingCameraControl", {"zoom": 2, "roll": 1}, "exactly one non-zero axis",
     CAMERA_RULES),
    ("kling_motion_brush", "KlingMotionBrush", {"trajectories": "[[[10, 10]]]"}, "dynamic_mask_1 has 1 points",
     BRUSH_RULES),
])
def test_a_refusal_names_exactly_the_inputs_the_rules_read(sample_host, object_info, emulator_process, workflow,
                                                          node_type, inputs, words, rules):
    prompt, node = workflow_prompt(object_info, workflow, node_type, **inputs)
    named, text = refusal_inputs(sample_host, prompt, node)
    present = set(prompt[node]["inputs"]) | {"input_types"}
    assert named == rules & present, text
    assert words in text
    if "prompt" not in rules:
        assert not named & TEXT_FIELDS, text  # a model/duration mismatch is not the prompt's
    assert creates(emulator_process) == []


@pytest.mark.parametrize("node_type, inputs, rules, words", [
    ("KlingVideoExtend", {"source_video_id": "two words", "prompt": "on", "negative_prompt": "", "cfg_scale": 0.5,
                          "seed": 1}, {"source_video_id"}, "video_id"),
    ("KlingTaskResult", {"task": " ", "external_task_id": ""}, {"task", "external_task_id"},
     "give a task_id or an external_task_id"),
])
def test_nodes_without_the_table_name_only_what_they_read(sample_host, emulator_process, node_type, inputs, rules,
                                                          words):
    prompt = {"1": {"class_type": node_type, "inputs": inputs},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    named, text = refusal_inputs(sample_host, prompt, "1")
    assert named == rules and words in text, text
    assert creates(emulator_process) == []


def test_comfyuis_own_range_check_keeps_an_input_the_rules_do_not_read(sample_host, object_info):
    prompt, node = workflow_prompt(object_info, "kling_image_to_video", "KlingImageToVideo", cfg_scale=3.0)
    with pytest.raises(ch.PromptRejected) as info:
        sample_host.queue(prompt)
    errors = info.value.node_errors[node]["errors"]
    assert [(e["type"], e["extra_info"]["input_name"]) for e in errors] == [("value_bigger_than_max", "cfg_scale")]


@pytest.mark.parametrize("field, value, words", [
    ("prompt", "x" * 2600, "prompt has 2600 characters; at most 2500 are allowed"),
    ("external_task_id", "not ok!", "external_task_id"),
])
def test_a_text_fields_format_is_refused_when_the_node_runs_before_anything_is_sent(
        sample_host, object_info, emulator_process, field, value, words):
    prompt, node = workflow_prompt(object_info, "kling_image_to_video", "KlingImageToVideo", **{field: value})
    entry = sample_host.run(prompt, timeout=120, check=False)
    assert entry["status"]["status_str"] == "error"
    assert words in json.dumps(entry["status"]["messages"])
    assert creates(emulator_process) == []
