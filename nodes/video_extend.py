"""Kling Video Extend: continues a video made by a Kling node (its video_id output) by 4-5 s."""
from __future__ import annotations

from typing import Any

from comfy_api.latest import io

from ..kling_api.errors import KlingValidationError
from ..kling_api.remote.client import DEFAULT_TIMEOUT_S
from ..kling_api.rules.capabilities import endpoint_facts
from ..kling_api.rules.endpoints import VIDEO_EXTEND
from ..kling_api.rules.request import VideoExtendRequest
from ..kling_api.rules.validation import extend_source_models
from .delivery import HIDDEN, OUTPUTS
from .generation import generate, queue_time_refusal
from .job_runner import external_id_for
from .shared_inputs import DEFAULT_CONCURRENCY, concurrency_input, prompt_inputs, seed_input, task_options


def extend_requests(source_video_id: str, *, prompt: str = "", negative_prompt: str = "",
                    cfg_scale: float | None = None, external_task_id: str = "",
                    callback_url: str = "") -> list[VideoExtendRequest]:
    """One request per id of a video_id output (one, or comma-separated for a batch)."""
    ids = [part.strip() for part in (source_video_id or "").split(",") if part.strip()] or [source_video_id]
    return [VideoExtendRequest(video_id=one, prompt=prompt or "", negative_prompt=negative_prompt or "",
                               cfg_scale=cfg_scale, callback_url=callback_url or None,
                               external_task_id=external_id_for(external_task_id, index, len(ids)))
            for index, one in enumerate(ids)]


class KlingVideoExtend(io.ComfyNode):
    """One extend task per video id; the result is the whole, longer video."""

    TASK_ENDPOINT = VIDEO_EXTEND  # the tasks it creates (their cost: nodes/spend_guard); no table rules

    @classmethod
    def define_schema(cls) -> io.Schema:
        facts = endpoint_facts("video-extend")
        models = ", ".join(extend_source_models())
        return io.Schema(
            node_id="KlingVideoExtend",
            display_name="Kling Video Extend",
            category="Kling",
            description=f"Continues a Kling video by about {facts.get('seconds_added', 4.5):g} s (the output is the "
                        f"whole, longer video; at most {facts.get('max_total_seconds', 180):g} s in all). Kling "
                        f"extends videos made by {models}. Credentials come from the environment or the "
                        "'Kling > API credentials' setting, never from the workflow.",
            inputs=[
                # id "source_video_id": V3 wants input and output ids distinct, and the outputs match the other nodes.
                io.String.Input("source_video_id", display_name="video_id", default="",
                                tooltip="The video_id output of a Kling node (comma-separated ids extend each). "
                                        f"Only videos made by {models} can be extended; a video this pack made "
                                        "with another model is refused before anything is sent"),
                *prompt_inputs("What happens next", "optional"),
                io.Float.Input("cfg_scale", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Prompt adherence 0-1"),
                seed_input(),
                *task_options("Your own task id (unique per account); -1, -2... added for several ids"),
                concurrency_input("Extends of several ids run at once (Kling's per-account limit applies)"),
            ],
            outputs=OUTPUTS,
            hidden=HIDDEN,
        )

    @classmethod
    def validate_inputs(cls, source_video_id: Any = None) -> bool | str:
        """Refuse a malformed video id, or ids over a spend limit, at queue time. ComfyUI lists a refusal
        under every input named here, so only the id is; the text fields (prompt lengths, external_task_id,
        callback_url) are checked when the node runs, before anything is sent."""
        if not isinstance(source_video_id, str):
            return True  # comes from a link: checked when the node runs
        try:
            requests = extend_requests(source_video_id)
        except KlingValidationError as exc:
            return str(exc)
        return queue_time_refusal(requests, cls.hidden.unique_id) or True

    @classmethod
    async def execute(cls, source_video_id: str, prompt: str, negative_prompt: str, cfg_scale: float, seed: int,
                      external_task_id: str = "", callback_url: str = "", timeout: int = int(DEFAULT_TIMEOUT_S),
                      concurrency: int = DEFAULT_CONCURRENCY) -> io.NodeOutput:
        requests = extend_requests(source_video_id, prompt=prompt, negative_prompt=negative_prompt,
                                   cfg_scale=cfg_scale, external_task_id=external_task_id, callback_url=callback_url)
        return await generate(cls.hidden.unique_id, requests, seed=seed, prompt=cls.hidden.prompt, timeout=timeout,
                              concurrency=concurrency)
