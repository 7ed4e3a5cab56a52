"""Storyboards (multi-shot videos): the rules every standard shares, and what a node shows about them.

A storyboard is 1 to 6 :class:`~kling_api.rules.request.Shot` s, each a prompt of at most 512 characters
and whole seconds (at least 1), whose seconds add up to the request's ``duration``; the limits are the
capability table's ``"storyboard"`` entry and a model's row lists the rules endpoints where it takes one
(kling-v3 on the legacy API, kling-3.0 and kling-3.0-turbo on the new one). Kling's pages:
kling-3.0-turbo-i2v.md / -t2v.md and kling-omni-3.0-i2v.md / -t2v.md ("shot n, m, words; shot n, m,
words;": 1-6 shots, each >= 1 s, the sum equal to the total duration, words at most 512 characters).

For a node: :func:`storyboard_models` (which models offer shots), :func:`storyboard_rules` (the limits),
:func:`storyboard_sum` (the sum against the duration, and the words for a mismatch) and
:func:`check_storyboard` (the refusal the queue-time check raises).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import KlingValidationError
from .capabilities import ENDPOINT_WORDS, ModelCapabilities, capability_table
from .request import SHOT_SEPARATOR, SHOT_TEXT_RULE, Shot
from .tooltips import spoken_list

#: What separates the shots in the new standard's shot syntax (the pages: "separated by standard semicolons").
SYNTAX_SEPARATOR = ";"


@dataclass(frozen=True)
class StoryboardRules:
    """The capability table's storyboard limits."""

    min_shots: int = 1
    max_shots: int = 6
    shot_prompt_max_chars: int = 512
    min_shot_seconds: int = 1


def storyboard_rules() -> StoryboardRules:
    """The limits of the capability table's ``"storyboard"`` entry (the defaults for a table without one)."""
    limits = capability_table().storyboard_limits  # parsed once with the table, not re-read per check
    return StoryboardRules(**{name: limits[name] for name in StoryboardRules.__dataclass_fields__ if name in limits})


def storyboard_models(rules: str) -> list[str]:
    """The current models that take a storyboard on the rules endpoint ``rules`` ("image2video", "text2video")."""
    table = capability_table()
    return [name for name in table.model_names if table.models[name].takes_storyboard(rules)]


@dataclass(frozen=True)
class StoryboardSum:
    """The shots' seconds against the request's duration, as a node shows it."""

    seconds: tuple[int, ...]
    #: The request's duration in whole seconds (None when it is not a whole number).
    duration: int | None

    @property
    def total(self) -> int:
        return sum(self.seconds)

    @property
    def matches(self) -> bool:
        return self.duration is not None and self.total == self.duration

    @property
    def mismatch(self) -> str:
        """'' when the shots add up to the duration, else e.g. 'the shots sum to 7 s; duration is 5 s'."""
        if self.matches:
            return ""
        return f"the shots sum to {self.total} s; duration is {self.duration if self.duration is not None else '?'} s"

    @property
    def text(self) -> str:
        """One line: '3 shots: 2 + 3 + 2 = 7 s, the duration' or '... = 7 s; duration is 5 s'."""
        count = f"{len(self.seconds)} shot{'s' if len(self.seconds) != 1 else ''}"
        terms = " + ".join(str(s) for s in self.seconds) or "0"
        tail = ", the duration" if self.matches else f"; duration is {self.duration if self.duration is not None else '?'} s"
        return f"{count}: {terms} = {self.total} s{tail}"


def storyboard_sum(shots: Sequence[Shot], duration: Any) -> StoryboardSum:
    """How the shots' seconds add up against ``duration`` (a request's, e.g. "5" or 5)."""
    text = str(duration).strip()
    return StoryboardSum(seconds=tuple(_seconds(shot) for shot in shots),
                         duration=int(text) if text.isdigit() else None)


def _seconds(shot: Any) -> int:
    seconds = getattr(shot, "duration", 0)
    return seconds if isinstance(seconds, int) and not isinstance(seconds, bool) else 0


def shot_syntax(shots: Sequence[Shot]) -> str:
    """The new standard's prompt for a storyboard, as the pages write it: ``shot 1, 2, words; shot 2, 3, words;``."""
    return " ".join(f"shot {n}, {shot.duration}, {shot.prompt}{SYNTAX_SEPARATOR}" for n, shot in enumerate(shots, 1))


def check_storyboard(caps: ModelCapabilities, rules: str, shots: Sequence[Shot], duration: str, prompt: str, *,
                     prompt_limit: int | None = None) -> tuple[Shot, ...]:
    """The storyboard of a request for ``caps`` on the rules endpoint ``rules``, as a tuple; () when there is
    none. Refused (KlingValidationError naming ``shots``, ``shots[i].duration`` or ``shots[i].prompt``)
    when the model takes none there, when there are too few or too many shots, a shot is too short, not whole
    seconds or its prompt empty or too long, when the seconds do not add up to ``duration``, or when ``prompt``
    is given too (each shot has its own). ``prompt_limit``: the new standard, where the storyboard is written
    into the prompt (no ``;`` inside a shot, and the whole prompt within the model's limit)."""
    shots = tuple(shots or ())
    if not shots:
        return ()
    if not caps.takes_storyboard(rules):
        takers = storyboard_models(rules)
        where = ENDPOINT_WORDS.get(rules, rules)
        raise KlingValidationError("shots", f"{len(shots)} shots", ", ".join(takers) or "no model",
                                   f"shots: {caps.name} takes no storyboard (multi-shot) on {where}; "
                                   f"{spoken_list(takers, 'and') or 'no model'} {'does' if len(takers) == 1 else 'do'}, "
                                   "or remove the shots")
    limits = storyboard_rules()
    if not limits.min_shots <= len(shots) <= limits.max_shots:
        raise KlingValidationError("shots", f"{len(shots)} shots", f"{limits.min_shots} to {limits.max_shots} shots",
                                   f"shots: {len(shots)} shots given; a storyboard has {limits.min_shots} to "
                                   f"{limits.max_shots}")
    for i, shot in enumerate(shots):
        _check_shot(i, shot, limits, syntax=prompt_limit is not None)
    if (prompt or "").strip():
        raise KlingValidationError("prompt", prompt, "empty when shots are given",
                                   "prompt: a storyboard's words go in its shots (each shot has its own prompt); "
                                   "clear the prompt or remove the shots")
    summed = storyboard_sum(shots, duration)
    if not summed.matches:
        raise KlingValidationError("shots", f"{summed.total} s", f"shots adding up to {duration} s",
                                   f"shots: {summed.mismatch} (change a shot or set duration to {summed.total})")
    if prompt_limit is not None and len(shot_syntax(shots)) > prompt_limit:
        length = len(shot_syntax(shots))
        raise KlingValidationError("shots", f"{length} characters", f"at most {prompt_limit} characters in all",
                                   f"shots: written as {caps.name}'s prompt the storyboard has {length} characters; "
                                   f"at most {prompt_limit} are allowed (shorten the shots' prompts)")
    return shots


def _check_shot(i: int, shot: Any, limits: StoryboardRules, *, syntax: bool) -> None:
    field = f"shots[{i}]"
    if not isinstance(shot, Shot):
        raise KlingValidationError(field, shot, "a Shot(duration=whole seconds, prompt=text)")
    seconds = shot.duration
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < limits.min_shot_seconds:
        raise KlingValidationError(f"{field}.duration", seconds, f"whole seconds, at least {limits.min_shot_seconds}",
                                   f"{field}.duration={seconds!r} (shot {i + 1}) is not accepted; a shot lasts whole "
                                   f"seconds, at least {limits.min_shot_seconds}")
    words = shot.prompt
    if not isinstance(words, str) or not words.strip():
        raise KlingValidationError(f"{field}.prompt", words, "a description of the shot",
                                   f"{field}.prompt: shot {i + 1} needs a prompt")
    if len(words) > limits.shot_prompt_max_chars:
        raise KlingValidationError(f"{field}.prompt", f"{len(words)} characters",
                                   f"at most {limits.shot_prompt_max_chars} characters",
                                   f"{field}.prompt (shot {i + 1}) has {len(words)} characters; at most "
                                   f"{limits.shot_prompt_max_chars} are allowed")
    if syntax and SYNTAX_SEPARATOR in words:
        raise KlingValidationError(f"{field}.prompt", words, f"no '{SYNTAX_SEPARATOR}' (it separates the shots)",
                                   f"{field}.prompt (shot {i + 1}) contains '{SYNTAX_SEPARATOR}', which separates "
                                   "the shots in the new API's prompt; use a comma instead")


def parse_shots(value: Any, field: str = "shots") -> tuple[Shot, ...]:
    """A storyboard from a manifest cell or a widget: a list of ``{"duration", "prompt"}`` objects or
    ``SECONDS:TEXT`` strings, a JSON text of such a list, or ``SECONDS:TEXT|SECONDS:TEXT``; '' or None: none.
    Only the form is checked here (the rules are :func:`check_storyboard`'s)."""
    if value in (None, "", []):
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise KlingValidationError(field, value, f"a JSON list of shots ({exc})") from None
        else:
            return tuple(Shot.from_text(part, f"{field}[{i}]") for i, part in enumerate(text.split(SHOT_SEPARATOR)))
    if not isinstance(value, (list, tuple)):
        raise KlingValidationError(field, value, f"a list of shots, or {SHOT_TEXT_RULE} separated by "
                                                 f"'{SHOT_SEPARATOR}'")
    return tuple(item if isinstance(item, Shot) else Shot.from_json(item, f"{field}[{i}]")
                 for i, item in enumerate(value))


def shots_from_lines(text: Any, field: str = "storyboard") -> tuple[Shot, ...]:
    """The node's storyboard widget: one shot per line, ``SECONDS: TEXT`` (the CLI's ``--shot`` form),
    blank lines skipped; '' (or a value from a link that is not text yet): no storyboard. A line not of that
    form is refused naming it (``storyboard line 2``)."""
    if not isinstance(text, str):
        return ()
    lines = [line.strip() for line in text.splitlines()]
    return tuple(Shot.from_text(line, f"{field} line {number}")
                 for number, line in enumerate(lines, 1) if line)


__all__ = ["StoryboardRules", "StoryboardSum", "check_storyboard", "parse_shots", "shot_syntax", "shots_from_lines",
           "storyboard_models", "storyboard_rules", "storyboard_sum"]
