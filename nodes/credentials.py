"""Where the pack keeps the user's Kling keys inside ComfyUI: never in a widget.

Environment variables win; otherwise a 0600 file in ComfyUI's protected system user folder
(``user/__kling``), which ComfyUI's ``/userdata`` endpoints cannot read.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import folder_paths

from ..kling_api.remote.auth import Credentials, load_credentials, read_credentials_file
from ..kling_api.errors import KlingCredentialsError

log = logging.getLogger(__name__)

CREDENTIALS_FILENAME = "credentials.json"


def credentials_dir() -> Path:
    if hasattr(folder_paths, "get_system_user_directory"):
        return Path(folder_paths.get_system_user_directory("kling"))
    # Hosts before late 2025 have no protected folder; "__" names are at least hidden by convention.
    return Path(folder_paths.get_user_directory()) / "__kling"


def credentials_path() -> Path:
    return credentials_dir() / CREDENTIALS_FILENAME


def node_credentials() -> Credentials:
    """Credentials for a node run, with an error that says how to set them when there are none."""
    return load_credentials(credentials_path())


def credentials_status() -> dict[str, object]:
    """What the UI may know: whether keys are configured and where from; never the keys."""
    try:
        creds = load_credentials(credentials_path())
    except KlingCredentialsError as exc:
        file_exists = credentials_path().is_file()
        return {"configured": False, "source": "file" if file_exists else None, "problem": exc.message}
    return {"configured": True, "source": creds.source, "kind": creds.kind}


def env_credentials_set() -> bool:
    return any(os.environ.get(name) for name in ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY"))


__all__ = ["credentials_path", "node_credentials", "credentials_status", "env_credentials_set",
           "read_credentials_file"]
