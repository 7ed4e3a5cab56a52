"""One measurement, run in a fresh process: ``python -m benchmarks.measure KIND JSON-ARGS``, with the
repository on PYTHONPATH; the decode kinds from ComfyUI's folder (``benchmarks/common.measure_command``).

Prints one JSON line: ``seconds`` (wall time of the measured call), ``rss_before`` (bytes resident
just before it, after every import and input was loaded), ``peak_rss`` (the process's high-water mark
during it: the kernel's VmHWM, reset just before the call through /proc/self/clear_refs) and
``peak_growth`` = peak_rss - rss_before, plus what the kind reports.
"""
from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import resource
import sys
import time
import types
from pathlib import Path

from kling_api.generation.life import run_image_to_video
from kling_api.media.images import MAX_BYTES, encode_image
from kling_api.remote.auth import Credentials, Secret
from kling_api.remote.client import KlingClient
from kling_api.remote.ledger import TaskLedger
from kling_api.rules.request import ImageToVideoRequest

from .procfs import process_status, reset_peak

ROOT = Path(__file__).resolve().parents[1]
PACK = "kling_pack"  # the repository imported as a package (as ComfyUI imports a custom node)


def require_comfyui() -> None:
    """ComfyUI's modules must come first on sys.path (this process runs in ComfyUI's folder): the
    repository's ``nodes/`` package would shadow ComfyUI's ``nodes.py``."""
    nodes = importlib.util.find_spec("nodes")
    if importlib.util.find_spec("comfy_api") is None or nodes is None or nodes.submodule_search_locations:
        raise SystemExit("this measurement imports ComfyUI: run it from ComfyUI's folder with PYTHONPATH=<repo> "
                         "(benchmarks/run.py does)")


def import_node_media():
    """``nodes/media.py`` exactly as the node runs it, with ComfyUI's comfy_api importable.

    The repository is mounted as package ``kling_pack`` without running the ComfyUI entry point, and
    ``nodes/__init__`` (the node classes, PromptServer) is not needed for media."""
    require_comfyui()
    for name, path in ((PACK, ROOT), (f"{PACK}.nodes", ROOT / "nodes")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]  # type: ignore[attr-defined]
            sys.modules[name] = module
    return importlib.import_module(f"{PACK}.nodes.media")


def timed(call):
    """(result, seconds, memory facts) of ``call()``; the peak is the kernel's, not sampled."""
    gc.collect()
    before = process_status("VmRSS")
    exact = reset_peak()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = process_status("VmHWM")
    return result, seconds, {"rss_before": before, "peak_rss": peak, "peak_growth": peak - before,
                             "peak_exact": exact, "user_s": after.ru_utime - usage.ru_utime,
                             "system_s": after.ru_stime - usage.ru_stime}


# --- decoding ------------------------------------------------------------------------------------

def decode_ours(clip: str, frame_cap: int = 0, frame_stride: int = 0, max_side: int = 0) -> dict:
    """The ``frames`` output: nodes/media.decode_frames, the function the node calls."""
    media = import_node_media()
    options = {"frame_cap": frame_cap, "frame_stride": frame_stride, "max_side": max_side}
    options = {k: v for k, v in options.items() if v}
    decoded, seconds, mem = timed(lambda: media.decode_frames([Path(clip)], **options))
    frames = decoded.frames
    return {"seconds": seconds, **mem, "frames": int(frames.shape[0]), "shape": list(frames.shape),
            "tensor_bytes": frames.numel() * 4}


def decode_floor(clip: str) -> dict:
    """The floor: PyAV decode of every frame to rgb24 (threaded, keeping none), plus one pass writing
    a float32 tensor of the final size (a converted uint8 frame into every slot of a fresh tensor)."""
    import av
    import numpy as np
    import torch

    def decode() -> tuple[int, np.ndarray]:
        count, last = 0, None
        with av.open(clip) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                last = frame.to_ndarray(format="rgb24")
                count += 1
        return count, last

    (count, sample), decode_s, _ = timed(decode)
    scale = np.float32(1 / 255)

    def write() -> torch.Tensor:
        tensor = torch.empty((count, *sample.shape), dtype=torch.float32)
        out = tensor.numpy()
        for i in range(count):
            np.multiply(sample, scale, out=out[i], dtype=np.float32, casting="unsafe")
        return tensor

    tensor, write_s, mem = timed(write)
    return {"seconds": decode_s + write_s, "decode_rgb24_s": decode_s, "write_float32_s": write_s,
            **mem, "frames": count, "tensor_bytes": tensor.numel() * 4}


def decode_comfyui(clip: str) -> dict:
    """ComfyUI's own path: VideoFromFile(path).get_components() (the Get Video Components node)."""
    require_comfyui()
    from comfy_api.latest import InputImpl

    components, seconds, mem = timed(lambda: InputImpl.VideoFromFile(clip).get_components())
    images = components.images
    return {"seconds": seconds, **mem, "frames": int(images.shape[0]), "tensor_bytes": images.numel() * 4}


# --- encoding ------------------------------------------------------------------------------------

def _image_input(photo: str):
    """The IMAGE the node receives, as it hands it to the library: float32 (H, W, 3) in 0..1."""
    import numpy as np
    import torch

    pixels = np.load(photo)
    image = torch.from_numpy(pixels).float().div_(255.0).unsqueeze(0)  # ComfyUI's IMAGE [1, H, W, 3]
    return image.numpy()[0]


def wall_and_cpu(call) -> tuple[float, float]:
    """Seconds of wall time and of this thread's CPU time (the steadier reading on a busy machine)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.thread_time()
    call()
    return time.perf_counter() - wall, time.thread_time() - cpu


ENCODE_CALLS = 7  # an encode takes milliseconds: each side is timed this many times, in turns
ENCODE_WARM_UP = 3


def encode(photo: str) -> dict:
    """encode_image on the node's input, the float32 IMAGE, to the base64 text, and ONE Pillow JPEG
    save of the same picture (already an RGB image in memory: no conversion, no base64) at the quality
    and size ours chose, timed in turns in this process, so that a busy machine slows both alike.
    Memory from ours' first call (nothing kept from an earlier one); times are medians after warm-up."""
    import io
    import statistics

    import numpy as np
    from PIL import Image

    array = _image_input(photo)
    picture = Image.fromarray(np.load(photo))
    encoded, _, mem = timed(lambda: encode_image(array, field="image"))
    if picture.size != (encoded.width, encoded.height):
        picture = picture.resize((encoded.width, encoded.height), Image.Resampling.BICUBIC)

    def save() -> int:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=encoded.quality)
        return buffer.tell()

    for _ in range(ENCODE_WARM_UP):  # the node runs in a long-lived process, whose heap has grown already
        encode_image(array, field="image")
        jpeg_bytes = save()

    ours, pillow = [], []
    for _ in range(ENCODE_CALLS):
        ours.append(wall_and_cpu(lambda: encode_image(array, field="image")))
        pillow.append(wall_and_cpu(save))
    return {"seconds": statistics.median(t for t, _ in ours), "pillow_seconds": statistics.median(t for t, _ in pillow),
            "cpu_seconds": statistics.median(c for _, c in ours),
            "pillow_cpu_seconds": statistics.median(c for _, c in pillow),
            "ours_s": [round(t, 5) for t, _ in ours], "pillow_s": [round(t, 5) for t, _ in pillow], **mem,
            "quality": encoded.quality, "size": [encoded.width, encoded.height], "jpeg_bytes": jpeg_bytes,
            "base64_bytes": len(encoded.data), "within_limit": len(encoded.data) <= MAX_BYTES,
            "uint8_bytes": array.shape[0] * array.shape[1] * 3}


# --- waiting and many tasks (against an emulator run by the parent process) ----------------------

def _client(url: str, api_key: str) -> KlingClient:
    return KlingClient(Credentials(api_key=Secret(api_key), source="benchmark"), url)


def wait_task(url: str, api_key: str, task_id: str = "") -> dict:
    """KlingClient.wait on one task, as finish_task calls it; CPU time of this process while waiting.

    Without ``task_id`` the process gets ready (imports, client), prints ``ready`` and reads the task id
    from stdin: the parent creates the task only then, so that the wait starts right after the create,
    as in the node, and a slow start of this process is not counted as latency."""
    client = _client(url, api_key)
    if not task_id:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        task_id = sys.stdin.readline().strip()
    cpu = time.process_time()
    task, seconds, mem = timed(lambda: client.wait(task_id))
    cpu = time.process_time() - cpu
    return {"seconds": seconds, **mem, "noticed_at": time.time(), "status": task.status,
            "cpu_seconds": cpu, "cpu_share": cpu / seconds if seconds else 0.0}


def many_tasks(url: str, api_key: str, photo: str, count: int, concurrency: int, out_dir: str) -> dict:
    """``count`` start images through the node's batch path: an asyncio semaphore of ``concurrency``
    over worker threads, each encoding its image and running run_image_to_video (with a ledger)."""
    import asyncio

    import numpy as np

    client = _client(url, api_key)
    pixels = np.load(photo).astype(np.float32) / 255.0
    ledger = TaskLedger(Path(out_dir) / "ledger.sqlite3")
    tag = os.urandom(4).hex()

    def run_one(index: int):
        start = encode_image(pixels, field="image")
        request = ImageToVideoRequest(model_name="kling-v2-5-turbo", image=start.data, prompt="benchmark",
                                      mode="std", duration="5", external_task_id=f"bench-{tag}-{index + 1}")
        return run_image_to_video(client, request, lambda task: Path(out_dir) / f"Kling_{task.task_id}.mp4",
                                  ledger=ledger, seed=0, batch_index=index)

    async def batch():
        limit = asyncio.Semaphore(max(1, concurrency))

        async def limited(index: int):
            async with limit:
                return await asyncio.to_thread(run_one, index)

        return await asyncio.gather(*(limited(i) for i in range(count)))

    results, seconds, mem = timed(lambda: asyncio.run(batch()))
    return {"seconds": seconds, **mem, "tasks": [r.task.task_id for r in results],
            "statuses": [r.task.status for r in results],
            "videos": sum(1 for r in results if r.video_path.is_file())}


KINDS = {f.__name__: f for f in (decode_ours, decode_floor, decode_comfyui, encode,
                                 wait_task, many_tasks)}


def main(argv: list[str]) -> None:
    kind, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    result = KINDS[kind](**args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip freeing gigabytes at exit: not part of any measurement


if __name__ == "__main__":
    main(sys.argv[1:])
