"""The image-to-video request as Kling takes it, and its JSON body (unset fields left out)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, ClassVar, TypeVar

from ..errors import KlingValidationError
from .endpoints import IMAGE2VIDEO, MULTI_IMAGE2VIDEO, TEXT2VIDEO, VIDEO_EXTEND, Endpoint, endpoint_for

CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
CAMERA_AXES = ("horizontal", "vertical", "pan", "tilt", "roll", "zoom")


_Request = TypeVar("_Request", bound="RequestBody")

#: Between the shots of a storyboard written as text (``2:a boat|3:the harbour``).
SHOT_SEPARATOR = "|"
SHOT_TEXT_RULE = "SECONDS:TEXT with whole SECONDS, e.g. 3:a boat leaves the harbour"


@dataclass(frozen=True)
class Shot:
    """One shot of a storyboard (a multi-shot video): whole seconds and what happens in them. The rules
    (how many shots, their lengths, the sum) are :func:`kling_api.rules.storyboard.check_storyboard`'s."""

    duration: int
    prompt: str

    def as_text(self) -> str:
        """``SECONDS:TEXT``, the CLI's ``--shot`` form."""
        return f"{self.duration}:{self.prompt}"

    @classmethod
    def from_text(cls, text: str, field: str = "shots[0]") -> "Shot":
        """A shot from ``SECONDS:TEXT`` (``3:a boat``); refused naming ``field`` when it is not that form."""
        seconds, colon, words = str(text).partition(":")
        if not colon or not seconds.strip().isdigit():
            raise KlingValidationError(field, text, SHOT_TEXT_RULE)
        return cls(duration=int(seconds), prompt=words.strip())

    @classmethod
    def from_json(cls, value: Any, field: str = "shots[0]") -> "Shot":
        """A shot from ``{"duration": 3, "prompt": "a boat"}`` (a whole number of seconds, a text)."""
        if isinstance(value, str):
            return cls.from_text(value, field)
        if not isinstance(value, dict) or set(value) != {"duration", "prompt"}:
            raise KlingValidationError(field, value, '{"duration": whole seconds, "prompt": text} or ' + SHOT_TEXT_RULE)
        seconds = value["duration"]
        if isinstance(seconds, float) and seconds.is_integer():
            seconds = int(seconds)
        if isinstance(seconds, str) and seconds.strip().isdigit():
            seconds = int(seconds)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not isinstance(value["prompt"], str):
            raise KlingValidationError(field, value, '{"duration": whole seconds, "prompt": text}')
        return cls(duration=seconds, prompt=value["prompt"])


def shots_text(shots: "tuple[Shot, ...] | list[Shot]") -> str:
    """The storyboard as one text, ``2:a boat|3:the harbour`` (what a batch manifest's ``shots`` takes)."""
    return SHOT_SEPARATOR.join(shot.as_text() for shot in shots)


class RequestBody:
    """What every request dataclass shares: its endpoint (a row of the endpoint table) and its JSON body
    as the legacy standard spells it (the new standard's body is built by its codec)."""

    #: The legacy endpoint whose rules apply (the capability table's section, the node's widget rules).
    rules_endpoint: ClassVar[Endpoint]

    @property
    def endpoint(self) -> Endpoint:
        """Where this request goes: the model's new-standard path if it has one, else the legacy endpoint."""
        return endpoint_for(self.rules_endpoint.name, getattr(self, "model_name", ""))

    def with_changes(self: _Request, **changes: Any) -> _Request:
        return replace(self, **changes)  # type: ignore[type-var]

    def to_body(self) -> dict[str, Any]:
        """The JSON body: empty and unset optional fields are left out, never sent as null."""
        body = {k: v for k, v in asdict(self).items() if v is not None and v != "" and v != [] and v != ()}  # type: ignore[call-overload]
        body.pop("shots", None)  # a storyboard is spelt by each standard's codec (kling_api.remote.codecs)
        if "duration" in body:
            body["duration"] = str(body["duration"])
        return body


@dataclass(frozen=True)
class ImageToVideoRequest(RequestBody):
    """Fields of an image2video create; images are raw base64 or http(s) URLs."""

    rules_endpoint: ClassVar[Endpoint] = IMAGE2VIDEO

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
    #: New-standard models: 720p / 1080p (/ 4k); legacy models choose a ``mode`` instead.
    resolution: str | None = None
    #: A storyboard: 1-6 shots whose seconds add up to ``duration`` (models whose table row has "storyboard").
    shots: tuple[Shot, ...] = ()

    @property
    def uses_motion_brush(self) -> bool:
        return bool(self.static_mask) or bool(self.dynamic_masks)


@dataclass(frozen=True)
class TextToVideoRequest(RequestBody):
    """Fields of a text2video create (reference 1.3): no image, an aspect_ratio instead."""

    rules_endpoint: ClassVar[Endpoint] = TEXT2VIDEO

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
    #: New-standard models: 720p / 1080p (/ 4k); legacy models choose a ``mode`` instead.
    resolution: str | None = None
    #: A storyboard, as :class:`ImageToVideoRequest`'s.
    shots: tuple[Shot, ...] = ()


@dataclass(frozen=True)
class MultiImageToVideoRequest(RequestBody):
    """Fields of a multi-image2video create (reference 1.3): up to 4 reference images
    (raw base64 or URLs) composed into one video; the prompt is required."""

    rules_endpoint: ClassVar[Endpoint] = MULTI_IMAGE2VIDEO

    model_name: str
    image_list: tuple[str, ...] = ()
    prompt: str = ""
    negative_prompt: str = ""
    mode: str | None = "std"
    duration: str = "5"
    aspect_ratio: str = "16:9"
    callback_url: str | None = None
    external_task_id: str | None = None

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["image_list"] = [{"image": image} for image in self.image_list]
        return body


@dataclass(frozen=True)
class VideoExtendRequest(RequestBody):
    """Fields of a video-extend create (reference 1.3): a video of an earlier task, by its
    ``video_id``, continued by 4-5 s; model and mode are the source video's."""

    rules_endpoint: ClassVar[Endpoint] = VIDEO_EXTEND

    video_id: str
    prompt: str = ""
    negative_prompt: str = ""
    cfg_scale: float | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


def request_summary(request: RequestBody) -> dict[str, Any]:
    """What the ledger keeps of a request, whichever standard spells it: the legacy body's fields, with
    a new-standard model's resolution in the mode column (it takes the place of the mode)."""
    summary = request.to_body()
    shots = getattr(request, "shots", ())
    if shots and not summary.get("prompt"):
        summary["prompt"] = shots_text(shots)  # the ledger's prompt column: the storyboard
    resolution = summary.pop("resolution", None)
    if resolution and not summary.get("mode"):
        summary["mode"] = resolution
    return summary


@dataclass
class Validated:
    """A request after :func:`validate`: normalised, plus notes on what was left out and why."""

    request: RequestBody
    notes: list[str] = field(default_factory=list)
