"""Small helpers the host tests share: example workflows, the emulator's create requests, outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from . import REPO_ROOT
from .host import ComfyHost

WORKFLOWS = REPO_ROOT / "example_workflows"


def load_ui(name: str) -> dict:
    """example_workflows/<name>.json, the UI format a user loads."""
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def node_id_of(workflow: dict, kind: str) -> str:
    """The id of the (first) node of type ``kind`` in a UI-format workflow."""
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


def kling_video(host: ComfyHost, entry: dict, kling: str) -> Path:
    """The one mp4 the Kling node ``kling`` saved for this history entry (asserted to be exactly one)."""
    files = host.output_files(entry, kling)
    assert len(files) == 1 and files[0].name.startswith("Kling_") and files[0].suffix == ".mp4", files
    return files[0]
