"""4K inside ComfyUI: what the frames output costs when it is linked, and what the node costs when it is not.

Each run is one prompt in a fresh ComfyUI process (``benchmarks/in_host.run_prompt``: the pack linked,
timed from ``execution_start`` to ``execution_success``, the host's peak memory from its VmHWM reset just
before the prompt is queued), on 4K (3840x2160) 24 fps H.264 clips made here (``benchmarks/media.py``,
x264 ``ultrafast``):

* 3 s (72 frames, 7.2 GB as float32 IMAGE), three paths taking turns:
  - ``ours_linked``: LoadImage -> Kling Image to Video (the emulator, a 0 s task serving the clip) -> frames
    -> ImageCrop (64x64) -> PreviewImage, so the node decodes every frame;
  - ``ours_unlinked``: LoadImage -> Kling Image to Video -> video -> Save Video (auto format and codec: the
    mp4's streams copied), nothing on the frames output, so no frame is decoded;
  - ``core``: LoadVideo (the clip) -> Get Video Components -> frames -> the same crop and preview.
* 15 s (360 frames, 36 GB as IMAGE, more than the machine has): ``ours_unlinked`` only.

Peak memory growth is the host process's VmHWM after the prompt less its VmRSS just before it was queued
(idle, booted, its input uploaded). Goals: frames unlinked, growth <= 1.5 x the mp4's size + 300 MB;
frames linked, growth <= 1.1 x the tensor + 200 MB and at least 3x faster than core's path.

    python -m benchmarks --only 4k [--runs 3] [--quiet-load 2.0] [--output benchmarks/results/in_host_4k.json]
    python -m benchmarks --only 4k --quick   # the same on 640x360 clips, to try it out (not for the README)

Needs about 16 GB free for core's path (its decode holds about twice the tensor); not in the default run.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from kling_api.media.video import estimate_decoded_bytes, probe_video

from .common import API_KEY, emulator, log, median
from .in_host import _png, default_prompt, prompt_ours, run_prompt
from .media import CLIPS_4K, CLIPS_4K_QUICK, ensure_clips, ensure_photo
from .procfs import describe_memory, meminfo
from .units import GIB, MB

PRESET = "ultrafast"
#: clip name -> the paths measured on it (in this order, then reversed, ...)
PLAN = {"4k_3s": ("ours_linked", "ours_unlinked", "core"), "4k_15s": ("ours_unlinked",)}
LINKED_SPEEDUP = 3.0


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def wait_for_quiet(below: float | None, max_wait_s: float = 600.0, poll_s: float = 10.0) -> float:
    """On a shared machine: wait until the 1-minute load average is under ``below`` (None: do not wait),
    at most ``max_wait_s``; returns the seconds waited."""
    started = time.monotonic()
    while below is not None and os.getloadavg()[0] >= below and time.monotonic() - started < max_wait_s:
        time.sleep(poll_s)
    return time.monotonic() - started


def prompt_unlinked(image: str) -> dict:
    """LoadImage -> Kling Image to Video -> video -> Save Video; nothing takes the frames output."""
    prompt = prompt_ours(image)
    for node in ("8", "9"):  # the crop and preview of the frames
        del prompt[node]
    prompt["8"] = {"class_type": "SaveVideo", "inputs": {"video": ["2", 2], "filename_prefix": "video/kling_4k",
                                                         "format": "auto", "codec": "auto"}}
    return prompt


def make_prompt(path: str, host, clip: Path, picture: Path) -> dict:
    if path == "ours_linked":
        return default_prompt("ours", host, clip, picture)
    if path == "ours_unlinked":
        return prompt_unlinked(host.upload_image(picture)["name"])
    return default_prompt("core", host, clip, picture)


def bench_4k(runs: int, work: Path, rows: list, report: dict, quick: bool = False,
             quiet_load: float | None = None) -> None:
    """``runs`` of each path of :data:`PLAN`, taking turns; with ``quiet_load``, each run waits (at most
    10 min) until the 1-minute load average is under it."""
    clips = ensure_clips(work, log, CLIPS_4K_QUICK if quick else CLIPS_4K, preset=PRESET)
    picture = _png(ensure_photo(work, 1024))
    entry: dict = {"preset": PRESET, "quick": quick, "quiet_load": quiet_load, "load_average_at_start": _load(),
                   "memory_at_start": meminfo(), "clips": {}}
    log(f"4K in ComfyUI: {describe_memory(entry['memory_at_start'])}; load {entry['load_average_at_start']}")
    for name, paths in PLAN.items():
        clip = clips[name]
        info = probe_video(clip)
        data: dict = {"file": clip.name, "width": info.width, "height": info.height, "frames": info.frame_count,
                      "fps": info.fps, "mp4_bytes": clip.stat().st_size, "tensor_bytes": estimate_decoded_bytes(info),
                      "load_average_at_start": _load()}
        samples: dict[str, list[dict]] = {path: [] for path in paths}
        with emulator(submitted_seconds=0.0, processing_seconds=0.0, video_file=str(clip)) as emu:
            for rep in range(runs):
                for path in (paths if rep % 2 == 0 else paths[::-1]):
                    waited = wait_for_quiet(quiet_load)
                    load = _load()
                    log(f"4K {name} {path} run {rep + 1}/{runs} (load {load}, waited {waited:.0f} s for it)")
                    done = run_prompt(path, clip, picture, emu, API_KEY, make_prompt=make_prompt)
                    done["load_average_before"], done["waited_for_quiet_s"] = load, round(waited, 1)
                    samples[path].append(done)
                    log(f"  {done['seconds']:.2f} s, idle {done['rss_before'] / GIB:.2f} GiB, peak "
                        f"{done['peak_rss'] / GIB:.2f} GiB (+{done['peak_growth'] / 1e6:.0f} MB), frames decoded: "
                        f"{done['decoded_frames_logged']}; load {done['load_average'][0]}")
        for path, values in samples.items():
            data[path] = {"seconds": median(s["seconds"] for s in values),
                          "seconds_all": [round(s["seconds"], 3) for s in values],
                          "peak_growth": median(s["peak_growth"] for s in values),
                          "peak_growth_all": [s["peak_growth"] for s in values],
                          "peak_rss": median(s["peak_rss"] for s in values),
                          "peak_rss_all": [s["peak_rss"] for s in values],
                          "rss_before_all": [s["rss_before"] for s in values],
                          "frames_decoded_all": [s["decoded_frames_logged"] for s in values],
                          "previews": values[0]["previews"],
                          "download_started_s": [s["download_started_s"] for s in values],
                          "memory_at_start_all": [s["memory_at_start"] for s in values],
                          "load_average_before_all": [s["load_average_before"] for s in values],
                          "waited_for_quiet_s_all": [s["waited_for_quiet_s"] for s in values],
                          "load_average_after_all": [s["load_average"] for s in values]}
        data["load_average_at_end"] = _load()
        entry["clips"][name] = data
    entry["load_average_at_end"] = _load()
    report["in_host_4k"] = entry
    add_rows(entry, rows)


def add_rows(entry: dict, rows: list) -> None:
    """The table rows of one 4K measurement (``report["in_host_4k"]``)."""
    for name, data in entry["clips"].items():
        tensor, mp4 = data["tensor_bytes"], data["mp4_bytes"]
        label = (f"4K {name.split('_')[1]} ({data['width']}x{data['height']}, {data['frames']} frames, mp4 "
                 f"{mp4 / 1e6:.0f} MB, IMAGE {tensor / 1e9:.2f} GB)")
        loads = [round(x[0], 2) for path in PLAN[name] for x in data[path]["load_average_before_all"]]
        if "core" in data:
            ours, core = data["ours_linked"], data["core"]
            speedup = core["seconds"] / ours["seconds"]
            data["linked_speedup"] = speedup
            rows.append((f"{label}, frames linked: execution_start -> execution_success",
                         f"{ours['seconds']:.2f} s (all {ours['seconds_all']})",
                         f"core LoadVideo + Get Video Components {core['seconds']:.2f} s (all {core['seconds_all']}); "
                         f"load average before each run {loads}",
                         f"{speedup:.1f}x faster", f">= {LINKED_SPEEDUP:g}x", speedup >= LINKED_SPEEDUP))
            budget = 1.1 * tensor + 200 * MB
            data["linked_budget"] = budget
            rows.append((f"{label}, frames linked: host peak memory growth",
                         f"{ours['peak_growth'] / 1e9:.2f} GB ({ours['peak_growth'] / tensor:.2f}x tensor; "
                         f"peak RSS {ours['peak_rss'] / 1e9:.2f} GB)",
                         f"1.1 x tensor {tensor / 1e9:.2f} GB + 200 MB = {budget / 1e9:.2f} GB; core "
                         f"{core['peak_growth'] / 1e9:.2f} GB ({core['peak_growth'] / tensor:.2f}x tensor; peak RSS "
                         f"{core['peak_rss'] / 1e9:.2f} GB)",
                         f"{ours['peak_growth'] / budget:.2f} of budget", "<= 1.0", ours["peak_growth"] <= budget))
        unlinked = data["ours_unlinked"]
        budget = 1.5 * mp4 + 300 * MB
        data["unlinked_budget"] = budget
        versus = (f"; core's path (frames) {data['core']['seconds'] / unlinked['seconds']:.1f}x longer"
                  if "core" in data else f"; load average before each run {loads}")
        rows.append((f"{label}, frames unlinked (VIDEO -> Save Video): time and host peak memory growth",
                     f"{unlinked['seconds']:.2f} s (all {unlinked['seconds_all']}); +{unlinked['peak_growth'] / 1e6:.0f} MB "
                     f"(all {[round(g / 1e6) for g in unlinked['peak_growth_all']]}; peak RSS "
                     f"{unlinked['peak_rss'] / 1e9:.2f} GB)",
                     f"1.5 x mp4 {mp4 / 1e6:.0f} MB + 300 MB = {budget / 1e6:.0f} MB{versus}",
                     f"{unlinked['peak_growth'] / budget:.2f} of budget", "<= 1.0",
                     unlinked["peak_growth"] <= budget and not any(unlinked["frames_decoded_all"])))
