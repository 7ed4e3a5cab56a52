"""The emulator's create validation: the 1201 messages Kling answers, what it accepts, masks that fail
the task, and loopback image URLs (see test_emulator.py for the rest)."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import requests

from emulator_http import (ENDPOINT, AUTH, START, START_RGB, TAIL, TAIL_RGB, assert_error, body, clean,  # noqa: F401
                           create, created_ok, decode, emu, picture, receiver, resized, video_of, wait)
from kling_api.emulator.errors import ApiError
from kling_api.emulator.rules import _camera
from kling_api.rules.capabilities import ModelCapabilities


# -- validation ----------------------------------------------------------------------------
def _masks(n: int = 1, points: int = 2, size: tuple[int, int] = (480, 320)) -> list[dict]:
    mask, _ = picture(*size)
    return [{"mask": mask, "trajectories": [{"x": 10 + i, "y": 10 + i} for i in range(points)]} for _ in range(n)]


#: Where the motion brush is allowed on a current model (kling-v1, which also took it at std/5, is discontinued).
BRUSH = {"model_name": "kling-v1-5", "mode": "pro"}
NINE_MB_NOT_IMAGE = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 1)).decode()


@pytest.mark.parametrize("fields, message", [
    ({"model_name": "kling-v9"}, "model_name(kling-v9) is invalid"),
    ({"model_name": "kling-v2-5-turbo", "image_tail": TAIL},
     "model/mode/duration(kling-v2-5-turbo/std/5) is not supported with image_tail"),
    ({"model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5", "image_tail": TAIL},
     "model/mode/duration(kling-v2-5-turbo/pro/5) is not supported with image_tail"),
    ({"mode": "ultra"}, "mode(ultra) is invalid"),
    ({"duration": "7"}, "model/mode/duration(kling-v2-1/std/7) is not supported"),
    ({"duration": "five"}, "duration(five) is invalid"),
    ({"static_mask": START}, "model/mode/duration(kling-v2-1/std/5) is not supported with static_mask"),
    ({"camera_control": {"type": "simple", "config": {"zoom": 5}}},
     "model/mode/duration(kling-v2-1/std/5) is not supported with camera_control"),
    ({"model_name": "kling-v2-5-turbo", "mode": "pro", "sound": "on"},
     "model/mode/duration(kling-v2-5-turbo/pro/5) is not supported with sound on"),
    ({"model_name": "kling-v2-6", "mode": "std", "sound": "on"},
     "model/mode/duration(kling-v2-6/std/5) is not supported with sound on"),
    ({"model_name": "kling-v2-6", "mode": "pro", "sound": "on", "image_tail": TAIL},
     "model/mode/duration(kling-v2-6/pro/5) is not supported with image_tail and sound on"),
    ({"sound": "loud"}, "sound(loud) is invalid"),
    ({"model_name": "kling-v1-5", "mode": "pro", "image_tail": TAIL, "camera_control": {"type": "simple"}},
     "image_tail, dynamic_masks/static_mask and camera_control cannot be used together"),
    ({**BRUSH, "static_mask": START, "camera_control": {"type": "simple"}},
     "image_tail, dynamic_masks/static_mask and camera_control cannot be used together"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple", "config": {"zoom": 5, "pan": 1}}},
     "camera_control.config must have exactly one non-zero value"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple", "config": {"zoom": 0}}},
     "camera_control.config must have exactly one non-zero value"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple", "config": {"roll": 10.5}}},
     "camera_control.config.roll(10.5) must be in [-10, 10]"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple", "config": {"spin": 1}}},
     "camera_control.config.spin is invalid"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple"}},
     "camera_control.config is required for type simple"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "down_back"}},
     "camera_control.type(down_back) is not supported with kling-v1-5"),
    ({"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "barrel_roll"}},
     "camera_control.type(barrel_roll) is invalid"),
    ({**BRUSH, "dynamic_masks": _masks(n=7)}, "dynamic_masks cannot have more than 6 items"),
    ({**BRUSH, "dynamic_masks": _masks(points=1)},
     "dynamic_masks[0].trajectories must have 2 to 77 points"),
    ({**BRUSH, "dynamic_masks": _masks(points=78)},
     "dynamic_masks[0].trajectories must have 2 to 77 points"),
    ({**BRUSH, "dynamic_masks": [{"mask": START, "trajectories": [{"x": 1, "y": 1}, {"x": 900, "y": 1}]}]},
     "dynamic_masks[0].trajectories[1](900,1) is outside the image"),
    ({**BRUSH, "dynamic_masks": [{"mask": START}]}, "dynamic_masks[0] must have mask and trajectories"),
    ({"model_name": "kling-v1-5", "mode": "std", "static_mask": START},
     "model/mode/duration(kling-v1-5/std/5) is not supported with static_mask"),
    ({"prompt": "x" * 2501}, "prompt cannot be longer than 2500 characters"),
    ({"negative_prompt": "x" * 2501}, "negative_prompt cannot be longer than 2500 characters"),
    ({"model_name": "kling-v1-5", "cfg_scale": 1.5}, "cfg_scale(1.5) must be in [0, 1]"),
    ({"model_name": "kling-v1-5", "cfg_scale": -0.1}, "cfg_scale(-0.1) must be in [0, 1]"),
    ({"image": None}, "image or image_tail is required"),
    ({"image": "data:image/png;base64," + START}, "image must be raw base64 without a data: prefix"),
    ({"image": "not base64 at all!"}, "image is not valid base64"),
    ({"image": NINE_MB_NOT_IMAGE}, "image size cannot exceed 10MB"),
    ({"image": base64.b64encode(b"hello, not an image").decode()}, "image is not a valid image"),
    ({"image": picture(480, 320, fmt="GIF")[0]}, "image format must be jpg, jpeg or png"),
    ({"image": picture(480, 299)[0]}, "image width and height must be at least 300px, got 480x299"),
    ({"image": picture(760, 300)[0]}, "image aspect ratio must be between 1:2.5 and 2.5:1, got 760x300"),
    ({"image": "ftp://example.com/a.png"}, "image url must be http or https"),
    ({"image": "https://example.com/a.png"},
     "image url download failed: example.com is not reachable from the emulator (it fetches only loopback URLs;"
     " send base64 or upload to /_emulator/uploads)"),
    ({"mode": "pro", "duration": "10", "image_tail": "data:image/png;base64,AAAA"},
     "image_tail must be raw base64 without a data: prefix"),
    ({"callback_url": "not a url"}, "callback_url is invalid"),
])
def test_validation_1201(emu, fields, message):
    assert_error(create(emu, body(**fields)), 400, 1201, message)
    assert emu.created_tasks() == []


@pytest.mark.parametrize("fields", [
    {"prompt": "x" * 2500},
    {"cfg_scale": 0.5},  # kling-v2-1 ignores it, as public clients that send it anyway find
    {"model_name": "kling-v1-5", "cfg_scale": 1},
    {"duration": 5},  # an int, as some public clients send
    {"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple", "config": {"zoom": -10}}},
    {**BRUSH, "static_mask": START, "dynamic_masks": _masks(n=6, points=77)},
    {"model_name": "kling-v2-6", "mode": "pro", "duration": "10", "image_tail": TAIL, "sound": "off"},
    {"model_name": "kling-v3", "duration": "3", "image_tail": TAIL, "sound": "on"},
    {"model_name": "kling-v2-master", "mode": None, "duration": "10"},
    {"image": picture(750, 300)[0]},  # exactly 2.5:1
    {"image": picture(400, 300, fmt="JPEG")[0]},
])
def test_validation_accepts(emu, fields):
    r = create(emu, body(**fields))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["task_status"] == "submitted"


KLING_V1_GONE = "The model 'kling-v1' has been discontinued and is no longer available."


@pytest.mark.parametrize("fields, endpoint", [
    ({"model_name": "kling-v1"}, ENDPOINT),
    ({"model_name": "kling-v1", "static_mask": START, "dynamic_masks": _masks()}, ENDPOINT),  # std/5, kling-v1's own
    ({"model_name": None, "model": "kling-v2-6"}, ENDPOINT),  # the old key reads as empty model_name: kling-v1
    ({"model_name": "kling-v1", "image": None, "aspect_ratio": "16:9"}, "/v1/videos/text2video"),
])
def test_kling_v1_is_answered_as_discontinued_by_default(emu, fields, endpoint):
    """Kling's live answer to a valid kling-v1 create (2026-09-20, /v1/videos/text2video): the emulator says
    the same by default (the status and code are its choice); no task is made."""
    assert emu.switches.snapshot().discontinued_models == "kling-v1"
    assert_error(create(emu, body(**fields), endpoint=endpoint), 400, 1201, KLING_V1_GONE)
    assert emu.created_tasks() == []


def test_kling_v1_still_makes_videos_when_the_switch_is_cleared(emu):
    """The table keeps the retired row (saved workflows get its successor named), so an emulator told that
    nothing is discontinued still serves kling-v1 (e.g. to replay an old recording)."""
    emu.configure(discontinued_models="")
    task_id = created_ok(emu, body(model_name="kling-v1", static_mask=START, dynamic_masks=_masks()))
    assert wait(emu, task_id)["task_status"] == "succeed"


def test_validation_body_not_json(emu):
    r = requests.post(emu.url + ENDPOINT, data=b"{not json", headers={**AUTH, "Content-Type": "application/json"},
                      timeout=10)
    assert_error(r, 400, 1200)
    assert_error(create(emu, ["a", "list"]), 400, 1200)


def test_camera_presets_take_no_config():
    fake = ModelCapabilities(name="fake", modes=("std",), durations=("5",), cfg_scale=False,
                             combos={"camera_control": ("*/*",)}, camera_types=("simple", "down_back"), output={})
    assert _camera(fake, "std", "5", "fake/std/5", {"type": "down_back"}) == {"type": "down_back"}
    assert _camera(fake, "std", "5", "fake/std/5", {"type": "down_back", "config": None}) == {"type": "down_back"}
    with pytest.raises(ApiError) as err:
        _camera(fake, "std", "5", "fake/std/5", {"type": "down_back", "config": {"zoom": 1}})
    assert err.value.code == 1201 and err.value.message == "camera_control.config must be empty for type down_back"


@pytest.mark.parametrize("mask_size, message", [
    ((300, 300), "static_mask aspect ratio does not match image"),
    ((240, 160), "static_mask and dynamic_masks must have the same resolution"),
])
def test_mask_mismatch_fails_the_task(emu, mask_size, message):
    """Reference section 3: masks of another aspect or resolution make the task fail, not the create."""
    static, _ = picture(*mask_size)
    task_id = created_ok(emu, body(**BRUSH, static_mask=static, dynamic_masks=_masks()))
    data = wait(emu, task_id)
    assert data["task_status"] == "failed" and data["task_status_msg"] == message
    assert "task_result" not in data and data["final_unit_deduction"] == "0"


def test_loopback_image_urls(emu, receiver):
    _, mp4 = video_of(emu, body(image=receiver.url + "/start.png"))
    frames, stream, _ = decode(mp4)
    assert np.abs(frames[0] - resized(START_RGB, stream.width, stream.height)).mean() < 8
    assert_error(create(emu, body(image=receiver.url + "/missing.png")), 400, 1201,
                 "image url download failed: HTTP 404")
    upload = requests.post(emu.url + "/_emulator/uploads", data=base64.b64decode(TAIL),
                           headers={"Content-Type": "image/png"}, timeout=10).json()["url"]
    assert upload.startswith(emu.url + "/_uploads/")
    assert requests.get(upload, timeout=10).content == base64.b64decode(TAIL)
    _, mp4 = video_of(emu, body(image=upload))
    frames, stream, _ = decode(mp4)
    assert np.abs(frames[0] - resized(TAIL_RGB, stream.width, stream.height)).mean() < 8
