"""What every command that creates tasks shares: the spend options and the generation life they run."""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

from ..costs.guard import SpendLimits, preflight
from ..generation.life import Generation
from ..remote.client import KlingClient
from ..remote.ledger import TaskLedger
from ..rules.request import RequestBody


def add_spend_options(command: argparse.ArgumentParser) -> None:
    """The spend guard's options, for every command that creates tasks."""
    command.add_argument("--max-units", default=None, help="spend guard: refuse when the estimated cost exceeds "
                         "this many units; nothing is sent (default $KLING_MAX_UNITS; 0: no limit)")
    command.add_argument("--max-units-per-day", default=None, help="spend guard: refuse when today's spend "
                         "(ledger) plus the estimate exceeds this (default $KLING_MAX_UNITS_PER_DAY)")


def command_generation(args: argparse.Namespace, client: KlingClient, ledger: TaskLedger | None,
                       write: Callable[[str], None], *, timeout: float | None = None) -> Generation:
    """The generation life of a command: its estimate is written before anything is created, and the
    guard counts against ``--max-units`` / ``--max-units-per-day`` (else the environment's limits) with
    today's spend from the ledger (the command's own, even when it runs with --no-ledger)."""
    def guard(requests: Sequence[RequestBody]) -> str:
        preflight(requests, SpendLimits.from_args(args), ledger=ledger or TaskLedger(args.ledger), write=write)
        return ""

    return Generation(client, ledger, guard, timeout=args.timeout if timeout is None else timeout)
