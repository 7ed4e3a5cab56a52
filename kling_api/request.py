"""The image-to-video request as Kling takes it, and its JSON body (unset fields left out)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

ENDPOINT_IMAGE2VIDEO = "/v1/videos/image2video"

CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")


@dataclass(frozen=True)
class ImageToVideoRequest:
    """Fields of ``POST /v1/videos/image2video``; images are raw base64 or http(s) URLs."""

    model_name: str
    image: str | None = None
    image_tail: str | None = None
    prompt: str = ""
    negative_prompt: str = ""
    mode: str | None = "std"
    duration: str = "5"
    cfg_scale: float | None = None
    static_mask: str | None = None
    dynamic_masks: list[dict[str, Any]] | None = None
    camera_control: dict[str, Any] | None = None
    sound: str | None = None
    callback_url: str | None = None
    external_task_id: str | None = None

    def with_changes(self, **changes: Any) -> "ImageToVideoRequest":
        return replace(self, **changes)

    @property
    def uses_motion_brush(self) -> bool:
        return bool(self.static_mask) or bool(self.dynamic_masks)

    def to_body(self) -> dict[str, Any]:
        """The JSON body: empty and unset optional fields are left out, never sent as null."""
        body = {k: v for k, v in asdict(self).items() if v is not None and v != "" and v != []}
        if "duration" in body:
            body["duration"] = str(body["duration"])
        return body


ENDPOINT_TEXT2VIDEO = "/v1/videos/text2video"


@dataclass(frozen=True)
class TextToVideoRequest:
    """Fields of ``POST /v1/videos/text2video`` (reference 1.3): no image, an aspect_ratio instead."""

    model_name: str
    prompt: str = ""
    negative_prompt: str = ""
    mode: str | None = "std"
    duration: str = "5"
    aspect_ratio: str = "16:9"
    cfg_scale: float | None = None
    sound: str | None = None
    callback_url: str | None = None
    external_task_id: str | None = None

    def with_changes(self, **changes: Any) -> "TextToVideoRequest":
        return replace(self, **changes)

    def to_body(self) -> dict[str, Any]:
        body = {k: v for k, v in asdict(self).items() if v is not None and v != "" and v != []}
        if "duration" in body:
            body["duration"] = str(body["duration"])
        return body


@dataclass
class Validated:
    """A request after :func:`validate`: normalised, plus notes on what was left out and why."""

    request: ImageToVideoRequest
    notes: list[str] = field(default_factory=list)
