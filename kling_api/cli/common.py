"""What every command that creates tasks shares: the spend options and the generation life they run."""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

from ..costs.guard import SpendLimits, preflight
from ..errors import KlingValidationError
from ..generation.life import Generation
from ..remote.client import KlingClient
from ..remote.ledger import TaskLedger
from ..rules.capabilities import LEGACY_MODE_RESOLUTIONS, RESOLUTION_MODES, capability_table
from ..rules.request import RequestBody


def add_spend_options(command: argparse.ArgumentParser) -> None:
    """The spend guard's options, for every command that creates tasks."""
    command.add_argument("--max-units", default=None, help="spend guard: refuse when the estimated cost exceeds "
                         "this many units; nothing is sent (default $KLING_MAX_UNITS; 0: no limit)")
    command.add_argument("--max-units-per-day", default=None, help="spend guard: refuse when today's spend "
                         "(ledger) plus the estimate exceeds this (default $KLING_MAX_UNITS_PER_DAY)")


def tier_fields(model: str, mode: str | None, resolution: str | None, *,
                resolution_field: str = "--resolution", mode_field: str = "--mode") -> dict[str, str | None]:
    """The request's ``mode`` / ``resolution`` from either spelling, so that one script or manifest works
    for every model: a new-API model takes the resolution (a legacy mode stands for its resolution); on a
    legacy model a resolution means its mode (720p std, 1080p pro, 4k 4k). A legacy mode and resolution
    that disagree are refused; the rest is validation's (an unknown model keeps the mode as given)."""
    caps = capability_table().get(model)
    if caps is None:
        return {"mode": mode or "std"}
    tier = caps.tier_fields(mode, resolution)
    if mode and resolution and not caps.is_new_standard and tier["mode"] != RESOLUTION_MODES.get(resolution):
        raise KlingValidationError(resolution_field, resolution, f"the resolution of {mode_field} {mode} "
                                   f"({LEGACY_MODE_RESOLUTIONS.get(mode, '?')}), or leave one of them out")
    return tier


def command_generation(args: argparse.Namespace, client: KlingClient, ledger: TaskLedger | None,
                       write: Callable[[str], None], *, timeout: float | None = None) -> Generation:
    """The generation life of a command: its estimate is written before anything is created, and the
    guard counts against ``--max-units`` / ``--max-units-per-day`` (else the environment's limits) with
    today's spend from the ledger (the command's own, even when it runs with --no-ledger)."""
    def guard(requests: Sequence[RequestBody]) -> str:
        preflight(requests, SpendLimits.from_args(args), ledger=ledger or TaskLedger(args.ledger), write=write)
        return ""

    return Generation(client, ledger, guard, timeout=args.timeout if timeout is None else timeout)
