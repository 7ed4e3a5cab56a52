"""The emulator's videos: start and end frames, frame rate and count from the capability table, the
camera moves, the sound track, and downloads with Range (see test_emulator.py for the rest)."""
from __future__ import annotations

import io

import av
import numpy as np
import pytest
import requests
from PIL import Image

from emulator_http import (START_RGB, TAIL, TAIL_RGB, body, clean, decode, emu, picture, resized,  # noqa: F401
                           video_of)
from kling_api.emulator.handler import Unsatisfiable, parse_range
from kling_api.emulator.videos import ZOOM_END, motion_for_camera, output_geometry
from kling_api.rules.capabilities import capability_table


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
    _, mp4 = video_of(emu, body(model_name="kling-v1-6"))  # std: 720p, 30 fps
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
