"""Frames only when someone reads them, and never more than fits: the library's parts.

The memory check says, before anything is decoded, whether a frame buffer fits, and which single setting
makes it fit; the audio comes without decoding a frame; a batch's mp4s join without re-encoding."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from kling_api.emulator.videos import VideoSpec, render_mp4
from kling_api.errors import KlingError, KlingValidationError
from kling_api.media import memory
from kling_api.media.memory import (MEMORY_BUDGET_ENV, RESERVE_BYTES, FramePlanSize, FramesTooLarge,
                                    available_memory, check_frames_fit, fitting_settings, parse_size)
from kling_api.media.remux import concat_videos
from kling_api.media.video import decode_audio, decode_video, output_size, planned_frame_count, probe_video

GB = 1024**3


@pytest.mark.parametrize(("text", "value"), [("1024", 1024), ("500MB", 500 * 1024**2), ("1.5 GB", int(1.5 * GB)),
                                             ("8g", 8 * GB), ("2tb", 2 * 1024**4)])
def test_sizes_are_read_in_binary_units(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["lots", "5 parsecs", "", "-1GB"])
def test_a_bad_size_is_refused_naming_the_variable_and_what_is_allowed(text):
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert MEMORY_BUDGET_ENV in str(info.value) and "8GB" in str(info.value)


def test_the_budget_caps_the_free_memory_and_keeps_a_reserve(monkeypatch):
    monkeypatch.delenv(MEMORY_BUDGET_ENV, raising=False)
    free = available_memory()
    assert free is not None and 0 < free  # this machine says what it has (Linux: MemAvailable)
    with open("/proc/meminfo") as meminfo:
        total = int(next(line for line in meminfo if line.startswith("MemTotal:")).split()[1]) * 1024
    assert free <= total - RESERVE_BYTES
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "100MB")
    assert available_memory() == 100 * 1024**2


FOUR_K_15S = FramePlanSize(frames=360, width=3840, height=2160, videos=1)


def test_a_15_s_4k_video_is_about_36_gb_and_is_refused_on_a_24_gb_budget_with_settings_that_fit(monkeypatch):
    assert FOUR_K_15S.nbytes == 360 * 3840 * 2160 * 3 * 4 and round(FOUR_K_15S.nbytes / 1e9, 1) == 35.8
    monkeypatch.setattr(memory, "_system_available", lambda: 24 * GB)  # a 24 GB machine, whatever this one has
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "20GB")
    with pytest.raises(FramesTooLarge) as info:
        check_frames_fit(FOUR_K_15S, saved="Kling_abc.mp4")
    text = str(info.value)
    assert isinstance(info.value, KlingError)
    assert "360 frames 3840x2160 need 33.37 GB as IMAGE" in text and "20.00 GB of memory available" in text
    assert "Kling_abc.mp4" in text and "nothing was decoded" in text and "unlink the frames output" in text
    for setting in ("max_side", "frame_cap", "frame_stride"):
        assert setting in text
    check_frames_fit(FramePlanSize(frames=24, width=3840, height=2160, videos=1))  # 2.2 GB fits


def applied(plan: FramePlanSize, setting: str, value: int) -> int:
    """The bytes the decoder allocates with one setting changed (the decoder's own arithmetic)."""
    per_video = plan.frames // plan.videos * plan.frame_stride
    width, height, stride, cap = plan.width, plan.height, plan.frame_stride, None
    if setting == "max_side":
        width, height = output_size(plan.width, plan.height, value)
    elif setting == "frame_cap":
        cap = value
    else:
        stride = value
    return plan.videos * planned_frame_count(per_video, 0, stride, cap) * width * height * 3 * 4


TWO_1080P_10S = FramePlanSize(frames=480, width=1920, height=1080, videos=2)
STRIDED_720P = FramePlanSize(frames=60, width=1280, height=720, videos=1, frame_stride=4)


@pytest.mark.parametrize(("plan", "available"), [(FOUR_K_15S, int(0.5 * GB)), (FOUR_K_15S, int(7.3 * GB)),
                                                 (TWO_1080P_10S, int(0.5 * GB)), (TWO_1080P_10S, 2 * GB),
                                                 (STRIDED_720P, int(0.5 * GB))])
def test_each_suggested_setting_alone_makes_the_frames_fit(plan, available):
    assert plan.nbytes > available
    suggestions = fitting_settings(plan, available)
    assert {s.split()[0] for s in suggestions} == {"max_side", "frame_cap", "frame_stride"}
    for suggestion in suggestions:
        setting, value = suggestion.split()
        assert applied(plan, setting, int(value)) <= available, suggestion


def test_when_nothing_fits_no_setting_is_suggested_but_the_refusal_still_names_the_size(monkeypatch):
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1KB")
    with pytest.raises(FramesTooLarge) as info:
        check_frames_fit(FOUR_K_15S)
    assert fitting_settings(FOUR_K_15S, 1024) == [] and "a smaller video" in str(info.value)


def start_png(width: int, height: int) -> bytes:
    ramp = np.linspace(0, 255, width * height * 3).reshape(height, width, 3).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(ramp).save(out, format="PNG")
    return out.getvalue()


def mp4(tmp_path, name: str, frames: int, sound: bool, width: int = 160, height: int = 96):
    path = tmp_path / name
    path.write_bytes(render_mp4(VideoSpec(start=start_png(width, height), tail=None, width=width, height=height, fps=24,
                                          frames=frames, sound=sound)))
    return path


def test_the_audio_alone_is_the_same_track_the_full_decode_gives(tmp_path):
    loud = mp4(tmp_path, "loud.mp4", 48, sound=True)
    alone = decode_audio(loud)
    full = decode_video(loud).audio
    assert alone is not None and full is not None and alone["sample_rate"] == full["sample_rate"]
    count = min(alone["waveform"].shape[1], full["waveform"].shape[1])
    assert count >= 0.95 * 2 * full["sample_rate"]  # about 2 s of sound
    assert np.allclose(alone["waveform"][:, :count], full["waveform"][:, :count])
    assert decode_audio(mp4(tmp_path, "quiet.mp4", 24, sound=False)) is None


@pytest.mark.parametrize("sound", [True, False])
def test_a_batch_joins_end_to_end_without_re_encoding(tmp_path, sound):
    parts = [mp4(tmp_path, f"part{i}.mp4", frames, sound) for i, frames in enumerate((24, 36))]
    joined = concat_videos(parts, tmp_path / "joined.mp4")
    info = probe_video(joined)
    assert info.frame_count == 60 and math.isclose(info.duration, 60 / 24, abs_tol=0.1)
    assert info.has_audio is sound and (info.width, info.height) == (160, 96)
    frames = decode_video(joined).frames
    assert frames.shape[0] == 60
    assert np.allclose(frames[24], decode_video(parts[1]).frames[0], atol=2 / 255)  # the second starts at 24
    if sound:
        assert decode_audio(joined)["waveform"].shape[1] >= 0.95 * 2.5 * decode_audio(joined)["sample_rate"]


def test_videos_of_different_sizes_are_not_joined_and_the_file_is_named(tmp_path):
    parts = [mp4(tmp_path, "small.mp4", 24, True), mp4(tmp_path, "big.mp4", 24, True, width=320, height=192)]
    with pytest.raises(KlingValidationError) as info:
        concat_videos(parts, tmp_path / "joined.mp4")
    assert "big.mp4" in str(info.value) and "streams differ" in str(info.value)
