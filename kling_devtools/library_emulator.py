"""An in-process emulator with tiny, fast tasks and a client for it: what library tests share."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient
from kling_api.emulator import Emulator
from kling_api.remote.transport import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05, jitter=0.0)


@contextmanager
def fast_emulator(api_key: str, **switches) -> Iterator[Emulator]:
    """96 px high videos, 0.05 s queued, 0.2 s processing (unless ``switches`` say otherwise)."""
    settings = {"max_height": 96, "submitted_seconds": 0.05, "processing_seconds": 0.2, **switches}
    with Emulator(api_keys=[api_key], **settings) as emulator:
        yield emulator


def client_for(emu: Emulator, api_key: str, retry: RetryPolicy = FAST_RETRY) -> KlingClient:
    """A client of ``emu`` with quick retries, so that a test of a fault does not wait out real backoff."""
    return KlingClient(Credentials(api_key=Secret(api_key), source="test"), emu.url, retry=retry)
