"""ComfyUI's /ws traffic, collected in a background thread: what a page sees while a prompt runs
(progress, the pack's progress text, previews, the end of the prompt). Needs aiohttp, which ComfyUI's
venv always has."""
from __future__ import annotations

import json
import struct
import threading
import time
import urllib.parse
from typing import Any, Callable

from ..errors import HostError

BINARY_EVENT_NAMES = {1: "preview_image", 2: "unencoded_preview_image", 3: "progress_text",
                      4: "preview_image_with_metadata"}


class WSCollector:
    """Collects ComfyUI websocket traffic. ``messages`` holds dicts in arrival order:
    JSON messages as sent (``{"type": ..., "data": ...}``); binary frames as
    ``{"type": "progress_text", "binary": True, "node": id, "text": str}`` for event 3
    (PromptServer.send_progress_text) or ``{"type": "preview_image", "binary": True, "size": n}`` etc."""

    def __init__(self, ws_url: str, client_id: str):
        self.url = f"{ws_url}?clientId={urllib.parse.quote(client_id)}"
        self.client_id = client_id
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop = None
        self._ws = None
        self._error: BaseException | None = None
        self._connected = threading.Event()

    def start(self, timeout: float = 15.0) -> "WSCollector":
        self._thread = threading.Thread(target=self._run, name="comfy-ws", daemon=True)
        self._thread.start()
        if not self._connected.wait(timeout):
            raise HostError(f"websocket {self.url} did not connect within {timeout} s: {self._error!r}")
        if self._error:
            raise HostError(f"websocket {self.url} failed: {self._error!r}")
        # ComfyUI sends {"type": "status"} first; wait for it so nothing queued later is missed.
        self.wait_for(lambda m: m.get("type") == "status", timeout)
        return self

    def _run(self) -> None:
        import asyncio
        import aiohttp

        async def main():
            self._loop = asyncio.get_running_loop()
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.ws_connect(self.url, max_msg_size=0) as ws:
                        self._ws = ws
                        self._connected.set()
                        async for msg in ws:
                            if msg.type == aiohttp.WSMsgType.TEXT:
                                self._add(json.loads(msg.data))
                            elif msg.type == aiohttp.WSMsgType.BINARY:
                                self._add(self._decode_binary(msg.data))
                            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                                break
            except BaseException as e:  # noqa: BLE001 - reported through start()/close()
                self._error = e
            finally:
                self._connected.set()
                with self._cond:
                    self._cond.notify_all()

        asyncio.run(main())

    @staticmethod
    def _decode_binary(data: bytes) -> dict:
        event = struct.unpack(">I", data[:4])[0]
        name = BINARY_EVENT_NAMES.get(event, f"binary_{event}")
        msg: dict[str, Any] = {"type": name, "binary": True, "event": event, "size": len(data) - 4}
        if event == 3:
            (n,) = struct.unpack(">I", data[4:8])
            msg["node"] = data[8:8 + n].decode("utf-8", "replace")
            msg["text"] = data[8 + n:].decode("utf-8", "replace")
        return msg

    def _add(self, msg: dict) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def snapshot(self) -> list[dict]:
        with self._cond:
            return list(self.messages)

    def of_type(self, *types: str) -> list[dict]:
        return [m for m in self.snapshot() if m.get("type") in types]

    def progress_texts(self, node_id: str | None = None) -> list[str]:
        return [m["text"] for m in self.of_type("progress_text") if node_id is None or m["node"] == str(node_id)]

    def for_prompt(self, prompt_id: str) -> list[dict]:
        return [m for m in self.snapshot()
                if isinstance(m.get("data"), dict) and m["data"].get("prompt_id") == prompt_id]

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 30.0) -> dict:
        """The first message (already received or future) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for m in self.messages[seen:]:
                    if predicate(m):
                        return m
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0 or (self._thread and not self._thread.is_alive()):
                    raise TimeoutError(f"no matching websocket message within {timeout} s "
                                       f"(got {len(self.messages)}; error={self._error!r})")
                self._cond.wait(min(left, 0.5))

    def wait_done(self, prompt_id: str, timeout: float = 120.0) -> dict:
        """The execution_success / execution_error / execution_interrupted message for the prompt."""
        return self.wait_for(lambda m: m.get("type") in ("execution_success", "execution_error",
                                                          "execution_interrupted")
                             and m.get("data", {}).get("prompt_id") == prompt_id, timeout)

    def close(self) -> None:
        if self._loop and self._ws is not None and self._thread and self._thread.is_alive():
            import asyncio
            try:
                asyncio.run_coroutine_threadsafe(self._ws.close(), self._loop).result(5)
            except Exception:  # noqa: BLE001 - the loop may already be gone
                pass
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> "WSCollector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
