"""Kling's rules for the creates of its new design standard: ``POST /image-to-video/<model>`` and
``POST /text-to-video/<model>``, a ``contents`` (or ``prompt``) / ``settings`` / ``options`` body.

Written from Kling's pages (kling-3.0-turbo-i2v.md, kling-omni-3.0-i2v.md for kling-3.0, kling-2.6-i2v.md,
kling-2.5-turbo-i2v.md and their text-to-video pages), not from the client. Each model's resolutions,
durations, audio switch, last frame and prompt limit come from the capability table; the few page facts the
table does not hold are the constants below, each with its page. Refusals are 1201 with a message that
names the field, in the form Kling was seen to use live (``contents[1].type value 'end_frame' is invalid``,
``content item of type 'first_frame' must have a non-blank url``); the pages themselves give no wording.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from ..rules.capabilities import ModelCapabilities, capability_table, endpoint_aspect_ratios, endpoint_facts
from ..rules.endpoints import NEW, TEXT2VIDEO, Endpoint
from ..rules.prices import list_price
from .errors import Unreachable, bad_param
from .pictures import Fetcher, Picture, image_max_bytes, load_picture, prompt_picture
from .rules import CreateOrder, check_callback_url, check_external_task_id, require_object
from .storyboard import check_shot_syntax

log = logging.getLogger(__name__)

#: contents[] types beyond prompt / first_frame / last_frame, and how many one task takes:
#: kling-omni-3.0-i2v.md "Up to 3 Elements can be specified."; kling-2.6-i2v.md "At most 2 voices can be
#: referenced." (and "When specifying a voice, the sound parameter audio cannot be off.").
EXTRA_ITEMS = {"kling-3.0": {"element": 3}, "kling-2.6": {"voice": 2}}
AUDIO_VALUES = ("native", "off")
#: Each item type's fields besides ``type`` (every one required, non-blank).
ITEM_FIELDS = {"prompt": ("text",), "first_frame": ("url",), "last_frame": ("url",),
               "element": ("element_id", "id"), "voice": ("voice_id", "id")}
#: Types that can appear once (the emulator's choice: the pages describe one prompt, one frame of each kind).
ONCE = ("prompt", "first_frame", "last_frame")
#: A task whose first/last-frame URL cannot be fetched is accepted and then fails with these words: a live
#: observation (reference 1.4, 2026-09-28), not on any page; billed "0".
FETCH_FAILED = "Something went wrong when we tried to get the contents of the file."
OPTION_FIELDS = ("callback_url", "external_task_id", "watermark_info")


@dataclass(frozen=True)
class _Contents:
    """What an image-to-video ``contents`` list comes to."""

    prompt: str
    image: Picture | None
    tail: Picture | None
    voices: int
    failure: str | None


def check_new_create(endpoint: Endpoint, body: Any, fetch: Fetcher) -> CreateOrder:
    """The order for a valid new-standard body on ``endpoint`` (one of the endpoint table's
    NEW_STANDARD_ENDPOINTS), else ApiError 1200/1201."""
    require_object(body)
    caps = capability_table().get(endpoint.model)
    if caps is None:  # a path without a table row: the tables disagree, not the caller
        raise ValueError(f"no capability row for {endpoint.model}")
    text = endpoint.rules == TEXT2VIDEO.name
    where = endpoint.create_path
    _known(body, ("prompt" if text else "contents", "settings", "options"), "", where)
    settings, options = _section(body, "settings"), _section(body, "options")
    _known(settings, _settings_fields(caps, text), "settings.", where)
    resolution = _resolution(caps, settings.get("resolution"))
    duration = _duration(caps, settings.get("duration"))
    sound = _audio(caps, settings.get("audio"), resolution, duration)
    if settings.get("multi_shot") is not None and not isinstance(settings["multi_shot"], bool):
        raise bad_param(f"settings.multi_shot value '{settings['multi_shot']}' is invalid: it must be a boolean")
    limit = caps.prompt_limit(endpoint.rules, capability_table().prompt_max_chars)
    if text:
        prompt = _prompt_text("prompt", body.get("prompt"), limit, required=True)
        found = _Contents(prompt, prompt_picture(prompt, _aspect_ratio(settings, endpoint.rules)), None, 0, None)
    else:
        found = _contents(caps, body.get("contents"), resolution, duration, sound, limit, fetch)
    shots = check_shot_syntax("prompt" if text else _prompt_field(body["contents"]), found.prompt, caps,
                              endpoint.rules, duration, settings.get("multi_shot"))
    _known(options, OPTION_FIELDS, "options.", where)
    price = list_price(caps.name, resolution, sound, voice=found.voices > 0)
    if price is None:
        log.warning("no official price for %s at %s (audio %s): billed 0", caps.name, resolution, sound)
    return CreateOrder(
        model=caps, mode=resolution, duration=duration, sound=sound, image=found.image, image_tail=found.tail,
        prompt=found.prompt, camera=None,
        callback_url=check_callback_url(options.get("callback_url"), "options.callback_url"),
        external_task_id=check_external_task_id(options.get("external_task_id"), "options.external_task_id"),
        watermark=_watermark(options.get("watermark_info")), failure=found.failure, standard=NEW, shots=shots,
        units_per_second=price.units_per_second if price else 0.0)


def _prompt_field(items: list[Any]) -> str:
    """The field of a checked ``contents`` list's prompt item (``contents[0].text``)."""
    return next((f"contents[{i}].text" for i, item in enumerate(items) if item.get("type") == "prompt"), "contents")


def _known(section: dict[str, Any], allowed: Iterable[str], prefix: str, where: str) -> None:
    """1201 for a key the page does not list. The pages are silent on unknown keys (research note 13):
    refusing them, rather than ignoring them, is the emulator's choice (a client that sends ``audio`` to
    turbo, ``aspect_ratio`` to image-to-video or legacy ``mode`` / ``model_name`` / ``negative_prompt`` /
    ``cfg_scale`` / ``image_tail`` learns at once that it is not applied)."""
    for key in section:
        if key not in allowed:
            raise bad_param(f"unknown field '{prefix}{key}' on {where}")


def _section(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_param(f"{name} must be an object")
    return value


def _settings_fields(caps: ModelCapabilities, text: bool) -> list[str]:
    """The ``settings`` keys of this model's page: resolution and duration everywhere; audio where the
    model has a switch (not turbo, which always has sound, nor 2.5-turbo, which never has); multi_shot on
    kling-3.0; aspect_ratio on text-to-video only."""
    fields = ["resolution", "duration"]
    if not caps.sound_always and caps.allowed_combos("sound"):
        fields.append("audio")
    if caps.multi_shot_setting:  # settings.multi_shot (bool, default true): kling-omni-3.0-i2v.md / -t2v.md
        fields.append("multi_shot")
    if text:
        fields.append("aspect_ratio")
    return fields


def resolutions(caps: ModelCapabilities) -> tuple[str, ...]:
    """The model's resolutions, as its page lists them in the capability table (4k on kling-3.0 only:
    kling-omni-3.0-i2v.md / -t2v.md ``settings.resolution`` 720p, 1080p, 4k)."""
    return caps.resolutions


def _resolution(caps: ModelCapabilities, value: Any) -> str:
    if value is None:
        return caps.resolutions[0]  # every page: default 720p
    if value not in resolutions(caps):
        raise bad_param(f"settings.resolution value '{value}' is invalid for {caps.name}")
    return value


def _duration(caps: ModelCapabilities, value: Any) -> str:
    # "int" on every page; a string "5" (the legacy form) is refused, the emulator's reading of "int".
    if value is None:
        return "5"  # every page: default 5
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_param(f"settings.duration value '{value}' is invalid: it must be an integer")
    if str(value) not in caps.durations:
        raise bad_param(f"settings.duration value '{value}' is invalid for {caps.name}")
    return str(value)


def _audio(caps: ModelCapabilities, value: Any, resolution: str, duration: str) -> bool:
    """Whether the video has native audio: always on turbo (no switch; its only price row is "With Native
    Audio"), never on 2.5-turbo (no switch), else ``settings.audio`` native/off (default off)."""
    if caps.sound_always:
        return True
    if value is None or value == "off":
        return False
    if value not in AUDIO_VALUES:
        raise bad_param(f"settings.audio value '{value}' is invalid for {caps.name}")
    if not caps.allows("sound", resolution, duration):
        raise bad_param(f"settings.audio value 'native' is not supported with settings.resolution '{resolution}' "
                        f"on {caps.name} (only {_tiers(caps, 'sound')})")
    return True


def _aspect_ratio(settings: dict[str, Any], rules: str) -> str:
    ratio = settings.get("aspect_ratio")
    if ratio is None:
        return str(endpoint_facts(rules).get("default_aspect_ratio") or "16:9")
    if ratio not in endpoint_aspect_ratios(rules):
        raise bad_param(f"settings.aspect_ratio value '{ratio}' is invalid")
    return ratio


def _prompt_text(field: str, value: Any, limit: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if value is not None and not isinstance(value, str):
        raise bad_param(f"{field} must be a string")
    if required and not (value or "").strip():
        raise bad_param(f"{field} is required")
    if len(value) > limit:
        raise bad_param(f"{field} cannot exceed {limit} characters")
    return value


def _contents(caps: ModelCapabilities, items: Any, resolution: str, duration: str, sound: bool, limit: int,
              fetch: Fetcher) -> _Contents:
    """The ``contents`` of an image-to-video create: structure first, then the rules between items, then
    the images (the costly part) last."""
    if items in (None, []):
        raise bad_param("contents is required")
    if not isinstance(items, list):
        raise bad_param("contents must be an array")
    extra = EXTRA_ITEMS.get(caps.name, {})
    types = ["prompt", "first_frame", *(["last_frame"] if caps.allowed_combos("image_tail") else []), *extra]
    everywhere = set(ITEM_FIELDS)
    seen: dict[str, list[int]] = {}
    ids: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_param(f"contents[{i}] must be an object")
        kind = item.get("type")
        if kind in (None, ""):
            raise bad_param(f"contents[{i}].type is required")
        if not isinstance(kind, str) or kind not in types:
            known_elsewhere = f" for {caps.name}" if isinstance(kind, str) and kind in everywhere else ""
            raise bad_param(f"contents[{i}].type value '{kind}' is invalid{known_elsewhere}")
        for key in item:
            if key != "type" and key not in ITEM_FIELDS[kind]:
                raise bad_param(f"unknown field 'contents[{i}].{key}' in a content item of type '{kind}'")
        for key in ITEM_FIELDS[kind]:
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise bad_param(f"content item of type '{kind}' must have a non-blank {key}")
        if "id" in ITEM_FIELDS[kind]:  # "the current parameters in the same task must not be duplicated"
            if item["id"] in ids:
                raise bad_param(f"contents[{i}].id value '{item['id']}' is duplicated")
            ids.add(item["id"])
        seen.setdefault(kind, []).append(i)
        if kind in ONCE and len(seen[kind]) > 1:
            raise bad_param(f"content item of type '{kind}' can appear only once")
        if kind in extra and len(seen[kind]) > extra[kind]:
            raise bad_param(f"content item of type '{kind}' can appear at most {extra[kind]} times on {caps.name}")
    if "first_frame" not in seen:
        alone = " (a last frame alone is not supported)" if "last_frame" in seen else ""
        raise bad_param(f"contents must have a content item of type 'first_frame'{alone}")
    if "last_frame" in seen:
        if not caps.allows("image_tail", resolution, duration):
            raise bad_param(f"content item of type 'last_frame' is not supported with settings.resolution "
                            f"'{resolution}' on {caps.name} (only {_tiers(caps, 'image_tail')})")
        if sound and caps.image_tail_requires_silence:
            raise bad_param(f"content item of type 'last_frame' is not supported with settings.audio 'native' "
                            f"on {caps.name}")
    if "voice" in seen and not sound:
        raise bad_param("content item of type 'voice' needs settings.audio 'native'")
    prompt = ""
    if "prompt" in seen:
        i = seen["prompt"][0]
        prompt = _prompt_text(f"contents[{i}].text", items[i]["text"], limit, required=False)
    failures: list[str] = []
    image = _frame(items, seen["first_frame"][0], fetch, failures)
    tail = _frame(items, seen["last_frame"][0], fetch, failures) if "last_frame" in seen else None
    return _Contents(prompt, image, tail, len(seen.get("voice", [])), failures[0] if failures else None)


def _frame(items: list[Any], i: int, fetch: Fetcher, failures: list[str]) -> Picture | None:
    """A frame held to the pages' image rules (50 MB, sides >= 300 px, 1:2.5 to 2.5:1 for every frame); a
    URL that cannot be fetched makes the task fail, not the create (live observation, see FETCH_FAILED)."""
    field = f"contents[{i}].url"
    try:
        return load_picture(field, items[i]["url"], fetch, check_aspect=True, max_bytes=image_max_bytes(NEW))
    except Unreachable as exc:
        log.info("%s not fetched (%s): the task will fail", field, exc.message)
        failures.append(FETCH_FAILED)
        return None


def _watermark(value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, dict):
        raise bad_param("options.watermark_info must be an object")
    enabled = value.get("enabled", False)  # the pages: default false
    if not isinstance(enabled, bool):
        raise bad_param(f"options.watermark_info.enabled value '{enabled}' is invalid: it must be a boolean")
    return enabled


def _tiers(caps: ModelCapabilities, feature: str) -> str:
    found = [tier for tier in resolutions(caps) if any(caps.allows(feature, tier, d) for d in caps.durations)]
    return ", ".join(found)
