"""Where the nodes keep the task ledger: ComfyUI's protected system user folder, apart from the keys.

``user/__kling_ledger/ledger.sqlite3`` (``/userdata`` routes cannot read ``__`` folders). A re-queue of
the same inputs and seed after a restart, a timeout or a crash resumes the recorded task.
"""
from __future__ import annotations

import threading
from pathlib import Path

import folder_paths

from ..kling_api.remote.ledger import LEDGER_FILENAME, TaskLedger

LEDGER_DIR = "kling_ledger"

_lock = threading.Lock()
_ledgers: dict[Path, TaskLedger] = {}


def ledger_dir() -> Path:
    if hasattr(folder_paths, "get_system_user_directory"):
        return Path(folder_paths.get_system_user_directory(LEDGER_DIR))
    return Path(folder_paths.get_user_directory()) / f"__{LEDGER_DIR}"


def node_ledger() -> TaskLedger:
    path = ledger_dir() / LEDGER_FILENAME
    with _lock:
        return _ledgers.setdefault(path, TaskLedger(path))
