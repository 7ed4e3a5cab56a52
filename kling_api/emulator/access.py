"""Kling's Authorization check: a plain API key, or an HS256 JWT signed with an access/secret key pair.

Codes follow reference section 6.1 (all HTTP 401): 1001 header empty, 1002 not ``Bearer <token>``,
1000 unknown key or bad signature, 1003 ``nbf`` in the future, 1004 expired. The submitted token is
never logged or put in a message.
"""
from __future__ import annotations

import hmac
import logging
import re
from typing import Iterable, Mapping

import jwt

from .errors import ApiError

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "emulator-key"
_BEARER = re.compile(r"Bearer (\S+)")


def unauthorized(code: int, message: str) -> ApiError:
    return ApiError(401, code, message)


class Authenticator:
    """Accepts the configured API keys as-is and JWTs whose ``iss`` is a configured access key."""

    def __init__(self, api_keys: Iterable[str] = (), access_keys: Mapping[str, str] | None = None) -> None:
        self.api_keys = tuple(k for k in api_keys if k)
        self.access_keys = dict(access_keys or {})
        if not self.api_keys and not self.access_keys:
            self.api_keys = (DEFAULT_API_KEY,)

    def describe(self) -> str:
        """Which credentials are accepted, for the start-up log: access keys shown, secrets never."""
        parts = []
        if self.api_keys == (DEFAULT_API_KEY,):
            parts.append(f"API key {DEFAULT_API_KEY!r}")
        elif self.api_keys:
            parts.append(f"{len(self.api_keys)} configured API key(s)")
        if self.access_keys:
            parts.append("JWTs signed for access key(s) " + ", ".join(sorted(self.access_keys)))
        return " and ".join(parts)

    def check(self, header: str | None) -> str:
        """The caller's identity ("api-key" or the access key), or ApiError 1000-1004."""
        if header is None or not header.strip():
            raise unauthorized(1001, "Authorization is empty")
        match = _BEARER.fullmatch(header)
        if not match:
            raise unauthorized(1002, "Authorization is invalid")
        token = match.group(1)
        if any(hmac.compare_digest(token.encode(), key.encode()) for key in self.api_keys):
            return "api-key"
        if token.count(".") != 2:
            raise unauthorized(1000, "Auth failed")
        return self._check_jwt(token)

    def _check_jwt(self, token: str) -> str:
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            raise unauthorized(1000, "Auth failed") from None
        secret = self.access_keys.get(issuer) if isinstance(issuer, str) else None
        if secret is None:
            raise unauthorized(1000, "Auth failed")
        try:
            jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.ImmatureSignatureError:
            raise unauthorized(1003, "Token is not yet valid") from None
        except jwt.ExpiredSignatureError:
            raise unauthorized(1004, "Token has expired") from None
        except jwt.PyJWTError as exc:
            log.debug("JWT for access key %s refused: %s", issuer, type(exc).__name__)
            raise unauthorized(1000, "Auth failed") from None
        return issuer
