"""The spend guard (limits per prompt and per day, checked before anything is sent) and the balance warning.

The guard counts the estimates of :mod:`.pricing`, so a model Kling's price table lists is counted from
its first run on; a task of unknown cost never blocks, but is named.
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from ..errors import KlingError, KlingValidationError
from ..remote.account import BALANCE_LAG, AccountCosts
from ..remote.ledger import LedgerUnavailable, TaskLedger
from ..rules.request import RequestBody
from .pricing import GUARD_LINE, UNKNOWN, PromptEstimate, estimate_requests, units_text
from .rates import rate_card_from_env

log = logging.getLogger(__name__)

MAX_UNITS_ENV = "KLING_MAX_UNITS"
MAX_UNITS_PER_DAY_ENV = "KLING_MAX_UNITS_PER_DAY"


class SpendLimitExceeded(KlingError):
    """A prompt refused by the spend guard before anything was sent."""


def parse_limit(value: Any, name: str) -> float | None:
    """A limit in units: None for unset, empty or 0 (no limit); a clear error for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise KlingValidationError(name, value, "a number of units >= 0 (0 or empty: no limit)")
    return number or None


@dataclass(frozen=True)
class SpendLimits:
    per_prompt: float | None = None
    per_day: float | None = None
    #: Where the user changes them, named in a refusal.
    where: str = f"--max-units / {MAX_UNITS_ENV}, --max-units-per-day / {MAX_UNITS_PER_DAY_ENV}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, per_prompt: Any = None,
                 per_day: Any = None, where: str | None = None) -> "SpendLimits":
        """Explicit values (e.g. command-line options) first, else ``KLING_MAX_UNITS(_PER_DAY)``."""
        env = os.environ if environ is None else environ
        prompt = per_prompt if per_prompt is not None else env.get(MAX_UNITS_ENV)
        day = per_day if per_day is not None else env.get(MAX_UNITS_PER_DAY_ENV)
        return cls(parse_limit(prompt, MAX_UNITS_ENV if per_prompt is None else "--max-units"),
                   parse_limit(day, MAX_UNITS_PER_DAY_ENV if per_day is None else "--max-units-per-day"),
                   where or cls.where)

    @classmethod
    def from_args(cls, args: Any) -> "SpendLimits":
        """The limits of a command line that has ``add_spend_options`` (else the environment's)."""
        return cls.from_env(per_prompt=args.max_units, per_day=args.max_units_per_day)

    def tightest(self, other: "SpendLimits") -> "SpendLimits":
        """Both sets at once: the lower limit of each kind (and where to change either)."""
        def low(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else min(a, b)
        where = self.where if self.where == other.where else f"{self.where}; {other.where}"
        return SpendLimits(low(self.per_prompt, other.per_prompt), low(self.per_day, other.per_day), where)

    @property
    def any(self) -> bool:
        return self.per_prompt is not None or self.per_day is not None


def start_of_today(now: float | None = None) -> float:
    """Local midnight (Unix seconds): the day a daily limit counts."""
    moment = datetime.fromtimestamp(time.time() if now is None else now)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def spent_today(ledger: TaskLedger | None, now: float | None = None) -> float:
    """Units Kling deducted for the tasks submitted today (local time), from the ledger."""
    if ledger is None or not ledger.path.exists():
        return 0.0
    try:
        return ledger.units_since(start_of_today(now))[0]
    except LedgerUnavailable as exc:
        log.warning("%s; today's spend is not known", exc)
        return 0.0


def spend_refusal(estimate: PromptEstimate, limits: SpendLimits, today: float = 0.0) -> str | None:
    """Why the spend guard refuses this prompt, or None. An unknown part never blocks, but is named."""
    unknown = (f" (plus {estimate.unknown_tasks} task(s) whose cost is {UNKNOWN}: the guard cannot count them)"
               if estimate.unknown_tasks else "")
    known = estimate.known_units
    if limits.per_prompt is not None and known > limits.per_prompt:
        return (f"Refused by the Kling spend guard: the estimated cost {units_text(known)} units{unknown} exceeds "
                f"the limit of {units_text(limits.per_prompt)} units per prompt. Nothing was sent. "
                f"{estimate.describe()}. Change the limit in {limits.where}")
    if limits.per_day is not None and today + known > limits.per_day:
        return (f"Refused by the Kling spend guard: today's spend {units_text(today)} units plus this prompt's "
                f"estimate {units_text(known)} units{unknown} exceeds the daily limit of "
                f"{units_text(limits.per_day)} units. Nothing was sent. Change the limit in {limits.where}")
    return None


def guard_note(estimate: PromptEstimate, limits: SpendLimits) -> str:
    """What the node and the CLI say about the guard when it lets a prompt through."""
    if limits.any and estimate.unknown_tasks:
        return f"{GUARD_LINE}: {estimate.unknown_tasks} task(s) of unknown cost are not counted against the limit"
    return ""


def check_spend(estimate: PromptEstimate, limits: SpendLimits, ledger: TaskLedger | None = None) -> None:
    """Raise :class:`SpendLimitExceeded` when the guard refuses; call it before any create."""
    refusal = spend_refusal(estimate, limits, spent_today(ledger) if limits.per_day is not None else 0.0)
    if refusal:
        raise SpendLimitExceeded(refusal)


def preflight(requests: Iterable[RequestBody], limits: SpendLimits, *, ledger: TaskLedger | None = None,
              write: Callable[[str], None] = log.info) -> PromptEstimate:
    """What a command does before it creates anything (one request or a whole manifest): the estimate
    and what the guard cannot count go to ``write``, then the guard raises SpendLimitExceeded over a limit."""
    estimate = estimate_requests(requests, ledger=ledger, rate_card=rate_card_from_env())
    write(estimate.describe())
    note = guard_note(estimate, limits)
    if note:
        write(note)
    check_spend(estimate, limits, ledger)
    return estimate


def balance_warning(estimate: PromptEstimate, costs: AccountCosts) -> str:
    """A warning when the known estimate exceeds the remaining units, else ''."""
    if estimate.known_units > costs.remaining:
        return (f"Warning: the estimated cost {units_text(estimate.known_units)} units exceeds the "
                f"{units_text(costs.remaining)} units remaining ({BALANCE_LAG}); Kling may refuse tasks with 1102")
    return ""


__all__ = ["MAX_UNITS_ENV", "MAX_UNITS_PER_DAY_ENV", "SpendLimitExceeded", "SpendLimits", "balance_warning",
           "check_spend", "guard_note", "parse_limit", "preflight", "spend_refusal", "spent_today", "start_of_today"]
