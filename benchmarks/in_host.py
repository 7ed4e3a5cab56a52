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
and reclaim it while the prompt takes fresh memory); the file is deleted afterwards.

    python -m benchmarks --only in_host [--runs 3]
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIB = 1024 ** 3
MB = 1024 * 1024
CLIP = "1080p_10s"
CROP = {"width": 64, "height": 64, "x": 928, "y": 508}
WRITER_MIN_BYTES, WRITER_MAX_BYTES = 4 * GIB, 12 * GIB  # the file's size: the disk holds at most this much
WRITER_CHUNK = 16 * MB
PROMPT_TIMEOUT_S = 900
PATHS = ("ours", "core")


def meminfo() -> dict[str, int]:
    """The machine's memory and page-cache state, in bytes (/proc/meminfo)."""
    wanted = ("MemTotal", "MemFree", "MemAvailable", "Cached", "Dirty", "Writeback")
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in wanted:
            out[name] = int(rest.split()[0]) * 1024
    return out


def describe_memory(info: dict[str, int]) -> str:
    gb = lambda name: f"{info.get(name, 0) / GIB:.1f}"  # noqa: E731
    return (f"free {gb('MemFree')} GiB, available {gb('MemAvailable')} GiB, page cache {gb('Cached')} GiB "
            f"(dirty {gb('Dirty')}, writeback {gb('Writeback')})")


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


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

def run_prompt(path: str, clip: Path, picture: Path, emulator, api_key: str, task_seconds: float = 0.0) -> dict:
    """One fresh ComfyUI, one prompt of ``path`` (one of PATHS): seconds and memory facts; for ours
    also when the video's download started (after the create and the polls), from the emulator's record."""
    support = str(ROOT / "tests" / "support")
    if support not in sys.path:
        sys.path.insert(0, support)
    import comfy_host as ch

    env = {"KLING_API_BASE": emulator.url, "KLING_API_KEY": api_key}
    emulator.reset()
    emulator.configure(processing_seconds=task_seconds)
    at_start = meminfo()
    with ch.ComfyHost(env=env, pack_dir=ROOT, boot_timeout=600) as host:  # a loaded machine boots it slowly
        host.require_nodes("KlingImageToVideo", "GetVideoComponents", "ImageCrop")
        if path == "ours":
            name = host.upload_image(picture)["name"]
            prompt = prompt_ours(name)
        else:
            name = host.upload_image(clip)["name"]
            prompt = prompt_core(name)
        pid = host.pid
        with host.ws_messages() as ws:
            rss_before = _status(pid, "VmRSS")
            exact = _reset_peak(pid)
            queued = time.monotonic()
            prompt_id = host.queue(prompt)
            done = ws.wait_done(prompt_id, timeout=PROMPT_TIMEOUT_S)
            wall = time.monotonic() - queued
            peak = _status(pid, "VmHWM")
            if done["type"] != "execution_success":
                raise RuntimeError(f"{path}: {done}\n{host.log_tail(40)}")
            start = next(m for m in ws.for_prompt(prompt_id) if m["type"] == "execution_start")
        seconds = (done["data"]["timestamp"] - start["data"]["timestamp"]) / 1000
        previews = len(host.output_files(host.wait(prompt_id, timeout=120)))
    downloads = [r["time"] for r in emulator.requests if r["path"].startswith("/_files/")]
    download_at = downloads[0] - start["data"]["timestamp"] / 1000 if downloads else None
    polls = sum(1 for r in emulator.requests if r["method"] == "GET" and r["path"].startswith("/v1/"))
    return {"seconds": seconds, "download_started_s": download_at, "polls": polls, "queue_to_success_s": wall,
            "rss_before": rss_before, "peak_rss": peak,
            "peak_growth": peak - rss_before, "peak_exact": exact, "previews": previews,
            "memory_at_start": at_start, "load_average": [round(x, 2) for x in os.getloadavg()]}


# --- the background writer ------------------------------------------------------------------------

def write_load(path: str, file_bytes: int) -> None:
    """Rewrite ``path`` (``file_bytes`` long) from the start, over and over, until SIGTERM; then delete it.

    Prints the bytes written so far after every GiB, so the parent knows when the cache is dirty."""
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    chunk = os.urandom(WRITER_CHUNK)
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while not stop:
            os.lseek(fd, 0, os.SEEK_SET)
            for _ in range(file_bytes // WRITER_CHUNK):
                if stop:
                    break
                os.write(fd, chunk)
                written += WRITER_CHUNK
                if written % GIB == 0:
                    print(written, flush=True)
    finally:
        os.close(fd)
        os.unlink(path)
        print(f"done {written}", flush=True)


class PageCacheWriter:
    """``write_load`` in its own process, on a file the size of the free memory (at least 4 GiB): started,
    waited for until it has written the whole file once (the free memory is then page cache), stopped."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"page-cache-load-{uuid.uuid4().hex[:8]}.bin"
        free = meminfo()["MemFree"] + GIB
        self.file_bytes = min(WRITER_MAX_BYTES, max(WRITER_MIN_BYTES, free // WRITER_CHUNK * WRITER_CHUNK))
        self.warm_bytes = self.file_bytes  # one whole pass before any measurement
        self.process: subprocess.Popen | None = None
        self.written = 0
        self._warm = threading.Event()

    def __enter__(self) -> "PageCacheWriter":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.in_host", "write-load", str(self.path),
                                         str(self.file_bytes)],
                                        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._follow, name="page-cache-writer", daemon=True).start()
        while not self._warm.wait(1.0):
            if self.process.poll() is not None:
                raise RuntimeError(f"the page-cache writer ended early (code {self.process.returncode})")
        return self

    def _follow(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.written = int(line)
                if self.written >= self.warm_bytes:
                    self._warm.set()

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.path.unlink(missing_ok=True)


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
    from kling_api.media.video import estimate_decoded_bytes, probe_video

    from .run import API_KEY, _emulator as emulator, log, median

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


def main(argv: list[str]) -> None:
    if argv[:1] == ["write-load"]:
        write_load(argv[1], int(argv[2]) if len(argv) > 2 else WRITER_MIN_BYTES)
    else:
        raise SystemExit("usage: python -m benchmarks.in_host write-load PATH [BYTES]")


if __name__ == "__main__":
    main(sys.argv[1:])
