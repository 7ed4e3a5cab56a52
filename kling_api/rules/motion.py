"""Camera control and motion brush: from what a user draws to what Kling's request takes.

No ComfyUI and no torch here: masks are numpy arrays (H, W) in 0..1 (ComfyUI's MASK convention,
1 = inside the mask), trajectories are points in the *start image's* pixel space with ComfyUI's
top-left origin. :func:`motion_brush_fields` turns them into Kling's ``static_mask`` and
``dynamic_masks``:

* every mask becomes a black/white PNG (white = the brushed area) of the size of the image that is
  actually sent, so all masks share one resolution and have exactly the image's aspect ratio
  (Kling fails the task otherwise);
* every point is scaled to the sent image (which may have been downscaled to fit 10 MB) and
  flipped to Kling's bottom-left origin: ``y' = height - 1 - y``; integers, 2-77 points per mask.
"""
from __future__ import annotations

import binascii
import io
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..errors import KlingValidationError
from .request import CAMERA_AXES, CAMERA_TYPES
from .validation import MAX_DYNAMIC_MASKS, TRAJECTORY_POINTS_5S, camera_config

#: How far a mask's aspect ratio may differ from the image's before it is refused (not stretched).
ASPECT_TOLERANCE = 0.02
MASK_THRESHOLD = 0.5
POINT_RULE = f"{TRAJECTORY_POINTS_5S[0]}-{TRAJECTORY_POINTS_5S[1]} points for a 5 s video"


@dataclass(frozen=True)
class PathColour:
    """The colour of one dynamic mask's path in the node's editor (and named in its input's tooltip)."""

    name: str
    hex: str


#: One colour per dynamic mask, in slot order (dynamic_mask_1 is red). The one place they are written:
#: the node's tooltips read the names, the editor (web/kling_trajectory.js) gets both from
#: GET /kling/trajectory_rules.
PATH_COLOURS: tuple[PathColour, ...] = (
    PathColour("red", "#ef4444"), PathColour("green", "#22c55e"), PathColour("blue", "#3b82f6"),
    PathColour("yellow", "#eab308"), PathColour("magenta", "#d946ef"), PathColour("cyan", "#06b6d4"),
)
if len(PATH_COLOURS) != MAX_DYNAMIC_MASKS:  # a mask without a colour could not be drawn
    raise RuntimeError(f"PATH_COLOURS has {len(PATH_COLOURS)} colours for {MAX_DYNAMIC_MASKS} dynamic masks")


def dynamic_mask_input(index: int) -> str:
    """The Motion Brush input of dynamic mask ``index`` (0-based): ``dynamic_mask_1`` for 0."""
    return f"dynamic_mask_{index + 1}"


def trajectory_rules() -> dict[str, Any]:
    """What the trajectory editor draws by, as JSON (GET /kling/trajectory_rules): one entry per dynamic
    mask (its input, its colour) and the points a path takes; the page holds none of these numbers."""
    lo, hi = TRAJECTORY_POINTS_5S
    return {
        "paths": [{"input": dynamic_mask_input(i), "colour": c.hex, "colour_name": c.name}
                  for i, c in enumerate(PATH_COLOURS)],
        "points": {"min": lo, "max": hi},
        "point_rule": POINT_RULE,
    }


__all__ = [
    "CAMERA_AXES",
    "CAMERA_TYPES",
    "MAX_DYNAMIC_MASKS",
    "PATH_COLOURS",
    "POINT_RULE",
    "MotionBrush",
    "PathColour",
    "camera_control",
    "dynamic_mask_input",
    "mask_png",
    "motion_brush_fields",
    "parse_trajectories",
    "trajectory_rules",
]


def camera_control(kind: str, **axes: float) -> dict[str, Any]:
    """``{"type": kind}`` for a preset, ``{"type": "simple", "config": {...}}`` with exactly one
    non-zero axis for ``simple`` (KlingValidationError otherwise, from kling_api.rules.validation)."""
    if kind != "simple":
        return camera_config(kind, None)
    return camera_config(kind, {axis: float(axes.get(axis, 0) or 0) for axis in CAMERA_AXES})


# --- trajectories ----------------------------------------------------------------------------------

def parse_trajectories(text: Any) -> list[list[tuple[float, float]]]:
    """The ``trajectories`` widget: JSON, a list per dynamic mask of points ``[x, y]`` (or
    ``{"x": .., "y": ..}``) in the start image's pixels, top-left origin. Empty text is no paths."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return []
    try:
        data = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError as exc:
        raise KlingValidationError("trajectories", text, "JSON: a list per dynamic mask of [x, y] points",
                                   f"trajectories is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if isinstance(data, dict) and "paths" in data:
        data = data["paths"]
    if not isinstance(data, list):
        raise KlingValidationError("trajectories", data, "a list per dynamic mask of [x, y] points")
    if len(data) > MAX_DYNAMIC_MASKS:
        raise KlingValidationError("trajectories", f"{len(data)} paths", f"at most {MAX_DYNAMIC_MASKS}")
    paths = []
    for i, path in enumerate(data):
        if path is None:
            paths.append([])
            continue
        if not isinstance(path, list):
            raise KlingValidationError(f"trajectories[{i}]", path, "a list of [x, y] points")
        points = []
        for j, point in enumerate(path):
            if isinstance(point, dict):
                point = [point.get("x"), point.get("y")]
            ok = isinstance(point, (list, tuple)) and len(point) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in point)
            if not ok:
                raise KlingValidationError(f"trajectories[{i}][{j}]", point, "[x, y] in image pixels")
            points.append((float(point[0]), float(point[1])))
        paths.append(points)
    return paths


def check_path(index: int, points: Sequence[tuple[float, float]]) -> None:
    """2-77 points (the 5 s rule); ``index`` is 0-based, shown 1-based like the node's inputs."""
    lo, hi = TRAJECTORY_POINTS_5S
    if not lo <= len(points) <= hi:
        raise KlingValidationError(f"trajectories[{index}]", f"{len(points)} points", POINT_RULE,
                                   f"the path of dynamic_mask_{index + 1} has {len(points)} points; "
                                   f"Kling takes {POINT_RULE} (draw it on the Kling Motion Brush node)")


def to_kling_points(points: Sequence[tuple[float, float]], source_size: tuple[int, int],
                    sent_size: tuple[int, int], index: int = 0) -> list[dict[str, int]]:
    """Points in the start image's pixels (top-left origin) -> Kling's: the sent image's pixels,
    integers, origin bottom-left (``y' = height - 1 - y``)."""
    (sw, sh), (tw, th) = source_size, sent_size
    out = []
    for j, (x, y) in enumerate(points):
        if not (-0.5 <= x <= sw - 0.5 and -0.5 <= y <= sh - 0.5):
            raise KlingValidationError(f"trajectories[{index}][{j}]", [x, y], f"a point inside the {sw}x{sh} start image",
                                       f"point {j + 1} ({x:g}, {y:g}) of the path of dynamic_mask_{index + 1} is "
                                       f"outside the {sw}x{sh} start image (was the path drawn on another image?)")
        px = min(max(int(round(x * tw / sw)), 0), tw - 1)
        py = min(max(int(round(y * th / sh)), 0), th - 1)
        out.append({"x": px, "y": th - 1 - py})
    return out


# --- masks -----------------------------------------------------------------------------------------

def _mask_array(mask: Any, field_name: str) -> np.ndarray:
    array = np.asarray(mask, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or min(array.shape) < 1:
        raise KlingValidationError(field_name, tuple(array.shape), "one MASK (a batch of 1) of shape [H, W]")
    return array


def mask_png(mask: Any, size: tuple[int, int], field_name: str = "mask") -> str:
    """One MASK as bare-base64 PNG, black/white, resized to ``size`` (width, height)."""
    array = _mask_array(mask, field_name)
    img = Image.fromarray((np.clip(array, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), mode="L")
    if img.size != tuple(size):
        img = img.resize(tuple(size), Image.BILINEAR)
    binary = img.point(lambda v: 255 if v >= MASK_THRESHOLD * 255 else 0)
    buffer = io.BytesIO()
    binary.save(buffer, format="PNG", optimize=True)
    return binascii.b2a_base64(buffer.getvalue(), newline=False).decode("ascii")


def _check_mask_shape(array: np.ndarray, image_size: tuple[int, int], field_name: str) -> None:
    h, w = array.shape
    iw, ih = image_size
    if abs((w / h) / (iw / ih) - 1) > ASPECT_TOLERANCE:
        raise KlingValidationError(field_name, f"{w}x{h}", f"the start image's aspect ratio ({iw}x{ih})",
                                   f"{field_name} is {w}x{h} but the start image is {iw}x{ih}: a mask needs "
                                   "the image's aspect ratio (make it from the same image)")
    if not (array >= MASK_THRESHOLD).any():
        raise KlingValidationError(field_name, "an empty mask", "a mask with a brushed area",
                                   f"{field_name} is empty (no pixel >= {MASK_THRESHOLD})")


@dataclass
class MotionBrush:
    """What the Kling Motion Brush node hands on: masks by slot (1-6) and the drawn paths."""

    static_mask: Any = None
    #: dynamic_mask_1..6: None where the input is not connected.
    dynamic_masks: list[Any] = field(default_factory=lambda: [None] * MAX_DYNAMIC_MASKS)
    trajectories: list[list[tuple[float, float]]] = field(default_factory=list)

    def used_slots(self) -> list[int]:
        return [i for i, m in enumerate(self.dynamic_masks) if m is not None]

    def check(self) -> None:
        """What can be checked before the start image is known: something given, every connected
        dynamic mask has a path of 2-77 points."""
        if self.static_mask is None and not self.used_slots():
            raise KlingValidationError("motion_brush", "no mask", "a static_mask and/or dynamic masks",
                                       "Kling Motion Brush has no mask connected")
        for i in self.used_slots():
            check_path(i, self.trajectories[i] if i < len(self.trajectories) else [])


def motion_brush_fields(brush: MotionBrush, image_size: tuple[int, int],
                        sent_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """``static_mask`` / ``dynamic_masks`` request fields for a start image of ``image_size``
    (width, height) that was sent as ``sent_size`` (default: the same)."""
    brush.check()
    sent = tuple(sent_size or image_size)
    fields: dict[str, Any] = {}
    if brush.static_mask is not None:
        array = _mask_array(brush.static_mask, "static_mask")
        _check_mask_shape(array, image_size, "static_mask")
        fields["static_mask"] = mask_png(array, sent, "static_mask")
    dynamic = []
    for i in brush.used_slots():
        name = f"dynamic_mask_{i + 1}"
        array = _mask_array(brush.dynamic_masks[i], name)
        _check_mask_shape(array, image_size, name)
        dynamic.append({"mask": mask_png(array, sent, name),
                        "trajectories": to_kling_points(brush.trajectories[i], image_size, sent, i)})
    if dynamic:
        fields["dynamic_masks"] = dynamic
    return fields
