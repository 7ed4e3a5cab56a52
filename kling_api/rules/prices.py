"""Kling's official per-second video prices (``price_table.json``, from the page kling-pricing-video.md).

Pure data access, in the rules wing so that both the emulator's billing and the library's costs read the
one table; it decides nothing about estimates, limits or rate cards (``kling_api.costs`` does).
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
    #: The page's product and feature, e.g. "Kling 3.0, With Native Audio x No Voice Control".
    row: str
    #: The page and the date it was read, e.g. "kling-pricing-video.md (fetched 2026-09-20)".
    source: str


@lru_cache(maxsize=1)
def price_table() -> dict[str, Any]:
    """The whole table file, read once per process."""
    return json.loads(_TABLE_PATH.read_text(encoding="utf-8"))


def price_rows() -> list[dict[str, Any]]:
    """Every row: model (the page's product name), feature, resolution, audio, units_per_second,
    usd_per_second, source, date (and voice / video_input / motion_control where set)."""
    return list(price_table()["rows"])


def resolution_of(tier: str) -> str:
    """A legacy mode (std/pro/4k) as the table's resolution (720p/1080p/4k); a resolution passes as is."""
    return str(price_table()["legacy_modes"].get(tier, tier))


def product_of(model_name: str) -> str | None:
    """The page's product for an API model name of either standard (kling-v3 and kling-3.0: "Kling 3.0")."""
    return price_table()["models"].get(model_name)


def list_price(model_name: str, tier: str, audio: bool, *, voice: bool = False, video_input: bool = False,
               motion_control: bool = False) -> ListPrice | None:
    """The official price of one second of ``model_name`` at ``tier`` (a resolution, or a legacy mode), with
    or without native audio; None where the table has no such row (older models, 2.6 at 720p with audio)."""
    table = price_table()
    product = product_of(model_name)
    if product is None:
        return None
    if product in table.get("always_audio", ()):
        audio = True
    resolution = resolution_of(tier)
    for row in table["rows"]:
        if (row["model"], row["resolution"]) != (product, resolution):
            continue
        if bool(row.get("motion_control")) != motion_control or bool(row.get("voice")) != voice \
                or bool(row.get("video_input")) != video_input:
            continue
        if row["audio"] is not None and row["audio"] != audio:
            continue
        usd = row.get("usd_per_second")
        return ListPrice(float(row["units_per_second"]), None if usd is None else float(usd),
                         f"{product}, {row['feature']}", f"{row['source']} (fetched {row['date']})")
    return None


__all__ = ["ListPrice", "list_price", "price_rows", "price_table", "product_of", "resolution_of"]
