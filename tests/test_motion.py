"""kling_api.rules.motion: camera moves, masks -> mask images, trajectories -> Kling's bottom-left pixels."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from kling_api.errors import KlingValidationError
from kling_api.rules.motion import (MotionBrush, camera_control, motion_brush_fields, parse_trajectories,
                              to_kling_points)
from kling_api.rules.request import ImageToVideoRequest
from kling_api.rules.validation import validate


def png(data: str) -> Image.Image:
    img = Image.open(io.BytesIO(base64.b64decode(data)))
    assert img.format == "PNG"
    return img


def test_camera_simple_needs_exactly_one_axis_and_presets_send_no_config():
    assert camera_control("simple", zoom=-4) == {"type": "simple", "config": {
        "horizontal": 0.0, "vertical": 0.0, "pan": 0.0, "tilt": 0.0, "roll": 0.0, "zoom": -4.0}}
    for axes in ({}, {"zoom": 1, "pan": 2}):
        with pytest.raises(KlingValidationError, match="exactly one non-zero axis"):
            camera_control("simple", **axes)
    with pytest.raises(KlingValidationError, match=r"\[-10, 10\]"):
        camera_control("simple", roll=10.5)
    assert camera_control("down_back", zoom=3) == {"type": "down_back"}  # axes ignored for presets
    with pytest.raises(KlingValidationError):
        camera_control("barrel_roll")


def test_points_flip_to_bottom_left_and_scale_to_the_sent_image():
    assert to_kling_points([(0, 0), (639, 383), (10.4, 20.6)], (640, 384), (640, 384)) == [
        {"x": 0, "y": 383}, {"x": 639, "y": 0}, {"x": 10, "y": 383 - 21}]
    # the image was sent at half size: points follow it
    assert to_kling_points([(100, 50), (639, 383)], (640, 384), (320, 192)) == [
        {"x": 50, "y": 191 - 25}, {"x": 319, "y": 0}]
    with pytest.raises(KlingValidationError, match="outside the 640x384 start image"):
        to_kling_points([(0, 0), (700, 10)], (640, 384), (640, 384))


def test_trajectories_json_forms_and_errors():
    assert parse_trajectories("") == [] and parse_trajectories("[]") == []
    assert parse_trajectories('[[[1, 2], {"x": 3, "y": 4}], []]') == [[(1.0, 2.0), (3.0, 4.0)], []]
    assert parse_trajectories('{"paths": [[[1, 2], [3, 4]]]}') == [[(1.0, 2.0), (3.0, 4.0)]]
    with pytest.raises(KlingValidationError, match="not valid JSON"):
        parse_trajectories("[[1, 2")
    with pytest.raises(KlingValidationError):
        parse_trajectories('[[["a", 2]]]')
    with pytest.raises(KlingValidationError, match="at most 6"):
        parse_trajectories(str([[[1, 2], [3, 4]]] * 7))


def _disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).astype(np.float32)


def test_masks_share_one_resolution_with_the_image_aspect_and_the_request_validates():
    # a full-size static mask and a half-size dynamic mask of the same 640x384 picture
    static = 1 - _disc(384, 640, 160, 250, 60)
    dynamic = _disc(192, 320, 80, 125, 30)
    brush = MotionBrush(static_mask=static, dynamic_masks=[dynamic] + [None] * 5,
                        trajectories=[[(160, 250), (400, 100), (600, 60)]])
    fields = motion_brush_fields(brush, (640, 384), (480, 288))  # sent at 3/4 size
    sm, dm = png(fields["static_mask"]), png(fields["dynamic_masks"][0]["mask"])
    assert sm.size == dm.size == (480, 288)  # one shared resolution = the sent image's
    a = np.asarray(dm)
    assert set(np.unique(a)) <= {0, 255} and a[int(250 * 0.75), 120] == 255 and a[10, 10] == 0
    assert np.asarray(sm)[int(250 * 0.75), 120] == 0 and np.asarray(sm)[10, 10] == 255
    assert fields["dynamic_masks"][0]["trajectories"] == [
        {"x": 120, "y": 287 - 188}, {"x": 300, "y": 287 - 75}, {"x": 450, "y": 287 - 45}]
    request = ImageToVideoRequest(model_name="kling-v1-5", image="aGVsbG8=", mode="pro", duration="5", **fields)
    assert validate(request).request.dynamic_masks == fields["dynamic_masks"]


def test_brush_counts_and_shapes_are_refused_with_the_mask_named():
    disc = _disc(384, 640, 100, 100, 40)
    with pytest.raises(KlingValidationError, match="no mask connected"):
        MotionBrush().check()
    one_point = MotionBrush(dynamic_masks=[None, disc, None, None, None, None], trajectories=[[], [(1, 1)]])
    with pytest.raises(KlingValidationError, match="dynamic_mask_2 has 1 points"):
        one_point.check()
    many = MotionBrush(dynamic_masks=[disc] + [None] * 5, trajectories=[[(i, i) for i in range(78)]])
    with pytest.raises(KlingValidationError, match="2-77 points"):
        many.check()
    square = MotionBrush(dynamic_masks=[_disc(300, 300, 50, 50, 20)] + [None] * 5, trajectories=[[(1, 1), (5, 5)]])
    with pytest.raises(KlingValidationError, match="aspect ratio"):
        motion_brush_fields(square, (640, 384))
    empty = MotionBrush(static_mask=np.zeros((384, 640), np.float32))
    with pytest.raises(KlingValidationError, match="empty"):
        motion_brush_fields(empty, (640, 384))
    # six dynamic masks, 77 points each, plus a static one: the most Kling takes
    full = MotionBrush(static_mask=1 - disc, dynamic_masks=[disc] * 6, trajectories=[[(i, i) for i in range(77)]] * 6)
    fields = motion_brush_fields(full, (640, 384))
    assert len(fields["dynamic_masks"]) == 6 and all(len(d["trajectories"]) == 77 for d in fields["dynamic_masks"])
    assert validate(ImageToVideoRequest(model_name="kling-v1-5", image="aGVsbG8=", mode="pro", duration="5",
                                        **fields)).request.static_mask
