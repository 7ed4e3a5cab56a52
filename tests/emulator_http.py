"""What the emulator's HTTP tests share: pictures, a decoder, the fixtures (one tiny, fast emulator per
test module, reset before each test; a loopback receiver) and small request helpers.

The test modules import the fixtures they use (``emu``, ``clean``, ``receiver``) from here.
"""
from __future__ import annotations

import base64
import io
import json
import threading
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, NamedTuple, TypeVar

import av
import jwt
import numpy as np
import pytest
import requests
from PIL import Image

from kling_api.emulator import Emulator

T = TypeVar("T")

API_KEY = "test-key"
ACCESS_KEY, SECRET_KEY = "ak-test", "sk-test-secret-long-enough-for-hs256-0001"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ENDPOINT = "/v1/videos/image2video"
MAX_HEIGHT = 128


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


def settled(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 10.0) -> T:
    """``read()`` once ``done`` holds for it, else the last reading after ``timeout`` s.

    The emulator records a callback's outcome only after the receiver has answered, from another
    thread: a test waits for exactly what it asserts, and asserts on what this returns (a failure
    shows what was there)."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def stays(read: Callable[[], T], holds: Callable[[T], bool], seconds: float) -> T:
    """Reads for ``seconds`` s and returns the first reading for which ``holds`` fails, else the last: for
    "nothing arrives", where no event marks the moment to look (it can only pass too early, never fail)."""
    deadline = time.monotonic() + seconds
    value = read()
    while holds(value) and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value
