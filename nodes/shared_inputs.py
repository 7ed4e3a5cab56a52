"""Inputs every Kling generation node has, defined once so their wording and limits agree."""
from __future__ import annotations

from typing import Any, Mapping

from comfy_api.latest import io

from ..kling_api.capabilities import capability_table, endpoint_aspect_ratios, endpoint_facts, endpoint_models
from ..kling_api.client import DEFAULT_TIMEOUT_S

#: Stand-in for images at queue time, when only the widget values are known.
PENDING_IMAGE = "pending-image"
DEFAULT_CONCURRENCY = 2

SEED_TOOLTIP = ("Not sent to Kling (its results are not seeded): a new seed makes ComfyUI run the node again "
                "and pays for a new task; the same inputs and seed reuse the earlier task")


def advanced(widget: io.Input) -> io.Input:
    """Mark a widget as advanced (collapsed by frontends that support it)."""
    widget.extra_dict["advanced"] = True
    return widget


def prompt_inputs(prompt_tooltip: str) -> list[io.Input]:
    return [
        io.String.Input("prompt", multiline=True, default="", tooltip=prompt_tooltip),
        io.String.Input("negative_prompt", multiline=True, default="", tooltip="What to avoid (max 2500 characters)"),
    ]


def seed_input() -> io.Input:
    return io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                        tooltip=SEED_TOOLTIP)


def timeout_input(tooltip: str = "Seconds to wait once Kling is processing (queue time not counted)") -> io.Input:
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


def endpoint_model_inputs(endpoint: str, what: str, duration_tooltip: str = "Video length in seconds",
                          mode_tooltip: str = "std: faster and cheaper; pro: higher quality") -> list[io.Input]:
    """model_name, mode, duration and aspect_ratio of an endpoint other than image2video, from the
    capability table's ``endpoints`` entry (its model list, their durations, its aspect ratios)."""
    table = capability_table()
    models = endpoint_models(endpoint)
    facts = endpoint_facts(endpoint)
    ratios = endpoint_aspect_ratios(endpoint)
    durations = sorted({d for m in models for d in table.get(m).durations}, key=int)
    return [
        io.Combo.Input("model_name", options=models,
                       default=table.default_model if table.default_model in models else models[0],
                       tooltip=f"Kling model (the models {what} takes)"),
        io.Combo.Input("mode", options=["std", "pro"], default="std", tooltip=mode_tooltip),
        io.Combo.Input("duration", options=durations, default="5" if "5" in durations else durations[0],
                       tooltip=duration_tooltip),
        io.Combo.Input("aspect_ratio", options=ratios, default=facts.get("default_aspect_ratio", ratios[0]),
                       tooltip="Width:height of the video"),
    ]


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
