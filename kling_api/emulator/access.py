"""Kling's Authorization check: a plain API key, or an HS256 JWT signed with an access/secret key pair.

Codes follow reference section 6.1 (all HTTP 401): 1001 header empty, 1002 not ``Bearer <token>``,
1000 unknown key or bad signature, 1003 ``nbf`` in the future, 1004 expired. The submitted token is
never logged or put in a message.

The new design standard (the model in the path, ``GET /tasks``) takes API keys only (page
kling-get-started-authentication: "API Key authentication must be used"; AK/SK is "only applicable to
legacy version design standards"); an API key also works on every legacy path.
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
#: What Kling answered (HTTP 401, code 1002) to an AK/SK JWT on GET /tasks and POST /tasks: a live
#: observation by one client, 2026-09-20 (reference 1.4), not on any page (the error-code page's 1002
#: says only "Authorization is invalid").
AKSK_REFUSED = ("Authentication error. The current API does not support AK/SK; please go to the console "
                "(https://kling.ai/dev/api-key) to create API key.")


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
        """Legacy paths: the caller's identity ("api-key" or the access key), or ApiError 1000-1004."""
        token = _bearer_token(header)
        if self._is_api_key(token):
            return "api-key"
        if token.count(".") != 2:
            raise unauthorized(1000, "Auth failed")
        return self._check_jwt(token)

    def check_api_key(self, header: str | None) -> str:
        """New-standard paths: "api-key", or ApiError. Any JWT, valid or not, gets the AK/SK refusal
        (the emulator's choice: a server that takes no AK/SK has no reason to check the token's
        signature or times first); anything else that is not a key is 1000, as on the legacy paths."""
        token = _bearer_token(header)
        if self._is_api_key(token):
            return "api-key"
        if _is_jwt(token):
            raise unauthorized(1002, AKSK_REFUSED)
        raise unauthorized(1000, "Auth failed")

    def _is_api_key(self, token: str) -> bool:
        return any(hmac.compare_digest(token.encode(), key.encode()) for key in self.api_keys)

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


def _bearer_token(header: str | None) -> str:
    """The token of ``Bearer <token>``; 1001 for an empty header, 1002 for another form."""
    if header is None or not header.strip():
        raise unauthorized(1001, "Authorization is empty")
    match = _BEARER.fullmatch(header)
    if not match:
        raise unauthorized(1002, "Authorization is invalid")
    return match.group(1)


def _is_jwt(token: str) -> bool:
    """Whether ``token`` reads as a JWT (header and claims decode; the signature is not checked)."""
    if token.count(".") != 2:
        return False
    try:
        jwt.decode(token, options={"verify_signature": False, "verify_exp": False, "verify_nbf": False})
    except jwt.PyJWTError:
        return False
    return True
