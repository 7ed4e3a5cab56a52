"""The emulator's multi-image2video and video-extend endpoints over real HTTP on loopback.

Same envelope, auth, lifecycle and query/list as image2video (see test_emulator.py; the helpers
and fixtures are emulator_http.py's); videos are tiny (max_height 128) and the lifecycle short.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import requests
from PIL import Image

from kling_api.rules.capabilities import capability_table, endpoint_facts
from kling_api.emulator.errors import ApiError
from kling_api.emulator.rules import SourceVideo, check_extend_create
from kling_api.emulator.videos import output_geometry
from emulator_http import (AUTH, ENDPOINT, MAX_HEIGHT, START, assert_error, body, clean, create, created_ok,  # noqa: F401
                           decode, emu, get, settled, video_of, wait)

MULTI = "/v1/videos/multi-image2video"
EXTEND = "/v1/videos/video-extend"
TEXT = "/v1/videos/text2video"
COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 40)]
FPS = 30  # kling-v1-6's output row, std and pro


def solid(colour: tuple[int, int, int], width: int = 400, height: int = 400) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def multi_body(count: int = 2, **fields) -> dict:
    out = {"model_name": "kling-v1-6", "prompt": "a collage", "mode": "std", "duration": "5",
           "image_list": [{"image": solid(c)} for c in COLOURS[:count]]}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def column_colours(frame: np.ndarray, count: int) -> list[np.ndarray]:
    """Mean colour of the middle of each of ``count`` equal columns (rows clear of the frame counter)."""
    height, width, _ = frame.shape
    out = []
    for k in range(count):
        centre = int((k + 0.5) * width / count)
        span = max(2, width // count // 4)
        out.append(frame[height // 3: 2 * height // 3, centre - span: centre + span].reshape(-1, 3).mean(0))
    return out


def source_task(emu, model: str = "kling-v1-6") -> dict:
    """A succeeded image2video task of ``model`` (its data, with task_result)."""
    data, _ = video_of(emu, body(model_name=model))
    return data


def extend(emu, video_id: str, **fields) -> requests.Response:
    return create(emu, {"video_id": video_id, **fields}, endpoint=EXTEND)


# -- multi-image2video ---------------------------------------------------------------------
def test_multi_image_video_starts_with_the_images_side_by_side_in_order(emu):
    data, video = video_of(emu, multi_body(4), endpoint=MULTI)
    result = data["task_result"]["videos"][0]
    assert result["duration"] == "5" and result["url"].endswith(".mp4") and data["final_unit_deduction"] == "1"
    frames, stream, kinds = decode(video)
    width, height, fps = output_geometry(capability_table().get("kling-v1-6"), "std", 16 / 9, MAX_HEIGHT)
    assert kinds == ["video"] and stream.codec == "h264"
    assert (stream.width, stream.height) == (width, height) == (228, 128)
    assert fps == FPS and len(frames) == 5 * FPS
    for got, want in zip(column_colours(frames[0], 4), COLOURS):
        assert np.abs(got - want).max() < 25, (got, want)


def test_multi_image_order_follows_the_list_and_aspect_ratio_sets_the_frame(emu):
    items = [{"image": solid(COLOURS[2])}, {"image": solid(COLOURS[0])}]
    _, video = video_of(emu, multi_body(image_list=items, aspect_ratio="9:16", mode="pro"), endpoint=MULTI)
    frames, stream, _ = decode(video)
    assert (stream.width, stream.height) == (72, 128)
    left, right = column_colours(frames[0], 2)
    assert np.abs(left - COLOURS[2]).max() < 25 and np.abs(right - COLOURS[0]).max() < 25


@pytest.mark.parametrize("fields, message", [
    ({"image_list": [{"image": solid(c)} for c in COLOURS + [(0, 0, 0)]]},
     "image_list cannot have more than 4 items, got 5"),
    ({"prompt": None}, "prompt is required"),
    ({"prompt": "  "}, "prompt is required"),
    ({"model_name": "kling-v1-5"}, "model_name(kling-v1-5) is invalid"),
    ({"model_name": "kling-v2-6"}, "model_name(kling-v2-6) is invalid"),
    ({"model_name": None}, "model_name(None) is invalid"),
    ({"image_list": []}, "image_list is required"),
    ({"image_list": "abc"}, "image_list is invalid"),
    ({"image_list": [{"image": solid(COLOURS[0])}, {"url": "x"}]}, "image_list[1].image is required"),
    ({"image_list": [{"image": solid(COLOURS[0], 200, 400)}]},
     "image_list[0].image width and height must be at least 300px, got 200x400"),
    ({"image_list": [{"image": solid(COLOURS[0], 800, 300)}]},
     "image_list[0].image aspect ratio must be between 1:2.5 and 2.5:1, got 800x300"),
    ({"image_list": [{"image": "data:image/png;base64," + solid(COLOURS[0])}]},
     "image_list[0].image must be raw base64 without a data: prefix"),
    ({"duration": "7"}, "model/mode/duration(kling-v1-6/std/7) is not supported"),
    ({"mode": "fast"}, "mode(fast) is invalid"),
    ({"aspect_ratio": "4:3"}, "aspect_ratio(4:3) is invalid"),
    ({"callback_url": "ftp://x"}, "callback_url is invalid"),
])
def test_multi_image_refusals(emu, fields, message):
    assert_error(create(emu, multi_body(**fields), endpoint=MULTI), 400, 1201, message)
    assert emu.created_tasks() == []


def test_multi_image_query_by_external_task_id_and_list_are_per_endpoint(emu):
    task_id = created_ok(emu, multi_body(1, external_task_id="multi-ext-1"), MULTI)
    other = created_ok(emu, body(), ENDPOINT)
    by_ext = get(emu, "multi-ext-1", MULTI).json()["data"]
    assert by_ext["task_id"] == task_id and by_ext["task_info"]["external_task_id"] == "multi-ext-1"
    listed = requests.get(emu.url + MULTI, params={"pageNum": 1, "pageSize": 10}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in listed["data"]] == [task_id]
    # Kling's query is per endpoint: neither task is found on the other's path.
    assert_error(get(emu, task_id, ENDPOINT), 404, 1203)
    assert_error(get(emu, "multi-ext-1", ENDPOINT), 404, 1203)
    assert_error(get(emu, other, MULTI), 404, 1203)
    # external_task_id stays unique across the account's endpoints.
    assert_error(create(emu, body(external_task_id="multi-ext-1")), 400, 1201,
                 "external_task_id(multi-ext-1) already exists")
    assert wait(emu, task_id, endpoint=MULTI)["task_status"] == "succeed"


@pytest.mark.parametrize("path", [MULTI, EXTEND])
def test_new_endpoints_need_auth_and_refuse_other_methods(emu, path):
    assert_error(requests.post(emu.url + path, json={}, timeout=10), 401, 1001)
    assert_error(requests.put(emu.url + path, json={}, headers=AUTH, timeout=10), 404, 1202)
    assert_error(get(emu, "no-such-task", path), 404, 1203)
    assert_error(requests.post(emu.url + path, data=b"[1,", headers=AUTH, timeout=10), 400, 1200)


# -- video-extend --------------------------------------------------------------------------
def test_extend_adds_frames_after_the_whole_source(emu):
    source = source_task(emu)
    src = source["task_result"]["videos"][0]
    src_frames, src_stream, _ = decode(requests.get(src["url"], timeout=10).content)
    src_geometry = (src_stream.average_rate, src_stream.width, src_stream.height)
    r = extend(emu, src["id"], prompt="and then", callback_url="http://127.0.0.1:9/cb")
    assert r.status_code == 200, r.text
    task_id = r.json()["data"]["task_id"]
    data = wait(emu, task_id, endpoint=EXTEND)
    assert data["task_status"] == "succeed", data
    video = data["task_result"]["videos"][0]
    assert video["duration"] == "9.5" and video["id"] != src["id"]
    assert data["final_unit_deduction"] == "0.9"  # 4.5 s of std at 1 unit per 5 s
    frames, stream, kinds = decode(requests.get(video["url"], timeout=10).content)
    added = round(endpoint_facts("video-extend")["seconds_added"] * FPS)
    assert kinds == ["video"] and stream.codec == "h264"
    assert (stream.average_rate, stream.width, stream.height) == src_geometry == (FPS, 192, 128)
    assert len(src_frames) == 5 * FPS and len(frames) == len(src_frames) + added == 285
    for i in (0, len(src_frames) // 2, len(src_frames) - 1):  # the source, as it was
        assert np.abs(frames[i] - src_frames[i]).mean() < 4, i
    # The new part carries on from the source's last frame, then moves away from it.
    assert np.abs(frames[len(src_frames)] - src_frames[-1]).mean() < 8
    assert np.abs(frames[-1] - src_frames[-1]).mean() > 2 * np.abs(frames[len(src_frames)] - src_frames[-1]).mean()
    # The callback names the parent video (reference 5.4).
    payloads = settled(lambda: [c["payload"] for c in emu.callbacks if c["payload"]["task_id"] == task_id],
                       lambda got: any(p["task_status"] == "succeed" for p in got))  # recorded by another thread
    assert payloads and payloads[-1]["task_info"]["parent_video"] == {"id": src["id"], "url": src["url"],
                                                                      "duration": "5"}
    # Queried on its own endpoint only; its video can be extended again.
    assert_error(get(emu, task_id, ENDPOINT), 404, 1203)
    assert emu.find_video(video["id"]).duration == "9.5"


def test_extend_of_an_extend_of_a_multi_image_video(emu):
    data, _ = video_of(emu, multi_body(2), endpoint=MULTI)
    first = data["task_result"]["videos"][0]
    once = wait(emu, created_ok(emu, {"video_id": first["id"], "external_task_id": "ext-1"}, EXTEND),
                endpoint=EXTEND)
    mid = once["task_result"]["videos"][0]
    twice = wait(emu, created_ok(emu, {"video_id": mid["id"], "cfg_scale": 0.5}, EXTEND), endpoint=EXTEND)
    last = twice["task_result"]["videos"][0]
    assert (mid["duration"], last["duration"]) == ("9.5", "14")
    assert len({first["id"], mid["id"], last["id"]}) == 3
    frames, _, _ = decode(requests.get(last["url"], timeout=10).content)
    first_frames, _, _ = decode(requests.get(first["url"], timeout=10).content)
    assert len(frames) == 5 * FPS + 2 * 135
    assert np.abs(frames[0] - first_frames[0]).mean() < 5
    assert get(emu, "ext-1", EXTEND).json()["data"]["task_id"] == once["task_id"]


def test_extend_refuses_a_video_of_a_model_that_cannot_be_extended(emu):
    data, _ = video_of(emu, {"model_name": "kling-v2-5-turbo", "mode": "pro", "prompt": "a city"}, endpoint=TEXT)
    video_id = data["task_result"]["videos"][0]["id"]
    assert_error(extend(emu, video_id), 400, 1201,
                 f"video_id({video_id}) is not supported: only videos generated by "
                 "kling-v1, kling-v1-5, kling-v1-6 can be extended")


@pytest.mark.parametrize("fields, message", [
    ({"video_id": "no-such-video"}, "video_id(no-such-video) is invalid: no succeeded task has a video with this id"),
    ({}, "video_id is required"),
    ({"video_id": 12}, "video_id must be a string"),
])
def test_extend_refuses_a_missing_or_unknown_video_id(emu, fields, message):
    assert_error(create(emu, fields, endpoint=EXTEND), 400, 1201, message)
    assert emu.created_tasks() == []


def test_extend_refuses_bad_fields_and_an_unfinished_source(emu):
    task_id = created_ok(emu, body(model_name="kling-v1-6"))
    unfinished = emu.find_task(task_id).video_id  # not shown until the task succeeds, nor extendable
    assert_error(extend(emu, unfinished), 400, 1201)
    video_id = wait(emu, task_id)["task_result"]["videos"][0]["id"]
    assert_error(extend(emu, video_id, cfg_scale=1.5), 400, 1201, "cfg_scale(1.5) must be in [0, 1]")
    assert_error(extend(emu, video_id, prompt=7), 400, 1201, "prompt must be a string")


def _source(duration: str, model: str = "kling-v1-6") -> SourceVideo:
    return SourceVideo(video_id="v", url="http://x/v.mp4", model=capability_table().get(model), mode="pro",
                       duration=duration, data=b"")


def test_extend_total_is_capped_at_180_seconds():
    order = check_extend_create({"video_id": "v"}, lambda _: _source("175.5"))
    assert (order.duration, order.mode, order.model.name, order.added_seconds) == ("180", "pro", "kling-v1-6", 4.5)
    with pytest.raises(ApiError) as caught:
        check_extend_create({"video_id": "v"}, lambda _: _source("176"))
    assert (caught.value.code, caught.value.message) == (
        1201, "video_id(v) cannot be extended: the total duration would be 180.5s, more than 180s")
