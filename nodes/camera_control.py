"""Kling Camera Control: a camera move for Kling Image to Video (its camera_control input)."""
from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ..kling_api.errors import KlingValidationError
from ..kling_api.rules.motion import CAMERA_AXES, CAMERA_TYPES, camera_control
from ..kling_api.rules.tooltips import camera_types_text, where_allowed

CameraControl = io.Custom("KLING_CAMERA_CONTROL")

AXIS_TOOLTIPS = {
    "horizontal": "Move the camera sideways (negative: left, positive: right)",
    "vertical": "Move the camera up or down (negative: down, positive: up)",
    "pan": "Turn the camera left or right (negative: left, positive: right)",
    "tilt": "Tilt the camera down or up (negative: down, positive: up)",
    "roll": "Roll the camera (negative: counter-clockwise, positive: clockwise)",
    "zoom": "Focal length (negative: narrower view, closer; positive: wider view)",
}


class KlingCameraControl(io.ComfyNode):
    """type 'simple' with exactly one non-zero axis, or one of the preset movements (no axes sent)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="KlingCameraControl",
            display_name="Kling Camera Control",
            category="Kling",
            description="A camera move for Kling Image to Video. 'simple': exactly one of the six axes non-zero; "
                        "the presets ignore the axes. Allowed only where the capability table says "
                        f"({where_allowed('camera_control')}; type {camera_types_text()}).",
            inputs=[io.Combo.Input("type", options=list(CAMERA_TYPES), default="simple",
                                   tooltip="simple: one axis below; the others are preset moves that take no axes "
                                           "(not offered by every model)")]
                   + [io.Float.Input(axis, default=5.0 if axis == "zoom" else 0.0, min=-10.0, max=10.0, step=0.5,
                                     tooltip=AXIS_TOOLTIPS[axis] + "; -10..10, only one axis may be non-zero")
                      for axis in CAMERA_AXES],
            outputs=[CameraControl.Output("camera_control", display_name="camera_control",
                                          tooltip="Connect to camera_control of Kling Image to Video")],
        )

    @classmethod
    def validate_inputs(cls, type: Any = None, horizontal: Any = None, vertical: Any = None, pan: Any = None,
                        tilt: Any = None, roll: Any = None, zoom: Any = None) -> bool | str:
        """The move's rule reads the type and all six axes. They are named (no ``**kwargs``): ComfyUI lists
        a refusal under every input of the signature, and with ``**kwargs`` that is every input there is."""
        axes = {"horizontal": horizontal, "vertical": vertical, "pan": pan, "tilt": tilt, "roll": roll, "zoom": zoom}
        if type is None or None in axes.values():
            return True  # a value comes from a link: checked when the node runs
        try:
            camera_control(type, **axes)
        except (KlingValidationError, TypeError, ValueError) as exc:
            return str(exc)
        return True

    @classmethod
    def execute(cls, type: str, horizontal: float, vertical: float, pan: float, tilt: float, roll: float,
                zoom: float) -> io.NodeOutput:
        return io.NodeOutput(camera_control(type, horizontal=horizontal, vertical=vertical, pan=pan, tilt=tilt,
                                            roll=roll, zoom=zoom))
