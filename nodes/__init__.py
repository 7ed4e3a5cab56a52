"""ComfyUI glue for the Kling library: node schemas, tensors in and out, progress, routes."""
from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .camera_control import KlingCameraControl
from .image_to_video import KlingImageToVideo
from .motion_brush import KlingMotionBrush
from .multi_image_to_video import KlingMultiImageToVideo
from .routes import register_routes
from .task_result import KlingTaskResult
from .text_to_video import KlingTextToVideo
from .video_extend import KlingVideoExtend

NODES: list[type[io.ComfyNode]] = [KlingImageToVideo, KlingTaskResult, KlingCameraControl, KlingMotionBrush,
                                   KlingTextToVideo, KlingVideoExtend, KlingMultiImageToVideo]


class KlingExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES


__all__ = ["KlingExtension", "NODES", "register_routes"]
