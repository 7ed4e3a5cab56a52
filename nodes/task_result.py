"""Kling Task Result: the way back to a paid task after a timeout or restart, without paying again."""
from __future__ import annotations

from typing import Callable

from comfy_api.latest import io

from ..kling_api.client import DEFAULT_TIMEOUT_S, KlingClient
from ..kling_api.errors import KlingAPIError, KlingValidationError
from ..kling_api.jobs import JobResult, finish_task
from ..kling_api.ledger import LedgerUnavailable, TaskLedger
from ..kling_api.request import TASK_ENDPOINTS
from ..kling_api.tasks import Task
from .credentials import node_credentials
from .delivery import OUTPUTS, output_path_for
from .job_runner import run_jobs
from .ledger import node_ledger
from .progress import StatusBoard
from .shared_inputs import advanced, timeout_input

ENDPOINT_AUTO = "auto"


class KlingTaskResult(io.ComfyNode):
    """Waits for (or loads) an existing Kling task by task_id or external_task_id."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="KlingTaskResult",
            display_name="Kling Task Result",
            category="Kling",
            description="Resumes an existing Kling task (after a timeout or a restart) and returns its video "
                        "without creating a new task.",
            inputs=[
                # id "task": V3 wants input and output ids distinct, and the outputs match Kling Image to Video.
                io.String.Input("task", display_name="task_id", default="",
                                tooltip="Kling's task id (from the task_id output or an error message)"),
                io.String.Input("external_task_id", default="", optional=True,
                                tooltip="Or your own external_task_id, used when task_id is empty"),
                timeout_input("Seconds to wait once Kling is processing"),
                # Appended last: saved workflows keep widget values by position.
                advanced(io.Combo.Input("endpoint", options=[ENDPOINT_AUTO, *TASK_ENDPOINTS], default=ENDPOINT_AUTO,
                                        optional=True,
                                        tooltip="Which Kling endpoint made the task; auto: the one this pack "
                                                "recorded, else each is asked in turn (queries cost nothing)")),
            ],
            outputs=OUTPUTS,
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, task: str | None = None, external_task_id: str | None = None) -> bool | str:
        if task is not None and external_task_id is not None and not (task.strip() or external_task_id.strip()):
            return "task_id: give a task_id or an external_task_id"
        return True

    @classmethod
    async def execute(cls, task: str, external_task_id: str = "", timeout: int = int(DEFAULT_TIMEOUT_S),
                      endpoint: str = ENDPOINT_AUTO) -> io.NodeOutput:
        client = KlingClient(node_credentials())
        ledger = node_ledger()

        def resume(index: int, board: StatusBoard) -> JobResult:
            wanted, where = task.strip(), endpoint
            candidates = TASK_ENDPOINTS if where == ENDPOINT_AUTO else (where,)
            if not wanted:
                found = locate(candidates, lambda e: client.find_task(external_task_id.strip(), endpoint=e,
                                                                      should_cancel=board.should_cancel))
                if found is None:
                    raise KlingValidationError("external_task_id", external_task_id, "the id of an existing task",
                                               f"No Kling task has external_task_id {external_task_id!r}")
                where, existing = found
                wanted = existing.task_id
            else:
                recorded = recorded_endpoint(ledger, wanted, client.base_url) if where == ENDPOINT_AUTO else None
                found = locate((recorded,) if recorded else candidates,
                               lambda e: get_or_none(client, wanted, e, board.should_cancel))
                if found is None:
                    raise KlingValidationError("task_id", wanted, "the id of an existing task",
                                               f"No Kling task has task_id {wanted!r} "
                                               f"(asked {', '.join(candidates)})")
                where, existing = found
            path = output_path_for(existing)
            if path.is_file():
                return JobResult(task=existing, video_path=path)
            return finish_task(client, wanted, path, endpoint=where, timeout=timeout,
                               should_cancel=board.should_cancel, on_status=board.reporter(index))

        return await run_jobs(cls.hidden.unique_id, 1, resume)


def locate(endpoints: tuple[str, ...], ask: Callable[[str], Task | None]) -> tuple[str, Task] | None:
    """The first endpoint that knows the task, with the task."""
    for endpoint in endpoints:
        found = ask(endpoint)
        if found is not None:
            return endpoint, found
    return None


def get_or_none(client: KlingClient, task_id: str, endpoint: str, should_cancel: Callable[[], bool]) -> Task | None:
    try:
        return client.get_task(task_id, endpoint=endpoint, should_cancel=should_cancel)
    except KlingAPIError as exc:
        if exc.code in (1201, 1203):  # not a task of this endpoint
            return None
        raise


def recorded_endpoint(ledger: TaskLedger | None, task_id: str, base_url: str) -> str | None:
    if ledger is None:
        return None
    try:
        entry = ledger.find_task(task_id, base_url=base_url)
    except LedgerUnavailable:
        return None
    return entry.endpoint if entry is not None and entry.endpoint in TASK_ENDPOINTS else None
