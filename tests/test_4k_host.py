"""4K through the nodes inside a real headless ComfyUI, against the emulator, through POST /prompt: a kling-3.0
task at resolution 4k is queued and its 2160p mp4 saved with the frames output unlinked (a 3 s 4K clip would
be 7 GB of IMAGE frames; unlinked, none is decoded); kling-v3 text to video sends mode 4k; a model without
4K is refused at queue time with its reason, nothing sent. The rules' side is tests/test_4k.py."""
from __future__ import annotations

import json
import random

import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import kling_video
from kling_devtools.sample_images import START_NAME

from kling_api.media.video import probe_video

pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]

NOT_DECODED = "frames output not linked: no frames decoded"


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo", "KlingTextToVideo", "SaveVideo", "PreviewImage")
    return sample_host


def image_to_video(**inputs) -> dict:
    """Load Image -> Kling Image to Video -> Save Video of its VIDEO output; nothing reads the frames."""
    node = {"image": ["1", 0], "prompt": "a lighthouse at dusk", "negative_prompt": "", "model_name": "kling-3.0",
            "mode": "std", "duration": "3", "cfg_scale": 0.5, "seed": random.randrange(1 << 40), "sound": "off",
            "resolution": "4k", **inputs}
    return {"1": {"class_type": "LoadImage", "inputs": {"image": START_NAME}},
            "2": {"class_type": "KlingImageToVideo", "inputs": node},
            "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 2], "filename_prefix": "four_k/video",
                                                        "format": "auto", "codec": "auto"}}}


def creates(emulator_process) -> list[dict]:
    return [r for r in emulator_process.requests() if r["method"] == "POST" and not r["path"].startswith("/tasks")]


def test_a_kling_3_0_4k_task_is_queued_and_its_2160p_mp4_saved_without_decoding_frames(host, emulator_process):
    emulator_process.set_config(max_height=None)  # the 2160p Kling makes, not the tests' tiny videos
    with host.ws_messages() as ws:
        entry = host.run(image_to_video(), timeout=300)
        texts = ws.progress_texts("2")
    assert entry["status"]["status_str"] == "success", entry["status"]
    (create,) = creates(emulator_process)
    assert create["path"] == "/image-to-video/kling-3.0", create["path"]
    settings = create["json"]["settings"]
    assert settings["resolution"] == "4k" and settings["duration"] == 3 and "mode" not in create["json"], settings
    assert any(NOT_DECODED in text for text in texts), texts
    assert any("Kling units deducted: 9 (final_unit_deduction)" in t for t in texts), texts  # 3.0/s x 3 s
    info = probe_video(kling_video(host, entry, "2"))
    assert min(info.width, info.height) == 2160 and info.fps == 24, info  # the 5:3 sample image: 3600x2160
    (saved,) = [p for p in host.output_files(entry, "3") if p.suffix == ".mp4"]
    assert probe_video(saved).height == 2160


def test_kling_v3_text_to_video_sends_mode_4k(host, emulator_process):
    prompt = {"1": {"class_type": "KlingTextToVideo", "inputs": {
        "prompt": "a paper boat on a quiet lake", "negative_prompt": "", "model_name": "kling-v3", "mode": "4k",
        "duration": "3", "aspect_ratio": "16:9", "cfg_scale": 0.5, "seed": random.randrange(1 << 40),
        "sound": "on", "resolution": "720p"}},  # a resolution left on the hidden widget: a legacy model's is mode
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    entry = host.run(prompt, timeout=300)  # the emulator's default cap: small frames
    assert entry["status"]["status_str"] == "success", entry["status"]
    (create,) = creates(emulator_process)
    assert create["path"] == "/v1/videos/text2video"
    assert (create["json"]["model_name"], create["json"]["mode"]) == ("kling-v3", "4k"), create["json"]
    assert "resolution" not in create["json"] and create["json"]["sound"] == "on"


@pytest.mark.parametrize("inputs, words", [
    ({"model_name": "kling-2.6", "resolution": "4k"}, "resolution: 4k is kling-3.0 only"),
    ({"model_name": "kling-3.0-turbo", "resolution": "4k"}, "resolution: 4k is kling-3.0 only"),
    ({"model_name": "kling-v2-6", "mode": "4k", "duration": "5"}, "mode: 4k is kling-v3 only"),
])
def test_4k_on_a_model_without_it_is_refused_at_queue_time(host, emulator_process, inputs, words):
    with pytest.raises(ch.PromptRejected) as refused:
        host.queue(image_to_video(**inputs))
    text = json.dumps(refused.value.node_errors)
    assert words in text and inputs["model_name"] in text, text
    assert emulator_process.requests() == []
