"""Kling Motion Brush: a static mask and up to 6 dynamic masks, each with a path drawn on the node.

The paths live in the ``trajectories`` widget as JSON, a list per dynamic mask of ``[x, y]`` points in
the start image's pixels (top-left origin, as ComfyUI). The web extension (web/kling_trajectory.js)
draws them over the start image; Kling Image to Video converts masks and points for Kling once the
image it sends is known (kling_api.rules.motion).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from comfy_api.latest import io

from ..kling_api.errors import KlingValidationError
from ..kling_api.rules.motion import (MAX_DYNAMIC_MASKS, PATH_COLOURS, POINT_RULE, MotionBrush, check_path,
                                      dynamic_mask_input, parse_trajectories)

MotionBrushType = io.Custom("KLING_MOTION_BRUSH")
DYNAMIC_INPUTS = [dynamic_mask_input(i) for i in range(MAX_DYNAMIC_MASKS)]


def mask_array(mask: Any, name: str) -> np.ndarray | None:
    """A MASK tensor [B, H, W] (batch of 1) or [H, W] as a float numpy array [H, W]."""
    if mask is None:
        return None
    if mask.ndim == 3:
        if mask.shape[0] != 1:
            raise KlingValidationError(name, f"a batch of {mask.shape[0]}", "one mask (a batch of 1)")
        mask = mask[0]
    if mask.ndim != 2:
        raise KlingValidationError(name, tuple(mask.shape), "a MASK [H, W]")
    return mask.detach().float().cpu().numpy()


class KlingMotionBrush(io.ComfyNode):
    """Masks plus paths, for Kling Image to Video's motion_brush input (where the table allows it:
    kling-v1-5 pro 5 s)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="KlingMotionBrush",
            display_name="Kling Motion Brush",
            category="Kling",
            description="Areas that stay still (static_mask) and areas that move along a path (dynamic masks). "
                        "Draw each path on the node over the start image: click to add points, drag to move "
                        "them, right-click a point to remove it.",
            inputs=[
                io.String.Input("trajectories", default="[]",
                                tooltip="JSON: one list of [x, y] points per dynamic mask, in the start image's "
                                        "pixels (top-left origin; turned to Kling's bottom-left origin when sent); "
                                        f"each connected dynamic mask needs {POINT_RULE}. Drawn with the editor on "
                                        "this node: click to add a point, drag to move it, right-click to remove it"),
                io.Mask.Input("static_mask", optional=True,
                              tooltip="Area that should stay still; same aspect ratio as the start image"),
            ] + [io.Mask.Input(name, optional=True,
                               tooltip=f"Area that moves along path {i + 1} ({PATH_COLOURS[i].name} in the editor); "
                                       "same aspect ratio as the start image")
                 for i, name in enumerate(DYNAMIC_INPUTS)],
            outputs=[MotionBrushType.Output("motion_brush", display_name="motion_brush",
                                            tooltip="Connect to motion_brush of Kling Image to Video")],
        )

    @classmethod
    def validate_inputs(cls, trajectories: Any = None, input_types: Any = None) -> bool | str:
        linked = (input_types or [{}])[0] if isinstance(input_types, list) else (input_types or {})
        if trajectories is None:
            return True  # from a link: checked when the node runs
        try:
            paths = parse_trajectories(trajectories)
            for i, name in enumerate(DYNAMIC_INPUTS):
                if name in linked:
                    check_path(i, paths[i] if i < len(paths) else [])
        except KlingValidationError as exc:
            return str(exc)
        return True

    @classmethod
    def execute(cls, trajectories: str, static_mask=None, **dynamic: Any) -> io.NodeOutput:
        brush = MotionBrush(static_mask=mask_array(static_mask, "static_mask"),
                            dynamic_masks=[mask_array(dynamic.get(name), name) for name in DYNAMIC_INPUTS],
                            trajectories=parse_trajectories(trajectories))
        brush.check()
        return io.NodeOutput(brush)
