"""The exceptions the emulator's checks raise: an HTTP status plus Kling's business code."""
from __future__ import annotations


class ApiError(Exception):
    """Answered as ``{"code", "message", "request_id"}`` with ``http_status`` (reference section 6.1)."""

    def __init__(self, http_status: int, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.http_status = http_status
        self.code = code
        self.message = message


def bad_param(message: str) -> ApiError:
    """1201, Kling's answer to a bad key or value, with a message saying which."""
    return ApiError(400, 1201, message)


class Unreachable(ApiError):
    """An image URL the emulator could not fetch: a 1201 on the legacy paths; on the new standard the
    create is accepted and the task fails (see ``new_rules.FETCH_FAILED``)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, 1201, message)
