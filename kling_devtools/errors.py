"""What can go wrong with a child process of the harness (ComfyUI or the emulator) and with a prompt."""
from __future__ import annotations

import json
from typing import Any


class HostNotInstalled(RuntimeError):
    """ComfyUI or its Python is missing; the message says how to install it."""


class HostError(RuntimeError):
    """A child (ComfyUI or the emulator) failed to boot, died, or answered something unexpected."""


class PromptRejected(HostError):
    """POST /prompt answered HTTP 400: ``.error`` and ``.node_errors`` are ComfyUI's parsed JSON."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        self.error = body.get("error") if isinstance(body, dict) else body
        self.node_errors: dict = (body.get("node_errors") if isinstance(body, dict) else None) or {}
        super().__init__(f"POST /prompt -> HTTP {status}: {json.dumps(body, indent=1)[:4000]}")


class PromptFailed(HostError):
    """The prompt ran and ended with status ``error`` (an exception or an interrupt)."""

    def __init__(self, prompt_id: str, entry: dict, log_tail: str = ""):
        self.prompt_id = prompt_id
        self.entry = entry
        self.messages = entry.get("status", {}).get("messages", [])
        detail = ""
        for kind, data in self.messages:
            if kind == "execution_error":
                detail = (f"{data.get('node_type')} (node {data.get('node_id')}): "
                          f"{data.get('exception_type')}: {data.get('exception_message')}\n"
                          + "".join(data.get("traceback") or []))
            elif kind == "execution_interrupted" and not detail:
                detail = f"interrupted in node {data.get('node_id')} ({data.get('node_type')})"
        super().__init__(f"prompt {prompt_id} failed: {detail or json.dumps(self.messages)[:2000]}"
                         + (f"\n--- ComfyUI log tail ---\n{log_tail}" if log_tail else ""))

    @property
    def interrupted(self) -> bool:
        return any(kind == "execution_interrupted" for kind, _ in self.messages)
