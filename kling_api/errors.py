"""Errors a caller can act on: each carries what went wrong and, where one exists, what to do.

Kling answers with a business ``code`` beside the HTTP status; the code (not the status: 429 is
shared by billing and throttling) decides the class and whether a retry makes sense.
"""
from __future__ import annotations

import re
from typing import Any


class KlingError(Exception):
    """Base of every error this library raises."""

    def __init__(self, message: str, *, hint: str = "", task_id: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.task_id = task_id
        super().__init__(self._compose())

    def attach_task_id(self, task_id: str) -> "KlingError":
        """Name the task in an error raised deep in transport, so the user can resume it."""
        if not self.task_id:
            self.task_id = task_id
            self.args = (self._compose(),)
        return self

    def _compose(self) -> str:
        text = self.message
        if self.task_id:
            text += f" (task_id {self.task_id})"
        if self.hint:
            text += f". {self.hint}"
        return text


class KlingValidationError(KlingError, ValueError):
    """Refused locally, before any request: nothing was sent, nothing was billed."""

    def __init__(self, field: str, value: Any, allowed: str, message: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = value if not isinstance(value, str) or len(value) <= 60 else value[:57] + "..."
        super().__init__(message or f"{field}={shown!r} is not accepted; allowed: {allowed}")


class KlingCredentialsError(KlingError):
    """No usable credentials: says where the library looked and how to give them."""


class KlingNetworkError(KlingError):
    """The API could not be reached or the connection broke (after retries)."""


class KlingProtocolError(KlingError):
    """The API answered something this library cannot read (malformed JSON, missing fields)."""


class KlingAPIError(KlingError):
    """An answer from Kling with a non-zero business code."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        http_status: int | None = None,
        request_id: str | None = None,
        task_id: str | None = None,
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.api_message = message
        hint = HINTS.get(code, "")
        text = f"Kling error {code}: {message}"
        if request_id:
            text += f" [request_id {request_id}]"
        super().__init__(text, hint=hint, task_id=task_id)

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class KlingAuthError(KlingAPIError):
    """1000-1004: the key or token was refused."""


class KlingAccountError(KlingAPIError):
    """1100-1103 and 1304: billing, permissions or IP whitelist; retrying will not help."""


class KlingRequestError(KlingAPIError):
    """1200-1203: Kling refused the parameters or the resource does not exist."""


class KlingPolicyError(KlingAPIError):
    """1300-1301: platform or content policy."""


class KlingRateLimitError(KlingAPIError):
    """1302-1303: too fast or too many tasks at once; retried with backoff."""


class KlingServerError(KlingAPIError):
    """5000-5002: Kling's side; retried with backoff."""


class KlingTaskFailed(KlingError):
    """The task ended as ``failed``; ``task_status_msg`` says why (often content moderation)."""

    def __init__(self, task_id: str, task_status_msg: str) -> None:
        self.task_status_msg = task_status_msg
        super().__init__(
            f"Kling task failed: {task_status_msg or 'no reason given'}",
            hint="Change the prompt or image and queue again; a failed task is not charged as a success",
            task_id=task_id,
        )


class KlingTaskNotFound(KlingError):
    """Kling has no task with this id (the new standard answers an empty list for an unknown id)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Kling has no task {task_id!r}",
                         hint="Check the id (and KLING_API_BASE: tasks are per host and account)", task_id=task_id)


class KlingModelDiscontinued(KlingError):
    """Kling switched the model off ("The model '<name>' has been discontinued and is no longer
    available"), at create time or as a task's failure; retrying cannot help, another model can."""

    def __init__(self, model: str, kling_message: str, offered: str, *, task_id: str | None = None) -> None:
        self.model = model
        self.kling_message = kling_message
        super().__init__(f"Kling has discontinued the model {model!r}: {kling_message}",
                         hint=f"Pick a model Kling still runs: {offered}", task_id=task_id)


#: Kling's words when it has switched a model off (live, kling_api.md section 1.4; no page lists them).
_DISCONTINUED = re.compile(r"model\s+'?\"?([\w.\-]+)'?\"?\s+has been discontinued", re.IGNORECASE)


def discontinued_model(message: str) -> str | None:
    """The model named by a "has been discontinued" answer, else None ('' when it names none)."""
    if "discontinued" not in (message or "").lower():
        return None
    match = _DISCONTINUED.search(message)
    return match.group(1) if match else ""


class KlingTimeout(KlingError):
    """Waiting ran out of time; the task may still finish and can be resumed by its task_id."""

    def __init__(self, task_id: str, waited_seconds: float, last_status: str) -> None:
        self.waited_seconds = waited_seconds
        self.last_status = last_status
        super().__init__(
            f"Gave up waiting after {waited_seconds:.0f} s (last status: {last_status})",
            hint="The task is still on Kling's side: resume it with its task_id (Kling Task Result node, "
            "or `python -m kling_api wait TASK_ID`) instead of paying for a new one",
            task_id=task_id,
        )


class KlingCancelled(KlingError):
    """The caller's cancel callback asked to stop; the task itself keeps running on Kling."""

    def __init__(self, task_id: str | None = None) -> None:
        super().__init__("Cancelled while waiting for Kling", task_id=task_id)


class KlingDownloadError(KlingError):
    """The result could not be downloaded intact (after retries); no partial file is left."""


HINTS: dict[int, str] = {
    1000: "Check the API key, or the access key and secret key",
    1001: "No Authorization header was sent: set KLING_API_KEY or KLING_ACCESS_KEY + KLING_SECRET_KEY",
    1002: "The Authorization header is malformed: check that the key was copied whole",
    1003: "The token is not valid yet: check this machine's clock",
    1004: "The token expired: check this machine's clock",
    1100: "Kling reports a problem with the account: check it in Kling's developer console",
    1101: "The account is in arrears: recharge it in Kling's developer console",
    1102: "Resource pack depleted: buy a pack or enable post-paid billing",
    1103: "This key has no permission for this API or model: check the account's permissions",
    1200: "Kling refused the request parameters",
    1201: "Kling refused a parameter: see the message for which",
    1202: "Wrong request method for this endpoint",
    1203: "The requested model or task does not exist",
    1300: "Kling's platform policy refused the request",
    1301: "Kling's content policy refused the prompt or image: change them and try again",
    1302: "Too many requests: slow down",
    1303: "Too many tasks running at once for the account's resource pack: wait or lower the concurrency",
    1304: "Kling's IP whitelist refused this machine: check the whitelist in the developer console",
    5000: "Kling had an internal error: try again later",
    5001: "Kling is temporarily unavailable (maintenance): try again later",
    5002: "Kling timed out internally: try again later",
}

RETRYABLE_CODES = frozenset({1302, 1303, 5000, 5001, 5002})
RESIGN_CODES = frozenset({1003, 1004})


def api_error_for(
    code: int,
    message: str,
    *,
    http_status: int | None = None,
    request_id: str | None = None,
    task_id: str | None = None,
) -> KlingAPIError:
    """The error class that matches a business code."""
    if 1000 <= code <= 1004:
        cls: type[KlingAPIError] = KlingAuthError
    elif 1100 <= code <= 1103 or code == 1304:
        cls = KlingAccountError
    elif 1200 <= code <= 1203:
        cls = KlingRequestError
    elif code in (1300, 1301):
        cls = KlingPolicyError
    elif code in (1302, 1303):
        cls = KlingRateLimitError
    elif 5000 <= code <= 5999:
        cls = KlingServerError
    else:
        cls = KlingAPIError
    return cls(code, message, http_status=http_status, request_id=request_id, task_id=task_id)
