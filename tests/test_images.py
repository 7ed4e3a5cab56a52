"""encode_image: Kling's image rules (size, ratio, 10 MB of base64, no data: prefix) and encode economy."""
from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from PIL import Image

from kling_api import images
from kling_api.errors import KlingValidationError
from kling_api.images import EncodedImage, check_image_size, encode_image

TEN_MB = 10 * 1024 * 1024


def decode(encoded: EncodedImage) -> Image.Image:
    assert not encoded.data.startswith("data:")
    raw = base64.b64decode(encoded.data, validate=True)
    picture = Image.open(io.BytesIO(raw))
    picture.load()
    assert picture.format == encoded.format.upper()
    assert picture.size == (encoded.width, encoded.height)
    assert encoded.nbytes == len(encoded.data)
    return picture


def gradient(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                     np.full_like(xx, 90)], axis=-1).astype(np.uint8)


def textured(size: int, seed: int = 0) -> np.ndarray:
    """Smooth shapes plus grain: compresses like a detailed photo, not like noise or flat colour."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((size // 64, size // 64, 3)) * 255).astype(np.uint8))
    base = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), np.float32)
    grain = rng.standard_normal((size, size, 1), dtype=np.float32) * 10
    return np.clip(base + grain, 0, 255).astype(np.uint8)


@pytest.fixture
def count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int | None]]:
    """Records every full encode (size and quality); sample encodes for the estimate are not full."""
    calls: list[tuple[int, int, int | None]] = []
    real = images._encode

    def counting(picture: Image.Image, kind: str, quality: int | None) -> bytes:
        calls.append((picture.width, picture.height, quality))
        return real(picture, kind, quality)

    monkeypatch.setattr(images, "_encode", counting)
    return calls


def test_uint8_rgb_becomes_bare_base64_jpeg(count_encodes: list) -> None:
    encoded = encode_image(gradient(640, 480))
    assert (encoded.format, encoded.width, encoded.height, encoded.quality, encoded.scale) == ("jpeg", 640, 480, 95, 1.0)
    picture = decode(encoded)
    assert picture.mode == "RGB"
    assert np.abs(np.asarray(picture, np.int16) - gradient(640, 480)).mean() < 2
    assert count_encodes == [(640, 480, 95)]
    assert "data=" not in repr(encoded)  # megabytes of base64 never land in a log line


def test_png_is_lossless() -> None:
    array = gradient(400, 320)
    encoded = encode_image(array, fmt="png")
    assert encoded.format == "png" and encoded.quality is None
    assert np.array_equal(np.asarray(decode(encoded)), array)


def test_rgba_is_composited_over_black() -> None:
    array = np.zeros((300, 400, 4), np.uint8)
    array[..., :3] = (200, 100, 50)
    array[:, :100, 3] = 0  # transparent
    array[:, 100:200, 3] = 128  # half
    array[:, 200:, 3] = 255  # opaque
    out = np.asarray(decode(encode_image(array, fmt="png")))
    assert out.shape == (300, 400, 3)
    assert (out[:, :100] == 0).all()
    assert np.abs(out[:, 100:200].astype(int) - (100, 50, 25)).max() <= 1
    assert (out[:, 200:] == (200, 100, 50)).all()


@pytest.mark.parametrize("shape", [(320, 480), (320, 480, 1)])
def test_grayscale_becomes_rgb(shape: tuple[int, ...]) -> None:
    array = np.full(shape, 77, np.uint8)
    out = np.asarray(decode(encode_image(array, fmt="png")))
    assert out.shape == (320, 480, 3) and (out == 77).all()


def test_float_input_is_rounded_and_clipped() -> None:
    array = np.full((300, 300, 3), 0.5, np.float32)
    array[:10] = -0.25
    array[10:20] = 1.75
    array[20:30] = 1.0
    out = np.asarray(decode(encode_image(array, fmt="png")))
    assert (out[:10] == 0).all() and (out[10:30] == 255).all() and (out[30:] == 128).all()
    as64 = np.asarray(decode(encode_image(array.astype(np.float64), fmt="png")))
    assert np.array_equal(out, as64)


def test_a_large_float_image_encodes_exactly_as_its_rounded_pixels() -> None:
    # Large enough to be converted by two threads, straight into the image Pillow encodes.
    rng = np.random.default_rng(5)
    array = rng.random((1100, 1000, 3), dtype=np.float32) * np.float32(1.2) - np.float32(0.1)
    array[:, :7] = (np.arange(7, dtype=np.float32)[:, None] + np.float32(0.5)) / 255  # about half-way
    pixels = (np.clip(array, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    assert encode_image(array).data == encode_image(Image.fromarray(pixels)).data
    assert np.array_equal(np.asarray(decode(encode_image(array, fmt="png"))), pixels)
    padded = decode(encode_image(array[:, :300], fit="pad_edge", fmt="png"))
    assert padded.size == (440, 1100) and np.array_equal(np.asarray(padded)[:, 70:370], pixels[:, :300])


def test_a_large_float_image_is_encoded_once_in_bands_without_a_whole_uint8_picture(
        count_encodes: list, monkeypatch: pytest.MonkeyPatch) -> None:
    array = textured(2048).astype(np.float32) / np.float32(255)
    monkeypatch.setattr(images.FloatRows, "whole", lambda self: pytest.fail("converted the whole image"))
    encoded = encode_image(array)
    raw = base64.b64decode(encoded.data, validate=True)
    assert count_encodes == [(2048, 2048, 95)] and raw.count(b"\xff\xdd") == 1  # one encode, in bands
    single = images._save(Image.fromarray(textured(2048)), "jpeg", 95)
    assert np.array_equal(np.asarray(decode(encoded)), np.asarray(Image.open(io.BytesIO(single))))


def test_batch_of_one_bool_and_uint16_are_accepted() -> None:
    assert decode(encode_image(gradient(320, 320)[None])).size == (320, 320)
    mask = np.zeros((320, 320), bool)
    mask[:160] = True
    out = np.asarray(decode(encode_image(mask, fmt="png")))
    assert (out[:160] == 255).all() and (out[160:] == 0).all()
    deep = np.full((320, 320, 3), 65535, np.uint16)
    assert (np.asarray(decode(encode_image(deep, fmt="png"))) == 255).all()


def test_array_like_objects_are_read() -> None:
    class TensorLike:  # what a CPU torch tensor offers
        def __array__(self, dtype=None, copy=None) -> np.ndarray:
            return np.full((300, 300, 3), 0.25, np.float32)

    assert decode(encode_image(TensorLike())).size == (300, 300)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "LA"])
def test_pil_inputs(mode: str) -> None:
    picture = Image.fromarray(gradient(500, 350)).convert(mode)
    assert decode(encode_image(picture)).size == (500, 350)


@pytest.mark.parametrize("side", [400, 1200])  # 1200: converted by two threads, the bad pixel in the second half
@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_floats_are_refused(bad: float, word: str, side: int) -> None:
    array = np.full((side, side, 3), 0.5, np.float32)
    array[side - 77, 45, 1] = bad
    with pytest.raises(KlingValidationError) as caught:
        encode_image(array, field="image_tail")
    assert caught.value.field == "image_tail"
    assert "image_tail" in str(caught.value) and word in str(caught.value)


@pytest.mark.parametrize("array", [np.zeros((0, 400, 3), np.uint8), np.zeros((400, 0), np.float32),
                                   np.zeros((400, 400, 2), np.uint8), np.zeros((2, 400, 400, 3), np.uint8),
                                   np.zeros((400, 400, 3), np.int64)])
def test_unusable_arrays_are_refused(array: np.ndarray) -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image(array)
    assert caught.value.field == "image"


def test_short_side_under_300_is_refused() -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image(gradient(299, 600), field="image")
    error = caught.value
    assert error.field == "image" and error.value == "299x600"
    assert "image" in str(error) and "299x600" in str(error) and "300" in str(error)
    with pytest.raises(KlingValidationError, match="image_tail is 600x299"):
        check_image_size(600, 299, "image_tail")


def test_ratio_beyond_2_5_is_refused() -> None:
    check_image_size(400, 1000, "image")  # exactly 1:2.5 is allowed
    check_image_size(1000, 400, "image")
    with pytest.raises(KlingValidationError) as caught:
        encode_image(gradient(400, 1040))  # 1:2.6
    assert caught.value.value == "400x1040" and "2.5" in str(caught.value)
    with pytest.raises(KlingValidationError):
        check_image_size(1001, 400, "image")


@pytest.mark.parametrize("size, expected", [((200, 100), (300, 300)), ((1000, 300), (1000, 400)),
                                            ((300, 1000), (400, 1000)), ((640, 480), (640, 480))])
def test_pad_reaches_an_allowed_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    width, height = size
    array = np.full((height, width, 3), 200, np.uint8)
    encoded = encode_image(array, fit="pad", fmt="png")
    out = np.asarray(decode(encoded))
    assert (encoded.width, encoded.height) == expected
    check_image_size(encoded.width, encoded.height, "image")
    left, top = (expected[0] - width) // 2, (expected[1] - height) // 2
    assert (out[top:top + height, left:left + width] == 200).all()
    assert (out == 0).sum() == 3 * (expected[0] * expected[1] - width * height)  # the rest is black


def test_pad_edge_repeats_the_border() -> None:
    array = np.zeros((300, 1000, 3), np.uint8)
    array[0] = (255, 0, 0)
    array[-1] = (0, 0, 255)
    out = np.asarray(decode(encode_image(array, fit="pad_edge", fmt="png")))
    assert out.shape == (400, 1000, 3)
    assert (out[:50] == (255, 0, 0)).all() and (out[-50:] == (0, 0, 255)).all()


@pytest.mark.parametrize("size, expected", [((1000, 300), (750, 300)), ((300, 1000), (300, 750)),
                                            ((100, 200), (300, 600)), ((2000, 100), (750, 300)),
                                            ((500, 400), (500, 400))])
def test_crop_reaches_an_allowed_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    encoded = encode_image(gradient(*size), fit="crop")
    assert (encoded.width, encoded.height) == expected
    decode(encoded)
    check_image_size(encoded.width, encoded.height, "image")


def test_crop_keeps_the_centre() -> None:
    array = np.zeros((300, 1000, 3), np.uint8)
    array[:, 125:875] = 255  # exactly the 750 px that a centre crop keeps
    out = np.asarray(decode(encode_image(array, fit="crop", fmt="png")))
    assert out.shape == (300, 750, 3) and (out == 255).all()


def test_noise_8000_is_fitted_under_10_mb(caplog: pytest.LogCaptureFixture, count_encodes: list) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (8000, 8000, 3), dtype=np.uint8)
    with caplog.at_level(logging.INFO, logger="kling_api.images"):
        encoded = encode_image(noise)
    assert len(encoded.data) <= TEN_MB and encoded.nbytes <= TEN_MB
    assert encoded.scale < 1.0 and encoded.width == encoded.height >= 300
    assert decode(encoded).size == (encoded.width, encoded.height)
    assert len(count_encodes) == 1  # planned from samples: one full encode
    notes = [r for r in caplog.records if r.name == "kling_api.images"]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO and "downscaled from 8000x8000" in notes[0].message


def test_quality_is_lowered_before_size(caplog: pytest.LogCaptureFixture, count_encodes: list) -> None:
    array = textured(2048)
    picture = Image.fromarray(array)
    at95, at70 = (len(images._save(picture, "jpeg", q)) * 4 // 3 for q in (95, 70))
    budget = int((at95 * at70) ** 0.5)  # reachable by quality alone
    with caplog.at_level(logging.INFO, logger="kling_api.images"):
        encoded = encode_image(array, max_bytes=budget)
    assert encoded.nbytes <= budget
    assert 70 <= encoded.quality < 95 and encoded.scale == 1.0 and (encoded.width, encoded.height) == (2048, 2048)
    decode(encoded)
    assert len(count_encodes) == 1
    assert len([r for r in caplog.records if r.name == "kling_api.images"]) == 1


def test_size_limit_is_on_the_base64_text() -> None:
    array = textured(1024)
    file_bytes = len(base64.b64decode(encode_image(array).data))
    limit = (file_bytes * 4 // 3) - 4096  # the file would fit this, its base64 would not
    assert file_bytes < limit
    assert encode_image(array, max_bytes=limit).nbytes <= limit


@pytest.mark.parametrize("size", [(640, 480), (1024, 1024), (2048, 2048)])
def test_first_encode_that_fits_is_the_only_one(size: tuple[int, int], count_encodes: list,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kling_api.images"):
        encoded = encode_image(gradient(*size))
    assert count_encodes == [(size[0], size[1], 95)]
    assert encoded.quality == 95 and not caplog.records


def test_png_too_big_is_downscaled() -> None:
    noise = np.random.default_rng(2).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    encoded = encode_image(noise, fmt="png", max_bytes=2 * 1024 * 1024)
    assert encoded.nbytes <= 2 * 1024 * 1024 and encoded.scale < 1.0
    assert decode(encoded).size == (encoded.width, encoded.height)


def test_impossible_budget_is_refused() -> None:
    noise = np.random.default_rng(3).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    with pytest.raises(KlingValidationError) as caught:
        encode_image(noise, max_bytes=4096)
    assert caught.value.field == "image" and "600x600" in str(caught.value)


def test_url_passes_through_untouched(count_encodes: list) -> None:
    url = "https://example.com/pictures/start.jpg?sig=abc"
    encoded = encode_image(url, field="image_tail")
    assert (encoded.data, encoded.format, encoded.quality) == (url, "url", None)
    assert count_encodes == []
    for bad in ("data:image/png;base64,iVBORw0KGgo=", "ftp://example.com/a.png", "/tmp/a.png"):
        with pytest.raises(KlingValidationError) as caught:
            encode_image(bad, field="image_tail")
        assert caught.value.field == "image_tail"


@pytest.mark.parametrize("kwargs, field", [({"fmt": "webp"}, "fmt"), ({"fit": "stretch"}, "fit"),
                                           ({"max_bytes": 10}, "max_bytes")])
def test_bad_options_are_refused(kwargs: dict, field: str) -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image(gradient(400, 400), **kwargs)
    assert caught.value.field == field


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_an_image_file_opened_lazily_is_encoded(tmp_path, suffix: str) -> None:
    # Image.open reads pixels on first use; the band encoder's threads must not race to do it.
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(textured(1216)[:900, :1200]).save(path)
    with Image.open(path) as loaded:
        loaded.load()
        expected = encode_image(loaded.copy()).data
    for _ in range(3):
        with Image.open(path) as lazy:
            assert encode_image(lazy).data == expected
