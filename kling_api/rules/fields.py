"""The checks every endpoint and both API standards share: the model, its combinations, images, prompts,
callback and external ids. Each raises :class:`KlingValidationError` naming the field, the value and what
would be accepted."""
from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlparse

from ..errors import KlingValidationError
from .capabilities import (LEGACY_MODE_RESOLUTIONS, LEGACY_STANDARD, NEW_STANDARD, NO_MODE, RESOLUTION_MODES,
                           ModelCapabilities, capability_table, models_with_tier)
from .tooltips import spoken_list

MAX_DYNAMIC_MASKS = 6
TRAJECTORY_POINTS_5S = (2, 77)
CAMERA_AXIS_RANGE = (-10.0, 10.0)
EXTERNAL_TASK_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
EXTERNAL_TASK_ID_RULE = "1-64 characters: letters, digits and . _ : - (starting with a letter or digit)"


def model_capabilities(model_name: str, endpoint: str | None = None) -> ModelCapabilities:
    """The model's row; a retired model is refused naming its successor on ``endpoint`` (the rules
    section, e.g. "text2video"; None: image to video, with every endpoint's own successor said)."""
    table = capability_table()
    caps = table.get(model_name)
    if caps is None:
        raise KlingValidationError("model_name", model_name, ", ".join(table.model_names))
    if caps.retired:
        raise KlingValidationError("model_name", model_name,
                                   caps.successor_for(endpoint) or ", ".join(table.model_names),
                                   caps.retirement(endpoint))
    return caps


#: The tiers of new-standard models' combos (legacy models' are their modes).
RESOLUTIONS = ("720p", "1080p", "4k")


def describe_combos(combos: list[tuple[str, str]]) -> str:
    """'mode=pro and duration=10' for one combination, 'mode/duration one of pro/5, pro/10' for several
    (new-standard models: 'resolution=1080p ...')."""
    axis = "resolution" if combos and all(m in RESOLUTIONS for m, _ in combos) else "mode"
    if len(combos) == 1:
        mode, duration = combos[0]
        return f"duration={duration}" if mode == NO_MODE else f"{axis}={mode} and duration={duration}"
    return f"{axis}/duration one of " + ", ".join(f"{m}/{d}" for m, d in combos)


def tier_refusal(caps: ModelCapabilities, value: Any) -> KlingValidationError:
    """The refusal of a mode (legacy) or resolution (new API) that ``caps`` does not offer. When other current
    models offer it (4k), the message names them on both standards and what ``caps`` takes, e.g.
    "resolution: 4k is kling-3.0 only (the legacy API: kling-v3, mode 4k); kling-2.6 takes 720p, 1080p"."""
    new = caps.is_new_standard
    field, other_field = ("resolution", "mode") if new else ("mode", "resolution")
    own = caps.resolutions if new else caps.modes
    allowed = f"{', '.join(own)} on {caps.name}" if new else (", ".join(own) or f"no mode on {caps.name}")
    here = models_with_tier(value, NEW_STANDARD if new else LEGACY_STANDARD) if isinstance(value, str) else []
    if not here:
        return KlingValidationError(field, value, allowed)
    other_tier = (RESOLUTION_MODES if new else LEGACY_MODE_RESOLUTIONS).get(value, "")
    there = models_with_tier(other_tier, LEGACY_STANDARD if new else NEW_STANDARD) if other_tier else []
    api = "legacy" if new else "new"
    other = f" (the {api} API: {spoken_list(there)}, {other_field} {other_tier})" if there else ""
    takes = f"{caps.name} takes {', '.join(own)}" if own else f"{caps.name} has no mode choice"
    return KlingValidationError(field, value, allowed, f"{field}: {value} is {spoken_list(here)} only{other}; {takes}")


def _require_feature(caps: ModelCapabilities, feature: str, field: str, mode: str, duration: str) -> None:
    if caps.allows(feature, mode, duration):
        return
    combos = caps.allowed_combos(feature)
    got = f"{caps.effective_mode(mode)}/{duration}"
    if not combos:
        raise KlingValidationError(field, got, "models that support it",
                                   f"{field} is not supported on {caps.name} at all; got {got}"
                                   f" (models that take it: {', '.join(models_supporting(feature)) or 'none'})")
    raise KlingValidationError(field, got, describe_combos(combos),
                               f"{field} needs {describe_combos(combos)} on {caps.name}; got {got}")


def models_supporting(feature: str) -> list[str]:
    return [name for name, caps in capability_table().models.items() if caps.allowed_combos(feature)]


def validate_image_reference(field: str, value: str) -> None:
    """An image field is raw base64 or an http(s) URL; a ``data:`` prefix is refused (Kling rejects it)."""
    if not isinstance(value, str) or not value:
        raise KlingValidationError(field, value, "raw base64 (no data: prefix) or an http(s) URL")
    if value.startswith("data:"):
        raise KlingValidationError(field, value[:30] + "...", "raw base64 without a 'data:...;base64,' prefix",
                                   f"{field} starts with a data: prefix; Kling wants the bare base64 string")
    if "://" in value[:12]:
        scheme = urlparse(value).scheme
        if scheme not in ("http", "https"):
            raise KlingValidationError(field, value, "an http(s) URL or raw base64")


def validate_callback_url(value: str) -> None:
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.netloc:
        raise KlingValidationError("callback_url", value, "an https:// URL that Kling can reach")


def validate_external_task_id(value: str) -> None:
    if not EXTERNAL_TASK_ID_PATTERN.match(value):
        raise KlingValidationError("external_task_id", value, EXTERNAL_TASK_ID_RULE)


def _task_options(request: Any) -> None:
    """callback_url and external_task_id, which every endpoint takes."""
    if request.callback_url:
        validate_callback_url(request.callback_url)
    if request.external_task_id:
        validate_external_task_id(request.external_task_id)


def _cfg_scale(value: Any) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise KlingValidationError("cfg_scale", value, "a number in [0, 1]")
    return float(value)


def _validate_prompt(field: str, value: str, limit: int | None = None) -> None:
    limit = capability_table().prompt_max_chars if limit is None else limit
    if not isinstance(value, str):
        raise KlingValidationError(field, value, "a string")
    if len(value) > limit:
        raise KlingValidationError(field, f"{len(value)} characters", f"at most {limit} characters",
                                   f"{field} has {len(value)} characters; at most {limit} are allowed")
