"""Kling Task Result: the way back to a paid task after a timeout or restart, without paying again."""
from __future__ import annotations

import asyncio

from comfy_api.latest import io

from ..kling_api.client import DEFAULT_TIMEOUT_S, KlingClient
from ..kling_api.errors import KlingCancelled, KlingValidationError
from ..kling_api.jobs import JobResult, finish_task
from .credentials import node_credentials
from .delivery import OUTPUTS, deliver, output_path_for
from .image_to_video import advanced
from .progress import StatusBoard, raise_interrupted


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
                advanced(io.Int.Input("timeout", default=int(DEFAULT_TIMEOUT_S), min=60, max=6 * 3600, optional=True,
                                      tooltip="Seconds to wait once Kling is processing")),
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
    async def execute(cls, task: str, external_task_id: str = "",
                      timeout: int = int(DEFAULT_TIMEOUT_S)) -> io.NodeOutput:
        client = KlingClient(node_credentials())
        board = StatusBoard(cls.hidden.unique_id, 1)

        def resume() -> JobResult:
            wanted = task.strip()
            if not wanted:
                found = client.find_task(external_task_id.strip(), should_cancel=board.should_cancel)
                if found is None:
                    raise KlingValidationError("external_task_id", external_task_id, "the id of an existing task",
                                               f"No Kling task has external_task_id {external_task_id!r}")
                wanted = found.task_id
            existing = client.get_task(wanted, should_cancel=board.should_cancel)
            path = output_path_for(existing)
            if path.is_file():
                return JobResult(task=existing, video_path=path)
            return finish_task(client, wanted, path, timeout=timeout, should_cancel=board.should_cancel,
                               on_status=board.reporter(0))

        ticker = asyncio.create_task(board.tick_forever())
        try:
            result = await asyncio.to_thread(resume)
        except KlingCancelled:
            raise_interrupted()
        finally:
            ticker.cancel()
        return deliver([result], board)
