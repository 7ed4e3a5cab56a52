"""Tasks as Kling shows them and the thread that moves each one along: the legacy views (reference
sections 5.2-5.4) and the new design standard's task object (every new-standard page's "Query Task"
section; the callback page: a callback's body is that same object).

A task is ``submitted`` for ``submitted_seconds``, then ``processing`` for at least
``processing_seconds`` (longer if its video takes longer to make), then ``succeed`` or ``failed``.
Each status change is POSTed to the task's ``callback_url`` (loopback only: the emulator never
calls out to the internet).
"""
from __future__ import annotations

import ipaddress
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlparse

from ..rules.endpoints import NEW
from .rules import CreateOrder

log = logging.getLogger(__name__)

SUBMITTED, PROCESSING, SUCCEED, FAILED = "submitted", "processing", "succeed", "failed"
#: The new standard spells the finished status ``succeeded`` (its pages' enum: submitted, processing,
#: succeeded, failed); the legacy ``succeed``.
NEW_STATUS = {SUBMITTED: SUBMITTED, PROCESSING: PROCESSING, SUCCEED: "succeeded", FAILED: FAILED}
MODERATION_FAILED = "Content moderation review failed."
CALLBACK_TIMEOUT_S = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback IP literals; names are not resolved (no lookups leave the box)."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Task:
    """One task of a video endpoint; ``view`` is what GET shows, ``callback_payload`` what a callback gets."""

    task_id: str
    order: CreateOrder
    base_url: str
    #: The path it was created on (e.g. /v1/videos/image2video); its query and list are on that path too.
    endpoint: str = ""
    created_at: int = field(default_factory=now_ms)
    updated_at: int = 0
    status: str = SUBMITTED
    status_msg: str = ""
    video_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    video: bytes | None = None
    #: The made mp4's measured length in seconds, "5.041"-style (new standard's outputs[].duration).
    video_seconds: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.updated_at = self.updated_at or self.created_at

    @property
    def external_task_id(self) -> str | None:
        return self.order.external_task_id

    @property
    def is_new(self) -> bool:
        """Created on the new design standard (its views, its GET /tasks)."""
        return self.order.standard == NEW

    @property
    def new_status(self) -> str:
        return NEW_STATUS[self.status]

    @property
    def video_url(self) -> str:
        return f"{self.base_url}/_files/{self.task_id}.mp4"

    def advance(self, status: str, message: str = "", video: bytes | None = None) -> None:
        with self._lock:
            self.status, self.status_msg, self.updated_at = status, message, max(now_ms(), self.updated_at)
            if video is not None:
                self.video = video

    def units(self) -> str:
        """Units the task deducts, "0" until it succeeds (and for good when it fails: the emulator's
        choice for the new standard, where no page says; reference 1.4 saw "0" live for a failed task).

        New standard: the official price per second (price_table.json) times the requested duration
        (the page gives no rounding; the requested seconds are billed, the emulator's reading).
        Legacy: made up (the reference gives no prices): 1 unit per 5 s made in std, 2 in pro (an extend
        is billed for the seconds it adds, not for the source's)."""
        if self.status != SUCCEED:
            return "0"
        if self.order.units_per_second is not None:
            return f"{round(self.order.units_per_second * float(self.order.duration), 4):g}"
        per_5s = 2 if self.order.mode == "pro" else 1
        return f"{self.order.added_seconds / 5 * per_5s:g}"

    def created_view(self) -> dict[str, Any]:
        """The create answer's ``data``: section 5.2, or the new standard's (its pages' "Create Task")."""
        with self._lock:
            if self.is_new:
                return {"id": self.task_id, "status": self.new_status, "create_time": self.created_at,
                        "update_time": self.updated_at, "external_id": self.external_task_id or ""}
            return {"task_id": self.task_id, "task_status": self.status,
                    "task_info": {"external_task_id": self.external_task_id or ""},
                    "created_at": self.created_at, "updated_at": self.updated_at}

    def view(self) -> dict[str, Any]:
        """How a query shows the task: section 5.3 (the legacy query's ``data``, an item of its list), or
        the new standard's task object (an item of ``GET /tasks``' ``data``)."""
        return self.new_view() if self.is_new else self.legacy_view()

    def new_view(self) -> dict[str, Any]:
        """The new-standard task object. The pages do not say what ``outputs``, ``billing`` and
        ``watermark_url`` hold before success or without a watermark; the emulator's choice: ``outputs``
        empty until succeeded, one unit ``billing`` entry always ("0" until succeeded), ``message`` ""
        unless failed, ``watermark_url`` "" when no watermark was asked, ``external_id`` "" when none."""
        with self._lock:
            outputs = []
            if self.status == SUCCEED:
                outputs.append({"type": "video", "id": self.video_id, "url": self.video_url,
                                "watermark_url": self.video_url + "?watermark=1" if self.order.watermark else "",
                                "duration": self.video_seconds or f"{float(self.order.duration):.3f}"})
            return {"id": self.task_id, "status": self.new_status, "message": self.status_msg,
                    "create_time": self.created_at, "update_time": self.updated_at,
                    "external_id": self.external_task_id or "", "outputs": outputs,
                    "billing": [{"charge_type": "unit", "amount": self.units(), "package_type": "video"}]}

    def legacy_view(self) -> dict[str, Any]:
        """Section 5.3."""
        with self._lock:
            data: dict[str, Any] = {
                "task_id": self.task_id, "task_status": self.status, "task_status_msg": self.status_msg,
                "task_info": {"external_task_id": self.external_task_id or ""},
                "watermark_info": {"enabled": self.order.watermark},
                "final_unit_deduction": self.units(),
                "created_at": self.created_at, "updated_at": self.updated_at,
            }
            if self.status == SUCCEED:
                video = {"id": self.video_id, "url": self.video_url, "duration": self.order.duration}
                if self.order.watermark:
                    video["watermark_url"] = self.video_url + "?watermark=1"
                data["task_result"] = {"videos": [video]}
            return data

    def callback_payload(self) -> dict[str, Any]:
        """Not enveloped. New standard: the task object (kling-get-started-callbacks: the same fields as a
        ``GET /tasks`` entry). Legacy, section 5.4: the query answer minus watermark_info; an extend's
        ``task_info`` also names its ``parent_video``."""
        if self.is_new:
            return self.new_view()
        payload = self.legacy_view()
        payload.pop("watermark_info", None)
        source = self.order.source
        if source is not None:
            payload["task_info"]["parent_video"] = {"id": source.video_id, "url": source.url,
                                                    "duration": source.duration}
        return payload


class Lifecycle(threading.Thread):
    """Moves one task through its statuses, making its video while it is ``processing``."""

    def __init__(self, task: Task, *, submitted_s: float, processing_s: float, render: Callable[[], bytes],
                 failure: str | None, on_change: Callable[[Task], None], stop: threading.Event) -> None:
        super().__init__(name=f"kling-task-{task.task_id}", daemon=True)
        self.task, self.render, self.failure = task, render, failure
        self.submitted_s, self.processing_s = submitted_s, processing_s
        self.on_change, self.stop = on_change, stop

    def run(self) -> None:
        self.on_change(self.task)
        if self.stop.wait(self.submitted_s):
            return
        self.task.advance(PROCESSING)
        self.on_change(self.task)
        ready_at = time.monotonic() + self.processing_s
        video, failure = None, self.failure
        if failure is None:
            try:
                video = self.render()
            except Exception:  # a render bug must end the task, not leave it processing forever
                log.exception("rendering the video of task %s failed", self.task.task_id)
                failure = "Video generation failed, please try again."
        if self.stop.wait(max(0.0, ready_at - time.monotonic())):
            return
        if failure is None:
            self.task.advance(SUCCEED, video=video)
        else:
            self.task.advance(FAILED, failure)
        self.on_change(self.task)


class CallbackSender:
    """POSTs callbacks one at a time, in status order, from one background thread.

    Only loopback URLs are called; others are recorded as skipped. Each outcome goes to ``record``.
    """

    def __init__(self, record: Callable[[dict[str, Any]], None]) -> None:
        self.record = record
        self.queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.thread = threading.Thread(target=self._run, name="kling-callbacks", daemon=True)
        self.thread.start()

    def send(self, url: str, payload: dict[str, Any]) -> None:
        self.queue.put((url, payload))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=CALLBACK_TIMEOUT_S + 1)

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            url, payload = item
            entry: dict[str, Any] = {"url": url, "payload": payload, "time": time.time()}
            if not is_loopback_host(urlparse(url).hostname):
                entry["outcome"] = "skipped: not a loopback address"
                log.info("callback for task %s not sent: %s is not loopback",
                         payload.get("task_id") or payload.get("id"), url)
            else:
                request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                                 headers={"Content-Type": "application/json"})
                try:
                    with self.opener.open(request, timeout=CALLBACK_TIMEOUT_S) as response:
                        entry["outcome"] = f"HTTP {response.status}"
                except urllib.error.HTTPError as exc:
                    entry["outcome"] = f"HTTP {exc.code}"
                except Exception as exc:  # the receiver's problem; no retry is documented for Kling
                    entry["outcome"] = f"error: {type(exc).__name__}"
            self.record(entry)
