"""What both Kling nodes hand on: frames, fps, VIDEO, ids, and the mp4 previewed on the node."""
from __future__ import annotations

from pathlib import Path

import folder_paths
from comfy_api.latest import io, ui

from ..kling_api.generation.life import Generation, JobResult
from ..kling_api.remote.tasks import Task
from ..kling_api.rules.tooltips import models_with, where_allowed
from ..kling_api.media.memory import size_text
from .media import audio_only, decode_frames, plan_frames, video_output
from .progress import StatusBoard

OUTPUT_PREFIX = "Kling_"


def output_path_for(task: Task) -> Path:
    """``output/Kling_<task_id>.mp4``: one file per paid task, found again when the task is resumed."""
    return Path(folder_paths.get_output_directory()) / f"{OUTPUT_PREFIX}{task.task_id}.mp4"


def units_text(results: list[JobResult]) -> str:
    """Kling's final_unit_deduction of the tasks, as a line of the status text ('' when Kling gave none)."""
    text = Generation.cost_report(results)
    return "\n" + text if text else ""


def joined_path_for(results: list[JobResult]) -> Path:
    """Where a batch's videos are joined for its VIDEO output (ComfyUI's temp folder: Save Video keeps it)."""
    first = results[0].task.task_id
    return Path(folder_paths.get_temp_directory()) / f"{OUTPUT_PREFIX}{first}_batch_of_{len(results)}.mp4"


def deliver(results: list[JobResult], board: StatusBoard | None = None, *, frames: bool = True, frame_cap: int = 0,
            frame_stride: int = 1, max_side: int = 0) -> io.NodeOutput:
    """The outputs of finished tasks. ``frames`` False (nothing is linked to the frames output): no frame
    is decoded, and VIDEO, audio, fps and the preview come from the files; else the frames are decoded
    once the memory they take is known to fit (refused before decoding otherwise)."""
    paths = [r.video_path for r in results]
    plan = plan_frames(paths, frame_cap, frame_stride, max_side)
    # a batch whose videos differ in sound cannot be joined as files: its VIDEO is made from the frames
    if not frames and len({info.has_audio for info in plan.infos}) == 1:
        decoded = audio_only(paths, plan)
        if board is not None:
            board.note("frames output not linked: no frames decoded (VIDEO, audio and the preview come from the mp4)"
                       + units_text(results))
    else:
        if board is not None:  # the memory the frames will take, said before it is taken
            board.note(f"decoding {plan.describe()}")
        decoded = decode_frames(paths, frame_cap, frame_stride, max_side, plan=plan)
        if board is not None:
            shape = decoded.frames.shape
            board.note(f"{shape[0]} frames {shape[2]}x{shape[1]} @ {decoded.fps:g} fps "
                       f"({size_text(decoded.frames.numel() * 4)} as IMAGE)" + units_text(results))
    output_dir = Path(folder_paths.get_output_directory())
    previews = [ui.SavedResult(str(p.relative_to(output_dir)) if p.is_relative_to(output_dir) else p.name, "",
                               io.FolderType.output) for p in paths]
    return io.NodeOutput(
        decoded.frames,
        decoded.fps,
        video_output(paths, decoded, joined_path_for(results) if len(paths) > 1 else None),
        ",".join(r.task.task_id for r in results),
        ",".join(r.video_id for r in results),
        decoded.audio,
        ui=ui.PreviewVideo(previews),
    )


#: The hidden inputs of every node with these outputs: its id (progress) and the prompt (is anything
#: linked to its frames output? see nodes/frame_links).
HIDDEN = [io.Hidden.unique_id, io.Hidden.prompt]

OUTPUTS = [
    io.Image.Output("frames", display_name="frames", tooltip="Every frame of the video (batches: concatenated in order)"),
    io.Float.Output("fps", display_name="fps", tooltip="Frames per second of the video"),
    io.Video.Output("video", display_name="video", tooltip="The video itself (for one task: the downloaded mp4, audio "
                                                           "kept). Connect Save Video to keep it under a name of your own"),
    io.String.Output("task_id", display_name="task_id",
                     tooltip="Kling's task id (comma-separated for a batch); what Kling Task Result needs to resume"),
    io.String.Output("video_id", display_name="video_id", tooltip="Kling's video id, what an extend node needs"),
    # Appended last: saved workflows link outputs by index.
    io.Audio.Output("audio", display_name="audio",
                    tooltip=f"The video's sound track (sound on: {where_allowed('sound')}; always: "
                            f"{models_with('sound_always')}); None for a silent video. The video output keeps "
                            "the sound too"),
]
