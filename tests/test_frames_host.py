"""Frames only when someone reads them, in a real ComfyUI against the emulator.

With nothing linked to a Kling node's frames output, no frame is decoded, and VIDEO, audio and the
preview still come out (a batch's VIDEO is its mp4s joined, not decoded). Linking the frames later runs
the node again (ComfyUI's cache follows the link; the task is reused, not paid again). Frames that would
not fit the memory are refused before decoding, with the settings that fit; the mp4 stays saved."""
from __future__ import annotations

import random
import re

import pytest

from kling_devtools import host as ch
from kling_devtools.emulator_process import EmulatorProcess
from kling_devtools.sample_images import START_NAME, write_sample_images

from kling_api.media.memory import MEMORY_BUDGET_ENV
from kling_api.media.video import probe_video
from kling_api.rules.endpoints import IMAGE2VIDEO

pytestmark = [pytest.mark.host]

FRAMES = 5 * 24  # one 5 s video at 24 fps
NOT_DECODED = "frames output not linked: no frames decoded"


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo", "SaveVideo", "SaveAudio", "PreviewImage", "ImageBatch")
    return sample_host


def creates(emulator) -> list[dict]:
    return [r for r in emulator.requests() if r["method"] == "POST" and r["path"] == IMAGE2VIDEO.create_path]


def kling(image: list, seed: int, **inputs) -> dict:
    return {"class_type": "KlingImageToVideo", "inputs": {
        "image": image, "prompt": "birds sing", "negative_prompt": "", "model_name": "kling-v2-6", "mode": "pro",
        "duration": "5", "cfg_scale": 0.5, "seed": seed, "sound": "on", **inputs}}


def video_only(seed: int, batch: bool = False, **inputs) -> dict:
    """Kling's VIDEO into Save Video and its audio into Save Audio; nothing reads the frames."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": START_NAME}},
              "2": kling(["5", 0] if batch else ["1", 0], seed, **inputs),
              "3": {"class_type": "SaveVideo", "inputs": {"video": ["2", 2], "filename_prefix": "frames_test/video",
                                                          "format": "auto", "codec": "auto"}},
              "4": {"class_type": "SaveAudio", "inputs": {"audio": ["2", 5], "filename_prefix": "frames_test/audio"}}}
    if batch:
        prompt["5"] = {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["1", 0]}}
    return prompt


def decode_lines(comfy: ch.ComfyHost) -> list[str]:
    return re.findall(r"Decoding \d+ frames of \d+x\d+", comfy.log_text())


def test_unlinked_frames_are_never_decoded_and_video_audio_and_preview_still_come_out(host, fresh_emulator):
    seed = random.randrange(1 << 40)
    decoded_before = len(decode_lines(host))
    with host.ws_messages() as ws:
        entry = host.run(video_only(seed), timeout=240)
        texts = ws.progress_texts("2")
    assert any(NOT_DECODED in text for text in texts), texts
    assert len(decode_lines(host)) == decoded_before  # not one frame decoded
    (saved,) = [p for p in host.output_files(entry, "3") if p.suffix == ".mp4"]
    info = probe_video(saved)
    assert info.frame_count == FRAMES and info.has_audio
    (audio,) = host.output_files(entry, "4")
    assert audio.stat().st_size > 0
    assert [p.name for p in host.output_files(entry, "2")] and len(creates(fresh_emulator)) == 1  # the preview

    # Linking the frames later: the node runs again (the cache follows the link), the task is reused.
    linked = {**video_only(seed), "9": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    entry = host.run(linked, timeout=240)
    assert len(host.output_files(entry, "9")) == FRAMES  # every frame reached the preview
    assert len(decode_lines(host)) == decoded_before + 1
    assert len(creates(fresh_emulator)) == 1  # nothing paid again


def test_a_batch_with_unlinked_frames_hands_on_its_videos_joined_without_decoding(host, fresh_emulator):
    decoded_before = len(decode_lines(host))
    entry = host.run(video_only(random.randrange(1 << 40), batch=True), timeout=300)
    assert len(creates(fresh_emulator)) == 2 and len(decode_lines(host)) == decoded_before
    (saved,) = [p for p in host.output_files(entry, "3") if p.suffix == ".mp4"]
    info = probe_video(saved)
    assert info.frame_count == 2 * FRAMES and abs(info.duration - 10) < 0.2 and info.has_audio


@pytest.fixture(scope="module")
def small_memory(comfy_install, tmp_path_factory):
    """A ComfyUI that may give the frames 10 MB (one 5 s video at 128 px high needs about 27 MB)."""
    with EmulatorProcess(api_key="frames-key", extra_args=["--max-height", "128"]) as emulator:
        env = {"KLING_API_BASE": emulator.url, "KLING_API_KEY": "frames-key", MEMORY_BUDGET_ENV: "10MB"}
        with ch.ComfyHost(env=env, install=comfy_install) as comfy:
            for picture in write_sample_images(tmp_path_factory.mktemp("frames-inputs")):
                comfy.upload_image(picture)
            yield comfy, emulator


def test_frames_too_large_for_memory_are_refused_before_decoding_with_settings_that_fit(small_memory):
    comfy, emulator = small_memory
    seed = random.randrange(1 << 40)
    prompt = {**video_only(seed), "9": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    with pytest.raises(ch.PromptFailed) as failed:
        comfy.run(prompt, timeout=240)
    text = str(failed.value)
    assert f"{FRAMES} frames" in text and "as IMAGE, more than the 10 MB of memory available" in text, text
    assert "nothing was decoded" in text and "unlink the frames output" in text
    assert decode_lines(comfy) == []
    (task,) = emulator.tasks()
    assert (comfy.output_dir / f"Kling_{task['task_id']}.mp4").exists()  # the paid video is kept
    cap = int(re.search(r"frame_cap (\d+)", text).group(1))
    prompt["2"]["inputs"]["frame_cap"] = cap  # the refusal's own advice
    entry = comfy.run(prompt, timeout=240)
    assert len(comfy.output_files(entry, "9")) == cap
    assert len(creates(emulator)) == 1  # the same task, not paid again
