"""The Kling client: create, query, list, wait for and download tasks.

Blocking on purpose (requests): ComfyUI nodes run it in a worker thread, the CLI runs it directly.
Cancellation and progress are plain callables, so the library stays free of ComfyUI.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Union

import requests

from .account import AccountCosts, explain_depleted, query_params, throttle
from .auth import Credentials, load_credentials
from ..rules.capabilities import capability_table, endpoint_models
from .config import resolve_base_url
from .download import DEFAULT_MAX_BYTES, download_file
from ..errors import (KlingAPIError, KlingCredentialsError, KlingError, KlingModelDiscontinued, KlingRequestError, KlingTaskFailed,
                      KlingTaskNotFound, KlingTimeout, discontinued_model)
from ..rules.endpoints import ACCOUNT_COSTS_PATH, IMAGE2VIDEO, Endpoint, endpoint_named
from .codecs import codec_for
from ..rules.request import ImageToVideoRequest
from .tasks import STATUS_FAILED, STATUS_SUBMITTED, STATUS_SUCCEED, StatusUpdate, Task
from .transport import CancelCheck, RetryPolicy, Transport, new_external_task_id, sleep_unless_cancelled
from ..rules.validation import validate, validate_external_task_id

log = logging.getLogger(__name__)

StatusCallback = Callable[[StatusUpdate], None]
#: An endpoint as callers name it: a row of the endpoint table, its name, create path or ledger family.
EndpointRef = Union[Endpoint, str]

#: Poll intervals while the task waits in Kling's queue (``submitted``): quick at first (short queues,
#: fast failures), then every 5 s, since a queue can last minutes and nothing ends while queued...
QUEUE_POLL_SCHEDULE_S = (1.0, 1.0, 2.0, 2.0, 3.0, 5.0)
#: ...and once a second from the first poll that sees the task out of the queue, however early or late it
#: ends, so that its end is noticed within about a second. Never more than one poll a second.
PROCESSING_POLL_S = 1.0
MIN_POLL_S = 1.0
#: How long a create answered 1303 (all of the account's slots busy) keeps waiting for a free slot.
SLOT_WAIT_S = 30 * 60
SLOT_RETRY_S = 5.0
#: Resource pack depleted or expired (reference 6.1): explained with the balance.
DEPLETED_CODE = 1102
DEFAULT_TIMEOUT_S = 30 * 60
STATUS_TICK_S = 1.0
LOOKUP_PAGE_SIZE = 50
#: Answers to a query of a task the endpoint does not know.
NOT_FOUND_CODES = (1201, 1203)


def discontinued_error(message: str, endpoint: Endpoint, model: str, *,
                       task_id: str | None = None) -> KlingModelDiscontinued:
    """Kling's "has been discontinued" as one clear error: the model, and what the pack still offers for
    the endpoint (from the capability table)."""
    named = discontinued_model(message) or model or endpoint.model or "?"
    offered = [name for name in endpoint_models(endpoint.rules) if name != named]
    return KlingModelDiscontinued(named, message, ", ".join(offered) or "none", task_id=task_id)


def poll_interval(poll_number: int, processing: bool = False) -> float:
    """Seconds until the next poll, after ``poll_number`` polls; ``processing``: a poll saw the task out of
    the queue (then every second, so that the end is noticed within about a second whenever it comes)."""
    if processing:
        return max(MIN_POLL_S, PROCESSING_POLL_S)
    return max(MIN_POLL_S, QUEUE_POLL_SCHEDULE_S[min(poll_number, len(QUEUE_POLL_SCHEDULE_S) - 1)])


class KlingClient:
    """Speaks Kling's task endpoints for one account."""

    def __init__(self, credentials: Credentials | None = None, base_url: str | None = None, *,
                 session: requests.Session | None = None, retry: RetryPolicy | None = None,
                 timeout: tuple[float, float] = (10.0, 60.0)) -> None:
        self.transport = Transport(credentials or load_credentials(), resolve_base_url(base_url),
                                   session=session, retry=retry, timeout=timeout)

    def __repr__(self) -> str:
        return f"KlingClient({self.transport!r})"

    @property
    def base_url(self) -> str:
        return self.transport.base_url

    # -- create -----------------------------------------------------------------------------
    def create_image_to_video(self, request: ImageToVideoRequest, *,
                              should_cancel: CancelCheck | None = None) -> Task:
        """Validate (nothing is sent if that fails), then create exactly one task."""
        validated = validate(request)
        for note in validated.notes:
            log.info("%s", note)
        body = codec_for(IMAGE2VIDEO).body(validated.request)
        return self.create_task(IMAGE2VIDEO, body, should_cancel=should_cancel)

    def create_task(self, endpoint: EndpointRef, body: dict[str, Any], *,
                    should_cancel: CancelCheck | None = None, sent_before: bool = False) -> Task:
        """POST a create (``body`` as the endpoint's standard spells it, see :mod:`.codecs`); every create
        carries an external_task_id so that a retry can look it up first.

        ``sent_before``: this external_task_id may name a task already (an earlier run sent this very
        create, or another machine did: the id is derived from the request), so a refusal of it as a
        duplicate means that the task exists: it is looked up and returned instead."""
        row = endpoint_named(endpoint)
        codec = codec_for(row)
        codec.check_credentials(self.transport.credentials, row)  # refused before anything is sent
        external_id = codec.external_id(body) or new_external_task_id()
        validate_external_task_id(external_id)
        body = codec.with_external_id(body, external_id)

        resent = sent_before

        def already_created() -> Task | None:
            nonlocal resent
            resent = True
            task = self.find_task(external_id, endpoint=row, should_cancel=should_cancel)
            if task is not None:
                log.info("Kling already has the task for %s (task %s, an earlier or a parallel create); resuming it",
                         external_id, task.task_id)
            return task

        slot_deadline = time.monotonic() + SLOT_WAIT_S
        while True:
            try:
                data = self.transport.request("POST", row.create_path, json=body, should_cancel=should_cancel,
                                              before_retry=already_created)
                task = data if isinstance(data, Task) else codec.created(data)
            except KlingRequestError as exc:
                if discontinued_model(exc.api_message) is not None:  # a 1201 that says the model is gone
                    raise discontinued_error(exc.api_message, row, codec.model_of(body)) from exc
                # A resent create refused as a duplicate: an earlier attempt (its answer lost) made the task.
                found = already_created() if resent and "already exist" in exc.api_message.lower() else None
                if found is None:
                    raise
                task = found
            except KlingAPIError as exc:
                if exc.code == DEPLETED_CODE:
                    raise self._with_balance(exc, should_cancel) from None
                if discontinued_model(exc.api_message) is not None:
                    raise discontinued_error(exc.api_message, row, codec.model_of(body)) from exc
                # 1303: every slot of the account is taken (a task holds one until it ends) and the
                # transport's backoff ran out. No task was made, so waiting for a slot is safe.
                if exc.code != 1303 or time.monotonic() >= slot_deadline:
                    raise
                log.info("Kling: all of the account's task slots are busy; waiting for one to free up")
                sleep_unless_cancelled(SLOT_RETRY_S, should_cancel)
                found = already_created()
                if found is None:
                    continue
                task = found
            break
        if not task.external_task_id:
            task = replace(task, external_task_id=external_id)
        log.info("Kling task %s created (%s)", task.task_id, row.name)
        return task

    def reaches(self, endpoint: EndpointRef) -> bool:
        """Whether these credentials can use ``endpoint``'s API standard (AK/SK: legacy only)."""
        row = endpoint_named(endpoint)
        try:
            codec_for(row).check_credentials(self.transport.credentials, row)
        except KlingCredentialsError:
            return False
        return True

    # -- account ----------------------------------------------------------------------------
    def _with_balance(self, error: KlingAPIError, should_cancel: CancelCheck | None) -> KlingAPIError:
        """A 1102 (pack depleted or expired) explained with the balance (the query is free)."""
        try:
            costs = self.account_costs(should_cancel=should_cancel)
        except KlingError as exc:
            log.info("The balance could not be read to explain a 1102: %s", exc)
            costs = None
        explain_depleted(error, costs)
        return error

    def account_costs(self, start_time_ms: int | None = None, end_time_ms: int | None = None,
                      resource_pack_name: str | None = None, *,
                      should_cancel: CancelCheck | None = None) -> AccountCosts:
        """The resource packs from ``GET /account/costs`` (free); at most one query a second per process."""
        throttle()
        data = self.transport.request("GET", ACCOUNT_COSTS_PATH,
                                      params=query_params(start_time_ms, end_time_ms, resource_pack_name),
                                      should_cancel=should_cancel)
        return AccountCosts.from_api(data)

    # -- query ------------------------------------------------------------------------------
    def get_task(self, task_id: str, *, endpoint: EndpointRef = IMAGE2VIDEO,
                 should_cancel: CancelCheck | None = None) -> Task:
        task = self.get_task_or_none(task_id, endpoint=endpoint, should_cancel=should_cancel, missing_raises=True)
        assert task is not None
        return task

    def get_task_or_none(self, task_id: str, *, endpoint: EndpointRef = IMAGE2VIDEO,
                         should_cancel: CancelCheck | None = None, missing_raises: bool = False) -> Task | None:
        """As :meth:`get_task`, but None when the endpoint has no such task (legacy: 1201/1203; the new
        standard: an empty list)."""
        row = endpoint_named(endpoint)
        codec = codec_for(row)
        codec.check_credentials(self.transport.credentials, row)
        query = codec.query(row, task_id)
        try:
            task = codec.found(self.transport.request("GET", query.path, params=query.params,
                                                      should_cancel=should_cancel))
        except KlingAPIError as exc:
            if exc.code in NOT_FOUND_CODES and not missing_raises:
                return None
            raise
        if task is None and missing_raises:
            raise KlingTaskNotFound(task_id)
        return task

    def list_tasks(self, page: int = 1, page_size: int = 30, *, endpoint: EndpointRef = IMAGE2VIDEO,
                   should_cancel: CancelCheck | None = None) -> list[Task]:
        """The endpoint's newest tasks (legacy endpoints list them; the new standard has no such query)."""
        row = endpoint_named(endpoint)
        if not codec_for(row).lists_tasks:
            return []
        data = self.transport.request("GET", row.query_path,
                                      params={"pageNum": page, "pageSize": page_size}, should_cancel=should_cancel)
        return [Task.from_api(item) for item in (data or [])]

    def find_task(self, external_task_id: str, *, endpoint: EndpointRef = IMAGE2VIDEO,
                  should_cancel: CancelCheck | None = None) -> Task | None:
        """The task with this external_task_id, or None if Kling has none.

        Legacy: the docs put the external id in the path ("choose one" of task_id/external_task_id);
        clients disagree, so a not-found answer is double-checked against the newest tasks. The new
        standard asks ``GET /tasks?external_task_ids=``.
        """
        row = endpoint_named(endpoint)
        codec = codec_for(row)
        codec.check_credentials(self.transport.credentials, row)
        query = codec.query_external(row, external_task_id)
        try:
            task = codec.found(self.transport.request("GET", query.path, params=query.params,
                                                      should_cancel=should_cancel))
        except KlingAPIError as exc:
            if exc.code not in NOT_FOUND_CODES:
                raise
            task = None
        if task is not None and task.external_task_id in ("", external_task_id):
            return task
        for task in self.list_tasks(1, LOOKUP_PAGE_SIZE, endpoint=row, should_cancel=should_cancel):
            if task.external_task_id == external_task_id:
                return task
        return None

    # -- wait -------------------------------------------------------------------------------
    def wait(self, task_id: str, *, endpoint: EndpointRef = IMAGE2VIDEO, timeout: float = DEFAULT_TIMEOUT_S,
             should_cancel: CancelCheck | None = None, on_status: StatusCallback | None = None,
             estimated_seconds: float | None = None) -> Task:
        """Poll until the task ends; the timeout counts only time after Kling started processing it."""
        estimate = estimated_seconds if estimated_seconds is not None else capability_table().estimated_seconds
        started = time.monotonic()
        processing_since: float | None = None  # when a poll first saw the task out of the queue
        polls = 0
        status = STATUS_SUBMITTED
        next_poll = next_tick = started
        while True:
            now = time.monotonic()
            if now >= next_poll:
                try:
                    task = self.get_task(task_id, endpoint=endpoint, should_cancel=should_cancel)
                except KlingError as exc:
                    raise exc.attach_task_id(task_id)
                now = time.monotonic()
                if task.status != status:
                    log.debug("Kling task %s: %s -> %s", task_id, status, task.status)
                status = task.status
                if status != STATUS_SUBMITTED and processing_since is None:
                    processing_since = now
                polls += 1
                if status == STATUS_SUCCEED:
                    self._report(on_status, task_id, status, now - started, 0.0)
                    return task
                if status == STATUS_FAILED:
                    if discontinued_model(task.status_msg) is not None:
                        raise discontinued_error(task.status_msg, endpoint_named(endpoint), "", task_id=task_id)
                    raise KlingTaskFailed(task_id, task.status_msg)
                next_poll = now + poll_interval(polls, processing_since is not None)
            processing_for = 0.0 if processing_since is None else now - processing_since
            if processing_for > timeout:
                raise KlingTimeout(task_id, now - started, status)
            if now >= next_tick:
                remaining = None if processing_since is None else max(0.0, estimate - processing_for)
                self._report(on_status, task_id, status, now - started, remaining)
                next_tick = now + STATUS_TICK_S
            sleep_unless_cancelled(max(0.0, min(next_poll, next_tick) - time.monotonic()), should_cancel)

    @staticmethod
    def _report(on_status: StatusCallback | None, task_id: str, status: str, elapsed: float,
                remaining: float | None) -> None:
        if on_status is None:
            return
        try:
            on_status(StatusUpdate(task_id=task_id, status=status, elapsed=elapsed, remaining=remaining))
        except KlingError:
            raise
        except Exception:  # a broken progress display must not lose a paid task
            log.exception("Status callback failed")

    # -- download ---------------------------------------------------------------------------
    def download(self, url: str, dest: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 should_cancel: CancelCheck | None = None,
                 on_progress: Callable[[int, int | None], None] | None = None) -> Path:
        """Stream a result to ``dest`` (no credentials are sent to the download host)."""
        return download_file(url, dest, session=self.transport.session, max_bytes=max_bytes,
                             should_cancel=should_cancel, on_progress=on_progress, retry=self.transport.retry)


__all__ = ["KlingClient", "poll_interval", "sleep_unless_cancelled"]
