"""Storyboards end to end in a real ComfyUI against the emulator: the node's storyboard widget (one
``SECONDS: TEXT`` shot per line) sent as legacy ``multi_shot`` + ``multi_prompt`` for kling-v3 (with an end
frame too) and as the new API's shot syntax with ``settings.multi_shot`` for kling-3.0; shots that do not add
up to the duration are refused at queue time with nothing sent."""
from __future__ import annotations

import json
import random

import pytest

from kling_devtools import host as ch
from kling_devtools.sample_images import END_NAME, START_NAME

from kling_api.media.video import probe_video
from kling_api.rules.endpoints import IMAGE2VIDEO

pytestmark = [pytest.mark.host]

BOARD = "2: a boat leaves the harbour\n3: gulls circle the mast\n5: the sun sets behind the island"
SHOTS = [(2, "a boat leaves the harbour"), (3, "gulls circle the mast"), (5, "the sun sets behind the island")]


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo", "KlingTextToVideo", "SaveVideo")
    return sample_host


def creates(emulator, path: str) -> list[dict]:
    return [r for r in emulator.requests() if r["method"] == "POST" and r["path"] == path]


def image_prompt(with_tail: bool = False, **inputs) -> dict:
    kling = {"image": ["1", 0], "prompt": "", "negative_prompt": "", "model_name": "kling-v3", "mode": "pro",
             "duration": "10", "cfg_scale": 0.5, "seed": random.randrange(1 << 40), "storyboard": BOARD, **inputs}
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": START_NAME}},
              "2": {"class_type": "KlingImageToVideo", "inputs": kling},
              "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 2], "filename_prefix": "storyboard/v3",
                                                          "format": "auto", "codec": "auto"}}}
    if with_tail:
        prompt["4"] = {"class_type": "LoadImage", "inputs": {"image": END_NAME}}
        kling["image_tail"] = ["4", 0]
    return prompt


@pytest.mark.parametrize("with_tail", [False, True], ids=["first frame", "first and last frame"])
def test_a_kling_v3_storyboard_is_sent_as_multi_shot_and_makes_one_video_of_its_length(host, fresh_emulator,
                                                                                       with_tail):
    entry = host.run(image_prompt(with_tail), timeout=300)
    (sent,) = creates(fresh_emulator, IMAGE2VIDEO.create_path)
    body = sent["json"]
    assert body["multi_shot"] is True and body["shot_type"] == "customize", body
    assert [(int(s["duration"]), s["prompt"]) for s in body["multi_prompt"]] == SHOTS
    assert [s["index"] for s in body["multi_prompt"]] == [1, 2, 3]
    assert body["mode"] == "pro" and body["duration"] == "10" and not body.get("prompt")
    assert bool(body.get("image_tail")) is with_tail
    (video,) = [p for p in host.output_files(entry, "3") if p.suffix == ".mp4"]
    assert abs(probe_video(video).duration - 10) < 0.2


def test_shots_that_do_not_add_up_are_refused_at_queue_time_and_nothing_is_sent(host, fresh_emulator):
    with pytest.raises(ch.PromptRejected) as refused:
        host.queue(image_prompt(duration="5"))
    text = json.dumps(refused.value.node_errors)
    assert "the shots sum to 10 s; duration is 5 s" in text, text
    with pytest.raises(ch.PromptRejected) as refused:
        host.queue(image_prompt(storyboard="2: fine\nno seconds"))
    assert "storyboard line 2" in json.dumps(refused.value.node_errors)
    assert fresh_emulator.requests() == []


def test_a_kling_3_0_storyboard_is_the_pages_shot_syntax_with_multi_shot_on(host, fresh_emulator):
    board = "4: a paper boat on a puddle\n6: rain stops and the sun comes out"
    prompt = {"1": {"class_type": "KlingTextToVideo", "inputs": {
        "prompt": "", "negative_prompt": "", "model_name": "kling-3.0", "mode": "std", "resolution": "720p",
        "duration": "10", "aspect_ratio": "16:9", "cfg_scale": 0.5, "seed": random.randrange(1 << 40),
        "sound": "off", "storyboard": board}},
        "2": {"class_type": "SaveVideo", "inputs": {"video": ["1", 2], "filename_prefix": "storyboard/three",
                                                    "format": "auto", "codec": "auto"}}}
    entry = host.run(prompt, timeout=300)
    (sent,) = creates(fresh_emulator, "/text-to-video/kling-3.0")
    body = sent["json"]
    assert body["prompt"] == "shot 1, 4, a paper boat on a puddle; shot 2, 6, rain stops and the sun comes out;"
    assert body["settings"]["multi_shot"] is True and body["settings"]["duration"] == 10, body
    (video,) = [p for p in host.output_files(entry, "2") if p.suffix == ".mp4"]
    assert abs(probe_video(video).duration - 10) < 0.2
