"""Progress text, progress bar and Cancel for a node that waits on Kling in worker threads.

The library reports status from worker threads into a :class:`StatusBoard`; one ticker on the
event loop draws it once a second, so ComfyUI's hooks (which may raise on interrupt) never run
inside the library's threads.
"""
from __future__ import annotations

import asyncio
import logging
import threading

import comfy.model_management
import comfy.utils
from server import PromptServer

from ..kling_api.remote.tasks import StatusUpdate

log = logging.getLogger(__name__)

TICK_S = 1.0


def interrupted() -> bool:
    """ComfyUI's Cancel flag, read without clearing it."""
    return comfy.model_management.processing_interrupted()


def raise_interrupted() -> None:
    """Turn a cancel into ComfyUI's clean 'interrupted' state rather than an error."""
    comfy.model_management.throw_exception_if_processing_interrupted()
    raise comfy.model_management.InterruptProcessingException()


class StatusBoard:
    """Latest status of each task of one node run, written from threads, read by the ticker."""

    def __init__(self, node_id: str | None, total: int, pinned: str = "") -> None:
        self.node_id = node_id
        self.total = total
        self.pinned = pinned  # shown under the status until the run ends (the cost estimate)
        self._lock = threading.Lock()
        self._updates: dict[int, StatusUpdate] = {}
        self._extra: str = ""
        self._done = 0
        self._bar = comfy.utils.ProgressBar(100, node_id=node_id) if node_id is not None else None
        self.cancelled = threading.Event()

    def should_cancel(self) -> bool:
        """The library's cancel callback (called from worker threads)."""
        if self.cancelled.is_set():
            return True
        if interrupted():
            self.cancelled.set()
        return self.cancelled.is_set()

    def reporter(self, index: int):
        def report(update: StatusUpdate) -> None:
            with self._lock:
                self._updates[index] = update
        return report

    def mark_done(self) -> None:
        with self._lock:
            self._done += 1

    def note(self, text: str) -> None:
        with self._lock:
            self._extra = text
        self.draw()

    def text(self) -> str:
        with self._lock:
            updates = dict(self._updates)
            extra = self._extra
            done = self._done
        if not updates:
            lines = ["Kling: submitting" + (f" {self.total} tasks" if self.total > 1 else "")]
        elif self.total == 1:
            lines = [updates[0].describe()] if 0 in updates else []
        else:
            lines = [f"Kling: {done}/{self.total} videos done"]
            lines += [f"[{i + 1}] {u.describe()}" for i, u in sorted(updates.items())]
        if extra:
            lines.append(extra)
        if self.pinned:
            lines.append(self.pinned)
        return "\n".join(lines)

    def fraction(self) -> float:
        with self._lock:
            updates = list(self._updates.values())
            done = self._done
        partial = 0.0
        for u in updates:
            if u.remaining is not None and u.elapsed > 0:
                partial += min(0.99, u.elapsed / (u.elapsed + u.remaining)) if u.remaining > 0 else 0.99
        return min(1.0, max(done, partial) / max(1, self.total))

    def draw(self) -> None:
        if self.node_id is None:
            return
        server = getattr(PromptServer, "instance", None)
        if server is not None:
            server.send_progress_text(self.text(), self.node_id)

    async def tick_forever(self) -> None:
        """Redraw once a second until cancelled; the progress bar update also notices interrupts."""
        while True:
            self.draw()
            if self._bar is not None and not self.should_cancel():
                try:
                    self._bar.update_absolute(int(self.fraction() * 100))
                except comfy.model_management.InterruptProcessingException:
                    self.cancelled.set()  # the hook consumed the flag: keep the news for the workers
            await asyncio.sleep(TICK_S)
