"""Turn an image (numpy array, PIL image or URL) into what Kling's ``image`` fields take.

Kling accepts JPEG or PNG, as an http(s) URL or bare base64 (never a ``data:`` prefix), at most
10 MB, each side at least 300 px, aspect ratio between 1:2.5 and 2.5:1. Whether the 10 MB limit
applies to the file or to the base64 text is not documented, so the limit is applied to the base64
text (the safe side: it is 4/3 of the file).

Speed matters because a 4096x4096 input is common: the size of the JPEG is *predicted* from a
sample of the image before the one full encode, so that an image that needs a lower quality or a
smaller size still costs about one encode, not a search over full encodes.
"""
from __future__ import annotations

import binascii
import io
import logging
import math
import os
from dataclasses import dataclass, field as dataclass_field
from typing import Any, Union

import numpy as np
from PIL import Image

from .errors import KlingValidationError
from .float_pixels import FloatRows, convert_float
from .jpeg_bands import BandImage, encode_jpeg_base64

logger = logging.getLogger(__name__)

MIN_SIDE = 300
MAX_RATIO = 2.5
MAX_BYTES = 10 * 1024 * 1024
DEFAULT_QUALITY = 95
MIN_QUALITY = 70
FITS = (None, "pad", "pad_edge", "crop")
FORMATS = ("auto", "jpeg", "png")
SIZE_RULE = (f"each side at least {MIN_SIDE} px and aspect ratio between 1:{MAX_RATIO:g} and {MAX_RATIO:g}:1 "
             "(fit='pad' or fit='crop' adapts the image)")

# The prediction aims this far under the limit so that sampling error does not cost a second encode.
_TARGET_MARGIN = 0.94
# Sample: tiles of 64x16 px on a 16 px grid (the JPEG 4:2:0 MCU), so sampled blocks encode exactly as
# in the full image; only the DC prediction at tile seams differs, which overestimates (safe side).
_TILE_W, _TILE_H, _ALIGN = 64, 16, 16
_SAMPLE_MIN_PX, _SAMPLE_MAX_PX, _SAMPLE_FRACTION = 64 * 1024, 128 * 1024, 0.02
_JPEG_HEADER_BYTES = 700
_MAX_FULL_ENCODES = 6
_BANDED_PIXELS = 1 << 19  # JPEG encodes of this many pixels on run in bands on every core (jpeg_bands)
_WORKERS = max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
_LOG_SIZE_PER_QUALITY = 0.05  # d ln(JPEG bytes) / d quality near 70..95 for photos


@dataclass(frozen=True)
class EncodedImage:
    """An image as Kling's request takes it: ``data`` is bare base64 (or the URL when format is "url")."""

    data: str = dataclass_field(repr=False)  # megabytes of text have no place in a log line
    format: str
    width: int
    height: int
    quality: int | None = None
    nbytes: int = 0
    scale: float = 1.0


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


def encode_image(
    image: Any,
    *,
    field: str = "image",
    fmt: str = "auto",
    max_bytes: int = MAX_BYTES,
    fit: str | None = None,
) -> EncodedImage:
    """Encode ``image`` as bare base64 JPEG/PNG within ``max_bytes`` of base64 text.

    ``image``: numpy array (H,W,3 RGB, H,W,4 RGBA, H,W or H,W,1 grey, or a batch of one of these;
    uint8, uint16, bool or float in 0..1), a PIL image, or an http(s) URL (passed through untouched).
    Transparency is composited over black: a video frame has no alpha, and black is what ComfyUI
    shows under transparent pixels. ``fmt="auto"`` therefore means JPEG (quality 95 when it fits).
    ``fit`` None refuses sizes Kling refuses; "pad" pads with black (``"pad_edge"``: repeats the edge
    pixels) to the nearest allowed size, "crop" centre-crops to the allowed ratio and upscales a
    short side to 300 px. When the encoding is too big, quality is lowered (down to 70), then the
    image is downscaled; one info line says what was done.
    """
    if fmt not in FORMATS:
        raise KlingValidationError("fmt", fmt, ", ".join(FORMATS))
    if fit not in FITS:
        raise KlingValidationError("fit", fit, ", ".join(repr(f) for f in FITS))
    if not isinstance(max_bytes, int) or max_bytes < 1024:
        raise KlingValidationError("max_bytes", max_bytes, "an integer of at least 1024")
    if isinstance(image, str):
        return _url_passthrough(image, field)

    picture = _to_picture(image, field)
    if fit is not None:
        picture = _fit(_whole(picture), fit)
    check_image_size(picture.width, picture.height, field)

    # base64 text of n bytes is 4*ceil(n/3) characters.
    raw_limit = 3 * (max_bytes // 4)
    kind = "png" if fmt == "png" else "jpeg"
    payload, quality, scaled, note = _fit_payload(picture, kind, raw_limit, field, max_bytes)
    data = payload.text()
    if note:
        logger.info("%s: %s", field, note)
    return EncodedImage(data=data, format=kind, width=scaled.width, height=scaled.height,
                        quality=quality if kind == "jpeg" else None, nbytes=len(data),
                        scale=scaled.width / picture.width if scaled is not picture else 1.0)


# --- input normalisation -------------------------------------------------------------------------

def _url_passthrough(value: str, field: str) -> EncodedImage:
    if not value.startswith(("http://", "https://")) or len(value) < 12:
        raise KlingValidationError(field, value, "a numpy array, a PIL image or an http(s) URL")
    return EncodedImage(data=value, format="url", width=0, height=0, quality=None, nbytes=len(value))


# What gets encoded: an RGB PIL image, or ComfyUI's float IMAGE converted only where it is read.
Picture = Union[Image.Image, FloatRows]


def _whole(picture: Picture) -> Image.Image:
    return picture.whole() if isinstance(picture, FloatRows) else picture


def _to_picture(image: Any, field: str) -> Picture:
    """An RGB picture, with at most one copy of the pixels on the way."""
    if isinstance(image, Image.Image):
        return _pil_to_rgb(image, field)
    try:
        array = np.asarray(image)
    except Exception as exc:  # an object numpy cannot read (e.g. a GPU tensor)
        raise KlingValidationError(field, type(image).__name__,
                                   "a numpy array, a PIL image or an http(s) URL",
                                   f"{field}: cannot read a {type(image).__name__} as an image ({exc})") from None
    return _array_to_picture(array, field)


def _pil_to_rgb(picture: Image.Image, field: str) -> Image.Image:
    """RGB; transparency composited over black. Loaded: a file opened lazily cannot be read by the
    band encoder's threads at once."""
    picture.load()
    if picture.mode == "RGB":
        return picture
    if picture.mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    if picture.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        if picture.mode in ("RGBa", "La"):  # premultiplied: the colour already is "over black"
            return picture.convert("RGB")
        rgba = picture.convert("RGBA")
        alpha = rgba.getchannel("A")
        if alpha.getextrema()[0] == 255:
            return rgba.convert("RGB")
        canvas = Image.new("RGB", rgba.size, (0, 0, 0))
        canvas.paste(rgba, mask=alpha)
        return canvas
    if picture.mode.startswith("I;16"):  # 16-bit grey: keep the top byte, as for uint16 arrays
        return _whole(_array_to_picture(np.asarray(picture), field))
    return picture.convert("RGB")


_ACCEPTED = "a (H,W), (H,W,1), (H,W,3) or (H,W,4) array of uint8, uint16, bool or float in 0..1"


def _array_to_picture(array: np.ndarray, field: str) -> Picture:
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise KlingValidationError(field, f"array of shape {tuple(array.shape)}", _ACCEPTED)
    if array.size == 0:
        raise KlingValidationError(field, f"empty array of shape {tuple(array.shape)}", _ACCEPTED)
    if array.dtype.kind == "f" and array.ndim == 3 and array.shape[2] == 3:
        return FloatRows(array, field)  # ComfyUI's IMAGE: converted band by band as it is encoded
    array = _to_uint8(array, field)
    if array.ndim == 2:
        return Image.fromarray(array).convert("RGB")  # mode from the shape: L
    if array.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(array), field)  # RGBA
    return Image.fromarray(array)  # RGB


def _to_uint8(array: np.ndarray, field: str) -> np.ndarray:
    """uint8 pixels; floats as ``convert_float`` makes them."""
    kind = array.dtype.kind
    if array.dtype == np.uint8:
        return array
    if kind == "b":
        return array.view(np.uint8) * np.uint8(255)
    if kind == "u" and array.dtype.itemsize == 2:  # uint16, either byte order
        return (array >> 8).astype(np.uint8)
    if kind != "f":
        raise KlingValidationError(field, f"array of dtype {array.dtype}", _ACCEPTED)
    out = np.empty(array.shape, np.uint8)

    def write_rows(top: int, pixels: np.ndarray) -> None:
        out[top:top + pixels.shape[0]] = pixels

    convert_float(array, field, write_rows)
    return out


# --- fit to Kling's size rules -------------------------------------------------------------------

def _fit(picture: Image.Image, fit: str) -> Image.Image:
    width, height = picture.size
    if fit == "crop":
        return _fit_crop(picture)
    new_w, new_h = max(width, MIN_SIDE), max(height, MIN_SIDE)
    if 2 * new_w > 5 * new_h:
        new_h = -(-2 * new_w // 5)
    elif 2 * new_h > 5 * new_w:
        new_w = -(-2 * new_h // 5)
    if (new_w, new_h) == (width, height):
        return picture
    left, top = (new_w - width) // 2, (new_h - height) // 2
    if fit == "pad_edge":
        array = np.asarray(picture)
        padded = np.pad(array, ((top, new_h - height - top), (left, new_w - width - left), (0, 0)), mode="edge")
        return Image.fromarray(padded)
    canvas = Image.new("RGB", (new_w, new_h), (0, 0, 0))
    canvas.paste(picture, (left, top))
    return canvas


def _fit_crop(picture: Image.Image) -> Image.Image:
    width, height = picture.size
    crop_w, crop_h = width, height
    if 2 * width > 5 * height:
        crop_w = 5 * height // 2
    elif 2 * height > 5 * width:
        crop_h = 5 * width // 2
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
    """Undo a rounding step that pushed the ratio just beyond 2.5:1."""
    if 2 * width > 5 * height:
        width = 5 * height // 2
    elif 2 * height > 5 * width:
        height = 5 * width // 2
    return width, height


# --- encoding under a byte budget ----------------------------------------------------------------

class _Payload:
    """An encoded file: its size in bytes, and its base64 text (made on demand, or while encoding)."""

    def __init__(self, size: int, raw: bytes | None = None, text: str | None = None) -> None:
        self.size, self._raw, self._text = size, raw, text

    def text(self) -> str:
        if self._text is None:
            assert self._raw is not None
            self._text = binascii.b2a_base64(self._raw, newline=False).decode("ascii")
        return self._text


def _encode(picture: Picture, kind: str, quality: int | None) -> _Payload:
    """One full encode of the image (tests count calls of this function)."""
    if kind == "jpeg" and quality is not None and picture.width * picture.height >= _BANDED_PIXELS:
        banded = encode_jpeg_base64(picture.size, _band_maker(picture), quality, _WORKERS)
        if banded is not None:
            return _Payload(banded[0], text=banded[1])
    raw = _save(_whole(picture), kind, quality)
    return _Payload(len(raw), raw=raw)


def _band_maker(picture: Picture) -> BandImage:
    if isinstance(picture, FloatRows):
        return picture.band
    return lambda top, bottom: picture.crop((0, top, picture.width, bottom))


def _save(picture: Image.Image, kind: str, quality: int | None) -> bytes:
    buffer = io.BytesIO()
    if kind == "jpeg":
        picture.save(buffer, "JPEG", quality=quality)
    else:
        picture.save(buffer, "PNG")
    return buffer.getvalue()


def _sample(picture: Picture) -> tuple[Image.Image, float] | None:
    """A mosaic of tiles spread over the image, and its share of the pixels; None when too small."""
    width, height = picture.size
    pixels = width * height
    want = min(_SAMPLE_MAX_PX, max(_SAMPLE_MIN_PX, int(pixels * _SAMPLE_FRACTION)))
    tiles_x, tiles_y = width // _TILE_W, height // _TILE_H
    if want * 2 > pixels or tiles_x < 2 or tiles_y < 2:
        return None
    count = want // (_TILE_W * _TILE_H)
    rows = min(tiles_y, max(1, int(math.sqrt(count * tiles_y / tiles_x))))
    cols = max(1, min(tiles_x, count // rows))
    mosaic = Image.new("RGB", (cols * _TILE_W, rows * _TILE_H))
    span_y, span_x = height - _TILE_H, width - _TILE_W
    for r in range(rows):
        y = (span_y * (2 * r + 1) // (2 * rows)) // _ALIGN * _ALIGN
        shift = (r * 0.618034) % 1.0  # rows start at staggered x so columns do not line up
        for c in range(cols):
            x = int(span_x * ((c + shift) / cols)) // _ALIGN * _ALIGN
            mosaic.paste(picture.crop((x, y, x + _TILE_W, y + _TILE_H)), (c * _TILE_W, r * _TILE_H))
    return mosaic, (rows * cols * _TILE_W * _TILE_H) / pixels


class _Predictor:
    """Predicts the full encode's size from encodes of a sample (cached by quality)."""

    def __init__(self, picture: Picture, kind: str) -> None:
        self.kind = kind
        sample = _sample(picture)
        self.mosaic, self.share = sample if sample else (None, 1.0)
        self.cache: dict[int | None, int] = {}

    @property
    def usable(self) -> bool:
        return self.mosaic is not None

    def predict(self, quality: int | None) -> int:
        if quality not in self.cache:
            assert self.mosaic is not None
            size = len(_save(self.mosaic, self.kind, quality))
            self.cache[quality] = int((size - _JPEG_HEADER_BYTES) / self.share) + _JPEG_HEADER_BYTES
        return self.cache[quality]


def _surely_fits(picture: Picture, kind: str, raw_limit: int) -> bool:
    """True when even incompressible pixels fit: JPEG at quality <= 95 and PNG stay under ~raw size."""
    raw = picture.width * picture.height * 3
    overhead = 64 * 1024 + (picture.height * 64 if kind == "png" else 0)
    return raw * (1.0 if kind == "jpeg" else 1.02) + overhead <= raw_limit


def _pick_quality(predictor: _Predictor, target: int) -> tuple[int, bool]:
    """Highest quality in [70, 95] predicted to fit ``target``; (70, False) when none is."""
    fails = DEFAULT_QUALITY
    if predictor.predict(fails) <= target:
        return fails, True
    # log(size) falls smoothly, roughly 5 % per quality step in this range: start from that slope,
    # then secant/regula falsi on sample encodes (each costs ~1-2 % of a full encode).
    log_target = math.log(target)
    fits: int | None = None
    guess = fails - math.ceil((math.log(predictor.predict(fails)) - log_target) / _LOG_SIZE_PER_QUALITY)
    for _ in range(5):
        guess = max(MIN_QUALITY, min(fails - 1, guess if fits is None else max(fits + 1, guess)))
        if predictor.predict(guess) <= target:
            fits = guess
        else:
            fails = guess
        if fits is not None and fails - fits <= 2:
            break
        if fits is None and fails == MIN_QUALITY:
            return MIN_QUALITY, False
        # Interpolate inside [fits, fails]; with no fitting point yet, extrapolate down from two failures.
        low, high = (fits, fails) if fits is not None else (fails, DEFAULT_QUALITY)
        log_low, log_high = math.log(predictor.predict(low)), math.log(predictor.predict(high))
        slope = max((log_high - log_low) / max(1, high - low), 0.01)
        guess = low + math.floor((log_target - log_low) / slope)
    if fits is None:
        fits = MIN_QUALITY
        if predictor.predict(fits) > target:
            return fits, False
    return fits, True


def _downscaled(picture: Picture, factor: float) -> Image.Image:
    """Smaller by ``factor`` (area ``factor**2``), never below 300 px or beyond the ratio rule."""
    width, height = picture.size
    short = min(width, height)
    factor = max(factor, MIN_SIDE / short)
    new_w = max(MIN_SIDE, int(width * factor))
    new_h = max(MIN_SIDE, int(height * factor))
    new_w, new_h = _clamp_ratio(new_w, new_h)
    # Bicubic with a reducing gap: several times faster than Lanczos on 50+ MP, and Kling rescales anyway.
    return _whole(picture).resize((new_w, new_h), Image.Resampling.BICUBIC, reducing_gap=2.0)


def _fit_payload(
    picture: Picture, kind: str, raw_limit: int, field: str, max_bytes: int
) -> tuple[_Payload, int, Picture, str]:
    """(encoded file, quality, encoded image, what was done) with the file within ``raw_limit``."""
    original = picture
    quality: int | None = DEFAULT_QUALITY if kind == "jpeg" else None
    target = int(raw_limit * _TARGET_MARGIN)
    if not _surely_fits(picture, kind, raw_limit):
        predictor = _Predictor(picture, kind)
        if predictor.usable:
            picture, quality = _plan(picture, kind, predictor, target)
    for _ in range(_MAX_FULL_ENCODES):
        payload = _encode(picture, kind, quality)
        if payload.size <= raw_limit:
            return payload, quality or 0, picture, _describe(original, picture, quality)
        # The prediction missed (or there was none): correct with what the full encode measured.
        overshoot = payload.size / target
        if kind == "jpeg" and quality and quality > MIN_QUALITY:
            step = max(2, math.ceil(math.log(overshoot) / _LOG_SIZE_PER_QUALITY))
            quality = max(MIN_QUALITY, quality - step)
            continue
        if min(picture.size) <= MIN_SIDE:
            break
        picture = _downscaled(picture, 0.97 / math.sqrt(overshoot))
    raise KlingValidationError(
        field, f"{original.width}x{original.height}", f"an image that encodes within {max_bytes} bytes of base64",
        f"{field}: cannot encode {original.width}x{original.height} within {max_bytes} bytes of base64 "
        f"even at {picture.width}x{picture.height}" + (f", quality {quality}" if kind == "jpeg" else ""))


def _plan(picture: Picture, kind: str, predictor: _Predictor, target: int) -> tuple[Picture, int | None]:
    """Choose quality, then scale, from sample encodes only: no full encode is spent on a guess."""
    quality: int | None = None
    if kind == "jpeg":
        quality, fits = _pick_quality(predictor, target)
        if fits:
            return picture, quality
    for _ in range(4):
        predicted = predictor.predict(quality)
        if predicted <= target:
            break
        # Bytes do not fall exactly with area (downscaling concentrates detail, or averages noise
        # away), so the smaller image is sampled again, and may get back some quality.
        picture = _downscaled(picture, 0.95 * math.sqrt(target / predicted))
        predictor = _Predictor(picture, kind)
        if not predictor.usable or min(picture.size) <= MIN_SIDE:
            break
        if kind == "jpeg":
            quality, fits = _pick_quality(predictor, target)
            if fits:
                break
    return picture, quality


def _describe(original: Picture, picture: Picture, quality: int | None) -> str:
    changes = []
    if quality is not None and quality != DEFAULT_QUALITY:
        changes.append(f"JPEG quality lowered from {DEFAULT_QUALITY} to {quality}")
    if picture is not original:
        changes.append(f"downscaled from {original.width}x{original.height} to {picture.width}x{picture.height}")
    if not changes:
        return ""
    return " and ".join(changes) + " to fit the size limit"
