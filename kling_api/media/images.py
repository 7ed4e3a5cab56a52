"""Turn a ComfyUI IMAGE, a PIL image or a URL into what Kling's ``image`` fields take.

Kling accepts JPEG or PNG, as an http(s) URL or bare base64 (never a ``data:`` prefix), at most
10 MB, each side at least 300 px, aspect ratio between 1:2.5 and 2.5:1. Whether the 10 MB limit
applies to the file or to the base64 text is not documented, so the limit is applied to the base64
text (the safe side: it is 4/3 of the file). Only public NumPy and Pillow calls: one plain path
that a Pillow release cannot break and a newcomer can read.
"""
from __future__ import annotations

import base64
import io
import logging
import math
from dataclasses import dataclass, field as dataclass_field
from typing import Any

import numpy as np
from PIL import Image

from ..errors import KlingValidationError

logger = logging.getLogger(__name__)

MIN_SIDE = 300
MAX_RATIO = 2.5
MAX_BYTES = 10 * 1024 * 1024  # of base64 text
DEFAULT_QUALITY = 95
MIN_QUALITY = 70
FITS = (None, "pad", "crop")
SIZE_RULE = (f"each side at least {MIN_SIDE} px and aspect ratio between 1:{MAX_RATIO:g} and {MAX_RATIO:g}:1 "
             "(fit='pad' or fit='crop' adapts the image)")

_INPUTS = "a numpy array, a PIL image or an http(s) URL"
_CHUNK_PIXELS = 1 << 16  # floats are converted this many pixels at a time (a 0.8 MB temporary)
_STRIP_ROWS, _ROWS_PER_STRIP = 16, 512  # the size estimate encodes one 16-row strip per 512 rows
_TARGET_SHARE = 0.94  # the estimate aims this far under the limit, so its error rarely costs a save
_MAX_SAVES = 8


@dataclass(frozen=True)
class EncodedImage:
    """An image as Kling's request takes it: ``data`` is bare base64 JPEG, or the URL passed through."""

    data: str = dataclass_field(repr=False)  # megabytes of text have no place in a log line
    width: int
    height: int
    quality: int | None = None


def check_image_size(width: int, height: int, field: str = "image") -> None:
    """Refuse sizes Kling refuses (short side < 300 px, ratio beyond 2.5:1) before any upload."""
    value = f"{width}x{height}"
    if width < MIN_SIDE or height < MIN_SIDE:
        raise KlingValidationError(field, value, SIZE_RULE,
                                   f"{field} is {value}: a side is under {MIN_SIDE} px; allowed: {SIZE_RULE}")
    if 2 * max(width, height) > 5 * min(width, height):
        ratio = max(width, height) / min(width, height)
        raise KlingValidationError(field, value, SIZE_RULE,
                                   f"{field} is {value}: aspect ratio {ratio:.2f}:1 is beyond "
                                   f"{MAX_RATIO:g}:1; allowed: {SIZE_RULE}")


def encode_image(image: Any, *, field: str = "image", fit: str | None = None) -> EncodedImage:
    """``image`` as bare base64 JPEG within Kling's 10 MB of base64 text.

    ``image``: ComfyUI's IMAGE as a float array in 0..1 ((H,W,3), or (H,W,4), (H,W,1), (H,W)), a PIL
    image, or an http(s) URL (passed through untouched). Transparency is composited over black: a
    video frame has no alpha, and black is what ComfyUI shows under transparent pixels. ``fit`` None
    refuses sizes Kling refuses; "pad" pads with black to the nearest allowed size, "crop"
    centre-crops to the allowed ratio and upscales a short side to 300 px. When quality 95 is too
    big, quality is lowered (down to 70), then the image is downscaled; one info line says so.
    """
    if fit not in FITS:
        raise KlingValidationError("fit", fit, ", ".join(repr(f) for f in FITS))
    if isinstance(image, str):
        return _url_passthrough(image, field)
    if isinstance(image, Image.Image):
        picture = _pil_to_rgb(image)
    elif isinstance(image, np.ndarray):
        picture = _pil_to_rgb(_float_to_picture(image, field))
    else:
        raise KlingValidationError(field, type(image).__name__, _INPUTS)
    if fit == "pad":
        picture = _pad(picture)
    elif fit == "crop":
        picture = _crop(picture)
    check_image_size(picture.width, picture.height, field)

    jpeg, quality, encoded = _jpeg_within_limit(picture, field)
    changes = []
    if quality != DEFAULT_QUALITY:
        changes.append(f"JPEG quality lowered from {DEFAULT_QUALITY} to {quality}")
    if encoded is not picture:
        changes.append(f"downscaled from {picture.width}x{picture.height} to {encoded.width}x{encoded.height}")
    if changes:
        logger.info("%s: %s to fit the size limit", field, " and ".join(changes))
    return EncodedImage(data=base64.b64encode(jpeg).decode("ascii"), width=encoded.width, height=encoded.height,
                        quality=quality)


def _url_passthrough(value: str, field: str) -> EncodedImage:
    if not value.startswith(("http://", "https://")) or len(value) < 12:
        raise KlingValidationError(field, value, _INPUTS)
    return EncodedImage(data=value, width=0, height=0)


# --- to an RGB picture -------------------------------------------------------------------------

_ACCEPTED = "a (H,W), (H,W,1), (H,W,3) or (H,W,4) array of floats in 0..1 (ComfyUI's IMAGE)"


def _float_to_picture(array: np.ndarray, field: str) -> Image.Image:
    """ComfyUI's IMAGE as 8-bit pixels: NaN/inf refused, clipped and rounded once, in row chunks
    pasted into the one image Pillow encodes, so no whole uint8 or float copy is ever made."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or array.size == 0:
        raise KlingValidationError(field, f"array of shape {tuple(array.shape)}", _ACCEPTED)
    if array.dtype.kind != "f":
        raise KlingValidationError(field, f"array of dtype {array.dtype}", _ACCEPTED)
    height, width = array.shape[:2]
    channels = array.shape[2] if array.ndim == 3 else 1
    picture = Image.new({1: "L", 3: "RGB", 4: "RGBA"}[channels], (width, height))
    rows = max(1, _CHUNK_PIXELS // width)
    scaled = np.empty((min(rows, height), *array.shape[1:]), np.float32)  # reused by every chunk: fresh
    pixels = np.empty(scaled.shape, np.uint8)  # memory per chunk would cost page faults each time
    for top in range(0, height, rows):
        chunk = array[top:top + rows]
        low, high = float(chunk.min()), float(chunk.max())  # NaN propagates through min/max
        if not (math.isfinite(low) and math.isfinite(high)):
            bad = "NaN" if math.isnan(low) or math.isnan(high) else "infinite values"
            raise KlingValidationError(field, f"float image containing {bad}", "finite floats in 0..1",
                                       f"{field}: the image contains {bad}; allowed: finite floats in 0..1 "
                                       "(check the node that produced it)")
        floats, out = scaled[:len(chunk)], pixels[:len(chunk)]
        np.multiply(chunk, np.float32(255.0), out=floats, dtype=np.float32)
        if low < 0.0 or high > 1.0:
            np.clip(floats, 0.0, 255.0, out=floats)
        np.add(floats, np.float32(0.5), out=out, casting="unsafe")  # the cast truncates: +0.5 rounds
        picture.paste(Image.fromarray(out), (0, top))
    return picture


def _pil_to_rgb(picture: Image.Image) -> Image.Image:
    """RGB; transparency composited over black; 16-bit grey keeps its top byte (not clipped to white)."""
    if picture.mode == "RGB":
        return picture
    if picture.mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    if picture.mode in ("RGBa", "La"):  # premultiplied: the colour already is "over black"
        return picture.convert("RGB")
    if picture.mode in ("RGBA", "LA", "PA"):
        rgba = picture.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (0, 0, 0))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if picture.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(picture) >> 8).astype(np.uint8)).convert("RGB")
    return picture.convert("RGB")


# --- fit to Kling's size rules (the CLI's --fit) -------------------------------------------------

def _pad(picture: Image.Image) -> Image.Image:
    width, height = picture.size
    new_w, new_h = max(width, MIN_SIDE), max(height, MIN_SIDE)
    if 2 * new_w > 5 * new_h:
        new_h = -(-2 * new_w // 5)
    elif 2 * new_h > 5 * new_w:
        new_w = -(-2 * new_h // 5)
    if (new_w, new_h) == (width, height):
        return picture
    canvas = Image.new("RGB", (new_w, new_h), (0, 0, 0))
    canvas.paste(picture, ((new_w - width) // 2, (new_h - height) // 2))
    return canvas


def _crop(picture: Image.Image) -> Image.Image:
    width, height = picture.size
    crop_w, crop_h = _clamp_ratio(width, height)
    if (crop_w, crop_h) != (width, height):
        left, top = (width - crop_w) // 2, (height - crop_h) // 2
        picture = picture.crop((left, top, left + crop_w, top + crop_h))
    short = min(crop_w, crop_h)
    if short < MIN_SIDE:
        factor = MIN_SIDE / short
        new_w, new_h = _clamp_ratio(max(MIN_SIDE, math.ceil(crop_w * factor - 1e-9)),
                                    max(MIN_SIDE, math.ceil(crop_h * factor - 1e-9)))
        picture = picture.resize((new_w, new_h), Image.Resampling.LANCZOS)
    return picture


def _clamp_ratio(width: int, height: int) -> tuple[int, int]:
    """The long side shortened to 2.5 times the short one, where it is longer."""
    if 2 * width > 5 * height:
        width = 5 * height // 2
    elif 2 * height > 5 * width:
        height = 5 * width // 2
    return width, height


# --- one JPEG within the limit -------------------------------------------------------------------

def _save(picture: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _downscaled(picture: Image.Image, factor: float) -> Image.Image:
    """Smaller by ``factor`` per side, never below 300 px or beyond the ratio rule."""
    width, height = picture.size
    factor = max(factor, MIN_SIDE / min(width, height))
    size = _clamp_ratio(max(MIN_SIDE, int(width * factor)), max(MIN_SIDE, int(height * factor)))
    # Bicubic with a reducing gap: several times faster than Lanczos on 50+ MP, and Kling rescales anyway.
    return picture.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _strips(picture: Image.Image) -> tuple[Image.Image, float]:
    """16-row strips spread evenly down the picture, stacked, and their share of its rows. Strips
    start on the JPEG's 16-row blocks, so each encodes almost as in the whole picture (measured:
    within 1 % of the full save's size on the benchmark's photos)."""
    width, height = picture.size
    count = max(8, height // _ROWS_PER_STRIP)
    stack = Image.new("RGB", (width, count * _STRIP_ROWS))
    for index in range(count):
        top = (height - _STRIP_ROWS) * (2 * index + 1) // (2 * count) // _STRIP_ROWS * _STRIP_ROWS
        stack.paste(picture.crop((0, top, width, top + _STRIP_ROWS)), (0, index * _STRIP_ROWS))
    return stack, count * _STRIP_ROWS / height


def _first_guess(picture: Image.Image, target: int) -> tuple[int, Image.Image]:
    """Quality (and, below quality 70, size) for the first full save, from saves of a few strips:
    the highest quality whose estimate fits, found by bisection."""
    if picture.width * picture.height * 3 <= target:
        return DEFAULT_QUALITY, picture  # a JPEG at quality 95 is smaller than the raw pixels (noise: 0.4x)
    stack, share = _strips(picture)

    def estimate(quality: int) -> float:
        return len(_save(stack, quality)) / share

    if estimate(DEFAULT_QUALITY) <= target:
        return DEFAULT_QUALITY, picture
    lowest = estimate(MIN_QUALITY)
    if lowest > target:
        return MIN_QUALITY, _downscaled(picture, math.sqrt(target / lowest))
    fits, fails = MIN_QUALITY, DEFAULT_QUALITY
    while fails - fits > 1:
        middle = (fits + fails) // 2
        fits, fails = (middle, fails) if estimate(middle) <= target else (fits, middle)
    return fits, picture


def _jpeg_within_limit(picture: Image.Image, field: str) -> tuple[bytes, int, Image.Image]:
    """(JPEG, quality, the picture it encodes): highest quality first, then size, within the limit.
    Full saves decide; the estimate only chooses the first one, so a miss costs one more save."""
    limit = 3 * (MAX_BYTES // 4)  # base64 text of n bytes is 4*ceil(n/3) characters
    target = int(limit * _TARGET_SHARE)
    quality, candidate = _first_guess(picture, target)
    for _ in range(_MAX_SAVES):
        jpeg = _save(candidate, quality)
        if len(jpeg) <= limit:
            return jpeg, quality, candidate
        overshoot = len(jpeg) / target
        if quality > MIN_QUALITY:  # about 5 % fewer bytes per quality step near 70..95
            quality = max(MIN_QUALITY, quality - max(2, math.ceil(math.log(overshoot) / 0.05)))
        elif min(candidate.size) > MIN_SIDE:
            candidate = _downscaled(picture, candidate.width / picture.width / math.sqrt(overshoot))
        else:
            break
    raise KlingValidationError(
        field, f"{picture.width}x{picture.height}", f"an image that encodes within {MAX_BYTES} bytes of base64",
        f"{field}: cannot encode {picture.width}x{picture.height} within {MAX_BYTES} bytes of base64 "
        f"even at {candidate.width}x{candidate.height}, quality {quality}")
