"""The end of a generation: wait for a task (created now or earlier), download its video, record it.

Also the way back to an existing task: :func:`locate_task` finds which endpoint made it, and
:func:`finish_task` resumes it without paying again.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, Union

from ..errors import KlingError, KlingProtocolError, KlingTaskFailed, KlingTimeout, KlingValidationError
from ..remote.client import DEFAULT_TIMEOUT_S, EndpointRef, KlingClient, StatusCallback
from ..remote.ledger import LedgerUnavailable, TaskLedger
from ..remote.tasks import STATUS_FAILED, Task
from ..remote.transport import CancelCheck
from ..rules.capabilities import endpoint_facts
from ..rules.endpoints import ENDPOINTS, IMAGE2VIDEO, Endpoint, endpoint_named, query_families

log = logging.getLogger(__name__)

#: Where a video goes: a path, or a function of the finished task (e.g. output/Kling_<task_id>.mp4).
Destination = Union[str, Path, Callable[[Task], Union[str, Path]]]


@dataclass(frozen=True)
class JobResult:
    task: Task
    video_path: Path
    #: True when the video came from the ledger (an earlier run) and nothing was sent to Kling.
    reused: bool = False

    @property
    def video_id(self) -> str:
        return self.task.video.id if self.task.video else ""




def finish_task(client: KlingClient, task_id: str, dest: Destination, *, endpoint: EndpointRef = IMAGE2VIDEO,
                timeout: float = DEFAULT_TIMEOUT_S, should_cancel: CancelCheck | None = None,
                on_status: StatusCallback | None = None, ledger: TaskLedger | None = None,
                fingerprint: str | None = None) -> JobResult:
    """Wait for an existing task and download its video: the way to resume without paying again.

    With ``ledger``, the outcome (status, units, video path or error) is written to the row of
    ``fingerprint`` (or to every row of ``task_id`` when no fingerprint is given)."""
    def note_error(exc: BaseException, status: str | None = None) -> None:
        if ledger is not None:
            ledger.record_error(exc, fingerprint=fingerprint, task_id=task_id, status=status)

    row = endpoint_named(endpoint)
    try:
        task = client.wait(task_id, endpoint=row, timeout=timeout, should_cancel=should_cancel,
                           on_status=on_status, estimated_seconds=endpoint_estimate(row))
    except KlingTaskFailed as exc:
        note_error(exc, STATUS_FAILED)
        raise
    except KlingTimeout as exc:
        note_error(exc, exc.last_status)
        raise
    except BaseException as exc:
        note_error(exc)
        raise
    if ledger is not None:
        _quietly(ledger.record_task, task, fingerprint)
    video = task.video
    if video is None or not video.url:
        exc = KlingProtocolError("Kling reported success but gave no video URL", task_id=task_id)
        note_error(exc)
        raise exc
    try:
        path = client.download(video.url, dest(task) if callable(dest) else dest, should_cancel=should_cancel)
    except KlingError as exc:
        note_error(exc)
        raise exc.attach_task_id(task_id)
    except BaseException as exc:
        note_error(exc)
        raise
    if ledger is not None:
        _quietly(ledger.record_video, path, fingerprint=fingerprint, task_id=task_id)
    log.info("Kling task %s: video saved to %s", task_id, path)
    return JobResult(task=task, video_path=path)


def locate_task(client: KlingClient, *, task_id: str = "", external_task_id: str = "",
                endpoints: Sequence[Endpoint] = ENDPOINTS, ledger: TaskLedger | None = None,
                should_cancel: CancelCheck | None = None) -> tuple[Endpoint, Task]:
    """(endpoint, task) of an existing task, by task_id or else external_task_id: a query is free, so
    each of ``endpoints`` is asked in turn (the new standard's, which share ``GET /tasks``, once; none
    that the credentials cannot reach), unless the ledger recorded which endpoint made ``task_id``."""
    wanted = task_id.strip()
    asked = [row for row in query_families(endpoints) if client.reaches(row)] or list(endpoints[:1])
    if wanted:
        recorded = _recorded_endpoint(ledger, wanted, client.base_url)
        for endpoint in (recorded,) if recorded in endpoints else asked:
            task = client.get_task_or_none(wanted, endpoint=endpoint, should_cancel=should_cancel)
            if task is not None:
                return endpoint, task
        raise KlingValidationError("task_id", wanted, "the id of an existing task",
                                   f"No Kling task has task_id {wanted!r} (asked {', '.join(e.name for e in asked)})")
    for endpoint in asked:
        task = client.find_task(external_task_id.strip(), endpoint=endpoint, should_cancel=should_cancel)
        if task is not None:
            return endpoint, task
    raise KlingValidationError("external_task_id", external_task_id, "the id of an existing task",
                               f"No Kling task has external_task_id {external_task_id!r}")


def _recorded_endpoint(ledger: TaskLedger | None, task_id: str, base_url: str) -> Endpoint | None:
    """The endpoint the ledger says made ``task_id`` (None when it has no such row, or an unknown family)."""
    if ledger is None:
        return None
    try:
        entry = ledger.find_task(task_id, base_url=base_url)
        return endpoint_named(entry.endpoint) if entry is not None else None
    except (LedgerUnavailable, KlingValidationError):
        return None


def endpoint_estimate(endpoint: EndpointRef) -> float | None:
    """Kling's average wall time for tasks of ``endpoint`` (progress and polling), None for the default."""
    value = endpoint_facts(endpoint_named(endpoint).rules).get("estimated_seconds")
    return float(value) if value else None


def _quietly(record: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """A ledger write that must not turn a finished, paid result into an error."""
    try:
        record(*args, **kwargs)
    except LedgerUnavailable as exc:
        log.warning("%s", exc)
