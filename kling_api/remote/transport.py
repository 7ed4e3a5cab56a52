"""One HTTP request to Kling, with the retry policy decided by Kling's business code.

Retried: 1302, 1303, 5000-5002 and connection errors (exponential backoff with jitter,
Retry-After honoured); 1003/1004 re-sign the token once; everything else raises at once.
Creates are never blindly re-sent: the caller passes ``before_retry`` to look the task up first.
"""
from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import requests

from .auth import Credentials
from ..errors import (
    RESIGN_CODES,
    RETRYABLE_CODES,
    discontinued_model,
    KlingCancelled,
    KlingNetworkError,
    KlingProtocolError,
    api_error_for,
)

log = logging.getLogger(__name__)

CancelCheck = Callable[[], bool]
#: Seconds between cancel checks while sleeping.
CANCEL_SLICE_S = 0.2


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.25

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Backoff before retry number ``attempt`` (1-based); Retry-After wins when it is longer."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay * 4))
        return max(0.0, delay)


def sleep_unless_cancelled(seconds: float, should_cancel: CancelCheck | None,
                           sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep in short slices so that a cancel is noticed within a fraction of a second."""
    deadline = time.monotonic() + seconds
    while True:
        if should_cancel is not None and should_cancel():
            raise KlingCancelled()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sleep(min(CANCEL_SLICE_S, left))


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Transport:
    """Sends JSON requests to one Kling host with one set of credentials."""

    def __init__(self, credentials: Credentials, base_url: str, *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (10.0, 60.0), retry: RetryPolicy | None = None) -> None:
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r}, credentials={self.credentials!r})"

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                params: dict[str, Any] | None = None, should_cancel: CancelCheck | None = None,
                before_retry: Callable[[], Any] | None = None) -> Any:
        """The ``data`` of a code-0 answer. ``before_retry`` may return a value to stop retrying with."""
        resigned = False
        attempt = 0
        while True:
            attempt += 1
            if should_cancel is not None and should_cancel():
                raise KlingCancelled()
            response = None
            try:
                response = self.session.request(
                    method, self.base_url + path, json=json, params=params, timeout=self.timeout,
                    headers={"Authorization": self.credentials.authorization_header(),
                             "Content-Type": "application/json", "Accept": "application/json"},
                )
                body = self._parse(response)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure: Exception = KlingNetworkError(f"Could not reach Kling at {self.base_url} "
                                                       f"({type(exc).__name__}) for {method} {path}",
                                                       hint="Check the network connection or KLING_API_BASE")
                retryable = True
            except KlingProtocolError as exc:
                # A garbled answer from a healthy-looking server is transient; a 4xx page (wrong host) is not.
                failure, retryable = exc, response is not None and (response.status_code >= 500
                                                                    or response.status_code == 200)
            else:
                code = body.get("code")
                if code == 0:
                    return body.get("data")
                request_id = body.get("request_id")
                failure = api_error_for(int(code), str(body.get("message", "")), http_status=response.status_code,
                                        request_id=str(request_id) if request_id else None)
                if code in RESIGN_CODES and not resigned and self.credentials.invalidate_token():
                    resigned = True
                    log.info("Kling token refused (code %s); signing a new one and retrying once", code)
                    attempt -= 1
                    continue
                # A switched-off model stays off: never retried, whatever the code.
                retryable = code in RETRYABLE_CODES and discontinued_model(failure.api_message) is None
            if not retryable or attempt >= self.retry.attempts:
                raise failure
            delay = self.retry.delay(attempt, _retry_after(response))
            log.warning("Kling %s %s failed (%s); retry %d/%d in %.1fs", method, path, failure,
                        attempt, self.retry.attempts - 1, delay)
            sleep_unless_cancelled(delay, should_cancel)
            if before_retry is not None:
                found = before_retry()
                if found is not None:
                    return found

    @staticmethod
    def _parse(response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise KlingProtocolError(f"Kling answered HTTP {response.status_code} with a body that is not JSON: "
                                     f"{response.text[:120]!r}") from None
        if not isinstance(body, dict) or "code" not in body:
            raise KlingProtocolError(f"Kling answered HTTP {response.status_code} without a code: {str(body)[:120]}")
        return body


def new_external_task_id(prefix: str = "comfy-kling") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"
