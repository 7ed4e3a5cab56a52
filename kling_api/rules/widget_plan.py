"""What a node's widgets show, and why its current values are refused: the page renders this answer.

The rules are those of :mod:`kling_api.rules.validation` over the capability table, and nothing else: the
warning is the text validation refuses the same values with at queue time, and the fix is the nearest
combination validation accepts (tried in order of closeness, so it is valid by construction). The web
extension sends a node's endpoint widgets and linked sockets (route ``POST /kling/widget_plan``) and
holds no rule of its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping

from .capabilities import (BASE_MODES, LEGACY_MODE_RESOLUTIONS, LEGACY_STANDARD, ModelCapabilities, capability_table,
                           endpoint_aspect_ratios, endpoint_facts, endpoint_models, models_with_tier)
from ..errors import KlingValidationError
from .request import ImageToVideoRequest, MultiImageToVideoRequest, RequestBody, TextToVideoRequest
from .storyboard import shots_from_lines, storyboard_sum
from .validation import validate, validate_multi_image_to_video, validate_text_to_video

#: Stands in for an image or a prompt the rules do not look at (never sent).
PENDING_IMAGE = "pending-image"
PENDING_PROMPT = "pending prompt"
#: Optional sockets whose link needs a feature of the table (an end frame, a camera move, a brush).
FEATURE_SOCKETS = ("image_tail", "camera_control", "motion_brush")
#: Widgets without which nothing is judged (their value comes from a link), as the nodes' queue-time checks.
SETTLED_BY_LINK = ("model_name", "mode", "duration", "aspect_ratio")


class WidgetPlanError(ValueError):
    """A plan request the route answers with HTTP 400 (what was wrong, in plain words)."""


@dataclass(frozen=True)
class WidgetValues:
    """The values the rules look at: a node's rule widgets, its linked feature sockets and, when the
    page knows it, the type of the linked camera move."""

    model_name: Any
    mode: Any = "std"
    duration: str = ""
    sound: str | None = None
    aspect_ratio: str | None = None
    linked: frozenset[str] = frozenset()
    camera_type: str | None = None
    #: New-standard models' tier (legacy models' is ``mode``; the node has both widgets, one shown).
    resolution: str | None = None
    #: Judged too: the new API takes none, and a saved workflow moved to a new model may carry one.
    negative_prompt: str = ""
    #: The storyboard widget's text (one ``SECONDS: TEXT`` shot per line) and, judged only with one, the
    #: prompt (a storyboard's words go in its shots).
    storyboard: str = ""
    prompt: str = ""


def camera_stand_in(model_name: Any, kind: str | None = None) -> dict[str, Any]:
    """A camera move standing in for a linked one whose config is not known yet (queue time): of
    ``kind`` when the page knows it, else of a type the model offers, so that only the model, mode,
    duration and exclusions are judged."""
    if kind is None:
        caps = capability_table().get(model_name) if isinstance(model_name, str) else None
        kind = caps.camera_types[0] if caps is not None and caps.camera_types else "simple"
    return {"type": "simple", "config": {"zoom": 1.0}} if kind == "simple" else {"type": kind}


def node_tier(model_name: Any, mode: Any, resolution: Any) -> dict[str, Any]:
    """``mode`` and ``resolution`` as the request takes them from a node, which shows both widgets: the
    model decides which one counts (a new-standard model's resolution, a legacy model's mode)."""
    caps = capability_table().get(model_name) if isinstance(model_name, str) else None
    if caps is not None and caps.is_new_standard:
        return {"mode": None, "resolution": resolution}
    return {"mode": mode, "resolution": None}


def tier_of(values: WidgetValues) -> dict[str, Any]:
    return node_tier(values.model_name, values.mode, values.resolution)


def _image_request(values: WidgetValues) -> ImageToVideoRequest:
    linked = values.linked
    return ImageToVideoRequest(
        model_name=values.model_name, image=PENDING_IMAGE,
        image_tail=PENDING_IMAGE if "image_tail" in linked else None, duration=values.duration,
        camera_control=camera_stand_in(values.model_name, values.camera_type) if "camera_control" in linked else None,
        static_mask=PENDING_IMAGE if "motion_brush" in linked else None, sound=values.sound,
        negative_prompt=values.negative_prompt, prompt=values.prompt if values.storyboard.strip() else "",
        shots=shots_from_lines(values.storyboard), **tier_of(values))


def _text_request(values: WidgetValues) -> TextToVideoRequest:
    return TextToVideoRequest(model_name=values.model_name,
                              prompt=values.prompt if values.storyboard.strip() else PENDING_PROMPT,
                              duration=values.duration, aspect_ratio=values.aspect_ratio or "", sound=values.sound,
                              negative_prompt=values.negative_prompt, shots=shots_from_lines(values.storyboard),
                              **tier_of(values))


def _multi_request(values: WidgetValues) -> MultiImageToVideoRequest:
    return MultiImageToVideoRequest(model_name=values.model_name, image_list=(PENDING_IMAGE,), prompt=PENDING_PROMPT,
                                    mode=values.mode, duration=values.duration,
                                    aspect_ratio=values.aspect_ratio or "")


@dataclass(frozen=True)
class EndpointRules:
    """Which widgets and sockets of a node on ``endpoint`` the table decides, and how they are judged."""

    endpoint: str
    widgets: tuple[str, ...]
    sockets: tuple[str, ...]
    build: Callable[[WidgetValues], RequestBody] = field(repr=False)
    check: Callable[[Any], Any] = field(repr=False)

    def refusal(self, values: WidgetValues) -> KlingValidationError | None:
        """Validation's refusal of these values (None when accepted)."""
        try:
            self.check(self.build(values))
        except KlingValidationError as exc:
            return exc
        return None

    @property
    def models(self) -> list[str]:
        return endpoint_models(self.endpoint)

    @property
    def aspect_ratios(self) -> list[str]:
        return endpoint_aspect_ratios(self.endpoint) if "aspect_ratio" in self.widgets else []

    @property
    def default_aspect_ratio(self) -> str:
        ratios = self.aspect_ratios
        default = endpoint_facts(self.endpoint).get("default_aspect_ratio")
        return default if default in ratios else ratios[0]


ENDPOINT_RULES: dict[str, EndpointRules] = {
    "image2video": EndpointRules("image2video", ("model_name", "mode", "duration", "cfg_scale", "sound", "resolution",
                                                 "storyboard"), FEATURE_SOCKETS, _image_request, validate),
    "text2video": EndpointRules("text2video", ("model_name", "mode", "duration", "aspect_ratio", "cfg_scale", "sound",
                                               "resolution", "storyboard"), (), _text_request, validate_text_to_video),
    "multi-image2video": EndpointRules("multi-image2video", ("model_name", "mode", "duration", "aspect_ratio"),
                                       (), _multi_request, validate_multi_image_to_video),
}


def endpoint_rules(endpoint: str) -> EndpointRules:
    try:
        return ENDPOINT_RULES[endpoint]
    except KeyError:
        raise WidgetPlanError(f"no widget rules for endpoint {endpoint!r}; known: {', '.join(ENDPOINT_RULES)}") from None


def read_values(rules: EndpointRules, values: Mapping[str, Any], linked: Iterable[str]) -> WidgetValues:
    """The rule widgets' values as the page sent them (durations may come as numbers). A widget turned
    into a linked input has no value yet (None), as at queue time."""
    for name in (*rules.widgets, "camera_type"):
        if isinstance(values.get(name), (dict, list)):
            raise WidgetPlanError(f"values.{name} must be a widget value (a string or a number), not {values[name]!r}")
    linked = set(linked)
    values = {name: value for name, value in values.items() if name not in linked}
    duration = values.get("duration")
    sound = values.get("sound") if "sound" in rules.widgets else None
    camera_type = values.get("camera_type")
    return WidgetValues(
        model_name=values.get("model_name"), mode=values.get("mode"),
        duration="" if duration is None else str(duration).strip(),
        sound=sound if isinstance(sound, str) else None,
        aspect_ratio=values.get("aspect_ratio") if "aspect_ratio" in rules.widgets else None,
        linked=frozenset(name for name in linked if name in rules.sockets),
        camera_type=camera_type if isinstance(camera_type, str) and camera_type else None,
        resolution=values.get("resolution") if "resolution" in rules.widgets else None,
        negative_prompt=negative if isinstance(negative := values.get("negative_prompt"), str) else "",
        storyboard=board if "storyboard" in rules.widgets and isinstance(board := values.get("storyboard"), str) else "",
        prompt=prompt if isinstance(prompt := values.get("prompt"), str) else "")


# --- what each widget shows ---------------------------------------------------------------------------


def _union(models: list[str], attribute: str) -> list[str]:
    table = capability_table()
    found: list[str] = []
    for name in models:
        found += [v for v in getattr(table.get(name), attribute) if v not in found]
    return sorted(found, key=int) if attribute == "durations" else found


def _sound_choices(caps: ModelCapabilities | None) -> list[str]:
    return ["off", "on"] if caps is None or caps.allowed_combos("sound") else ["off"]


def _tiers(models: list[str], new_standard: bool) -> list[str]:
    """The modes (legacy) or resolutions (new standard) of ``models``, in table order."""
    table = capability_table()
    return _union([m for m in models if table.get(m).is_new_standard == new_standard],
                  "resolutions" if new_standard else "modes")


def widget_states(rules: EndpointRules, values: WidgetValues) -> dict[str, dict[str, Any]]:
    """Visibility and combo choices of each rule widget for the current model. An unknown model shows
    every widget with the node's full choices (the warning says what is wrong)."""
    caps = capability_table().get(values.model_name) if isinstance(values.model_name, str) else None
    models = rules.models
    new = caps is not None and caps.is_new_standard
    shown: dict[str, dict[str, Any]] = {
        "model_name": {"visible": True, "choices": models},
        # a master model's mode stays in sight while it holds a tier it refuses (4k), as sound below
        "mode": {"visible": caps is None or caps.has_mode_choice or _refused_master_mode(caps, values.mode),
                 "choices": list(caps.modes) if caps is not None and caps.has_mode_choice else _tiers(models, False)},
        "resolution": {"visible": caps is None or new,
                       "choices": list(caps.resolutions) if new else _tiers(models, True)},
        "duration": {"visible": True, "choices": list(caps.durations) if caps is not None else _union(models, "durations")},
        "cfg_scale": {"visible": caps is None or caps.cfg_scale},
        # sound stays in sight while it is on, so that the warning points at a widget the user can see
        "sound": {"visible": caps is None or bool(caps.allowed_combos("sound")) or
                  (values.sound == "on" and not caps.sound_always),
                  "choices": _sound_choices(caps)},
        "aspect_ratio": {"visible": True, "choices": rules.aspect_ratios},
        # in sight for the models that take one, and while it holds shots (so the warning points at it)
        "storyboard": {"visible": caps is None or caps.takes_storyboard(rules.endpoint) or bool(values.storyboard.strip())},
    }
    return {name: shown[name] for name in rules.widgets}


def _refused_master_mode(caps: ModelCapabilities, mode: Any) -> bool:
    """A legacy model without a mode choice holding a mode it refuses (a tier others offer, e.g. 4k)."""
    return (not caps.is_new_standard and not caps.has_mode_choice and isinstance(mode, str)
            and mode not in BASE_MODES and bool(models_with_tier(mode, LEGACY_STANDARD)))


# --- the nearest valid combination ----------------------------------------------------------------------


def successor_of(model_name: Any) -> Any:
    """The current model that replaces a retired one (following successors of successors)."""
    table = capability_table()
    for _ in range(len(table.models)):
        caps = table.get(model_name) if isinstance(model_name, str) else None
        if caps is None or not caps.retired or not caps.successor:
            break
        model_name = caps.successor
    return model_name


def _common_prefix(a: str, b: str) -> int:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return size


def _duration_distance(candidate: str, current: str) -> tuple[float, int]:
    """(how far, longer?) from the current duration; ties go to the shorter, cheaper one."""
    if candidate == current:
        return 0.0, 0
    try:
        a, b = float(candidate), float(current)
    except ValueError:
        return math.inf, 0
    return abs(a - b), int(a > b)


#: Tiers from low to high, a legacy mode as its resolution (std 720p, pro 1080p, 4k): the nearest tier is
#: the fix's first choice (a refused 4k becomes 1080p, not 720p).
TIER_ORDER = ("720p", "1080p", "4k")


def _tier_distance(candidate: Any, current: Any) -> int:
    """How many steps of TIER_ORDER apart two modes or resolutions are (1 for an unknown one)."""
    if candidate == current:
        return 0
    ranks = [TIER_ORDER.index(t) if (t := LEGACY_MODE_RESOLUTIONS.get(str(v), v)) in TIER_ORDER else None
             for v in (candidate, current)]
    return abs(ranks[0] - ranks[1]) if None not in ranks else 1


def _candidates(rules: EndpointRules, values: WidgetValues) -> list[tuple[tuple, WidgetValues]]:
    """Every combination of the node's models, modes, durations and sound, with its distance from the
    current values: the same model (a retired one's successor) first, then the most similar name
    (kling-v2-1-master -> kling-v2-1), nearest in table order; sound kept; mode kept; nearest duration."""
    table = capability_table()
    models = rules.models
    target = str(successor_of(values.model_name))
    home = models.index(target) if target in models else (
        models.index(table.default_model) if table.default_model in models else 0)
    sounds = ["on", "off"] if values.sound == "on" else [values.sound]
    ratios = rules.aspect_ratios
    ratio = values.aspect_ratio if values.aspect_ratio in ratios or not ratios else rules.default_aspect_ratio
    found = []
    for index, name in enumerate(models):
        caps = table.get(name)
        same = name == target
        for sound in sounds:
            # a master model keeps the mode (it is left out) unless it refuses it (4k): then std
            for tier in caps.resolutions or caps.modes or tuple(dict.fromkeys((values.mode, "std"))):
                tiers = {"resolution": tier} if caps.resolutions else {"mode": tier}
                moved = _tier_distance(tier, values.resolution if caps.resolutions else values.mode)
                key = (not same, 0 if same else -_common_prefix(name, target), abs(index - home),
                       sound != values.sound, moved if caps.has_mode_choice or caps.resolutions else 0)
                for duration in caps.durations:
                    found.append(((*key, *_duration_distance(duration, values.duration), ratio != values.aspect_ratio),
                                  replace(values, model_name=name, duration=duration, sound=sound, aspect_ratio=ratio,
                                          **tiers)))
    found.sort(key=lambda item: item[0])
    return found


def nearest_valid(rules: EndpointRules, values: WidgetValues) -> WidgetValues | None:
    """The closest combination validation accepts (None when no model of the node fits the links)."""
    for _, candidate in _candidates(rules, values):
        if rules.refusal(candidate) is None:
            return candidate
    return None


def describe_change(before: WidgetValues, after: WidgetValues) -> str:
    """What the fix changes, e.g. 'mode pro, 10 s', 'kling-v1-6' or 'sound off'."""
    caps = capability_table().get(after.model_name)
    parts = []
    if after.model_name != before.model_name:
        parts.append(str(after.model_name))
    if after.mode != before.mode and caps is not None and not caps.is_new_standard:
        parts.append(f"mode {after.mode}")
    if after.resolution != before.resolution and caps is not None and caps.is_new_standard:
        parts.append(str(after.resolution))
    if after.duration != before.duration:
        parts.append(f"{after.duration} s")
    if after.sound != before.sound:
        parts.append(f"sound {after.sound}")
    if after.aspect_ratio != before.aspect_ratio:
        parts.append(f"aspect ratio {after.aspect_ratio}")
    return ", ".join(parts)


def model_notes(model_name: Any) -> list[str]:
    """What the node says of its model beside the widgets: the API it is on and the credential it needs,
    and a sound that cannot be switched off."""
    caps = capability_table().get(model_name) if isinstance(model_name, str) else None
    if caps is None or not caps.is_new_standard:
        return []
    notes = [f"{caps.name} is on Kling's new API: it needs an API key (an access key + secret key reaches "
             "legacy models only)"]
    if caps.sound_always:
        notes.append(f"{caps.name} always makes sound (it has no sound switch)")
    return notes


def _no_fix_hint(values: WidgetValues) -> str:
    links = " or ".join(name for name in FEATURE_SOCKETS if name in values.linked) or "the linked inputs"
    camera = " or use camera type simple" if values.camera_type not in (None, "simple") else ""
    return f"No model of this node accepts these links; disconnect {links}{camera}."


def _fix_values(rules: EndpointRules, fix: WidgetValues) -> dict[str, Any]:
    """The widget values the fix sets: a new-standard model's resolution, a legacy model's mode."""
    caps = capability_table().get(fix.model_name)
    skip = "mode" if caps is not None and caps.is_new_standard else "resolution"
    names = [name for name in ("model_name", "mode", "duration", "sound", "aspect_ratio", "resolution")
             if name in rules.widgets and name != skip]
    return {name: getattr(fix, name) for name in names}


# --- the answer -----------------------------------------------------------------------------------------


def storyboard_notes(values: WidgetValues) -> list[str]:
    """The storyboard's sum against the duration, e.g. 'Storyboard: 3 shots: 2 + 3 + 5 = 10 s, the duration'
    (nothing when there is none or a line is malformed: the warning says which)."""
    try:
        shots = shots_from_lines(values.storyboard)
    except KlingValidationError:
        return []
    return [f"Storyboard: {storyboard_sum(shots, values.duration).text}"] if shots else []


def empty_plan() -> dict[str, Any]:
    """The answer for a node the table decides nothing on (e.g. Kling Video Extend)."""
    return {"widgets": {}, "warning": None, "fix": None, "info": []}


def plan_for(rules: EndpointRules, values: WidgetValues) -> dict[str, Any]:
    """The widget plan of a node on ``rules.endpoint`` with ``values`` (see the module docstring)."""
    plan = empty_plan()
    plan["widgets"] = widget_states(rules, values)
    plan["info"] += model_notes(values.model_name) + storyboard_notes(values)
    if any(getattr(values, name) in (None, "") for name in rules.widgets if name in SETTLED_BY_LINK):
        return plan  # a value comes from a link: judged when the node runs, as the queue-time check does
    refusal = rules.refusal(values)
    if refusal is None:
        return plan
    plan["warning"] = str(refusal)
    if refusal.field in ("negative_prompt", "prompt"):  # the text is the problem, not the combination: clear it
        plan["fix"] = {"label": f"Fix: clear {refusal.field}", "values": {refusal.field: ""}}
        return plan
    if refusal.field.startswith("storyboard line"):  # a line to rewrite: no combination fixes it
        return plan
    fix = nearest_valid(rules, replace(values, negative_prompt="", prompt=""))  # combinations; the texts come next
    if fix is None:
        plan["info"].append(_no_fix_hint(values))
    else:
        change = describe_change(values, fix) or "the nearest valid combination"
        plan["fix"] = {"label": f"Fix: use {change}", "values": _fix_values(rules, fix)}
    return plan


def widget_plan(endpoint: str | None, values: Mapping[str, Any], linked: Iterable[str] = ()) -> dict[str, Any]:
    """The plan for a node on ``endpoint`` (None: a node without table rules) from the page's values."""
    if endpoint is None:
        return empty_plan()
    rules = endpoint_rules(endpoint)
    return plan_for(rules, read_values(rules, values, linked))


def plan_request(body: Any, node_endpoints: Mapping[str, str | None]) -> dict[str, Any]:
    """Answer a ``POST /kling/widget_plan`` body; :class:`WidgetPlanError` says what is malformed."""
    if not isinstance(body, dict):
        raise WidgetPlanError("send a JSON object with node_type, values and linked")
    node_type = body.get("node_type")
    if not isinstance(node_type, str) or node_type not in node_endpoints:
        raise WidgetPlanError(f"node_type {node_type!r} is not a Kling node; known: {', '.join(node_endpoints)}")
    values = body.get("values", {})
    if not isinstance(values, dict):
        raise WidgetPlanError("values must be an object of widget name -> value")
    linked = body.get("linked", [])
    if not isinstance(linked, list) or not all(isinstance(name, str) for name in linked):
        raise WidgetPlanError("linked must be a list of input names")
    return widget_plan(node_endpoints[node_type], values, linked)
