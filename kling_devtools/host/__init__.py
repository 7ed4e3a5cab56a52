"""Everything a test or script needs around a real ComfyUI host, in one namespace.

    from kling_devtools import host as ch
    with ch.EmulatorProcess(api_key="k") as emu, ch.ComfyHost(env={...}) as host: ...

The host itself (``comfy``), where its install is (``install``), its websocket (``websocket``), and the
emulator process it talks to as Kling (``kling_devtools.emulator_process``, re-exported here).
"""
from __future__ import annotations

from .. import PACK_LINK_NAME, REPO_ROOT
from ..emulator_process import EmulatorProcess
from ..errors import HostError, HostNotInstalled, PromptFailed, PromptRejected
from ..http import HttpResponse, free_port, http_request
from .comfy import ComfyHost
from .install import (NEWEST_FRONTEND_FILE, SETUP_HINT, ComfyInstall, find_comfyui, frontend_root, host_root,
                      newest_frontend, pinned_frontend)
from .websocket import BINARY_EVENT_NAMES, WSCollector

__all__ = ["BINARY_EVENT_NAMES", "NEWEST_FRONTEND_FILE", "PACK_LINK_NAME", "REPO_ROOT", "SETUP_HINT", "ComfyHost",
           "ComfyInstall", "EmulatorProcess", "HostError", "HostNotInstalled", "HttpResponse", "PromptFailed",
           "PromptRejected", "WSCollector", "find_comfyui", "free_port", "frontend_root", "host_root",
           "http_request", "newest_frontend", "pinned_frontend"]
