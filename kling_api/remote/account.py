"""The account's resource packs: ``GET /account/costs`` (reference 1.3), at most one query a second.

Kling asks callers to keep this endpoint at QPS <= 1 (reference 6.2); the throttle is per process,
shared by every client, so the CLI, the ComfyUI route and any node never send two in one second.
The remaining quantity may lag by up to 12 hours at Kling (reference 1.3).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import KlingError

MIN_INTERVAL_S = 1.0
#: Default window of the query: the last 365 days (Kling requires start_time and end_time, in ms).
DEFAULT_WINDOW_S = 365 * 24 * 3600
BALANCE_LAG = "Kling may report the remaining units up to 12 hours late"

_lock = threading.Lock()
_last_sent = [float("-inf")]


def throttle(sleep=time.sleep, clock=time.monotonic) -> float:
    """Block until a second has passed since the previous account query of this process; returns the wait."""
    with _lock:
        wait = max(0.0, _last_sent[0] + MIN_INTERVAL_S - clock())
        if wait:
            sleep(wait)
        _last_sent[0] = clock()
        return wait


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ResourcePack:
    name: str
    pack_id: str
    pack_type: str
    status: str
    total_quantity: float | None
    remaining_quantity: float | None
    effective_time: int = 0
    invalid_time: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> "ResourcePack":
        return cls(name=str(item.get("resource_pack_name", "") or ""),
                   pack_id=str(item.get("resource_pack_id", "") or ""),
                   pack_type=str(item.get("resource_pack_type", "") or ""),
                   status=str(item.get("status", "") or ""),
                   total_quantity=_number(item.get("total_quantity")),
                   remaining_quantity=_number(item.get("remaining_quantity")),
                   effective_time=int(item.get("effective_time") or 0),
                   invalid_time=int(item.get("invalid_time") or 0), raw=item)


@dataclass(frozen=True)
class AccountCosts:
    packs: tuple[ResourcePack, ...]

    @classmethod
    def from_api(cls, data: Any) -> "AccountCosts":
        items = (data or {}).get("resource_pack_subscribe_infos") if isinstance(data, dict) else None
        return cls(packs=tuple(ResourcePack.from_api(i) for i in (items or []) if isinstance(i, dict)))

    @property
    def remaining(self) -> float:
        """Units left in the packs that are online (or of unknown status)."""
        return sum(p.remaining_quantity or 0.0 for p in self.packs if p.status in ("", "online"))

    def to_json(self) -> dict[str, Any]:
        return {"remaining": self.remaining, "packs": [
            {"name": p.name, "id": p.pack_id, "type": p.pack_type, "status": p.status,
             "total_quantity": p.total_quantity, "remaining_quantity": p.remaining_quantity,
             "effective_time": p.effective_time, "invalid_time": p.invalid_time} for p in self.packs]}


def query_params(start_time_ms: int | None = None, end_time_ms: int | None = None,
                 resource_pack_name: str | None = None) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    end = int(end_time_ms) if end_time_ms is not None else now_ms
    start = int(start_time_ms) if start_time_ms is not None else end - DEFAULT_WINDOW_S * 1000
    params: dict[str, Any] = {"start_time": start, "end_time": end}
    if resource_pack_name:
        params["resource_pack_name"] = resource_pack_name
    return params


def describe_balance(costs: AccountCosts) -> str:
    online = [p for p in costs.packs if p.status in ("", "online")]
    if not online:
        return f"No online resource pack (0 units remaining; {BALANCE_LAG})"
    """The balance in words, with Kling's lag (an error message or a status line shows it)."""
    return (f"{costs.remaining:g} units remaining in {len(online)} online resource "
            f"pack{'s' if len(online) != 1 else ''} ({BALANCE_LAG})")


def explain_depleted(error: KlingError, costs: AccountCosts | None) -> KlingError:
    """A 1102 (resource pack depleted or expired) with the balance added to its hint."""
    if costs is not None:
        error.hint = f"{error.hint}. Balance: {describe_balance(costs)}" if error.hint else describe_balance(costs)
        error.args = (error._compose(),)
    return error
