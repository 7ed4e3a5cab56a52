"""The example workflows (example_workflows/*.json), without a host: each is what its script writes, has one
thumbnail, names only current models, and every Kling node in it passes the widget plan (no warning). The
host tests run them in a real ComfyUI against the emulator (tests/test_nodes_host.py, tests/test_audio_host.py).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from kling_api.rules.capabilities import capability_table, endpoint_models
from kling_api.rules.widget_plan import widget_plan
from scripts import make_example_workflows as make

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO / "example_workflows"
WORKFLOWS = sorted(FOLDER.glob("*.json"))
#: Kling Image to Video's widget values in order (scripts/make_example_workflows.kling_widgets).
IMAGE_WIDGETS = ("prompt", "negative_prompt", "model_name", "mode", "duration", "cfg_scale", "seed", "seed_control",
                 "external_task_id", "callback_url", "timeout", "concurrency", "frame_cap", "frame_stride", "max_side",
                 "sound", "resolution", "storyboard")
#: Kling Text to Video's (scripts/make_example_workflows.text_to_video).
TEXT_WIDGETS = ("prompt", "negative_prompt", "model_name", "mode", "duration", "aspect_ratio", "cfg_scale", "seed",
                "seed_control", "sound", "external_task_id", "callback_url", "timeout", "resolution", "storyboard")
RULE_NODES = {"KlingImageToVideo": ("image2video", IMAGE_WIDGETS), "KlingTextToVideo": ("text2video", TEXT_WIDGETS)}
SOCKETS = ("image_tail", "camera_control", "motion_brush")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_files_are_what_the_script_writes():
    assert sorted(f"{name}.json" for name in make.WORKFLOWS) == [p.name for p in WORKFLOWS]
    for name, build in make.WORKFLOWS.items():
        assert load(FOLDER / f"{name}.json") == json.loads(json.dumps(build())), \
            f"{name}.json is stale: run python -m scripts.make_example_workflows"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_each_example_has_one_thumbnail(path):
    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file(), f"{thumbnail.name} is missing: run python -m scripts.make_workflow_thumbnails"
    with Image.open(thumbnail) as picture:
        assert picture.format == "JPEG" and picture.width >= 640 and picture.height >= 360, picture
    assert sorted(p.name for p in FOLDER.glob(f"{path.stem}.*")) == sorted([path.name, thumbnail.name])


def test_no_thumbnail_without_its_workflow():
    assert sorted(p.stem for p in FOLDER.glob("*.jpg")) == [p.stem for p in WORKFLOWS]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_each_example_names_current_models_and_its_kling_nodes_pass_the_widget_plan(path):
    workflow = load(path)
    table = capability_table()
    for node in workflow["nodes"]:
        if node["type"] not in RULE_NODES:
            continue
        endpoint, names = RULE_NODES[node["type"]]
        assert len(node["widgets_values"]) == len(names), (path.name, node["widgets_values"])
        values = dict(zip(names, node["widgets_values"]))
        model = table.get(values["model_name"])
        assert model is not None and not model.retired, (path.name, values["model_name"])
        assert values["model_name"] in endpoint_models(endpoint), (path.name, values["model_name"])
        linked = [s["name"] for s in node["inputs"] if s["link"] is not None and s["name"] in SOCKETS]
        plan = widget_plan(endpoint, values, linked)
        assert plan["warning"] is None, (path.name, plan["warning"])
        log.info("%s: %s %s", path.name, values["model_name"], plan["info"])


def test_there_is_a_kling_3_0_turbo_example_as_its_page_has_it():
    """kling-3.0-turbo: a start frame only ("Currently, only First Frame is supported."), always with sound,
    720p or 1080p, 3-15 s, no negative prompt or cfg_scale (the new API has neither)."""
    workflow = load(FOLDER / "kling_turbo_image_to_video_sound.json")
    [node] = [n for n in workflow["nodes"] if n["type"] == "KlingImageToVideo"]
    values = dict(zip(IMAGE_WIDGETS, node["widgets_values"]))
    caps = capability_table().get("kling-3.0-turbo")
    assert values["model_name"] == caps.name and caps.is_new_standard and caps.sound_always
    assert values["resolution"] in caps.resolutions and values["duration"] in caps.durations
    assert values["negative_prompt"] == ""
    linked = {s["name"] for s in node["inputs"] if s["link"] is not None}
    assert linked == {"image"}  # no end frame, camera move or motion brush
    plan = widget_plan("image2video", values, [])
    assert not plan["widgets"]["cfg_scale"]["visible"] and not plan["widgets"]["mode"]["visible"]
    assert plan["widgets"]["resolution"]["visible"] and not plan["widgets"]["sound"]["visible"]
    info = " ".join(plan["info"])
    assert "always makes sound" in info and "needs an API key" in info
    # the VIDEO output (the downloaded mp4 with its sound) is what is saved
    save = next(n for n in workflow["nodes"] if n["type"] == "SaveVideo")
    link = next(l for l in workflow["links"] if l[3] == save["id"])
    assert (link[1], link[2]) == (node["id"], 2)
