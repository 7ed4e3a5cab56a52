"""encode_image: Kling's image rules (size, ratio, 10 MB of base64, no data: prefix), exact pixels, one save."""
from __future__ import annotations

import base64
import io
import logging

import numpy as np
import pytest
from PIL import Image

from kling_api.media import images
from kling_api.errors import KlingValidationError
from kling_api.media.images import EncodedImage, check_image_size, encode_image

TEN_MB = 10 * 1024 * 1024


def decode(encoded: EncodedImage) -> Image.Image:
    assert not encoded.data.startswith("data:")
    raw = base64.b64decode(encoded.data, validate=True)
    picture = Image.open(io.BytesIO(raw))
    picture.load()
    assert picture.format == "JPEG" and picture.mode == "RGB"
    assert picture.size == (encoded.width, encoded.height)
    return picture


def gradient(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                     np.full_like(xx, 90)], axis=-1).astype(np.uint8)


def as_image(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as ComfyUI's IMAGE hands them on: float32 in 0..1."""
    return pixels.astype(np.float32) / np.float32(255)


def textured(size: int, seed: int = 0) -> np.ndarray:
    """Smooth shapes plus grain: compresses like a detailed photo, not like noise or flat colour."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray((rng.random((size // 64, size // 64, 3)) * 255).astype(np.uint8))
    base = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), np.float32)
    grain = rng.standard_normal((size, size, 1), dtype=np.float32) * 10
    return np.clip(base + grain, 0, 255).astype(np.uint8)


def jpeg_size(pixels: np.ndarray, quality: int) -> int:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.tell()


@pytest.fixture
def saves(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Every JPEG save (width, height, quality): the size estimate's strips included."""
    calls: list[tuple[int, int, int]] = []
    real = images._save

    def counting(picture: Image.Image, quality: int) -> bytes:
        calls.append((picture.width, picture.height, quality))
        return real(picture, quality)

    monkeypatch.setattr(images, "_save", counting)
    return calls


def test_a_float_image_becomes_bare_base64_jpeg_in_one_save(saves: list) -> None:
    encoded = encode_image(as_image(gradient(640, 480)))
    assert (encoded.width, encoded.height, encoded.quality) == (640, 480, 95)
    assert np.abs(np.asarray(decode(encoded), np.int16) - gradient(640, 480)).mean() < 2
    assert saves == [(640, 480, 95)]
    assert "data=" not in repr(encoded)  # megabytes of base64 never land in a log line


def test_float_input_is_rounded_and_clipped_once() -> None:
    array = np.full((300, 300, 3), 0.5, np.float32)
    array[:10] = -0.25
    array[10:20] = 1.75
    array[20:30] = 1.0
    expected = np.full((300, 300, 3), 128, np.uint8)
    expected[:10] = 0
    expected[10:30] = 255
    same_pixels = encode_image(Image.fromarray(expected)).data
    assert encode_image(array).data == same_pixels
    assert encode_image(array.astype(np.float64)).data == same_pixels


def test_a_large_float_image_encodes_exactly_as_its_rounded_pixels() -> None:
    # Several row chunks, values outside 0..1 in every one, and values about half-way between two levels.
    rng = np.random.default_rng(5)
    array = rng.random((1100, 1000, 3), dtype=np.float32) * np.float32(1.2) - np.float32(0.1)
    array[:, :7] = (np.arange(7, dtype=np.float32)[:, None] + np.float32(0.5)) / 255
    pixels = (np.clip(array, 0, 1) * np.float32(255) + np.float32(0.5)).astype(np.uint8)
    assert encode_image(array).data == encode_image(Image.fromarray(pixels)).data


def test_grey_and_rgba_float_images() -> None:
    grey = np.full((320, 480), 77 / 255, np.float32)
    as_rgb = encode_image(Image.fromarray(np.full((320, 480, 3), 77, np.uint8))).data
    assert encode_image(grey).data == as_rgb and encode_image(grey[:, :, None]).data == as_rgb
    rgba = np.zeros((300, 400, 4), np.float32)
    rgba[..., :3] = (200 / 255, 100 / 255, 50 / 255)
    rgba[:, 100:200, 3] = 128 / 255  # half transparent; the first 100 columns are transparent
    rgba[:, 200:, 3] = 1.0
    out = np.asarray(decode(encode_image(rgba)), np.int16)
    assert out[:, :90].max() <= 3  # over black
    assert np.abs(out[:, 110:190] - (100, 50, 25)).max() <= 4
    assert np.abs(out[:, 210:] - (200, 100, 50)).max() <= 4


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "LA"])
def test_pil_inputs(mode: str) -> None:
    picture = Image.fromarray(gradient(500, 350)).convert(mode)
    assert decode(encode_image(picture)).size == (500, 350)


def test_pil_transparency_is_composited_over_black_and_16_bit_grey_keeps_its_top_byte() -> None:
    rgba = np.zeros((300, 400, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, 200:, 3] = 255
    out = np.asarray(decode(encode_image(Image.fromarray(rgba))), np.int16)
    assert out[:, :190].max() <= 3 and np.abs(out[:, 210:] - (200, 100, 50)).max() <= 4
    deep = Image.fromarray(np.full((320, 320), 0x8000, np.uint16))  # mode I;16
    assert np.abs(np.asarray(decode(encode_image(deep)), np.int16) - 128).max() <= 1


@pytest.mark.parametrize("side", [400, 1200])  # 1200: the bad pixel is in a later row chunk
@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinite values"), (-np.inf, "infinite values")])
def test_non_finite_floats_are_refused(bad: float, word: str, side: int) -> None:
    array = np.full((side, side, 3), 0.5, np.float32)
    array[side - 77, 45, 1] = bad
    with pytest.raises(KlingValidationError) as caught:
        encode_image(array, field="image_tail")
    assert caught.value.field == "image_tail"
    assert str(caught.value) == (f"image_tail: the image contains {word}; allowed: finite floats in 0..1 "
                                 "(check the node that produced it)")


@pytest.mark.parametrize("array", [np.zeros((0, 400, 3), np.float32), np.zeros((400, 0), np.float32),
                                   np.zeros((400, 400, 2), np.float32), np.zeros((2, 400, 400, 3), np.float32),
                                   np.zeros((400, 400, 3), np.int64), np.zeros((400, 400, 3), np.uint8)])
def test_unusable_arrays_are_refused(array: np.ndarray) -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image(array)
    assert caught.value.field == "image" and "array of" in str(caught.value) and "floats in 0..1" in str(caught.value)


def test_other_objects_are_refused() -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image([[0.5] * 400] * 400, field="image_tail")
    assert caught.value.field == "image_tail" and "a PIL image" in str(caught.value)


def test_short_side_under_300_is_refused() -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image(as_image(gradient(299, 600)), field="image")
    error = caught.value
    assert error.field == "image" and error.value == "299x600"
    assert str(error) == ("image is 299x600: a side is under 300 px; allowed: each side at least 300 px and aspect "
                          "ratio between 1:2.5 and 2.5:1 (fit='pad' or fit='crop' adapts the image)")
    with pytest.raises(KlingValidationError, match="image_tail is 600x299"):
        check_image_size(600, 299, "image_tail")


def test_ratio_beyond_2_5_is_refused() -> None:
    check_image_size(400, 1000, "image")  # exactly 1:2.5 is allowed
    check_image_size(1000, 400, "image")
    with pytest.raises(KlingValidationError) as caught:
        encode_image(as_image(gradient(400, 1040)))  # 1:2.6
    assert caught.value.value == "400x1040"
    assert str(caught.value).startswith("image is 400x1040: aspect ratio 2.60:1 is beyond 2.5:1; allowed: ")
    with pytest.raises(KlingValidationError):
        check_image_size(1001, 400, "image")


@pytest.mark.parametrize("size, expected", [((200, 100), (300, 300)), ((1000, 300), (1000, 400)),
                                            ((300, 1000), (400, 1000)), ((640, 480), (640, 480))])
def test_pad_reaches_an_allowed_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    width, height = size
    encoded = encode_image(Image.new("RGB", size, (200, 200, 200)), fit="pad")
    out = np.asarray(decode(encoded), np.int16)
    assert (encoded.width, encoded.height) == expected
    check_image_size(encoded.width, encoded.height, "image")
    left, top = (expected[0] - width) // 2, (expected[1] - height) // 2
    inside = np.zeros(out.shape[:2], bool)
    inside[top:top + height, left:left + width] = True
    assert np.abs(out[inside] - 200).mean() < 2
    assert out[~inside].mean() < 2 if (~inside).any() else (width, height) == expected  # the rest is black


@pytest.mark.parametrize("size, expected", [((1000, 300), (750, 300)), ((300, 1000), (300, 750)),
                                            ((100, 200), (300, 600)), ((2000, 100), (750, 300)),
                                            ((500, 400), (500, 400))])
def test_crop_reaches_an_allowed_size(size: tuple[int, int], expected: tuple[int, int]) -> None:
    encoded = encode_image(Image.fromarray(gradient(*size)), fit="crop")
    assert (encoded.width, encoded.height) == expected
    decode(encoded)
    check_image_size(encoded.width, encoded.height, "image")


def test_crop_keeps_the_centre() -> None:
    array = np.zeros((300, 1000, 3), np.uint8)
    array[:, 125:875] = 255  # exactly the 750 px that a centre crop keeps
    out = np.asarray(decode(encode_image(Image.fromarray(array), fit="crop")))
    assert out.shape == (300, 750, 3) and out.min() >= 250


def test_noise_8000_is_fitted_under_10_mb(caplog: pytest.LogCaptureFixture, saves: list) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (8000, 8000, 3), dtype=np.uint8)
    with caplog.at_level(logging.INFO, logger="kling_api.media.images"):
        encoded = encode_image(as_image(noise))
    assert len(encoded.data) <= TEN_MB
    assert encoded.quality == 70 and 300 <= encoded.width == encoded.height < 8000
    assert decode(encoded).size == (encoded.width, encoded.height)
    assert len([s for s in saves if s[1] >= 300]) <= 2  # the strips guessed the size: at most one retry
    notes = [r for r in caplog.records if r.name == "kling_api.media.images"]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert notes[0].message == (f"image: JPEG quality lowered from 95 to 70 and downscaled from 8000x8000 to "
                                f"{encoded.width}x{encoded.height} to fit the size limit")


def test_quality_is_lowered_before_size_and_encoding_is_deterministic(
        caplog: pytest.LogCaptureFixture, saves: list, monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = textured(2048)
    at95, at70 = (jpeg_size(pixels, q) * 4 // 3 for q in (95, 70))
    budget = int((at95 * at70) ** 0.5)  # reachable by quality alone
    monkeypatch.setattr(images, "MAX_BYTES", budget)
    with caplog.at_level(logging.INFO, logger="kling_api.media.images"):
        encoded = encode_image(as_image(pixels))
    assert len(encoded.data) <= budget
    assert 70 <= encoded.quality < 95 and (encoded.width, encoded.height) == (2048, 2048)
    assert len(encoded.data) > 0.8 * budget  # the highest quality that fits, not just any
    decode(encoded)
    assert [s for s in saves if s[:2] == (2048, 2048)] == [(2048, 2048, encoded.quality)]  # one full save
    assert [r.message for r in caplog.records if r.name == "kling_api.media.images"] == [
        f"image: JPEG quality lowered from 95 to {encoded.quality} to fit the size limit"]
    assert encode_image(as_image(pixels)).data == encoded.data


def test_a_missed_estimate_costs_another_save_not_a_bigger_file(monkeypatch: pytest.MonkeyPatch, saves: list) -> None:
    pixels = textured(1024)
    budget = jpeg_size(pixels, 85) * 4 // 3
    monkeypatch.setattr(images, "MAX_BYTES", budget)
    monkeypatch.setattr(images, "_first_guess", lambda picture, target: (95, picture))  # a wrong first guess
    encoded = encode_image(as_image(pixels))
    assert len(encoded.data) <= budget and encoded.quality <= 85 and encoded.width == 1024
    assert 2 <= len(saves) <= 4 and saves[0] == (1024, 1024, 95)


def test_size_limit_is_on_the_base64_text(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = as_image(textured(1024))
    file_bytes = len(base64.b64decode(encode_image(pixels).data))
    limit = (file_bytes * 4 // 3) - 4096  # the file would fit this, its base64 would not
    assert file_bytes < limit
    monkeypatch.setattr(images, "MAX_BYTES", limit)
    encoded = encode_image(pixels)
    assert len(encoded.data) <= limit and encoded.quality < 95


@pytest.mark.parametrize("size", [(640, 480), (1024, 1024), (2048, 2048)])
def test_first_save_that_fits_is_the_only_one(size: tuple[int, int], saves: list,
                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kling_api.media.images"):
        encoded = encode_image(as_image(gradient(*size)))
    assert [s for s in saves if s[:2] == size] == [(size[0], size[1], 95)]
    assert encoded.quality == 95 and not caplog.records


def test_a_downscaled_image_keeps_to_the_side_and_ratio_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    noise = np.random.default_rng(4).integers(0, 256, (800, 2000, 3), dtype=np.uint8)  # exactly 2.5:1
    monkeypatch.setattr(images, "MAX_BYTES", 160 * 1024)  # only about 750x300 fits
    encoded = encode_image(as_image(noise))
    assert len(encoded.data) <= 160 * 1024 and encoded.quality == 70 and encoded.width < 2000
    assert encoded.height >= 300 and 2 * encoded.width <= 5 * encoded.height
    check_image_size(encoded.width, encoded.height, "image")
    wide = Image.new("L", (2500, 1000))
    for factor in np.linspace(0.3, 0.99, 70):  # rounding either side down must not break the 2.5:1 rule
        check_image_size(*images._downscaled(wide, float(factor)).size)


def test_impossible_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    noise = np.random.default_rng(3).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    monkeypatch.setattr(images, "MAX_BYTES", 4096)
    with pytest.raises(KlingValidationError) as caught:
        encode_image(as_image(noise))
    assert caught.value.field == "image"
    assert str(caught.value) == "image: cannot encode 600x600 within 4096 bytes of base64 even at 300x300, quality 70"


def test_url_passes_through_untouched(saves: list) -> None:
    url = "https://example.com/pictures/start.jpg?sig=abc"
    encoded = encode_image(url, field="image_tail")
    assert (encoded.data, encoded.quality) == (url, None)
    assert saves == []
    for bad in ("data:image/png;base64,iVBORw0KGgo=", "ftp://example.com/a.png", "/tmp/a.png"):
        with pytest.raises(KlingValidationError) as caught:
            encode_image(bad, field="image_tail")
        assert caught.value.field == "image_tail"


def test_bad_fit_is_refused() -> None:
    with pytest.raises(KlingValidationError) as caught:
        encode_image(as_image(gradient(400, 400)), fit="stretch")
    assert caught.value.field == "fit" and "'pad'" in str(caught.value) and "'crop'" in str(caught.value)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp"])
def test_an_image_file_opened_lazily_is_encoded(tmp_path, suffix: str) -> None:
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(textured(1216)[:900, :1200]).save(path)
    with Image.open(path) as loaded:
        loaded.load()
        expected = encode_image(loaded.copy()).data
    with Image.open(path) as lazy:
        assert encode_image(lazy).data == expected
