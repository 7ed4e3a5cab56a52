"""Small helpers the host tests share: example workflows, the emulator's create requests, outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

import comfy_host as ch

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "example_workflows"


def load_ui(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def node_id_of(workflow: dict, kind: str) -> str:
    return str(next(n["id"] for n in workflow["nodes"] if n["type"] == kind))


def creates(emulator_process, path: str = "/v1/") -> list[dict]:
    """The create requests the emulator received (on ``path`` and below)."""
    return [r for r in emulator_process.requests() if r["method"] == "POST" and r["path"].startswith(path)]


def mean_diff(picture: Path | Image.Image, reference: Path | Image.Image) -> float:
    """Mean absolute difference per channel (0-255) after resizing ``reference`` to ``picture``."""
    picture = picture if isinstance(picture, Image.Image) else Image.open(picture)
    frame = np.asarray(picture.convert("RGB"), dtype=np.float32)
    ref = reference if isinstance(reference, Image.Image) else Image.open(reference)
    ref = ref.convert("RGB").resize((frame.shape[1], frame.shape[0]), Image.BILINEAR)
    return float(np.abs(frame - np.asarray(ref, dtype=np.float32)).mean())


def kling_video(host: ch.ComfyHost, entry: dict, kling: str) -> Path:
    files = host.output_files(entry, kling)
    assert len(files) == 1 and files[0].name.startswith("Kling_") and files[0].suffix == ".mp4", files
    return files[0]
