"""Kling Text to Video: a prompt in; the same outputs, progress, Cancel, ledger and errors as Image to Video."""
from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ..kling_api.errors import KlingValidationError
from ..kling_api.remote.client import DEFAULT_TIMEOUT_S
from ..kling_api.rules.endpoints import TEXT2VIDEO
from ..kling_api.rules.request import TextToVideoRequest
from ..kling_api.rules.storyboard import shots_from_lines
from ..kling_api.rules.widget_plan import node_tier
from .delivery import HIDDEN, OUTPUTS
from .generation import generate, queue_time_refusal
from .shared_inputs import (aspect_ratio_input, cfg_scale_input, model_inputs, prompt_inputs, resolution_input,
                            seed_input, sound_input, storyboard_input, task_options)


def build_text_request(*, model_name: str, mode: str, duration: str, prompt: str, negative_prompt: str = "",
                       aspect_ratio: str = "16:9", cfg_scale: float | None = None, sound: str | None = None,
                       external_task_id: str = "", callback_url: str = "",
                       resolution: str | None = None, storyboard: str | None = None) -> TextToVideoRequest:
    """The request the widgets make (``storyboard``: one ``SECONDS: TEXT`` shot per line, refused naming the
    line when not of that form)."""
    return TextToVideoRequest(model_name=model_name, prompt=prompt or "", negative_prompt=negative_prompt or "",
                              duration=str(duration), aspect_ratio=aspect_ratio, cfg_scale=cfg_scale,
                              **node_tier(model_name, mode, resolution),
                              sound=sound or None, external_task_id=external_task_id or None,
                              callback_url=callback_url or None, shots=shots_from_lines(storyboard))


class KlingTextToVideo(io.ComfyNode):
    """Submits one Kling text-to-video task, waits (Cancel works), returns the video as frames."""

    TASK_ENDPOINT = TEXT2VIDEO  # the tasks it creates (their cost: nodes/spend_guard)
    RULES_ENDPOINT = TASK_ENDPOINT.rules  # its widgets follow the table (POST /kling/widget_plan)

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="KlingTextToVideo",
            display_name="Kling Text to Video",
            category="Kling",
            description="Makes a video from a text prompt with Kling AI. Credentials come from the environment or "
                        "the 'Kling > API credentials' setting, never from the workflow.",
            inputs=[
                *prompt_inputs("What the video shows", "required"),
                *model_inputs(cls.RULES_ENDPOINT, "text to video"),
                aspect_ratio_input(cls.RULES_ENDPOINT),
                cfg_scale_input(cls.RULES_ENDPOINT),
                seed_input(),
                sound_input(cls.RULES_ENDPOINT, "the video and the audio output carry it"),
                *task_options(),
                resolution_input(cls.RULES_ENDPOINT),
                storyboard_input(cls.RULES_ENDPOINT),
            ],
            outputs=OUTPUTS,
            hidden=HIDDEN,
        )

    @classmethod
    def validate_inputs(cls, model_name: Any = None, mode: Any = None, duration: Any = None, prompt: Any = None,
                        aspect_ratio: Any = None, sound: Any = None, resolution: Any = None,
                        storyboard: Any = None) -> bool | str:
        """Refuse invalid combinations at queue time. ComfyUI lists a refusal under every input named here:
        the combination's, and prompt because text to video needs one; negative_prompt, external_task_id and
        callback_url are checked when the node runs, before anything is sent."""
        if None in (model_name, mode, duration, prompt, aspect_ratio):
            return True  # a value comes from a link: checked when the node runs
        try:
            request = build_text_request(model_name=model_name, mode=mode, duration=duration, prompt=prompt,
                                         aspect_ratio=aspect_ratio, sound=sound if isinstance(sound, str) else None,
                                         resolution=resolution if isinstance(resolution, str) else None,
                                         storyboard=storyboard)  # its shots must add up to the duration
        except KlingValidationError as exc:  # a storyboard line not of the SECONDS: TEXT form
            return str(exc)
        return queue_time_refusal([request], cls.hidden.unique_id) or True

    @classmethod
    async def execute(cls, prompt: str, negative_prompt: str, model_name: str, mode: str, duration: str,
                      aspect_ratio: str, cfg_scale: float, seed: int, sound: str = "off", external_task_id: str = "",
                      callback_url: str = "", timeout: int = int(DEFAULT_TIMEOUT_S),
                      resolution: str = "720p", storyboard: str = "") -> io.NodeOutput:
        request = build_text_request(model_name=model_name, mode=mode, duration=duration, prompt=prompt,
                                     negative_prompt=negative_prompt, aspect_ratio=aspect_ratio, cfg_scale=cfg_scale,
                                     sound=sound, external_task_id=external_task_id, callback_url=callback_url,
                                     resolution=resolution, storyboard=storyboard)
        return await generate(cls.hidden.unique_id, [request], seed=seed, prompt=cls.hidden.prompt, timeout=timeout)
