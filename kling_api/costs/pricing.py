"""What tasks will cost before they are sent: an estimate per combination, and a prompt's together.

Where a task's price comes from, first match wins: the user's rate card (``KLING_RATE_CARD``), then the
account's own ledger (the latest ``final_unit_deduction`` Kling reported for the same endpoint, model,
tier, duration and sound), then Kling's price table (units per second x the duration, with the page's
USD list price). The account's own deductions win once they are known because they are what Kling
actually charged it; the card overrides both because the user wrote it. With none of them (older models,
an extend) the estimate is unknown and says so: it is never guessed. A batch of B costs B tasks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterable

from ..remote.ledger import LedgerUnavailable, TaskLedger
from ..rules.endpoints import endpoint_for, endpoint_named
from ..rules.prices import resolution_of
from ..rules.request import RequestBody
from .rates import Combination, RateCard, official_price, request_combination

log = logging.getLogger(__name__)

UNKNOWN = "unknown until the first run of this combination"
#: How the cost lines a node shows (the widget plan's ``info``) begin: the estimate, the guard, the balance.
ESTIMATE_LINE, GUARD_LINE, BALANCE_LINE = "Estimated cost", "Spend guard", "Balance"
#: Where an estimate came from, as the node's short line names it.
FROM_RATE_CARD, FROM_LEDGER, FROM_PRICE_TABLE = "the rate card", "the ledger", "Kling's price table"


def units_text(units: float) -> str:
    return f"{units:g}"


def usd_text(usd: float) -> str:
    """Dollars as the page writes them: cents, and a tenth of a cent where there is one ($0.56, $0.336)."""
    text = f"{usd:.3f}"
    return "$" + (text[:-1] if text.endswith("0") else text)


def deduction_text(deductions: Iterable[str]) -> str:
    """What Kling deducted for finished tasks (their ``final_unit_deduction``), as one line; '' when
    Kling gave none. Values that are not numbers are shown as given."""
    units = [u for u in deductions if u]
    if not units:
        return ""
    try:
        total = units_text(sum(float(u) for u in units))
    except ValueError:
        total = " + ".join(units)
    return f"Kling units deducted: {total} (final_unit_deduction" + (f" of {len(units)} tasks)" if len(units) > 1 else ")")


@dataclass(frozen=True)
class CostEstimate:
    """The cost of ``tasks`` tasks of one combination; ``units_per_task`` None when unknown, ``usd_per_task``
    None where no USD price is known (only Kling's price table has one)."""

    combination: Combination
    tasks: int
    units_per_task: float | None
    #: The whole provenance, for the CLI and refusals (which task, which card file, which table row).
    source: str = ""
    usd_per_task: float | None = None
    #: The source in a few words (FROM_RATE_CARD, FROM_LEDGER, FROM_PRICE_TABLE), for the node's line.
    basis: str = ""

    @property
    def total(self) -> float | None:
        return None if self.units_per_task is None else self.units_per_task * self.tasks

    @property
    def usd_total(self) -> float | None:
        return None if self.usd_per_task is None else self.usd_per_task * self.tasks

    def describe(self) -> str:
        if self.units_per_task is None:
            return f"{ESTIMATE_LINE}: {UNKNOWN} ({self.combination.label()})"
        each = f" ({self.tasks} tasks x {units_text(self.units_per_task)})" if self.tasks != 1 else ""
        usd = f", {usd_text(self.usd_total)} list price" if self.usd_total is not None else ""
        return f"{ESTIMATE_LINE}: {units_text(self.total or 0)} units{each}{usd}, {self.source}"

    def per_task_text(self) -> str:
        """One task's price and where it came from, for the node's cost line (after "Estimated cost: "),
        e.g. "4 units ($0.56) per task, from Kling's price table"; an image endpoint says "per image"."""
        if self.units_per_task is None:
            return UNKNOWN
        usd = f" ({usd_text(self.usd_per_task)})" if self.usd_per_task is not None else ""
        per = " per image (a batch of B images costs B tasks)" \
            if endpoint_named(self.combination.endpoint).per_image else " per task"
        return f"{units_text(self.units_per_task)} units{usd}{per}, from {self.basis}"


def _from_ledger(combination: Combination, tasks: int, ledger: TaskLedger) -> CostEstimate | None:
    """The latest deduction the ledger holds for this combination, None when it holds none."""
    try:
        entry = ledger.latest_deduction(endpoint_for(combination.endpoint, combination.model_name).ledger_family,
                                        combination.ledger_match())
    except LedgerUnavailable as exc:
        log.warning("%s; no cost estimate from it", exc)
        return None
    if entry is None:
        return None
    try:
        units = float(entry.final_unit_deduction)
    except ValueError:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.updated_at))
    return CostEstimate(combination, tasks, units,
                        f"as Kling deducted for task {entry.task_id} ({when}, {combination.label()})",
                        basis=FROM_LEDGER)


def _from_price_table(combination: Combination, tasks: int) -> CostEstimate | None:
    """Kling's list price: units (and USD) per second x the duration; None where the table has no row."""
    price = official_price(combination)
    if price is None:
        return None
    seconds = int(combination.duration)
    usd = None if price.usd_per_second is None else round(price.usd_per_second * seconds, 6)
    per_second = f"{units_text(price.units_per_second)} units/s" + \
        (f", {usd_text(price.usd_per_second)}/s" if price.usd_per_second is not None else "")
    resolution = resolution_of(combination.mode)
    tier = resolution if resolution == combination.mode else f"{resolution} (legacy {combination.mode}, our reading)"
    source = f"from {FROM_PRICE_TABLE} {price.source}: {price.row} at {tier}, {per_second} x {seconds} s"
    return CostEstimate(combination, tasks, round(price.units_per_second * seconds, 6), source, usd,
                        FROM_PRICE_TABLE)


def estimate_cost(combination: Combination, tasks: int = 1, *, ledger: TaskLedger | None = None,
                  rate_card: RateCard | None = None) -> CostEstimate:
    """The rate card's price, else the latest deduction the ledger holds, else Kling's price table."""
    if rate_card is not None:
        rate = rate_card.lookup(combination)
        if rate is not None:
            return CostEstimate(combination, tasks, rate.units, f"from the rate card {rate_card.source}",
                                basis=FROM_RATE_CARD)
    if ledger is not None and ledger.path.exists():
        known = _from_ledger(combination, tasks, ledger)
        if known is not None:
            return known
    return _from_price_table(combination, tasks) or CostEstimate(combination, tasks, None)


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

    @property
    def usd_tasks(self) -> int:
        """How many of the tasks have a USD list price."""
        return sum(part.tasks for part in self.parts if part.usd_per_task is not None)

    @property
    def known_usd(self) -> float:
        """The USD list price of the tasks that have one."""
        return sum(part.usd_total or 0.0 for part in self.parts)

    def describe(self) -> str:
        if len(self.parts) == 1:
            return self.parts[0].describe()
        unknown = sorted({p.combination.label() for p in self.parts if p.units_per_task is None})
        usd = ""
        if self.usd_tasks:
            usd = f", {usd_text(self.known_usd)} list price" + \
                ("" if self.usd_tasks == self.tasks else f" for {self.usd_tasks} of them")
        text = f"{ESTIMATE_LINE} of {self.tasks} tasks: "
        if not self.unknown_tasks:
            return text + f"{units_text(self.known_units)} units{usd}"
        if self.unknown_tasks == self.tasks:
            return text + f"{UNKNOWN} ({'; '.join(unknown)})"
        return (text + f"{units_text(self.known_units)} units known{usd}, plus {self.unknown_tasks} tasks "
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


def is_cost_line(line: str) -> bool:
    """Whether a line of a node's plan ``info`` is one of the pack's cost lines (not a widget rule's)."""
    return line.startswith((ESTIMATE_LINE, GUARD_LINE, BALANCE_LINE))


__all__ = ["BALANCE_LINE", "CostEstimate", "ESTIMATE_LINE", "FROM_LEDGER", "FROM_PRICE_TABLE", "FROM_RATE_CARD",
           "GUARD_LINE", "PromptEstimate", "UNKNOWN", "deduction_text", "estimate_cost", "estimate_requests",
           "is_cost_line", "units_text", "usd_text"]
