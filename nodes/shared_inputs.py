"""Inputs every Kling generation node has, defined once so their wording and limits agree."""
from __future__ import annotations

from typing import Any, Mapping

from comfy_api.latest import io

from ..kling_api.rules.capabilities import capability_table, endpoint_aspect_ratios, endpoint_facts, endpoint_models
from ..kling_api.rules.storyboard import storyboard_models, storyboard_rules
from ..kling_api.remote.client import DEFAULT_TIMEOUT_S
from ..kling_api.rules.widget_plan import PENDING_IMAGE  # noqa: F401  (the nodes' queue-time stand-in for images)
from ..kling_api.rules.tooltips import (durations_text, models_with, models_without_mode, partial_tiers_text,
                                        spoken_list, tier_choices, where_allowed)

DEFAULT_CONCURRENCY = 2

SEED_TOOLTIP = ("Not sent to Kling (its results are not seeded): a new seed makes ComfyUI run the node again "
                "and pays for a new task; the same inputs and seed reuse the earlier task")


def advanced(widget: io.Input) -> io.Input:
    """Mark a widget as advanced (collapsed by frontends that support it)."""
    widget.extra_dict["advanced"] = True
    return widget


def prompt_inputs(what: str, note: str = "") -> list[io.Input]:
    """prompt and negative_prompt; ``note`` (e.g. 'required') goes before the table's length limit."""
    limit = f"at most {capability_table().prompt_max_chars} characters"
    return [
        io.String.Input("prompt", multiline=True, default="", tooltip=f"{what} ({note + ', ' if note else ''}{limit})"),
        io.String.Input("negative_prompt", multiline=True, default="", tooltip=f"What to avoid ({limit})"),
    ]


def seed_input() -> io.Input:
    return io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                        tooltip=SEED_TOOLTIP)


def timeout_input(tooltip: str = "Seconds to wait once Kling is processing (time in Kling's queue is not counted). "
                                 "The task keeps running after a timeout; resume it with Kling Task Result") -> io.Input:
    return advanced(io.Int.Input("timeout", default=int(DEFAULT_TIMEOUT_S), min=60, max=6 * 3600, optional=True,
                                 tooltip=tooltip))


def concurrency_input(tooltip: str) -> io.Input:
    return advanced(io.Int.Input("concurrency", default=DEFAULT_CONCURRENCY, min=1, max=16, optional=True,
                                 tooltip=tooltip))


def task_options(external_id_tooltip: str = "Your own task id (unique per account)") -> list[io.Input]:
    """external_task_id, callback_url and timeout, in that order (saved workflows keep widget positions)."""
    return [
        advanced(io.String.Input("external_task_id", default="", optional=True, tooltip=external_id_tooltip)),
        advanced(io.String.Input("callback_url", default="", optional=True,
                                 tooltip="https URL Kling notifies on each status change (optional)")),
        timeout_input(),
    ]


def model_inputs(endpoint: str, what: str) -> list[io.Input]:
    """model_name, mode and duration of a node on ``endpoint``: its current models from the capability
    table, their durations, and tooltips that state the table's rules."""
    table = capability_table()
    models = endpoint_models(endpoint)
    durations = sorted({d for m in models for d in table.get(m).durations}, key=int)
    no_mode = models_without_mode(models)
    modes = tier_choices(models, "modes") or ["std", "pro"]  # options only grow at the end: saved values stay valid
    four_k = [name for name in models if "4k" in table.get(name).modes]
    return [
        io.Combo.Input("model_name", options=models,
                       default=table.default_model if table.default_model in models else models[0],
                       tooltip=f"Kling model (the models {what} takes); each allows different modes, durations "
                               "and features, and the other widgets follow the model you pick"),
        io.Combo.Input("mode", options=modes, default="std",
                       tooltip="std: faster and cheaper; pro: higher quality"
                               + (f"; 4k: native 4K (2160p), {spoken_list(four_k)} only" if four_k else "")
                               + (f". Hidden for models without a mode choice ({no_mode})" if no_mode else "")),
        io.Combo.Input("duration", options=durations, default="5" if "5" in durations else durations[0],
                       tooltip=f"Video length in seconds ({durations_text(models)}); only the durations of the "
                               "chosen model are offered"),
    ]


def aspect_ratio_input(endpoint: str) -> io.Input:
    ratios = endpoint_aspect_ratios(endpoint)
    return io.Combo.Input("aspect_ratio", options=ratios,
                          default=endpoint_facts(endpoint).get("default_aspect_ratio", ratios[0]),
                          tooltip=f"Width:height of the video: {spoken_list(ratios)}")


def cfg_scale_input(endpoint: str) -> io.Input:
    takers = models_with("cfg_scale", endpoint_models(endpoint))
    verb = "take" if " and " in takers else "takes"  # one model, or a spoken list of several
    return io.Float.Input("cfg_scale", default=0.5, min=0.0, max=1.0, step=0.01,
                          tooltip=f"Prompt adherence 0-1; only {takers} {verb} it (hidden and left out for the others)")


def sound_input(endpoint: str, what_it_gives: str) -> io.Combo.Input:
    """The sound switch (appended last on the image node: saved workflows keep widget positions)."""
    return io.Combo.Input("sound", options=["off", "on"], default="off", optional=True,
                          tooltip=f"Native sound where the model allows it ({where_allowed('sound', endpoint_models(endpoint))})"
                                  f": {what_it_gives}. Hidden for models without sound")


def storyboard_input(endpoint: str) -> io.String.Input:
    """A storyboard (multi-shot video), one shot per line as ``SECONDS: what happens`` (appended last:
    saved workflows keep widget positions); empty: one shot from the prompt."""
    rules = storyboard_rules()
    return io.String.Input("storyboard", multiline=True, default="", optional=True,
                           tooltip=f"Optional storyboard for {spoken_list(storyboard_models(endpoint))}: "
                                   f"{rules.min_shots}-{rules.max_shots} shots, one per line as 'SECONDS: what "
                                   f"happens' (e.g. '2: a boat leaves the harbour'), whole seconds of at least "
                                   f"{rules.min_shot_seconds}, at most {rules.shot_prompt_max_chars} characters "
                                   "each, adding up to the duration; the prompt stays empty (each shot has its "
                                   "own). The node shows the sum. Empty: one shot from the prompt")


def resolution_input(endpoint: str) -> io.Combo.Input:
    """The resolution of the new API's models (appended last: saved workflows keep widget positions);
    legacy models use ``mode`` instead, and the widget plan shows the one that counts."""
    table = capability_table()
    new = [name for name in endpoint_models(endpoint) if table.get(name).is_new_standard]
    choices = [r for name in new for r in table.get(name).resolutions]
    options = list(dict.fromkeys(choices)) or ["720p"]
    only = "; " + partial_tiers_text(new, "resolutions") if partial_tiers_text(new, "resolutions") else ""
    legacy = [name for name in endpoint_models(endpoint) if not table.get(name).is_new_standard]
    four_k = [name for name in legacy if "4k" in table.get(name).modes]
    return io.Combo.Input("resolution", options=options, default=options[0], optional=True,
                          tooltip=f"Resolution of the new API's models ({spoken_list(new)}{only})"
                                  "; hidden for legacy models, which choose a mode (std 720p, pro 1080p"
                                  f"{', 4k on ' + spoken_list(four_k) if four_k else ''})")


def linked_types(input_types: Any) -> dict[str, str]:
    """Input name -> the type linked into it, from the ``input_types`` ComfyUI hands validate_inputs."""
    linked = (input_types or [{}])[0] if isinstance(input_types, list) else (input_types or {})
    return dict(linked)


def wrong_link(linked: Mapping[str, str], expected: Mapping[str, str]) -> str | None:
    """The message for the first input linked to a type other than the one it takes, else None."""
    for name, received in linked.items():
        if name in expected and received not in (expected[name], "*"):
            article = "an" if expected[name][0] in "AEIOU" else "a"
            return f"{name} needs {article} {expected[name]} input; got {received}"
    return None
