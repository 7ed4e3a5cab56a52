"""The Kling emulator over real HTTP on loopback: auth, lifecycle, video, validation, faults, control.

Videos are kept tiny (max_height 128) and the lifecycle short, so the whole file runs in seconds.
"""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import av
import jwt
import numpy as np
import pytest
import requests
from PIL import Image

from kling_api.rules.capabilities import ModelCapabilities, capability_table
from kling_api.emulator import DEFAULT_API_KEY, Emulator
from kling_api.emulator.errors import ApiError
from kling_api.emulator.faults import settings_from_env
from kling_api.emulator.handler import Unsatisfiable, parse_range
from kling_api.emulator.rules import _camera
from kling_api.emulator.videos import ZOOM_END, motion_for_camera, output_geometry

API_KEY = "test-key"
ACCESS_KEY, SECRET_KEY = "ak-test", "sk-test-secret-long-enough-for-hs256-0001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ENDPOINT = "/v1/videos/image2video"
MAX_HEIGHT = 128
ROOT = Path(__file__).resolve().parents[1]


# -- pictures ------------------------------------------------------------------------------
def picture(width: int, height: int, *, inverted: bool = False, fmt: str = "PNG") -> tuple[str, np.ndarray]:
    """(raw base64, RGB array): a two-way gradient, or its negative, so start and end differ everywhere."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    if inverted:
        rgb = 255 - rgb
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return base64.b64encode(buf.getvalue()).decode(), rgb


START, START_RGB = picture(480, 320)
TAIL, TAIL_RGB = picture(480, 320, inverted=True)


def resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.BILINEAR), dtype=np.float32)


class VideoFacts(NamedTuple):
    """A video stream's facts, copied while its container is open (PyAV 19 refuses reads after close)."""
    codec: str
    pix_fmt: str
    width: int
    height: int
    average_rate: Fraction | None


def decode(data: bytes) -> tuple[list[np.ndarray], VideoFacts, list[str]]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        facts = VideoFacts(stream.codec_context.name, stream.codec_context.pix_fmt, stream.codec_context.width,
                           stream.codec_context.height, stream.average_rate)
        kinds = [s.type for s in container.streams]
        frames = [f.to_ndarray(format="rgb24").astype(np.float32) for f in container.decode(video=0)]
    return frames, facts, kinds


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emu():
    with Emulator(api_keys=[API_KEY], access_keys={ACCESS_KEY: SECRET_KEY}, max_height=MAX_HEIGHT,
                  submitted_seconds=0.05, processing_seconds=0.15) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(emu):
    emu.reset()
    yield


class Receiver:
    """A loopback server that serves one image and collects POSTed callbacks."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        self.image = base64.b64decode(START)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body, status = (owner.image, 200) if self.path == "/start.png" else (b"no", 404)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                owner.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


# -- helpers -------------------------------------------------------------------------------
def body(**fields) -> dict:
    out = {"model_name": "kling-v2-1", "mode": "std", "duration": "5", "image": START, "prompt": "a test"}
    out.update(fields)
    return {k: v for k, v in out.items() if v is not None}


def create(emu, payload: dict, headers: dict | None = None, endpoint: str = ENDPOINT) -> requests.Response:
    return requests.post(emu.url + endpoint, json=payload, headers=AUTH if headers is None else headers, timeout=10)


def get(emu, ref: str, endpoint: str = ENDPOINT) -> requests.Response:
    return requests.get(f"{emu.url}{endpoint}/{ref}", headers=AUTH, timeout=10)


def wait(emu, task_id: str, timeout: float = 20, endpoint: str = ENDPOINT) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = get(emu, task_id, endpoint).json()["data"]
        if data["task_status"] in ("succeed", "failed"):
            return data
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} did not finish")


def created_ok(emu, payload: dict, endpoint: str = ENDPOINT) -> str:
    r = create(emu, payload, endpoint=endpoint)
    assert r.status_code == 200, r.text
    return r.json()["data"]["task_id"]


def video_of(emu, payload: dict, endpoint: str = ENDPOINT) -> tuple[dict, bytes]:
    data = wait(emu, created_ok(emu, payload, endpoint), endpoint=endpoint)
    assert data["task_status"] == "succeed", data
    url = data["task_result"]["videos"][0]["url"]
    return data, requests.get(url, timeout=10).content


def assert_error(r: requests.Response, http: int, code: int, message: str | None = None) -> dict:
    assert r.status_code == http, r.text
    payload = r.json()
    assert payload["code"] == code, payload
    assert payload["request_id"] and payload["message"]
    if message is not None:
        assert payload["message"] == message
    return payload


def jwt_token(**claims) -> str:
    now = int(time.time())
    base = {"iss": ACCESS_KEY, "exp": now + 1800, "nbf": now - 5}
    base.update(claims)
    secret = base.pop("_secret", SECRET_KEY)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, secret, algorithm="HS256",
                      headers={"alg": "HS256", "typ": "JWT"})


# -- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize("header, code", [
    (None, 1001),
    ("", 1001),
    ("Token test-key", 1002),
    ("Bearer", 1002),
    ("Bearer  test-key", 1002),
    ("bearer test-key", 1002),
    ("Bearer wrong-key", 1000),
    ("Bearer " + "x.y.z", 1000),
])
def test_auth_header_codes(emu, header, code):
    headers = {} if header is None else {"Authorization": header}
    r = requests.get(emu.url + ENDPOINT, headers=headers, timeout=10)
    assert_error(r, 401, code)


# Claims as a function of the time the test runs (not of collection: a long suite reaches them much later).
@pytest.mark.parametrize("claims_at, code", [
    (lambda now: {}, 0),
    (lambda now: {"_secret": "another-secret-also-long-enough-for-hs256"}, 1000),
    (lambda now: {"iss": "unknown-access-key"}, 1000),
    (lambda now: {"exp": None}, 1000),
    (lambda now: {"nbf": now + 600}, 1003),
    (lambda now: {"exp": now - 60, "nbf": now - 1900}, 1004),
], ids=["valid", "wrong-secret", "unknown-issuer", "no-exp", "not-yet-valid", "expired"])
def test_auth_jwt_codes(emu, claims_at, code):
    claims = claims_at(int(time.time()))
    r = requests.get(emu.url + ENDPOINT, headers={"Authorization": f"Bearer {jwt_token(**claims)}"}, timeout=10)
    if code == 0:
        assert r.status_code == 200 and r.json()["code"] == 0 and r.json()["data"] == []
    else:
        assert_error(r, 401, code)


def test_auth_refuses_unsigned_jwt(emu):
    token = jwt.encode({"iss": ACCESS_KEY, "exp": int(time.time()) + 60}, None, algorithm="none")
    assert_error(requests.get(emu.url + ENDPOINT, headers={"Authorization": f"Bearer {token}"}, timeout=10),
                 401, 1000)


def test_default_key_when_none_configured():
    with Emulator() as fresh:
        assert requests.get(fresh.url + ENDPOINT, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                            timeout=10).json()["code"] == 0
        assert "emulator-key" in fresh.auth.describe()
    with Emulator(access_keys={"a": "s3cret"}) as jwt_only:
        assert "s3cret" not in jwt_only.auth.describe()
        assert_error(requests.get(jwt_only.url + ENDPOINT, headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                                  timeout=10), 401, 1000)


# -- lifecycle and queries -----------------------------------------------------------------
def test_lifecycle_and_task_object(emu):
    r = create(emu, body(external_task_id="ext-1"))
    assert r.status_code == 200
    envelope = r.json()
    assert envelope["code"] == 0 and envelope["message"] == "SUCCEED" and envelope["request_id"]
    data = envelope["data"]
    assert data["task_id"].isdigit() and len(data["task_id"]) >= 18
    assert data["task_status"] == "submitted"
    assert data["task_info"] == {"external_task_id": "ext-1"}
    assert isinstance(data["created_at"], int) and data["created_at"] > 1_600_000_000_000
    assert data["updated_at"] == data["created_at"]

    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        polled = get(emu, data["task_id"]).json()["data"]
        if not seen or seen[-1] != polled["task_status"]:
            seen.append(polled["task_status"])
        if polled["task_status"] in ("succeed", "failed"):
            break
        time.sleep(0.01)
    assert seen[-2:] == ["processing", "succeed"] and set(seen) <= {"submitted", "processing", "succeed"}
    assert polled["task_status_msg"] == ""
    assert polled["final_unit_deduction"] == "1"
    assert polled["updated_at"] > polled["created_at"]
    video = polled["task_result"]["videos"][0]
    assert video["duration"] == "5" and video["id"]
    assert video["url"] == f"{emu.url}/_files/{data['task_id']}.mp4"

    by_external = get(emu, "ext-1").json()["data"]
    assert by_external["task_id"] == data["task_id"]
    assert emu.created_tasks()[0]["task_id"] == data["task_id"]


def test_task_result_absent_before_success(emu):
    emu.configure(submitted_seconds=5)
    task_id = created_ok(emu, body())
    data = get(emu, task_id).json()["data"]
    assert data["task_status"] == "submitted" and "task_result" not in data
    assert data["final_unit_deduction"] == "0"


def test_list_newest_first_paging_and_filter(emu):
    ids = [created_ok(emu, body(external_task_id=f"list-{i}")) for i in range(3)]
    page = requests.get(emu.url + ENDPOINT, params={"pageNum": 1, "pageSize": 2}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in page["data"]] == [ids[2], ids[1]]
    page2 = requests.get(emu.url + ENDPOINT, params={"pageNum": 2, "pageSize": 2}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in page2["data"]] == [ids[0]]
    one = requests.get(emu.url + ENDPOINT, params={"external_task_id": "list-1"}, headers=AUTH, timeout=10).json()
    assert [t["task_id"] for t in one["data"]] == [ids[1]]
    assert_error(requests.get(emu.url + ENDPOINT, params={"pageSize": 501}, headers=AUTH, timeout=10), 400, 1201,
                 "pageSize(501) must be in [1, 500]")
    assert_error(requests.get(emu.url + ENDPOINT, params={"pageNum": 0}, headers=AUTH, timeout=10), 400, 1201)


def test_unknown_task_and_wrong_method(emu):
    assert_error(get(emu, "123456789012345678"), 404, 1203)
    assert_error(requests.put(emu.url + ENDPOINT, json={}, headers=AUTH, timeout=10), 404, 1202)
    assert_error(requests.post(emu.url + ENDPOINT + "/123", json={}, headers=AUTH, timeout=10), 404, 1202)


def test_duplicate_external_task_id(emu):
    created_ok(emu, body(external_task_id="dup"))
    assert_error(create(emu, body(external_task_id="dup")), 400, 1201, "external_task_id(dup) already exists")
    assert len(emu.created_tasks()) == 1


# -- the video -----------------------------------------------------------------------------
def test_video_start_end_frames_and_count(emu):
    data, mp4 = video_of(emu, body(mode="pro", duration="10", image_tail=TAIL))
    assert data["final_unit_deduction"] == "4"
    frames, stream, kinds = decode(mp4)
    assert kinds == ["video"]
    assert stream.codec == "h264" and stream.pix_fmt == "yuv420p"
    assert (stream.width, stream.height) == (192, 128)  # 480x320 is 3:2; capped at max_height
    assert stream.average_rate == 24  # kling-v2-1 output fps in the capability table
    assert len(frames) == 10 * 24
    start, tail = resized(START_RGB, 192, 128), resized(TAIL_RGB, 192, 128)
    assert np.abs(frames[0] - start).mean() < 8
    assert np.abs(frames[-1] - tail).mean() < 8
    assert np.abs(frames[0] - tail).mean() > 60  # the two ends really are different pictures
    assert 20 < np.abs(frames[len(frames) // 2] - start).mean() < np.abs(frames[0] - tail).mean()


def test_video_fps_from_table_and_zoom(emu):
    _, mp4 = video_of(emu, body(model_name="kling-v1"))
    frames, stream, _ = decode(mp4)
    assert stream.average_rate == 30 and len(frames) == 5 * 30
    start = resized(START_RGB, stream.width, stream.height)
    assert np.abs(frames[0] - start).mean() < 8
    assert np.abs(frames[-1] - start).mean() > np.abs(frames[0] - start).mean() + 2  # it moved



CAMERA = {"model_name": "kling-v1-5", "mode": "pro"}


def camera_frames(emu, **axis) -> list[np.ndarray]:
    _, mp4 = video_of(emu, body(**CAMERA, camera_control={"type": "simple", "config": axis}))
    frames, stream, _ = decode(mp4)
    assert (stream.width, stream.height) == (192, 128) and len(frames) == 5 * 30
    assert np.abs(frames[0] - resized(START_RGB, 192, 128)).mean() < 8  # every move starts on the image
    return frames


def test_video_follows_the_camera_move(emu):
    start = resized(START_RGB, 192, 128)
    # horizontal +10: the view slides right by 25 % of the width; the right quarter is beyond the picture
    last = camera_frames(emu, horizontal=10)[-1]
    assert np.abs(last[:, 4:140] - start[:, 52:188]).mean() < 8
    assert last[:, 150:].mean() < 10
    half = camera_frames(emu, pan=-4)[-1]  # pan -4: slides left by 10 % (19 px)
    assert np.abs(half[:, 30:188] - start[:, 11:169]).mean() < 8
    # vertical +10: the view rises, the picture moves down by a quarter of the height
    last = camera_frames(emu, vertical=10)[-1]
    assert np.abs(last[36:124] - start[4:92]).mean() < 8 and last[:28].mean() < 10
    # zoom -10: 1.5x closer (the red x-gradient spans a third less); zoom +10: 1.5x wider, black around
    closer, wider = camera_frames(emu, zoom=-10)[-1], camera_frames(emu, zoom=10)[-1]
    span = lambda f: np.percentile(f[64, 8:-8, 0], 95) - np.percentile(f[64, 8:-8, 0], 5)  # noqa: E731
    assert span(closer) < 0.75 * span(start)
    centre = np.asarray(Image.fromarray(START_RGB).resize((288, 192), Image.BILINEAR), dtype=np.float32)[32:160, 48:240]
    assert np.abs(closer - centre).mean() < 10
    assert wider[:, :24].mean() < 10 and wider[:, -24:].mean() < 10 and wider[:16].mean() < 10
    assert np.abs(wider[40:88, 70:122] - np.asarray(Image.fromarray(START_RGB).resize((128, 86), Image.BILINEAR),
                                                     dtype=np.float32)[19:67, 38:90]).mean() < 10
    # roll: the picture turns; its corners leave the frame
    rolled = camera_frames(emu, roll=10)[-1]
    assert rolled[:6, :6].mean() < 20 and np.abs(rolled - start).mean() > 20


def test_camera_motion_table():
    assert motion_for_camera(None) == (ZOOM_END, 0.0, 0.0, 0.0)
    assert motion_for_camera({"type": "simple", "config": {"zoom": -10}})[0] == 1.5
    assert abs(motion_for_camera({"type": "simple", "config": {"zoom": 10}})[0] - 1 / 1.5) < 1e-9
    assert motion_for_camera({"type": "simple", "config": {"tilt": 10}})[2] == -0.25
    assert motion_for_camera({"type": "down_back"})[0] < 1 < motion_for_camera({"type": "forward_up"})[0]

def test_video_portrait_and_tail_only(emu):
    portrait, _ = picture(320, 640)
    _, mp4 = video_of(emu, body(image=portrait))
    _, stream, _ = decode(mp4)
    assert (stream.width, stream.height) == (64, 128)
    _, mp4 = video_of(emu, body(mode="pro", duration="10", image=None, image_tail=TAIL))
    frames, _, _ = decode(mp4)
    assert len(frames) == 240 and np.abs(frames[0] - resized(TAIL_RGB, 192, 128)).mean() < 8


def test_video_sound_track(emu):
    _, mp4 = video_of(emu, body(model_name="kling-v2-6", mode="pro", sound="on"))
    with av.open(io.BytesIO(mp4)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        samples = sum(f.samples for f in container.decode(audio=0))
    assert abs(samples / audio.rate - 5) < 0.1


def test_silent_creates_drop_the_sound_track_of_the_next_tasks(emu):
    emu.configure(silent_creates=1)
    sound = body(model_name="kling-v2-6", mode="pro", sound="on")
    tracks = []
    for _ in range(2):
        _, mp4 = video_of(emu, sound)
        with av.open(io.BytesIO(mp4)) as container:
            tracks.append(len(container.streams.audio))
    assert tracks == [0, 1]


def test_video_file_is_served_as_every_tasks_video(emu, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"any bytes at all")
    emu.configure(video_file=str(clip))
    _, served = video_of(emu, body())
    assert served == clip.read_bytes()


def test_output_geometry_from_table():
    table = capability_table()
    assert output_geometry(table.get("kling-v2-5-turbo"), "std", 16 / 9, None) == (1280, 720, 24)  # null -> 720p
    assert output_geometry(table.get("kling-v2-5-turbo"), "pro", 16 / 9, None) == (1920, 1080, 24)
    assert output_geometry(table.get("kling-v2-master"), "std", 1.0, None) == (720, 720, 24)
    assert output_geometry(table.get("kling-v1-6"), "pro", 9 / 16, None) == (1080, 1920, 30)
    assert output_geometry(table.get("kling-v1-6"), "pro", 9 / 16, 240) == (136, 240, 30)


# -- downloads -----------------------------------------------------------------------------
def test_range_requests(emu):
    data, mp4 = video_of(emu, body())
    url = data["task_result"]["videos"][0]["url"]
    full = requests.get(url, timeout=10)
    assert full.headers["Content-Length"] == str(len(mp4)) and full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Content-Type"] == "video/mp4" and mp4[4:8] == b"ftyp"
    part = requests.get(url, headers={"Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == mp4[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(mp4)}"
    tail = requests.get(url, headers={"Range": "bytes=-50"}, timeout=10)
    assert tail.status_code == 206 and tail.content == mp4[-50:]
    rest = requests.get(url, headers={"Range": f"bytes={len(mp4) - 10}-"}, timeout=10)
    assert rest.content == mp4[-10:]
    bad = requests.get(url, headers={"Range": f"bytes={len(mp4)}-"}, timeout=10)
    assert bad.status_code == 416 and bad.headers["Content-Range"] == f"bytes */{len(mp4)}"
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(mp4)) and head.content == b""
    assert requests.get(f"{emu.url}/_files/999.mp4", timeout=10).status_code == 404


def test_parse_range():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-4,6-7", 10) is None
    assert parse_range("bytes=2-100", 10) == (2, 9)
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=-0", 10)


# -- validation ----------------------------------------------------------------------------
def _masks(n: int = 1, points: int = 2, size: tuple[int, int] = (480, 320)) -> list[dict]:
    mask, _ = picture(*size)
    return [{"mask": mask, "trajectories": [{"x": 10 + i, "y": 10 + i} for i in range(points)]} for _ in range(n)]


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
    ({"model_name": "kling-v1", "static_mask": START, "camera_control": {"type": "simple"}},
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
    ({"model_name": "kling-v1", "dynamic_masks": _masks(n=7)}, "dynamic_masks cannot have more than 6 items"),
    ({"model_name": "kling-v1", "dynamic_masks": _masks(points=1)},
     "dynamic_masks[0].trajectories must have 2 to 77 points"),
    ({"model_name": "kling-v1", "dynamic_masks": _masks(points=78)},
     "dynamic_masks[0].trajectories must have 2 to 77 points"),
    ({"model_name": "kling-v1", "dynamic_masks": [{"mask": START, "trajectories": [{"x": 1, "y": 1},
                                                                                     {"x": 900, "y": 1}]}]},
     "dynamic_masks[0].trajectories[1](900,1) is outside the image"),
    ({"model_name": "kling-v1", "dynamic_masks": [{"mask": START}]}, "dynamic_masks[0] must have mask and trajectories"),
    ({"prompt": "x" * 2501}, "prompt cannot be longer than 2500 characters"),
    ({"negative_prompt": "x" * 2501}, "negative_prompt cannot be longer than 2500 characters"),
    ({"model_name": "kling-v1", "cfg_scale": 1.5}, "cfg_scale(1.5) must be in [0, 1]"),
    ({"model_name": "kling-v1", "cfg_scale": -0.1}, "cfg_scale(-0.1) must be in [0, 1]"),
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
    {"model_name": "kling-v1", "cfg_scale": 1},
    {"duration": 5},  # an int, as some public clients send
    {"model_name": "kling-v1-5", "mode": "pro", "camera_control": {"type": "simple", "config": {"zoom": -10}}},
    {"model_name": "kling-v1", "static_mask": START, "dynamic_masks": _masks(n=6, points=77)},
    {"model_name": "kling-v2-6", "mode": "pro", "duration": "10", "image_tail": TAIL, "sound": "off"},
    {"model_name": "kling-v3", "duration": "3", "image_tail": TAIL, "sound": "on"},
    {"model_name": "kling-v2-master", "mode": None, "duration": "10"},
    {"model_name": None, "model": "kling-v2-6"},  # the old key reads as empty model_name: kling-v1
    {"image": picture(750, 300)[0]},  # exactly 2.5:1
    {"image": picture(400, 300, fmt="JPEG")[0]},
])
def test_validation_accepts(emu, fields):
    r = create(emu, body(**fields))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["task_status"] == "submitted"


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
    task_id = created_ok(emu, body(model_name="kling-v1", static_mask=static, dynamic_masks=_masks()))
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


# -- faults --------------------------------------------------------------------------------
def test_fault_rate_limit_then_success(emu):
    emu.configure(rate_limit_creates=2)
    for _ in range(2):
        assert_error(create(emu, body()), 429, 1303, "parallel task over resource pack limit")
    assert create(emu, body()).status_code == 200
    assert len(emu.created_tasks()) == 1


def test_concurrency_limit_holds_a_slot_from_submitted_until_the_task_ends(emu):
    emu.configure(concurrency_limit=1, processing_seconds=0.3)
    first = created_ok(emu, body())
    assert_error(create(emu, body()), 429, 1303, "parallel task over resource pack limit")
    assert len(emu.created_tasks()) == 1
    for _ in range(200):  # until the first task ends (a wait, not a timing check)
        if get(emu, first).json()["data"]["task_status"] == "succeed":
            break
        time.sleep(0.05)
    assert created_ok(emu, body()) != first
    assert len(emu.created_tasks()) == 2


def test_fault_balance_depleted(emu):
    emu.configure(balance_depleted_creates=1)
    assert_error(create(emu, body()), 429, 1102)
    assert emu.created_tasks() == []
    assert create(emu, body()).status_code == 200


@pytest.mark.parametrize("code, http", [(5000, 500), (5001, 503), (5002, 504)])
def test_fault_server_errors_on_polls(emu, code, http):
    task_id = created_ok(emu, body())
    emu.configure(server_error_polls=2, server_error_code=code)
    assert_error(get(emu, task_id), http, code)
    assert_error(requests.get(emu.url + ENDPOINT, headers=AUTH, timeout=10), http, code)
    assert get(emu, task_id).json()["data"]["task_id"] == task_id


def test_fault_malformed_json_polls(emu):
    task_id = created_ok(emu, body())
    emu.configure(malformed_json_polls=1)
    broken = get(emu, task_id)
    assert broken.status_code == 200 and broken.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        broken.json()
    assert get(emu, task_id).json()["data"]["task_id"] == task_id


def test_fault_slow_responses(emu):
    emu.configure(delay_seconds=0.4)
    started = time.monotonic()
    requests.get(emu.url + ENDPOINT, headers=AUTH, timeout=10)
    assert time.monotonic() - started >= 0.4
    with pytest.raises(requests.Timeout):
        requests.get(emu.url + ENDPOINT, headers=AUTH, timeout=0.1)


def test_fault_drop_after_create(emu):
    emu.configure(drop_after_create=1)
    with pytest.raises(requests.ConnectionError):
        create(emu, body(external_task_id="dropped-1"))
    tasks = emu.created_tasks()
    assert len(tasks) == 1 and tasks[0]["task_info"]["external_task_id"] == "dropped-1"
    assert get(emu, "dropped-1").json()["data"]["task_id"] == tasks[0]["task_id"]
    assert create(emu, body(external_task_id="dropped-2")).status_code == 200


def test_fault_drop_mid_download_then_resume(emu):
    data, mp4 = video_of(emu, body())
    url = data["task_result"]["videos"][0]["url"]
    emu.configure(drop_downloads=1, drop_download_after_bytes=1000)
    got = bytearray()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        with requests.get(url, stream=True, timeout=10) as r:
            assert r.headers["Content-Length"] == str(len(mp4))
            for chunk in r.iter_content(100):  # divides 1000: no chunk is lost with the error
                got += chunk
    assert bytes(got) == mp4[:1000]
    rest = requests.get(url, headers={"Range": "bytes=1000-"}, timeout=10)
    assert rest.status_code == 206 and bytes(got) + rest.content == mp4


def test_fault_non_mp4_download(emu):
    data, mp4 = video_of(emu, body())
    url = data["task_result"]["videos"][0]["url"]
    emu.configure(non_mp4_downloads=1)
    bad = requests.get(url, timeout=10)
    assert bad.status_code == 200 and bad.headers["Content-Type"] == "text/html"
    assert bad.content[4:8] != b"ftyp" and b"<html>" in bad.content
    assert requests.get(url, timeout=10).content == mp4


def test_fault_moderation(emu):
    task_id = created_ok(emu, body(prompt="a cat MODERATION_FAIL"))
    data = wait(emu, task_id)
    assert data["task_status"] == "failed" and data["task_status_msg"] == "Content moderation review failed."
    assert "task_result" not in data
    emu.configure(moderation_fail_creates=1)
    assert wait(emu, created_ok(emu, body()))["task_status"] == "failed"
    assert wait(emu, created_ok(emu, body()))["task_status"] == "succeed"


def test_callbacks_on_each_status_change(emu, receiver):
    task_id = created_ok(emu, body(callback_url=receiver.url + "/hook", external_task_id="cb-1"))
    wait(emu, task_id)
    deadline = time.monotonic() + 5
    while len(receiver.posts) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [p["task_status"] for p in receiver.posts] == ["submitted", "processing", "succeed"]
    last = receiver.posts[-1]
    assert "code" not in last and "data" not in last  # not enveloped (reference 5.4)
    assert last["task_id"] == task_id and last["task_info"]["external_task_id"] == "cb-1"
    assert last["task_result"]["videos"][0]["url"].endswith(f"/_files/{task_id}.mp4")
    assert isinstance(last["created_at"], int) and isinstance(last["final_unit_deduction"], str)
    assert [c["outcome"] for c in emu.callbacks] == ["HTTP 200"] * 3


def test_callbacks_skip_internet_and_can_be_switched_off(emu, receiver):
    wait(emu, created_ok(emu, body(callback_url="https://example.com/hook")))
    time.sleep(0.2)
    assert emu.callbacks and all(c["outcome"].startswith("skipped") for c in emu.callbacks)
    skipped = len(emu.callbacks)
    emu.configure(callbacks=False)
    wait(emu, created_ok(emu, body(callback_url=receiver.url + "/hook")))
    time.sleep(0.2)
    assert receiver.posts == [] and len(emu.callbacks) == skipped


# -- recording and the control endpoint ----------------------------------------------------
def test_requests_recorded_with_auth_redacted(emu):
    create(emu, body(prompt="recorded"))
    requests.get(emu.url + ENDPOINT, headers={"Authorization": f"Bearer {jwt_token()}"}, timeout=10)
    recorded = emu.requests
    assert [(r["method"], r["path"].split("?")[0]) for r in recorded] == [("POST", ENDPOINT), ("GET", ENDPOINT)]
    assert recorded[0]["json"]["prompt"] == "recorded"
    assert all(r["headers"]["Authorization"] == "Bearer ***" for r in recorded)
    over_http = requests.get(emu.url + "/_emulator/requests", timeout=10).json()["requests"]
    assert len(over_http) == 2 and API_KEY not in json.dumps(over_http) and SECRET_KEY not in json.dumps(over_http)
    assert requests.post(emu.url + "/_emulator/reset", timeout=10).status_code == 200
    assert emu.requests == [] and emu.created_tasks() == []


def test_control_endpoint(emu):
    r = requests.post(emu.url + "/_emulator/config", json={"rate_limit_creates": 1, "processing_seconds": "0.2"},
                      timeout=10)
    assert r.status_code == 200 and r.json()["rate_limit_creates"] == 1 and r.json()["processing_seconds"] == 0.2
    assert_error(create(emu, body()), 429, 1303)
    assert requests.get(emu.url + "/_emulator/config", timeout=10).json()["rate_limit_creates"] == 0
    bad = requests.post(emu.url + "/_emulator/config", json={"no_such_switch": 1}, timeout=10)
    assert bad.status_code == 400 and "rate_limit_creates" in bad.json()["keys"]
    assert requests.post(emu.url + "/_emulator/config", json={"server_error_code": 4000},
                         timeout=10).status_code == 400
    assert requests.post(emu.url + "/_emulator/reset", timeout=10).json()["processing_seconds"] == 0.15
    task_id = created_ok(emu, body())
    listed = requests.get(emu.url + "/_emulator/tasks", timeout=10).json()["tasks"]
    assert [t["task_id"] for t in listed] == [task_id]
    assert emu.requests[-1]["path"] == ENDPOINT  # control calls are not recorded


def test_settings_from_env():
    env = {"KLING_EMULATOR_RATE_LIMIT_CREATES": "3", "KLING_EMULATOR_MAX_HEIGHT": "none",
           "KLING_EMULATOR_CALLBACKS": "false", "KLING_EMULATOR_DELAY_SECONDS": "0.5", "OTHER": "x"}
    assert settings_from_env(env) == {"rate_limit_creates": 3, "max_height": None, "callbacks": False,
                                      "delay_seconds": 0.5}
    with pytest.raises(TypeError):
        Emulator(no_such_switch=1)


def test_cli_in_another_process(emu):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KLING_EMULATOR_RATE_LIMIT_CREATES": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "kling_api.emulator", "--port", "0", "--api-key", "cli-key",
                             "--max-height", "128", "--processing-seconds", "0.1", "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert "1 configured API key(s)" in line and "cli-key" not in line
        headers = {"Authorization": "Bearer cli-key"}
        first = requests.post(url + ENDPOINT, json=body(), headers=headers, timeout=10)
        assert first.json()["code"] == 1303
        requests.post(url + "/_emulator/config", json={"balance_depleted_creates": 1}, timeout=10)
        assert requests.post(url + ENDPOINT, json=body(), headers=headers, timeout=10).json()["code"] == 1102
        assert requests.post(url + ENDPOINT, json=body(), headers=headers, timeout=10).json()["code"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
