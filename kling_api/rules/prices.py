"""Kling's official per-second video prices (``price_table.json``, from the page kling-pricing-video.md).

Pure data access, read by the cost estimates and by the emulator's billing; it decides nothing about
limits or rate cards (``kling_api.costs`` does).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_TABLE_PATH = Path(__file__).with_name("price_table.json")


@dataclass(frozen=True)
class ListPrice:
    """What one second of a video costs on the official table."""

    units_per_second: float
    usd_per_second: float | None
    #: The page's row, e.g. "Kling 3.0, With Native Audio x No Voice Control".
    row: str
    source: str


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    return json.loads(_TABLE_PATH.read_text(encoding="utf-8"))


def resolution_of(tier: str) -> str:
    """A legacy mode (std/pro/4k) as the table's resolution (720p/1080p/4k); a resolution passes as is."""
    return str(price_table()["legacy_modes"].get(tier, tier))


def list_price(model_name: str, tier: str, audio: bool, *, video_input: bool = False,
               voice: bool = False) -> ListPrice | None:
    """The official price of one second of ``model_name`` at ``tier`` (a resolution, or a legacy mode),
    with or without native audio; None where the table has no such row (older models, 720p with audio
    on 2.6, ...)."""
    table = price_table()
    product = table["models"].get(model_name)
    if product is None:
        return None
    resolution = resolution_of(tier)
    for row in table["rows"]:
        if row["model"] != product or row.get("audio") is None:
            continue
        if bool(row.get("video_input")) != video_input or bool(row.get("voice")) != voice:
            continue
        if row["audio"] != audio and not (product == "Kling 3.0 Turbo"):  # Turbo: always with audio
            continue
        price = row["prices"].get(resolution)
        if price is not None:
            units, usd = price
            return ListPrice(float(units), None if usd is None else float(usd), f"{product}, {row['feature']}",
                             f"{table['source']} (fetched {table['fetched']})")
    return None


__all__ = ["ListPrice", "list_price", "price_table", "resolution_of"]
