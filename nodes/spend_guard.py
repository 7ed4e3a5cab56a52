"""Costs inside ComfyUI: the estimate a node shows, the spend guard at queue time and before any create,
and the balance warning.

The limits are set in Settings > Kling > Costs; the page posts them to ``/kling/spend_limits`` and the
server keeps them in its protected user folder (beside the ledger), so the guard also holds for prompts
queued by scripts and after a restart. ``KLING_MAX_UNITS`` / ``KLING_MAX_UNITS_PER_DAY`` in the server's
environment apply too (the lower limit wins).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from comfy_execution.utils import get_executing_context

from ..kling_api.remote.account import AccountCosts, describe_balance
from ..kling_api.costs.estimates import (BALANCE_LINE, ESTIMATE_LINE, GUARD_LINE, CostEstimate, PromptEstimate,
                               RateCardError, SpendLimits, balance_warning, check_spend, combination_for, estimate_cost,
                               estimate_requests, guard_note, parse_limit, rate_card_from_env, spend_refusal,
                               spent_today)
from ..kling_api.remote.client import KlingClient
from ..kling_api.errors import KlingError
from ..kling_api.rules.request import RequestBody
from .credentials import node_credentials
from .ledger import ledger_dir, node_ledger
from .registry import task_endpoints

log = logging.getLogger(__name__)

LIMITS_FILENAME = "spend_limits.json"
WHERE = "Settings > Kling > Costs (or KLING_MAX_UNITS / KLING_MAX_UNITS_PER_DAY in the server's environment)"
#: A balance read for a warning is reused this long (the query is free but Kling wants <= 1 a second,
#: and the count itself may lag 12 hours).
BALANCE_TTL_S = 60.0

#: A prompt's note (see on_prompt) outlives the request that posted it at most this long; it is normally
#: dropped as soon as that request is answered.
PENDING_TTL_S = 600.0

_lock = threading.Lock()
#: The account's last balance read, a cache shared by all prompts (one account per server):
#: [monotonic time read, AccountCosts | None].
_balance: list[Any] = [0.0, None]


@dataclass
class _PromptNote:
    """What on_prompt noted for one posted prompt: per Kling node id, the estimates of the prompt's other
    Kling nodes (validate_inputs sees one node at a time)."""

    others: dict[str, tuple[CostEstimate, ...]]
    noted_at: float
    posts: int = 1  # requests with this prompt_id not answered yet
    ambiguous: bool = False  # a second prompt came with the same prompt_id before the first was answered


#: prompt_id -> the note of the prompt being validated under that id (see on_prompt).
_pending: dict[str, _PromptNote] = {}


# -- limits ---------------------------------------------------------------------------------------
def limits_path() -> Path:
    return ledger_dir() / LIMITS_FILENAME


def stored_limits() -> SpendLimits:
    """The limits last posted by the settings page (none when never set or unreadable)."""
    try:
        data = json.loads(limits_path().read_text(encoding="utf-8"))
        return SpendLimits(parse_limit(data.get("per_prompt"), "per_prompt"),
                           parse_limit(data.get("per_day"), "per_day"), WHERE)
    except FileNotFoundError:
        return SpendLimits(where=WHERE)
    except (OSError, ValueError, AttributeError, KlingError) as exc:
        log.warning("Kling spend limits in %s are unreadable (%s); only the environment's apply", limits_path(), exc)
        return SpendLimits(where=WHERE)


def save_limits(per_prompt: Any, per_day: Any) -> SpendLimits:
    """Validate and keep the limits (0 or empty: no limit); raises KlingValidationError naming the field."""
    limits = SpendLimits(parse_limit(per_prompt, "per_prompt"), parse_limit(per_day, "per_day"), WHERE)
    path = limits_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    part.write_text(json.dumps({"per_prompt": limits.per_prompt, "per_day": limits.per_day}), encoding="utf-8")
    os.replace(part, path)
    return limits


def node_limits() -> SpendLimits:
    return stored_limits().tightest(SpendLimits.from_env(where=WHERE))


def limits_json() -> dict[str, Any]:
    stored, effective = stored_limits(), node_limits()
    return {"per_prompt": stored.per_prompt, "per_day": stored.per_day,
            "effective": {"per_prompt": effective.per_prompt, "per_day": effective.per_day},
            "spent_today": spent_today(node_ledger())}


# -- estimates and the guard ------------------------------------------------------------------------
def node_estimate(requests: Sequence[RequestBody]) -> PromptEstimate:
    return estimate_requests(requests, ledger=node_ledger(), rate_card=rate_card_from_env())


def on_prompt(json_data: Any) -> Any:
    """ComfyUI's on_prompt hook (it runs in the request that posts a prompt, just before the prompt is
    validated): notes, for each Kling node, the estimate of the prompt's other Kling nodes, so that the
    limit per prompt counts them all. The note is kept under the prompt's own prompt_id (set here, as the
    server would, when the client sent none), which each node's validate_inputs finds in ComfyUI's
    execution context: two prompts posted at once never count each other's nodes."""
    if not isinstance(json_data, dict):
        return json_data
    try:
        # Without a limit nothing is checked, so nothing is estimated either.
        parts = _node_estimates(json_data.get("prompt")) if node_limits().any else {}
    except KlingError as exc:  # a bad rate card or limit: each node's validation says so
        log.warning("Kling cost estimate of the prompt: %s", exc)
        parts = {}
    if len(parts) < 2:
        return json_data  # a single Kling node counts only itself
    if json_data.get("prompt_id") is None:
        json_data["prompt_id"] = str(uuid.uuid4())
    prompt_id = str(json_data["prompt_id"])
    note = _note_prompt(prompt_id, {node_id: tuple(e for other, e in parts.items() if other != node_id)
                                    for node_id in parts})
    _drop_when_answered(prompt_id, note)
    return json_data


def _note_prompt(prompt_id: str, others: dict[str, tuple[CostEstimate, ...]]) -> _PromptNote:
    now = time.monotonic()
    with _lock:
        for stale in [key for key, note in _pending.items() if now - note.noted_at > PENDING_TTL_S]:
            del _pending[stale]
        note = _pending.get(prompt_id)
        if note is None:
            note = _pending[prompt_id] = _PromptNote(others, now)
            return note
        note.posts += 1
        note.ambiguous = True
    log.warning("Kling spend guard: prompt_id %s was posted again before its first post was answered; the "
                "guard refuses the Kling nodes it validates under that id until then", prompt_id)
    return note


def _drop_when_answered(prompt_id: str, note: _PromptNote) -> None:
    """The note lives as long as the request that posted the prompt (validation ends inside it), so that
    memory does not grow; outside a request (no running task) the age limit drops it."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        return
    if task is not None:
        task.add_done_callback(lambda _task: _release(prompt_id, note))


def _release(prompt_id: str, note: _PromptNote) -> None:
    with _lock:
        note.posts -= 1
        if note.posts <= 0 and _pending.get(prompt_id) is note:
            del _pending[prompt_id]


def _note_of(node_id: str | None) -> tuple[_PromptNote | None, str, str]:
    """For a node being validated: the note of its prompt, found by the prompt_id ComfyUI validates it
    under (None outside a validation or when nothing was noted), the node id and the prompt_id."""
    context = get_executing_context()
    if context is None:
        return None, str(node_id), ""
    with _lock:
        note = _pending.get(str(context.prompt_id))
    return note, str(node_id if node_id is not None else context.node_id), str(context.prompt_id)


def _node_estimates(prompt: Any) -> dict[str, CostEstimate]:
    """One task's estimate per Kling node of an API-format prompt (linked values count as unknown)."""
    if not isinstance(prompt, dict):
        return {}
    ledger, card, endpoints, found = node_ledger(), rate_card_from_env(), task_endpoints(), {}
    for node_id, node in prompt.items():
        endpoint = endpoints.get(node.get("class_type")) if isinstance(node, dict) else None
        if endpoint is None:
            continue
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        value = {k: str(v) for k, v in inputs.items() if isinstance(v, (str, int, float))}
        combination = combination_for(endpoint, value.get("model_name", ""), value.get("mode", ""),
                                      value.get("duration", ""), value.get("sound", "off"))
        found[str(node_id)] = estimate_cost(combination, ledger=ledger, rate_card=card)
    return found


def queue_refusal(requests: Sequence[RequestBody], node_id: str | None = None) -> str | None:
    """For validate_inputs: why the guard refuses this node's tasks together with the other Kling nodes of
    the same prompt (see on_prompt), or None; ``node_id`` defaults to the node ComfyUI is validating. An
    image batch counts as one task here; its size is known when the node runs, and
    :func:`check_before_create` counts it then. A bad rate card refuses only while a limit is set
    (the guard cannot count without it); otherwise the node shows its error."""
    limits = node_limits()
    if not limits.any:
        return None
    try:
        own = node_estimate(requests)
    except RateCardError as exc:
        return str(exc)
    note, node, prompt_id = _note_of(node_id)
    if note is not None and note.ambiguous:
        return (f"prompt_id {prompt_id} was posted for two prompts at once, so the spend guard cannot tell their "
                "Kling nodes apart; post each prompt with its own prompt_id (or none)")
    estimate = PromptEstimate(own.parts + (note.others.get(node, ()) if note is not None else ()))
    return spend_refusal(estimate, limits, spent_today(node_ledger()) if limits.per_day is not None else 0.0)


def check_before_create(requests: Sequence[RequestBody]) -> str:
    """At run time, before any create: raises SpendLimitExceeded over a limit; else the text the node
    shows (the estimate, what the guard could not count, a warning when the balance looks too low)."""
    limits = node_limits()
    try:
        estimate = node_estimate(requests)
    except RateCardError as exc:
        if limits.any:
            raise
        log.warning("Kling: %s", exc)
        return str(exc)
    check_spend(estimate, limits, node_ledger())
    lines = [estimate.describe(), guard_note(estimate, limits)]
    if estimate.known_units > 0:
        # A batch reads the balance (free, once a minute at most); a single task uses the last read, so
        # that a re-queue whose video is reused from the ledger sends nothing at all.
        costs = cached_balance(refresh=len(requests) > 1)
        warning = balance_warning(estimate, costs) if costs is not None else ""
        if warning:
            log.warning("Kling: %s", warning)
            lines.append(warning)
    return "\n".join(line for line in lines if line)


def cached_balance(refresh: bool = False) -> AccountCosts | None:
    """The last balance read (within BALANCE_TTL_S); with ``refresh``, read it when it is older."""
    with _lock:
        read_at, costs = _balance
        if costs is not None and time.monotonic() - read_at < BALANCE_TTL_S or not refresh:
            return costs
    try:
        costs = KlingClient(node_credentials()).account_costs()
    except KlingError as exc:
        log.info("Kling balance not read: %s", exc)
        return None
    remember_balance(costs)
    return costs


def remember_balance(costs: AccountCosts) -> None:
    with _lock:
        _balance[:] = [time.monotonic(), costs]


def plan_info(node_type: str, values: Mapping[str, Any]) -> list[str]:
    """The cost lines of the widget plan (``info``): the estimate of one task of the current values,
    the guard's limits, and the last balance read. Never queries Kling (the plan is asked often)."""
    endpoint = task_endpoints().get(node_type)
    if endpoint is None:
        return []
    try:
        card = rate_card_from_env()
    except RateCardError as exc:
        return [str(exc)]
    combination = combination_for(endpoint, str(values.get("model_name") or ""), str(values.get("mode") or ""),
                                  str(values.get("duration") or ""), str(values.get("sound") or "off"),
                                  str(values.get("resolution") or "") or None)
    estimate = estimate_cost(combination, ledger=node_ledger(), rate_card=card)
    lines = [f"{ESTIMATE_LINE}: {estimate.per_task_text()}"]
    limits = node_limits()
    if limits.any:
        parts = [f"{limits.per_prompt:g} units per prompt" if limits.per_prompt is not None else "",
                 f"{limits.per_day:g} per day (spent today: {spent_today(node_ledger()):g})"
                 if limits.per_day is not None else ""]
        line = f"{GUARD_LINE}: " + ", ".join(p for p in parts if p)
        if estimate.units_per_task is None:
            line += "; an unknown cost is not counted against it"
        lines.append(line)
    costs = cached_balance()
    if costs is not None:
        lines.append(f"{BALANCE_LINE}: {describe_balance(costs)}")
    return lines
