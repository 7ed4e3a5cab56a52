"""Every rule of the seed and the capability table, checked before a request is sent.

A refused request costs nothing; a sent one may cost money. So each rule raises
:class:`KlingValidationError` naming the field, the value and what would be accepted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .capabilities import (BASE_MODES, LEGACY_MODE_RESOLUTIONS, LEGACY_STANDARD, NO_MODE, ModelCapabilities,
                           endpoint_aspect_ratios, endpoint_facts, endpoint_models, max_reference_images,
                           models_with_tier)
from ..errors import KlingValidationError
from .fields import (CAMERA_AXIS_RANGE, EXTERNAL_TASK_ID_PATTERN, EXTERNAL_TASK_ID_RULE, MAX_DYNAMIC_MASKS,
                     TRAJECTORY_POINTS_5S, _cfg_scale, _require_feature, _task_options, _validate_prompt,
                     describe_combos, model_capabilities, models_supporting, tier_refusal, validate_callback_url,
                     validate_external_task_id, validate_image_reference)
from .new_standard import validate_new_standard
from .storyboard import check_storyboard
from .request import (CAMERA_AXES, CAMERA_TYPES, ImageToVideoRequest, MultiImageToVideoRequest, TextToVideoRequest,
                      Validated, VideoExtendRequest)

def _validate_camera(caps: ModelCapabilities, camera: dict[str, Any], mode: str, duration: str) -> dict[str, Any]:
    _require_feature(caps, "camera_control", "camera_control", mode, duration)
    kind = camera.get("type")
    if kind not in CAMERA_TYPES:
        raise KlingValidationError("camera_control.type", kind, ", ".join(CAMERA_TYPES))
    if kind not in caps.camera_types:
        raise KlingValidationError("camera_control.type", kind, ", ".join(caps.camera_types),
                                   f"camera_control.type={kind!r} is not offered on {caps.name}; "
                                   f"allowed: {', '.join(caps.camera_types)}")
    return camera_config(kind, camera.get("config"))


def camera_config(kind: Any, config: Any) -> dict[str, Any]:
    """The model-independent part of a camera_control: the type, and for ``simple`` exactly one
    non-zero axis in [-10, 10]. Returns what is sent: the presets carry no config."""
    if kind not in CAMERA_TYPES:
        raise KlingValidationError("camera_control.type", kind, ", ".join(CAMERA_TYPES))
    if kind != "simple":
        if config:
            raise KlingValidationError("camera_control.config", config, "no config for the preset movements",
                                       f"camera_control type {kind!r} is a preset and takes no config")
        return {"type": kind}
    if not isinstance(config, dict):
        raise KlingValidationError("camera_control.config", config, f"an object with {', '.join(CAMERA_AXES)}")
    unknown = set(config) - set(CAMERA_AXES)
    if unknown:
        raise KlingValidationError("camera_control.config", sorted(unknown), ", ".join(CAMERA_AXES))
    values: dict[str, float] = {}
    for axis in CAMERA_AXES:
        raw = config.get(axis, 0)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise KlingValidationError(f"camera_control.config.{axis}", raw, "a number in [-10, 10]") from None
        lo, hi = CAMERA_AXIS_RANGE
        if not math.isfinite(number) or not lo <= number <= hi:
            raise KlingValidationError(f"camera_control.config.{axis}", raw, "a number in [-10, 10]")
        values[axis] = number
    moving = [axis for axis, v in values.items() if v != 0]
    if len(moving) != 1:
        raise KlingValidationError("camera_control.config", ", ".join(moving) or "all zero",
                                   "exactly one non-zero axis",
                                   "camera_control simple needs exactly one non-zero axis of "
                                   f"{', '.join(CAMERA_AXES)}; got {', '.join(moving) or 'none'}")
    return {"type": "simple", "config": values}


def _validate_masks(caps: ModelCapabilities, request: ImageToVideoRequest, mode: str, duration: str) -> None:
    _require_feature(caps, "motion_brush", "static_mask/dynamic_masks", mode, duration)
    if request.static_mask is not None:
        validate_image_reference("static_mask", request.static_mask)
    masks = request.dynamic_masks or []
    if len(masks) > MAX_DYNAMIC_MASKS:
        raise KlingValidationError("dynamic_masks", f"{len(masks)} masks", f"at most {MAX_DYNAMIC_MASKS}")
    lo, hi = TRAJECTORY_POINTS_5S
    for i, item in enumerate(masks):
        if not isinstance(item, dict) or "mask" not in item or "trajectories" not in item:
            raise KlingValidationError(f"dynamic_masks[{i}]", item, "an object with 'mask' and 'trajectories'")
        validate_image_reference(f"dynamic_masks[{i}].mask", item["mask"])
        points = item["trajectories"]
        if not isinstance(points, list) or not lo <= len(points) <= hi:
            count = len(points) if isinstance(points, list) else points
            raise KlingValidationError(f"dynamic_masks[{i}].trajectories", f"{count} points",
                                       f"{lo}-{hi} points for a 5 s video")
        for j, point in enumerate(points):
            if (not isinstance(point, dict) or set(point) != {"x", "y"}
                    or not all(isinstance(point[k], int) and point[k] >= 0 for k in ("x", "y"))):
                raise KlingValidationError(f"dynamic_masks[{i}].trajectories[{j}]", point,
                                           "{'x': int >= 0, 'y': int >= 0} in image pixels, origin bottom-left")


def validate(request: ImageToVideoRequest) -> Validated:
    """Check ``request`` against the seed's rules and the capability table; normalise what is harmless."""
    caps = model_capabilities(request.model_name)
    if caps.is_new_standard:  # the model name decides the standard (Kling's own rule)
        return validate_new_standard(caps, request)
    if request.resolution is not None:
        modes = ", ".join(m if LEGACY_MODE_RESOLUTIONS.get(m, m) == m else f"{m} is {LEGACY_MODE_RESOLUTIONS[m]}"
                          for m in caps.modes)
        raise KlingValidationError("resolution", request.resolution, f"none on {caps.name} (a legacy model "
                                   f"chooses a mode{': ' + modes if modes else ''})")
    notes: list[str] = []
    changes: dict[str, Any] = {}

    if caps.has_mode_choice:
        if request.mode not in caps.modes:
            raise tier_refusal(caps, request.mode)
        mode = request.mode
    else:
        mode = NO_MODE
        if request.mode not in (None, *BASE_MODES) and models_with_tier(request.mode, LEGACY_STANDARD):
            raise tier_refusal(caps, request.mode)  # e.g. 4k: a master model would make another video
        if request.mode is not None:
            notes.append(f"{caps.name} has no mode choice; mode={request.mode} left out")
            changes["mode"] = None

    duration = str(request.duration).strip()
    if duration not in caps.durations:
        raise KlingValidationError("duration", request.duration, f"{', '.join(caps.durations)} on {caps.name}")
    changes["duration"] = duration

    if request.image is None and request.image_tail is None:
        raise KlingValidationError("image", None, "a start image (or an end image where the model takes one)",
                                   "image: at least one of image or image_tail must be given")
    if request.image is not None:
        validate_image_reference("image", request.image)
    _validate_prompt("prompt", request.prompt)
    _validate_prompt("negative_prompt", request.negative_prompt)
    changes["shots"] = check_storyboard(caps, request.rules_endpoint.name, request.shots, duration, request.prompt)

    if request.cfg_scale is not None:
        if not caps.cfg_scale:
            notes.append(f"cfg_scale is not taken by {caps.name}; left out of the request")
            changes["cfg_scale"] = None
        else:
            changes["cfg_scale"] = _cfg_scale(request.cfg_scale)

    groups = [name for name, used in (("image_tail", request.image_tail is not None),
                                      ("static_mask/dynamic_masks", request.uses_motion_brush),
                                      ("camera_control", request.camera_control is not None)) if used]
    if len(groups) > 1:
        raise KlingValidationError(" + ".join(groups), "all given", "at most one of image_tail, "
                                   "static_mask/dynamic_masks, camera_control",
                                   f"{' and '.join(groups)} cannot be used together; "
                                   "use one of image_tail, static_mask/dynamic_masks, camera_control")

    sound = request.sound
    if sound is not None:
        if sound not in ("on", "off"):
            raise KlingValidationError("sound", sound, "on, off")
        if sound == "on":
            _require_feature(caps, "sound", "sound", mode, duration)
        elif not caps.allowed_combos("sound"):
            changes["sound"] = None  # the model has no sound switch; 'off' is its only behaviour

    if request.image_tail is not None:
        validate_image_reference("image_tail", request.image_tail)
        _require_feature(caps, "image_tail", "image_tail", mode, duration)
        if caps.image_tail_requires_silence and sound == "on":
            raise KlingValidationError("sound", "on", "off when image_tail is given",
                                       f"image_tail on {caps.name} works only without sound; got sound=on")

    if request.uses_motion_brush:
        _validate_masks(caps, request, mode, duration)
    if request.camera_control is not None:
        changes["camera_control"] = _validate_camera(caps, request.camera_control, mode, duration)

    _task_options(request)
    return Validated(request=request.with_changes(**changes), notes=notes)


#: Stands in for the image when a request of another endpoint goes through :func:`validate` (never sent).
_NO_IMAGE = "aGVsbG8="


def _check_endpoint_model(endpoint: str, model_name: str, purpose: str) -> None:
    """The model must be current (its successor on this endpoint named) and one the endpoint takes."""
    model_capabilities(model_name, endpoint)
    allowed = endpoint_models(endpoint)
    if model_name not in allowed:
        pick = allowed[0] if len(allowed) == 1 else "one of " + ", ".join(allowed)
        raise KlingValidationError("model_name", model_name, ", ".join(allowed),
                                   f"model_name: {model_name} does not {purpose}; pick {pick}")


def _check_prompt_given(prompt: str, purpose: str) -> None:
    if not (prompt or "").strip():
        raise KlingValidationError("prompt", prompt, "a description of the video", f"prompt: {purpose} needs a prompt")


def _check_aspect_ratio(endpoint: str, value: str) -> None:
    ratios = endpoint_aspect_ratios(endpoint)
    if value not in ratios:
        raise KlingValidationError("aspect_ratio", value, ", ".join(ratios))


def _check_shared(request: Any, image: str = _NO_IMAGE) -> Validated:
    """Mode, duration, prompts, cfg_scale, sound, callback and external id as :func:`validate` checks them."""
    fields = {name: getattr(request, name) for name in ("prompt", "negative_prompt", "mode", "duration",
                                                        "cfg_scale", "sound", "callback_url", "external_task_id",
                                                        "resolution")
              if hasattr(request, name)}
    return validate(ImageToVideoRequest(model_name=request.model_name, image=image, **fields))


def validate_text_to_video(request: TextToVideoRequest) -> Validated:
    """Text to video: the model must be one the endpoint takes (capabilities.json "endpoints"), the
    prompt is required, aspect_ratio one of the endpoint's; everything else as :func:`validate`."""
    _check_endpoint_model("text2video", request.model_name, "make videos from text")
    caps = model_capabilities(request.model_name)
    if caps.is_new_standard:
        return validate_new_standard(caps, request)
    if not request.shots:  # a storyboard's words are its shots'
        _check_prompt_given(request.prompt, "text to video")
    _check_aspect_ratio("text2video", request.aspect_ratio)
    checked = _check_shared(request)
    done = checked.request
    shots = check_storyboard(caps, request.rules_endpoint.name, request.shots, done.duration, request.prompt)
    return Validated(request=request.with_changes(mode=done.mode, duration=done.duration,
                                                  cfg_scale=done.cfg_scale, sound=done.sound, shots=shots),
                     notes=checked.notes)


def validate_multi_image_to_video(request: MultiImageToVideoRequest) -> Validated:
    """Multi-image to video (reference 1.3): kling-v1-6 only, 1 to max_images images, a prompt."""
    _check_endpoint_model("multi-image2video", request.model_name, "make videos from several images")
    limit = max_reference_images()
    images = tuple(request.image_list)
    if not 1 <= len(images) <= limit:
        raise KlingValidationError("image_list", f"{len(images)} images", f"1 to {limit} images",
                                   f"image_list: {len(images)} images given; Kling takes 1 to {limit} images")
    for index, image in enumerate(images):
        validate_image_reference(f"image_list[{index}]", image)
    _check_prompt_given(request.prompt, "multi-image to video")
    _check_aspect_ratio("multi-image2video", request.aspect_ratio)
    checked = _check_shared(request, images[0])
    done = checked.request
    return Validated(request=request.with_changes(mode=done.mode, duration=done.duration, image_list=images),
                     notes=checked.notes)


@dataclass(frozen=True)
class SourceVideo:
    """What is known of the video an extend continues (from the ledger), for checks before sending."""

    video_id: str
    model_name: str
    duration: str = ""


def extend_source_models() -> list[str]:
    return list(endpoint_facts("video-extend").get("source_models") or [])


def extended_seconds(source: SourceVideo) -> float | None:
    """How long the source video will be once extended (None when its length is not known)."""
    added = float(endpoint_facts("video-extend").get("seconds_added") or 0)
    try:
        return float(source.duration) + added
    except ValueError:
        return None


def validate_video_extend(request: VideoExtendRequest, source: SourceVideo | None = None) -> Validated:
    """Video extend: a video_id, prompts, cfg_scale in [0, 1]. With ``source`` known, its model must be
    one Kling extends and the result must stay within the total length cap."""
    video_id = request.video_id.strip() if isinstance(request.video_id, str) else request.video_id
    if not isinstance(video_id, str) or not video_id or any(c.isspace() or c == "," for c in video_id):
        raise KlingValidationError("video_id", request.video_id,
                                   "one video id (the video_id output of a Kling node)")
    _validate_prompt("prompt", request.prompt)
    _validate_prompt("negative_prompt", request.negative_prompt)
    cfg_scale = None if request.cfg_scale is None else _cfg_scale(request.cfg_scale)
    _task_options(request)
    if source is not None:
        models = extend_source_models()
        if source.model_name and models and source.model_name not in models:
            raise KlingValidationError("video_id", video_id, f"a video made by {', '.join(models)}",
                                       f"video_id {video_id} was made by {source.model_name}; Kling extends only "
                                       f"videos made by {', '.join(models)}")
        facts = endpoint_facts("video-extend")
        added, cap = float(facts.get("seconds_added") or 0), float(facts.get("max_total_seconds") or 0)
        total = extended_seconds(source)
        if cap and total is not None and total > cap:
            raise KlingValidationError("video_id", video_id, f"a video of at most {cap - added:g} s",
                                       f"video_id {video_id} is {source.duration} s long; extending it by "
                                       f"{added:g} s would pass Kling's {cap:g} s limit")
    return Validated(request=request.with_changes(video_id=video_id, cfg_scale=cfg_scale))


def validate_request(request: Any, source: SourceVideo | None = None) -> Validated:
    """The checks of ``request``'s endpoint."""
    if isinstance(request, ImageToVideoRequest):
        return validate(request)
    if isinstance(request, TextToVideoRequest):
        return validate_text_to_video(request)
    if isinstance(request, MultiImageToVideoRequest):
        return validate_multi_image_to_video(request)
    if isinstance(request, VideoExtendRequest):
        return validate_video_extend(request, source)
    raise TypeError(f"not a Kling request: {type(request).__name__}")

# The field checks (kling_api.rules.fields) are re-exported: callers and tests import them from here.
__all__ = ["CAMERA_AXIS_RANGE", "EXTERNAL_TASK_ID_PATTERN", "EXTERNAL_TASK_ID_RULE", "MAX_DYNAMIC_MASKS",
           "SourceVideo", "TRAJECTORY_POINTS_5S", "camera_config", "describe_combos", "extend_source_models",
           "extended_seconds", "model_capabilities", "models_supporting", "validate", "validate_callback_url",
           "validate_external_task_id", "validate_image_reference", "validate_multi_image_to_video",
           "validate_request", "validate_text_to_video", "validate_video_extend"]
