"""Timing and fault switches, changeable while the emulator runs.

Tests flip these on an emulator in another process (``POST /_emulator/config``), the CLI reads them
from ``KLING_EMULATOR_*`` variables, in-process users pass them to the constructor. Counters ("the
next N creates") are consumed one by one, so a test can script "fail twice, then succeed".
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

ENV_PREFIX = "KLING_EMULATOR_"

#: Business code -> HTTP status, reference section 6.1.
SERVER_ERROR_STATUS = {5000: 500, 5001: 503, 5002: 504}
#: Account, policy and throttling refusals of a create (reference section 6.1): code -> (HTTP status,
#: message). ``create_error_code`` picks one for the next ``create_errors`` creates; no task is made.
CREATE_ERRORS = {
    1100: (429, "account exception"),
    1101: (429, "account in arrears"),
    1102: (429, "resource pack exhausted"),
    1103: (403, "no permission for the requested resource"),
    1300: (400, "platform policy triggered"),
    1301: (400, "content security policy triggered"),
    1302: (429, "request rate over limit"),
    1303: (429, "parallel task over resource pack limit"),
    1304: (429, "IP whitelist policy triggered"),
}
#: Kling's words for a model it has switched off, as one client saw them live on 2026-09-20 (kling-v1 on
#: /v1/videos/text2video; reference 1.4 "Discontinued models"). No page lists this message or a code.
DISCONTINUED_MESSAGE = "The model '{name}' has been discontinued and is no longer available."
#: How a discontinued model is answered (the live report did not record which, so both are offered):
#: "create": the create is refused, HTTP 400, code 1201 (the emulator's choice of status and code);
#: "task": the create is accepted and the task fails with the message.
DISCONTINUED_AS = ("create", "task")
#: Models the emulator answers as discontinued unless told otherwise: kling-v1, the model Kling was seen
#: answering so live (2026-09-20). The emulator stands in for Kling, and Kling no longer makes kling-v1
#: videos; an empty model_name reads as kling-v1 (reference section 3), so it is answered the same way.
#: Not kling-v1-6 or kling-v2-1: that they were switched off rests on one client's test, not on a live
#: answer recorded with its request nor on a page (see the README's "Retirements and their evidence").
DEFAULT_DISCONTINUED = "kling-v1"


@dataclass
class EmulatorConfig:
    """Every runtime switch; the field names are the keys of ``POST /_emulator/config``."""

    #: Seconds a new task stays ``submitted``, then ``processing`` (at least until its video is made).
    submitted_seconds: float = 0.5
    processing_seconds: float = 1.5
    #: Cap on the output video's pixel height (None: the capability table's resolution).
    max_height: int | None = None
    #: Sleep this long before answering any API or download request.
    delay_seconds: float = 0.0
    #: The next N creates answer 1303 (parallel task over resource pack limit).
    rate_limit_creates: int = 0
    #: The account's concurrency limit (reference section 6.2): a task holds a slot from ``submitted``
    #: until it ends (succeed or failed); a create while every slot is held answers 1303. 0: no limit.
    concurrency_limit: int = 0
    #: The next N creates answer 1102 (resource pack depleted).
    balance_depleted_creates: int = 0
    #: The next N creates answer 1301 (content security policy triggered): no task is made.
    content_policy_creates: int = 0
    #: The next N creates answer ``create_error_code`` (one of CREATE_ERRORS) and make no task.
    create_errors: int = 0
    create_error_code: int = 1100
    #: The next N creates make the task, then close the socket without answering.
    drop_after_create: int = 0
    #: The next N created tasks fail content moderation; so does any prompt containing the marker.
    moderation_fail_creates: int = 0
    moderation_marker: str = "MODERATION_FAIL"
    #: The next N polls (GETs of a task endpoint: list or query) answer ``server_error_code``.
    server_error_polls: int = 0
    server_error_code: int = 5000
    #: The next N polls answer HTTP 200 with a truncated JSON body.
    malformed_json_polls: int = 0
    #: The next N video downloads close the socket after ``drop_download_after_bytes`` bytes.
    drop_downloads: int = 0
    drop_download_after_bytes: int = 1024
    #: The next N video downloads serve an HTML page instead of the mp4.
    non_mp4_downloads: int = 0
    #: POST the section 5.4 payload to a task's callback_url on each status change.
    callbacks: bool = True
    #: The next N tasks created with sound on get a video without a sound track (a batch with one silent video).
    silent_creates: int = 0
    #: The path of an mp4 served as every new task's video instead of one made from the request
    #: (benchmarks: a known clip). None: made from the request.
    video_file: str | None = None
    #: Models Kling has switched off, comma-separated: legacy model_name values (kling-v1, kling-v2-1)
    #: or new-standard path models (kling-2.5-turbo). Answered with DISCONTINUED_MESSAGE as
    #: ``discontinued_as`` says ("create" or "task"). The value is the whole list (it replaces the default;
    #: "" switches none off). Default: DEFAULT_DISCONTINUED, what Kling answers today.
    discontinued_models: str = DEFAULT_DISCONTINUED
    discontinued_as: str = "create"

    def __post_init__(self) -> None:
        if self.discontinued_as not in DISCONTINUED_AS:
            raise ValueError(f"discontinued_as must be one of {', '.join(DISCONTINUED_AS)}")
        if self.server_error_code not in SERVER_ERROR_STATUS:
            raise ValueError(f"server_error_code must be one of {sorted(SERVER_ERROR_STATUS)}")
        if self.create_error_code not in CREATE_ERRORS:
            raise ValueError(f"create_error_code must be one of {sorted(CREATE_ERRORS)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{f.name} must not be negative")

    def discontinued(self, model_name: str) -> str | None:
        """Kling's message when ``model_name`` is switched off, else None."""
        names = {name.strip() for name in self.discontinued_models.split(",")}
        return DISCONTINUED_MESSAGE.format(name=model_name) if model_name in names - {""} else None


_FIELD_TYPES = {f.name: f.type for f in fields(EmulatorConfig)}


def coerce(name: str, value: Any) -> Any:
    """A JSON or environment value turned into the field's type (strings accepted for all)."""
    if name not in _FIELD_TYPES:
        raise KeyError(name)
    kind = _FIELD_TYPES[name]
    if kind == "str" and isinstance(value, (str, list, tuple)):  # "" is a value here (e.g. no models)
        return value if isinstance(value, str) else ",".join(str(v) for v in value)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if "None" in kind:
            return None
        raise ValueError(f"{name} needs a value")
    if kind == "bool":
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if kind.startswith("str"):
        return str(value)
    if kind.startswith("float"):
        return float(value)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{name} must be an integer")
    return int(value)


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """``KLING_EMULATOR_<FIELD>`` variables as config keys, e.g. KLING_EMULATOR_RATE_LIMIT_CREATES=2."""
    found = {}
    for name in _FIELD_TYPES:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            found[name] = coerce(name, raw)
    return found


class Switches:
    """The live config behind a lock; counters are taken atomically by request handlers."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._initial = EmulatorConfig(**asdict(config))
        self._config = config
        self._lock = threading.Lock()

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (all or nothing); unknown keys raise KeyError, bad values ValueError."""
        with self._lock:
            merged = asdict(self._config)
            for name, value in changes.items():
                merged[name] = coerce(name, value)
            self._config = EmulatorConfig(**merged)
            return asdict(self._config)

    def reset(self) -> dict[str, Any]:
        with self._lock:
            self._config = EmulatorConfig(**asdict(self._initial))
            return asdict(self._config)

    def snapshot(self) -> EmulatorConfig:
        with self._lock:
            return EmulatorConfig(**asdict(self._config))

    def take(self, counter: str) -> bool:
        """True (and one fewer left) when the counter is above zero."""
        with self._lock:
            left = getattr(self._config, counter)
            if left <= 0:
                return False
            setattr(self._config, counter, left - 1)
            return True
