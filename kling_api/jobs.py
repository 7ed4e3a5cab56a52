"""A whole generation: create (or resume) a task, wait for it, download its video.

The CLI and the ComfyUI nodes both run this; they differ only in how they show progress
and how they cancel.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .client import DEFAULT_TIMEOUT_S, KlingClient, StatusCallback
from .errors import KlingError, KlingProtocolError
from .request import ENDPOINT_IMAGE2VIDEO, ImageToVideoRequest
from .tasks import Task
from .transport import CancelCheck

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobResult:
    task: Task
    video_path: Path

    @property
    def video_id(self) -> str:
        return self.task.video.id if self.task.video else ""


Destination = "str | Path | Callable[[Task], str | Path]"


def run_image_to_video(client: KlingClient, request: ImageToVideoRequest, dest: Destination, *,
                       timeout: float = DEFAULT_TIMEOUT_S, should_cancel: CancelCheck | None = None,
                       on_status: StatusCallback | None = None,
                       on_created: Callable[[Task], None] | None = None) -> JobResult:
    """Create one task and see it through to a file at ``dest`` (a path, or a function of the task)."""
    task = client.create_image_to_video(request, should_cancel=should_cancel)
    if on_created is not None:
        on_created(task)
    return finish_task(client, task.task_id, dest(task) if callable(dest) else dest, timeout=timeout, should_cancel=should_cancel,
                       on_status=on_status)


def finish_task(client: KlingClient, task_id: str, dest: str | Path, *, endpoint: str = ENDPOINT_IMAGE2VIDEO,
                timeout: float = DEFAULT_TIMEOUT_S, should_cancel: CancelCheck | None = None,
                on_status: StatusCallback | None = None) -> JobResult:
    """Wait for an existing task and download its video: the way to resume without paying again."""
    task = client.wait(task_id, endpoint=endpoint, timeout=timeout, should_cancel=should_cancel,
                       on_status=on_status)
    video = task.video
    if video is None or not video.url:
        raise KlingProtocolError("Kling reported success but gave no video URL", task_id=task_id)
    try:
        path = client.download(video.url, dest, should_cancel=should_cancel)
    except KlingError as exc:
        raise exc.attach_task_id(task_id)
    log.info("Kling task %s: video saved to %s", task_id, path)
    return JobResult(task=task, video_path=path)
