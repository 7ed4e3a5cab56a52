"""The nodes inside a real headless ComfyUI, against the emulator, through POST /prompt."""
from __future__ import annotations

import json
import random
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kling_devtools import host as ch
from kling_devtools.sample_images import END_NAME, START_NAME, write_sample_images
from kling_devtools.host_workflows import WORKFLOWS, creates, kling_video, load_ui, mean_diff, node_id_of
from kling_devtools.workflow_convert import ui_to_api

from kling_api.media.video import probe_video


pytestmark = [pytest.mark.host, pytest.mark.usefixtures("fresh_emulator")]


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo", "KlingTaskResult")
    return sample_host


def api_prompt(name: str, object_info: dict, **kling_inputs) -> tuple[dict, str]:
    ui = load_ui(name)
    prompt = ui_to_api(ui, object_info)
    kling = node_id_of(ui, "KlingImageToVideo")
    prompt[kling]["inputs"]["seed"] = random.randrange(1 << 40)  # a new seed: ComfyUI must not use its cache
    prompt[kling]["inputs"].update(kling_inputs)
    return prompt, kling


def frame_pngs(host: ch.ComfyHost, entry: dict, workflow: dict) -> list[Path]:
    return host.output_files(entry, node_id_of(workflow, "PreviewImage"))


def test_nodes_are_registered_with_their_public_interface(object_info):
    i2v = object_info["KlingImageToVideo"]
    assert i2v["display_name"] == "Kling Image to Video" and i2v["category"] == "Kling"
    assert list(i2v["input"]["required"]) == ["image", "prompt", "negative_prompt", "model_name", "mode",
                                              "duration", "cfg_scale", "seed"]
    assert list(i2v["input"]["optional"]) == ["image_tail", "external_task_id", "callback_url", "timeout",
                                              "concurrency", "camera_control", "motion_brush", "frame_cap",
                                              "frame_stride", "max_side", "sound", "resolution",
                                              "storyboard"]
    assert i2v["input"]["optional"]["sound"][1]["options"] == ["off", "on"]
    assert i2v["input"]["optional"]["resolution"][1]["options"] == ["720p", "1080p", "4k"]  # 4k: kling-3.0 only
    assert i2v["input"]["required"]["mode"][1]["options"] == ["std", "pro", "4k"]  # grown at the end; 4k: kling-v3
    assert i2v["input"]["optional"]["camera_control"][0] == "KLING_CAMERA_CONTROL"
    assert i2v["input"]["optional"]["motion_brush"][0] == "KLING_MOTION_BRUSH"
    camera = object_info["KlingCameraControl"]
    assert camera["category"] == "Kling" and camera["output"] == ["KLING_CAMERA_CONTROL"]
    assert list(camera["input"]["required"]) == ["type", "horizontal", "vertical", "pan", "tilt", "roll", "zoom"]
    assert camera["input"]["required"]["type"][1]["options"] == ["simple", "down_back", "forward_up",
                                                                 "right_turn_forward", "left_turn_forward"]
    assert all(camera["input"]["required"][a][1]["min"] == -10 and camera["input"]["required"][a][1]["max"] == 10
               for a in ("horizontal", "vertical", "pan", "tilt", "roll", "zoom"))
    brush = object_info["KlingMotionBrush"]
    assert brush["category"] == "Kling" and brush["output"] == ["KLING_MOTION_BRUSH"]
    assert list(brush["input"]["required"]) == ["trajectories"]
    assert list(brush["input"]["optional"]) == ["static_mask"] + [f"dynamic_mask_{i}" for i in range(1, 7)]
    assert all(spec[0] == "MASK" for spec in brush["input"]["optional"].values())
    assert i2v["output_name"] == ["frames", "fps", "video", "task_id", "video_id", "audio"]
    assert i2v["output"] == ["IMAGE", "FLOAT", "VIDEO", "STRING", "STRING", "AUDIO"]
    assert i2v["input"]["required"]["model_name"][1]["default"] == "kling-v2-5-turbo"
    assert object_info["KlingTaskResult"]["output_name"] == i2v["output_name"]


def test_workflow_a_image_to_video(host, object_info, emulator_process, tmp_path):
    ui = load_ui("kling_image_to_video")
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    with host.ws_messages() as ws:
        entry = host.run(prompt, timeout=180)
        texts = ws.progress_texts(kling)
    assert entry["status"]["status_str"] == "success"
    video = kling_video(host, entry, kling)
    info = probe_video(video)
    frames = frame_pngs(host, entry, ui)
    assert info.fps == 24 and info.frame_count == 24 * 5
    assert len(frames) == info.frame_count  # every frame of the video came out as IMAGE
    start = host.input_dir / START_NAME
    assert mean_diff(frames[0], start) < 12.0
    saved = host.output_files(entry, node_id_of(ui, "SaveVideo"))
    assert len(saved) == 1 and saved[0].suffix == ".mp4" and saved[0].stat().st_size > 0
    saved_info = probe_video(saved[0])
    assert saved_info.frame_count == info.frame_count and saved_info.fps == 24
    assert len(creates(emulator_process)) == 1
    body = creates(emulator_process)[0]["json"]
    assert body["model_name"] == "kling-v2-5-turbo" and body["mode"] == "std" and body["duration"] == "5"
    assert "cfg_scale" not in body and not body["image"].startswith("data:")
    assert any("elapsed" in t for t in texts), texts


def test_sound_on_kling_v2_6_pro_gives_audio_output_and_keeps_it_in_the_video(host, object_info,
                                                                          emulator_process):
    prompt, kling = api_prompt("kling_image_to_video", object_info, model_name="kling-v2-6", mode="pro",
                               duration="5", sound="on")
    # The audio output into CreateVideo (Save Audio and Preview Audio: tests/test_audio_host.py).
    prompt["990"] = {"class_type": "CreateVideo", "inputs": {"images": [kling, 0], "fps": [kling, 1],
                                                             "audio": [kling, 5]}}
    prompt["991"] = {"class_type": "SaveVideo", "inputs": {"video": ["990", 0], "filename_prefix": "kling_sound",
                                                           "format": "auto", "codec": "auto"}}
    entry = host.run(prompt, timeout=180)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert creates(emulator_process)[-1]["json"]["sound"] == "on"
    assert probe_video(kling_video(host, entry, kling)).has_audio  # the VIDEO output (the file) keeps its sound
    saved = host.output_files(entry, "991")
    assert len(saved) == 1 and probe_video(saved[0]).has_audio  # the audio output carried the sound
    import av
    with av.open(str(saved[0])) as container:
        seconds = float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
    assert 4.5 < seconds < 5.5, seconds


@pytest.mark.parametrize("duration", ["3", "15"])
def test_kling_v3_durations_3_and_15(host, object_info, emulator_process, duration):
    prompt, kling = api_prompt("kling_image_to_video", object_info, model_name="kling-v3", mode="std",
                               duration=duration, frame_cap=2)
    entry = host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert creates(emulator_process)[-1]["json"]["duration"] == duration
    info = probe_video(kling_video(host, entry, kling))
    assert abs(info.frame_count / info.fps - int(duration)) < 0.2


def test_status_text_shows_units_and_account_route_shows_remaining_units(host, object_info, emulator_process):
    prompt, kling = api_prompt("kling_image_to_video", object_info, model_name="kling-v2-5-turbo", mode="pro",
                               duration="10")
    with host.ws_messages() as ws:
        entry = host.run(prompt, timeout=180)
        texts = ws.progress_texts(kling)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert any("Kling units deducted: 4 (final_unit_deduction)" in t for t in texts), texts
    account = host.get_json("/kling/account")
    assert account["packs"] and account["packs"][0]["status"] == "online"
    assert account["remaining"] <= account["packs"][0]["total_quantity"] - 4
    assert "key" not in str(account).lower()


def test_text_to_video_node(host, object_info, emulator_process):
    t2v = object_info["KlingTextToVideo"]
    assert t2v["category"] == "Kling" and t2v["output_name"] == object_info["KlingImageToVideo"]["output_name"]
    assert t2v["input"]["required"]["aspect_ratio"][1]["options"] == ["16:9", "9:16", "1:1"]
    assert "kling-v1-5" not in t2v["input"]["required"]["model_name"][1]["options"]
    prompt = {"1": {"class_type": "KlingTextToVideo", "inputs": {
        "prompt": "a quiet lake at dawn", "negative_prompt": "", "model_name": "kling-v3", "mode": "std",
        "duration": "3", "aspect_ratio": "9:16", "cfg_scale": 0.5, "seed": random.randrange(1 << 40), "sound": "on"}},
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    with host.ws_messages() as ws:
        entry = host.run(prompt, timeout=180)
        texts = ws.progress_texts("1")
    assert entry["status"]["status_str"] == "success", entry["status"]
    body = [r for r in emulator_process.requests() if r["method"] == "POST"
            and r["path"] == "/v1/videos/text2video"][-1]["json"]
    assert body["aspect_ratio"] == "9:16" and body["duration"] == "3" and "image" not in body
    info = probe_video(kling_video(host, entry, "1"))
    assert info.height > info.width and info.has_audio
    assert any("Kling units deducted" in t for t in texts), texts
    with pytest.raises(ch.PromptRejected) as info:  # refused at queue time, nothing sent
        host.queue({**prompt, "1": {**prompt["1"], "inputs": {**prompt["1"]["inputs"], "prompt": " "}}})
    assert "text to video needs a prompt" in json.dumps(info.value.node_errors)


def test_text_to_video_example_workflow_runs(host, object_info, emulator_process):
    ui = load_ui("kling_text_to_video")
    prompt = ui_to_api(ui, object_info)
    kling = node_id_of(ui, "KlingTextToVideo")
    prompt[kling]["inputs"]["seed"] = random.randrange(1 << 40)
    entry = host.run(prompt, timeout=180)
    assert entry["status"]["status_str"] == "success", entry["status"]
    saved = host.output_files(entry, node_id_of(ui, "SaveVideo"))
    assert len(saved) == 1 and probe_video(saved[0]).width > probe_video(saved[0]).height  # 16:9


def test_kling_3_0_turbo_example_workflow_runs_on_the_new_api(host, object_info, emulator_process):
    """example_workflows/kling_turbo_image_to_video_sound.json with the host's API key (the new API takes no
    AK/SK): one create on /image-to-video/kling-3.0-turbo with the page's body (a first frame only, the
    resolution and an int duration, no audio switch, no negative prompt or cfg_scale), a video with sound,
    saved with its sound."""
    ui = load_ui("kling_turbo_image_to_video_sound")
    prompt, kling = api_prompt("kling_turbo_image_to_video_sound", object_info)
    entry = host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert creates(emulator_process) == []  # nothing on the legacy /v1/ paths
    [create] = creates(emulator_process, "/image-to-video/")
    assert create["path"] == "/image-to-video/kling-3.0-turbo"
    body = create["json"]
    assert [item["type"] for item in body["contents"]] == ["prompt", "first_frame"]
    assert body["settings"]["resolution"] == "720p" and body["settings"]["duration"] == 5
    assert "audio" not in body["settings"]
    assert not {"model_name", "mode", "negative_prompt", "cfg_scale", "image_tail"} & set(body)
    info = probe_video(kling_video(host, entry, kling))
    assert info.fps == 24 and info.frame_count == 24 * 5 and info.has_audio  # (the session emulator caps heights)
    [saved] = host.output_files(entry, node_id_of(ui, "SaveVideo"))
    assert probe_video(saved).has_audio and probe_video(saved).frame_count == info.frame_count


def test_workflow_b_start_and_end_frame(host, object_info, emulator_process):
    ui = load_ui("kling_start_end_frame")
    prompt, kling = api_prompt("kling_start_end_frame", object_info)
    entry = host.run(prompt, timeout=240)
    video = kling_video(host, entry, kling)
    info = probe_video(video)
    assert info.frame_count == 24 * 10
    frames = frame_pngs(host, entry, ui)
    assert len(frames) == info.frame_count
    assert mean_diff(frames[0], host.input_dir / START_NAME) < 12.0
    assert mean_diff(frames[-1], host.input_dir / END_NAME) < 12.0
    assert mean_diff(frames[-1], host.input_dir / START_NAME) > 30.0
    body = creates(emulator_process)[0]["json"]
    assert body["mode"] == "pro" and body["duration"] == "10" and body["image_tail"]


def test_invalid_combination_refused_at_queue_time(host, object_info, emulator_process):
    prompt, kling = api_prompt("kling_start_end_frame", object_info, mode="std", duration="5")
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(prompt)
    errors = json.dumps(info.value.node_errors)
    assert "image_tail needs mode=pro and duration=10 on kling-v2-5-turbo; got std/5" in errors
    assert creates(emulator_process) == []


def test_interrupt_while_polling_ends_as_interrupted_within_two_seconds(host, object_info, emulator_process):
    emulator_process.set_config(processing_seconds=60)
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    with host.ws_messages() as ws:
        prompt_id = host.queue(prompt)
        deadline = time.monotonic() + 30
        while not emulator_process.tasks() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert emulator_process.tasks(), "the task was never created"
        time.sleep(1.5)  # well into polling
        asked = time.monotonic()
        host.interrupt()
        ws.wait_for(lambda m: m.get("type") in ("execution_interrupted", "execution_error", "execution_success"),
                    timeout=10)
        ended = time.monotonic() - asked
        kinds = [m.get("type") for m in ws.for_prompt(prompt_id)]
    assert "execution_interrupted" in kinds and "execution_error" not in kinds, kinds
    assert ended < 2.0, ended
    entry = host.wait(prompt_id, timeout=10, check=False)
    assert entry["status"]["status_str"] == "error"  # ComfyUI files an interrupt under status "error"
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"])


def test_task_result_resumes_without_a_new_create(host, object_info, emulator_process):
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    entry = host.run(prompt, timeout=180)
    video = kling_video(host, entry, kling)
    task_id = video.stem.removeprefix("Kling_")
    video.unlink()  # as after a restart that lost the file: it must be downloaded again, not paid again
    before = len(creates(emulator_process))
    resume = {"1": {"class_type": "KlingTaskResult", "inputs": {"task": task_id, "external_task_id": ""}},
              "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    entry = host.run(resume, timeout=120)
    assert kling_video(host, entry, "1").name == f"Kling_{task_id}.mp4"
    assert len(host.output_files(entry, "2")) == 24 * 5
    assert len(creates(emulator_process)) == before


def test_workflow_c_is_valid_against_object_info(object_info):
    prompt = ui_to_api(load_ui("kling_text_to_image_to_video"), object_info)
    kinds = {n["class_type"] for n in prompt.values()}
    assert {"CheckpointLoaderSimple", "KSampler", "VAEDecode", "KlingImageToVideo", "CreateVideo",
            "SaveVideo"} <= kinds
    kling = next(k for k, n in prompt.items() if n["class_type"] == "KlingImageToVideo")
    decode = next(k for k, n in prompt.items() if n["class_type"] == "VAEDecode")
    assert prompt[kling]["inputs"]["image"] == [decode, 0]


def test_no_key_in_workflows_metadata_log_or_routes(host, object_info, emulator_process):
    key = emulator_process.api_key
    prompt, kling = api_prompt("kling_image_to_video", object_info)
    workflow = load_ui("kling_image_to_video")
    entry = host.wait(host.queue(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}}), timeout=180)
    blobs = [json.dumps(prompt), json.dumps(workflow), json.dumps(entry), host.log_text()]
    blobs += [p.read_bytes().decode("latin-1") for p in host.output_files(entry)]
    blobs += [(WORKFLOWS / f).read_text() for f in ("kling_image_to_video.json", "kling_start_end_frame.json")]
    blobs.append(host.request("GET", "/kling/credentials").body.decode())
    saved_video = host.output_files(entry, node_id_of(workflow, "SaveVideo"))[0].read_bytes()
    assert b"KlingImageToVideo" in saved_video  # the metadata really is embedded, and keyless
    for blob in blobs:
        assert key not in blob


def test_credentials_routes(host):
    status = host.request("GET", "/kling/credentials").json()
    assert status["configured"] is True and status["source"] == "environment"
    foreign = host.request("POST", "/kling/credentials", json_body={"api_key": "x" * 20},
                           headers={"Origin": "http://evil.example"})
    assert foreign.status == 403
    stored = host.request("POST", "/kling/credentials", json_body={"api_key": "stored-key-123"})
    assert stored.status == 200 and "stored-key-123" not in stored.body.decode()
    path = host.user_dir / "__kling" / "credentials.json"
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    leaked = host.request("GET", "/api/userdata/" + "__kling%2Fcredentials.json")
    assert leaked.status != 200
    cleared = host.request("DELETE", "/kling/credentials").json()
    assert not path.exists() and cleared["source"] == "environment"


def test_missing_credentials_tell_the_user_how_to_set_them(comfy_install, emulator_process, tmp_path):
    start, _ = write_sample_images(tmp_path)
    with ch.ComfyHost(env={"KLING_API_BASE": emulator_process.url}, install=comfy_install) as bare:
        bare.upload_image(start)
        prompt = ui_to_api(load_ui("kling_image_to_video"), bare.object_info())
        entry = bare.run(prompt, timeout=60, check=False)
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert "KLING_API_KEY" in error["exception_message"] and "Kling > API credentials" in error["exception_message"]
    assert creates(emulator_process) == []


def test_a_batch_of_two_makes_two_tasks_with_frames_concatenated_in_order(host, object_info, emulator_process):
    prompt, kling = api_prompt("kling_image_to_video", object_info, concurrency=2)
    load = next(k for k, n in prompt.items() if n["class_type"] == "LoadImage")
    prompt["90"] = {"class_type": "RepeatImageBatch", "inputs": {"image": [load, 0], "amount": 2}}
    prompt[kling]["inputs"]["image"] = ["90", 0]
    entry = host.run(prompt, timeout=240)
    task_ids = [r["json"]["external_task_id"] for r in creates(emulator_process)]
    assert len(task_ids) == 2 and len(set(task_ids)) == 2
    videos = host.output_files(entry, kling)
    assert len(videos) == 2 and all(v.name.startswith("Kling_") for v in videos)
    frames = [p for p in host.output_files(entry) if p.parent == host.temp_dir]
    assert len(frames) == 2 * 24 * 5
    start = host.input_dir / START_NAME
    assert mean_diff(frames[0], start) < 12.0 and mean_diff(frames[120], start) < 12.0


def test_frame_cap_stride_and_max_side_shape_the_frames_output(host, object_info, emulator_process):
    emulator_process.set_config(max_height=None)  # kling-v2-5-turbo std: full size, so max_side shrinks it
    ui = load_ui("kling_image_to_video")
    prompt, kling = api_prompt("kling_image_to_video", object_info, frame_cap=10, frame_stride=3, max_side=320)
    with host.ws_messages() as ws:
        entry = host.run(prompt, timeout=240)
        texts = ws.progress_texts(kling)
    info = probe_video(kling_video(host, entry, kling))
    assert info.frame_count == 24 * 5 and max(info.width, info.height) > 320
    frames = frame_pngs(host, entry, ui)
    assert len(frames) == 10  # every 3rd frame, at most 10
    with Image.open(frames[0]) as first:
        assert max(first.size) == 320 and abs(first.width / first.height - info.width / info.height) < 0.02
    assert any("decoding 10 frames" in t and "as IMAGE" in t for t in texts), texts  # memory stated beforehand


def test_an_image_tail_batch_must_be_one_or_the_image_batch(host, object_info, emulator_process):
    prompt, kling = api_prompt("kling_start_end_frame", object_info)
    start_node = next(k for k, n in prompt.items() if n["class_type"] == "LoadImage")
    prompt["90"] = {"class_type": "RepeatImageBatch", "inputs": {"image": [start_node, 0], "amount": 2}}
    prompt["91"] = {"class_type": "RepeatImageBatch", "inputs": {"image": [start_node, 0], "amount": 3}}
    prompt[kling]["inputs"]["image"] = ["90", 0]
    prompt[kling]["inputs"]["image_tail"] = ["91", 0]
    entry = host.run(prompt, timeout=60, check=False)
    error = next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
    assert "image_tail" in error["exception_message"] and "1 or 2" in error["exception_message"]
    assert creates(emulator_process) == []


# -- camera control and motion brush ---------------------------------------------------------------


def png_of(data: str) -> Image.Image:
    import base64
    import io

    return Image.open(io.BytesIO(base64.b64decode(data)))


def test_camera_control_workflow_sends_the_move_and_the_video_follows_it(host, object_info, emulator_process):
    ui = load_ui("kling_camera_control")
    prompt, kling = api_prompt("kling_camera_control", object_info)
    camera = node_id_of(ui, "KlingCameraControl")
    prompt[camera]["inputs"].update(zoom=0, horizontal=10)
    entry = host.run(prompt, timeout=240)
    body = creates(emulator_process)[0]["json"]
    assert (body["model_name"], body["mode"], body["duration"]) == ("kling-v1-5", "pro", "5")
    assert body["camera_control"] == {"type": "simple", "config": {
        "horizontal": 10.0, "vertical": 0.0, "pan": 0.0, "tilt": 0.0, "roll": 0.0, "zoom": 0.0}}
    assert "image_tail" not in body and "static_mask" not in body
    frames = frame_pngs(host, entry, ui)
    assert len(frames) == 30 * 5
    first = np.asarray(Image.open(frames[0]).convert("RGB"), dtype=np.float32)
    last = np.asarray(Image.open(frames[-1]).convert("RGB"), dtype=np.float32)
    w = first.shape[1]
    shift = w // 4  # horizontal +10: the emulator slides the view right by a quarter of the width
    rows = slice(first.shape[0] // 4, None)  # below the frame counter stamped top-left
    moved = np.abs(last[rows, 4:w - shift - 4] - first[rows, shift + 4:w - 4]).mean()
    still = np.abs(last[rows, 4:w - shift - 4] - first[rows, 4:w - shift - 4]).mean()
    assert moved < 6 and still > 3 * moved, (moved, still)  # the picture slid left by a quarter
    assert last[:, w - shift + 4:].mean() < 12  # beyond the picture


def test_motion_brush_workflow_sends_masks_and_flipped_paths(host, object_info, emulator_process):
    ui = load_ui("kling_motion_brush")
    prompt, kling = api_prompt("kling_motion_brush", object_info)
    brush = node_id_of(ui, "KlingMotionBrush")
    path = json.loads(prompt[brush]["inputs"]["trajectories"])[0]
    entry = host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success"
    body = creates(emulator_process)[0]["json"]
    assert (body["model_name"], body["mode"], body["duration"]) == ("kling-v1-5", "pro", "5")
    start = Image.open(host.input_dir / START_NAME)
    width, height = start.size
    static = png_of(body["static_mask"])
    [dynamic] = body["dynamic_masks"]
    mask = png_of(dynamic["mask"])
    assert static.size == mask.size == (width, height)  # the image's aspect, one shared resolution
    assert dynamic["trajectories"] == [{"x": x, "y": height - 1 - y} for x, y in path]
    sun_x, sun_y = path[0]
    assert np.asarray(mask.convert("L"))[sun_y, sun_x] == 255  # the sun is in the dynamic mask
    assert np.asarray(static.convert("L"))[sun_y, sun_x] == 0 and np.asarray(static.convert("L"))[height - 5, 5] == 255
    assert "camera_control" not in body and "image_tail" not in body


@pytest.mark.parametrize("workflow, inputs, message", [
    ("kling_camera_control", {"mode": "std"}, "camera_control needs mode=pro and duration=5 on kling-v1-5; got std/5"),
    ("kling_motion_brush", {"model_name": "kling-v2-5-turbo"}, "static_mask/dynamic_masks is not supported on "
                                                                "kling-v2-5-turbo at all"),
    ("kling_motion_brush", {"duration": "10"}, "static_mask/dynamic_masks needs mode=pro and duration=5 "
                                               "on kling-v1-5; got pro/10"),
    ("kling_motion_brush", {"mode": "std"}, "static_mask/dynamic_masks needs mode=pro and duration=5 "
                                            "on kling-v1-5; got std/5"),
])
def test_camera_and_brush_refused_at_queue_time_where_the_table_refuses_them(host, object_info, emulator_process,
                                                                             workflow, inputs, message):
    prompt, _ = api_prompt(workflow, object_info, **inputs)
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(prompt)
    assert message in json.dumps(info.value.node_errors)
    assert creates(emulator_process) == []


def test_camera_with_two_axes_and_a_short_path_are_refused_at_queue_time(host, object_info, emulator_process):
    ui = load_ui("kling_camera_control")
    prompt, _ = api_prompt("kling_camera_control", object_info)
    prompt[node_id_of(ui, "KlingCameraControl")]["inputs"].update(zoom=2, roll=1)
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(prompt)
    assert "exactly one non-zero axis" in json.dumps(info.value.node_errors)
    ui = load_ui("kling_motion_brush")
    prompt, _ = api_prompt("kling_motion_brush", object_info)
    prompt[node_id_of(ui, "KlingMotionBrush")]["inputs"]["trajectories"] = "[[[10, 10]]]"
    with pytest.raises(ch.PromptRejected) as info:
        host.queue(prompt)
    assert "dynamic_mask_1 has 1 points" in json.dumps(info.value.node_errors)
    assert creates(emulator_process) == []
