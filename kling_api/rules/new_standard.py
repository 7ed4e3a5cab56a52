"""The rules of Kling's new-standard models (the model in the path), from their pages.

The pages (kling-3.0-turbo-i2v.md, kling-omni-3.0-i2v.md for kling-3.0, kling-2.6-i2v.md,
kling-2.5-turbo-i2v.md and their text-to-video pages) give each model its resolutions, durations (an int),
audio switch, last frame and prompt limit; the capability table holds those as data and this module checks
a request against them. There is no negative prompt, cfg_scale, camera control or motion brush on this
standard: a request that sets one is told so, never silently trimmed.
"""
from __future__ import annotations

from typing import Any

from ..errors import KlingValidationError
from .capabilities import ModelCapabilities, capability_table, endpoint_aspect_ratios
from .fields import _require_feature, _task_options, _validate_prompt, tier_refusal, validate_image_reference
from .request import ImageToVideoRequest, TextToVideoRequest, Validated
from .storyboard import check_storyboard

NOT_ON_THIS_STANDARD = "is not taken by Kling's new API"


def validate_new_standard(caps: ModelCapabilities, request: ImageToVideoRequest | TextToVideoRequest) -> Validated:
    """Check an image-to-video or text-to-video request for a new-standard model; the result has
    ``resolution`` set (the page's default when none was given) and no legacy-only field."""
    rules = request.rules_endpoint.name
    notes: list[str] = []
    changes: dict[str, Any] = {"mode": None}
    if request.mode not in (None, ""):
        notes.append(f"{caps.name} chooses a resolution, not a mode; mode={request.mode} left out")

    resolution = request.resolution or caps.resolutions[0]
    if resolution not in caps.resolutions:
        raise tier_refusal(caps, resolution)
    changes["resolution"] = resolution
    duration = str(request.duration).strip()
    if duration not in caps.durations:
        raise KlingValidationError("duration", request.duration, f"{', '.join(caps.durations)} on {caps.name}")
    changes["duration"] = duration

    limit = caps.prompt_limit(rules, capability_table().prompt_max_chars)
    _validate_prompt("prompt", request.prompt, limit)
    # A storyboard is written into the prompt (the pages' shot syntax), so it is held to the prompt's limit.
    changes["shots"] = check_storyboard(caps, rules, request.shots, duration, request.prompt, prompt_limit=limit)
    _refuse_unsupported(caps, request)
    if request.cfg_scale is not None:
        notes.append(f"cfg_scale {NOT_ON_THIS_STANDARD} ({caps.name}); left out of the request")
        changes["cfg_scale"] = None

    changes["sound"] = _sound(caps, request.sound, resolution, duration, notes)
    if isinstance(request, ImageToVideoRequest):
        _frames(caps, request, resolution, duration, changes["sound"])
    else:
        if not (request.prompt or "").strip() and not changes["shots"]:
            raise KlingValidationError("prompt", request.prompt, "a description of the video",
                                       "prompt: text to video needs a prompt")
        ratios = endpoint_aspect_ratios(rules)
        if request.aspect_ratio not in ratios:
            raise KlingValidationError("aspect_ratio", request.aspect_ratio, ", ".join(ratios))
    _task_options(request)
    return Validated(request=request.with_changes(**changes), notes=notes)


def _refuse_unsupported(caps: ModelCapabilities, request: ImageToVideoRequest | TextToVideoRequest) -> None:
    """Fields the new standard has no place for: refused with what to do instead."""
    if (request.negative_prompt or "").strip():
        raise KlingValidationError("negative_prompt", request.negative_prompt, "empty on this model",
                                   f"negative_prompt {NOT_ON_THIS_STANDARD} ({caps.name}); clear it (the prompt "
                                   "may say what to avoid) or pick a legacy model such as kling-v3")
    if isinstance(request, ImageToVideoRequest):
        for field, used in (("camera_control", request.camera_control is not None),
                            ("motion_brush", request.uses_motion_brush)):
            if used:
                raise KlingValidationError(field, "given", "none on this model",
                                           f"{field} {NOT_ON_THIS_STANDARD} ({caps.name}); disconnect it or "
                                           "pick a legacy model that takes it")


def _sound(caps: ModelCapabilities, sound: str | None, resolution: str, duration: str, notes: list[str]) -> str | None:
    """The sound switch as the model's page has it: None where the page has no ``audio`` field."""
    if sound is not None and sound not in ("on", "off"):
        raise KlingValidationError("sound", sound, "on, off")
    if caps.sound_always:
        if sound == "off":
            notes.append(f"{caps.name} always makes sound (it has no audio switch); sound=off not applied")
        return None
    if not caps.allowed_combos("sound"):
        if sound == "on":
            _require_feature(caps, "sound", "sound", resolution, duration)
        return None
    if sound == "on":
        _require_feature(caps, "sound", "sound", resolution, duration)
    return sound


def _frames(caps: ModelCapabilities, request: ImageToVideoRequest, resolution: str, duration: str,
            sound: str | None) -> None:
    """A first frame always; a last frame only where the model allows it, never alone."""
    if request.image is None:
        raise KlingValidationError("image", None, "a start image",
                                   "image: a start frame is required; a last frame alone is not supported")
    validate_image_reference("image", request.image)
    if request.image_tail is None:
        return
    validate_image_reference("image_tail", request.image_tail)
    _require_feature(caps, "image_tail", "image_tail", resolution, duration)
    if caps.image_tail_requires_silence and sound == "on":
        raise KlingValidationError("sound", "on", "off when image_tail is given",
                                   f"image_tail on {caps.name} works only without sound; got sound=on")
