"""4K in the emulator, raw HTTP as Kling's pages have it: legacy ``mode: "4k"`` on kling-v3 only (image and
text to video; Kling's changelog kling-updates-api.md, 04/23/2026: "Set the mode parameter value to 4k",
"Text-to-Video: kling-v3 model", "Image-to-Video: kling-v3 model", "3 units deducted per second") and
``settings.resolution: "4k"`` on kling-3.0 only (kling-omni-3.0-i2v.md / -t2v.md). The videos are real
H.264 of the asked geometry (capped by the tests' max_height; one uncapped 2160p test is in test_4k.py)."""
from __future__ import annotations

import pytest
import requests

from emulator_http import (AUTH, MAX_HEIGHT, START, TAIL, assert_error, body, clean, create, decode,  # noqa: F401
                           emu, video_of, wait)
from kling_api.emulator.videos import output_geometry
from kling_api.rules.capabilities import capability_table
from test_emulator_new_standard import FIRST, LAST, created, finished, i2v, post, t2v

TEXT = "/v1/videos/text2video"
MULTI = "/v1/videos/multi-image2video"


@pytest.mark.parametrize("fields", [
    {},
    {"duration": "15", "sound": "on"},
    {"duration": "3", "image_tail": TAIL},  # "just like in PRO mode": pro's end frame and sound stay
], ids=["plain", "15s-sound", "3s-end-frame"])
def test_kling_v3_takes_mode_4k_on_image_to_video_and_bills_3_units_a_second(emu, fields):
    data, video = video_of(emu, body(model_name="kling-v3", mode="4k", **fields))
    seconds = int(fields.get("duration", "5"))
    assert data["final_unit_deduction"] == f"{3 * seconds}", data  # the changelog's 3 units per second
    frames, facts, kinds = decode(video)
    # 480x320 start image: 3:2, as the 4k short side (2160) capped to the tests' height
    assert (facts.codec, facts.width, facts.height) == ("h264", 192, MAX_HEIGHT), facts
    assert ("audio" in kinds) is (fields.get("sound") == "on")
    assert len(frames) == seconds * 24


def test_kling_v3_takes_mode_4k_on_text_to_video(emu):
    payload = {"model_name": "kling-v3", "mode": "4k", "duration": "3", "prompt": "a lighthouse",
               "aspect_ratio": "9:16"}
    data, video = video_of(emu, payload, endpoint=TEXT)
    assert data["final_unit_deduction"] == "9", data
    _, facts, _ = decode(video)
    assert facts.height == MAX_HEIGHT and facts.width < facts.height, facts  # 2160x3840 capped


#: Every current legacy model but kling-v3 (image to video), and the legacy text-to-video models but kling-v3.
LEGACY_REFUSED = [(path, name) for path, models in (
    ("/v1/videos/image2video", [m for m in capability_table().model_names
                                if not capability_table().get(m).is_new_standard and m != "kling-v3"]),
    (TEXT, ["kling-v1-6", "kling-v2-master", "kling-v2-1-master", "kling-v2-5-turbo", "kling-v2-6"]),
) for name in models]


@pytest.mark.parametrize("endpoint, model", LEGACY_REFUSED,
                         ids=[f"{e.rsplit('/', 1)[1]}-{m}" for e, m in LEGACY_REFUSED])
def test_every_other_legacy_model_refuses_mode_4k_with_a_1201(emu, endpoint, model):
    payload = body(model_name=model, mode="4k") if endpoint != TEXT else \
        {"model_name": model, "mode": "4k", "duration": "5", "prompt": "a lighthouse"}
    assert_error(create(emu, payload, endpoint=endpoint), 400, 1201, f"model/mode({model}/4k) is not supported")
    assert emu.created_tasks() == []


def test_multi_image_to_video_refuses_mode_4k(emu):
    payload = {"model_name": "kling-v1-6", "mode": "4k", "prompt": "two", "image_list": [{"image": START}]}
    assert_error(create(emu, payload, endpoint=MULTI), 400, 1201, "model/mode(kling-v1-6/4k) is not supported")


def test_kling_3_0_takes_resolution_4k_with_a_last_frame_and_audio_at_3_units_a_second(emu):
    done = finished(emu, created(emu, "/image-to-video/kling-3.0",
                                 i2v(FIRST, LAST, resolution="4k", duration=3, audio="native")))
    assert done["status"] == "succeeded" and done["billing"][0]["amount"] == "9", done
    video = requests.get(done["outputs"][0]["url"], timeout=30).content
    _, facts, kinds = decode(video)
    assert facts.codec == "h264" and facts.height == MAX_HEIGHT and "audio" in kinds, (facts, kinds)


@pytest.mark.parametrize("path", ["/image-to-video/kling-2.6", "/image-to-video/kling-2.5-turbo",
                                  "/image-to-video/kling-3.0-turbo", "/text-to-video/kling-2.6",
                                  "/text-to-video/kling-2.5-turbo", "/text-to-video/kling-3.0-turbo"])
def test_the_other_new_api_models_refuse_resolution_4k(emu, path):
    payload = i2v(resolution="4k") if "image-to-video" in path else t2v(resolution="4k")
    assert_error(post(emu, path, payload), 400, 1201,
                 f"settings.resolution value '4k' is invalid for {path.rsplit('/', 1)[1]}")


def test_4k_geometry_is_3840_by_2160_on_both_standards():
    table = capability_table()
    for model in ("kling-v3", "kling-3.0"):
        assert output_geometry(table.get(model), "4k", 16 / 9, None) == (3840, 2160, 24)
        assert output_geometry(table.get(model), "4k", 9 / 16, None) == (2160, 3840, 24)
