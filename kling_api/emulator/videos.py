"""A real H.264 mp4 made from the submitted image, so clients decode, preview and save true video.

The first frame is the start image (resized), the picture then slowly zooms in, or, when a
camera move is asked for, moves as the camera would (see :func:`motion_for_camera`), and crossfades to ``image_tail`` when one is given, whose resized
copy is the last frame. A frame counter sits in the top-left corner. Size and fps come from the
capability table; ``max_height`` keeps test videos tiny. Renders are cached by their inputs.

An extended video (:func:`extend_mp4`) is the source mp4's frames, decoded, followed by new frames
that carry on from its last frame with the same slow zoom in, at the source's size and fps.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from ..rules.capabilities import ModelCapabilities

log = logging.getLogger(__name__)

FALLBACK_HEIGHT = 720
FALLBACK_FPS = 24
#: The short side of a new-standard resolution the capability table has no output row for (4k: 3840x2160).
RESOLUTION_HEIGHTS = {"720p": 720, "1080p": 1080, "4k": 2160}
ZOOM_END = 1.12
AUDIO_RATE = 44100
AUDIO_FRAME = 1024
TONE_HZ = 440.0
CACHE_ENTRIES = 24
#: Frames are drawn at most this many pixels (1080p) and scaled up to the stream's size (4k: 3840x2160) by
#: the RGB to YUV conversion the encoder needs anyway: a 4K video stays a true 2160p H.264 stream and is
#: made about 2.5 times faster on two cores (drawing and converting 4K frames in Python dominates).
DRAW_MAX_PIXELS = 1920 * 1080


@dataclass(frozen=True)
class VideoSpec:
    """Everything a render depends on (and so its cache key)."""

    start: bytes | None
    tail: bytes | None
    width: int
    height: int
    fps: int
    frames: int
    sound: bool
    #: (zoom at the last frame, shift x, shift y as fractions of the picture, roll in degrees).
    motion: tuple[float, float, float, float] = (ZOOM_END, 0.0, 0.0, 0.0)

    def key(self) -> str:
        digest = hashlib.sha256()
        for part in (self.start or b"", self.tail or b""):
            digest.update(hashlib.sha256(part).digest())
        digest.update(repr((self.width, self.height, self.fps, self.frames, self.sound, self.motion)).encode())
        return digest.hexdigest()


def output_geometry(model: ModelCapabilities, mode: str, aspect: float, max_height: int | None) -> tuple[int, int, int]:
    """(width, height, fps). The table's height is the "720p"-style class, i.e. the short side
    (a portrait 1080p video is 1080 wide); ``max_height`` then caps the pixel height. ``mode`` is a
    legacy mode or a new-standard resolution."""
    out = model.output_for(mode)
    short = out.get("height") or RESOLUTION_HEIGHTS.get(mode or "") or FALLBACK_HEIGHT
    fps = out.get("fps") or FALLBACK_FPS
    width, height = (short * aspect, short) if aspect >= 1 else (short, short / aspect)
    if max_height and height > max_height:
        width, height = width * max_height / height, max_height
    return _even(width), _even(height), int(fps)


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


#: Moves at full strength (axis value 10); a value v moves v/10 of this.
SHIFT_FULL = 0.25      # of the picture's width/height by the last frame
ZOOM_FULL = 0.5        # zoom factor 1.5 in (zoom -10) or 1/1.5 out (zoom +10)
ROLL_FULL = 20.0       # degrees
PRESETS = {  # type: (zoom at the end, shift x, shift y, roll)
    "down_back": (1 / 1.3, 0.0, 0.1, 0.0),
    "forward_up": (1.3, 0.0, -0.1, 0.0),
    "right_turn_forward": (1.3, 0.15, 0.0, 0.0),
    "left_turn_forward": (1.3, -0.15, 0.0, 0.0),
}


def motion_for_camera(camera: dict | None) -> tuple[float, float, float, float]:
    """How the picture moves for a camera_control, so a test can tell the move was honoured:

    horizontal/pan v: the view slides right by v/10 * 25 % of the width (the content moves left);
    vertical/tilt v: the view slides up (content moves down) by v/10 * 25 % of the height;
    zoom v: negative narrows the view (zoom in to 1 + 0.5 * |v|/10), positive widens it (zoom out,
    black around the picture); roll v: the picture turns by v/10 * 20 degrees. No camera: a slow
    zoom in. Presets: a fixed mix of zoom and shift."""
    if not camera:
        return (ZOOM_END, 0.0, 0.0, 0.0)
    kind = camera.get("type")
    if kind in PRESETS:
        return PRESETS[kind]
    config = camera.get("config") or {}
    value = lambda *names: sum(float(config.get(n) or 0) for n in names) / 10  # noqa: E731
    zoom = value("zoom")
    return (1 + ZOOM_FULL * -zoom if zoom <= 0 else 1 / (1 + ZOOM_FULL * zoom),
            SHIFT_FULL * value("horizontal", "pan"), -SHIFT_FULL * value("vertical", "tilt"),
            ROLL_FULL * value("roll"))


_cache: OrderedDict[str, bytes] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}
#: One encode at a time: the emulator shares 2 cores with the tests that drive it.
_encode_slot = threading.Lock()


def render_mp4(spec: VideoSpec) -> bytes:
    """The mp4 for ``spec``, rendered once per distinct input (concurrent asks wait for the first)."""
    data = _cached(spec.key(), lambda: _encode(spec))
    log.debug("rendered %dx%d %d frames at %d fps (%d bytes)", spec.width, spec.height, spec.frames,
              spec.fps, len(data))
    return data


def extend_mp4(source: bytes, seconds: float) -> bytes:
    """The whole extended clip: every frame of the mp4 ``source``, then ``round(seconds * fps)`` new
    frames that carry on from its last frame with a slow zoom in; same size and fps (no sound)."""
    key = hashlib.sha256(source).hexdigest() + f"+{seconds!r}"
    return _cached(key, lambda: _encode_extended(source, seconds))


def mp4_seconds(data: bytes) -> float:
    """An mp4's length in seconds, as its container says (the longest stream, audio included)."""
    with av.open(io.BytesIO(data)) as container:
        if container.duration is not None:
            return container.duration / av.time_base
        return max(float(s.duration * s.time_base) for s in container.streams if s.duration is not None)


def _cached(key: str, make: Callable[[], bytes]) -> bytes:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        with _encode_slot:
            data = make()
        with _cache_lock:
            _cache[key] = data
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
            _key_locks.pop(key, None)
    return data


def _load(data: bytes, size: tuple[int, int], exact: bool) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        if exact:  # the start image keeps all of its content: first frame == image resized
            # Pre-scaled to twice the output, so the per-frame crops stay sharp and cheap.
            limit = (size[0] * 2, size[1] * 2)
            return img.resize(limit, Image.BILINEAR) if img.width > limit[0] else img.copy()
        return ImageOps.fit(img, size, Image.BILINEAR)


def draw_size(width: int, height: int) -> tuple[int, int]:
    """The size frames of a ``width`` x ``height`` video are drawn at: as is up to 1080p, else scaled down
    (aspect kept) to DRAW_MAX_PIXELS."""
    if width * height <= DRAW_MAX_PIXELS:
        return width, height
    scale = (DRAW_MAX_PIXELS / (width * height)) ** 0.5
    return _even(width * scale), _even(height * scale)


def _frames(spec: VideoSpec) -> Iterator[Image.Image]:
    size = draw_size(spec.width, spec.height)
    start = _load(spec.start, size, exact=True) if spec.start else None
    tail = _load(spec.tail, size, exact=False) if spec.tail else None
    moving = start if start is not None else tail.resize((size[0] * 2, size[1] * 2), Image.BILINEAR)
    yield from _animate(moving, tail if start is not None else None, size, spec.frames, spec.motion)


def _animate(moving: Image.Image, tail: Image.Image | None, size: tuple[int, int], count: int,
             motion: tuple[float, float, float, float], *, skip: int = 0,
             numbers: tuple[int, int] | None = None) -> Iterator[Image.Image]:
    """``count`` frames of ``moving`` going through ``motion`` (the first shows all of it), less the
    first ``skip``; each stamped ``first+n/total`` (``numbers`` = (first, total); default 1/count)."""
    zoom_end, shift_x, shift_y, roll = motion
    # Room around the picture for a zoom out or a slide beyond its edges (shown black).
    margin_x = max(0.0, abs(shift_x) * moving.width + moving.width / (2 * zoom_end) - moving.width / 2)
    margin_y = max(0.0, abs(shift_y) * moving.height + moving.height / (2 * zoom_end) - moving.height / 2)
    if roll:
        margin_x, margin_y = margin_x + moving.width / 2, margin_y + moving.height / 2
    mx, my = int(np.ceil(margin_x)) + 2 if margin_x else 0, int(np.ceil(margin_y)) + 2 if margin_y else 0
    base_w, base_h = moving.width, moving.height
    if mx or my:
        canvas = Image.new("RGB", (base_w + 2 * mx, base_h + 2 * my))
        canvas.paste(moving, (mx, my))
        moving = canvas
    tail_array = np.asarray(tail, dtype=np.float32) if tail is not None else None
    font = _font(size[1])
    first, total = numbers or (1, count)
    last = max(count - 1, 1)
    for i in range(skip, count):
        t = i / last
        scale = 1 + (zoom_end - 1) * t
        w, h = base_w / scale, base_h / scale
        cx = moving.width / 2 + shift_x * base_w * t
        cy = moving.height / 2 + shift_y * base_h * t
        source = moving.rotate(roll * t, resample=Image.BILINEAR) if roll and i else moving
        frame = source.resize(size, Image.BILINEAR, box=(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        if tail_array is not None:
            weight = t * t * (3 - 2 * t)  # smoothstep: 0 at the first frame, exactly 1 at the last
            mixed = np.asarray(frame, dtype=np.float32) * (1 - weight) + tail_array * weight
            frame = Image.fromarray(np.clip(mixed + 0.5, 0, 255).astype(np.uint8))
        _stamp(frame, f"{first + i - skip}/{total}", font)
        yield frame


def _font(height: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=max(8, height // 18))
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def _stamp(frame: Image.Image, text: str, font: ImageFont.ImageFont) -> None:
    draw = ImageDraw.Draw(frame)
    left, top, right, bottom = draw.textbbox((2, 2), text, font=font)
    draw.rectangle((0, 0, right + 2, bottom + 2), fill=(0, 0, 0))
    draw.text((2, 2), text, fill=(255, 255, 255), font=font)


def _encode(spec: VideoSpec) -> bytes:
    return _write_mp4(_frames(spec), spec.width, spec.height, spec.fps, spec.sound)


def _encode_extended(source: bytes, seconds: float) -> bytes:
    with av.open(io.BytesIO(source)) as container:
        stream = container.streams.video[0]
        fps = int(round(float(stream.average_rate or stream.base_rate or FALLBACK_FPS)))
        size = (stream.codec_context.width, stream.codec_context.height)

    def frames() -> Iterator[Image.Image]:
        last, count = None, 0
        with av.open(io.BytesIO(source)) as container:
            for frame in container.decode(video=0):
                last, count = frame.to_image(), count + 1
                yield last
        if last is None:
            raise ValueError("the source video has no frames")
        added = int(round(seconds * fps))
        # The zoom starts at the source's last frame (step 0, not shown again) and takes `added` steps.
        yield from _animate(last, None, size, added + 1, (ZOOM_END, 0.0, 0.0, 0.0), skip=1,
                            numbers=(count + 1, count + added))

    return _write_mp4(frames(), size[0], size[1], fps, sound=False)


def _write_mp4(images: Iterable[Image.Image], width: int, height: int, fps: int, sound: bool) -> bytes:
    fd, path = tempfile.mkstemp(suffix=".mp4", prefix="kling-emulator-")
    os.close(fd)
    try:
        with av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
            video = container.add_stream("libx264", rate=fps)
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            video.options = {"preset": "ultrafast", "crf": "18"}  # the fastest preset (3 s of 4K: about 5 s here)
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if sound else None
            samples_done = 0
            for index, image in enumerate(images):
                frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
                if (image.width, image.height) != (width, height):  # drawn smaller (draw_size): scaled up here
                    frame = frame.reformat(width=width, height=height, format="yuv420p")
                frame.pts = index
                container.mux(video.encode(frame))
                if audio is not None:  # keep the audio up with the picture, so the file interleaves
                    samples_done = _tone(container, audio, samples_done, (index + 1) * AUDIO_RATE // fps)
            container.mux(video.encode(None))
            if audio is not None:
                container.mux(audio.encode(None))
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


def _tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, done: int,
          until: int) -> int:
    """A quiet 440 Hz sine from sample ``done`` to ``until``, in AAC-sized frames."""
    while until - done >= AUDIO_FRAME:
        t = np.arange(done, done + AUDIO_FRAME) / AUDIO_RATE
        wave = (0.2 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, done
        container.mux(stream.encode(frame))
        done += AUDIO_FRAME
    return done
