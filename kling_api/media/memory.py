"""Will the decoded frames fit in memory? Asked before a single frame is decoded.

ComfyUI keeps IMAGE frames as float32: a 15 s 4K video is 360 x 3840 x 2160 x 3 x 4 bytes, about 36 GB,
more than most machines have. Allocating that swaps the machine to death or gets the process killed,
and the paid video would look lost. So a decode that would not fit is refused up front, with its size
and the settings that make it fit; the mp4 stays saved, and a re-queue with those settings reuses it.
"""
from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass

from ..errors import KlingError

logger = logging.getLogger(__name__)

#: Caps the memory the frames may take, e.g. ``8GB`` or ``500MB`` (bytes without a unit): for a
#: machine shared with other work, and for tests that need a small budget without a huge video.
MEMORY_BUDGET_ENV = "KLING_MEMORY_BUDGET"
#: Left free beside the frames (the process, the model cache, the other outputs).
RESERVE_BYTES = 512 * 1024**2
_UNITS = {"": 1, "b": 1, "kb": 1024, "k": 1024, "mb": 1024**2, "m": 1024**2, "gb": 1024**3, "g": 1024**3,
          "tb": 1024**4, "t": 1024**4}


def size_text(nbytes: float) -> str:
    """``5.70 GB`` / ``300 MB``: how the pack writes a memory size."""
    return f"{nbytes / 1024**3:.2f} GB" if nbytes >= 1024**3 else f"{nbytes / 1024**2:.0f} MB"


def parse_size(text: str) -> int:
    """``8GB``, ``500 MB``, ``1.5g`` or plain bytes, as bytes (binary units)."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text or "")
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{MEMORY_BUDGET_ENV}={text!r} is not a size; allowed: bytes, or a number with KB, MB, GB "
                         "or TB (e.g. 8GB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def available_memory() -> int | None:
    """Bytes the frames may take now: ``MemAvailable`` (Linux), else the free physical pages, less
    :data:`RESERVE_BYTES`; ``KLING_MEMORY_BUDGET`` caps it. None when the system says nothing."""
    budget = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    cap = parse_size(budget) if budget else None
    free = _system_available()
    if free is not None:
        free = max(0, free - RESERVE_BYTES)
    if cap is None:
        return free
    return cap if free is None else min(cap, free)


def _system_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class FramePlanSize:
    """What a decode will allocate: ``frames`` in all (over ``videos``), each ``width`` x ``height``,
    taken every ``frame_stride``-th frame."""

    frames: int
    width: int
    height: int
    videos: int
    frame_stride: int = 1

    @property
    def nbytes(self) -> int:
        return self.frames * self.width * self.height * 3 * 4


class FramesTooLarge(KlingError):
    """The frames would not fit in the memory available; nothing was decoded."""

    def __init__(self, plan: FramePlanSize, available: int, saved: str = "") -> None:
        self.plan, self.available = plan, available
        fits = ", or ".join(fitting_settings(plan, available)) or "a smaller video"
        where = f" The video is saved ({saved}) and" if saved else " The"
        super().__init__(
            f"frames: {plan.frames} frames {plan.width}x{plan.height} need {size_text(plan.nbytes)} as IMAGE, "
            f"more than the {size_text(available)} of memory available (keeping {size_text(RESERVE_BYTES)} free); "
            f"nothing was decoded.{where} VIDEO and audio need no frames: unlink the frames output, or set {fits} (any one of "
            "them fits); queued again with the same inputs, the task is reused, not paid again.")


def fitting_settings(plan: FramePlanSize, available: int) -> list[str]:
    """Each of max_side, frame_cap, frame_stride set alone to a value that makes ``plan`` fit."""
    if plan.nbytes <= 0 or available <= 0:
        return []
    ratio = available / plan.nbytes
    settings = []
    longest = max(plan.width, plan.height)
    side = int(longest * math.sqrt(ratio)) // 8 * 8
    if side >= 64:
        settings.append(f"max_side {side}")
    per_frame = plan.width * plan.height * 3 * 4
    cap = available // per_frame // max(1, plan.videos)  # frames per video
    if cap >= 1:
        settings.append(f"frame_cap {cap}")
    videos = max(1, plan.videos)
    source_frames = math.ceil(plan.frames / videos) * plan.frame_stride  # per video, before the stride
    for stride in range(plan.frame_stride + 1, source_frames + 1):
        if videos * math.ceil(source_frames / stride) * per_frame <= available:
            settings.append(f"frame_stride {stride}")
            break
    return settings


def check_frames_fit(plan: FramePlanSize, saved: str = "") -> None:
    """Raise :class:`FramesTooLarge` when ``plan`` would not fit the memory available (unknown: allowed)."""
    available = available_memory()
    if available is None:
        logger.debug("free memory unknown; decoding %s of frames unchecked", size_text(plan.nbytes))
        return
    if plan.nbytes > available:
        raise FramesTooLarge(plan, available, saved)


__all__ = ["FramePlanSize", "FramesTooLarge", "MEMORY_BUDGET_ENV", "RESERVE_BYTES", "available_memory",
           "check_frames_fit", "fitting_settings", "parse_size", "size_text"]
