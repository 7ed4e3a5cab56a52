"""Tensors in and out: IMAGE batches to encodable arrays, downloaded mp4s to IMAGE frames and VIDEO.

Frames are decoded by the library straight into one preallocated torch tensor (the numpy view
of its memory), so a clip is held once, never as a list of frames plus a stacked copy.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from comfy_api.latest import InputImpl, Types

from ..kling_api.errors import KlingValidationError
from ..kling_api.media.memory import FramePlanSize, check_frames_fit, size_text
from ..kling_api.media.remux import concat_videos
from ..kling_api.media.video import (VideoInfo, decode_audio, decode_video, output_size, planned_frame_count,
                                     probe_video, resample_audio)

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
    frame_stride: int = 1

    @property
    def size(self) -> FramePlanSize:
        """The allocation, as the memory check reads it."""
        return FramePlanSize(frames=self.frames, width=self.width, height=self.height, videos=len(self.infos),
                             frame_stride=self.frame_stride)

    @property
    def nbytes(self) -> int:
        return self.size.nbytes

    @property
    def seconds(self) -> list[float]:
        """Each video's length (its frames over its fps): what its audio spans."""
        return [info.frame_count / info.fps if info.fps else info.duration for info in self.infos]

    def describe(self) -> str:
        return f"{self.frames} frames {self.width}x{self.height}: {size_text(self.nbytes)} as IMAGE"

    def check_fits(self, paths: list[Path]) -> None:
        """Refuse, before any frame is decoded, frames that would not fit the memory available."""
        check_frames_fit(self.size, saved=", ".join(p.name for p in paths))


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
    return FramePlan(frames=count, width=out_w, height=out_h, infos=infos, frame_stride=options["stride"])


def decode_frames(paths: list[Path], frame_cap: int = 0, frame_stride: int = 1, max_side: int = 0,
                  plan: FramePlan | None = None) -> DecodedFrames:
    """The frames of every video, concatenated in order, in one float32 tensor [N, H, W, 3].

    ``frame_cap`` (frames per video), ``frame_stride`` (every n-th frame) and ``max_side`` (longest
    side, aspect kept) are applied while decoding, never after: the tensor is allocated at the
    reduced size and skipped frames are never converted. 0 turns an option off."""
    options = decode_options(frame_cap, frame_stride, max_side)
    plan = plan or plan_frames(paths, frame_cap, frame_stride, max_side)
    capacity, width, height = plan.frames, plan.width, plan.height
    plan.check_fits(paths)
    tensor = torch.empty((capacity, height, width, 3), dtype=torch.float32)
    log.info("Decoding %d frames of %dx%d into %s", capacity, width, height, size_text(tensor.numel() * 4))
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


def audio_only(paths: list[Path], plan: FramePlan) -> DecodedFrames:
    """For an unlinked frames output: the audio and fps, and no frame decoded (an empty IMAGE of the
    video's size: nothing reads it)."""
    frames = torch.zeros((0, plan.height, plan.width, 3), dtype=torch.float32)
    tracks = [(decode_audio(path) if info.has_audio else None, seconds)
              for path, info, seconds in zip(paths, plan.infos, plan.seconds)]
    return DecodedFrames(frames=frames, fps=float(plan.infos[0].fps), audio=join_audio(tracks))


def video_output(paths: list[Path], decoded: DecodedFrames, joined: Path | None = None):
    """The VIDEO output: the file itself for one task (no re-encode, audio kept); for a batch, the videos
    joined into ``joined`` without decoding when no frames were decoded, else the decoded frames."""
    if len(paths) == 1:
        return InputImpl.VideoFromFile(str(paths[0]))
    if decoded.frames.shape[0] == 0 and joined is not None:
        return InputImpl.VideoFromFile(str(concat_videos(paths, joined)))
    components = Types.VideoComponents(images=decoded.frames, frame_rate=Fraction(decoded.fps).limit_denominator(1001),
                                       audio=decoded.audio)
    return InputImpl.VideoFromComponents(components)
