"""Kling Multi-Image to Video: up to four reference images composed into one video (kling-v1-6)."""
from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ..kling_api.media.images import encode_image
from ..kling_api.remote.client import DEFAULT_TIMEOUT_S
from ..kling_api.rules.capabilities import max_reference_images
from ..kling_api.rules.endpoints import MULTI_IMAGE2VIDEO
from ..kling_api.rules.request import MultiImageToVideoRequest
from .delivery import HIDDEN, OUTPUTS
from .generation import generate, queue_time_refusal
from .media import batch_images
from .shared_inputs import (PENDING_IMAGE, aspect_ratio_input, linked_types, model_inputs, prompt_inputs, seed_input,
                            task_options, wrong_link)

IMAGE_SOCKETS = ("image_1", "image_2", "image_3", "image_4")


def build_multi_request(*, model_name: str, mode: str, duration: str, aspect_ratio: str, prompt: str,
                        negative_prompt: str = "", images: tuple[str, ...] = (), external_task_id: str = "",
                        callback_url: str = "") -> MultiImageToVideoRequest:
    return MultiImageToVideoRequest(model_name=model_name, image_list=images, prompt=prompt or "",
                                    negative_prompt=negative_prompt or "", mode=mode, duration=str(duration),
                                    aspect_ratio=aspect_ratio, external_task_id=external_task_id or None,
                                    callback_url=callback_url or None)


class KlingMultiImageToVideo(io.ComfyNode):
    """One Kling task from up to four images (all the images of all four sockets, in order)."""

    TASK_ENDPOINT = MULTI_IMAGE2VIDEO  # the tasks it creates (their cost: nodes/spend_guard)
    RULES_ENDPOINT = TASK_ENDPOINT.rules  # its widgets follow the table (POST /kling/widget_plan)

    @classmethod
    def define_schema(cls) -> io.Schema:
        limit = max_reference_images()
        image_tip = (f"Reference image. All images of the {len(IMAGE_SOCKETS)} sockets, in socket order "
                     f"(a batch counts as several), make one task: at most {limit} in all")
        return io.Schema(
            node_id="KlingMultiImageToVideo",
            display_name="Kling Multi-Image to Video",
            category="Kling",
            description=f"Makes one video from up to {limit} reference images (people, objects, a scene) and a "
                        "prompt with Kling AI. Credentials come from the environment or the 'Kling > API "
                        "credentials' setting, never from the workflow.",
            inputs=[
                io.Image.Input("image_1", tooltip=image_tip),
                io.Image.Input("image_2", optional=True, tooltip=image_tip),
                io.Image.Input("image_3", optional=True, tooltip=image_tip),
                io.Image.Input("image_4", optional=True, tooltip=image_tip),
                *prompt_inputs("What the video shows, using the images", "required"),
                *model_inputs(cls.RULES_ENDPOINT, "multi-image to video"),
                aspect_ratio_input(cls.RULES_ENDPOINT),
                seed_input(),
                *task_options(),
            ],
            outputs=OUTPUTS,
            hidden=HIDDEN,
        )

    @classmethod
    def validate_inputs(cls, model_name: Any = None, mode: Any = None, duration: Any = None, prompt: Any = None,
                        aspect_ratio: Any = None, input_types: Any = None) -> bool | str:
        """Refuse invalid combinations at queue time. ComfyUI lists a refusal under every input named here:
        the combination's, the linked images and prompt (multi-image to video needs one); negative_prompt,
        external_task_id and callback_url are checked when the node runs, before anything is encoded or sent."""
        linked = linked_types(input_types)
        mismatch = wrong_link(linked, dict.fromkeys(IMAGE_SOCKETS, "IMAGE"))
        if mismatch:
            return mismatch
        if None in (model_name, mode, duration, prompt, aspect_ratio):
            return True  # a value comes from a link: checked when the node runs
        pending = tuple(PENDING_IMAGE for name in IMAGE_SOCKETS if name in linked) or (PENDING_IMAGE,)
        request = build_multi_request(model_name=model_name, mode=mode, duration=duration, aspect_ratio=aspect_ratio,
                                      prompt=prompt, images=pending)
        return queue_time_refusal([request], cls.hidden.unique_id) or True

    @classmethod
    async def execute(cls, image_1, prompt: str, negative_prompt: str, model_name: str, mode: str, duration: str,
                      aspect_ratio: str, seed: int, image_2=None, image_3=None, image_4=None,
                      external_task_id: str = "", callback_url: str = "", timeout: int = int(DEFAULT_TIMEOUT_S)) -> io.NodeOutput:
        pictures = [picture for name, socket in zip(IMAGE_SOCKETS, (image_1, image_2, image_3, image_4))
                    for picture in batch_images(socket, name)]
        base = build_multi_request(model_name=model_name, mode=mode, duration=duration, aspect_ratio=aspect_ratio,
                                   prompt=prompt, negative_prompt=negative_prompt,
                                   images=tuple(PENDING_IMAGE for _ in pictures),
                                   external_task_id=external_task_id, callback_url=callback_url)

        def with_images(index: int, request: MultiImageToVideoRequest) -> MultiImageToVideoRequest:
            """The request with every picture encoded (after the checks, so a refusal encodes nothing)."""
            return request.with_changes(image_list=tuple(encode_image(picture, field=f"image_list[{i}]").data
                                                         for i, picture in enumerate(pictures)))

        return await generate(cls.hidden.unique_id, [base], seed=seed, prompt=cls.hidden.prompt, timeout=timeout,
                              finish=with_images)
