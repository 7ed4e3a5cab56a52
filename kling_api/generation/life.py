"""A whole generation: validate, guard the spend, create (or resume) a task, wait for it, download its video.

The ComfyUI nodes, the CLI and ``batch`` all run a paid job through :class:`Generation`; they differ only in
how they show progress, how they cancel and which spend limits apply. With a
:class:`~kling_api.remote.ledger.TaskLedger`, a submission is recorded before its create request and
resumed (never paid twice) when the same request and seed come again (see :mod:`.ledgered`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..costs.pricing import deduction_text
from ..remote.client import DEFAULT_TIMEOUT_S, KlingClient, StatusCallback
from ..remote.codecs import check_request_credentials, codec_for
from ..remote.ledger import LedgerUnavailable, TaskLedger
from ..remote.tasks import Task
from ..remote.transport import CancelCheck
from ..rules.endpoints import Endpoint
from ..rules.request import RequestBody, VideoExtendRequest
from ..rules.validation import SourceVideo, Validated, extended_seconds, validate_request
from .finish import Destination, JobResult, finish_task, locate_task
from .ledgered import run_with_ledger

log = logging.getLogger(__name__)

#: The spend guard of whoever runs the generation: given every request about to be created, it raises
#: (``SpendLimitExceeded``) over a limit, else returns the text to show (the estimate, a balance warning).
SpendGuard = Callable[[Sequence[RequestBody]], str]


@dataclass
class Generation:
    """One account's paid jobs, each through the same life: :meth:`prepare` (validation, then the spend
    guard, all before anything is sent), then :meth:`run` per task (ledger, create or resume, poll with
    progress and Cancel, download), then :meth:`cost_report` of what Kling deducted."""

    client: KlingClient
    ledger: TaskLedger | None = None
    guard: SpendGuard | None = None
    timeout: float = DEFAULT_TIMEOUT_S

    def prepare(self, requests: Sequence[RequestBody]) -> str:
        """Refuse before anything is sent: every request is validated (``KlingValidationError`` names the
        field, the value and what is allowed), its API standard must accept the credentials (an access key
        + secret key reaches only the legacy API), then the guard counts them all. Returns the guard's text."""
        checked = [validate_request(request, self._extend_source(request)).request for request in requests]
        check_request_credentials(checked, self.client.transport.credentials)
        return self.guard(checked) if self.guard is not None and checked else ""

    def run(self, request: RequestBody, dest: Destination, *, seed: Any = None, batch_index: int = 0,
            should_cancel: CancelCheck | None = None, on_status: StatusCallback | None = None,
            on_created: Callable[[Task], None] | None = None, timeout: float | None = None) -> JobResult:
        """One task of ``request`` through to a file at ``dest`` (see :func:`run_job`); ``timeout``
        overrides the generation's for this task (a batch row's own)."""
        return run_job(self.client, request, dest, timeout=self.timeout if timeout is None else timeout,
                       should_cancel=should_cancel,
                       on_status=on_status, on_created=on_created, ledger=self.ledger, seed=seed,
                       batch_index=batch_index)

    def resume(self, task_id: str, dest: Destination, *, endpoint: Endpoint | str,
               should_cancel: CancelCheck | None = None, on_status: StatusCallback | None = None) -> JobResult:
        """An existing task waited for and downloaded (nothing is created, nothing paid again)."""
        return finish_task(self.client, task_id, dest, endpoint=endpoint, timeout=self.timeout,
                           should_cancel=should_cancel, on_status=on_status, ledger=self.ledger)

    def locate(self, *, task_id: str = "", external_task_id: str = "",
               endpoints: Sequence[Endpoint] | None = None,
               should_cancel: CancelCheck | None = None) -> tuple[Endpoint, Task]:
        """Which endpoint made an existing task, and the task (queries are free)."""
        extra = {} if endpoints is None else {"endpoints": endpoints}
        return locate_task(self.client, task_id=task_id, external_task_id=external_task_id, ledger=self.ledger,
                           should_cancel=should_cancel, **extra)

    @staticmethod
    def cost_report(results: Sequence[JobResult]) -> str:
        """What Kling deducted for ``results`` ('' when it said nothing)."""
        return deduction_text([r.task.final_unit_deduction for r in results])

    def _extend_source(self, request: RequestBody) -> SourceVideo | None:
        if isinstance(request, VideoExtendRequest):
            return _extend_source(self.ledger, self.client, request)
        return None


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
    if ledger is not None and _ledger_ready(ledger):
        return run_with_ledger(client, validated.request, validated.notes, dest, ledger, seed, batch_index,
                               timeout=timeout, should_cancel=should_cancel, on_status=on_status,
                               on_created=on_created, endpoint=request.endpoint, summary=summary)
    return _run_unrecorded(client, validated, dest, timeout=timeout, should_cancel=should_cancel,
                           on_status=on_status, on_created=on_created)


#: The names the CLI and the first nodes know; every endpoint goes through :func:`run_job`.
run_image_to_video = run_text_to_video = run_job


def _ledger_ready(ledger: TaskLedger) -> bool:
    try:
        ledger.ensure_ready()
    except LedgerUnavailable as exc:
        log.warning("%s; going on without it (a re-queue will create a new task)", exc)
        return False
    return True


def _run_unrecorded(client: KlingClient, validated: Validated, dest: Destination, *, timeout: float,
                    should_cancel: CancelCheck | None, on_status: StatusCallback | None,
                    on_created: Callable[[Task], None] | None) -> JobResult:
    """A plain create + finish, for when there is no usable ledger."""
    for note in validated.notes:
        log.info("%s", note)
    endpoint = validated.request.endpoint
    task = client.create_task(endpoint, codec_for(endpoint).body(validated.request), should_cancel=should_cancel)
    if on_created is not None:
        on_created(task)
    return finish_task(client, task.task_id, dest, endpoint=endpoint, timeout=timeout, should_cancel=should_cancel,
                       on_status=on_status)


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


__all__ = ["Destination", "Generation", "JobResult", "SpendGuard", "finish_task", "locate_task", "run_image_to_video",
           "run_job", "run_text_to_video"]
