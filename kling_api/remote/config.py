"""Where the API lives: ``KLING_API_BASE`` (a URL or a preset name), defaulting to Singapore."""
from __future__ import annotations

import os
from urllib.parse import urlparse

from ..errors import KlingValidationError

BASE_URL_PRESETS: dict[str, str] = {
    "global": "https://api-singapore.klingai.com",
    "singapore": "https://api-singapore.klingai.com",
    "global-legacy": "https://api.klingai.com",
    "china": "https://api-beijing.klingai.com",
}
DEFAULT_BASE_URL = BASE_URL_PRESETS["global"]


def resolve_base_url(value: str | None = None) -> str:
    """A preset name or an http(s) URL; ``None`` means ``KLING_API_BASE`` or the default."""
    value = (value if value is not None else os.environ.get("KLING_API_BASE", "")).strip()
    if not value:
        return DEFAULT_BASE_URL
    if value.lower() in BASE_URL_PRESETS:
        return BASE_URL_PRESETS[value.lower()]
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise KlingValidationError("KLING_API_BASE", value,
                                   f"an http(s) URL or one of {', '.join(BASE_URL_PRESETS)}")
    return value.rstrip("/")
