"""The emulator against Kling's new design standard pages (research note /tmp/research/kling_new_standard.md,
reference 1.4): the create envelope, GET /tasks and POST /tasks, API keys only (an AK/SK JWT answered with
the live 1002 words), billing from the official price table, real mp4s, the discontinued-model switch, the
faults and callbacks on the new paths. Raw HTTP against a started Emulator, never our client, so that the
emulator is checked against the pages. The page rules (each refusal's 1201 message) are in
test_emulator_new_standard_rules.py, which shares the helpers here."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import requests

from emulator_http import (AUTH, START, TAIL, assert_error, clean, emu, jwt_token, receiver, settled,  # noqa: F401
                           stays)
from kling_api.emulator import Emulator
from kling_api.emulator.faults import DISCONTINUED_MESSAGE

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("kling-3.0-turbo", "kling-3.0", "kling-2.6", "kling-2.5-turbo")
AKSK_WORDS = ("Authentication error. The current API does not support AK/SK; please go to the console "
              "(https://kling.ai/dev/api-key) to create API key.")
FIRST = {"type": "first_frame", "url": START}
LAST = {"type": "last_frame", "url": TAIL}
TASK_KEYS = {"id", "status", "message", "create_time", "update_time", "external_id", "outputs", "billing"}


# -- helpers (test_emulator_new_standard_rules.py imports these) ------------------------------------------
def i2v(*items: dict, prompt: str | None = "a test", **settings) -> dict:
    """An image-to-video body: a prompt item (unless None), the items (default: the first frame), settings."""
    contents = ([{"type": "prompt", "text": prompt}] if prompt is not None else []) + list(items or [FIRST])
    return {"contents": contents, **({"settings": settings} if settings else {})}


def t2v(prompt: str = "a test", **settings) -> dict:
    return {"prompt": prompt, **({"settings": settings} if settings else {})}


def post(emu, path: str, payload, headers: dict | None = None) -> requests.Response:
    return requests.post(emu.url + path, json=payload, headers=AUTH if headers is None else headers, timeout=30)


def created(emu, path: str, payload) -> str:
    r = post(emu, path, payload)
    assert r.status_code == 200, r.text
    return r.json()["data"]["id"]


def tasks(emu, headers: dict | None = None, **params) -> requests.Response:
    return requests.get(emu.url + "/tasks", params=params, headers=AUTH if headers is None else headers, timeout=10)


def task(emu, task_id: str) -> dict:
    found = tasks(emu, task_ids=task_id).json()["data"]
    assert len(found) == 1, found
    return found[0]


def finished(emu, task_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = task(emu, task_id)
        if data["status"] in ("succeeded", "failed"):
            return data
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not finish")


def video(emu, path: str, payload) -> tuple[dict, bytes]:
    data = finished(emu, created(emu, path, payload))
    assert data["status"] == "succeeded", data
    return data, requests.get(data["outputs"][0]["url"], timeout=30).content


def facts(mp4: bytes) -> dict:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        out = {"codec": stream.codec_context.name, "width": stream.codec_context.width,
               "height": stream.codec_context.height, "fps": stream.average_rate,
               "seconds": container.duration / av.time_base, "kinds": sorted(s.type for s in container.streams),
               "audio": [s.codec_context.name for s in container.streams.audio]}
        out["frames"] = sum(1 for _ in container.decode(video=0))
    return out


# -- the create answer and the task object ----------------------------------------------------------------
def test_create_answer_and_task_object_follow_the_pages(emu):
    r = post(emu, "/image-to-video/kling-3.0-turbo", {**i2v(), "options": {"external_task_id": "page-1"}})
    payload = r.json()
    assert r.status_code == 200 and set(payload) == {"code", "message", "request_id", "data"}
    assert payload["code"] == 0 and payload["message"] == "SUCCEED" and payload["request_id"]
    data = payload["data"]
    assert set(data) == {"id", "status", "create_time", "update_time", "external_id"}
    assert data["status"] == "submitted" and data["external_id"] == "page-1"
    assert isinstance(data["create_time"], int) and data["create_time"] > 1_700_000_000_000
    early = task(emu, data["id"])
    assert set(early) == TASK_KEYS and early["status"] in ("submitted", "processing")
    assert early["outputs"] == [] and early["billing"] == [{"charge_type": "unit", "amount": "0",
                                                            "package_type": "video"}]
    done = finished(emu, data["id"])
    assert done["status"] == "succeeded" and done["message"] == "" and done["update_time"] >= done["create_time"]
    [out] = done["outputs"]
    assert set(out) == {"type", "id", "url", "watermark_url", "duration"} and out["type"] == "video"
    assert out["watermark_url"] == ""  # no watermark asked
    assert requests.get(out["url"], timeout=10).content[4:8] == b"ftyp"
    assert emu.created_tasks() == [done]


def test_watermark_and_a_custom_id_shared_with_the_legacy_api(emu):
    data, _ = video(emu, "/text-to-video/kling-2.5-turbo", {**t2v(), "options": {"watermark_info": {"enabled": True}}})
    assert requests.get(data["outputs"][0]["watermark_url"], timeout=10).content[4:8] == b"ftyp"
    legacy = requests.post(emu.url + "/v1/videos/text2video", json={"model_name": "kling-v1-6", "prompt": "x",
                                                                    "external_task_id": "dup"}, headers=AUTH)
    assert legacy.status_code == 200
    again = post(emu, "/image-to-video/kling-2.6", {**i2v(), "options": {"external_task_id": "dup"}})
    assert "already exist" in assert_error(again, 400, 1201)["message"]
    assert created(emu, "/image-to-video/kling-2.6", {**i2v(), "options": {"external_task_id": "dup-2"}})
    assert "already exist" in assert_error(post(emu, "/text-to-video/kling-3.0", {
        **t2v(), "options": {"external_task_id": "dup-2"}}), 400, 1201)["message"]


# -- GET /tasks and POST /tasks ---------------------------------------------------------------------------
def test_get_tasks_by_ids_and_by_custom_ids(emu):
    a = created(emu, "/image-to-video/kling-3.0", {**i2v(), "options": {"external_task_id": "ext-a"}})
    b = created(emu, "/text-to-video/kling-2.6", t2v())
    legacy = requests.post(emu.url + "/v1/videos/text2video", json={"model_name": "kling-v1-6", "prompt": "x",
                                                                    "external_task_id": "ext-legacy"},
                           headers=AUTH).json()["data"]["task_id"]
    ids = lambda r: [t["id"] for t in r.json()["data"]]  # noqa: E731
    assert ids(tasks(emu, task_ids=f"{b},{a}")) == [b, a]  # in the order asked
    assert ids(tasks(emu, task_ids=f" {a} , {a},nope")) == [a]
    assert tasks(emu, task_ids="no-such-task").json() | {"request_id": ""} == {"code": 0, "message": "SUCCEED",
                                                                               "request_id": "", "data": []}
    assert ids(tasks(emu, external_task_ids="ext-a,nope")) == [a]
    # legacy tasks are queried on their own paths (the emulator's choice), and the other way round
    assert tasks(emu, task_ids=legacy).json()["data"] == []
    assert tasks(emu, external_task_ids="ext-legacy").json()["data"] == []
    assert_error(requests.get(f"{emu.url}/v1/videos/image2video/{a}", headers=AUTH, timeout=10), 404, 1203)
    for params in ({"task_ids": a, "external_task_ids": "ext-a"}, {}, {"task_ids": ""}, {"task_ids": " , "}):
        assert_error(tasks(emu, **params), 400, 1201)
    assert_error(requests.get(f"{emu.url}/tasks/{a}", headers=AUTH, timeout=10), 404, 1203)
    assert_error(requests.get(emu.url + "/image-to-video/kling-3.0", headers=AUTH, timeout=10), 404, 1202)


def test_post_tasks_pages_with_a_cursor_and_filters(emu):
    made = [created(emu, "/text-to-video/kling-2.5-turbo", t2v(f"clip {i}")) for i in range(3)]
    search = lambda **b: post(emu, "/tasks", b).json()["data"]  # noqa: E731
    first = search(limit=2)
    assert first["count"] == 2 and first["has_more"] is True and first["next_cursor"]
    rest = search(cursor=first["next_cursor"], start_time="1", end_time="2")  # times ignored with a cursor
    assert rest["count"] == 1 and rest["has_more"] is False and rest["next_cursor"] == ""
    assert [t["id"] for t in first["result"] + rest["result"]] == made[::-1]  # newest first, no overlap
    for i in made:
        finished(emu, i)
    assert search(filters=[{"key": "status", "values": ["succeeded"]}])["count"] == 3
    assert search(filters=[{"key": "status", "values": ["submitted", "failed"]}])["count"] == 0
    assert search(filters=[{"key": "product_type", "values": ["image"]}])["count"] == 0
    now = int(time.time() * 1000)
    assert search(start_time=now - 60_000, end_time=now + 60_000)["count"] == 3  # numbers, as turbo pages send
    assert search(start_time=str(now + 1), end_time=str(now + 60_000))["count"] == 0  # strings, as the others
    assert search(limit=500)["count"] == 3
    for bad in ({"limit": 501}, {"limit": 0}, {"limit": "10"}, {"start_time": now, "end_time": now - 1},
                {"cursor": "not-a-cursor"}, {"filters": [{"key": "model", "values": ["x"]}]},
                {"filters": [{"key": "status", "values": ["succeed"]}]}, {"filters": [{"key": ["status"]}]},
                {"sort": "asc"}):
        assert_error(post(emu, "/tasks", bad), 400, 1201)


# -- credentials ------------------------------------------------------------------------------------------
def test_an_aksk_jwt_is_refused_on_every_new_path_with_klings_words(emu):
    bearer = {"Authorization": f"Bearer {jwt_token()}"}
    expired = {"Authorization": f"Bearer {jwt_token(exp=int(time.time()) - 60)}"}
    for r in (post(emu, "/image-to-video/kling-3.0-turbo", i2v(), bearer),
              post(emu, "/text-to-video/kling-2.6", t2v(), bearer), tasks(emu, bearer, task_ids="1"),
              post(emu, "/tasks", {}, bearer), tasks(emu, expired, task_ids="1")):
        assert_error(r, 401, 1002, AKSK_WORDS)
    assert_error(post(emu, "/image-to-video/kling-3.0", i2v(), {"Authorization": "Bearer wrong-key"}), 401, 1000)
    assert_error(post(emu, "/image-to-video/kling-3.0", i2v(), {}), 401, 1001)
    assert emu.created_tasks() == []
    # the JWT and the API key both keep working on the legacy paths
    legacy = {"model_name": "kling-v1-6", "prompt": "x"}
    for headers in (bearer, AUTH):
        r = requests.post(emu.url + "/v1/videos/text2video", json=legacy, headers=headers, timeout=10)
        assert r.status_code == 200 and r.json()["code"] == 0


# -- billing ----------------------------------------------------------------------------------------------
VOICES = [{"type": "voice", "voice_id": "v-1", "id": "1"}, {"type": "voice", "voice_id": "v-2", "id": "2"}]
#: (path, body, units): the page kling-pricing-video.md's units per second times the requested seconds.
BILLING = [
    ("/image-to-video/kling-3.0-turbo", i2v(resolution="720p", duration=5), "4"),        # 0.8/s
    ("/text-to-video/kling-3.0-turbo", t2v(resolution="1080p", duration=7), "7"),        # 1.0/s
    ("/image-to-video/kling-3.0", i2v(duration=3), "1.8"),                               # 0.6/s
    ("/text-to-video/kling-3.0", t2v(resolution="1080p", duration=5, audio="off"), "4"),  # 0.8/s
    ("/text-to-video/kling-3.0", t2v(resolution="720p", duration=10, audio="native"), "9"),  # 0.9/s
    ("/image-to-video/kling-3.0", i2v(FIRST, LAST, resolution="1080p", duration=5, audio="native"), "6"),  # 1.2/s
    ("/image-to-video/kling-3.0", i2v(resolution="4k", duration=5), "15"),              # 3.0/s
    ("/text-to-video/kling-3.0", t2v(resolution="4k", duration=3, audio="native"), "9"),  # 3.0/s
    ("/text-to-video/kling-2.6", t2v(duration=10), "3"),                                 # 0.3/s
    ("/image-to-video/kling-2.6", i2v(FIRST, LAST, resolution="1080p", duration=5), "2.5"),  # 0.5/s
    ("/image-to-video/kling-2.6", i2v(resolution="1080p", duration=5, audio="native"), "5"),  # 1.0/s
    ("/image-to-video/kling-2.6", i2v(FIRST, *VOICES, resolution="1080p", duration=10, audio="native"), "12"),  # 1.2/s
    ("/text-to-video/kling-2.5-turbo", t2v(duration=5), "1.5"),                          # 0.3/s
    ("/image-to-video/kling-2.5-turbo", i2v(FIRST, LAST, resolution="1080p", duration=10), "5"),  # 0.5/s
]


def test_billing_is_the_official_price_times_the_duration_and_the_pack_pays_it(emu):
    ids = [(created(emu, path, payload), units) for path, payload, units in BILLING]
    for task_id, units in ids:
        done = finished(emu, task_id)
        assert done["billing"] == [{"charge_type": "unit", "amount": units, "package_type": "video"}], done
    costs = requests.get(emu.url + "/account/costs", params={"start_time": 0, "end_time": 1}, headers=AUTH,
                         timeout=10).json()["data"]["resource_pack_subscribe_infos"][0]
    assert costs["remaining_quantity"] == pytest.approx(1000 - sum(float(u) for _, u in ids))


# -- the video --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, payload, audio", [
    ("/image-to-video/kling-3.0-turbo", i2v(duration=3), True),  # turbo always has sound
    ("/text-to-video/kling-3.0-turbo", t2v(duration=3), True),
    ("/image-to-video/kling-3.0", i2v(duration=3, audio="native"), True),
    ("/image-to-video/kling-3.0", i2v(duration=4, audio="off"), False),
    ("/text-to-video/kling-2.6", t2v(duration=5, resolution="1080p", audio="native"), True),
    ("/text-to-video/kling-2.5-turbo", t2v(duration=5), False),
])
def test_videos_are_h264_at_24_fps_for_the_duration_with_aac_iff_audio(emu, path, payload, audio):
    data, mp4 = video(emu, path, payload)
    got = facts(mp4)
    seconds = payload["settings"]["duration"]
    assert got["codec"] == "h264" and got["fps"] == 24 and got["frames"] == seconds * 24
    assert got["height"] == 128  # the fixture's max_height caps every resolution
    assert abs(got["seconds"] - seconds) <= 1 / 24
    assert got["audio"] == (["aac"] if audio else [])
    assert data["outputs"][0]["duration"] == f"{got['seconds']:.3f}"


def test_videos_have_the_requested_resolution_and_the_frames_or_ratios_aspect():
    with Emulator(api_keys=["k"], max_height=None, submitted_seconds=0.01, processing_seconds=0.05) as big:
        headers = {"Authorization": "Bearer k"}
        for path, payload, size in (("/image-to-video/kling-3.0-turbo", i2v(duration=3), (1080, 720)),  # 480x320
                                    ("/text-to-video/kling-2.5-turbo", t2v(resolution="1080p", aspect_ratio="9:16"),
                                     (1080, 1920)),
                                    ("/text-to-video/kling-3.0", t2v(duration=3, aspect_ratio="1:1"), (720, 720))):
            task_id = post(big, path, payload, headers).json()["data"]["id"]
            deadline = time.monotonic() + 60
            while (done := tasks(big, headers, task_ids=task_id).json()["data"][0])["status"] != "succeeded":
                assert time.monotonic() < deadline and done["status"] != "failed", done
                time.sleep(0.05)
            got = facts(requests.get(done["outputs"][0]["url"], timeout=30).content)
            assert (got["width"], got["height"]) == size and got["codec"] == "h264"


# -- the discontinued-model switch ------------------------------------------------------------------------
def test_a_discontinued_model_is_refused_at_the_create_on_either_standard(emu):
    emu.configure(discontinued_models="kling-v1,kling-2.5-turbo")
    legacy = requests.post(emu.url + "/v1/videos/text2video", json={"model_name": "kling-v1", "prompt": "x"},
                           headers=AUTH, timeout=10)
    assert_error(legacy, 400, 1201, "The model 'kling-v1' has been discontinued and is no longer available.")
    assert_error(post(emu, "/text-to-video/kling-2.5-turbo", t2v()), 400, 1201,
                 DISCONTINUED_MESSAGE.format(name="kling-2.5-turbo"))
    assert emu.created_tasks() == []
    assert created(emu, "/text-to-video/kling-2.6", t2v())  # other models are untouched
    assert requests.post(emu.url + "/v1/videos/text2video", json={"model_name": "kling-v1-6", "prompt": "x"},
                         headers=AUTH, timeout=10).status_code == 200


def test_a_discontinued_model_can_fail_the_task_instead(emu):
    r = requests.post(emu.url + "/_emulator/config", json={"discontinued_models": ["kling-v1", "kling-3.0"],
                                                           "discontinued_as": "task"}, timeout=10)
    assert r.status_code == 200 and r.json()["discontinued_models"] == "kling-v1,kling-3.0"
    done = finished(emu, created(emu, "/image-to-video/kling-3.0", i2v()))
    assert done["status"] == "failed" and done["message"] == DISCONTINUED_MESSAGE.format(name="kling-3.0")
    assert done["outputs"] == [] and done["billing"][0]["amount"] == "0"
    legacy_id = requests.post(emu.url + "/v1/videos/text2video", json={"model_name": "kling-v1", "prompt": "x"},
                              headers=AUTH, timeout=10).json()["data"]["task_id"]
    legacy = settled(lambda: requests.get(f"{emu.url}/v1/videos/text2video/{legacy_id}", headers=AUTH,
                                          timeout=10).json()["data"], lambda d: d["task_status"] == "failed")
    assert legacy["task_status_msg"] == DISCONTINUED_MESSAGE.format(name="kling-v1")
    assert legacy["final_unit_deduction"] == "0"
    assert requests.post(emu.url + "/_emulator/config", json={"discontinued_as": "later"},
                         timeout=10).status_code == 400


def test_the_discontinued_switch_from_the_command_line():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "kling_api.emulator", "--port", "0", "--api-key", "cli-key",
                             "--discontinued-model", "kling-v1", "--discontinued-model", "kling-2.6",
                             "--discontinued-as", "task", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        url = proc.stdout.readline().split(" on ", 1)[1].split()[0]
        config = requests.get(url + "/_emulator/config", timeout=10).json()
        assert config["discontinued_models"] == "kling-v1,kling-2.6" and config["discontinued_as"] == "task"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- faults and callbacks on the new paths ----------------------------------------------------------------
def test_create_faults_on_the_new_paths(emu):
    emu.configure(rate_limit_creates=1, balance_depleted_creates=1)
    assert_error(post(emu, "/image-to-video/kling-3.0", i2v()), 429, 1102)
    assert_error(post(emu, "/image-to-video/kling-3.0", i2v()), 429, 1303, "parallel task over resource pack limit")
    emu.configure(concurrency_limit=1, processing_seconds=0.5)
    first = created(emu, "/image-to-video/kling-3.0", i2v())
    assert_error(post(emu, "/text-to-video/kling-3.0-turbo", t2v()), 429, 1303)
    finished(emu, first)
    assert created(emu, "/text-to-video/kling-3.0-turbo", t2v())
    emu.configure(create_errors=1, create_error_code=1301)
    assert_error(post(emu, "/text-to-video/kling-2.6", t2v()), 400, 1301)


def test_poll_faults_and_a_dropped_create_on_the_new_paths(emu):
    emu.configure(drop_after_create=1)
    with pytest.raises(requests.ConnectionError):
        post(emu, "/text-to-video/kling-2.6", {**t2v(), "options": {"external_task_id": "dropped"}})
    [found] = tasks(emu, external_task_ids="dropped").json()["data"]  # the task was made all the same
    emu.configure(server_error_polls=2, server_error_code=5000)
    assert_error(tasks(emu, task_ids=found["id"]), 500, 5000)
    assert_error(post(emu, "/tasks", {}), 500, 5000)
    emu.configure(malformed_json_polls=1)
    broken = tasks(emu, task_ids=found["id"])
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert task(emu, found["id"])["id"] == found["id"]


def test_moderation_and_an_unreachable_frame_fail_the_task_unbilled(emu):
    moderated = finished(emu, created(emu, "/text-to-video/kling-3.0", t2v("MODERATION_FAIL please")))
    assert moderated["status"] == "failed" and moderated["message"] == "Content moderation review failed."
    unreachable = finished(emu, created(emu, "/image-to-video/kling-2.6",
                                        i2v({"type": "first_frame", "url": "https://example.com/a.png"})))
    assert unreachable["status"] == "failed"
    assert unreachable["message"] == "Something went wrong when we tried to get the contents of the file."
    for done in (moderated, unreachable):
        assert done["outputs"] == [] and done["billing"][0]["amount"] == "0"


def test_callbacks_carry_the_task_object(emu, receiver):
    task_id = created(emu, "/image-to-video/kling-3.0-turbo",
                      {**i2v(), "options": {"callback_url": receiver.url + "/cb", "external_task_id": "cb-1"}})
    final = finished(emu, task_id)
    posts = settled(lambda: list(receiver.posts), lambda p: len(p) == 3)
    assert [p["status"] for p in posts] == ["submitted", "processing", "succeeded"]
    assert all(set(p) == TASK_KEYS and p["id"] == task_id and p["external_id"] == "cb-1" for p in posts)
    assert posts[-1] == final
    emu.configure(callbacks=False)
    created(emu, "/text-to-video/kling-2.6", {**t2v(), "options": {"callback_url": receiver.url + "/cb"}})
    assert len(stays(lambda: list(receiver.posts), lambda p: len(p) == 3, 0.5)) == 3
