"""Pictures a create brings or needs: submitted images decoded and held to Kling's image rules, and the
first frames the emulator makes itself (a picture from a text prompt, a collage of several images).

Both API standards share these: the legacy paths (reference section 7: 10 MB) and the new standard
(every image-to-video page: "The size of the image file cannot exceed 50MB"; sides >= 300 px, aspect
1:2.5 to 2.5:1) differ only in the size limit, which the capability table holds (``image_max_bytes``).
"""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from PIL import Image, ImageOps

from ..rules.capabilities import load_raw
from .errors import bad_param

MIN_IMAGE_SIDE = 300
MAX_ASPECT = 2.5
IMAGE_FORMATS = ("JPEG", "PNG")
MB = 1024 * 1024
#: Used when a capability table file has no ``image_max_bytes`` entry (reference 7; the new pages).
DEFAULT_IMAGE_MAX_BYTES = {"legacy": 10 * MB, "new": 50 * MB}
#: Size of the generated first frame per aspect_ratio (text to video has no image; multi-image to
#: video lays its images out on a frame of this size).
TEXT_FRAME_SIZES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}

#: (field, url) -> the bytes at url, or ApiError; supplied by the server (it knows its own address).
Fetcher = Callable[[str, str], bytes]


@dataclass(frozen=True)
class Picture:
    data: bytes
    width: int
    height: int


def image_max_bytes(standard: str) -> int:
    """The image size limit of an API standard ("legacy" or "new"), from the capability table."""
    found = (load_raw().get("image_max_bytes") or {}).get(standard)
    return int(found or DEFAULT_IMAGE_MAX_BYTES[standard])


#: The most any image fetch reads (one byte over the larger limit, so that "too large" can be told).
MAX_FETCH_BYTES = max(DEFAULT_IMAGE_MAX_BYTES.values()) + 1


def load_picture(field: str, value: Any, fetch: Fetcher, *, min_side: int = MIN_IMAGE_SIDE,
                 check_aspect: bool = False, max_bytes: int | None = None) -> Picture:
    """Raw base64 (no ``data:`` prefix) or an http(s) URL, decoded and held to the image rules
    (``max_bytes`` defaults to the legacy limit)."""
    limit = max_bytes or image_max_bytes("legacy")
    if not isinstance(value, str) or not value:
        raise bad_param(f"{field} is invalid")
    if value.startswith("data:"):
        raise bad_param(f"{field} must be raw base64 without a data: prefix")
    if value.startswith(("http://", "https://")):
        data = fetch(field, value)
    elif "://" in value[:16]:
        raise bad_param(f"{field} url must be http or https")
    else:
        try:
            data = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise bad_param(f"{field} is not valid base64") from None
    if len(data) > limit:
        raise bad_param(f"{field} size cannot exceed {limit // MB}MB")
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind, (width, height) = img.format, img.size
            img.verify()
    except Exception:  # Pillow raises many types for undecodable data
        raise bad_param(f"{field} is not a valid image") from None
    if kind not in IMAGE_FORMATS:
        raise bad_param(f"{field} format must be jpg, jpeg or png")
    if min(width, height) < min_side:
        raise bad_param(f"{field} width and height must be at least {min_side}px, got {width}x{height}")
    if check_aspect and not 1 / MAX_ASPECT <= width / height <= MAX_ASPECT:
        raise bad_param(f"{field} aspect ratio must be between 1:2.5 and 2.5:1, got {width}x{height}")
    return Picture(data=data, width=width, height=height)


def prompt_picture(prompt: str, aspect_ratio: str) -> Picture:
    """The first frame of a text-to-video task: a flat colour chosen by the prompt, at the ratio's size
    (so the video's geometry follows ``aspect_ratio`` as an image's would)."""
    seed = sum(prompt.encode()) % 256
    return png(Image.new("RGB", TEXT_FRAME_SIZES[aspect_ratio], (seed, 255 - seed, (seed * 7) % 256)))


def collage(pictures: Sequence[Picture], size: tuple[int, int]) -> Picture:
    """The pictures side by side, left to right, on a ``size`` frame: each scaled and centre-cropped
    to fill its column (the columns share the width equally; the last takes any odd pixels)."""
    width, height = size
    frame = Image.new("RGB", size)
    edges = [round(i * width / len(pictures)) for i in range(len(pictures) + 1)]
    for picture, left, right in zip(pictures, edges, edges[1:]):
        with Image.open(io.BytesIO(picture.data)) as img:
            tile = ImageOps.fit(ImageOps.exif_transpose(img).convert("RGB"), (right - left, height),
                                Image.BILINEAR)
        frame.paste(tile, (left, 0))
    return png(frame)


def png(image: Image.Image) -> Picture:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Picture(data=buffer.getvalue(), width=image.width, height=image.height)
