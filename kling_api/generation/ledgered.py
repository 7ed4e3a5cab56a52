"""A generation through the task ledger: recorded before its create, resumed (never paid twice) when the
same request and seed come again, on this machine (the ledger) or on another one (the external_task_id
derived from the request, which Kling is asked about before any create)."""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable

from ..errors import RESIGN_CODES, KlingAPIError, KlingModelDiscontinued, KlingValidationError
from ..remote.client import KlingClient, StatusCallback
from ..remote.codecs import codec_for
from ..remote.download import looks_like_mp4
from ..remote.ledger import (STATUS_CREATING, STATUS_REFUSED, LedgerEntry, TaskLedger, external_task_id_for,
                             request_fingerprint)
from ..remote.tasks import STATUS_FAILED, STATUS_SUCCEED, Task
from ..remote.transport import CancelCheck
from ..rules.endpoints import Endpoint
from ..rules.request import RequestBody, request_summary
from .finish import Destination, JobResult, finish_task

log = logging.getLogger(__name__)


def _create_refused(exc: BaseException) -> bool:
    """True when the create certainly made no task (Kling refused it outright, or the model is switched off)."""
    if isinstance(exc, KlingModelDiscontinued):
        return True
    return (isinstance(exc, KlingAPIError) and not exc.retryable and exc.code not in RESIGN_CODES
            and "already exist" not in exc.api_message.lower())


def run_with_ledger(client: KlingClient, request: RequestBody, notes: list[str], dest: Destination,
                     ledger: TaskLedger, seed: Any, batch_index: int, *, timeout: float,
                     should_cancel: CancelCheck | None, on_status: StatusCallback | None,
                     on_created: Callable[[Task], None] | None,
                     endpoint: Endpoint, summary: dict[str, Any] | None = None) -> JobResult:
    """Create (or resume) ``request``'s task through ``ledger``, then finish it; ``notes`` are logged only
    when a create is really sent. The fingerprint's scope and the ledger row name the endpoint by its
    ledger family, so rows and derived ids written by earlier versions still match."""
    codec = codec_for(endpoint)
    body = codec.body(request)
    typed_id = request.external_task_id  # the user's own id is used as given
    fingerprint = request_fingerprint(body, seed=seed, scope=client.base_url + endpoint.ledger_family,
                                      batch_index=batch_index)
    created: Task | None = None
    with ledger.claim(fingerprint, external_task_id=typed_id or external_task_id_for(fingerprint),
                      endpoint=endpoint.ledger_family,
                      base_url=client.base_url, seed=seed, summary={**request_summary(request), **(summary or {})},
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
                    created = client.create_task(endpoint, codec.with_external_id(body, entry.external_task_id),
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
                      derived: bool, endpoint: Endpoint,
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


