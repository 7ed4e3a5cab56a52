"""Kling Image to Video: IMAGE in; frames, fps, VIDEO and ids out."""
from __future__ import annotations

import logging
from typing import Any

from comfy_api.latest import io

from ..kling_api.errors import KlingValidationError
from ..kling_api.media.images import encode_image
from ..kling_api.remote.client import DEFAULT_TIMEOUT_S
from ..kling_api.rules.endpoints import IMAGE2VIDEO
from ..kling_api.rules.motion import MotionBrush, motion_brush_fields
from ..kling_api.rules.request import ImageToVideoRequest
from ..kling_api.rules.storyboard import shots_from_lines
from ..kling_api.rules.tooltips import camera_types_text, models_with, where_allowed
from ..kling_api.rules.validation import validate
from ..kling_api.rules.widget_plan import camera_stand_in, node_tier
from .camera_control import CameraControl
from .delivery import HIDDEN, OUTPUTS
from .generation import generate, queue_time_refusal
from .job_runner import external_id_for
from .media import batch_images
from .motion_brush import MotionBrushType
from .shared_inputs import (DEFAULT_CONCURRENCY, PENDING_IMAGE, advanced, cfg_scale_input, concurrency_input,
                            linked_types, model_inputs, prompt_inputs, resolution_input, seed_input, sound_input,
                            storyboard_input, task_options, wrong_link)

log = logging.getLogger(__name__)

#: Socket types of the optional feature inputs (a wrong link is refused at queue time).
EXPECTED_TYPES = {"image": "IMAGE", "image_tail": "IMAGE", "camera_control": "KLING_CAMERA_CONTROL",
                  "motion_brush": "KLING_MOTION_BRUSH"}
#: Said wherever the frames' memory can be chosen: ComfyUI keeps IMAGE frames as float32.
FRAME_MEMORY = ("Frames are float32: 24 MB per 1080p frame, 11 MB per 720p frame, so 10 s of 1080p at 24 fps "
                "is 5.7 GB; the status text shows the size before decoding. The video output is not affected.")


def build_request(*, model_name: str, mode: str, duration: str, prompt: str = "", negative_prompt: str = "",
                  cfg_scale: float | None = None, has_tail: bool = False, external_task_id: str = "",
                  callback_url: str = "", camera_control: dict[str, Any] | None = None,
                  has_camera: bool = False, has_motion_brush: bool = False,
                  sound: str | None = None, resolution: str | None = None,
                  storyboard: str | None = None) -> ImageToVideoRequest:
    """The request as far as the widgets decide it; the images (and masks) are filled in per batch item.
    ``storyboard``: the widget's text, one ``SECONDS: TEXT`` shot per line (refused naming the line).
    ``has_camera`` without ``camera_control`` (queue time: the value comes from a link) checks the
    model/mode/duration and the exclusions with a stand-in move of a type the model offers."""
    if has_camera and camera_control is None:
        camera_control = camera_stand_in(model_name)
    return ImageToVideoRequest(
        model_name=model_name, image=PENDING_IMAGE, image_tail=PENDING_IMAGE if has_tail else None,
        prompt=prompt or "", negative_prompt=negative_prompt or "", duration=str(duration),
        **node_tier(model_name, mode, resolution),
        cfg_scale=cfg_scale, external_task_id=external_task_id or None, callback_url=callback_url or None,
        camera_control=camera_control, static_mask=PENDING_IMAGE if has_motion_brush else None,
        sound=sound or None, shots=shots_from_lines(storyboard),
    )


class KlingImageToVideo(io.ComfyNode):
    """Submits one Kling task per start image, waits (Cancel works), returns the video as frames."""

    TASK_ENDPOINT = IMAGE2VIDEO  # the tasks it creates (their cost: nodes/spend_guard)
    RULES_ENDPOINT = TASK_ENDPOINT.rules  # its widgets follow the table (POST /kling/widget_plan)

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="KlingImageToVideo",
            display_name="Kling Image to Video",
            category="Kling",
            description="Turns an image into a video with Kling AI. Credentials come from the environment or "
                        "the 'Kling > API credentials' setting, never from the workflow.",
            inputs=[
                io.Image.Input("image", tooltip="Start frame. A batch of B images makes B Kling tasks (one video each)"),
                *prompt_inputs("What should happen in the video"),
                *model_inputs(cls.RULES_ENDPOINT, "image to video"),
                cfg_scale_input(cls.RULES_ENDPOINT),
                seed_input(),
                io.Image.Input("image_tail", optional=True,
                               tooltip="Optional end frame (start+end mode), only where the model/mode/duration allow "
                                       f"it ({where_allowed('image_tail')}); the node warns and offers a one-click fix "
                                       "otherwise. Batch of 1 (shared) or B"),
                *task_options("Your own task id (unique per account); -1, -2... added for batches"),
                concurrency_input("Tasks of a batch run at once (Kling's per-account limit applies)"),
                CameraControl.Input("camera_control", optional=True,
                                    tooltip="Optional camera move from Kling Camera Control, only where the table "
                                            f"allows it ({where_allowed('camera_control')}; type {camera_types_text()}); "
                                            "not together with image_tail or motion_brush"),
                MotionBrushType.Input("motion_brush", optional=True,
                                      tooltip="Optional masks and paths from Kling Motion Brush, only where the table "
                                              f"allows it ({where_allowed('motion_brush')}); not together with "
                                              "image_tail or camera_control"),
                advanced(io.Int.Input("frame_cap", default=0, min=0, max=100000, optional=True,
                                      tooltip="At most this many frames per video in the frames output (0: all). "
                                              + FRAME_MEMORY)),
                advanced(io.Int.Input("frame_stride", default=1, min=1, max=1000, optional=True,
                                      tooltip="Keep every n-th frame (fps divided by n); skipped frames are never "
                                              "converted. " + FRAME_MEMORY)),
                advanced(io.Int.Input("max_side", default=0, min=0, max=8192, step=2, optional=True,
                                      tooltip="Longest side of the frames output in pixels, aspect kept, resized "
                                              "while decoding (0: as generated). " + FRAME_MEMORY)),
                # Appended last: saved workflows keep widget values by position.
                sound_input(cls.RULES_ENDPOINT, "the video carries an audio track, also given as the audio output; "
                                                "not with image_tail on "
                                                + models_with("image_tail_requires_silence", wanted=True)),
                resolution_input(cls.RULES_ENDPOINT),
                storyboard_input(cls.RULES_ENDPOINT),
            ],
            outputs=OUTPUTS,
            hidden=HIDDEN,
        )

    @classmethod
    def validate_inputs(cls, model_name: Any = None, mode: Any = None, duration: Any = None, sound: Any = None,
                        resolution: Any = None, storyboard: Any = None, input_types: Any = None) -> bool | str:
        """Refuse invalid combinations at queue time, before any image is encoded or request sent. ComfyUI
        lists a refusal under every input named here, so only the inputs of the combination rules and the
        spend guard are; the text fields (prompt lengths, negative_prompt on the new API, external_task_id,
        callback_url) are checked when the node runs, still before anything is encoded or sent."""
        linked = linked_types(input_types)
        mismatch = wrong_link(linked, EXPECTED_TYPES)
        if mismatch:
            return mismatch
        if None in (model_name, mode, duration):
            return True  # a value comes from a link: checked when the node runs
        try:
            request = build_request(model_name=model_name, mode=mode, duration=duration,
                                    has_tail="image_tail" in linked, has_camera="camera_control" in linked,
                                    has_motion_brush="motion_brush" in linked,
                                    sound=sound if isinstance(sound, str) else None,
                                    resolution=resolution if isinstance(resolution, str) else None,
                                    storyboard=storyboard)  # its shots must add up to the duration
        except KlingValidationError as exc:  # a storyboard line not of the SECONDS: TEXT form
            return str(exc)
        return queue_time_refusal([request], cls.hidden.unique_id) or True

    @classmethod
    async def execute(cls, image, prompt: str, negative_prompt: str, model_name: str, mode: str, duration: str,
                      cfg_scale: float, seed: int, image_tail=None, external_task_id: str = "",
                      callback_url: str = "", timeout: int = int(DEFAULT_TIMEOUT_S),
                      concurrency: int = DEFAULT_CONCURRENCY, camera_control: dict[str, Any] | None = None,
                      motion_brush: MotionBrush | None = None, frame_cap: int = 0, frame_stride: int = 1,
                      max_side: int = 0, sound: str = "off", resolution: str = "720p",
                      storyboard: str = "") -> io.NodeOutput:
        starts = batch_images(image, "image")
        tails = batch_images(image_tail, "image_tail")
        if tails and len(tails) not in (1, len(starts)):
            raise KlingValidationError("image_tail", f"a batch of {len(tails)}",
                                       f"1 or {len(starts)} (the size of the image batch)")
        base = build_request(model_name=model_name, mode=mode, duration=duration, prompt=prompt,
                             negative_prompt=negative_prompt, cfg_scale=cfg_scale, has_tail=bool(tails),
                             external_task_id=external_task_id, callback_url=callback_url,
                             camera_control=camera_control, has_motion_brush=motion_brush is not None,
                             sound=sound, resolution=resolution, storyboard=storyboard)
        validate(base)  # a bad combination is refused before any mask is checked or image encoded
        if motion_brush is not None:
            motion_brush.check()

        def with_images(index: int, request: ImageToVideoRequest) -> ImageToVideoRequest:
            """Batch item ``index`` with its start (and end) frame encoded, masks scaled to the image."""
            start = encode_image(starts[index], field="image")
            tail = encode_image(tails[min(index, len(tails) - 1)], field="image_tail") if tails else None
            brush = {}
            if motion_brush is not None:
                height, width = starts[index].shape[:2]
                brush = {"static_mask": None, **motion_brush_fields(motion_brush, (width, height),
                                                                     (start.width, start.height))}
            return request.with_changes(image=start.data, image_tail=tail.data if tail else None,
                                        external_task_id=external_id_for(base.external_task_id, index, len(starts)),
                                        **brush)

        return await generate(cls.hidden.unique_id, [base] * len(starts), seed=seed, prompt=cls.hidden.prompt,
                              timeout=timeout, concurrency=concurrency, finish=with_images,  # B images: B tasks
                              frame_cap=frame_cap, frame_stride=frame_stride, max_side=max_side)
