"""Where the host's ComfyUI, its Python and the frontends come from: what scripts/setup_host.sh installed
under ``~/.cache/kling-comfy-host`` (``KLING_HOST_ROOT``), unless ``COMFYUI_DIR`` / ``KLING_PYTHON`` say
otherwise. setup_host.sh reads the same variables, so both agree on one install."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

from .. import REPO_ROOT
from ..errors import HostNotInstalled

SETUP_HINT = "run scripts/setup_host.sh (it installs ComfyUI 0.3.75 and its venv; add --browser for Chromium)"
# The one pin of the newest frontend; scripts/setup_host.sh reads it from this path too.
NEWEST_FRONTEND_FILE = REPO_ROOT / "tests" / "support" / "newest_frontend.txt"


class ComfyInstall(NamedTuple):
    comfyui_dir: Path
    python: str


def host_root() -> Path:
    """The folder setup_host.sh installs into (``$KLING_HOST_ROOT``, default ``~/.cache/kling-comfy-host``)."""
    return Path(os.environ.get("KLING_HOST_ROOT") or Path.home() / ".cache" / "kling-comfy-host")


def find_comfyui() -> ComfyInstall:
    """``(comfyui_dir, python)``; raises ``HostNotInstalled`` (with the setup hint) if either is missing.

    ComfyUI dir: ``$COMFYUI_DIR``, else the path recorded in ``$KLING_HOST_ROOT/comfyui_dir``
    (default root ``~/.cache/kling-comfy-host``). Python: ``$KLING_PYTHON``, else the root's venv.
    """
    root = host_root()
    env_dir = os.environ.get("COMFYUI_DIR")
    if env_dir:
        comfy = Path(env_dir).expanduser()
        origin = "COMFYUI_DIR"
    else:
        record = root / "comfyui_dir"
        if not record.is_file():
            raise HostNotInstalled(f"ComfyUI is not installed ({record} does not exist): {SETUP_HINT}")
        comfy = Path(record.read_text().strip()).expanduser()
        origin = str(record)
    if not (comfy / "main.py").is_file():
        raise HostNotInstalled(f"no ComfyUI main.py in {comfy} (from {origin}): {SETUP_HINT}")

    python = os.environ.get("KLING_PYTHON") or str(root / "venv" / "bin" / "python")
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise HostNotInstalled(f"the Python to run ComfyUI with is missing ({python}): {SETUP_HINT}")
    return ComfyInstall(comfy.resolve(), python)


def newest_frontend() -> str:
    """The newest ``comfyui-frontend-package`` the browser tests also run against (setup_host.sh fetches it)."""
    return NEWEST_FRONTEND_FILE.read_text().strip()


def pinned_frontend(comfyui_dir: str | os.PathLike) -> str:
    """The frontend version the ComfyUI at ``comfyui_dir`` pins in its requirements.txt ("" if none)."""
    try:
        text = (Path(comfyui_dir) / "requirements.txt").read_text()
    except OSError:
        return ""
    match = re.search(r"^comfyui-frontend-package==(\S+)", text, re.M)
    return match.group(1) if match else ""


def frontend_root(version: str) -> Path:
    """The unzipped frontend ``version`` next to the host, for ``ComfyHost(front_end_root=...)``."""
    root = host_root() / "frontends" / version / "comfyui_frontend_package" / "static"
    if not (root / "index.html").is_file():
        raise HostNotInstalled(f"frontend {version} is not unpacked at {root}: {SETUP_HINT}")
    return root
