"""What decides a task's price (its :class:`Combination`) and the two price lists that need no run:
the user's rate card and Kling's own price table.

Kling's page kling-pricing-video.md lists units per second of video (and a USD list price) per model,
resolution and audio; ``kling_api/rules/price_table.json`` holds it (read by :mod:`kling_api.rules.prices`).
Our reading, not the page's: a model costs the same on either API standard (kling-v3 is Kling 3.0, legacy
std is 720p, pro is 1080p, 4k is 4k). A new-standard model's tier is its resolution: it sits in the
combination's ``mode`` slot, as the ledger stores it.

Rate card format (a JSON file named by ``KLING_RATE_CARD``; every key but ``endpoint`` and ``units`` may
be left out, meaning "any")::

    {"rates": [
      {"endpoint": "image2video", "model_name": "kling-v2-5-turbo", "mode": "pro", "duration": "5",
       "sound": "off", "units": 2.5},
      {"endpoint": "image2video", "model_name": "kling-3.0", "mode": "1080p", "units": 4},
      {"endpoint": "video-extend", "units": 1}
    ]}

The entry naming the most keys wins when several match.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import KlingError
from ..rules.capabilities import capability_table
from ..rules.endpoints import ENDPOINTS, VIDEO_EXTEND, Endpoint, endpoint_named
from ..rules.prices import ListPrice, list_price
from ..rules.request import RequestBody

RATE_CARD_ENV = "KLING_RATE_CARD"
#: Endpoint names, as the rate card and the messages spell them: the rules' names (a new-standard path
#: is priced under its rules' name with its model, e.g. image2video + kling-3.0).
ENDPOINT_NAMES = sorted({row.rules for row in ENDPOINTS})
RATE_KEYS = ("endpoint", "model_name", "mode", "duration", "sound")


class RateCardError(KlingError):
    """The rate card file cannot be used; says which file, which entry, which key and what is allowed."""


@dataclass(frozen=True)
class Combination:
    """What decides a task's price: endpoint (rules name), model, tier (a legacy model's mode, a
    new-standard model's resolution), duration, sound (on/off). An extend inherits its source's model
    and mode, so only its endpoint counts."""

    endpoint: str
    model_name: str = ""
    mode: str = ""
    duration: str = ""
    sound: str = "off"

    def ledger_match(self) -> dict[str, str]:
        """The ledger columns an earlier task of this combination has (its mode column holds the tier)."""
        if self.endpoint == VIDEO_EXTEND.name:
            return {}
        return {"model_name": self.model_name, "mode": self.mode, "duration": self.duration, "sound": self.sound}

    def label(self) -> str:
        parts = [self.endpoint, self.model_name, self.mode, f"{self.duration} s" if self.duration else ""]
        return " ".join(p for p in parts if p) + (" with sound" if self.sound == "on" else "")


def combination_for(endpoint: Endpoint | str, model_name: str = "", mode: str | None = "", duration: Any = "",
                    sound: str | None = None, resolution: str | None = None) -> Combination:
    """The combination as the request body will carry it: a new-standard model's tier is its resolution
    (a legacy mode given instead stands for it; none: the model's default), a model without a mode
    choice has no mode, a model
    without a sound switch has sound off (the body has no such field; kling-3.0-turbo's price table row
    is the audio one all the same)."""
    short = endpoint_named(endpoint).rules
    if short == VIDEO_EXTEND.name:
        return Combination(short)
    caps = capability_table().get(model_name or "")
    tier = mode or ""
    if caps is not None:
        fields = caps.tier_fields(mode or None, resolution or None)
        if caps.is_new_standard:  # none given: the page's default, as the validation picks it
            tier = caps.effective_mode(fields["resolution"])
        else:
            tier = (fields["mode"] or "") if caps.has_mode_choice else ""
    on = sound == "on" and (caps is None or bool(caps.allowed_combos("sound")))
    return Combination(short, model_name or "", tier, str(duration or ""), "on" if on else "off")


def request_combination(request: RequestBody) -> Combination:
    """The combination of a (validated or not) request dataclass."""
    return combination_for(request.endpoint, getattr(request, "model_name", ""), getattr(request, "mode", ""),
                           getattr(request, "duration", ""), getattr(request, "sound", None),
                           getattr(request, "resolution", None))


def official_price(combination: Combination) -> ListPrice | None:
    """Kling's list price of one second of this combination, None where the table has no row (models
    older than 2.5 Turbo, the master models, an extend) or the duration is not whole seconds."""
    if combination.endpoint == VIDEO_EXTEND.name or not combination.mode or not combination.duration.isdigit():
        return None
    return list_price(combination.model_name, combination.mode, combination.sound == "on")


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


def rate_card_tiers() -> list[str]:
    """What a card's ``mode`` may be: every legacy mode, then every new-standard resolution, of the table."""
    found: list[str] = []
    for attribute in ("modes", "resolutions"):
        for caps in capability_table().models.values():
            found += [tier for tier in getattr(caps, attribute) if tier not in found]
    return found


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
                                     "mode": rate_card_tiers(), "sound": ["on", "off"]}
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


__all__ = ["Combination", "ENDPOINT_NAMES", "RATE_CARD_ENV", "RATE_KEYS", "Rate", "RateCard", "RateCardError",
           "combination_for", "official_price", "rate_card_from_env", "rate_card_tiers", "request_combination"]
