"""ComfyUI glue for the Kling library: node schemas, tensors in and out, progress, routes."""
from __future__ import annotations

import logging
import threading

from comfy_api.latest import ComfyExtension, io

from ..kling_api.remote.ledger import LedgerUnavailable
from .camera_control import KlingCameraControl
from .image_to_video import KlingImageToVideo
from .ledger import node_ledger
from .registry import register_nodes
from .motion_brush import KlingMotionBrush
from .multi_image_to_video import KlingMultiImageToVideo
from .routes import register_routes
from .task_result import KlingTaskResult
from .text_to_video import KlingTextToVideo
from .video_extend import KlingVideoExtend

log = logging.getLogger(__name__)

NODES: list[type[io.ComfyNode]] = [KlingImageToVideo, KlingTaskResult, KlingCameraControl, KlingMotionBrush,
                                   KlingTextToVideo, KlingVideoExtend, KlingMultiImageToVideo]
register_nodes(NODES)


def prepare_ledger() -> None:
    """Sets the task ledger up while ComfyUI boots, not inside the first prompt (creating the file
    syncs the disk a few times, seconds on a busy machine); a problem with it is logged now."""
    try:
        node_ledger().ensure_ready()
    except LedgerUnavailable as exc:
        log.warning("%s; Kling nodes will run without it (a re-queue may pay again)", exc)


def start_ledger_setup() -> None:
    """Called once as ComfyUI loads the pack (0.3.75 and 0.8.0 never call ComfyExtension.on_load)."""
    threading.Thread(target=prepare_ledger, name="kling-ledger-setup", daemon=True).start()


class KlingExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


__all__ = ["KlingExtension", "NODES", "register_routes", "start_ledger_setup"]
