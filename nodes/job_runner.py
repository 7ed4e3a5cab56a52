"""Runs a node's Kling jobs (one, or one per batch item) with progress, Cancel and delivery.

Every Kling node has the same life: jobs on worker threads (the library blocks), a status board
ticking on the node, Cancel turning into ComfyUI's interrupt, and the videos handed on as frames,
fps and VIDEO. Only what one job does differs, so that is all a node gives.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from comfy_api.latest import io

from ..kling_api.errors import KlingCancelled
from ..kling_api.generation.life import JobResult
from .delivery import deliver
from .progress import StatusBoard, raise_interrupted

log = logging.getLogger(__name__)

#: One job: its index in the batch and the board to report to; returns the finished job.
Job = Callable[[int, StatusBoard], JobResult]


def external_id_for(base: str | None, index: int, count: int) -> str | None:
    """The external_task_id of job ``index`` of ``count``: -1, -2... added when there are several
    (Kling wants it unique per account)."""
    if not base:
        return None
    return base if count == 1 else f"{base}-{index + 1}"


async def run_jobs(unique_id: str | None, count: int, job: Job, *, concurrency: int = 1, note: str = "",
                   **delivery: Any) -> io.NodeOutput:
    """``count`` jobs, at most ``concurrency`` at once; the first failure is raised once all have
    ended (finished videos stay saved and are named in the log), Cancel interrupts the prompt.
    ``note`` stays under the status lines (the cost estimate, a balance warning)."""
    board = StatusBoard(unique_id, count, pinned=note)
    limit = asyncio.Semaphore(max(1, int(concurrency)))

    def run_one(index: int) -> JobResult:
        result = job(index, board)
        board.mark_done()
        return result

    async def limited(index: int) -> JobResult:
        async with limit:
            return await asyncio.to_thread(run_one, index)

    ticker = asyncio.create_task(board.tick_forever())
    try:
        outcomes = await asyncio.gather(*(limited(i) for i in range(count)), return_exceptions=True)
    finally:
        ticker.cancel()
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    if board.cancelled.is_set() or any(isinstance(f, KlingCancelled) for f in failures):
        log.info("Kling wait cancelled; created tasks keep running at Kling and can be resumed "
                 "with the Kling Task Result node")
        raise_interrupted()
    if failures:
        done = [o.task.task_id for o in outcomes if isinstance(o, JobResult)]
        if done:
            log.warning("Kling batch: %d of %d videos finished (tasks %s) and are saved in the output folder",
                        len(done), count, ", ".join(done))
        raise failures[0]
    board.draw()
    return deliver([o for o in outcomes if isinstance(o, JobResult)], board, **delivery)
