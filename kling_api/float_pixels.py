"""ComfyUI's float IMAGE (0..1) to 8-bit RGB pixels, written once, on every core.

ComfyUI hands images on as float32 in 0..1. Kling takes JPEG or PNG, so every pixel is scaled,
clipped and rounded once; this runs in cache-sized blocks of rows (NumPy's loops and Pillow's
unpacker release the GIL), and ``FloatRows`` converts only the rows an encoder asks for, so that a
JPEG encoded in bands converts each band on the core that encodes it.
"""
from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np
from PIL import Image

from .errors import KlingValidationError

_CHUNK_ELEMENTS = 1 << 19  # conversion works on row blocks of this size (they stay in cache)
_ONE_FLOAT32_BITS = 0x3F800000  # 1.0f; as unsigned integers, the float32 bit patterns of +0..1 are <= it
_PARALLEL_ELEMENTS = 1 << 20  # whole images of this many elements on are converted by two threads


_buffers = threading.local()
_KEPT_BYTES = 8 << 20  # a thread keeps buffers up to this size for its next call


def _thread_buffer(name: str, nbytes: int) -> np.ndarray:
    """A flat uint8 buffer of ``nbytes`` that this thread reuses from call to call: fresh memory
    costs a page fault per 4 kB, more than the conversion written into it."""
    buffer = getattr(_buffers, name, None)
    if buffer is None or buffer.size < nbytes:
        buffer = np.empty(nbytes, np.uint8)
        if nbytes <= _KEPT_BYTES:
            setattr(_buffers, name, buffer)
    return buffer[:nbytes]


def float_rgb_to_pil(array: np.ndarray, field: str) -> Image.Image:
    """An RGB image filled block by block straight from the floats by Pillow's RGB unpacker: the
    pixels are written once, with no uint8 copy of the whole image and no Image.fromarray copy.
    (Pillow's own allocation, in blocks that malloc reuses from call to call, is steadier here than a
    NumPy buffer mapped with frombuffer, whose huge pages sometimes cost the kernel a compaction.)"""
    picture = Image.new("RGB", (array.shape[1], array.shape[0]), None)  # every row is written below
    convert_float(array, field, _unpacker_into(picture))
    return picture


def _unpacker_into(picture: Image.Image, first_row: int = 0) -> Callable[[int, np.ndarray], None]:
    """``write_rows`` for ``convert_float``: uint8 RGB rows into ``picture``, row ``first_row`` at its top."""
    width = picture.width

    def write_rows(top: int, pixels: np.ndarray) -> None:
        top -= first_row
        decoder = Image._getdecoder("RGB", "raw", ("RGB", 0, 1))
        decoder.setimage(picture.im, (0, top, width, top + pixels.shape[0]))
        if decoder.decode(memoryview(pixels).cast("B"))[1] < 0:
            raise RuntimeError("Pillow's RGB unpacker refused a block of pixels")

    return write_rows


class FloatRows:
    """A float RGB IMAGE seen as a picture that is converted only where it is cropped.

    It offers what encoding needs of a PIL image (``size``, ``width``, ``height``, ``crop``) and
    ``band`` for the JPEG band encoder, so each band is converted in the thread that encodes it and
    the size estimate converts only its sample tiles. ``whole()`` converts everything once, for the rare paths that
    need a real image (PNG, resizing, small images)."""

    def __init__(self, array: np.ndarray, field: str) -> None:
        self.array, self.field = array, field
        self.height, self.width = array.shape[:2]
        self._whole: Image.Image | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        left, top, right, bottom = box
        if self._whole is not None:
            return self._whole.crop(box)
        return self._filled(Image.new("RGB", (right - left, bottom - top), None), left, top, bottom)

    def band(self, top: int, bottom: int) -> Image.Image:
        """Full-width rows as an RGBX image (saved as RGB JPEG) over this thread's reused buffer (so
        no fresh memory is faulted in). Valid until the same thread converts its next rows."""
        if self._whole is not None:
            return self._whole.crop((0, top, self.width, bottom))
        rows = bottom - top
        buffer = _thread_buffer("band", rows * self.width * 4).reshape(rows, self.width, 4)
        return self._filled(Image.frombuffer("RGBX", (self.width, rows), buffer, "raw", "RGBX", 0, 1), 0, top, bottom)

    def _filled(self, picture: Image.Image, left: int, top: int, bottom: int) -> Image.Image:
        """``picture`` with the converted pixels of rows top..bottom from column ``left`` on."""
        region = self.array[:, left:left + picture.width]
        _convert_rows(region, top, bottom, self.field, _unpacker_into(picture, top))
        return picture

    def whole(self) -> Image.Image:
        if self._whole is None:
            self._whole = float_rgb_to_pil(self.array, self.field)
        return self._whole


def convert_float(array: np.ndarray, field: str, write_rows: Callable[[int, np.ndarray], None]) -> None:
    """Floats checked for NaN/inf, clipped to 0..1 and rounded to uint8 in cache-sized row blocks, each
    handed to ``write_rows(first_row, pixels)`` while still in cache; by two threads when the image is
    large (NumPy's loops and Pillow's unpacker release the GIL, so the halves run on two cores)."""
    height = array.shape[0]
    if array.size < _PARALLEL_ELEMENTS or height < 2:
        _convert_rows(array, 0, height, field, write_rows)
        return
    middle = height // 2
    errors: list[BaseException] = []

    def half(start: int, stop: int) -> None:
        try:
            _convert_rows(array, start, stop, field, write_rows)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    helper = threading.Thread(target=half, args=(middle, height), name="kling-image-convert")
    helper.start()
    half(0, middle)
    helper.join()
    if errors:
        raise errors[0]


def _convert_rows(array: np.ndarray, start: int, stop: int, field: str,
                  write_rows: Callable[[int, np.ndarray], None]) -> None:
    """Rows ``start:stop`` handed block by block to ``write_rows``. (The blocks are contiguous:
    NumPy writes strided outputs, such as the RGB of an RGBX buffer, several times slower.)"""
    rows = max(1, _CHUNK_ELEMENTS // max(1, array[0].size))
    shape = (min(rows, stop - start), *array.shape[1:])
    count = math.prod(shape)
    scratch = _thread_buffer("scratch", 4 * count).view(np.float32).reshape(shape)
    pixels = _thread_buffer("pixels", count).reshape(shape)
    for top in range(start, stop, rows):
        block = array[top:min(top + rows, stop)]
        tmp, out = scratch[:block.shape[0]], pixels[:block.shape[0]]
        if block.dtype == np.float32 and block.view(np.uint32).max() <= _ONE_FLOAT32_BITS:
            low, high = 0.0, 1.0  # one pass: every value is +0..1 (no sign bit, no NaN or inf bits)
        else:
            low, high = float(block.min()), float(block.max())  # NaN propagates through min/max
        if not (math.isfinite(low) and math.isfinite(high)):
            bad = "NaN" if math.isnan(low) or math.isnan(high) else "infinite values"
            raise KlingValidationError(field, f"float image containing {bad}", "finite floats in 0..1",
                                       f"{field}: the image contains {bad}; allowed: finite floats in 0..1 "
                                       "(check the node that produced it)")
        np.multiply(block, np.float32(255.0), out=tmp, dtype=np.float32, casting="same_kind")
        if low < 0.0 or high > 1.0:
            np.clip(tmp, 0.0, 255.0, out=tmp)
        np.add(tmp, np.float32(0.5), out=out, casting="unsafe")  # truncation after +0.5 rounds to nearest
        write_rows(top, out)
