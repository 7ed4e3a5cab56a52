"""Kling's storyboard (multi-shot) rules on both standards, written from the pages, not from the client.

* Legacy (reference section 3, DOC-2603): ``multi_shot`` (bool, default false), ``shot_type``
  (``customize`` | ``intelligence``, required when multi_shot is true), ``multi_prompt`` (required for
  customize): ``[{index, prompt, duration}]``, 1-6 shots, each prompt at most 512 characters, each shot at
  least 1 s, the durations summing to the task's ``duration``; ``intelligence`` needs the ``prompt``.
* New standard (kling-3.0-turbo-i2v.md / -t2v.md, kling-omni-3.0-i2v.md / -t2v.md): the prompt's shot syntax
  ``shot n, m, words; shot n, m, words;`` (n: 1-6 in order, m: at least 1 s, the m summing to the total
  duration, words at most 512 characters); on kling-3.0 ``settings.multi_shot`` (default true) false makes
  the prompt plain text ("multi-shot prompts will not produce multi-shot output").

Which models take a storyboard, and the limits, are the capability table's. The emulator's choices (no page
says): a ``multi_prompt`` or ``shot_type`` without ``multi_shot: true`` is refused (a client that forgets the
switch learns at once that its shots would be lost); shots are numbered 1, 2, ... in order; a shot's words
may not be blank; a prompt that starts like the shot syntax on a model that takes no storyboard is plain
text. The 1201 wording is the emulator's, in the form of the other refusals (``field(value) is invalid`` on
the legacy paths, ``field value '...' is invalid`` on the new ones).
"""
from __future__ import annotations

import re
from typing import Any

from ..rules.capabilities import ModelCapabilities
from ..rules.storyboard import storyboard_rules
from .errors import bad_param

SHOT_TYPES = ("customize", "intelligence")
#: A prompt written in the shot syntax starts with "shot <n>,".
_SYNTAX_START = re.compile(r"\s*shot\s+\d+\s*,", re.IGNORECASE)
_SHOT = re.compile(r"\s*shot\s+(\d+)\s*,\s*(\d+)\s*,(.*)", re.IGNORECASE | re.DOTALL)

#: (seconds, words) of each shot.
Shots = tuple[tuple[int, str], ...]


def _limits() -> tuple[int, int, int, int]:
    """(min shots, max shots, max characters of a shot's words, min seconds of a shot): the table's rules."""
    rules = storyboard_rules()
    return rules.min_shots, rules.max_shots, rules.shot_prompt_max_chars, rules.min_shot_seconds


def _given(body: dict[str, Any], name: str) -> bool:
    return body.get(name) not in (None, "", [], {})


def multi_shot_asked(body: dict[str, Any]) -> bool:
    """Whether a legacy body asks for a multi-shot task (then its ``prompt`` may be empty)."""
    return body.get("multi_shot") is True and body.get("shot_type") == "customize"


def check_legacy_storyboard(body: dict[str, Any], model: ModelCapabilities, rules: str, duration: str,
                            prompt: str) -> Shots:
    """The shots of a legacy create (image2video, text2video); () for a single-shot task or
    ``shot_type: intelligence`` (Kling cuts the prompt into shots itself)."""
    multi = body.get("multi_shot")
    if multi is None or multi is False:
        for name in ("shot_type", "multi_prompt"):
            if _given(body, name):
                raise bad_param(f"{name} is only supported when multi_shot is true")
        return ()
    if not isinstance(multi, bool):
        raise bad_param(f"multi_shot({multi}) is invalid")
    if not model.takes_storyboard(rules):
        raise bad_param(f"multi_shot is not supported with model_name({model.name})")
    shot_type = body.get("shot_type")
    if shot_type in (None, ""):
        raise bad_param("shot_type is required when multi_shot is true")
    if shot_type not in SHOT_TYPES:
        raise bad_param(f"shot_type({shot_type}) is invalid")
    if shot_type == "intelligence":
        if not prompt.strip():
            raise bad_param("prompt is required when shot_type is intelligence")
        if _given(body, "multi_prompt"):
            raise bad_param("multi_prompt is only supported when shot_type is customize")
        return ()
    items = body.get("multi_prompt")
    if items in (None, []):
        raise bad_param("multi_prompt is required when shot_type is customize")
    if not isinstance(items, list):
        raise bad_param("multi_prompt is invalid")
    low, high, chars, seconds = _limits()
    if not low <= len(items) <= high:
        raise bad_param(f"multi_prompt must have {low} to {high} items, got {len(items)}")
    shots = []
    for i, item in enumerate(items):
        name = f"multi_prompt[{i}]"
        if not isinstance(item, dict) or not all(k in item for k in ("index", "prompt", "duration")):
            raise bad_param(f"{name} must have index, prompt and duration")
        index = item["index"]
        if isinstance(index, bool) or index != i + 1:
            raise bad_param(f"{name}.index({index}) is invalid: shots are numbered 1, 2, ... in order")
        words = item["prompt"]
        if not isinstance(words, str) or not words.strip():
            raise bad_param(f"{name}.prompt is required")
        if len(words) > chars:
            raise bad_param(f"{name}.prompt cannot be longer than {chars} characters")
        length = item["duration"]  # a string, as the task's duration; an int is read the same way
        text = str(length).strip() if isinstance(length, (str, int)) and not isinstance(length, bool) else ""
        if not text.isdigit() or int(text) < seconds:
            raise bad_param(f"{name}.duration({length}) is invalid: at least {seconds} whole second(s)")
        shots.append((int(text), words))
    return _summed(tuple(shots), duration, "multi_prompt durations sum to {total}s, not duration({duration})")


def check_shot_syntax(field: str, prompt: str, model: ModelCapabilities, rules: str, duration: str,
                      multi_shot: Any) -> Shots:
    """The shots a new-standard prompt (``field``: ``contents[i].text`` or ``prompt``) writes in the shot
    syntax; () for a plain prompt, a model without multi-shot, or ``settings.multi_shot`` false."""
    if not _SYNTAX_START.match(prompt) or not model.takes_storyboard(rules) or multi_shot is False:
        return ()
    parts = prompt.split(";")
    if parts[-1].strip():  # the pages end every shot with ";"; a last shot without one is read the same way
        parts.append("")
    low, high, chars, seconds = _limits()
    shots = []
    for k, part in enumerate(parts[:-1], 1):
        found = _SHOT.fullmatch(part)
        if found is None:
            raise bad_param(f"{field} value is invalid: shot {k} is not written 'shot n, m, words'")
        number, length, words = int(found[1]), int(found[2]), found[3].strip()
        if number != k:
            raise bad_param(f"{field} value is invalid: shot {k} is numbered {number}")
        if length < seconds:
            raise bad_param(f"{field} shot {k} duration value '{length}' is invalid: at least {seconds} second(s)")
        if not words:
            raise bad_param(f"{field} shot {k} words are required")
        if len(words) > chars:
            raise bad_param(f"{field} shot {k} words cannot exceed {chars} characters")
        shots.append((length, words))
    if not low <= len(shots) <= high:
        raise bad_param(f"{field} value is invalid: {len(shots)} shots, supported {low} to {high}")
    return _summed(tuple(shots), duration, field + " shot durations sum to {total}, not settings.duration {duration}")


def _summed(shots: Shots, duration: str, message: str) -> Shots:
    total = sum(seconds for seconds, _ in shots)
    if str(total) != str(duration):
        raise bad_param(message.format(total=total, duration=duration))
    return shots


def shots_prompt(shots: Shots) -> str:
    """The words of all shots, what the task's picture and the moderation switch read."""
    return " ".join(words for _, words in shots)
