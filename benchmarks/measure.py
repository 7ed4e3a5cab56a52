"""One measurement, run in a fresh process: ``python -m benchmarks.measure KIND JSON-ARGS``.

Prints one JSON line: ``seconds`` (wall time of the measured call), ``rss_before`` (bytes resident
just before it, after every import and input was loaded), ``peak_rss`` (the process's high-water mark
during it: the kernel's VmHWM, reset just before the call through /proc/self/clear_refs) and
``peak_growth`` = peak_rss - rss_before, plus what the kind reports.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACK = "kling_pack"  # the repository imported as a package (as ComfyUI imports a custom node)


def comfyui_dir() -> Path:
    return Path(os.environ.get("COMFYUI_DIR") or Path.home() / ".cache" / "kling-comfy-host" / "ComfyUI")


def import_node_media():
    """``nodes/media.py`` exactly as the node runs it, with ComfyUI's comfy_api importable.

    ComfyUI's folder goes first on sys.path (the repository's ``nodes/`` package would shadow its
    ``nodes.py``); the repository is mounted as package ``kling_pack`` without running the ComfyUI
    entry point, and ``nodes/__init__`` (the node classes, PromptServer) is not needed for media."""
    sys.path.insert(0, str(comfyui_dir()))
    for name, path in ((PACK, ROOT), (f"{PACK}.nodes", ROOT / "nodes")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]  # type: ignore[attr-defined]
            sys.modules[name] = module
    return importlib.import_module(f"{PACK}.nodes.media")


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def timed(call):
    """(result, seconds, memory facts) of ``call()``; the peak is the kernel's, not sampled."""
    gc.collect()
    before = _status("VmRSS")
    exact = _reset_peak()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    peak = _status("VmHWM")
    return result, seconds, {"rss_before": before, "peak_rss": peak, "peak_growth": peak - before,
                             "peak_exact": exact, "user_s": after.ru_utime - usage.ru_utime,
                             "system_s": after.ru_stime - usage.ru_stime}


ENCODE_CALLS = 5  # an encode takes milliseconds: each process times it this many times (the median counts)


def timed_calls(call, calls: int = ENCODE_CALLS):
    """``timed`` repeated: (last result, median seconds, memory facts of the first call, every time)."""
    import statistics

    result, first, mem = timed(call)
    times = [first]
    for _ in range(calls - 1):
        result, seconds, _ = timed(call)
        times.append(seconds)
    return result, statistics.median(times), {**mem, "calls_s": [round(t, 5) for t in times]}


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
    sys.path.insert(0, str(comfyui_dir()))
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


def encode_ours(photo: str, source: str = "image") -> dict:
    """encode_image on the node's input (``source="image"``: the float32 IMAGE) or on a PIL image."""
    sys.path.insert(0, str(ROOT))
    from kling_api.images import MAX_BYTES, encode_image

    if source == "pil":
        import numpy as np
        from PIL import Image

        array = Image.fromarray(np.load(photo))
    else:
        array = _image_input(photo)
    # Warm up on the same input, as every side is: the node runs in a long-lived process, and a fresh
    # process's first-call costs (imports, lazily loaded codecs) are not the image's.
    encode_image(array, field="image")
    encoded, seconds, mem = timed_calls(lambda: encode_image(array, field="image"))
    return {"seconds": seconds, **mem, "quality": encoded.quality, "scale": encoded.scale,
            "base64_bytes": encoded.nbytes, "within_limit": encoded.nbytes <= MAX_BYTES,
            "size": [encoded.width, encoded.height]}


def encode_pillow(photo: str, quality: int, scale: float = 1.0) -> dict:
    """The baseline: ONE Pillow JPEG encode of the same picture (already a PIL RGB image, so no
    conversion, no base64) at the quality our encoder finally chose."""
    import io

    import numpy as np
    from PIL import Image

    picture = Image.fromarray(np.load(photo))
    if scale != 1.0:
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)),
                                 Image.Resampling.BICUBIC)
    picture.save(io.BytesIO(), "JPEG", quality=quality)  # warm-up on the same input

    def save() -> int:
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality)
        return buffer.tell()

    size, seconds, mem = timed_calls(save)
    return {"seconds": seconds, **mem, "jpeg_bytes": size}


def _floor_conversions():
    """Plain NumPy float32 IMAGE -> uint8 (H, W, 3) pixels, one thread, as code commonly writes it."""
    import numpy as np

    def multiply_into_uint8(array):  # one pass: scale and store; truncates, no clipping (IMAGE is 0..1)
        return np.multiply(array, np.float32(255.0), out=np.empty(array.shape, np.uint8), casting="unsafe")

    def comfyui_save_image(array):  # ComfyUI's SaveImage: np.clip(255. * i, 0, 255).astype(np.uint8)
        return np.clip(255.0 * array, 0, 255).astype(np.uint8)

    def round_and_clip(array):  # scale, round half up and clip in a float32 temporary, then one cast
        tmp = np.multiply(array, np.float32(255.0))
        np.add(tmp, np.float32(0.5), out=tmp)
        np.clip(tmp, 0.0, 255.0, out=tmp)
        return tmp.astype(np.uint8)

    return {f.__name__: f for f in (multiply_into_uint8, comfyui_save_image, round_and_clip)}


def encode_floor(photo: str, quality: int, scale: float = 1.0) -> dict:
    """The floor of encoding the float32 IMAGE, like the decode floor (which includes its unavoidable
    type conversion): the fastest of the plain one-thread NumPy conversions above (timed here, each
    with its own output allocation, as every call needs one), then Image.fromarray, then ONE Pillow JPEG
    save at the quality (and size) our encoder chose. No base64 (ours includes it)."""
    import io
    import statistics

    from PIL import Image

    array = _image_input(photo)
    conversions = _floor_conversions()
    candidates = {}
    for name, convert in conversions.items():
        convert(array)  # warm-up
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            convert(array)
            runs.append(time.perf_counter() - started)
        candidates[name] = statistics.median(runs)
    fastest = min(candidates, key=candidates.get)
    convert = conversions[fastest]
    size = None
    if scale != 1.0:
        height, width = array.shape[:2]
        size = (round(width * scale), round(height * scale))
    stages: dict[str, list[float]] = {"conversion_s": [], "fromarray_s": [], "save_s": [], "resize_s": []}

    def floor() -> int:
        started = time.perf_counter()
        pixels = convert(array)
        converted = time.perf_counter()
        picture = Image.fromarray(pixels)
        made = time.perf_counter()
        if size is not None:  # outside the floor's time, as for the Pillow baseline
            picture = picture.resize(size, Image.Resampling.BICUBIC)
        resized = time.perf_counter()
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=quality)
        for name, value in (("conversion_s", converted - started), ("fromarray_s", made - converted),
                            ("save_s", time.perf_counter() - resized), ("resize_s", resized - made)):
            stages[name].append(value)
        return buffer.tell()

    floor()  # warm-up on the same input
    for values in stages.values():
        values.clear()
    size_bytes, seconds, mem = timed_calls(floor)
    middle = {name: statistics.median(values) for name, values in stages.items()}
    return {"seconds": seconds - middle["resize_s"], **mem, **middle, "jpeg_bytes": size_bytes,
            "conversion": fastest, "conversion_candidates_s": candidates}


# --- waiting and many tasks (against an emulator run by the parent process) ----------------------

def _client(url: str, api_key: str):
    sys.path.insert(0, str(ROOT))
    from kling_api.auth import Credentials, Secret
    from kling_api.client import KlingClient

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
    from kling_api.images import encode_image
    from kling_api.jobs import run_image_to_video
    from kling_api.ledger import TaskLedger
    from kling_api.request import ImageToVideoRequest

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


def encode_pillow_pipeline(photo: str, quality: int) -> dict:
    """For reference: the least any encoder of the float IMAGE does, written plainly: float -> uint8
    (NumPy), Image.fromarray, ONE Pillow save at the chosen quality, base64."""
    import binascii
    import io

    import numpy as np
    from PIL import Image

    array = _image_input(photo)

    def pipeline() -> int:
        pixels = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
        return len(binascii.b2a_base64(buffer.getvalue(), newline=False))

    pipeline()
    size, seconds, mem = timed_calls(pipeline)
    return {"seconds": seconds, **mem, "base64_bytes": size}


KINDS = {f.__name__: f for f in (decode_ours, decode_floor, decode_comfyui, encode_ours, encode_pillow,
                                 encode_floor, encode_pillow_pipeline,
                                 wait_task, many_tasks)}


def main(argv: list[str]) -> None:
    kind, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    result = KINDS[kind](**args)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip freeing gigabytes at exit: not part of any measurement


if __name__ == "__main__":
    main(sys.argv[1:])
