"""The capability table: which model takes which mode, duration and feature.

The facts live in ``capabilities.json`` beside this file; validation, the emulator, the web
widgets (through a route) and the README table all read them from here, so a model is added,
changed or retired in one place. ``KLING_CAPABILITIES_FILE`` points the pack at another JSON file of
the same shape instead (tests; users who update the table themselves).
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .endpoints import NEW_MODELS, new_standard_models

#: The packaged table, used unless ``KLING_CAPABILITIES_FILE`` names another file.
_TABLE_PATH = Path(__file__).with_name("capabilities.json")
TABLE_FILE_ENV = "KLING_CAPABILITIES_FILE"

#: Mode value used in combos for models without a mode choice (the master models).
NO_MODE = "-"
LEGACY_STANDARD, NEW_STANDARD = "legacy", "new"
#: A resolution asked of a legacy model means its mode (ComfyUI's own Kling 3.0 node maps them the same way).
RESOLUTION_MODES = {"720p": "std", "1080p": "pro", "4k": "4k"}
LEGACY_MODE_RESOLUTIONS = {mode: resolution for resolution, mode in RESOLUTION_MODES.items()}
#: The modes a model without a mode choice (the master models) is sent without, with a note; a higher tier
#: that other models offer (4k) is refused there instead, since the video would not be what was asked.
BASE_MODES = ("std", "pro")
FEATURES = ("image_tail", "motion_brush", "camera_control", "sound")
#: Rules endpoints as a retirement message names them.
ENDPOINT_WORDS = {"image2video": "image to video", "text2video": "text to video",
                  "multi-image2video": "multi-image to video"}


@dataclass(frozen=True)
class ModelCapabilities:
    """One model's row of the table, with helpers that answer 'is this combination allowed?'."""

    name: str
    modes: tuple[str, ...]
    durations: tuple[str, ...]
    cfg_scale: bool
    combos: dict[str, tuple[str, ...]]
    camera_types: tuple[str, ...]
    output: dict[str, dict[str, Any]]
    image_tail_requires_silence: bool = False
    note: str = ""
    #: ``legacy`` (``model_name`` in the body of a ``/v1/`` path) or ``new`` (the model in the path);
    #: Kling's own rule: "The model version information located in the path is the new version, while the
    #: value set as the model_name parameter is the legacy version."
    standard: str = "legacy"
    #: New-API models choose a resolution (their combos are 'resolution/duration'); legacy ones a mode.
    resolutions: tuple[str, ...] = ()
    #: The model always makes sound and takes no audio switch (kling-3.0-turbo).
    sound_always: bool = False
    #: Prompt limit per endpoint rules name ("image2video", "text2video"), where it differs from the table's.
    prompt_max_chars: dict[str, int] = field(default_factory=dict)
    #: Kling's page(s) the row was taken from.
    page: str = ""
    #: Set when Kling retired the model (e.g. the date): hidden from new choices; a saved workflow that
    #: still names it is refused with the message of :meth:`retirement`, which names ``successor``.
    retired: str = ""
    successor: str = ""
    #: Successors per rules endpoint where ``successor`` is not offered there, e.g. {"text2video": "kling-v1-6"}
    #: (Kling's text to video never took kling-v1-5).
    successors: dict[str, str] = field(default_factory=dict)
    #: What the successor does not keep of a saved workflow, said with the retirement (e.g. a motion brush
    #: that needs pro).
    successor_note: str = ""
    #: The rules endpoints ("image2video", "text2video") where the model takes a storyboard (multi-shot).
    storyboard: tuple[str, ...] = ()
    #: The model's page has ``settings.multi_shot`` (kling-3.0): the new codec sends it.
    multi_shot_setting: bool = False

    def takes_storyboard(self, rules: str) -> bool:
        """Whether a storyboard (multi-shot) may be sent to this model on the rules endpoint ``rules``."""
        return rules in self.storyboard

    def successor_for(self, endpoint: str | None = None) -> str:
        """The model to pick instead on the rules ``endpoint`` (e.g. "text2video"); '' when none is named."""
        return self.successors.get(endpoint or "", "") or self.successor

    def retirement(self, endpoint: str | None = None) -> str:
        """Why the model cannot be used any more and what to pick instead ('' for a current model). Without
        ``endpoint`` the message names the successor of every endpoint that has its own."""
        if not self.retired:
            return ""
        when = f" ({self.retired})" if self.retired not in ("true", "True", "yes") else ""
        successor = self.successor_for(endpoint)
        pick = f"; pick {successor} instead" if successor else ""
        extra = [self.successor_note] if self.successor_note and successor == self.successor else []
        if endpoint is None:
            extra += [f"{ENDPOINT_WORDS.get(name, name)}: {model}" for name, model in self.successors.items()
                      if model != self.successor]
        details = f" ({'; '.join(extra)})" if extra and pick else ""
        return f"model_name: {self.name} was retired by Kling{when}{pick}{details}"

    @property
    def has_mode_choice(self) -> bool:
        return bool(self.modes)

    @property
    def is_new_standard(self) -> bool:
        return self.standard == NEW_STANDARD

    @property
    def tiers(self) -> tuple[str, ...]:
        """The first part of this model's combos: its modes, its resolutions (new API), or none."""
        return self.modes or self.resolutions or (NO_MODE,)

    def effective_mode(self, mode: str | None) -> str:
        """The mode (new API: the resolution) as the table keys it: the master models have none."""
        if self.resolutions:
            return mode or self.resolutions[0]
        if not self.has_mode_choice:
            return NO_MODE
        return mode or "std"

    def tier_fields(self, mode: str | None, resolution: str | None) -> dict[str, str | None]:
        """The request fields for a tier given either way: a new-standard model takes ``resolution``; a
        legacy one takes ``mode``, and a resolution stands for its mode (720p std, 1080p pro, 4k 4k).
        Both given and disagreeing is refused by the caller's validation (the mode is kept as given)."""
        if self.is_new_standard:
            return {"mode": None, "resolution": resolution or LEGACY_MODE_RESOLUTIONS.get(mode or "", mode)}
        chosen = mode or RESOLUTION_MODES.get(resolution or "", resolution)
        return {"mode": chosen or ("std" if self.has_mode_choice else None), "resolution": None}

    def prompt_limit(self, rules: str, default: int) -> int:
        return int(self.prompt_max_chars.get(rules, default))

    def credential_label(self) -> str:
        """Which API the model is on and the credential it needs (the README, the node, the CLI say it)."""
        return "new API (model in the path): API key" if self.is_new_standard else \
            "legacy API (model_name): API key or access key + secret key"

    def allows(self, feature: str, mode: str | None, duration: str) -> bool:
        mode = self.effective_mode(mode)
        for combo in self.combos.get(feature, ()):
            want_mode, want_duration = combo.split("/")
            if want_mode in ("*", mode) and want_duration in ("*", str(duration)):
                return True
        return False

    def allowed_combos(self, feature: str) -> list[tuple[str, str]]:
        """Every concrete (mode or resolution, duration) pair where ``feature`` is allowed."""
        return [(m, d) for m in self.tiers for d in self.durations if self.allows(feature, m, d)]

    def describe_combos(self, feature: str) -> str:
        combos = self.allowed_combos(feature)
        if not combos:
            return "nowhere on this model"
        return ", ".join(f"{m}/{d}" for m, d in combos)

    def output_for(self, mode: str | None) -> dict[str, Any]:
        """Output height/fps where known (None where the sources do not say)."""
        return dict(self.output.get(self.effective_mode(mode), {"height": None, "fps": None}))


@dataclass(frozen=True)
class CapabilityTable:
    models: dict[str, ModelCapabilities]
    default_model: str
    prompt_max_chars: int
    estimated_seconds: float
    #: The table's ``"storyboard"`` limits (read by :func:`kling_api.rules.storyboard.storyboard_rules`).
    storyboard_limits: dict[str, int] = field(default_factory=dict)

    @property
    def model_names(self) -> list[str]:
        """The models offered for new work (retired ones left out)."""
        return [name for name, caps in self.models.items() if not caps.retired]

    @property
    def all_model_names(self) -> list[str]:
        """Every row, retired ones included (they stay so that old workflows get a useful message)."""
        return list(self.models)

    @property
    def all_durations(self) -> list[str]:
        found = {d for m in self.models.values() for d in m.durations}
        return sorted(found, key=int)

    def get(self, model_name: str) -> ModelCapabilities | None:
        return self.models.get(model_name)

    def as_json(self) -> dict[str, Any]:
        """The raw table, for the web route and documentation."""
        return load_raw()


def table_path() -> Path:
    """The table file: ``$KLING_CAPABILITIES_FILE`` when set, else the packaged capabilities.json."""
    override = os.environ.get(TABLE_FILE_ENV, "").strip()
    return Path(override).expanduser() if override else _TABLE_PATH


@lru_cache(maxsize=1)
def _read_table() -> dict[str, Any]:
    """The table file, read once per process (validation and every wait consult it)."""
    return json.loads(table_path().read_text(encoding="utf-8"))


def load_raw() -> dict[str, Any]:
    """The raw table, a copy the caller may change."""
    return copy.deepcopy(_read_table())


@lru_cache(maxsize=1)
def capability_table() -> CapabilityTable:
    raw = load_raw()
    models = {}
    for name, row in raw["models"].items():
        models[name] = ModelCapabilities(
            name=name,
            modes=tuple(row["modes"]),
            durations=tuple(row["durations"]),
            cfg_scale=bool(row["cfg_scale"]),
            combos={feature: tuple(row.get(feature, ())) for feature in FEATURES},
            camera_types=tuple(row.get("camera_types", ())),
            output=row.get("output", {}),
            image_tail_requires_silence=bool(row.get("image_tail_requires_silence", False)),
            note=row.get("note", ""),
            retired=str(row.get("retired", "") or ""),
            successor=str(row.get("successor", "") or ""),
            successors={str(k): str(v) for k, v in (row.get("successors") or {}).items()},
            successor_note=str(row.get("successor_note", "") or ""),
            standard=NEW_STANDARD if name in NEW_MODELS else LEGACY_STANDARD,
            resolutions=tuple(row.get("resolutions", ())),
            sound_always=bool(row.get("sound_always", False)),
            prompt_max_chars={str(k): int(v) for k, v in (row.get("prompt_max_chars") or {}).items()},
            page=str(row.get("page", "") or ""),
            storyboard=tuple(row.get("storyboard", ())),
            multi_shot_setting=bool(row.get("multi_shot_setting", False)),
        )
    return CapabilityTable(
        models=models,
        default_model=raw["default_model"],
        prompt_max_chars=int(raw["prompt_max_chars"]),
        estimated_seconds=float(raw["estimated_seconds"]),
        storyboard_limits={name: int(value) for name, value in (raw.get("storyboard") or {}).items()
                           if not name.startswith("_")},
    )


def retired_label(caps: ModelCapabilities) -> str:
    """' (retired; use kling-v1-5)' in the README's table, with the endpoints that have their own successor."""
    if not caps.retired:
        return ""
    if not caps.successor:
        return " (retired)"
    others = "".join(f", {ENDPOINT_WORDS.get(name, name)}: {model}" for name, model in caps.successors.items()
                     if model != caps.successor)
    return f" (retired; use {caps.successor}{others})"


def markdown_table() -> str:
    """The README's model table, generated so that it cannot drift from the data."""
    table = capability_table()
    lines = [
        "| model | API (credential) | modes / resolutions | durations (s) | cfg_scale | start+end frame | motion brush "
        "| camera control | sound | output |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for caps in table.models.values():
        def combos(feature: str) -> str:
            found = caps.allowed_combos(feature)
            if not found:
                return "–"
            if len(found) == len(caps.tiers) * len(caps.durations):
                return "any"
            parts = []
            for mode in caps.tiers:
                durations = [d for m, d in found if m == mode]
                if len(durations) == len(caps.durations):
                    parts.append(f"{mode}/any")
                else:
                    parts += [f"{mode}/{d}" if mode != NO_MODE else d for d in durations]
            return ", ".join(parts)

        durations = caps.durations
        span = f"{durations[0]}–{durations[-1]}" if len(durations) > 3 else ", ".join(durations)
        outputs = []
        for mode, facts in caps.output.items():
            height = f"{facts['height']}p" if facts.get("height") else "?"
            label = "" if mode == NO_MODE or caps.is_new_standard else f"{mode} "
            outputs.append(f"{label}{height} {facts.get('fps') or '?'} fps")
        camera = combos("camera_control")
        if caps.camera_types and camera != "–":
            camera += f" ({', '.join(caps.camera_types)})"
        api = "new: API key" if caps.is_new_standard else "legacy: API key or AK/SK"
        sound = "always" if caps.sound_always else combos("sound")
        lines.append(
            f"| {caps.name}{retired_label(caps)} | {api} | {', '.join(caps.modes or caps.resolutions) or 'none'} "
            f"| {span} | {'yes' if caps.cfg_scale else '–'} "
            f"| {combos('image_tail')}{' (silent only)' if caps.image_tail_requires_silence else ''} "
            f"| {combos('motion_brush')} | {camera} | {sound} | {'; '.join(outputs)} |"
        )
    return "\n".join(lines)


def models_with_tier(tier: str, standard: str) -> list[str]:
    """Current models of ``standard`` (LEGACY_STANDARD: modes, NEW_STANDARD: resolutions) that offer ``tier``."""
    table = capability_table()
    return [name for name in table.model_names if table.models[name].standard == standard
            and tier in (table.models[name].resolutions if standard == NEW_STANDARD else table.models[name].modes)]


def endpoint_models(endpoint: str, include_retired: bool = False) -> list[str]:
    """Models of the rules ``endpoint`` (e.g. "text2video"), current ones only: the legacy models it lists
    under "endpoints" in capabilities.json (none listed: every legacy model), then the new-standard models
    that have a path for it in the endpoint table. ``include_retired``: retired rows too (the emulator
    answers them as Kling does, with its discontinued words, not as unknown)."""
    table = capability_table()
    current = table.all_model_names if include_retired else table.model_names
    legacy = [n for n in current if not table.models[n].is_new_standard]
    names = endpoint_facts(endpoint).get("models")
    listed = [n for n in (names or legacy) if n in current]
    return listed + [n for n in new_standard_models(endpoint) if n in current and n not in listed]


def endpoint_facts(endpoint: str) -> dict[str, Any]:
    """The "endpoints" entry of ``endpoint`` (e.g. "text2video"); {} when the table has none."""
    return dict(_read_table().get("endpoints", {}).get(endpoint, {}))


#: Reference 1.3's aspect ratios, for a table file whose endpoint entry does not list them.
DEFAULT_ASPECT_RATIOS = ("16:9", "9:16", "1:1")


def endpoint_aspect_ratios(endpoint: str) -> list[str]:
    """The aspect ratios ``endpoint`` takes (text2video, multi-image2video)."""
    return list(endpoint_facts(endpoint).get("aspect_ratios") or DEFAULT_ASPECT_RATIOS)


def max_reference_images() -> int:
    """How many images one multi-image2video task takes (reference 1.3: up to 4)."""
    return int(endpoint_facts("multi-image2video").get("max_images") or 4)
