"""probe_video / decode_video on small clips made here with PyAV (libx264, AAC)."""
from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from kling_api.media import video as video_mod
from kling_api.errors import KlingValidationError
from kling_api.media.video import (DecodedVideo, VideoInfo, decode_video, estimate_decoded_bytes, output_size,
                             planned_frame_count, probe_video, resample_audio)

W, H, FPS, FRAMES = 320, 240, 24, 48
BITS, BLOCK = 6, 32  # frame number as 6 black/white 32x32 blocks along the top edge
TONE_HZ, RATE = 440.0, 48000


def synthetic_frame(index: int) -> np.ndarray:
    """A moving gradient below a row of blocks that spell ``index`` in binary (robust to H.264)."""
    yy, xx = np.mgrid[0:H, 0:W]
    frame = np.empty((H, W, 3), np.uint8)
    frame[..., 0] = (xx * 255 // (W - 1) + 4 * index) % 256
    frame[..., 1] = yy * 255 // (H - 1)
    frame[..., 2] = (index * 5) % 256
    frame[:BLOCK, :] = 0
    for bit in range(BITS):
        if index >> bit & 1:
            frame[:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = 255
    return frame


def read_index(frame: np.ndarray) -> int:
    """The frame number spelled by the blocks of a decoded float frame (any size)."""
    h, w = frame.shape[:2]
    block_h, block_w = h * BLOCK // H, w * BLOCK // W
    value = 0
    for bit in range(BITS):
        centre = frame[block_h // 4:block_h * 3 // 4, bit * block_w + block_w // 4:(bit + 1) * block_w - block_w // 4]
        if centre.mean() > 0.5:
            value |= 1 << bit
    return value


def make_clip(path: Path, *, audio: bool) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=RATE)
            astream.layout = "stereo"
        written = 0
        for index in range(FRAMES):
            for packet in stream.encode(av.VideoFrame.from_ndarray(synthetic_frame(index), format="rgb24")):
                container.mux(packet)
            while astream is not None and written < (index + 1) * RATE // FPS:
                t = (np.arange(1024) + written) / RATE
                tone = (0.4 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = RATE, written
                for packet in astream.encode(frame):
                    container.mux(packet)
                written += 1024
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            for packet in astream.encode():
                container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("video") / "silent.mp4", audio=False)


@pytest.fixture(scope="module")
def clip_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("video") / "tone.mp4", audio=True)


def test_probe(clip: Path, clip_audio: Path) -> None:
    info = probe_video(clip)
    assert info == VideoInfo(width=W, height=H, fps=24.0, frame_count=FRAMES, duration=pytest.approx(2.0),
                             has_audio=False)
    assert probe_video(str(clip_audio)).has_audio is True


def test_decode_all_frames_in_order(clip: Path) -> None:
    decoded = decode_video(clip)
    assert isinstance(decoded, DecodedVideo)
    assert decoded.frames.shape == (FRAMES, H, W, 3)
    assert decoded.frames.dtype == np.float32
    assert decoded.fps == 24.0 and (decoded.width, decoded.height) == (W, H)
    assert decoded.source_frame_count == FRAMES
    assert decoded.audio is None
    assert 0.0 <= decoded.frames.min() and decoded.frames.max() <= 1.0
    assert [read_index(f) for f in decoded.frames] == list(range(FRAMES))
    for index in (0, FRAMES - 1):  # content, not just order: the gradient area within tolerance
        expected = synthetic_frame(index)[BLOCK + 8:].astype(np.float32) / 255
        assert np.abs(decoded.frames[index, BLOCK + 8:] - expected).mean() < 0.03


def test_start_stride_max_frames_pick_the_right_frames(clip: Path) -> None:
    decoded = decode_video(clip, start_frame=5, stride=3, max_frames=7)
    assert [read_index(f) for f in decoded.frames] == [5, 8, 11, 14, 17, 20, 23]
    assert decoded.fps == pytest.approx(8.0)
    tail = decode_video(clip, start_frame=40, stride=4)
    assert [read_index(f) for f in tail.frames] == [40, 44]
    assert decode_video(clip, start_frame=FRAMES + 3).frames.shape == (0, H, W, 3)


def test_max_side_resizes_during_decode(clip: Path) -> None:
    decoded = decode_video(clip, max_side=160, max_frames=12)
    assert decoded.frames.shape == (12, 120, 160, 3)
    assert (decoded.width, decoded.height) == (160, 120)
    assert [read_index(f) for f in decoded.frames] == list(range(12))
    assert decode_video(clip, max_side=1000, max_frames=1).frames.shape == (1, H, W, 3)  # never upscales


def test_allocate_callback_memory_is_the_result(clip: Path) -> None:
    shapes: list[tuple[int, ...]] = []
    given: list[np.ndarray] = []

    def allocate(shape: tuple[int, int, int, int]) -> np.ndarray:
        shapes.append(shape)
        given.append(np.empty(shape, np.float32))
        return given[-1]

    decoded = decode_video(clip, stride=2, allocate=allocate)
    assert shapes == [(FRAMES // 2, H, W, 3)]
    assert decoded.frames is given[0] or np.shares_memory(decoded.frames, given[0])


@pytest.mark.torch
def test_allocate_with_a_torch_tensor(clip: Path) -> None:
    import torch  # the test venv is ComfyUI's, which always has torch
    tensors = []

    def allocate(shape: tuple[int, int, int, int]) -> np.ndarray:
        tensors.append(torch.empty(shape, dtype=torch.float32))
        return tensors[-1].numpy()

    decoded = decode_video(clip, max_frames=4, allocate=allocate)
    assert np.shares_memory(decoded.frames, tensors[0].numpy())
    assert [read_index(f) for f in tensors[0].numpy()] == [0, 1, 2, 3]


def test_default_buffer_is_a_plain_writable_array() -> None:
    big = video_mod._anonymous_buffer((30, 720, 1280, 3))  # 331 MB: its own mapping
    small = video_mod._anonymous_buffer((2, 24, 32, 3))
    for buffer, shape in ((big, (30, 720, 1280, 3)), (small, (2, 24, 32, 3))):
        assert buffer.shape == shape and buffer.dtype == np.float32
        assert buffer.flags.writeable and buffer.flags.c_contiguous
    big[-1] = 0.5  # touching one frame maps only that frame's pages
    assert float(big[-1].mean()) == 0.5


def test_allocate_must_return_the_asked_array(clip: Path) -> None:
    with pytest.raises(KlingValidationError, match="allocate"):
        decode_video(clip, max_frames=2, allocate=lambda shape: np.empty(shape, np.float64))


def test_header_promising_more_frames_returns_a_view(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = video_mod._info

    def inflated(*args: object) -> VideoInfo:
        info = real(*args)
        return VideoInfo(info.width, info.height, info.fps, info.frame_count + 5, info.duration, info.has_audio)

    monkeypatch.setattr(video_mod, "_info", inflated)
    given: list[np.ndarray] = []
    decoded = decode_video(clip, allocate=lambda shape: given.append(np.empty(shape, np.float32)) or given[-1])
    assert given[0].shape[0] == FRAMES + 5
    assert decoded.frames.shape[0] == FRAMES
    assert np.shares_memory(decoded.frames, given[0]) and decoded.frames.base is given[0]
    assert decoded.source_frame_count == FRAMES


def test_header_promising_fewer_frames_stops_there(clip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = video_mod._info

    def deflated(*args: object) -> VideoInfo:
        info = real(*args)
        return VideoInfo(info.width, info.height, info.fps, info.frame_count - 5, info.duration, info.has_audio)

    monkeypatch.setattr(video_mod, "_info", deflated)
    decoded = decode_video(clip)
    assert decoded.frames.shape[0] == FRAMES - 5
    assert [read_index(f) for f in decoded.frames] == list(range(FRAMES - 5))


def test_audio_is_decoded_float_planar(clip_audio: Path) -> None:
    decoded = decode_video(clip_audio)
    audio = decoded.audio
    assert audio is not None and audio["sample_rate"] == RATE
    waveform = audio["waveform"]
    assert waveform.dtype == np.float32 and waveform.ndim == 2 and waveform.shape[0] == 2
    assert abs(waveform.shape[1] - 2 * RATE) <= 2048  # 2 s, give or take one AAC frame of padding
    middle = waveform[0, RATE // 2:RATE * 3 // 2]
    assert 0.2 < np.sqrt(np.mean(middle ** 2)) < 0.35  # a 0.4 sine has RMS 0.28
    crossings = np.count_nonzero(np.diff(np.signbit(middle)))
    assert abs(crossings - 2 * TONE_HZ) < 10  # 440 Hz over one second
    assert [read_index(f) for f in decoded.frames] == list(range(FRAMES))


def test_audio_follows_the_frame_window(clip_audio: Path) -> None:
    decoded = decode_video(clip_audio, start_frame=12, stride=2, max_frames=12)  # 0.5 s .. 1.5 s
    assert [read_index(f) for f in decoded.frames] == list(range(12, 36, 2))
    audio = decoded.audio
    assert audio is not None
    assert abs(audio["waveform"].shape[1] - RATE) <= 16


def test_resample_audio_keeps_the_sound_at_the_new_rate() -> None:
    seconds = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * seconds), 0.5 * np.sin(2 * np.pi * 440 * seconds)]).astype(np.float32)
    out = resample_audio(stereo, 48000, 44100)
    assert out.dtype == np.float32 and abs(out.shape[1] - 44100) <= 64 and out.shape[0] == 2
    expected = np.sin(2 * np.pi * 440 * np.arange(out.shape[1]) / 44100)
    assert np.abs(out[0, 500:-500] - expected[500:-500]).max() < 1e-3
    assert np.abs(out[1, 500:-500] - 0.5 * expected[500:-500]).max() < 1e-3
    assert resample_audio(stereo[:1], 48000, 48000).shape == (1, 48000)


def test_estimate_matches_the_decode(clip: Path) -> None:
    info = probe_video(clip)
    assert estimate_decoded_bytes(info) == FRAMES * H * W * 3 * 4
    decoded = decode_video(clip, stride=3, max_frames=10, max_side=200)
    assert estimate_decoded_bytes(info, 3, 10, 200) == decoded.frames.nbytes
    assert estimate_decoded_bytes(info, 1, None, None, start_frame=40) == 8 * H * W * 3 * 4


def test_helpers() -> None:
    assert output_size(1920, 1080, None) == (1920, 1080)
    assert output_size(1920, 1080, 960) == (960, 540)
    assert output_size(1080, 1920, 640) == (360, 640)
    assert planned_frame_count(48, 0, 1, None) == 48
    assert planned_frame_count(48, 5, 3, None) == 15
    assert planned_frame_count(48, 5, 3, 7) == 7
    assert planned_frame_count(48, 60, 1, None) == 0


@pytest.mark.parametrize("kwargs, field", [
    ({"stride": 0}, "stride"), ({"start_frame": -1}, "start_frame"),
    ({"max_frames": 0}, "max_frames"), ({"max_side": 1}, "max_side"),
])
def test_bad_options_are_refused(clip: Path, kwargs: dict, field: str) -> None:
    with pytest.raises(KlingValidationError) as caught:
        decode_video(clip, **kwargs)
    assert caught.value.field == field


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(KlingValidationError) as caught:
        probe_video(tmp_path / "nope.mp4")
    assert caught.value.field == "video" and "nope.mp4" in str(caught.value)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(KlingValidationError):
        decode_video(junk)


def test_progress_can_stop_the_decode(clip: Path) -> None:
    seen: list[tuple[int, int]] = []

    class Stop(Exception):
        pass

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 5:
            raise Stop

    with pytest.raises(Stop):
        decode_video(clip, progress=progress)
    assert seen == [(i, FRAMES) for i in range(1, 6)]
    assert not any(t.name == "kling-video-convert" for t in threading.enumerate())
