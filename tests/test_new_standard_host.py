"""Kling's new design standard (model in the path, API keys only, GET /tasks) through the nodes inside a
real headless ComfyUI, against the emulator, through POST /prompt: everywhere a user meets a new-standard
model. The library's side of the same is tests/test_new_standard_library.py."""
from __future__ import annotations

import base64
import json
import random
import time

import pytest
from PIL import Image

from kling_devtools import host as ch
from kling_devtools.emulator_process import EmulatorProcess
from kling_devtools.host_workflows import creates, kling_video, load_ui, node_id_of
from kling_devtools.http import http_request
from kling_devtools.sample_images import START_NAME, write_sample_images
from test_nodes_host import api_prompt
from test_reliability_host import ledger_rows

from kling_api.media.video import probe_video
from kling_api.remote.codecs import API_KEY_CONSOLE

pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]

ACCESS, SECRET = "ak-new-standard-test", "sk-new-standard-test-secret"


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo", "KlingTextToVideo", "KlingTaskResult")
    return sample_host


def i2v(object_info: dict, **inputs) -> tuple[dict, str]:
    """The image-to-video example with a new-standard model's inputs (no negative prompt: that API has none)."""
    return api_prompt("kling_image_to_video", object_info, negative_prompt="", **inputs)


def t2v(model: str, seed: int | None = None, **inputs) -> dict:
    node = {"prompt": "a paper boat on a quiet lake", "negative_prompt": "", "model_name": model, "mode": "std",
            "duration": "5", "aspect_ratio": "16:9", "cfg_scale": 0.5,
            "seed": random.randrange(1 << 40) if seed is None else seed, "sound": "off", "resolution": "720p"}
    node.update(inputs)
    return {"1": {"class_type": "KlingTextToVideo", "inputs": node},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def with_audio_saved(prompt: dict, kling: str) -> str:
    """Save Audio on the node's audio output (it fails when that output is None); returns its node id."""
    prompt["980"] = {"class_type": "SaveAudio", "inputs": {"audio": [kling, 5], "filename_prefix": "audio/new_std"}}
    return "980"


PREVIEW = node_id_of(load_ui("kling_image_to_video"), "PreviewImage")  # the example's frames output


def posts_to(emulator_process, path: str) -> list[dict]:
    return [r for r in emulator_process.requests() if r["method"] == "POST" and r["path"] == path]


def task_queries(emulator_process, since: int = 0) -> list[str]:
    """The GET /tasks paths the emulator was asked, from request number ``since`` on."""
    return [r["path"] for r in emulator_process.requests()[since:]
            if r["method"] == "GET" and r["path"].startswith("/tasks")]


def frame_size(path) -> tuple[int, int]:
    with Image.open(path) as picture:
        return picture.size


def assert_new_standard_body(body: dict, resolution: str, duration: int) -> None:
    for legacy in ("model_name", "mode", "negative_prompt", "cfg_scale", "image", "image_tail", "duration", "sound"):
        assert legacy not in body, (legacy, sorted(body))
    assert body["settings"]["resolution"] == resolution and body["settings"]["duration"] == duration
    assert isinstance(body["settings"]["duration"], int)


def test_turbo_at_1080p_sends_contents_and_settings_and_comes_back_at_1080p_with_sound(host, object_info,
                                                                                      emulator_process):
    emulator_process.set_config(max_height=None)  # the resolution the model makes, not the tests' tiny videos
    prompt, kling = i2v(object_info, model_name="kling-3.0-turbo", resolution="1080p", duration="3", frame_cap=2,
                        sound="off")  # a hidden sound widget left at off: Turbo has sound all the same
    audio = with_audio_saved(prompt, kling)
    with host.ws_messages() as ws:
        entry = host.run(prompt, timeout=300)
        texts = ws.progress_texts(kling)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert creates(emulator_process) == []  # nothing on the legacy paths
    (create,) = posts_to(emulator_process, "/image-to-video/kling-3.0-turbo")
    body = create["json"]
    assert_new_standard_body(body, "1080p", 3)
    assert "audio" not in body["settings"]  # Turbo's page has no audio field
    kinds = [item["type"] for item in body["contents"]]
    assert kinds.count("first_frame") == 1 and "last_frame" not in kinds, body["contents"]
    first = next(item for item in body["contents"] if item["type"] == "first_frame")
    assert first["url"] and not first["url"].startswith("data:")  # raw Base64, as the page allows
    prompt_item = next(item for item in body["contents"] if item["type"] == "prompt")
    assert prompt_item["text"] == prompt[kling]["inputs"]["prompt"]
    video = kling_video(host, entry, kling)
    info = probe_video(video)
    assert min(info.width, info.height) == 1080 and info.fps == 24 and info.has_audio, info
    assert abs(info.frame_count / info.fps - 3) < 0.2
    frames = host.output_files(entry, PREVIEW)  # the example's Preview Image: the frames output
    assert len(frames) == 2 and min(frame_size(frames[0])) == 1080
    assert len(host.output_files(entry, audio)) == 1  # the audio output was there
    task_id = video.stem.removeprefix("Kling_")
    assert any(f"task_ids={task_id}" in q for q in task_queries(emulator_process))  # polled on GET /tasks
    assert any("Kling units deducted: 3 (final_unit_deduction)" in t for t in texts), texts  # 1.0/s x 3 s


def test_kling_2_6_at_720p_is_silent_and_720p_and_sound_on_at_720p_is_refused_at_queue_time(host, object_info,
                                                                                           emulator_process):
    emulator_process.set_config(max_height=None)
    with pytest.raises(ch.PromptRejected) as refused:
        host.queue(i2v(object_info, model_name="kling-2.6", resolution="720p", duration="5", sound="on")[0])
    text = json.dumps(refused.value.node_errors)
    assert "kling-2.6" in text and "sound" in text and "1080p" in text, text
    assert emulator_process.requests() == []

    prompt, kling = i2v(object_info, model_name="kling-2.6", resolution="720p", duration="5", frame_cap=2,
                        mode="pro")  # a legacy mode left on the hidden widget: not sent, not the tier
    entry = host.run(prompt, timeout=300)
    (create,) = posts_to(emulator_process, "/image-to-video/kling-2.6")
    assert_new_standard_body(create["json"], "720p", 5)
    assert create["json"]["settings"].get("audio", "off") == "off"
    info = probe_video(kling_video(host, entry, kling))
    assert min(info.width, info.height) == 720 and not info.has_audio, info
    assert min(frame_size(host.output_files(entry, PREVIEW)[0])) == 720


def test_text_to_video_on_a_new_standard_model(host, emulator_process):
    prompt = t2v("kling-3.0", aspect_ratio="9:16", duration="4", sound="on")
    entry = host.run(prompt, timeout=300)
    assert creates(emulator_process) == []
    (create,) = posts_to(emulator_process, "/text-to-video/kling-3.0")
    body = create["json"]
    assert body["prompt"] == "a paper boat on a quiet lake" and "contents" not in body
    assert_new_standard_body(body, "720p", 4)
    assert body["settings"]["aspect_ratio"] == "9:16" and body["settings"]["audio"] == "native"
    info = probe_video(kling_video(host, entry, "1"))
    assert info.height > info.width and info.has_audio, info
    assert abs(info.frame_count / info.fps - 4) < 0.2


@pytest.fixture(scope="module")
def aksk_emulator():
    """An emulator that also knows an access key + secret key (so the legacy API works with them)."""
    with EmulatorProcess(api_key="unused-api-key", extra_args=["--max-height", "128", "--access-key", ACCESS,
                                                               "--secret-key", SECRET]) as emu:
        yield emu


@pytest.fixture(scope="module")
def aksk_host(comfy_install, aksk_emulator, tmp_path_factory):
    """A ComfyUI whose credentials are an access key + secret key (from the environment)."""
    env = {"KLING_API_BASE": aksk_emulator.url, "KLING_ACCESS_KEY": ACCESS, "KLING_SECRET_KEY": SECRET}
    with ch.ComfyHost(env=env, install=comfy_install) as comfy:
        for picture in write_sample_images(tmp_path_factory.mktemp("aksk-inputs")):
            comfy.upload_image(picture)
        yield comfy


@pytest.mark.parametrize("model", ["kling-3.0-turbo", "kling-2.5-turbo"])
def test_an_access_key_with_a_new_standard_model_is_refused_at_queue_time(aksk_host, aksk_emulator, model):
    aksk_emulator.reset()
    info = aksk_host.object_info()
    for prompt in (i2v(info, model_name=model, resolution="720p", duration="5")[0], t2v(model)):
        with pytest.raises(ch.PromptRejected) as refused:
            aksk_host.queue(prompt)
        assert refused.value.status == 400
        text = json.dumps(refused.value.node_errors)
        assert f"{model} is on Kling's new API, which accepts only an API key" in text, text
        assert API_KEY_CONSOLE in text and "KLING_API_KEY" in text, text  # what is needed, and where to get it
    assert aksk_emulator.requests() == []  # nothing was sent


def test_the_same_access_key_still_reaches_a_legacy_model(aksk_host, aksk_emulator):
    aksk_emulator.reset()
    prompt, kling = i2v(aksk_host.object_info(), model_name="kling-v2-5-turbo", mode="std", duration="5",
                        frame_cap=2)
    entry = aksk_host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    (create,) = creates(aksk_emulator)
    assert create["path"] == "/v1/videos/image2video" and create["json"]["model_name"] == "kling-v2-5-turbo"


def task_result(task_id: str) -> dict:
    return {"1": {"class_type": "KlingTaskResult", "inputs": {"task": task_id, "external_task_id": ""}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def wait_for_status(emulator_process, task_id: str, wanted: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = http_request("GET", f"{emulator_process.url}/tasks?task_ids={task_id}",
                              headers={"Authorization": f"Bearer {emulator_process.api_key}"}).json()
        if answer["data"] and answer["data"][0]["status"] == wanted:
            return
        assert time.monotonic() < deadline, answer
        time.sleep(0.2)


def test_task_result_loads_a_new_standard_task_by_id_without_a_create(host, object_info, emulator_process):
    # a task this ComfyUI made (the ledger knows its endpoint), its file gone as after a lost disk
    prompt, kling = i2v(object_info, model_name="kling-2.5-turbo", resolution="720p", duration="5")
    video = kling_video(host, host.run(prompt, timeout=240), kling)
    task_id = video.stem.removeprefix("Kling_")
    video.unlink()
    # and a task made elsewhere (another machine, the CLI): this ComfyUI's ledger has never heard of it
    picture = base64.b64encode((host.input_dir / START_NAME).read_bytes()).decode()
    made = http_request("POST", f"{emulator_process.url}/image-to-video/kling-3.0-turbo",
                        json_body={"contents": [{"type": "first_frame", "url": picture}], "settings": {"duration": 3}},
                        headers={"Authorization": f"Bearer {emulator_process.api_key}"})
    assert made.status == 200, made.body
    foreign = made.json()["data"]["id"]
    wait_for_status(emulator_process, foreign, "succeeded")
    before = len([r for r in emulator_process.requests() if r["method"] == "POST"])
    for wanted, frames in ((task_id, 24 * 5), (foreign, 24 * 3)):
        since = len(emulator_process.requests())
        entry = host.run(task_result(wanted), timeout=120)
        assert kling_video(host, entry, "1").name == f"Kling_{wanted}.mp4"
        assert len(host.output_files(entry, "2")) == frames
        asked = task_queries(emulator_process, since)
        assert any(f"task_ids={wanted}" in q for q in asked), asked  # found on the new standard's query
    assert len([r for r in emulator_process.requests() if r["method"] == "POST"]) == before  # nothing created


def test_a_restart_while_kling_works_resumes_the_new_standard_task_through_the_ledger(comfy_install,
                                                                                     emulator_process, tmp_path):
    base = tmp_path / "comfy"
    env = {"KLING_API_BASE": emulator_process.url, "KLING_API_KEY": emulator_process.api_key}
    start, _ = write_sample_images(tmp_path)
    emulator_process.set_config(processing_seconds=8)
    with ch.ComfyHost(env=env, install=comfy_install, base_dir=base) as first:
        first.upload_image(start)
        prompt, kling = i2v(first.object_info(), model_name="kling-3.0", resolution="720p", duration="5",
                            seed=515151)
        first.queue(prompt)
        deadline = time.monotonic() + 60
        while not posts_to(emulator_process, "/image-to-video/kling-3.0") and time.monotonic() < deadline:
            time.sleep(0.1)
        (task,) = emulator_process.tasks()
        assert task["status"] in ("submitted", "processing"), task
    # ComfyUI stopped while Kling was still working on the task
    (row,) = ledger_rows(base)
    assert row["task_id"] and row["status"] != "succeed", row
    since = len(emulator_process.requests())
    with ch.ComfyHost(env=env, install=comfy_install, base_dir=base) as second:  # restarted
        entry = second.run(prompt, timeout=240)
        video = kling_video(second, entry, kling)
    assert video.name == f"Kling_{row['task_id']}.mp4"
    assert len(posts_to(emulator_process, "/image-to-video/kling-3.0")) == 1  # paid once
    assert len(emulator_process.tasks()) == 1
    asked = task_queries(emulator_process, since)
    assert asked and all(f"task_ids={row['task_id']}" in q for q in asked), asked  # by the ledger's task id
    (row,) = ledger_rows(base)
    assert row["status"] == "succeed" and row["creates"] == 1 and row["video_path"] == str(video)


def test_a_negative_prompt_on_a_new_standard_model_is_refused_by_name_before_anything_is_sent(host, object_info,
                                                                                               emulator_process):
    prompt, _ = api_prompt("kling_image_to_video", object_info, model_name="kling-3.0-turbo", resolution="720p",
                           duration="5", negative_prompt="blurry, distorted")
    entry = host.run(prompt, timeout=60, check=False)
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert "negative_prompt is not taken by Kling's new API (kling-3.0-turbo)" in error["exception_message"], error
    assert emulator_process.requests() == []
