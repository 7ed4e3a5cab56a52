"""The parts of the nodes' tooltips that state a rule of the capability table, written from the table.

A tooltip that lists by hand which models take sound or which durations exist drifts the day a row
changes; these phrases are built from the same table validation reads. The node schemas use them, and
locales/en/nodeDefs.json is generated from the schemas (scripts/make_locale.py).
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from .capabilities import NO_MODE, ModelCapabilities, capability_table


def spoken_list(items: Iterable[str], last: str = "or") -> str:
    """'a', 'a or b', 'a, b or c'."""
    items = list(items)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def durations_span(durations: Iterable[str]) -> str:
    """'5 or 10', '3-15' (a run of more than three whole seconds)."""
    values = list(durations)
    numbers = [int(d) for d in values if d.isdigit()]
    if len(values) > 3 and len(numbers) == len(values) and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{values[0]}-{values[-1]}"
    return spoken_list(values)


def _models(names: Iterable[str] | None) -> list[ModelCapabilities]:
    table = capability_table()
    return [table.get(name) for name in (table.model_names if names is None else names) if table.get(name)]


def durations_text(models: Iterable[str] | None = None) -> str:
    """'5 or 10 on most models; 3-15 on kling-v3', or '5 or 10' when every model makes the same lengths."""
    rows = _models(models)
    groups = Counter(caps.durations for caps in rows)
    if len(groups) == 1:
        return durations_span(next(iter(groups)))
    common = groups.most_common(1)[0][0]
    others: dict[tuple[str, ...], list[str]] = {}
    for caps in rows:
        if caps.durations != common:
            others.setdefault(caps.durations, []).append(caps.name)
    return "; ".join([f"{durations_span(common)} on most models",
                      *(f"{durations_span(span)} on {', '.join(names)}" for span, names in others.items())])


def _where_on(caps: ModelCapabilities, feature: str) -> str:
    """Where one model takes ``feature``: 'kling-v3', 'kling-v2-6 pro', 'kling-v1 5 s', 'kling-v1-5 pro 10 s'."""
    combos = caps.allowed_combos(feature)
    modes = caps.tiers
    if len(combos) == len(modes) * len(caps.durations):
        return caps.name
    by_mode = {mode: [d for m, d in combos if m == mode] for mode in modes}
    used = {mode: durations for mode, durations in by_mode.items() if durations}
    if all(list(durations) == list(caps.durations) for durations in used.values()):
        return f"{caps.name} {spoken_list(used)}"
    if len(used) == len(modes) and len({tuple(d) for d in used.values()}) == 1:
        return f"{caps.name} {durations_span(next(iter(used.values())))} s"
    parts = [f"{'' if mode == NO_MODE else mode + ' '}{durations_span(durations)} s" for mode, durations in used.items()]
    return f"{caps.name} {spoken_list(parts)}"


def where_allowed(feature: str, models: Iterable[str] | None = None) -> str:
    """The models (and their modes/durations) that take ``feature``, e.g. 'kling-v2-6 pro, kling-v3'."""
    return ", ".join(_where_on(caps, feature) for caps in _models(models) if caps.allowed_combos(feature)) or "no model"


def models_with(flag: str, models: Iterable[str] | None = None, wanted: bool = True) -> str:
    """The models whose row sets ``flag`` (e.g. cfg_scale, image_tail_requires_silence) to ``wanted``."""
    return spoken_list([caps.name for caps in _models(models) if bool(getattr(caps, flag)) == wanted], "and")


def models_without_mode(models: Iterable[str] | None = None) -> str:
    return spoken_list([caps.name for caps in _models(models) if not caps.has_mode_choice], "and")


def tier_choices(models: Iterable[str] | None, attribute: str) -> list[str]:
    """Every mode (``attribute`` "modes") or resolution ("resolutions") of ``models``, in table order."""
    return list(dict.fromkeys(t for caps in _models(models) for t in getattr(caps, attribute)))


def partial_tiers_text(models: Iterable[str] | None, attribute: str) -> str:
    """'4k on kling-v3 only': the modes or resolutions that only some of ``models`` (those with a choice) offer."""
    rows = [caps for caps in _models(models) if getattr(caps, attribute)]
    parts = []
    for tier in tier_choices([caps.name for caps in rows], attribute):
        names = [caps.name for caps in rows if tier in getattr(caps, attribute)]
        if len(names) < len(rows):
            parts.append(f"{tier} on {spoken_list(names)} only")
    return "; ".join(parts)


def camera_types_text(models: Iterable[str] | None = None) -> str:
    """The camera types the models that take camera_control offer, e.g. 'simple'."""
    types: list[str] = []
    for caps in _models(models):
        if caps.allowed_combos("camera_control"):
            types += [t for t in caps.camera_types if t not in types]
    return spoken_list(types) or "none"
