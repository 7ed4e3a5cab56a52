"""Speed where users wait: one prompt inside a fresh ComfyUI, ours against core's path, quiet and loaded.

Each run boots a fresh ComfyUI (the pack linked, as a user has it), queues one prompt and times it
from ``execution_start`` to ``execution_success`` (the timestamps ComfyUI puts on its websocket
messages):

* ours: LoadImage -> Kling Image to Video (the emulator, a 0 s task serving the benchmark's 10 s 1080p
  clip) -> ImageCrop -> PreviewImage;
* core: LoadVideo (the same clip) -> Get Video Components -> ImageCrop -> PreviewImage.

The host process's peak memory growth during the prompt is the kernel's VmHWM (reset through
``/proc/<pid>/clear_refs`` just before queueing) less its resident size then. The loaded run does the
same while a background process keeps rewriting a file as large as the free memory (4-12 GiB), so
that the page cache fills the machine's free memory and stays dirty (the kernel must write it back
and reclaim it while the prompt takes fresh memory); the file is deleted afterwards
(``benchmarks/page_cache.py``).

    python -m benchmarks --only in_host [--runs 3]
"""
from __future__ import annotations

import os
import random
import time
from pathlib import Path

from kling_api.media.video import estimate_decoded_bytes, probe_video
from kling_devtools.host import ComfyHost

from .common import API_KEY, ROOT, emulator, log, median
from .page_cache import PageCacheWriter
from .procfs import describe_memory, meminfo, process_status, reset_peak
from .units import GIB, MB

CLIP = "1080p_10s"
CROP = {"width": 64, "height": 64, "x": 928, "y": 508}
PROMPT_TIMEOUT_S = 900
PATHS = ("ours", "core")


# --- the two prompts ----------------------------------------------------------------------------

def _tail(source: list) -> dict:
    return {"8": {"class_type": "ImageCrop", "inputs": {"image": source, **CROP}},
            "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}}


def prompt_ours(image: str) -> dict:
    """LoadImage -> Kling Image to Video -> crop -> preview (kling-v2-5-turbo pro 10 s: 1080p, 24 fps)."""
    return {"1": {"class_type": "LoadImage", "inputs": {"image": image}},
            "2": {"class_type": "KlingImageToVideo", "inputs": {
                "image": ["1", 0], "prompt": "benchmark", "negative_prompt": "", "model_name": "kling-v2-5-turbo",
                "mode": "pro", "duration": "10", "cfg_scale": 0.5, "seed": random.randrange(1 << 40)}},
            **_tail(["2", 0])}


def prompt_core(video: str) -> dict:
    """LoadVideo -> Get Video Components -> crop -> preview."""
    return {"1": {"class_type": "LoadVideo", "inputs": {"file": video}},
            "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
            **_tail(["2", 0])}


# --- one run ------------------------------------------------------------------------------------

def default_prompt(path: str, host: ComfyHost, clip: Path, picture: Path) -> dict:
    """The prompt of ``path`` (one of PATHS), its input uploaded to ``host``."""
    if path == "ours":
        return prompt_ours(host.upload_image(picture)["name"])
    return prompt_core(host.upload_image(clip)["name"])


def run_prompt(path: str, clip: Path, picture: Path, emulator, api_key: str, task_seconds: float = 0.0,
               make_prompt=default_prompt) -> dict:
    """One fresh ComfyUI, one prompt of ``path`` (``make_prompt(path, host, clip, picture)``, by default one
    of PATHS): seconds and memory facts; for ours also when the video's download started (after the create
    and the polls), from the emulator's record."""
    env = {"KLING_API_BASE": emulator.url, "KLING_API_KEY": api_key}
    emulator.reset()
    emulator.configure(processing_seconds=task_seconds)
    at_start = meminfo()
    with ComfyHost(env=env, pack_dir=ROOT, boot_timeout=600) as host:  # a loaded machine boots it slowly
        host.require_nodes("KlingImageToVideo", "GetVideoComponents", "ImageCrop")
        prompt = make_prompt(path, host, clip, picture)
        pid = host.pid
        with host.ws_messages() as ws:
            rss_before = process_status("VmRSS", pid)
            exact = reset_peak(pid)
            queued = time.monotonic()
            prompt_id = host.queue(prompt)
            done = ws.wait_done(prompt_id, timeout=PROMPT_TIMEOUT_S)
            wall = time.monotonic() - queued
            peak = process_status("VmHWM", pid)
            if done["type"] != "execution_success":
                raise RuntimeError(f"{path}: {done}\n{host.log_tail(40)}")
            start = next(m for m in ws.for_prompt(prompt_id) if m["type"] == "execution_start")
        seconds = (done["data"]["timestamp"] - start["data"]["timestamp"]) / 1000
        previews = len(host.output_files(host.wait(prompt_id, timeout=120)))
        decoded_frames = "Decoding " in host.log_path.read_text(errors="replace")  # nodes/media.decode_frames' log
    downloads = [r["time"] for r in emulator.requests if r["path"].startswith("/_files/")]
    download_at = downloads[0] - start["data"]["timestamp"] / 1000 if downloads else None
    polls = sum(1 for r in emulator.requests if r["method"] == "GET" and r["path"].startswith("/v1/"))
    return {"seconds": seconds, "download_started_s": download_at, "polls": polls, "queue_to_success_s": wall,
            "rss_before": rss_before, "peak_rss": peak,
            "peak_growth": peak - rss_before, "peak_exact": exact, "previews": previews, "decoded_frames_logged": decoded_frames,
            "memory_at_start": at_start, "load_average": [round(x, 2) for x in os.getloadavg()]}


# --- the scenario ----------------------------------------------------------------------------------

def _png(photo: Path) -> Path:
    """The start picture: 16:9 like the clip (Kling keeps the start image's aspect ratio)."""
    import numpy as np
    from PIL import Image

    path = photo.with_name(photo.stem + "_16x9.png")
    if not path.is_file():
        pixels = np.load(photo)
        height = pixels.shape[1] * 9 // 16
        Image.fromarray(pixels[:height]).save(path)
    return path


def bench_in_host(runs: int, clip: Path, photo: Path, work: Path, rows: list, report: dict) -> None:
    """Quiet, then loaded: ``runs`` of each path, interleaved (in PATHS' order, then reversed, ...)."""
    picture = _png(photo)
    tensor = estimate_decoded_bytes(probe_video(clip))
    entry: dict = {"clip": CLIP, "tensor_bytes": tensor, "crop": CROP}
    with emulator(submitted_seconds=0.0, processing_seconds=0.0, video_file=str(clip)) as emu:
        for phase in ("quiet", "loaded"):
            samples: dict[str, list[dict]] = {path: [] for path in PATHS}
            state = {"memory_at_start": meminfo(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
            log(f"in ComfyUI, {phase}: {describe_memory(state['memory_at_start'])}; "
                f"load {state['load_average_at_start']}")

            def measure_all() -> None:
                for rep in range(runs):
                    for path in (PATHS if rep % 2 == 0 else PATHS[::-1]):
                        log(f"in ComfyUI {phase}: {path} run {rep + 1}/{runs}")
                        samples[path].append(run_prompt(path, clip, picture, emu, API_KEY))
                        done = samples[path][-1]
                        download = ("" if done["download_started_s"] is None
                                    else f" (download started at {done['download_started_s']:.2f} s, "
                                         f"{done['polls']} polls)")
                        log(f"  {done['seconds']:.2f} s{download}, peak +{done['peak_growth'] / GIB:.2f} GiB; "
                            f"at its start: "
                            f"{describe_memory(done['memory_at_start'])}, load {done['load_average'][0]}")

            if phase == "quiet":
                measure_all()
            else:
                writer = PageCacheWriter(work)
                log(f"starting the page-cache writer ({writer.file_bytes / GIB:.1f} GiB file, rewritten in a loop)")
                with writer:
                    state["writer_file_bytes"] = writer.file_bytes
                    state["writer_bytes_before"] = writer.written
                    state["memory_when_dirty"] = meminfo()
                    log(f"  writer has written {writer.written / GIB:.1f} GiB: "
                        f"{describe_memory(state['memory_when_dirty'])}")
                    measure_all()
                    state["writer_bytes_after"] = writer.written
                # write() calls, not disk writes: most land on pages that are still dirty.
                state["writer_written_gib_during_runs"] = round(
                    (state["writer_bytes_after"] - state["writer_bytes_before"]) / GIB, 1)
            phase_entry = {**state}
            for path, values in samples.items():
                phase_entry[path] = {"seconds": median(s["seconds"] for s in values),
                                     "seconds_all": [round(s["seconds"], 3) for s in values],
                                     "peak_growth": median(s["peak_growth"] for s in values),
                                     "peak_growth_all": [s["peak_growth"] for s in values],
                                     "previews": values[0]["previews"],
                                     "download_started_s": [s["download_started_s"] for s in values],
                                     "memory_at_start_all": [s["memory_at_start"] for s in values],
                                     "load_average_all": [s["load_average"] for s in values]}
            phase_entry["speedup"] = phase_entry["core"]["seconds"] / phase_entry["ours"]["seconds"]
            entry[phase] = phase_entry
    report["in_host"] = entry
    add_rows(entry, rows)


def add_rows(entry: dict, rows: list) -> None:
    """The table rows of one in-host measurement (``report["in_host"]``)."""
    tensor = entry["tensor_bytes"]
    budget = 1.1 * tensor + 200 * MB
    quiet, loaded = entry["quiet"], entry["loaded"]
    entry["peak_growth_vs_budget"] = max(quiet["ours"]["peak_growth"], loaded["ours"]["peak_growth"]) / budget
    for phase, target in (("quiet", 4.0), ("loaded", 2.0)):
        data = entry[phase]
        memory = data["memory_at_start"]
        dirty = [round((m["Dirty"] + m["Writeback"]) / GIB, 1) for path in PATHS
                 for m in data[path]["memory_at_start_all"]]
        if phase == "loaded":
            context = (f"a {data['writer_file_bytes'] / GIB:.0f} GiB file rewritten in a loop; after its first pass: "
                       f"{describe_memory(data['memory_when_dirty'])}; dirty + writeback at each run's start "
                       f"{dirty} GiB")
        else:
            context = f"start: {describe_memory(memory)}"
        context += f"; load average {data['load_average_at_start'][0]}"
        rows.append((f"in ComfyUI, {phase}: 10 s 1080p, execution_start -> execution_success",
                     f"{data['ours']['seconds']:.2f} s (all {data['ours']['seconds_all']})",
                     f"core LoadVideo + Get Video Components {data['core']['seconds']:.2f} s "
                     f"(all {data['core']['seconds_all']}); {context}",
                     f"{data['speedup']:.1f}x faster", f">= {target:g}x", data["speedup"] >= target))
    rows.append(("in ComfyUI: what each path loses under load",
                 f"ours +{loaded['ours']['seconds'] - quiet['ours']['seconds']:.2f} s "
                 f"({loaded['ours']['seconds'] / quiet['ours']['seconds']:.2f}x)",
                 f"core +{loaded['core']['seconds'] - quiet['core']['seconds']:.2f} s "
                 f"({loaded['core']['seconds'] / quiet['core']['seconds']:.2f}x)", "", "(reference)", None))
    for phase in ("quiet", "loaded"):
        data = entry[phase]
        rows.append((f"in ComfyUI, {phase}: host peak memory growth",
                     f"{data['ours']['peak_growth'] / 1e9:.2f} GB ({data['ours']['peak_growth'] / tensor:.2f}x tensor)",
                     f"1.1 x tensor {tensor / 1e9:.2f} GB + 200 MB = {budget / 1e9:.2f} GB; core "
                     f"{data['core']['peak_growth'] / 1e9:.2f} GB ({data['core']['peak_growth'] / tensor:.2f}x tensor)",
                     f"{data['ours']['peak_growth'] / budget:.2f} of budget", "<= 1.0",
                     data["ours"]["peak_growth"] <= budget))

