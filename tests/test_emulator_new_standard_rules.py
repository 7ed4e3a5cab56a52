"""The emulator's new-standard create rules, one page rule per row: what each of Kling's pages
(kling-3.0-turbo-i2v/-t2v, kling-omni-3.0-i2v/-t2v for kling-3.0, kling-2.6-i2v/-t2v, kling-2.5-turbo-i2v/-t2v)
refuses, with the 1201 message that names the field, and what they accept. Rows marked "emulator's choice"
are where the pages are silent (research note 13). Helpers and fixtures: test_emulator_new_standard.py."""
from __future__ import annotations

import io

import numpy as np
import pytest
import requests
from PIL import Image

from emulator_http import START, TAIL, assert_error, clean, emu, picture, receiver  # noqa: F401
from kling_api.emulator.videos import output_geometry
from kling_api.rules.capabilities import capability_table
from test_emulator_new_standard import FIRST, LAST, created, finished, i2v, post, t2v

TURBO, V3, V26, V25 = ("/image-to-video/kling-3.0-turbo", "/image-to-video/kling-3.0", "/image-to-video/kling-2.6",
                       "/image-to-video/kling-2.5-turbo")
TURBO_T, V3_T, V26_T, V25_T = (p.replace("image-to-video", "text-to-video") for p in (TURBO, V3, V26, V25))
ELEMENT = lambda n: {"type": "element", "element_id": f"el-{n}", "id": str(n)}  # noqa: E731
VOICE = lambda n: {"type": "voice", "voice_id": f"vo-{n}", "id": str(n)}  # noqa: E731
PROMPT = lambda text: {"type": "prompt", "text": text}  # noqa: E731
frame = lambda kind, size: {"type": kind, "url": picture(*size)[0]}  # noqa: E731

REFUSED = [
    # settings.resolution: the pages' enums
    (V26, i2v(resolution="4k"), "settings.resolution value '4k' is invalid for kling-2.6"),
    (TURBO_T, t2v(resolution="4k"), "settings.resolution value '4k' is invalid for kling-3.0-turbo"),
    (V25, i2v(resolution="480p"), "settings.resolution value '480p' is invalid for kling-2.5-turbo"),
    # settings.duration: an int, 3..15 on 3.0 and turbo, 5 or 10 on 2.6 and 2.5-turbo
    (V3, i2v(duration="5"), "settings.duration value '5' is invalid: it must be an integer"),
    (V3, i2v(duration=5.0), "settings.duration value '5.0' is invalid: it must be an integer"),
    (V3, i2v(duration=True), "settings.duration value 'True' is invalid: it must be an integer"),
    (V26, i2v(duration=7), "settings.duration value '7' is invalid for kling-2.6"),
    (V25_T, t2v(duration=3), "settings.duration value '3' is invalid for kling-2.5-turbo"),
    (TURBO, i2v(duration=16), "settings.duration value '16' is invalid for kling-3.0-turbo"),
    (V3_T, t2v(duration=2), "settings.duration value '2' is invalid for kling-3.0"),
    # settings.audio: native/off on 3.0 and 2.6; native only at 1080p on 2.6
    (V3, i2v(audio="on"), "settings.audio value 'on' is invalid for kling-3.0"),
    (V26_T, t2v(audio="native"),
     "settings.audio value 'native' is not supported with settings.resolution '720p' on kling-2.6 (only 1080p)"),
    (V26, i2v(audio="native", resolution="720p"),
     "settings.audio value 'native' is not supported with settings.resolution '720p' on kling-2.6 (only 1080p)"),
    (V3, i2v(multi_shot="yes"), "settings.multi_shot value 'yes' is invalid: it must be a boolean"),
    # unknown settings keys (the emulator's choice: refused, not ignored)
    (TURBO, i2v(audio="native"), "unknown field 'settings.audio' on /image-to-video/kling-3.0-turbo"),
    (V25_T, t2v(audio="off"), "unknown field 'settings.audio' on /text-to-video/kling-2.5-turbo"),
    (V3, i2v(aspect_ratio="16:9"), "unknown field 'settings.aspect_ratio' on /image-to-video/kling-3.0"),
    (V26_T, t2v(multi_shot=True), "unknown field 'settings.multi_shot' on /text-to-video/kling-2.6"),
    (TURBO, i2v(sound="on"), "unknown field 'settings.sound' on /image-to-video/kling-3.0-turbo"),
    # legacy fields at the top level (no page has them)
    *[(V26, {**i2v(), field: value}, f"unknown field '{field}' on /image-to-video/kling-2.6")
      for field, value in (("mode", "pro"), ("model_name", "kling-v2-6"), ("negative_prompt", "blur"),
                           ("cfg_scale", 0.5), ("image_tail", TAIL), ("prompt", "top-level prompt"))],
    (V3_T, {**t2v(), "contents": [FIRST]}, "unknown field 'contents' on /text-to-video/kling-3.0"),
    (V3_T, {**t2v(), "negative_prompt": "blur"}, "unknown field 'negative_prompt' on /text-to-video/kling-3.0"),
    # the shape of the body
    (V3, {"settings": {}}, "contents is required"),
    (V3, {"contents": []}, "contents is required"),
    (V3, {"contents": {"type": "first_frame"}}, "contents must be an array"),
    (V3, {"contents": [5]}, "contents[0] must be an object"),
    (V3, {"contents": [{"url": START}]}, "contents[0].type is required"),
    (V3, {"contents": [{"type": ["first_frame"], "url": START}]},
     "contents[0].type value '['first_frame']' is invalid"),
    (V3, {**i2v(), "settings": "1080p"}, "settings must be an object"),
    (V3, {**i2v(), "options": []}, "options must be an object"),
    # contents[] items (live observation's wording)
    (V3, i2v(FIRST, {"type": "end_frame", "url": TAIL}), "contents[2].type value 'end_frame' is invalid"),
    (V3, i2v({"type": "first_frame", "url": ""}), "content item of type 'first_frame' must have a non-blank url"),
    (V3, i2v({"type": "first_frame"}), "content item of type 'first_frame' must have a non-blank url"),
    (V3, i2v(PROMPT(" "), prompt=None), "content item of type 'prompt' must have a non-blank text"),
    (V3, i2v({**FIRST, "id": "img"}), "unknown field 'contents[1].id' in a content item of type 'first_frame'"),
    (V3, i2v(FIRST, FIRST), "content item of type 'first_frame' can appear only once"),  # emulator's choice
    (V3, i2v(FIRST, PROMPT("again")), "content item of type 'prompt' can appear only once"),  # emulator's choice
    # first and last frames
    (V3, {"contents": [PROMPT("only words")]}, "contents must have a content item of type 'first_frame'"),
    (V3, i2v(LAST), "contents must have a content item of type 'first_frame' (a last frame alone is not supported)"),
    (V25, i2v(LAST, resolution="1080p"),
     "contents must have a content item of type 'first_frame' (a last frame alone is not supported)"),
    (TURBO, i2v(FIRST, LAST), "contents[2].type value 'last_frame' is invalid for kling-3.0-turbo"),
    (V26, i2v(FIRST, LAST),
     "content item of type 'last_frame' is not supported with settings.resolution '720p' on kling-2.6 (only 1080p)"),
    (V25, i2v(FIRST, LAST, resolution="720p", duration=10),
     "content item of type 'last_frame' is not supported with settings.resolution '720p' on kling-2.5-turbo "
     "(only 1080p)"),
    (V26, i2v(FIRST, LAST, resolution="1080p", audio="native"),
     "content item of type 'last_frame' is not supported with settings.audio 'native' on kling-2.6"),
    # elements (kling-3.0, at most 3) and voices (kling-2.6, at most 2, audio native)
    (V3, i2v(FIRST, *map(ELEMENT, range(4))), "content item of type 'element' can appear at most 3 times on kling-3.0"),
    (V3, i2v(FIRST, {"type": "element", "element_id": "el-1"}),
     "content item of type 'element' must have a non-blank id"),
    (V3, i2v(FIRST, ELEMENT(1), {**ELEMENT(2), "id": "1"}), "contents[3].id value '1' is duplicated"),
    (V26, i2v(FIRST, ELEMENT(1)), "contents[2].type value 'element' is invalid for kling-2.6"),
    (V3, i2v(FIRST, VOICE(1), audio="native"), "contents[2].type value 'voice' is invalid for kling-3.0"),
    (V26, i2v(FIRST, VOICE(1), resolution="1080p"), "content item of type 'voice' needs settings.audio 'native'"),
    (V26, i2v(FIRST, *map(VOICE, range(3)), resolution="1080p", audio="native"),
     "content item of type 'voice' can appear at most 2 times on kling-2.6"),
    # prompt lengths per page: turbo i2v 2500, turbo t2v 3072, kling-3.0 3072, 2.6 and 2.5-turbo 2500
    (TURBO, i2v(prompt="x" * 2501), "contents[0].text cannot exceed 2500 characters"),
    (TURBO_T, t2v("x" * 3073), "prompt cannot exceed 3072 characters"),
    (V3, i2v(prompt="x" * 3073), "contents[0].text cannot exceed 3072 characters"),
    (V26_T, t2v("x" * 2501), "prompt cannot exceed 2500 characters"),
    (V25, i2v(prompt="x" * 2501), "contents[0].text cannot exceed 2500 characters"),
    # text to video: a top-level prompt, aspect_ratio 16:9 / 9:16 / 1:1
    (V26_T, {"settings": {"duration": 5}}, "prompt is required"),
    (V26_T, t2v("   "), "prompt is required"),
    (V26_T, t2v(5), "prompt must be a string"),
    (V3_T, t2v(aspect_ratio="4:3"), "settings.aspect_ratio value '4:3' is invalid"),
    # options
    (V3, {**i2v(), "options": {"webhook": "x"}}, "unknown field 'options.webhook' on /image-to-video/kling-3.0"),
    (V3, {**i2v(), "options": {"callback_url": "not a url"}}, "options.callback_url is invalid"),
    (V3, {**i2v(), "options": {"external_task_id": 7}}, "options.external_task_id must be a string"),
    (V3, {**i2v(), "options": {"watermark_info": True}}, "options.watermark_info must be an object"),
    (V3, {**i2v(), "options": {"watermark_info": {"enabled": "yes"}}},
     "options.watermark_info.enabled value 'yes' is invalid: it must be a boolean"),
    # images: raw base64 or a URL, jpg/jpeg/png, sides >= 300 px, aspect 1:2.5 to 2.5:1 (last frame too)
    (V3, i2v({"type": "first_frame", "url": "data:image/png;base64," + START}),
     "contents[1].url must be raw base64 without a data: prefix"),
    (V3, i2v({"type": "first_frame", "url": "not base64 at all!"}), "contents[1].url is not valid base64"),
    (V3, i2v({"type": "first_frame", "url": "ftp://example.com/a.png"}), "contents[1].url url must be http or https"),
    (V3, i2v(frame("first_frame", (480, 299))), "contents[1].url width and height must be at least 300px, got 480x299"),
    (V3, i2v(frame("first_frame", (760, 300))),
     "contents[1].url aspect ratio must be between 1:2.5 and 2.5:1, got 760x300"),
    (V3, i2v(FIRST, frame("last_frame", (300, 760))),
     "contents[2].url aspect ratio must be between 1:2.5 and 2.5:1, got 300x760"),
    (V3, i2v({"type": "first_frame", "url": picture(480, 320, fmt="GIF")[0]}),
     "contents[1].url format must be jpg, jpeg or png"),
]


@pytest.mark.parametrize("path, payload, message", REFUSED, ids=[m[:60] for _, _, m in REFUSED])
def test_each_page_rule_is_a_1201_naming_the_field(emu, path, payload, message):
    assert_error(post(emu, path, payload), 400, 1201, message)
    assert emu.created_tasks() == []


ACCEPTED = [
    (TURBO, i2v(prompt=None)),  # no prompt item (the pages do not require one: the emulator's choice)
    (TURBO, i2v(prompt="x" * 2500, resolution="1080p", duration=15)),
    (TURBO_T, t2v("x" * 3072, duration=3, aspect_ratio="1:1")),
    (V3, i2v(resolution="4k", duration=15)),  # the page lists 4k (so does the capability table)
    (V3, i2v(FIRST, LAST, resolution="720p", audio="native", multi_shot=False)),  # no resolution rule on 3.0
    (V3, i2v(FIRST, *map(ELEMENT, range(3)), audio="off")),
    (V3_T, t2v(resolution="4k", aspect_ratio="9:16", duration=15, audio="off", multi_shot=True)),
    (V26, i2v(FIRST, VOICE(1), VOICE(2), resolution="1080p", audio="native", duration=10)),
    (V26, i2v(FIRST, LAST, resolution="1080p", audio="off")),
    (V25, i2v(FIRST, LAST, resolution="1080p", duration=10)),
    (V25_T, t2v("x" * 2500, resolution="1080p", duration=10)),
    (V26, {**i2v(), "settings": None, "options": None}),
    (V26, i2v(frame("first_frame", (750, 300)))),  # exactly 2.5:1
    (V26, i2v({"type": "first_frame", "url": picture(400, 300, fmt="JPEG")[0]})),
    (V3, {**i2v(), "options": {"external_task_id": "", "callback_url": "", "watermark_info": {"enabled": False}}}),
]


@pytest.mark.parametrize("path, payload", ACCEPTED)
def test_what_the_pages_allow_is_accepted(emu, path, payload):
    r = post(emu, path, payload)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "submitted"


def _upload(emu, data: bytes) -> str:
    return requests.post(emu.url + "/_emulator/uploads", data=data, headers={"Content-Type": "image/png"},
                         timeout=30).json()["url"]


def test_images_may_be_up_to_50_mb_where_the_legacy_api_takes_10(emu):
    noise = np.random.default_rng(1).integers(0, 256, (1900, 1900, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG", compress_level=0)
    assert 10 * 2**20 < len(buf.getvalue()) < 50 * 2**20
    url = _upload(emu, buf.getvalue())
    assert created(emu, V26, i2v({"type": "first_frame", "url": url}))
    legacy = requests.post(emu.url + "/v1/videos/image2video", headers={"Authorization": "Bearer test-key"},
                           json={"model_name": "kling-v2-1", "image": url}, timeout=30)
    assert_error(legacy, 400, 1201, "image size cannot exceed 10MB")
    too_big = _upload(emu, buf.getvalue() + b"\0" * (50 * 2**20 + 1 - len(buf.getvalue())))
    assert_error(post(emu, V26, i2v({"type": "first_frame", "url": too_big})), 400, 1201,
                 "contents[1].url size cannot exceed 50MB")


def test_a_loopback_frame_url_is_fetched(emu, receiver):
    done = finished(emu, created(emu, V25, i2v({"type": "first_frame", "url": receiver.url + "/start.png"})))
    assert done["status"] == "succeeded"
    # a URL that answers 404 is accepted and the task fails (live observation; research note 13)
    missing = finished(emu, created(emu, V25, i2v({"type": "first_frame", "url": receiver.url + "/missing.png"})))
    assert missing["status"] == "failed" and missing["billing"][0]["amount"] == "0"


def test_the_legacy_paths_refuse_new_standard_model_names(emu):
    r = requests.post(emu.url + "/v1/videos/image2video", headers={"Authorization": "Bearer test-key"},
                      json={"model_name": "kling-3.0-turbo", "image": START}, timeout=10)
    assert_error(r, 400, 1201, "model_name(kling-3.0-turbo) is invalid")


def test_4k_is_2160_lines_and_other_resolutions_come_from_the_capability_table():
    table = capability_table()
    assert output_geometry(table.get("kling-3.0"), "4k", 16 / 9, None) == (3840, 2160, 24)
    assert output_geometry(table.get("kling-2.6"), "1080p", 9 / 16, None) == (1080, 1920, 24)
    assert output_geometry(table.get("kling-3.0-turbo"), "720p", 1.5, None) == (1080, 720, 24)
    assert output_geometry(table.get("kling-3.0"), "4k", 16 / 9, 128) == (228, 128, 24)
