"""Kling Task Result: the way back to a paid task after a timeout or restart, without paying again."""
from __future__ import annotations

from comfy_api.latest import io

from ..kling_api.remote.client import DEFAULT_TIMEOUT_S, KlingClient
from ..kling_api.generation.life import JobResult, finish_task, locate_task
from ..kling_api.rules.endpoints import ENDPOINTS, endpoint_named
from .credentials import node_credentials
from .delivery import HIDDEN, OUTPUTS, output_path_for
from .frame_links import frames_linked
from .job_runner import run_jobs
from .ledger import node_ledger
from .progress import StatusBoard
from .shared_inputs import advanced, timeout_input

ENDPOINT_AUTO = "auto"
#: The endpoint choices: create paths, as saved workflows hold them.
ENDPOINT_CHOICES = [ENDPOINT_AUTO, *(row.create_path for row in ENDPOINTS)]


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
                advanced(io.Combo.Input("endpoint", options=ENDPOINT_CHOICES, default=ENDPOINT_AUTO,
                                        optional=True,
                                        tooltip="Which Kling endpoint made the task; auto: the one this pack "
                                                "recorded, else each is asked in turn (queries cost nothing)")),
            ],
            outputs=OUTPUTS,
            hidden=HIDDEN,
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
            where, existing = locate_task(client, task_id=task, external_task_id=external_task_id,
                                          endpoints=ENDPOINTS if endpoint == ENDPOINT_AUTO else (endpoint_named(endpoint),),
                                          ledger=ledger if endpoint == ENDPOINT_AUTO else None,
                                          should_cancel=board.should_cancel)
            path = output_path_for(existing)
            if path.is_file():
                return JobResult(task=existing, video_path=path)
            return finish_task(client, existing.task_id, path, endpoint=where, timeout=timeout,
                               should_cancel=board.should_cancel, on_status=board.reporter(index))

        return await run_jobs(cls.hidden.unique_id, 1, resume,
                              frames=frames_linked(cls.hidden.prompt, cls.hidden.unique_id))
