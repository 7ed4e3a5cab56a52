"""Tensors in and out: IMAGE batches to encodable arrays, downloaded mp4s to IMAGE frames and VIDEO.

Frames are decoded by the library straight into one preallocated torch tensor (the numpy view
of its memory), so a clip is held once, never as a list of frames plus a stacked copy.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from comfy_api.latest import InputImpl, Types

from ..kling_api.errors import KlingValidationError
from ..kling_api.capabilities import capability_table
from ..kling_api.video import (Reservation, VideoInfo, decode_video, output_size, planned_frame_count, probe_video,
                               resample_audio)

log = logging.getLogger(__name__)


def batch_images(image: torch.Tensor | None, field: str) -> list[np.ndarray]:
    """One HWC float array per batch item (views, no copies on CPU)."""
    if image is None:
        return []
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[0] == 0:
        raise KlingValidationError(field, tuple(image.shape), "a non-empty IMAGE batch [B, H, W, C]")
    array = image.detach().cpu().numpy()
    return [array[i] for i in range(array.shape[0])]


def gib(nbytes: int) -> str:
    return f"{nbytes / 1024**3:.2f} GB" if nbytes >= 1024**3 else f"{nbytes / 1024**2:.0f} MB"


@dataclass
class DecodedFrames:
    frames: torch.Tensor
    fps: float
    #: ComfyUI AUDIO ``{"waveform": [1, C, T], "sample_rate"}`` of the decoded span, None when silent.
    audio: dict | None = None


@dataclass(frozen=True)
class FramePlan:
    """What decoding will produce, known from the headers before any frame is decoded."""

    frames: int
    width: int
    height: int
    infos: tuple[VideoInfo, ...]

    @property
    def nbytes(self) -> int:
        return self.frames * self.height * self.width * 3 * 4

    def describe(self) -> str:
        return f"{self.frames} frames {self.width}x{self.height}: {gib(self.nbytes)} as IMAGE"


def decode_options(frame_cap: int = 0, frame_stride: int = 1, max_side: int = 0) -> dict:
    """The node's widgets (0 = off) as decode_video's options (None = off)."""
    return {"max_frames": int(frame_cap) or None, "stride": max(1, int(frame_stride or 1)),
            "max_side": int(max_side) or None}


def plan_frames(paths: list[Path], frame_cap: int = 0, frame_stride: int = 1, max_side: int = 0) -> FramePlan:
    """Frame count, size and memory of the IMAGE that decode_frames will return (one size per batch)."""
    options = decode_options(frame_cap, frame_stride, max_side)
    infos = tuple(probe_video(p) for p in paths)
    width, height = infos[0].width, infos[0].height
    for path, info in zip(paths, infos):
        if (info.width, info.height) != (width, height):
            raise KlingValidationError("image", f"{info.width}x{info.height} for {path.name}",
                                       f"one size for every video of a batch ({width}x{height})")
    out_w, out_h = output_size(width, height, options["max_side"])
    count = sum(planned_frame_count(info.frame_count, 0, options["stride"], options["max_frames"]) for info in infos)
    return FramePlan(frames=count, width=out_w, height=out_h, infos=infos)


#: ``KLING_PRETOUCH=0``: take the frames' memory only when the video is there, not during the Kling wait.
PRETOUCH_ENV = "KLING_PRETOUCH"
_FRAME_SLACK = 1.04  # frames reserved beyond the table's duration x fps (a video a frame or two longer)


def reserve_frames(model_name: str, mode: str | None, duration: str, aspects: list[float], frame_cap: int = 0,
                   frame_stride: int = 1, max_side: int = 0) -> Reservation:
    """Memory for the IMAGE of videos Kling is still making, to be first-touched while it works (call
    ``start()`` once a task exists; see :class:`~kling_api.video.Reservation`). Its size comes from the
    capability table's output (height = the short side, fps) and the start images' aspect ratios.
    Nothing is reserved when the table does not know the output, when ``KLING_PRETOUCH=0``, or when
    the machine has less than that plus 2 GB available."""
    nbytes = 0
    output = capability_table().get(model_name).output_for(mode)
    short, fps = output.get("height"), output.get("fps")
    if short and fps and os.environ.get(PRETOUCH_ENV, "1") != "0":
        options = decode_options(frame_cap, frame_stride, max_side)
        frames = planned_frame_count(int(float(duration) * fps * _FRAME_SLACK) + 1, 0, options["stride"],
                                     options["max_frames"])
        for aspect in aspects:
            width, height = (short * aspect, short) if aspect >= 1 else (short, short / aspect)
            width, height = output_size(round(width / 2) * 2, round(height / 2) * 2, options["max_side"])
            nbytes += frames * height * width * 3 * 4
        if nbytes + (2 << 30) > _available_memory():
            nbytes = 0
    return Reservation(nbytes)


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as info:
            return next(int(line.split()[1]) * 1024 for line in info if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return 0


def decode_frames(paths: list[Path], frame_cap: int = 0, frame_stride: int = 1, max_side: int = 0,
                  plan: FramePlan | None = None, reservation: Reservation | None = None) -> DecodedFrames:
    """The frames of every video, concatenated in order, in one float32 tensor [N, H, W, 3].

    ``frame_cap`` (frames per video), ``frame_stride`` (every n-th frame) and ``max_side`` (longest
    side, aspect kept) are applied while decoding, never after: the tensor is allocated at the
    reduced size and skipped frames are never converted. 0 turns an option off. The tensor is the
    front of ``reservation`` when that is large enough (memory touched while Kling worked)."""
    options = decode_options(frame_cap, frame_stride, max_side)
    plan = plan or plan_frames(paths, frame_cap, frame_stride, max_side)
    capacity, width, height = plan.frames, plan.width, plan.height
    reserved = reservation.take((capacity, height, width, 3)) if reservation is not None else None
    tensor = (torch.from_numpy(reserved) if reserved is not None
              else torch.empty((capacity, height, width, 3), dtype=torch.float32))
    ahead = "" if reserved is None else f" (reserved during the Kling wait, {gib(reservation.touched)} touched ahead)"
    log.info("Decoding %d frames of %dx%d into %s%s", capacity, width, height, gib(tensor.numel() * 4), ahead)
    written = 0
    fps = plan.infos[0].fps / options["stride"]
    tracks: list[tuple[dict | None, float]] = []
    for path in paths:
        start = written

        def allocate(shape: tuple[int, ...], start: int = start) -> np.ndarray:
            if start + shape[0] > capacity or tuple(shape[1:]) != (height, width, 3):
                raise ValueError(f"decoder asked for {shape}, beyond the {capacity}-frame buffer")
            return tensor[start:start + shape[0]].numpy()

        decoded = decode_video(path, allocate=allocate, **options)
        written = start + decoded.frames.shape[0]
        fps = decoded.fps
        tracks.append((decoded.audio, decoded.frames.shape[0] / decoded.fps if decoded.fps else 0.0))
    return DecodedFrames(frames=tensor[:written], fps=float(fps), audio=join_audio(tracks))


def join_audio(spans: list[tuple[dict | None, float]]) -> dict | None:
    """The audio of every video (track, seconds of its frames) in order, as one ComfyUI AUDIO
    ``{"waveform": float32 [1, C, T], "sample_rate": int}``; None when no video has sound.

    Each track fills exactly its frames' time span (trimmed, or padded with silence; a silent video
    of a batch with sound is silence of its length), so the sound stays in step with the IMAGE
    frames and the AUDIO lasts as long as they do. Tracks at another rate are resampled to the
    first one's; a mono track in a stereo batch plays on both channels."""
    present = [t for t, _ in spans if t is not None]
    if not present:
        return None
    rate = int(present[0]["sample_rate"])
    channels = max(int(np.asarray(t["waveform"]).shape[0]) for t in present)
    # Boundaries from the running total of seconds, so that rounding never drifts over a batch.
    ends = [round(end * rate) for end in np.cumsum([seconds for _, seconds in spans])]
    waveform = torch.zeros((1, channels, ends[-1] if ends else 0), dtype=torch.float32)
    start = 0
    for (track, _), end in zip(spans, ends):
        if track is not None:
            wave = np.asarray(track["waveform"], dtype=np.float32)
            if int(track["sample_rate"]) != rate:
                wave = resample_audio(wave, int(track["sample_rate"]), rate)
            count = min(end - start, wave.shape[1])
            for channel in range(channels):
                waveform[0, channel, start:start + count] = torch.from_numpy(wave[channel % wave.shape[0], :count])
        start = end
    return {"waveform": waveform, "sample_rate": rate}


def video_output(paths: list[Path], decoded: DecodedFrames):
    """The VIDEO output: the file itself for one task (no re-encode, audio kept), the frames for a batch."""
    if len(paths) == 1:
        return InputImpl.VideoFromFile(str(paths[0]))
    components = Types.VideoComponents(images=decoded.frames, frame_rate=Fraction(decoded.fps).limit_denominator(1001),
                                       audio=decoded.audio)
    return InputImpl.VideoFromComponents(components)
