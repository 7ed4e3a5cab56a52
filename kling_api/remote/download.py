"""Streaming download of a result: atomic, capped, resumable, http(s) only.

The file appears under its final name only when complete and plausible (an MP4 ``ftyp`` box);
a dropped connection resumes with a Range request; nothing partial is ever left behind.
"""
from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import requests

from ..errors import KlingCancelled, KlingDownloadError, KlingValidationError
from .transport import CancelCheck, RetryPolicy, sleep_unless_cancelled

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 2 * 1024**3
CHUNK_BYTES = 1024 * 1024


def looks_like_mp4(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(12)
    return len(head) >= 8 and head[4:8] == b"ftyp"


def download_file(url: str, dest: str | os.PathLike[str], *, session: requests.Session | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES, should_cancel: CancelCheck | None = None,
                  on_progress: Callable[[int, int | None], None] | None = None,
                  retry: RetryPolicy | None = None, expect_mp4: bool = True,
                  timeout: tuple[float, float] = (10.0, 60.0)) -> Path:
    """Download ``url`` to ``dest``; returns ``dest``. Raises KlingDownloadError after retries."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise KlingValidationError("url", url, "an http(s) URL")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    session = session or requests.Session()
    retry = retry or RetryPolicy()
    try:
        for attempt in range(1, retry.attempts + 1):
            try:
                _fetch_into(part, url, session, max_bytes, should_cancel, on_progress, timeout)
                break
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    _Transient) as exc:
                if attempt == retry.attempts:
                    raise KlingDownloadError(f"Download of the video failed after {attempt} attempts "
                                             f"({type(exc).__name__})",
                                             hint="The video stays on Kling for 30 days: resume the task later") from None
                delay = retry.delay(attempt)
                log.warning("Download interrupted (%s) at %d bytes; resuming in %.1fs",
                            type(exc).__name__, part.stat().st_size if part.exists() else 0, delay)
                sleep_unless_cancelled(delay, should_cancel)
        if expect_mp4 and not looks_like_mp4(part):
            raise KlingDownloadError("The downloaded file is not an MP4 video",
                                     hint="Kling (or a proxy in between) served something else; try again later")
        os.replace(part, dest)
        return dest
    finally:
        part.unlink(missing_ok=True)


class _Transient(Exception):
    """Worth another try: the body ended early, or the server had a 5xx moment."""


def _fetch_into(part: Path, url: str, session: requests.Session, max_bytes: int,
                should_cancel: CancelCheck | None, on_progress: Callable[[int, int | None], None] | None,
                timeout: tuple[float, float]) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
        if response.status_code == 416 and have:
            return  # the server says we already have everything
        if response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}")
        if response.status_code not in (200, 206):
            raise KlingDownloadError(f"Download of the video answered HTTP {response.status_code}")
        if response.status_code == 200 and have:
            have = 0  # the server ignored Range: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise KlingDownloadError(f"The video is {total} bytes, over the {max_bytes}-byte cap")
        with open(part, "ab" if have else "wb") as fh:
            written = have
            for chunk in response.iter_content(CHUNK_BYTES):
                if should_cancel is not None and should_cancel():
                    raise KlingCancelled()
                written += len(chunk)
                if written > max_bytes:
                    raise KlingDownloadError(f"The video grew past the {max_bytes}-byte cap")
                fh.write(chunk)
                if on_progress is not None:
                    on_progress(written, total)
        if total is not None and written < total:
            raise _Transient(f"{written} of {total} bytes")
