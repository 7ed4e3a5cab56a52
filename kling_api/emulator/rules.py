"""Kling's rules for the create calls of its video task endpoints (image2video, text2video,
multi-image2video, video-extend), written from the reference, not from the client.

The emulator is an independent check of the client's own validation (``kling_api.rules.validation``),
so nothing here calls it: a rule the client forgets shows up in tests as the 1201 Kling would send.
Which model takes which feature comes from the capability table, the one place those facts live.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlparse

from ..rules.capabilities import (BASE_MODES, ModelCapabilities, capability_table, endpoint_aspect_ratios,
                                  endpoint_facts, endpoint_models, max_reference_images)
from ..rules.endpoints import LEGACY
from ..rules.prices import list_price
from ..rules.request import CAMERA_AXES, CAMERA_TYPES
from .errors import ApiError, bad_param
from .pictures import TEXT_FRAME_SIZES, Fetcher, Picture, collage, load_picture, prompt_picture
from .storyboard import Shots, check_legacy_storyboard, multi_shot_asked, shots_prompt

#: Reference section 3 and 7.
DEFAULT_MODEL = "kling-v1"
MAX_DYNAMIC_MASKS = 6
TRAJECTORY_POINTS = (2, 77)
CAMERA_RANGE = 10.0
#: Legacy modes: std and pro (reference 3) and 4k, which Kling's changelog (kling-updates-api.md) added on
#: 04/23/2026 for kling-v3 (image and text to video; "Set the mode parameter value to 4k"), 3 units per second.
LEGACY_MODES = ("std", "pro", "4k")


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
    #: The API standard the create came on (the endpoint table's LEGACY or NEW). On the new standard
    #: ``mode`` holds the resolution (the capability table's tier for those models).
    standard: str = LEGACY
    #: New standard and legacy 4k: the official price per second (kling_api/rules/price_table.json); else None.
    units_per_second: float | None = None
    #: A storyboard's (seconds, words) per shot (legacy multi_prompt, the new standard's shot syntax).
    shots: Shots = ()

    @property
    def combo(self) -> str:
        return f"{self.model.name}/{self.mode}/{self.duration}"

    @property
    def added_seconds(self) -> float:
        """Seconds this task makes (what it is billed for): an extend's new part, else the duration."""
        return float(self.duration) - (float(self.source.duration) if self.source else 0.0)


def check_create(body: Any, fetch: Fetcher) -> CreateOrder:
    """The order for a valid body, else ApiError 1200/1201 with Kling's kind of message."""
    require_object(body)
    model = _model(body.get("model_name"))
    mode = _mode(model, body.get("mode"))
    duration = _duration(model, mode, body.get("duration"))
    combo = f"{model.name}/{mode}/{duration}"
    prompt = _text(body, "prompt")
    _text(body, "negative_prompt")
    _cfg_scale(body.get("cfg_scale"))
    sound = _sound(model, mode, duration, combo, body.get("sound"))
    shots = check_legacy_storyboard(body, model, "image2video", duration, prompt)

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
    callback_url = check_callback_url(body.get("callback_url"))
    external_task_id = check_external_task_id(body.get("external_task_id"))

    image = load_picture("image", body["image"], fetch, check_aspect=True) if has_image else None
    tail = load_picture("image_tail", body["image_tail"], fetch) if has_tail else None
    failure = _masks(body, image, fetch) if has_masks else None
    return CreateOrder(model=model, mode=mode, duration=duration, sound=sound, image=image, image_tail=tail,
                       prompt=shots_prompt(shots) or prompt, camera=camera, callback_url=callback_url, shots=shots,
                       external_task_id=external_task_id, watermark=_watermark(body), failure=failure,
                       units_per_second=_units_per_second(model, mode, sound))


def require_object(body: Any) -> None:
    """1200 unless the body is a JSON object (both standards)."""
    if not isinstance(body, dict):
        raise ApiError(400, 1200, "request body must be a JSON object")


def _watermark(body: dict[str, Any]) -> bool:
    watermark = body.get("watermark_info")
    return isinstance(watermark, dict) and watermark.get("enabled") is True


def _given(body: dict[str, Any], name: str) -> bool:
    return body.get(name) not in (None, "", [], {})


def _model(value: Any) -> ModelCapabilities:
    # The old key ``model`` is not read: Kling treats it like an empty model_name (reference section 3).
    # A new-standard model (kling-3.0-turbo, ...) has no model_name value: Kling's authentication page,
    # "the value set as the model_name parameter is the legacy version" (refusing it is the emulator's
    # reading).
    name = value if value not in (None, "") else DEFAULT_MODEL
    caps = capability_table().get(name) if isinstance(name, str) else None
    if caps is None or caps.is_new_standard:
        raise bad_param(f"model_name({name}) is invalid")
    return caps


def _mode(model: ModelCapabilities, value: Any) -> str:
    """std (default) or pro on every legacy model (the master models ignore it); 4k only where the capability
    table lists it (kling-v3), else the 1201 a combination Kling does not offer gets (its words are a guess)."""
    mode = value if value not in (None, "") else "std"
    if mode not in LEGACY_MODES:
        raise bad_param(f"mode({mode}) is invalid")
    if mode not in BASE_MODES and mode not in model.modes:
        raise bad_param(f"model/mode({model.name}/{mode}) is not supported")
    return mode


def _units_per_second(model: ModelCapabilities, mode: str, sound: bool) -> float | None:
    """4k: the changelog's 3 units per second, as the official price table has Kling 3.0 at 4K; std and pro
    keep the emulator's made-up legacy billing (None: see Task.units)."""
    if mode in BASE_MODES:
        return None
    price = list_price(model.name, mode, sound)
    return price.units_per_second if price else None


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


def check_callback_url(value: Any, field: str = "callback_url") -> str | None:
    """An http(s) URL with a host, or None when not given (both standards)."""
    if value in (None, ""):
        return None
    parsed = urlparse(value) if isinstance(value, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise bad_param(f"{field} is invalid")
    return value


def check_external_task_id(value: Any, field: str = "external_task_id") -> str | None:
    """A string, or None when not given (both standards; uniqueness is the server's check)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise bad_param(f"{field} must be a string")
    return value


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



def check_text_create(body: Any) -> CreateOrder:
    """``POST /v1/videos/text2video`` (reference 1.3): the model from the endpoint's list, a prompt,
    aspect_ratio 16:9/9:16/1:1 (default 16:9); the video starts from a picture made from the prompt."""
    require_object(body)
    model, mode, duration, prompt = _endpoint_basics("text2video", body, prompt_required=not multi_shot_asked(body))
    _cfg_scale(body.get("cfg_scale"))
    sound = _sound(model, mode, duration, f"{model.name}/{mode}/{duration}", body.get("sound"))
    shots = check_legacy_storyboard(body, model, "text2video", duration, prompt)
    prompt = shots_prompt(shots) or prompt
    picture = prompt_picture(prompt, _aspect_ratio("text2video", body))
    return CreateOrder(model=model, mode=mode, duration=duration, sound=sound, image=picture, image_tail=None,
                       prompt=prompt, camera=None, callback_url=check_callback_url(body.get("callback_url")), shots=shots,
                       external_task_id=check_external_task_id(body.get("external_task_id")),
                       watermark=_watermark(body), units_per_second=_units_per_second(model, mode, sound))


def check_multi_image_create(body: Any, fetch: Fetcher) -> CreateOrder:
    """``POST /v1/videos/multi-image2video`` (reference 1.3, 7): the endpoint's model (kling-v1-6),
    ``image_list`` of 1..max_images ``{"image": base64 or URL}`` held to image2video's image rules, a
    required prompt, mode, the model's durations, aspect_ratio (default 16:9). The video starts from the
    images side by side, in list order, each filling its equal-width column of the frame."""
    require_object(body)
    model, mode, duration, prompt = _endpoint_basics("multi-image2video", body)
    size = TEXT_FRAME_SIZES[_aspect_ratio("multi-image2video", body)]
    callback_url = check_callback_url(body.get("callback_url"))
    external_task_id = check_external_task_id(body.get("external_task_id"))
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
    require_object(body)
    video_id = body.get("video_id")
    if video_id in (None, ""):
        raise bad_param("video_id is required")
    if not isinstance(video_id, str):
        raise bad_param("video_id must be a string")
    prompt = _text(body, "prompt")
    _text(body, "negative_prompt")
    _cfg_scale(body.get("cfg_scale"))
    callback_url = check_callback_url(body.get("callback_url"))
    external_task_id = check_external_task_id(body.get("external_task_id"))
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


def _endpoint_basics(endpoint: str, body: dict[str, Any], *,
                     prompt_required: bool = True) -> tuple[ModelCapabilities, str, str, str]:
    """(model, mode, duration, prompt) of an endpoint that takes only its own models and needs a prompt
    (not a multi-shot text2video task, whose words are its multi_prompt's)."""
    name = body.get("model_name")
    # Retired rows too: Kling answers a model it switched off with its discontinued words (the switch in
    # faults.py), not as an unknown one.
    if name not in endpoint_models(endpoint, include_retired=True):
        raise bad_param(f"model_name({name}) is invalid")
    model = _model(name)
    mode = _mode(model, body.get("mode"))
    duration = _duration(model, mode, body.get("duration"))
    prompt = _text(body, "prompt")
    if prompt_required and not prompt.strip():
        raise bad_param("prompt is required")
    _text(body, "negative_prompt")
    return model, mode, duration, prompt


def _aspect_ratio(endpoint: str, body: dict[str, Any]) -> str:
    ratio = body.get("aspect_ratio") or endpoint_facts(endpoint).get("default_aspect_ratio", "16:9")
    if not isinstance(ratio, str) or ratio not in TEXT_FRAME_SIZES or ratio not in endpoint_aspect_ratios(endpoint):
        raise bad_param(f"aspect_ratio({ratio}) is invalid")
    return ratio
