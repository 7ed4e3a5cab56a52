"""JPEG encoded in bands on every core, joined by restart markers: the same pixels as one encode."""
from __future__ import annotations

import base64
import errno
import multiprocessing
import os
import threading
import io
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from kling_api import jpeg_bands
from kling_api.errors import KlingValidationError
from kling_api.float_pixels import FloatRows


def photo_like(width: int, height: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), np.uint8))
    base = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), np.int16)
    return np.clip(base + rng.integers(-12, 13, base.shape), 0, 255).astype(np.uint8)


def one_encode(picture: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def bands_of(picture: Image.Image, quality: int, workers: int) -> tuple[int, str] | None:
    return jpeg_bands.encode_jpeg_base64(
        picture.size, lambda top, bottom: picture.crop((0, top, picture.width, bottom)), quality, workers)


def bands_of_floats(floats: np.ndarray, quality: int, workers: int, field: str = "image") -> tuple[int, str] | None:
    rows = FloatRows(floats, field)
    return jpeg_bands.encode_jpeg_base64(rows.size, rows.band, quality, workers)


def pixels(jpeg: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def restart_interval(jpeg: bytes) -> int:
    at = jpeg.index(b"\xff\xdd")
    length, interval = struct.unpack_from(">HH", jpeg, at + 2)
    assert length == 4
    return interval


@pytest.mark.parametrize("size, workers", [((1024, 1024), 2), ((1000, 777), 2), ((333, 2000), 3),
                                           ((9000, 400), 2), ((1920, 1080), 4)])
def test_bands_decode_to_the_pixels_of_one_encode(size: tuple[int, int], workers: int) -> None:
    width, height = size
    picture = Image.fromarray(photo_like(width, height))
    joined = bands_of(picture, 90, workers)
    assert joined is not None
    nbytes, text = joined
    jpeg = base64.b64decode(text, validate=True)
    assert nbytes == len(jpeg)
    rows = jpeg_bands.band_rows(width, height, workers)
    bands = -(-height // rows)
    assert bands >= workers and rows % 16 == 0
    # 4:2:0 MCUs are 16x16: one interval is one band; the markers cycle RST0..RST7 between bands.
    assert restart_interval(jpeg) == -(-width // 16) * (rows // 16) <= 0xFFFF
    markers = [jpeg.count(bytes((0xFF, 0xD0 + n))) for n in range(8)]
    assert sum(markers) == bands - 1
    decoded = Image.open(io.BytesIO(jpeg))
    assert decoded.size == (width, height)
    assert np.array_equal(pixels(jpeg), pixels(one_encode(picture, 90)))


def test_wide_images_get_short_bands_so_the_interval_fits_16_bits() -> None:
    rows = jpeg_bands.band_rows(16000, 4000, 2)
    assert rows % 16 == 0 and -(-16000 // 8) * (rows // 8) <= 0xFFFF  # even 8x8 MCUs (4:4:4) would fit


def test_float_rows_encode_exactly_as_their_rounded_pixels() -> None:
    rng = np.random.default_rng(3)
    floats = rng.random((700, 900, 3), dtype=np.float32) * np.float32(1.1) - np.float32(0.05)
    rounded = (np.clip(floats, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    from_floats = bands_of_floats(floats, 92, 2)
    from_pixels = bands_of(Image.fromarray(rounded), 92, 2)
    assert from_floats is not None and from_floats == from_pixels
    tile = FloatRows(floats, "image").crop((64, 32, 128, 48))
    assert tile.mode == "RGB" and np.array_equal(np.asarray(tile), rounded[32:48, 64:128])
    band = FloatRows(floats, "image").band(16, 48)  # RGBX over a NumPy buffer: no copy for Pillow
    assert band.mode == "RGBX" and np.array_equal(np.asarray(band)[..., :3], rounded[16:48])


def test_nan_in_a_late_band_is_refused_naming_the_field() -> None:
    floats = np.full((1200, 800, 3), 0.5, np.float32)
    floats[1150, 10, 1] = np.nan
    with pytest.raises(KlingValidationError, match="image_tail: the image contains NaN"):
        bands_of_floats(floats, 90, 2, field="image_tail")


def test_an_encoder_failure_is_raised() -> None:
    with pytest.raises(OSError):
        bands_of(Image.new("RGBA", (800, 800)), 90, 2)


def test_bands_that_cannot_be_joined_give_none(monkeypatch: pytest.MonkeyPatch) -> None:
    picture = Image.fromarray(photo_like(800, 800))
    assert bands_of(picture, 90, 1) is None  # one core: nothing to split
    assert bands_of(picture.crop((0, 0, 800, 16)), 90, 2) is None  # one MCU row: one band
    real = jpeg_bands._encode_band

    def second_band_at_another_quality(band_image, top: int, bottom: int, quality: int) -> bytes:
        return real(band_image, top, bottom, quality if top == 0 else quality - 10)

    monkeypatch.setattr(jpeg_bands, "_encode_band", second_band_at_another_quality)
    assert bands_of(picture, 90, 2) is None
    with pytest.raises(jpeg_bands.Unjoinable, match="restart"):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90, progressive=True)
        jpeg_bands._Band(buffer.getvalue())


def test_images_encoded_at_once_from_several_threads_stay_apart() -> None:
    # The node encodes a batch on several threads; they share the band helpers and each thread
    # reuses its own conversion buffers.
    pictures = [photo_like(1024, 768 + 64 * index, seed=index) for index in range(4)]
    expected = [bands_of(Image.fromarray(p), 90, 2) for p in pictures]
    floats = [p.astype(np.float32) / np.float32(255) for p in pictures]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda f: bands_of_floats(f, 90, 2), floats))
            assert got == expected


def test_a_helper_busy_with_another_image_is_not_waited_for() -> None:
    picture = Image.fromarray(photo_like(1000, 1000))
    release = threading.Event()
    busy = jpeg_bands._pool(1).submit(release.wait, 30)  # the one helper is taken by "another image"
    results: list = []
    try:
        encoder = threading.Thread(target=lambda: results.append(bands_of(picture, 90, 2)))
        encoder.start()
        encoder.join(10)
        assert results and results[0] is not None, "the encode waited for the busy helper"
    finally:
        release.set()
        busy.result(10)
    assert results[0] == bands_of(picture, 90, 2)


def test_a_refused_memfd_falls_back_to_a_temporary_file(monkeypatch: pytest.MonkeyPatch) -> None:
    picture = Image.fromarray(photo_like(900, 700))
    expected = bands_of(picture, 90, 2)

    def refused(*args: object) -> int:
        raise OSError(errno.ENOSYS, "memfd_create refused")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    assert bands_of(picture, 90, 2) == expected


def _encode_in_child(connection) -> None:  # runs in a forked child
    picture = Image.fromarray(photo_like(900, 700))
    connection.send(bands_of(picture, 90, 2))


def test_a_forked_child_encodes_without_the_parents_threads() -> None:
    picture = Image.fromarray(photo_like(900, 700))
    expected = bands_of(picture, 90, 2)  # the parent's helper threads now exist
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_encode_in_child, args=(sender,))
    child.start()
    try:
        assert receiver.poll(30), "the forked child did not finish its encode"
        assert receiver.recv() == expected
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
