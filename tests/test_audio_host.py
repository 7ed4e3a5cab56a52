"""Sound through ComfyUI's own audio nodes, in a real host, from the emulator's sound tasks.

kling-v2-6 pro (sound on) makes a 5 s, 24 fps video whose track is a 440 Hz tone (44.1 kHz stereo AAC).
The AUDIO output spans exactly the frames' time (5 s = 220500 samples); saved files are read back
with PyAV.
"""
from __future__ import annotations

import random
from pathlib import Path

import av
import numpy as np
import pytest

from kling_devtools import host as ch
from kling_devtools.host_workflows import WORKFLOWS, kling_video, load_ui
from kling_devtools.sample_images import START_NAME
from kling_devtools.workflow_convert import ui_to_api

from kling_api.emulator.videos import AUDIO_RATE, TONE_HZ
from kling_api.media.video import probe_video

pytestmark = [pytest.mark.host]

SECONDS = 5
FPS = 24
SAMPLES = SECONDS * AUDIO_RATE  # the AUDIO of one 5 s video: its frames' span, exactly
AAC_FRAME = 1024
SOUND_WORKFLOWS = sorted(WORKFLOWS.glob("*sound*.json"))


@pytest.fixture(scope="module")
def host(sample_host):
    sample_host.require_nodes("KlingImageToVideo", "PreviewAudio", "SaveAudio", "SaveVideo")
    return sample_host


def read_audio(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, float32 planar samples (channels, samples)) of the file's first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        parts = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
        parts += [out.to_ndarray() for out in resampler.resample(None)]
        return stream.rate, np.concatenate(parts, axis=1)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def kling_sound_node(image: list, **inputs) -> dict:
    return {"class_type": "KlingImageToVideo", "inputs": {
        "image": image, "prompt": "birds sing", "negative_prompt": "", "model_name": "kling-v2-6", "mode": "pro",
        "duration": str(SECONDS), "cfg_scale": 0.5, "seed": random.randrange(1 << 40), "sound": "on", **inputs}}


def save_video(video: list, prefix: str) -> dict:
    return {"class_type": "SaveVideo", "inputs": {"video": video, "filename_prefix": prefix, "format": "auto",
                                                  "codec": "auto"}}


def assert_tone_throughout(samples: np.ndarray, rate: int) -> None:
    """The emulator's tone (0.2 amplitude, 440 Hz) on every channel, from start to end."""
    for channel in samples:
        assert abs(dominant_hz(channel, rate) - TONE_HZ) < 2.0
        for part in np.array_split(channel[:rate * (channel.size // rate)], max(1, channel.size // rate)):
            assert 0.1 < np.sqrt(np.mean(part ** 2)) < 0.2  # the sine's RMS is 0.2 / sqrt(2) = 0.14


@pytest.fixture(scope="module")
def one_sound_task(host):
    """One kling-v2-6 pro task with sound on, its AUDIO into Preview Audio and Save Audio, its VIDEO
    into Save Video: (history entry, Kling node id)."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": START_NAME}},
              "2": kling_sound_node(["1", 0]),
              "3": {"class_type": "PreviewAudio", "inputs": {"audio": ["2", 5]}},
              "4": {"class_type": "SaveAudio", "inputs": {"audio": ["2", 5], "filename_prefix": "audio/kling_sound"}},
              "5": save_video(["2", 2], "video/kling_sound")}
    entry = host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    return entry, "2"


def test_comfyui_loads_its_audio_nodes(host, object_info):
    """torchaudio is installed: ComfyUI's audio node modules import and their nodes are registered."""
    failed = [line for line in host.log_text().splitlines()
              if ("IMPORT FAILED" in line or "Cannot import" in line) and "nodes_audio" in line]
    assert failed == []
    assert {"PreviewAudio", "SaveAudio", "LoadAudio"} <= set(object_info)
    assert object_info["SaveAudio"]["input"]["required"]["audio"][0] == "AUDIO"
    assert object_info["KlingImageToVideo"]["output"][5] == "AUDIO"


def test_audio_into_preview_audio(host, one_sound_task):
    entry, _ = one_sound_task
    files = host.output_files(entry, "3")
    assert len(files) == 1 and files[0].parent == host.temp_dir and files[0].suffix == ".flac"
    rate, samples = read_audio(files[0])
    assert rate == AUDIO_RATE and samples.shape == (2, SAMPLES)
    assert_tone_throughout(samples[:, :-AAC_FRAME], rate)  # the last AAC frame's worth may be padding


def test_audio_into_save_audio_has_the_videos_length(host, one_sound_task):
    entry, _ = one_sound_task
    files = host.output_files(entry, "4")
    assert len(files) == 1 and files[0].parent == host.output_dir / "audio" and files[0].suffix == ".flac"
    with av.open(str(files[0])) as container:
        stream = container.streams.audio[0]
        assert stream.rate == AUDIO_RATE and stream.channels == 2
    rate, samples = read_audio(files[0])
    assert samples.shape[1] == SAMPLES and samples.shape[1] / rate == SECONDS
    assert_tone_throughout(samples[:, :-AAC_FRAME], rate)


def test_video_into_save_video_keeps_its_sound(host, one_sound_task):
    entry, kling = one_sound_task
    downloaded = kling_video(host, entry, kling)
    saved = host.output_files(entry, "5")
    assert len(saved) == 1 and saved[0].suffix == ".mp4"
    info = probe_video(saved[0])
    assert info.has_audio and info.frame_count == SECONDS * FPS
    rate, samples = read_audio(saved[0])
    _, original = read_audio(downloaded)
    # The file's own track, copied: as long as the downloaded one, within an AAC frame of the video.
    assert rate == AUDIO_RATE and samples.shape == original.shape
    assert abs(samples.shape[1] - SAMPLES) <= AAC_FRAME
    assert_tone_throughout(samples, rate)


def test_a_batch_with_one_silent_video_gives_audio_of_the_summed_length(host, emulator_process):
    """Two tasks with sound on, one of which Kling delivers silent: the AUDIO is the two videos' length
    (10 s); the silent video's span is silence, the other's is its tone, in the order of the frames."""
    emulator_process.reset()
    emulator_process.set_config(silent_creates=1)
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": START_NAME}},
              "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 2}},
              "3": kling_sound_node(["2", 0], concurrency=2),
              "4": {"class_type": "SaveAudio", "inputs": {"audio": ["3", 5], "filename_prefix": "audio/kling_batch"}},
              "5": save_video(["3", 2], "video/kling_batch")}
    try:
        entry = host.run(prompt, timeout=240)
    finally:
        emulator_process.reset()
    videos = host.output_files(entry, "3")
    assert len(videos) == 2
    silent = [not probe_video(v).has_audio for v in videos]
    assert sorted(silent) == [False, True]  # exactly one video came without sound
    rate, samples = read_audio(host.output_files(entry, "4")[0])
    assert rate == AUDIO_RATE and samples.shape == (2, 2 * SAMPLES)
    for index, is_silent in enumerate(silent):
        span = samples[:, index * SAMPLES:(index + 1) * SAMPLES]
        if is_silent:
            assert not span.any()
        else:
            assert_tone_throughout(span[:, :-AAC_FRAME], rate)
    saved = host.output_files(entry, "5")[0]  # the batch's VIDEO: its frames re-encoded with the AUDIO
    info = probe_video(saved)
    assert info.has_audio and info.frame_count == 2 * SECONDS * FPS
    _, track = read_audio(saved)
    assert abs(track.shape[1] - 2 * SAMPLES) <= 2 * AAC_FRAME


def test_there_are_example_workflows_with_sound():
    assert SOUND_WORKFLOWS, "no example_workflows/*sound*.json"


@pytest.mark.parametrize("path", SOUND_WORKFLOWS, ids=lambda p: p.stem)
def test_example_workflow_with_sound_runs(host, object_info, emulator_process, path):
    ui = load_ui(path.stem)
    prompt = ui_to_api(ui, object_info)
    for node in prompt.values():
        if "seed" in node["inputs"]:
            node["inputs"]["seed"] = random.randrange(1 << 40)
    entry = host.run(prompt, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    saved = [p for n in ui["nodes"] if n["type"] == "SaveVideo" for p in host.output_files(entry, str(n["id"]))]
    assert saved, "the workflow saves no video"
    for video in saved:
        info = probe_video(video)
        assert info.has_audio, video.name
        _, samples = read_audio(video)
        assert abs(samples.shape[1] / AUDIO_RATE - info.frame_count / info.fps) <= 2 * AAC_FRAME / AUDIO_RATE
