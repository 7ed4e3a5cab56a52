"""A whole generation: create (or resume) a task, wait for it, download its video.

The CLI and the ComfyUI nodes both run this; they differ only in how they show progress
and how they cancel. With a :class:`~kling_api.remote.ledger.TaskLedger`, a submission is recorded before
its create request and resumed (never paid twice) when the same request and seed come again, on
this machine (the ledger) or on another one (the external_task_id derived from the request).
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..remote.client import DEFAULT_TIMEOUT_S, KlingClient, StatusCallback
from ..remote.download import looks_like_mp4
from ..errors import (RESIGN_CODES, KlingAPIError, KlingError, KlingProtocolError, KlingTaskFailed, KlingTimeout,
                     KlingValidationError)
from ..remote.ledger import (STATUS_CREATING, STATUS_REFUSED, LedgerEntry, LedgerUnavailable, TaskLedger,
                     external_task_id_for, request_fingerprint)
from ..rules.capabilities import endpoint_facts
from ..rules.request import ENDPOINT_IMAGE2VIDEO, TASK_ENDPOINTS, RequestBody, VideoExtendRequest
from ..remote.tasks import STATUS_FAILED, STATUS_SUCCEED, Task
from ..remote.transport import CancelCheck
from ..rules.validation import SourceVideo, extended_seconds, validate_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    task: Task
    video_path: Path
    #: True when the video came from the ledger (an earlier run) and nothing was sent to Kling.
    reused: bool = False

    @property
    def video_id(self) -> str:
        return self.task.video.id if self.task.video else ""


Destination = "str | Path | Callable[[Task], str | Path]"


def run_job(client: KlingClient, request: RequestBody, dest: Destination, *,
            timeout: float = DEFAULT_TIMEOUT_S, should_cancel: CancelCheck | None = None,
            on_status: StatusCallback | None = None, on_created: Callable[[Task], None] | None = None,
            ledger: TaskLedger | None = None, seed: Any = None, batch_index: int = 0) -> JobResult:
    """Create one task of ``request``'s endpoint and see it through to a file at ``dest`` (a path, or a
    function of the task).

    With ``ledger``, the same request with the same ``seed`` (and ``batch_index``) resumes the earlier
    submission instead of creating a task: its video is reused if the file is still there, its task is
    waited for, and a create whose answer was lost is looked up by its external_task_id first.
    An extend whose source video is in the ledger is checked against it (model, total length) first.
    """
    source = _extend_source(ledger, client, request) if isinstance(request, VideoExtendRequest) else None
    validated = validate_request(request, source)  # refused requests never touch the ledger nor the network
    summary: dict[str, Any] = {}
    if source is not None:  # the ledger row keeps the inherited model and the new length (for chains)
        total = extended_seconds(source)
        summary = {"model_name": source.model_name, "duration": "" if total is None else f"{total:g}"}
    return _run_job(client, request.endpoint, validated.request, validated.notes, dest, ledger=ledger,
                    seed=seed, batch_index=batch_index, timeout=timeout, should_cancel=should_cancel,
                    on_status=on_status, on_created=on_created, summary=summary)


#: The names the CLI and the first nodes know; every endpoint goes through :func:`run_job`.
run_image_to_video = run_text_to_video = run_job


def _extend_source(ledger: TaskLedger | None, client: KlingClient, request: VideoExtendRequest) -> SourceVideo | None:
    """The source video's model and length when this pack made it (the ledger keeps both)."""
    if ledger is None or not isinstance(request.video_id, str):
        return None
    try:
        entry = ledger.find_video(request.video_id.strip(), base_url=client.base_url)
    except LedgerUnavailable as exc:
        log.warning("%s; the extend's source video is not checked before sending", exc)
        return None
    if entry is None or not entry.model_name:
        return None
    return SourceVideo(video_id=entry.video_id, model_name=entry.model_name, duration=entry.duration)


def _run_job(client: KlingClient, endpoint: str, request: Any, notes: list[str], dest: Destination, *,
             ledger: TaskLedger | None, seed: Any, batch_index: int, timeout: float,
             should_cancel: CancelCheck | None, on_status: StatusCallback | None,
             on_created: Callable[[Task], None] | None, summary: dict[str, Any] | None = None) -> JobResult:
    """One validated request through the ledger when it is usable, else a plain create + finish.
    ``summary`` adds facts the body lacks to the ledger row (an extend's inherited model)."""
    if ledger is not None:
        try:
            ledger.ensure_ready()
        except LedgerUnavailable as exc:
            log.warning("%s; going on without it (a re-queue will create a new task)", exc)
        else:
            return _run_with_ledger(client, request, notes, dest, ledger, seed, batch_index, timeout=timeout,
                                    should_cancel=should_cancel, on_status=on_status, on_created=on_created,
                                    endpoint=endpoint, summary=summary)
    for note in notes:
        log.info("%s", note)
    task = client.create_task(endpoint, request.to_body(), should_cancel=should_cancel)
    if on_created is not None:
        on_created(task)
    return finish_task(client, task.task_id, dest, endpoint=endpoint,
                       timeout=timeout, should_cancel=should_cancel, on_status=on_status)


def _create_refused(exc: BaseException) -> bool:
    """True when the create certainly made no task (Kling refused it outright)."""
    return (isinstance(exc, KlingAPIError) and not exc.retryable and exc.code not in RESIGN_CODES
            and "already exist" not in exc.api_message.lower())


def _run_with_ledger(client: KlingClient, request: RequestBody, notes: list[str], dest: Destination,
                     ledger: TaskLedger, seed: Any, batch_index: int, *, timeout: float,
                     should_cancel: CancelCheck | None, on_status: StatusCallback | None,
                     on_created: Callable[[Task], None] | None,
                     endpoint: str = ENDPOINT_IMAGE2VIDEO, summary: dict[str, Any] | None = None) -> JobResult:
    body = request.to_body()
    typed_id = body.get("external_task_id")  # the user's own id is used as given
    fingerprint = request_fingerprint(body, seed=seed, scope=client.base_url + endpoint, batch_index=batch_index)
    created: Task | None = None
    with ledger.claim(fingerprint, external_task_id=typed_id or external_task_id_for(fingerprint), endpoint=endpoint,
                      base_url=client.base_url, seed=seed, summary={**body, **(summary or {})},
                      should_cancel=should_cancel) as (entry, new):
        if entry.status == STATUS_SUCCEED and entry.task_id and entry.video_path:
            reused = _reuse_video(entry.video_path, entry.task_id, entry.as_task(), dest)
            if reused is not None:
                log.info("Kling task %s: same request and seed as before; reusing %s (nothing sent)",
                         entry.task_id, reused)
                return JobResult(task=entry.as_task(), video_path=reused, reused=True)
        task_id = entry.task_id if entry.task_id and entry.status != STATUS_FAILED else None
        if task_id:
            log.info("Kling task %s: same request and seed as before; resuming it instead of creating a task",
                     task_id)
        else:
            if entry.status == STATUS_FAILED:
                if typed_id:
                    raise KlingValidationError(
                        "external_task_id", typed_id, "an id this account has not used yet",
                        f"external_task_id {typed_id!r} already names the failed Kling task {entry.task_id}; "
                        "type another one (or clear it) to try again")
                entry = _next_attempt(ledger, fingerprint, entry)
            elif entry.status == STATUS_REFUSED:  # no task was made: the same external_task_id is free
                entry = ledger.restart(fingerprint, entry.external_task_id)
            # A derived id names this job on every machine, so Kling may know it even when this ledger
            # is new to the job (another worker made it); a typed id only when a create may have been sent.
            if not typed_id or (not new and entry.status == STATUS_CREATING):
                try:
                    entry, found = _look_up_on_kling(client, ledger, fingerprint, entry, derived=not typed_id,
                                                     endpoint=endpoint, should_cancel=should_cancel)
                except BaseException as exc:
                    ledger.record_error(exc, fingerprint=fingerprint)
                    raise
                if found is not None:
                    log.info("Kling task %s (%s) was created by an earlier run or another machine; resuming it",
                             found.task_id, entry.external_task_id)
                    ledger.record_created(fingerprint, found)
                    task_id = found.task_id
            if not task_id:
                for note in notes:
                    log.info("%s", note)
                ledger.update(fingerprint, creates=entry.creates + 1)
                try:
                    # With a derived id, a refusal as duplicate means another machine won the race to
                    # create this very job: the create then resolves to that task (nothing is paid twice).
                    created = client.create_task(endpoint, {**body, "external_task_id": entry.external_task_id},
                                                 should_cancel=should_cancel, sent_before=not new or not typed_id)
                except BaseException as exc:
                    ledger.record_error(exc, fingerprint=fingerprint,
                                        status=STATUS_REFUSED if _create_refused(exc) else None)
                    raise
                ledger.record_created(fingerprint, created)
                task_id = created.task_id
    if created is not None and on_created is not None:
        on_created(created)
    return finish_task(client, task_id, dest, endpoint=endpoint, timeout=timeout, should_cancel=should_cancel,
                       on_status=on_status, ledger=ledger, fingerprint=fingerprint)


def _look_up_on_kling(client: KlingClient, ledger: TaskLedger, fingerprint: str, entry: LedgerEntry, *,
                      derived: bool, endpoint: str,
                      should_cancel: CancelCheck | None) -> tuple[LedgerEntry, Task | None]:
    """The task Kling has under the entry's external_task_id (free to ask), or None. With a derived
    id, a failed task there moves the entry on to the next attempt's id, as a local failure would."""
    while True:
        found = client.find_task(entry.external_task_id, endpoint=endpoint, should_cancel=should_cancel)
        if found is None or not derived or found.status != STATUS_FAILED:
            return entry, found
        log.info("Kling task %s (%s) failed earlier; trying attempt %d", found.task_id, entry.external_task_id,
                 entry.attempt + 1)
        entry = _next_attempt(ledger, fingerprint, entry)


def _next_attempt(ledger: TaskLedger, fingerprint: str, entry: LedgerEntry) -> LedgerEntry:
    """The entry restarted as its next attempt: the failed task keeps its external_task_id, so the
    new one takes the next attempt's (the same on every machine)."""
    attempt = entry.attempt + 1
    return ledger.restart(fingerprint, external_task_id_for(fingerprint, attempt), attempt=attempt)


def _reuse_video(stored: str, task_id: str, task: Task, dest: Destination) -> Path | None:
    """The stored video as ``dest`` (copied there if ``dest`` is elsewhere), or None if it is gone."""
    source = Path(stored)
    try:
        if not source.is_file() or not looks_like_mp4(source):
            return None
    except OSError:
        return None
    target = Path(dest(task) if callable(dest) else dest)
    if target.exists() and target.resolve() == source.resolve():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        shutil.copyfile(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return target


def finish_task(client: KlingClient, task_id: str, dest: Destination, *, endpoint: str = ENDPOINT_IMAGE2VIDEO,
                timeout: float = DEFAULT_TIMEOUT_S, should_cancel: CancelCheck | None = None,
                on_status: StatusCallback | None = None, ledger: TaskLedger | None = None,
                fingerprint: str | None = None) -> JobResult:
    """Wait for an existing task and download its video: the way to resume without paying again.

    With ``ledger``, the outcome (status, units, video path or error) is written to the row of
    ``fingerprint`` (or to every row of ``task_id`` when no fingerprint is given)."""
    def note_error(exc: BaseException, status: str | None = None) -> None:
        if ledger is not None:
            ledger.record_error(exc, fingerprint=fingerprint, task_id=task_id, status=status)

    try:
        task = client.wait(task_id, endpoint=endpoint, timeout=timeout, should_cancel=should_cancel,
                           on_status=on_status, estimated_seconds=endpoint_estimate(endpoint))
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
                endpoints: Sequence[str] = TASK_ENDPOINTS, ledger: TaskLedger | None = None,
                should_cancel: CancelCheck | None = None) -> tuple[str, Task]:
    """(endpoint, task) of an existing task, by task_id or else external_task_id: a query is free, so
    each of ``endpoints`` is asked in turn, unless the ledger recorded which endpoint made ``task_id``."""
    wanted = task_id.strip()
    if wanted:
        recorded = _recorded_endpoint(ledger, wanted, client.base_url)
        for endpoint in (recorded,) if recorded in endpoints else endpoints:
            task = client.get_task_or_none(wanted, endpoint=endpoint, should_cancel=should_cancel)
            if task is not None:
                return endpoint, task
        raise KlingValidationError("task_id", wanted, "the id of an existing task",
                                   f"No Kling task has task_id {wanted!r} (asked {', '.join(endpoints)})")
    for endpoint in endpoints:
        task = client.find_task(external_task_id.strip(), endpoint=endpoint, should_cancel=should_cancel)
        if task is not None:
            return endpoint, task
    raise KlingValidationError("external_task_id", external_task_id, "the id of an existing task",
                               f"No Kling task has external_task_id {external_task_id!r}")


def _recorded_endpoint(ledger: TaskLedger | None, task_id: str, base_url: str) -> str | None:
    if ledger is None:
        return None
    try:
        entry = ledger.find_task(task_id, base_url=base_url)
    except LedgerUnavailable:
        return None
    return entry.endpoint if entry is not None else None


def endpoint_estimate(endpoint: str) -> float | None:
    """Kling's average wall time for tasks of ``endpoint`` (progress and polling), None for the default."""
    value = endpoint_facts(endpoint.rsplit("/", 1)[-1]).get("estimated_seconds")
    return float(value) if value else None


def _quietly(record: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    """A ledger write that must not turn a finished, paid result into an error."""
    try:
        record(*args, **kwargs)
    except LedgerUnavailable as exc:
        log.warning("%s", exc)
