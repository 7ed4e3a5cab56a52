"""What a generation will cost before it is sent, a spend guard, and the balance in words.

Kling publishes no machine-readable price table, so an estimate comes from the user's own account:
the latest ``final_unit_deduction`` the ledger recorded for the same endpoint, model, mode, duration
and sound. A rate card (a JSON file named by ``KLING_RATE_CARD``) overrides it. With neither, the
estimate is unknown and says so; it is never guessed. A batch of B costs B tasks.

Rate card format (every key but ``endpoint`` and ``units`` may be left out, meaning "any")::

    {"rates": [
      {"endpoint": "image2video", "model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5",
       "sound": "off", "units": 2.5},
      {"endpoint": "video-extend", "units": 1}
    ]}

The entry naming the most keys wins when several match.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..remote.account import BALANCE_LAG, AccountCosts
from ..rules.capabilities import capability_table
from ..errors import KlingError, KlingValidationError
from ..remote.ledger import LedgerUnavailable, TaskLedger
from ..rules.endpoints import ENDPOINTS, VIDEO_EXTEND, Endpoint, endpoint_for, endpoint_named
from ..rules.request import RequestBody

log = logging.getLogger(__name__)

RATE_CARD_ENV = "KLING_RATE_CARD"
MAX_UNITS_ENV = "KLING_MAX_UNITS"
MAX_UNITS_PER_DAY_ENV = "KLING_MAX_UNITS_PER_DAY"
UNKNOWN = "unknown until the first run of this combination"
#: How the cost lines a node shows (the widget plan's ``info``) begin: the estimate, the guard, the balance.
ESTIMATE_LINE, GUARD_LINE, BALANCE_LINE = "Estimated cost", "Spend guard", "Balance"
#: Endpoint names, as the rate card and the messages spell them: the rules' names (a new-standard path
#: is priced under its rules' name with its model, e.g. image2video + kling-3.0).
ENDPOINT_NAMES = sorted({row.rules for row in ENDPOINTS})
RATE_KEYS = ("endpoint", "model_name", "mode", "duration", "sound")


class RateCardError(KlingError):
    """The rate card file cannot be used; says which file, which entry, which key and what is allowed."""


class SpendLimitExceeded(KlingError):
    """A prompt refused by the spend guard before anything was sent."""


def _short(endpoint: Endpoint | str) -> str:
    """The endpoint's rules name, however it is given (row, name, path or ledger family)."""
    return endpoint_named(endpoint).rules


@dataclass(frozen=True)
class Combination:
    """What decides a task's price: endpoint (short name), model, mode, duration, sound (on/off).
    An extend inherits its source's model and mode, so only its endpoint counts."""

    endpoint: str
    model_name: str = ""
    mode: str = ""
    duration: str = ""
    sound: str = "off"

    def ledger_match(self) -> dict[str, str]:
        if self.endpoint == VIDEO_EXTEND.name:
            return {}
        return {"model_name": self.model_name, "mode": self.mode, "duration": self.duration, "sound": self.sound}

    def label(self) -> str:
        parts = [self.endpoint, self.model_name, self.mode, f"{self.duration} s" if self.duration else ""]
        return " ".join(p for p in parts if p) + (" with sound" if self.sound == "on" else "")


def combination_for(endpoint: Endpoint | str, model_name: str = "", mode: str | None = "", duration: Any = "",
                    sound: str | None = None) -> Combination:
    """The combination as the request body will carry it: a model without a mode choice has no mode,
    a model without sound has sound off (the validation leaves both out of the body)."""
    short = _short(endpoint)
    if short == VIDEO_EXTEND.name:
        return Combination(short)
    caps = capability_table().get(model_name or "")
    if caps is not None and not caps.has_mode_choice:
        mode = ""
    on = sound == "on" and (caps is None or bool(caps.allowed_combos("sound")))
    return Combination(short, model_name or "", mode or "", str(duration or ""), "on" if on else "off")


def request_combination(request: RequestBody) -> Combination:
    """The combination of a (validated or not) request dataclass."""
    return combination_for(request.endpoint, getattr(request, "model_name", ""), getattr(request, "mode", ""),
                           getattr(request, "duration", ""), getattr(request, "sound", None))


# -- rate card ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    units: float
    endpoint: str
    model_name: str | None = None
    mode: str | None = None
    duration: str | None = None
    sound: str | None = None

    def matches(self, combination: Combination) -> bool:
        return all(getattr(self, key) in (None, getattr(combination, key)) for key in RATE_KEYS)

    @property
    def specificity(self) -> int:
        return sum(getattr(self, key) is not None for key in RATE_KEYS)


@dataclass(frozen=True)
class RateCard:
    source: str
    rates: tuple[Rate, ...]

    def lookup(self, combination: Combination) -> Rate | None:
        matching = [rate for rate in self.rates if rate.matches(combination)]
        return max(matching, key=lambda rate: rate.specificity) if matching else None

    @classmethod
    def from_json(cls, data: Any, source: str) -> "RateCard":
        if not isinstance(data, dict) or not isinstance(data.get("rates"), list):
            raise RateCardError(f"Rate card {source}: expected a JSON object with a \"rates\" list",
                                hint=f"for example {{\"rates\": [{_EXAMPLE}]}}")
        unknown = sorted(set(data) - {"rates", "comment"})
        if unknown:
            raise RateCardError(f"Rate card {source}: unknown key(s) {', '.join(unknown)}; allowed: rates, comment")
        return cls(source, tuple(_parse_rate(entry, f"Rate card {source}, rates[{i}]")
                                 for i, entry in enumerate(data["rates"])))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "RateCard":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RateCardError(f"Rate card {path} cannot be read ({exc.strerror or exc})",
                                hint=f"fix or unset {RATE_CARD_ENV}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RateCardError(f"Rate card {path} is not valid JSON ({exc})") from None
        return cls.from_json(data, str(path))


_EXAMPLE = ('{"endpoint": "image2video", "model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5", '
            '"sound": "off", "units": 2.5}')


def _parse_rate(entry: Any, where: str) -> Rate:
    if not isinstance(entry, dict):
        raise RateCardError(f"{where}: expected an object like {_EXAMPLE}, got {json.dumps(entry)}")
    unknown = sorted(set(entry) - set(RATE_KEYS) - {"units", "comment"})
    if unknown:
        raise RateCardError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(RATE_KEYS)}, units, comment")
    units = entry.get("units")
    if isinstance(units, bool) or not isinstance(units, (int, float)) or not math.isfinite(units) or units < 0:
        raise RateCardError(f"{where}: units={json.dumps(units)} is not allowed; allowed: a number >= 0")
    allowed: dict[str, list[str]] = {"endpoint": ENDPOINT_NAMES,
                                     "model_name": capability_table().all_model_names,
                                     "mode": ["std", "pro"], "sound": ["on", "off"]}
    if "endpoint" not in entry:
        raise RateCardError(f"{where}: \"endpoint\" is missing; allowed: {', '.join(allowed['endpoint'])}")
    values: dict[str, str] = {}
    for key in RATE_KEYS:
        if key not in entry:
            continue
        value = entry[key]
        if key == "duration" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        choices = allowed.get(key)
        valid = isinstance(value, str) and (value in choices if choices else value.isdigit())
        if not valid:
            what = ", ".join(choices) if choices else "whole seconds, e.g. \"5\""
            raise RateCardError(f"{where}: {key}={json.dumps(value)} is not allowed; allowed: {what}")
        values[key] = value
    return Rate(units=float(units), **values)


_card_cache: dict[tuple[str, float], RateCard] = {}


def rate_card_from_env(environ: Mapping[str, str] | None = None) -> RateCard | None:
    """The card named by ``KLING_RATE_CARD`` (re-read when the file changes), None when unset."""
    path = (os.environ if environ is None else environ).get(RATE_CARD_ENV, "").strip()
    if not path:
        return None
    try:
        key = (path, Path(path).stat().st_mtime)
    except OSError:
        return RateCard.load(path)  # raises the clear error
    if key not in _card_cache:
        _card_cache.clear()
        _card_cache[key] = RateCard.load(path)
    return _card_cache[key]


# -- estimates ----------------------------------------------------------------------------------
def _units_text(units: float) -> str:
    return f"{units:g}"


def deduction_text(deductions: Iterable[str]) -> str:
    """What Kling deducted for finished tasks (their ``final_unit_deduction``), as one line; '' when
    Kling gave none. Values that are not numbers are shown as given."""
    units = [u for u in deductions if u]
    if not units:
        return ""
    try:
        total = _units_text(sum(float(u) for u in units))
    except ValueError:
        total = " + ".join(units)
    return f"Kling units deducted: {total} (final_unit_deduction" + (f" of {len(units)} tasks)" if len(units) > 1 else ")")


@dataclass(frozen=True)
class CostEstimate:
    """The cost of ``tasks`` tasks of one combination; ``units_per_task`` None when unknown."""

    combination: Combination
    tasks: int
    units_per_task: float | None
    source: str = ""

    @property
    def total(self) -> float | None:
        return None if self.units_per_task is None else self.units_per_task * self.tasks

    def describe(self) -> str:
        if self.units_per_task is None:
            return f"{ESTIMATE_LINE}: {UNKNOWN} ({self.combination.label()})"
        each = f" ({self.tasks} tasks x {_units_text(self.units_per_task)})" if self.tasks != 1 else ""
        return f"{ESTIMATE_LINE}: {_units_text(self.total or 0)} units{each}, {self.source}"


def estimate_cost(combination: Combination, tasks: int = 1, *, ledger: TaskLedger | None = None,
                  rate_card: RateCard | None = None) -> CostEstimate:
    """The rate card's price, else the latest deduction the ledger holds for this combination."""
    if rate_card is not None:
        rate = rate_card.lookup(combination)
        if rate is not None:
            return CostEstimate(combination, tasks, rate.units, f"from the rate card {rate_card.source}")
    if ledger is not None and ledger.path.exists():
        try:
            entry = ledger.latest_deduction(endpoint_for(combination.endpoint, combination.model_name).ledger_family,
                                            combination.ledger_match())
        except LedgerUnavailable as exc:
            log.warning("%s; no cost estimate from it", exc)
            entry = None
        if entry is not None:
            try:
                units = float(entry.final_unit_deduction)
            except ValueError:
                units = None
            if units is not None:
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.updated_at))
                return CostEstimate(combination, tasks, units,
                                    f"as Kling deducted for task {entry.task_id} ({when}, {combination.label()})")
    return CostEstimate(combination, tasks, None)


@dataclass(frozen=True)
class PromptEstimate:
    """Several estimates together (a node's batch, a whole manifest): the known part and what is unknown."""

    parts: tuple[CostEstimate, ...]

    @property
    def known_units(self) -> float:
        return sum(part.total or 0.0 for part in self.parts)

    @property
    def unknown_tasks(self) -> int:
        return sum(part.tasks for part in self.parts if part.units_per_task is None)

    @property
    def tasks(self) -> int:
        return sum(part.tasks for part in self.parts)

    @property
    def total(self) -> float | None:
        """None while any part is unknown."""
        return None if self.unknown_tasks else self.known_units

    def describe(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0].describe()
        unknown = sorted({p.combination.label() for p in self.parts if p.units_per_task is None})
        text = f"{ESTIMATE_LINE} of {self.tasks} tasks: "
        if not self.unknown_tasks:
            return text + f"{_units_text(self.known_units)} units"
        if self.unknown_tasks == self.tasks:
            return text + f"{UNKNOWN} ({'; '.join(unknown)})"
        return (text + f"{_units_text(self.known_units)} units known, plus {self.unknown_tasks} tasks "
                f"{UNKNOWN} ({'; '.join(unknown)})")


def estimate_requests(requests: Iterable[RequestBody], *, ledger: TaskLedger | None = None,
                      rate_card: RateCard | None = None) -> PromptEstimate:
    """The estimate of a list of requests (one task each), grouped by combination: what ``batch``
    prints for a whole manifest before it creates anything."""
    counts: dict[Combination, int] = {}
    for request in requests:
        combination = request_combination(request)
        counts[combination] = counts.get(combination, 0) + 1
    return PromptEstimate(tuple(estimate_cost(c, n, ledger=ledger, rate_card=rate_card) for c, n in counts.items()))


# -- spend guard --------------------------------------------------------------------------------
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
        """The limits of a command line that has :func:`add_spend_options` (else the environment's)."""
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
        return (f"Refused by the Kling spend guard: the estimated cost {_units_text(known)} units{unknown} exceeds "
                f"the limit of {_units_text(limits.per_prompt)} units per prompt. Nothing was sent. "
                f"{estimate.describe()}. Change the limit in {limits.where}")
    if limits.per_day is not None and today + known > limits.per_day:
        return (f"Refused by the Kling spend guard: today's spend {_units_text(today)} units plus this prompt's "
                f"estimate {_units_text(known)} units{unknown} exceeds the daily limit of "
                f"{_units_text(limits.per_day)} units. Nothing was sent. Change the limit in {limits.where}")
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


def is_cost_line(line: str) -> bool:
    """Whether a line of a node's plan ``info`` is one of the pack's cost lines (not a widget rule's)."""
    return line.startswith((ESTIMATE_LINE, GUARD_LINE, BALANCE_LINE))


# -- balance ------------------------------------------------------------------------------------
def balance_warning(estimate: PromptEstimate, costs: AccountCosts) -> str:
    """A warning when the known estimate exceeds the remaining units, else ''."""
    if estimate.known_units > costs.remaining:
        return (f"Warning: the estimated cost {_units_text(estimate.known_units)} units exceeds the "
                f"{_units_text(costs.remaining)} units remaining ({BALANCE_LAG}); Kling may refuse tasks with 1102")
    return ""


__all__ = ["Combination", "CostEstimate", "PromptEstimate", "RateCard", "RateCardError", "SpendLimits",
           "SpendLimitExceeded", "combination_for", "request_combination", "estimate_cost", "estimate_requests",
           "rate_card_from_env", "spend_refusal", "check_spend", "preflight", "deduction_text", "spent_today",
           "balance_warning", "guard_note", "parse_limit", "is_cost_line", "UNKNOWN", "RATE_CARD_ENV", "MAX_UNITS_ENV",
           "MAX_UNITS_PER_DAY_ENV"]
