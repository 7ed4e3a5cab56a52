"""What the benchmark's scenarios share: where things go, the emulator they run against, logging and
medians, and how a measurement process is started (``benchmarks/measure.py``)."""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from kling_api.emulator import Emulator
from kling_devtools.host import find_comfyui

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "artifacts" / "benchmarks"
RESULTS = Path(__file__).resolve().parent / "results"
API_KEY = "benchmark-key"
#: Measurements that import ComfyUI's own modules (comfy_api, and the pack's nodes/media.py on top of it).
NEEDS_COMFYUI = {"decode_ours", "decode_comfyui"}


def log(message: str) -> None:
    """A timestamped progress line on stderr (stdout is the report)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(values))


def emulator(**settings: Any) -> Emulator:
    """The in-process Kling emulator with the benchmark's key (a context manager)."""
    return Emulator(api_keys=[API_KEY], **settings)


def measure_command(kind: str, args: dict) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working directory) of ``python -m benchmarks.measure KIND ARGS``.

    The repository comes through PYTHONPATH. A measurement that imports ComfyUI runs in ComfyUI's folder,
    which ``-m`` puts first on sys.path: ComfyUI's ``nodes.py`` then wins over this repository's ``nodes/``
    package, as in ComfyUI itself (the pack's nodes are imported as ``kling_pack.nodes``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    cwd = find_comfyui().comfyui_dir if kind in NEEDS_COMFYUI else ROOT
    return [sys.executable, "-m", "benchmarks.measure", kind, json.dumps(args)], env, cwd


def measured(kind: str, args: dict, returncode: int, stdout: str, stderr: str) -> dict:
    """The JSON line a measurement process printed last; raises with its stderr if it failed."""
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if returncode != 0 or not lines:
        raise RuntimeError(f"{kind} {args} failed ({returncode}):\n{stderr[-3000:]}")
    return json.loads(lines[-1])
