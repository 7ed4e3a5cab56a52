"""Task objects as Kling returns them, read defensively (fields appear and disappear across doc versions)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import KlingProtocolError

STATUS_SUBMITTED = "submitted"
STATUS_PROCESSING = "processing"
STATUS_SUCCEED = "succeed"
STATUS_FAILED = "failed"
TERMINAL_STATUSES = frozenset({STATUS_SUCCEED, STATUS_FAILED})


@dataclass(frozen=True)
class VideoResult:
    id: str
    url: str
    duration: str = ""
    watermark_url: str = ""


@dataclass(frozen=True)
class Task:
    task_id: str
    status: str
    status_msg: str = ""
    external_task_id: str = ""
    videos: tuple[VideoResult, ...] = ()
    final_unit_deduction: str = ""
    created_at: int = 0
    updated_at: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def video(self) -> VideoResult | None:
        return self.videos[0] if self.videos else None

    @classmethod
    def from_api(cls, data: Any) -> "Task":
        if not isinstance(data, dict) or not data.get("task_id"):
            raise KlingProtocolError(f"Kling answered without a task object: {str(data)[:200]}")
        info = data.get("task_info") or {}
        result = data.get("task_result") or {}
        videos = tuple(
            VideoResult(id=str(v.get("id", "")), url=str(v.get("url", "")), duration=str(v.get("duration", "")),
                        watermark_url=str(v.get("watermark_url", "") or ""))
            for v in (result.get("videos") or []) if isinstance(v, dict)
        )
        return cls(
            task_id=str(data["task_id"]),
            status=str(data.get("task_status", "")),
            status_msg=str(data.get("task_status_msg", "") or ""),
            external_task_id=str(info.get("external_task_id", "") or ""),
            videos=videos,
            final_unit_deduction=str(data.get("final_unit_deduction", "") or ""),
            created_at=int(data.get("created_at") or 0),
            updated_at=int(data.get("updated_at") or 0),
            raw=data,
        )


@dataclass(frozen=True)
class StatusUpdate:
    """What a status callback receives about once a second while waiting."""

    task_id: str
    status: str
    elapsed: float
    remaining: float | None

    def describe(self) -> str:
        text = f"Kling task {self.status} · {self.elapsed:.0f}s elapsed"
        if self.status == STATUS_SUCCEED:
            return f"Kling task done in {self.elapsed:.0f}s · downloading the video"
        if self.status == STATUS_SUBMITTED:
            return text + " · queued at Kling"
        if self.remaining is not None:
            return text + (f" · ~{self.remaining:.0f}s remaining" if self.remaining > 0 else " · any moment now")
        return text
