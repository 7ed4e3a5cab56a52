"""Test material made here: photo-like pictures and H.264 clips with natural-looking motion.

A "photo" is 1/f (pink) noise, the spectrum of natural images, mapped through a sky/terrain palette
with a horizon, sharp-edged shapes and a little sensor grain. A clip is a camera moving over a larger
such scene (a pan with a slow zoom) with a few objects crossing it, so that the encoder sees real
motion and texture, not flat colour. Everything is seeded: the same files every run.
"""
from __future__ import annotations

import math
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLIPS = {  # name: (width, height, seconds)
    "720p_5s": (1280, 720, 5),
    "1080p_10s": (1920, 1080, 10),
}
#: The 4K clips of ``benchmarks/in_host_4k.py`` (``--only 4k``): made only for that scenario, with x264's
#: fastest preset (a 15 s 4K clip takes minutes on two cores otherwise).
CLIPS_4K = {
    "4k_3s": (3840, 2160, 3),
    "4k_15s": (3840, 2160, 15),
}
#: ``--quick`` stands-in for the 4K clips: the same scenario on small clips, to try it out in seconds.
CLIPS_4K_QUICK = {
    "4k_3s": (640, 360, 3),
    "4k_15s": (640, 360, 15),
}
FPS = 24
_VERSION = 1  # bump when the material changes, so cached files are made again


def pink_noise(height: int, width: int, rng: np.random.Generator, exponent: float = 1.9) -> np.ndarray:
    """Noise with power ~ 1/f**exponent, scaled to 0..1."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = (rng.standard_normal(radius.shape) + 1j * rng.standard_normal(radius.shape)) / radius ** (exponent / 2)
    spectrum[0, 0] = 0
    field = np.fft.irfft2(spectrum, s=(height, width)).astype(np.float32)
    low, high = np.percentile(field, [1, 99])
    return np.clip((field - low) / (high - low), 0, 1)


def photo(width: int, height: int, seed: int = 1) -> np.ndarray:
    """A photo-like uint8 RGB picture (H, W, 3)."""
    rng = np.random.default_rng(seed)
    terrain = pink_noise(height, width, rng)
    detail = pink_noise(height, width, rng, exponent=1.2)
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    horizon = 0.42 + 0.08 * np.sin(np.linspace(0, 3 * math.pi, width, dtype=np.float32))[None, :]
    ground = (yy > horizon + 0.06 * (terrain - 0.5)).astype(np.float32)
    sky = np.stack([0.45 + 0.3 * yy + 0.1 * detail, 0.62 + 0.2 * yy + 0.08 * detail,
                    0.92 - 0.1 * yy + 0.05 * terrain], axis=-1)
    land = np.stack([0.18 + 0.35 * terrain + 0.15 * detail, 0.28 + 0.4 * terrain * detail + 0.1 * detail,
                     0.1 + 0.2 * terrain], axis=-1)
    rgb = sky * (1 - ground[..., None]) + land * ground[..., None]
    rgb += rng.normal(0, 0.012, rgb.shape).astype(np.float32)  # sensor grain
    picture = Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(max(8, width * height // 200_000)):  # houses, rocks, trees: sharp edges
        x, y = int(rng.uniform(0, width)), int(rng.uniform(height * 0.45, height))
        size = int(rng.uniform(0.01, 0.05) * min(width, height))
        colour = tuple(int(v) for v in rng.integers(30, 230, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + size, y + int(size * 0.7)), fill=colour)
        else:
            draw.ellipse((x, y, x + size, y + size), fill=colour)
    return np.asarray(picture.filter(ImageFilter.UnsharpMask(radius=1.5, percent=60)))


def make_clip(path: Path, width: int, height: int, seconds: int, fps: int = FPS, seed: int = 7,
              preset: str = "veryfast") -> Path:
    """A 24 fps H.264 (yuv420p) mp4: a camera panning and slowly zooming over a photo-like scene
    (x264 at CRF 20 with ``preset``)."""
    frames = seconds * fps
    scene_w, scene_h = int(width * 2.0), int(height * 1.5)
    scene = Image.fromarray(photo(scene_w, scene_h, seed))
    rng = np.random.default_rng(seed)
    movers = [(rng.uniform(0, 1), rng.uniform(0.5, 0.9), rng.uniform(-0.25, 0.25), int(rng.uniform(0.04, 0.09) * height),
               tuple(int(v) for v in rng.integers(20, 240, 3))) for _ in range(4)]
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = {"crf": "20", "preset": preset}
        for i in range(frames):
            t = i / max(1, frames - 1)
            zoom = 1.0 + 0.18 * t  # a slow push-in
            crop_w, crop_h = width * 1.25 / zoom, height * 1.25 / zoom
            cx = scene_w * (0.35 + 0.3 * t) + 12 * math.sin(i / 9)
            cy = scene_h * (0.5 + 0.05 * math.sin(2 * math.pi * t)) + 6 * math.cos(i / 7)
            left = min(max(0.0, cx - crop_w / 2), scene_w - crop_w)
            top = min(max(0.0, cy - crop_h / 2), scene_h - crop_h)
            box = (left, top, left + crop_w, top + crop_h)
            view = scene.resize((width, height), Image.Resampling.BILINEAR, box=box)
            draw = ImageDraw.Draw(view)
            for x0, y0, speed, size, colour in movers:  # objects crossing the frame
                x = ((x0 + speed * i / fps) % 1.2 - 0.1) * width
                y = y0 * height + 10 * math.sin(i / 5 + x0 * 10)
                draw.ellipse((x, y, x + size, y + size * 0.8), fill=colour)
            frame = av.VideoFrame.from_ndarray(np.asarray(view), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


def ensure_clips(folder: Path, log=print, clips: dict[str, tuple[int, int, int]] | None = None,
                 preset: str = "veryfast") -> dict[str, Path]:
    """The benchmark clips (``clips``, default :data:`CLIPS`), made once and cached in ``folder``
    (named by size and, for another preset than the default, the preset)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (width, height, seconds) in (CLIPS if clips is None else clips).items():
        tag = name if (width, height, seconds) == CLIPS.get(name) else f"{width}x{height}_{seconds}s"
        if preset != "veryfast":
            tag += f"_{preset}"
        path = folder / f"clip_{tag}_v{_VERSION}.mp4"
        if not path.is_file():
            log(f"making {path.name} ({width}x{height}, {seconds} s at {FPS} fps, H.264, preset {preset})...")
            started = time.monotonic()
            make_clip(path, width, height, seconds, preset=preset)
            log(f"  made in {time.monotonic() - started:.0f} s, {path.stat().st_size / 1e6:.1f} MB")
        paths[name] = path
    return paths


def ensure_photo(folder: Path, side: int) -> Path:
    """A photo-like picture as raw uint8 .npy (loaded by the measuring subprocess)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"photo_{side}_v{_VERSION}.npy"
    if not path.is_file():
        np.save(path.with_suffix(".part.npy"), photo(side, side, seed=side))
        path.with_suffix(".part.npy").replace(path)
    return path
