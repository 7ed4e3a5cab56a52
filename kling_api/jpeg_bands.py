"""One JPEG encoded on every core: horizontal bands encoded at once, joined by restart markers.

A baseline JPEG may split its entropy-coded data with restart markers (a DRI segment sets the
interval, RSTn markers separate the intervals); at each marker the decoder resets its DC predictors
and byte alignment, exactly as at the start of an image. So bands of whole MCU rows, encoded as
separate JPEGs with the same tables, join into one file that decodes to the very pixels a single
encode gives (tests compare them). Pillow encodes to a file descriptor without holding the GIL, so
the bands run in parallel threads, and the base64 of finished bands is made while later bands are
still being encoded.

Only Pillow's public ``save`` is used; every band's header is checked to be the same (quality,
subsampling and Huffman tables), else the caller falls back to a single encode.
"""
from __future__ import annotations

import binascii
import contextlib
import logging
import math
import os
import struct
import tempfile
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import IO, Callable, Iterator

from PIL import Image

logger = logging.getLogger(__name__)

_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"
_SOF_MARKERS = (0xC0, 0xC1)  # baseline and extended sequential Huffman: what libjpeg writes by default
_SOS, _DRI = 0xDA, 0xDD
_MAX_INTERVAL = 0xFFFF  # a restart interval is counted in MCUs in a 16-bit field
_MCU_ROWS = 16  # bands are cut on multiples of 16 rows: whole MCU rows for every subsampling libjpeg uses
_BANDS_PER_WORKER = 2  # so the first bands are finished (and turned into base64) while the last run
_BAND_PIXELS = 1 << 20


class Unjoinable(Exception):
    """Pillow's band files cannot be joined into one JPEG (the caller encodes once instead)."""


class _Band:
    """One band's JPEG, split into the header (up to SOS), the SOS segment and the entropy data."""

    def __init__(self, jpeg: bytes) -> None:
        if not (jpeg.startswith(_SOI) and jpeg.endswith(_EOI)):
            raise Unjoinable("not a complete JPEG")
        try:
            self._read_header(jpeg)
        except (IndexError, struct.error):
            raise Unjoinable("truncated JPEG header") from None
        self.jpeg = jpeg

    def _read_header(self, jpeg: bytes) -> None:
        offset, self.sof_offset, markers = 2, -1, []
        while True:
            if jpeg[offset] != 0xFF:
                raise Unjoinable("malformed JPEG segment")
            marker = jpeg[offset + 1]
            (length,) = struct.unpack_from(">H", jpeg, offset + 2)
            markers.append(marker)
            if marker in _SOF_MARKERS:
                self.sof_offset = offset
            if marker == _SOS:
                self.sos_start, self.data_start = offset, offset + 2 + length
                break
            offset += 2 + length
        if self.sof_offset < 0 or _DRI in markers:
            raise Unjoinable("not a baseline JPEG without restart markers")

    def tables(self) -> bytes:
        """The header with the image height blanked: equal for bands encoded alike."""
        height_at = self.sof_offset + 5
        return self.jpeg[:height_at] + b"\0\0" + self.jpeg[height_at + 2:self.data_start]

    def mcu_size(self) -> tuple[int, int]:
        """(width, height) of one MCU, from the largest sampling factors in the SOF."""
        components = self.jpeg[self.sof_offset + 9]
        factors = [self.jpeg[self.sof_offset + 11 + 3 * index] for index in range(components)]
        return 8 * max(f >> 4 for f in factors), 8 * max(f & 15 for f in factors)

    def entropy_data(self) -> memoryview:
        return memoryview(self.jpeg)[self.data_start:-2]


@contextlib.contextmanager
def _anonymous_file() -> Iterator[IO[bytes]]:
    """A file with a real descriptor (so Pillow releases the GIL while encoding) kept in memory."""
    try:
        file: IO[bytes] = open(os.memfd_create("kling-jpeg-band", os.MFD_CLOEXEC), "w+b", buffering=0)
    except (AttributeError, OSError):  # macOS, Windows; or a kernel or sandbox that refuses memfd
        file = tempfile.TemporaryFile()
    with file:
        yield file


# band_image(top, bottom): the full-width rows top..bottom as a PIL image (RGB, or RGBX mapped on a buffer)
BandImage = Callable[[int, int], Image.Image]


def _encode_band(band_image: BandImage, top: int, bottom: int, quality: int) -> bytes:
    band = band_image(top, bottom)
    with _anonymous_file() as file:
        band.save(file, "JPEG", quality=quality)
        file.seek(0)
        return file.read()


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _forget_pools() -> None:
    """In a forked child: the parent's pool threads (and whoever held the lock) do not exist there."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _pool(workers: int) -> ThreadPoolExecutor:
    """Worker threads kept for the process: no thread start per image, and each keeps its warm
    conversion buffers (kling_api.float_pixels) from one image to the next."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="kling-jpeg-band")
        return _pools[workers]


def band_rows(width: int, height: int, workers: int) -> int:
    """Rows per band: a multiple of 16, at least two bands per worker, bands of at most about a
    megapixel (small buffers, and base64 made early), and few enough MCUs for a restart interval."""
    rows = min(math.ceil(height / (workers * _BANDS_PER_WORKER)), max(1, _BAND_PIXELS // width))
    rows = math.ceil(rows / _MCU_ROWS) * _MCU_ROWS
    smallest_mcu = 8  # 4:4:4 has 8x8 MCUs: the most MCUs per row
    most_rows = (_MAX_INTERVAL // math.ceil(width / smallest_mcu)) * smallest_mcu // _MCU_ROWS * _MCU_ROWS
    return max(_MCU_ROWS, min(rows, most_rows))


class _Joiner:
    """Appends bands to the joined file and turns every whole 3-byte group into base64 at once
    (base64 of whole groups concatenates exactly)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.pending = b""
        self.size = 0

    def add(self, *pieces: bytes | memoryview) -> None:
        data = self.pending + b"".join(pieces)
        self.size += len(data) - len(self.pending)
        whole = len(data) - len(data) % 3
        self.parts.append(binascii.b2a_base64(data[:whole], newline=False))
        self.pending = data[whole:]

    def text(self) -> str:
        self.parts.append(binascii.b2a_base64(self.pending, newline=False))
        self.pending = b""
        return b"".join(self.parts).decode("ascii")


def encode_jpeg_base64(size: tuple[int, int], band_image: BandImage, quality: int,
                       workers: int) -> tuple[int, str] | None:
    """(JPEG size in bytes, its base64) of the picture of ``size`` whose rows ``band_image`` makes,
    encoded in bands on ``workers`` threads (each band made in the thread that encodes it); None
    when the picture is too small to split or Pillow's bands cannot be joined."""
    width, height = size
    rows = band_rows(width, height, workers)
    if workers < 2 or height <= rows:
        return None
    work = _BandWork([(top, min(top + rows, height)) for top in range(0, height, rows)],
                     lambda top, bottom: _encode_band(band_image, top, bottom, quality))
    helpers = _start_helpers(work, workers - 1)
    try:
        return _join(work.result, len(work.bands), width, height, rows)
    except Unjoinable as exc:
        logger.debug("JPEG bands not joined (%s): one encode instead", exc)
        return None
    finally:  # on every way out, no band is left running; a helper still queued (behind another
        work.stop()  # image's bands) is cancelled, and only helpers already running are waited for
        wait([helper for helper in helpers if not helper.cancel()])


def _start_helpers(work: "_BandWork", count: int) -> list[Future]:
    """Helpers from the shared pool; none when the pool takes no more work (interpreter shutdown):
    the caller then encodes every band itself."""
    pool = _pool(count)
    helpers = []
    for _ in range(count):
        try:
            helpers.append(pool.submit(work.run_all))
        except RuntimeError:
            break
    return helpers


class _BandWork:
    """Bands taken in order by whichever thread is free, the caller included: the caller starts at
    once, while a helper on an idle core may take a millisecond or more to wake (measured here)."""

    def __init__(self, bands: list[tuple[int, int]], encode: Callable[[int, int], bytes]) -> None:
        self.bands, self.encode = bands, encode
        self.results: list[bytes | None] = [None] * len(bands)
        self.error: BaseException | None = None
        self.next = 0
        self.changed = threading.Condition()

    def stop(self) -> None:
        with self.changed:
            self.next = len(self.bands)

    def run_one(self) -> bool:
        """Encodes the next band not yet taken; False when none is left."""
        with self.changed:
            if self.next >= len(self.bands):
                return False
            index, self.next = self.next, self.next + 1
        try:
            data = self.encode(*self.bands[index])
        except BaseException as exc:  # raised to the caller by result()
            with self.changed:
                self.error, self.next = exc, len(self.bands)
                self.changed.notify_all()
            return False
        with self.changed:
            self.results[index] = data
            self.changed.notify_all()
        return True

    def run_all(self) -> None:
        while self.run_one():
            pass

    def result(self, index: int) -> bytes:
        """Band ``index``, encoding the next bands in this thread while it is not finished."""
        def ready() -> bool:
            return self.results[index] is not None or self.error is not None

        while not ready() and self.run_one():
            pass
        with self.changed:
            self.changed.wait_for(ready)
            if self.error is not None:
                raise self.error
            return self.results[index]  # type: ignore[return-value]


def _join(result: Callable[[int], bytes], count: int, width: int, height: int, rows: int) -> tuple[int, str]:
    """Joins the bands in order as each finishes (its base64 made while later bands encode)."""
    joiner = _Joiner()
    first = _Band(result(0))
    mcu_width, mcu_height = first.mcu_size()
    interval = math.ceil(width / mcu_width) * (rows // mcu_height)
    if rows % mcu_height or interval > _MAX_INTERVAL:
        raise Unjoinable(f"bands of {rows} rows do not fit {mcu_width}x{mcu_height} MCUs")
    header = bytearray(first.jpeg[:first.sos_start])
    struct.pack_into(">H", header, first.sof_offset + 5, height)
    joiner.add(header, struct.pack(">HHH", 0xFFDD, 4, interval),
               first.jpeg[first.sos_start:first.data_start], first.entropy_data())
    for index in range(1, count):
        band = _Band(result(index))
        if band.tables() != first.tables():
            raise Unjoinable("bands were encoded with different tables")
        joiner.add(bytes((0xFF, 0xD0 + (index - 1) % 8)), band.entropy_data())
    joiner.add(_EOI)
    return joiner.size, joiner.text()
