"""Development tools for this pack: a real headless ComfyUI, the Kling emulator as a process, a real
browser on ComfyUI's frontend, and the small helpers tests, scripts and benchmarks share.

Imported from the repository root (pytest's ``pythonpath``, ``python -m scripts.demo``,
``python -m benchmarks``), never by the pack itself: ``__init__.py``, ``nodes/`` and ``kling_api/`` stay
free of it (tests/test_devtools_boundary.py). Nothing here holds a Kling rule; what a test expects is
read from ``kling_api``.

    kling_devtools.host              ComfyHost, find_comfyui, WSCollector, EmulatorProcess, errors
    kling_devtools.browser           BrowserSession, ComfyPage; kling_frontend drives the Kling node
    kling_devtools.emulator_process  ``python -m kling_api.emulator`` as a child process
    kling_devtools.library_emulator  the in-process emulator, fast, for library tests
"""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACK_LINK_NAME = "comfyui-kling"  # the pack's folder name under custom_nodes/ (its web extension's URL too)
