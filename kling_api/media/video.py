"""Probe and decode a video file into one float32 frame buffer, with PyAV.

A decoded clip is large (1080p, 10 s, 24 fps: 5.7 GB of float32), so the decoder works to two rules:
the memory for the frames is allocated once, at its final size, before decoding (the caller may
provide it, e.g. a torch tensor's ``.numpy()`` view, so that there is no second copy), and nothing
per frame outlives its frame (no list of arrays, no stack at the end). Frames are converted on a
worker thread while the main thread decodes the next ones.
"""
from __future__ import annotations

import logging
import math
import mmap
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import KlingValidationError

logger = logging.getLogger(__name__)

Allocate = Callable[[tuple[int, int, int, int]], np.ndarray]
Progress = Callable[[int, int], None]

_QUEUE_FRAMES = 4  # frames in flight between the decoder and the converter: bounded memory
# Converter threads. With one, colour conversion + float conversion + first-touch page faults of the
# output (about 5 of the 8 CPU-seconds of a 1080p 10 s clip) were serial; two share them over 2 cores.
_CONVERT_THREADS = 2
_TO_UNIT = np.float32(1.0 / 255.0)  # 255 * this is exactly 1.0 in float32


@dataclass(frozen=True)
class VideoInfo:
    """What a file holds, read from its headers without decoding."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration: float
    has_audio: bool


@dataclass(frozen=True)
class DecodedVideo:
    """Frames (N,H,W,3) float32 in 0..1, effective fps, and the audio of the same time span."""

    frames: np.ndarray
    fps: float
    width: int
    height: int
    audio: dict[str, Any] | None
    source_frame_count: int


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Size, rate, frame count and duration from the container, so a node can plan before decoding."""
    with _open(path) as container:
        stream = _video_stream(container, path)
        return _info(container, stream, _audio_stream(container) is not None)


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The decoded size: the longest side at most ``max_side``, aspect kept, sides even.

    Even sides because the frames usually go back into an H.264/yuv420p encoder, which needs them.
    """
    if max_side is None or max(width, height) <= max_side:
        return width, height
    factor = max_side / max(width, height)
    return max(2, round(width * factor / 2) * 2), max(2, round(height * factor / 2) * 2)


def planned_frame_count(frame_count: int, start_frame: int = 0, stride: int = 1,
                        max_frames: int | None = None) -> int:
    """How many frames a decode with these options returns when the file holds ``frame_count``."""
    count = max(0, -(-(frame_count - start_frame) // stride))
    return count if max_frames is None else min(count, max_frames)


def estimate_decoded_bytes(info: VideoInfo, stride: int = 1, max_frames: int | None = None,
                           max_side: int | None = None, *, start_frame: int = 0) -> int:
    """Bytes of the float32 frame buffer a decode will allocate (audio, a few MB, not counted)."""
    _check_options(start_frame, stride, max_frames, max_side)
    width, height = output_size(info.width, info.height, max_side)
    frames = planned_frame_count(info.frame_count, start_frame, stride, max_frames)
    return frames * height * width * 3 * 4


def decode_video(
    path: str | os.PathLike[str],
    *,
    start_frame: int = 0,
    stride: int = 1,
    max_frames: int | None = None,
    max_side: int | None = None,
    allocate: Allocate | None = None,
    progress: Progress | None = None,
) -> DecodedVideo:
    """Decode frames ``start_frame, start_frame+stride, ...`` (at most ``max_frames``) into one buffer.

    ``allocate(shape)`` returns a writable C-contiguous float32 array of that shape (default: a
    fresh anonymous mapping, see :func:`_anonymous_buffer`); the returned frames are that array, or its first n frames when the file held fewer
    frames than its header said. ``max_side`` resizes inside the colour conversion (no full-size
    frame is kept). Skipped frames are decoded (the codec needs them) but never converted.
    ``audio`` covers the same time span as the frames: ``{"waveform": float32 (channels, samples),
    "sample_rate": int}``. ``progress(done, total)`` is called from this thread after each frame and
    may raise to stop decoding (e.g. ComfyUI's interrupt).
    """
    _check_options(start_frame, stride, max_frames, max_side)
    with _open(path) as container:
        vstream = _video_stream(container, path)
        astream = _audio_stream(container)
        info = _info(container, vstream, astream is not None)
        width, height = output_size(info.width, info.height, max_side)
        planned = planned_frame_count(info.frame_count, start_frame, stride, max_frames)
        frames = _allocate(allocate, (planned, height, width, 3))
        logger.debug("decoding %s: %d frames of %dx%d (%.0f MB)", path, planned, width, height, frames.nbytes / 1e6)

        cut_by_max_frames = max_frames is not None and planned == max_frames
        video_start = float(vstream.start_time * vstream.time_base) if vstream.start_time is not None else 0.0
        window_start = video_start + start_frame / info.fps if start_frame and info.fps else None
        window_end = ((window_start or video_start) + planned * stride / info.fps
                      if cut_by_max_frames and info.fps else None)
        audio = _AudioCollector(astream, window_start, window_end) if astream is not None else None

        vstream.thread_type = "AUTO"
        converter = _Converter(frames, width, height, resize=(width, height) != (info.width, info.height))
        decoded = filled = 0
        video_done = planned == 0
        reached_end = True
        try:
            streams = [vstream] + ([astream] if astream is not None else [])
            for packet in container.demux(streams):
                if packet.stream is vstream:
                    if video_done:
                        continue
                    for frame in packet.decode():
                        if decoded >= start_frame and (decoded - start_frame) % stride == 0:
                            converter.put(filled, frame)
                            filled += 1
                            if progress is not None:
                                progress(filled, planned)
                            if filled == planned:
                                video_done = True
                                break
                        decoded += 1
                elif audio is not None and not audio.done:
                    audio.add_packet(packet)
                if video_done and (audio is None or audio.done):
                    reached_end = False
                    break
        finally:
            converter.close()
        if audio is not None:
            audio.flush()

    if filled < planned:
        logger.info("%s: %d frames decoded where the header promised %d", path, filled, planned)
        frames = frames[:filled]
    source_count = decoded if reached_end and not video_done else info.frame_count
    return DecodedVideo(frames=frames, fps=info.fps / stride, width=width, height=height,
                        audio=audio.result() if audio is not None else None,
                        source_frame_count=source_count)


def decode_audio(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The whole sound track as ``{"waveform": float32 (channels, samples), "sample_rate": int}``, None
    when the file is silent. Only the audio stream is demuxed and decoded: no video frame is touched,
    for when nobody wants the frames but the audio output is still given."""
    with _open(path) as container:
        astream = _audio_stream(container)
        if astream is None:
            return None
        audio = _AudioCollector(astream, None, None)
        for packet in container.demux(astream):
            audio.add_packet(packet)
        audio.flush()
    return audio.result()


def resample_audio(waveform: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """float32 planar ``(channels, samples)`` at ``rate`` as the same sound at ``new_rate`` (FFmpeg's
    resampler), so that tracks of a batch made at different rates can be joined."""
    waveform = np.ascontiguousarray(waveform, dtype=np.float32)
    if rate == new_rate or waveform.shape[1] == 0:
        return waveform
    layout = {1: "mono", 2: "stereo"}.get(waveform.shape[0], f"{waveform.shape[0]}c")
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=new_rate)
    frame = av.AudioFrame.from_ndarray(waveform, format="fltp", layout=layout)
    frame.sample_rate, frame.pts = rate, 0
    parts = [out.to_ndarray() for out in (*resampler.resample(frame), *resampler.resample(None))]
    return np.concatenate(parts, axis=1) if parts else np.zeros((waveform.shape[0], 0), np.float32)


# --- helpers -------------------------------------------------------------------------------------

def _check_options(start_frame: int, stride: int, max_frames: int | None, max_side: int | None) -> None:
    if not isinstance(start_frame, int) or start_frame < 0:
        raise KlingValidationError("start_frame", start_frame, "an integer >= 0")
    if not isinstance(stride, int) or stride < 1:
        raise KlingValidationError("stride", stride, "an integer >= 1")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        raise KlingValidationError("max_frames", max_frames, "None or an integer >= 1")
    if max_side is not None and (not isinstance(max_side, int) or max_side < 2):
        raise KlingValidationError("max_side", max_side, "None or an integer >= 2")


def _open(path: str | os.PathLike[str]) -> Any:
    try:
        return av.open(os.fspath(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise KlingValidationError("video", os.fspath(path), "a readable video file",
                                   f"video: cannot open {os.fspath(path)!r}: {exc}") from None


def _video_stream(container: Any, path: Any) -> Any:
    if not container.streams.video:
        raise KlingValidationError("video", os.fspath(path), "a file with a video stream",
                                   f"video: {os.fspath(path)!r} has no video stream")
    return container.streams.video[0]


def _audio_stream(container: Any) -> Any | None:
    for stream in container.streams.audio:
        if stream.codec_context is not None:  # a stream without a decoder is skipped, not fatal
            return stream
    return None


def _info(container: Any, stream: Any, has_audio: bool) -> VideoInfo:
    rate: Fraction | None = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    count = stream.frames or 0
    if count <= 0 and duration > 0 and fps > 0:
        count = math.ceil(duration * fps - 1e-6)  # headers without a count (webm, mkv): round up
    if duration <= 0 and count and fps:
        duration = count / fps
    return VideoInfo(width=stream.codec_context.width, height=stream.codec_context.height, fps=fps,
                     frame_count=int(count), duration=duration, has_audio=has_audio)


def _allocate(allocate: Allocate | None, shape: tuple[int, int, int, int]) -> np.ndarray:
    if allocate is None:
        return _anonymous_buffer(shape)
    buffer = allocate(shape)
    if not isinstance(buffer, np.ndarray):
        buffer = np.asarray(buffer)
    if buffer.shape != shape or buffer.dtype != np.float32 or not buffer.flags.c_contiguous \
            or not buffer.flags.writeable:
        raise KlingValidationError("allocate", f"{buffer.dtype} array of shape {buffer.shape}",
                                   f"a writable C-contiguous float32 array of shape {shape}")
    return buffer


def _anonymous_buffer(shape: tuple[int, int, int, int]) -> np.ndarray:
    """A float32 array in its own private anonymous mapping, returned to the OS when it is freed.

    Not ``np.empty``: NumPy asks for transparent huge pages on large arrays, and on the VMs this
    pack is tested on, first-touching 6 GB of huge pages made a 1080p decode 1.7-2.4x slower
    (4.2-6.1 s against 2.5 s with 4 KiB pages, the same as a torch.empty buffer).
    """
    count = int(np.prod(shape))
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    if count * 4 < (64 << 20) or not flags or not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.empty(shape, np.float32)
    mapping = mmap.mmap(-1, count * 4, flags=flags)
    return np.frombuffer(mapping, np.float32, count=count).reshape(shape)


class _Converter:
    """Converts decoded frames into the buffer on worker threads: sws_scale and numpy release
    the GIL, so colour conversion overlaps with decoding of the next frames."""

    def __init__(self, frames: np.ndarray, width: int, height: int, *, resize: bool) -> None:
        self.frames = frames
        self.size = (width, height) if resize else (None, None)
        # AREA averages when shrinking; plain BILINEAR would alias on large reductions.
        self.interpolation = "AREA" if resize else None
        self.queue: queue.Queue[tuple[int, Any] | None] = queue.Queue(maxsize=_QUEUE_FRAMES)
        self.error: BaseException | None = None
        self.threads = [threading.Thread(target=self._run, name=f"kling-video-convert-{i}", daemon=True)
                        for i in range(_CONVERT_THREADS)]
        for thread in self.threads:
            thread.start()

    def put(self, index: int, frame: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((index, frame))

    def close(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        reformatter = VideoReformatter()
        width, height = self.size
        # One scaler thread: the frame-threaded decoder already keeps the cores busy, and extra
        # scaler threads only contend with it (measured). Older PyAV has no ``threads`` argument.
        options: dict[str, Any] = {"interpolation": self.interpolation, "threads": 1}
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue  # keep draining so that the decoder never blocks on a full queue
            index, frame = item
            try:
                try:
                    rgb_frame = reformatter.reformat(frame, width, height, "rgb24", **options)
                except TypeError:
                    options.pop("threads", None)
                    rgb_frame = reformatter.reformat(frame, width, height, "rgb24", **options)
                rgb = rgb_frame.to_ndarray()
                # dtype pins the float32 loop (NumPy 1.x would pick float16 for uint8 * scalar).
                np.multiply(rgb, _TO_UNIT, out=self.frames[index], dtype=np.float32, casting="unsafe")
            except BaseException as exc:  # re-raised on the decoding thread
                self.error = exc


class _AudioCollector:
    """Audio as float32 planar in one growing buffer, restricted to the frames' time span."""

    def __init__(self, stream: Any, start: float | None, end: float | None) -> None:
        self.stream = stream
        self.start, self.end = start, end
        self.rate = int(stream.rate or stream.codec_context.sample_rate or 0)
        self.resampler: Any = None
        self.buffer: np.ndarray | None = None
        self.filled = 0
        self.position: int | None = None  # sample index (at self.rate) of the next sample
        self.done = False

    def add_packet(self, packet: Any) -> None:
        try:
            for frame in packet.decode():
                self._add_frame(frame)
        except av.error.FFmpegError as exc:
            logger.warning("audio packet skipped: %s", exc)

    def flush(self) -> None:
        if self.resampler is not None and not self.done:
            for out in self.resampler.resample(None):
                self._append(out.to_ndarray())

    def _add_frame(self, frame: Any) -> None:
        if self.done:
            return
        if self.resampler is None:
            self.rate = frame.sample_rate
            self.resampler = av.AudioResampler(format="fltp", layout=frame.layout, rate=frame.sample_rate)
            self.position = round(frame.time * self.rate) if frame.time is not None else 0
            self._reserve(frame.layout.nb_channels if hasattr(frame.layout, "nb_channels")
                          else len(frame.layout.channels))
        for out in self.resampler.resample(frame):
            self._append(out.to_ndarray())

    def _reserve(self, channels: int) -> None:
        span = self.stream.duration * self.stream.time_base if self.stream.duration else 10
        if self.end is not None:
            span = min(float(span), self.end - (self.start or 0.0))
        samples = int(float(span) * self.rate * 1.02) + self.rate
        self.buffer = np.empty((channels, max(samples, 1024)), np.float32)

    def _append(self, samples: np.ndarray) -> None:
        assert self.buffer is not None and self.position is not None
        first, count = self.position, samples.shape[1]
        self.position += count
        lo = 0 if self.start is None else max(0, round(self.start * self.rate) - first)
        hi = count if self.end is None else min(count, round(self.end * self.rate) - first)
        if self.end is not None and self.position >= round(self.end * self.rate):
            self.done = True
        if hi <= lo:
            return
        needed = self.filled + hi - lo
        if needed > self.buffer.shape[1]:
            grown = np.empty((self.buffer.shape[0], max(needed, self.buffer.shape[1] * 3 // 2)), np.float32)
            grown[:, :self.filled] = self.buffer[:, :self.filled]
            self.buffer = grown
        self.buffer[:, self.filled:needed] = samples[:, lo:hi]
        self.filled = needed

    def result(self) -> dict[str, Any] | None:
        if self.buffer is None or self.filled == 0:
            return None
        waveform = self.buffer if self.filled == self.buffer.shape[1] else self.buffer[:, :self.filled].copy()
        return {"waveform": waveform, "sample_rate": self.rate}
