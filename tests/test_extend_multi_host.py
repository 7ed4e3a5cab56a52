"""Kling Multi-Image to Video and Kling Video Extend inside a real ComfyUI, against the emulator:
the example workflows run, the requests carry what the nodes were given, refusals happen before
anything is sent, and Task Result finds an extend task by itself."""
from __future__ import annotations

import json
import random
import time

import pytest
from PIL import Image

from kling_devtools import host as ch
from kling_devtools.host_workflows import creates, kling_video, load_ui, mean_diff, node_id_of
from kling_devtools.sample_images import END_NAME, START_NAME
from kling_devtools.workflow_convert import ui_to_api

from kling_api.media.video import probe_video

MULTI = "/v1/videos/multi-image2video"
EXTEND = "/v1/videos/video-extend"
I2V = "/v1/videos/image2video"


pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingMultiImageToVideo", "KlingVideoExtend", "KlingTaskResult")
    return sample_host


def example(name: str, object_info: dict, kind: str) -> tuple[dict, dict, str]:
    """(UI workflow, API prompt with fresh seeds, id of the ``kind`` node)."""
    ui = load_ui(name)
    prompt = ui_to_api(ui, object_info)
    for node in prompt.values():
        if "seed" in node["inputs"]:
            node["inputs"]["seed"] = random.randrange(1 << 40)  # ComfyUI must not answer from its cache
    return ui, prompt, node_id_of(ui, kind)


def test_multi_image_example_sends_both_images_in_order_and_returns_the_video(host, object_info, emulator_process):
    ui, prompt, node = example("kling_multi_image_to_video", object_info, "KlingMultiImageToVideo")
    entry = host.run(prompt, timeout=240)
    body = creates(emulator_process, MULTI)[0]["json"]
    assert body["model_name"] == "kling-v1-6" and body["prompt"] and body["aspect_ratio"] == "16:9"
    assert len(body["image_list"]) == 2 and set(body["image_list"][0]) == {"image"}
    start, end = Image.open(host.input_dir / START_NAME), Image.open(host.input_dir / END_NAME)
    video = kling_video(host, entry, node)
    info = probe_video(video)
    assert info.width > info.height and info.frame_count == info.fps * 5
    frames = host.output_files(entry, node_id_of(ui, "PreviewImage"))
    assert len(frames) == info.frame_count
    with Image.open(frames[0]) as first:  # the emulator's first frame: the images side by side, in order
        w, h = first.size
        left, right = first.crop((0, 0, w // 2, h)), first.crop((w // 2, 0, w, h))
    assert mean_diff(left, start) < mean_diff(left, end)
    assert mean_diff(right, end) < mean_diff(right, start)
    assert host.output_files(entry, node_id_of(ui, "SaveVideo"))


def test_multi_image_refusals_send_nothing(host, object_info, emulator_process):
    _, prompt, node = example("kling_multi_image_to_video", object_info, "KlingMultiImageToVideo")
    with pytest.raises(ch.PromptRejected) as info:  # at queue time
        host.queue({**prompt, node: {**prompt[node], "inputs": {**prompt[node]["inputs"], "prompt": " "}}})
    assert "multi-image to video needs a prompt" in json.dumps(info.value.node_errors)
    # Five images (a batch of four and one more) are known only when the node runs: refused there.
    loader = prompt[node]["inputs"]["image_1"][0]
    prompt["90"] = {"class_type": "RepeatImageBatch", "inputs": {"image": [loader, 0], "amount": 4}}
    prompt[node]["inputs"]["image_1"] = ["90", 0]
    entry = host.run(prompt, timeout=120, check=False)
    assert entry["status"]["status_str"] == "error"
    assert "image_list: 5 images" in json.dumps(entry["status"]["messages"])
    assert creates(emulator_process) == []


def test_extend_example_extends_the_video_of_image_to_video(host, object_info, emulator_process):
    ui, prompt, node = example("kling_video_extend", object_info, "KlingVideoExtend")
    entry = host.run(prompt, timeout=300)
    source = kling_video(host, entry, node_id_of(ui, "KlingImageToVideo"))
    source_task = [t for t in emulator_process.tasks() if t["task_id"] == source.stem.removeprefix("Kling_")][0]
    body = creates(emulator_process, EXTEND)[0]["json"]
    assert body["video_id"] == source_task["task_result"]["videos"][0]["id"]
    assert body["prompt"].startswith("The camera keeps pushing in")
    extended, original = probe_video(kling_video(host, entry, node)), probe_video(source)
    assert (extended.width, extended.height, extended.fps) == (original.width, original.height, original.fps)
    assert extended.frame_count == original.frame_count + round(4.5 * original.fps)
    saved = host.output_files(entry, node_id_of(ui, "SaveVideo"))
    assert len(saved) == 1 and probe_video(saved[0]).frame_count == extended.frame_count


def test_extend_of_a_video_kling_does_not_extend_is_refused_before_sending(host, object_info, emulator_process):
    _, prompt, node = example("kling_video_extend", object_info, "KlingVideoExtend")
    i2v = next(k for k, v in prompt.items() if v["class_type"] == "KlingImageToVideo")
    prompt[i2v]["inputs"]["model_name"] = "kling-v2-5-turbo"
    entry = host.run(prompt, timeout=240, check=False)
    assert entry["status"]["status_str"] == "error"
    message = json.dumps(entry["status"]["messages"])
    assert "was made by kling-v2-5-turbo" in message and "kling-v1, kling-v1-5, kling-v1-6" in message
    assert [r["path"] for r in creates(emulator_process)] == [I2V]  # the extend was never sent


def test_empty_video_id_refused_at_queue_time(host, emulator_process):
    prompt = {"1": {"class_type": "KlingVideoExtend", "inputs": {
        "source_video_id": "", "prompt": "", "negative_prompt": "", "cfg_scale": 0.5, "seed": 1}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(prompt)
    assert "video_id" in json.dumps(info.value.node_errors)
    assert creates(emulator_process) == []


def test_task_result_finds_an_extend_task_without_being_told_its_endpoint(host, object_info, emulator_process):
    ui, prompt, node = example("kling_video_extend", object_info, "KlingVideoExtend")
    entry = host.run(prompt, timeout=300)
    video = kling_video(host, entry, node)
    task_id = video.stem.removeprefix("Kling_")
    video.unlink()  # as after a restart that lost the file: downloaded again, not paid again
    before, seen = len(creates(emulator_process)), len(emulator_process.requests())
    resume = {"1": {"class_type": "KlingTaskResult", "inputs": {"task": task_id, "external_task_id": ""}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    entry = host.run(resume, timeout=120)
    assert kling_video(host, entry, "1").name == f"Kling_{task_id}.mp4"
    assert len(creates(emulator_process)) == before
    queries = [r["path"] for r in emulator_process.requests()[seen:]
               if r["method"] == "GET" and r["path"].startswith("/v1/") and task_id in r["path"]]
    assert queries and all(p.startswith(EXTEND + "/") for p in queries)  # the ledger knew the endpoint


def test_cancel_while_an_extend_is_polling_interrupts_and_a_requeue_resumes_it(host, object_info, emulator_process):
    """Cancel and the ledger work for the new nodes as for image to video: the interrupted extend
    keeps running at Kling, and the same prompt again resumes it (no second extend is paid)."""
    _, prompt, node = example("kling_video_extend", object_info, "KlingVideoExtend")
    i2v = next(k for k, v in prompt.items() if v["class_type"] == "KlingImageToVideo")
    source_only = {k: v for k, v in prompt.items() if v["class_type"] in ("LoadImage", "KlingImageToVideo")}
    host.run({**source_only, "99": {"class_type": "PreviewImage", "inputs": {"images": [i2v, 0]}}},
             timeout=240)  # the source video first, quickly (ComfyUI then has it cached)
    emulator_process.set_config(processing_seconds=8)
    with host.ws_messages() as ws:
        prompt_id = host.queue(prompt)
        deadline = time.monotonic() + 60
        while not creates(emulator_process, EXTEND) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert creates(emulator_process, EXTEND), "the extend was never created"
        time.sleep(1.0)
        host.interrupt()
        ws.wait_for(lambda m: m.get("type") in ("execution_interrupted", "execution_error", "execution_success"),
                    timeout=10)
        kinds = [m.get("type") for m in ws.for_prompt(prompt_id)]
    assert "execution_interrupted" in kinds and "execution_error" not in kinds, kinds
    emulator_process.set_config(processing_seconds=0.5)
    entry = host.run(prompt, timeout=240)
    assert len(creates(emulator_process, EXTEND)) == 1
    assert probe_video(kling_video(host, entry, node)).frame_count > 0
