"""Kling's rules for the create calls of its video task endpoints (image2video, text2video,
multi-image2video, video-extend), written from the reference, not from the client.

The emulator is an independent check of the client's own validation (``kling_api.rules.validation``),
so nothing here calls it: a rule the client forgets shows up in tests as the 1201 Kling would send.
Which model takes which feature comes from the capability table, the one place those facts live.
"""
from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from PIL import Image, ImageOps

from ..rules.capabilities import (ModelCapabilities, capability_table, endpoint_aspect_ratios, endpoint_facts,
                            endpoint_models, max_reference_images)
from ..rules.request import CAMERA_AXES, CAMERA_TYPES
from .errors import ApiError, bad_param

#: Reference section 3 and 7.
DEFAULT_MODEL = "kling-v1"
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MIN_IMAGE_SIDE = 300
MAX_ASPECT = 2.5
MAX_DYNAMIC_MASKS = 6
TRAJECTORY_POINTS = (2, 77)
CAMERA_RANGE = 10.0
IMAGE_FORMATS = ("JPEG", "PNG")

#: (field, url) -> the bytes at url, or ApiError; supplied by the server (it knows its own address).
Fetcher = Callable[[str, str], bytes]


@dataclass(frozen=True)
class Picture:
    data: bytes
    width: int
    height: int


@dataclass(frozen=True)
class SourceVideo:
    """A video a finished task made, as ``POST /v1/videos/video-extend`` needs it."""

    video_id: str
    url: str
    model: ModelCapabilities
    mode: str
    #: The video's length, as its task's ``duration`` says (e.g. "5", "9.5").
    duration: str
    data: bytes


#: video_id -> the video of a succeeded task, or None; supplied by the server (it holds the tasks).
VideoFinder = Callable[[str], "SourceVideo | None"]


@dataclass(frozen=True)
class CreateOrder:
    """A create request Kling would accept, reduced to what the task and its video need."""

    model: ModelCapabilities
    mode: str
    duration: str
    sound: bool
    image: Picture | None
    image_tail: Picture | None
    prompt: str
    camera: dict[str, Any] | None
    callback_url: str | None
    external_task_id: str | None
    watermark: bool
    #: Set when the reference says the *task* fails (not the create), e.g. masks of another aspect.
    failure: str | None = None
    #: video-extend: the video being extended (``duration`` is then the whole extended clip's).
    source: SourceVideo | None = None

    @property
    def combo(self) -> str:
        return f"{self.model.name}/{self.mode}/{self.duration}"

    @property
    def added_seconds(self) -> float:
        """Seconds this task makes (what it is billed for): an extend's new part, else the duration."""
        return float(self.duration) - (float(self.source.duration) if self.source else 0.0)


def check_create(body: Any, fetch: Fetcher) -> CreateOrder:
    """The order for a valid body, else ApiError 1200/1201 with Kling's kind of message."""
    _object(body)
    model = _model(body.get("model_name"))
    mode = _mode(body.get("mode"))
    duration = _duration(model, mode, body.get("duration"))
    combo = f"{model.name}/{mode}/{duration}"
    prompt = _text(body, "prompt")
    _text(body, "negative_prompt")
    _cfg_scale(body.get("cfg_scale"))
    sound = _sound(model, mode, duration, combo, body.get("sound"))

    has_image, has_tail = _given(body, "image"), _given(body, "image_tail")
    has_masks = _given(body, "static_mask") or _given(body, "dynamic_masks")
    has_camera = _given(body, "camera_control")
    if not has_image and not has_tail:
        raise bad_param("image or image_tail is required")
    if has_tail + has_masks + has_camera > 1:
        raise bad_param("image_tail, dynamic_masks/static_mask and camera_control cannot be used together")
    if has_tail:
        _require(model, "image_tail", mode, duration, combo, "image_tail")
        if sound and model.image_tail_requires_silence:
            raise bad_param(f"model/mode/duration({combo}) is not supported with image_tail and sound on")
    if has_masks:
        names = [n for n in ("static_mask", "dynamic_masks") if _given(body, n)]
        _require(model, "motion_brush", mode, duration, combo, "/".join(names))
    camera = _camera(model, mode, duration, combo, body["camera_control"]) if has_camera else None
    callback_url = _callback_url(body.get("callback_url"))
    external_task_id = _external_task_id(body.get("external_task_id"))

    image = load_picture("image", body["image"], fetch, check_aspect=True) if has_image else None
    tail = load_picture("image_tail", body["image_tail"], fetch) if has_tail else None
    failure = _masks(body, image, fetch) if has_masks else None
    return CreateOrder(model=model, mode=mode, duration=duration, sound=sound, image=image, image_tail=tail,
                       prompt=prompt, camera=camera, callback_url=callback_url,
                       external_task_id=external_task_id, watermark=_watermark(body), failure=failure)


def _object(body: Any) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, 1200, "request body must be a JSON object")


def _watermark(body: dict[str, Any]) -> bool:
    watermark = body.get("watermark_info")
    return isinstance(watermark, dict) and watermark.get("enabled") is True


def _given(body: dict[str, Any], name: str) -> bool:
    return body.get(name) not in (None, "", [], {})


def _model(value: Any) -> ModelCapabilities:
    # The old key ``model`` is not read: Kling treats it like an empty model_name (reference section 3).
    name = value if value not in (None, "") else DEFAULT_MODEL
    caps = capability_table().get(name) if isinstance(name, str) else None
    if caps is None:
        raise bad_param(f"model_name({name}) is invalid")
    return caps


def _mode(value: Any) -> str:
    mode = value if value not in (None, "") else "std"
    if mode not in ("std", "pro"):
        raise bad_param(f"mode({mode}) is invalid")
    return mode


def _duration(model: ModelCapabilities, mode: str, value: Any) -> str:
    # Sent as a string per the docs; an int (as some public clients send) is read the same way.
    if value in (None, ""):
        value = "5"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad_param(f"duration({value}) is invalid")
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    if not text.isdigit():
        raise bad_param(f"duration({value}) is invalid")
    if text not in model.durations:
        raise bad_param(f"model/mode/duration({model.name}/{mode}/{text}) is not supported")
    return text


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_param(f"{name} must be a string")
    limit = capability_table().prompt_max_chars
    if len(value) > limit:
        raise bad_param(f"{name} cannot be longer than {limit} characters")
    return value


def _cfg_scale(value: Any) -> None:
    # Range-checked for every model; the v2 models ignore the value (public clients send it anyway).
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 1:
        raise bad_param(f"cfg_scale({value}) must be in [0, 1]")


def _require(model: ModelCapabilities, feature: str, mode: str, duration: str, combo: str, shown: str) -> None:
    if not model.allows(feature, mode, duration):
        raise bad_param(f"model/mode/duration({combo}) is not supported with {shown}")


def _sound(model: ModelCapabilities, mode: str, duration: str, combo: str, value: Any) -> bool:
    if value in (None, "", "off"):
        return False
    if value != "on":
        raise bad_param(f"sound({value}) is invalid")
    _require(model, "sound", mode, duration, combo, "sound on")
    return True


def _camera(model: ModelCapabilities, mode: str, duration: str, combo: str, camera: Any) -> dict[str, Any]:
    if not isinstance(camera, dict):
        raise bad_param("camera_control is invalid")
    kind = camera.get("type")
    if kind not in CAMERA_TYPES:
        raise bad_param(f"camera_control.type({kind}) is invalid")
    _require(model, "camera_control", mode, duration, combo, "camera_control")
    if kind not in model.camera_types:
        raise bad_param(f"camera_control.type({kind}) is not supported with {model.name}")
    config = camera.get("config")
    if kind != "simple":
        if config not in (None, {}):
            raise bad_param(f"camera_control.config must be empty for type {kind}")
        return {"type": kind}
    if not isinstance(config, dict):
        raise bad_param("camera_control.config is required for type simple")
    unknown = sorted(set(config) - set(CAMERA_AXES))
    if unknown:
        raise bad_param(f"camera_control.config.{unknown[0]} is invalid")
    values = {}
    for axis in CAMERA_AXES:
        number = config.get(axis, 0)
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
                or abs(number) > CAMERA_RANGE:
            raise bad_param(f"camera_control.config.{axis}({number}) must be in [-10, 10]")
        values[axis] = float(number)
    if sum(1 for v in values.values() if v != 0) != 1:
        raise bad_param("camera_control.config must have exactly one non-zero value")
    return {"type": "simple", "config": values}


def _callback_url(value: Any) -> str | None:
    if value in (None, ""):
        return None
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise bad_param("callback_url is invalid")
    return value


def _external_task_id(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad_param("external_task_id must be a string")
    return value


def load_picture(field: str, value: Any, fetch: Fetcher, *, min_side: int = MIN_IMAGE_SIDE,
                 check_aspect: bool = False) -> Picture:
    """Raw base64 (no ``data:`` prefix) or an http(s) URL, decoded and held to section 7's limits."""
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
    if len(data) > MAX_IMAGE_BYTES:
        raise bad_param(f"{field} size cannot exceed 10MB")
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


def _masks(body: dict[str, Any], image: Picture | None, fetch: Fetcher) -> str | None:
    """Check the motion brush; returns the reason the task will fail (aspect/resolution), if any."""
    masks: list[tuple[str, Picture]] = []
    static = body.get("static_mask")
    if _given(body, "static_mask"):
        masks.append(("static_mask", load_mask("static_mask", static, fetch)))
    dynamic = body.get("dynamic_masks") or []
    if not isinstance(dynamic, list):
        raise bad_param("dynamic_masks is invalid")
    if len(dynamic) > MAX_DYNAMIC_MASKS:
        raise bad_param(f"dynamic_masks cannot have more than {MAX_DYNAMIC_MASKS} items")
    lo, hi = TRAJECTORY_POINTS
    for i, item in enumerate(dynamic):
        name = f"dynamic_masks[{i}]"
        if not isinstance(item, dict) or not _given(item, "mask") or "trajectories" not in item:
            raise bad_param(f"{name} must have mask and trajectories")
        points = item["trajectories"]
        if not isinstance(points, list) or not lo <= len(points) <= hi:
            raise bad_param(f"{name}.trajectories must have {lo} to {hi} points")
        for j, point in enumerate(points):
            if not isinstance(point, dict) or not all(
                    isinstance(point.get(k), int) and not isinstance(point.get(k), bool) for k in ("x", "y")):
                raise bad_param(f"{name}.trajectories[{j}] must be {{x: int, y: int}}")
            if image is not None and not (0 <= point["x"] <= image.width and 0 <= point["y"] <= image.height):
                raise bad_param(f"{name}.trajectories[{j}]({point['x']},{point['y']}) is outside the image")
        masks.append((f"{name}.mask", load_mask(f"{name}.mask", item["mask"], fetch)))
    if image is None:
        return None
    for name, mask in masks:
        if abs(mask.width / mask.height - image.width / image.height) > 0.01 * image.width / image.height:
            return f"{name} aspect ratio does not match image"
    if len({(m.width, m.height) for _, m in masks}) > 1:
        return "static_mask and dynamic_masks must have the same resolution"
    return None


def load_mask(field: str, value: Any, fetch: Fetcher) -> Picture:
    """A mask has the image's encodings and formats; its size is held to the image's, not to 300 px."""
    return load_picture(field, value, fetch, min_side=1)


#: Size of the generated first frame per aspect_ratio (text to video has no image; multi-image to
#: video lays its images out on a frame of this size).
TEXT_FRAME_SIZES = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}


def check_text_create(body: Any) -> CreateOrder:
    """``POST /v1/videos/text2video`` (reference 1.3): the model from the endpoint's list, a prompt,
    aspect_ratio 16:9/9:16/1:1 (default 16:9); the video starts from a picture made from the prompt."""
    _object(body)
    model, mode, duration, prompt = _endpoint_basics("text2video", body)
    _cfg_scale(body.get("cfg_scale"))
    sound = _sound(model, mode, duration, f"{model.name}/{mode}/{duration}", body.get("sound"))
    size = _frame_size("text2video", body)
    seed = sum(prompt.encode()) % 256
    picture = _png(Image.new("RGB", size, (seed, 255 - seed, (seed * 7) % 256)))
    return CreateOrder(model=model, mode=mode, duration=duration, sound=sound, image=picture, image_tail=None,
                       prompt=prompt, camera=None, callback_url=_callback_url(body.get("callback_url")),
                       external_task_id=_external_task_id(body.get("external_task_id")),
                       watermark=_watermark(body))


def check_multi_image_create(body: Any, fetch: Fetcher) -> CreateOrder:
    """``POST /v1/videos/multi-image2video`` (reference 1.3, 7): the endpoint's model (kling-v1-6),
    ``image_list`` of 1..max_images ``{"image": base64 or URL}`` held to image2video's image rules, a
    required prompt, mode, the model's durations, aspect_ratio (default 16:9). The video starts from the
    images side by side, in list order, each filling its equal-width column of the frame."""
    _object(body)
    model, mode, duration, prompt = _endpoint_basics("multi-image2video", body)
    size = _frame_size("multi-image2video", body)
    callback_url = _callback_url(body.get("callback_url"))
    external_task_id = _external_task_id(body.get("external_task_id"))
    items = body.get("image_list")
    limit = max_reference_images()
    if items in (None, "", []):
        raise bad_param("image_list is required")
    if not isinstance(items, list):
        raise bad_param("image_list is invalid")
    if len(items) > limit:
        raise bad_param(f"image_list cannot have more than {limit} items, got {len(items)}")
    pictures = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not _given(item, "image"):
            raise bad_param(f"image_list[{i}].image is required")
        pictures.append(load_picture(f"image_list[{i}].image", item["image"], fetch, check_aspect=True))
    return CreateOrder(model=model, mode=mode, duration=duration, sound=False, image=collage(pictures, size),
                       image_tail=None, prompt=prompt, camera=None, callback_url=callback_url,
                       external_task_id=external_task_id, watermark=_watermark(body))


def check_extend_create(body: Any, find_video: VideoFinder) -> CreateOrder:
    """``POST /v1/videos/video-extend`` (reference 1.3): ``video_id`` of a succeeded task's video, optional
    prompt, negative_prompt, cfg_scale; model and mode are the source's. Only videos of the endpoint's
    source models can be extended, by seconds_added each time, up to max_total_seconds in all."""
    _object(body)
    video_id = body.get("video_id")
    if video_id in (None, ""):
        raise bad_param("video_id is required")
    if not isinstance(video_id, str):
        raise bad_param("video_id must be a string")
    prompt = _text(body, "prompt")
    _text(body, "negative_prompt")
    _cfg_scale(body.get("cfg_scale"))
    callback_url = _callback_url(body.get("callback_url"))
    external_task_id = _external_task_id(body.get("external_task_id"))
    source = find_video(video_id)
    if source is None:
        raise bad_param(f"video_id({video_id}) is invalid: no succeeded task has a video with this id")
    facts = endpoint_facts("video-extend")
    allowed = facts.get("source_models") or ()
    if source.model.name not in allowed:
        raise bad_param(f"video_id({video_id}) is not supported: only videos generated by "
                        f"{', '.join(allowed)} can be extended")
    total = float(source.duration) + float(facts["seconds_added"])
    cap = float(facts["max_total_seconds"])
    if total > cap:
        raise bad_param(f"video_id({video_id}) cannot be extended: the total duration would be {total:g}s, "
                        f"more than {cap:g}s")
    return CreateOrder(model=source.model, mode=source.mode, duration=f"{total:g}", sound=False, image=None,
                       image_tail=None, prompt=prompt, camera=None, callback_url=callback_url,
                       external_task_id=external_task_id, watermark=_watermark(body), source=source)


def _endpoint_basics(endpoint: str, body: dict[str, Any]) -> tuple[ModelCapabilities, str, str, str]:
    """(model, mode, duration, prompt) of an endpoint that takes only its own models and needs a prompt."""
    name = body.get("model_name")
    if name not in endpoint_models(endpoint):
        raise bad_param(f"model_name({name}) is invalid")
    model = _model(name)
    mode = _mode(body.get("mode"))
    duration = _duration(model, mode, body.get("duration"))
    prompt = _text(body, "prompt")
    if not prompt.strip():
        raise bad_param("prompt is required")
    _text(body, "negative_prompt")
    return model, mode, duration, prompt


def _frame_size(endpoint: str, body: dict[str, Any]) -> tuple[int, int]:
    ratio = body.get("aspect_ratio") or endpoint_facts(endpoint).get("default_aspect_ratio", "16:9")
    if not isinstance(ratio, str) or ratio not in TEXT_FRAME_SIZES or ratio not in endpoint_aspect_ratios(endpoint):
        raise bad_param(f"aspect_ratio({ratio}) is invalid")
    return TEXT_FRAME_SIZES[ratio]


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
    return _png(frame)


def _png(image: Image.Image) -> Picture:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Picture(data=buffer.getvalue(), width=image.width, height=image.height)
