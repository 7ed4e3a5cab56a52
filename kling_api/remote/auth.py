"""Credentials and the Authorization header, with the secrets redacted by construction.

Secrets are held in :class:`Secret`, whose ``repr``/``str`` never show the value, so a secret
cannot reach a log line, an exception message or a traceback's locals by accident.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from ..errors import KlingCredentialsError

log = logging.getLogger(__name__)

TOKEN_LIFETIME_S = 1800
TOKEN_NOT_BEFORE_SKEW_S = 5
#: A cached JWT is re-signed when less than this many seconds of its life remain.
TOKEN_REFRESH_MARGIN_S = 300

HOW_TO_SET = (
    "Set KLING_API_KEY, or KLING_ACCESS_KEY and KLING_SECRET_KEY, in the environment"
    " (or use the 'Kling > API credentials' setting in ComfyUI)"
)


class Secret:
    """A string that refuses to show itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):  # never pickle a secret into a cache or a queue
        raise TypeError("Secret values cannot be pickled")


@dataclass
class Credentials:
    """An API key, or an access key + secret key (signed into a short-lived JWT)."""

    api_key: Secret | None = None
    access_key: Secret | None = None
    secret_key: Secret | None = None
    source: str = "unknown"
    _token: str | None = field(default=None, repr=False)
    _token_expires: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.api_key is None and (self.access_key is None or self.secret_key is None):
            raise KlingCredentialsError("Incomplete Kling credentials: need an API key or both access and secret key",
                                        hint=HOW_TO_SET)

    def __repr__(self) -> str:
        kind = "api_key" if self.api_key else "access_key+secret_key"
        return f"Credentials(kind={kind}, source={self.source!r})"

    @property
    def kind(self) -> str:
        return "api_key" if self.api_key else "jwt"

    def authorization_header(self, now: float | None = None) -> str:
        """``Bearer <key or JWT>``; the JWT is cached and re-signed before it expires."""
        if self.api_key is not None:
            return f"Bearer {self.api_key.reveal()}"
        now = time.time() if now is None else now
        with self._lock:
            if self._token is None or now >= self._token_expires - TOKEN_REFRESH_MARGIN_S:
                self._token = self._sign(now)
                self._token_expires = now + TOKEN_LIFETIME_S
            return f"Bearer {self._token}"

    def invalidate_token(self) -> bool:
        """Drop the cached JWT (after code 1003/1004). False when there is nothing to re-sign."""
        if self.api_key is not None:
            return False
        with self._lock:
            self._token = None
            self._token_expires = 0.0
        return True

    def _sign(self, now: float) -> str:
        assert self.access_key is not None and self.secret_key is not None
        claims = {
            "iss": self.access_key.reveal(),
            "exp": int(now) + TOKEN_LIFETIME_S,
            "nbf": int(now) - TOKEN_NOT_BEFORE_SKEW_S,
        }
        with warnings.catch_warnings():  # Kling issues the secret; its length is not the user's choice
            warnings.simplefilter("ignore")
            return jwt.encode(claims, self.secret_key.reveal(), algorithm="HS256",
                              headers={"alg": "HS256", "typ": "JWT"})

    def secret_values(self) -> list[str]:
        """The raw values, for redaction filters and leak tests only."""
        values = [s.reveal() for s in (self.api_key, self.access_key, self.secret_key) if s is not None]
        if self._token:
            values.append(self._token)
        return values


def credentials_from_mapping(data: dict[str, str], source: str) -> Credentials | None:
    """Build credentials from ``api_key`` or ``access_key`` + ``secret_key``; None if neither is set."""
    api_key = (data.get("api_key") or "").strip()
    access_key = (data.get("access_key") or "").strip()
    secret_key = (data.get("secret_key") or "").strip()
    if api_key:
        return Credentials(api_key=Secret(api_key), source=source)
    if access_key and secret_key:
        return Credentials(access_key=Secret(access_key), secret_key=Secret(secret_key), source=source)
    if access_key or secret_key:
        missing = "KLING_SECRET_KEY / secret_key" if access_key else "KLING_ACCESS_KEY / access_key"
        raise KlingCredentialsError(f"Only half of an access key + secret key pair is set ({source}); missing {missing}",
                                    hint=HOW_TO_SET)
    return None


def load_credentials(file_path: str | os.PathLike[str] | None = None,
                     environ: dict[str, str] | None = None) -> Credentials:
    """Environment first (``KLING_API_KEY``, or ``KLING_ACCESS_KEY`` + ``KLING_SECRET_KEY``), then the file."""
    env = os.environ if environ is None else environ
    from_env = credentials_from_mapping(
        {"api_key": env.get("KLING_API_KEY", ""), "access_key": env.get("KLING_ACCESS_KEY", ""),
         "secret_key": env.get("KLING_SECRET_KEY", "")},
        source="environment",
    )
    if from_env is not None:
        return from_env
    if file_path is not None:
        from_file = read_credentials_file(file_path)
        if from_file is not None:
            return from_file
    where = f" nor in {file_path}" if file_path else ""
    raise KlingCredentialsError(f"No Kling credentials found in the environment{where}", hint=HOW_TO_SET)


def read_credentials_file(path: str | os.PathLike[str]) -> Credentials | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KlingCredentialsError(f"The credentials file {path} cannot be read ({type(exc).__name__})",
                                    hint="Store the credentials again or delete the file") from None
    if not isinstance(data, dict):
        raise KlingCredentialsError(f"The credentials file {path} is not a JSON object", hint=HOW_TO_SET)
    return credentials_from_mapping({k: str(v) for k, v in data.items()}, source="file")


def write_credentials_file(path: str | os.PathLike[str], *, api_key: str = "", access_key: str = "",
                           secret_key: str = "") -> Credentials:
    """Validate and store credentials with mode 0600 (created that way, never world-readable for a moment)."""
    creds = credentials_from_mapping({"api_key": api_key, "access_key": access_key, "secret_key": secret_key},
                                     source="file")
    if creds is None:
        raise KlingCredentialsError("Nothing to store: give an API key, or an access key and a secret key")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"api_key": api_key.strip()} if api_key.strip() else {
        "access_key": access_key.strip(), "secret_key": secret_key.strip()}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
    os.chmod(tmp, stat.S_IRUSR | stat.S_IWUSR)
    os.replace(tmp, path)
    log.info("Kling credentials stored (%s)", creds.kind)
    return creds


def delete_credentials_file(path: str | os.PathLike[str]) -> bool:
    try:
        Path(path).unlink()
        return True
    except FileNotFoundError:
        return False
