"""A real, headless ComfyUI with this pack linked into custom_nodes/, for tests, demos and benchmarks.

    from kling_devtools.host import ComfyHost, EmulatorProcess

    with EmulatorProcess(api_key="k") as emu, \\
         ComfyHost(env={"KLING_API_BASE": emu.url, "KLING_API_KEY": "k"}) as host:
        pid = host.queue(prompt)
        entry = host.wait(pid, timeout=120)

Standard library only (``ws_messages`` needs aiohttp, which ComfyUI's venv has). Where ComfyUI comes
from: ``find_comfyui()`` (kling_devtools/host/install.py).
"""
from __future__ import annotations

import json
import mimetypes
import os
import shutil
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import PACK_LINK_NAME, REPO_ROOT
from ..errors import HostError, PromptFailed, PromptRejected
from ..http import HttpResponse, free_port, http_request, multipart_body
from ..process import ChildProcess, child_environment
from .install import ComfyInstall, find_comfyui
from .websocket import WSCollector


class ComfyHost(ChildProcess):
    """A real ComfyUI server in a fresh base directory, with the pack symlinked into custom_nodes/.

    Parameters (all keyword-only):
      env            extra environment for ComfyUI (e.g. KLING_API_BASE, KLING_API_KEY); inherited
                     ``KLING_*`` variables are dropped first unless ``inherit_kling_env=True``.
      pack_dir       the pack to link as ``custom_nodes/<link_name>`` (default: this repo);
                     ``None`` boots core nodes only.
      extra_custom_nodes  more paths to symlink into custom_nodes/ (by their own names).
      base_dir       use this directory instead of a fresh temp dir (never deleted by stop()).
      port           default: a free port.
      extra_args     more ComfyUI CLI flags.
      boot_timeout   seconds to wait for GET /system_stats == 200.
      keep_base      keep the temp base dir after stop() (also ``KLING_KEEP_HOST_DIR=1``).
      install        a ``ComfyInstall``; default ``find_comfyui()``.
      front_end_root serve this unpacked frontend (``frontend_root(version)``) instead of the pinned one.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None, pack_dir: str | os.PathLike | None = REPO_ROOT,
                 link_name: str = PACK_LINK_NAME, extra_custom_nodes: Iterable[str | os.PathLike] = (),
                 base_dir: str | os.PathLike | None = None, port: int | None = None,
                 extra_args: Iterable[str] = (), boot_timeout: float = 60.0, keep_base: bool = False,
                 inherit_kling_env: bool = False, install: ComfyInstall | None = None,
                 front_end_root: str | os.PathLike | None = None):
        self.install = install or find_comfyui()
        self.extra_env = dict(env or {})
        self.pack_dir = Path(pack_dir).resolve() if pack_dir is not None else None
        self.link_name = link_name
        self.extra_custom_nodes = [Path(p).resolve() for p in extra_custom_nodes]
        self._own_base = base_dir is None
        self.base_dir = Path(base_dir).resolve() if base_dir else Path(tempfile.mkdtemp(prefix="kling-comfy-"))
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        if front_end_root is not None:
            self.extra_args += ["--front-end-root", str(front_end_root)]
        self.boot_timeout = boot_timeout
        self.keep_base = keep_base or os.environ.get("KLING_KEEP_HOST_DIR") == "1"
        self.inherit_kling_env = inherit_kling_env
        self.client_id = uuid.uuid4().hex  # default client_id for queue() and ws_messages()
        self.log_path = self.base_dir / "comfyui.log"
        self.boot_seconds: float | None = None

    # -- paths -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    custom_nodes_dir = property(lambda self: self.base_dir / "custom_nodes")
    input_dir = property(lambda self: self.base_dir / "input")
    output_dir = property(lambda self: self.base_dir / "output")
    temp_dir = property(lambda self: self.base_dir / "temp")
    user_dir = property(lambda self: self.base_dir / "user")

    @property
    def pack_link(self) -> Path | None:
        return self.custom_nodes_dir / self.link_name if self.pack_dir else None

    # -- lifecycle -------------------------------------------------------------------------
    def command(self) -> list[str]:
        return [self.install.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--disable-auto-launch", "--base-directory", str(self.base_dir),
                "--database-url", f"sqlite:///{self.base_dir}/comfy.db", *self.extra_args]

    def environment(self) -> dict[str, str]:
        env = child_environment(inherit_kling_env=self.inherit_kling_env)
        env.pop("PYTHONPATH", None)  # don't leak the test runner's import path into ComfyUI
        env.update(self.extra_env)
        return env

    def start(self) -> "ComfyHost":
        if self.running:
            return self
        for d in (self.custom_nodes_dir, self.input_dir, self.output_dir, self.user_dir):
            d.mkdir(parents=True, exist_ok=True)
        links = ([(self.link_name, self.pack_dir)] if self.pack_dir else []) + \
                [(p.name, p) for p in self.extra_custom_nodes]
        for name, target in links:
            link = self.custom_nodes_dir / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target, target_is_directory=target.is_dir())
        t0 = time.monotonic()
        self._spawn(self.command(), self.install.comfyui_dir, self.environment())
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.boot_timeout
        while True:
            if self.proc.poll() is not None:
                raise HostError(f"ComfyUI exited with code {self.proc.returncode} while booting "
                                f"({' '.join(self.command())})\n--- {self.log_path} ---\n{self.log_tail(80)}")
            try:
                if http_request("GET", self.url + "/system_stats", timeout=2).status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise HostError(f"ComfyUI did not answer GET /system_stats within {self.boot_timeout:.0f} s"
                                f"\n--- {self.log_path} ---\n{self.log_tail(80)}")
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` s. Deletes the temp base dir unless kept. Idempotent."""
        code = self._terminate(grace)
        if self._own_base and not self.keep_base and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)
        return code

    def __enter__(self) -> "ComfyHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _check_alive(self) -> None:
        if not self.running:
            code = self.proc.returncode if self.proc else None
            raise HostError(f"ComfyUI is not running (exit code {code})\n--- log tail ---\n{self.log_tail()}")

    # -- HTTP ------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kw) -> HttpResponse:
        return http_request(method, self.url + path, **kw)

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        r = self.request("GET", path, timeout=timeout)
        if r.status != 200:
            raise HostError(f"GET {path} -> HTTP {r.status}: {r.body[:500]!r}")
        return r.json()

    def system_stats(self) -> dict:
        return self.get_json("/system_stats")

    def object_info(self, node_class: str | None = None) -> dict:
        """All node definitions, or ``{node_class: def}`` for one (``{}`` if it is unknown)."""
        path = "/object_info" + (f"/{urllib.parse.quote(node_class)}" if node_class else "")
        return self.get_json(path, timeout=60)

    def queue(self, prompt: Mapping[str, Any], client_id: str | None = None,
              extra_data: Mapping[str, Any] | None = None) -> str:
        """POST /prompt (API format); returns the prompt_id. HTTP 400 raises ``PromptRejected``."""
        body: dict[str, Any] = {"prompt": prompt, "client_id": client_id or self.client_id}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        r = self.request("POST", "/prompt", json_body=body)
        if r.status == 400:
            raise PromptRejected(r.status, r.json())
        if r.status != 200:
            raise HostError(f"POST /prompt -> HTTP {r.status}: {r.body[:2000]!r}")
        return r.json()["prompt_id"]

    def history(self, prompt_id: str | None = None) -> dict:
        return self.get_json("/history" + (f"/{prompt_id}" if prompt_id else ""))

    def wait(self, prompt_id: str, timeout: float = 120.0, *, check: bool = True,
             poll: float = 0.1) -> dict:
        """Poll /history/{id} until the prompt finished; returns its history entry
        (``{"prompt", "outputs", "status": {"status_str", "completed", "messages"}, "meta"}``).
        ``check=True`` raises ``PromptFailed`` when status_str is ``error`` (exceptions and interrupts)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id).get(prompt_id)
            if entry is not None and entry.get("status", {}).get("completed") is not None:
                if check and entry["status"].get("status_str") == "error":
                    raise PromptFailed(prompt_id, entry, self.log_tail(40))
                return entry
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"prompt {prompt_id} not finished after {timeout} s; queue: "
                                   f"{json.dumps(self.queue_state())[:1000]}\n--- log tail ---\n{self.log_tail(40)}")
            time.sleep(poll)

    def run(self, prompt: Mapping[str, Any], timeout: float = 120.0, *, check: bool = True,
            client_id: str | None = None) -> dict:
        """queue() + wait(); returns the history entry."""
        return self.wait(self.queue(prompt, client_id=client_id), timeout, check=check)

    # websocket-free status
    def queue_state(self) -> dict:
        """GET /queue: ``{"queue_running": [...], "queue_pending": [...]}`` (items are
        ``[number, prompt_id, prompt, extra_data, outputs_to_execute, ...]``)."""
        return self.get_json("/queue")

    def queue_remaining(self) -> int:
        """GET /prompt -> exec_info.queue_remaining (running + pending)."""
        return int(self.get_json("/prompt")["exec_info"]["queue_remaining"])

    def running_prompt_ids(self) -> list[str]:
        return [item[1] for item in self.queue_state().get("queue_running", [])]

    def wait_idle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.queue_remaining():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"queue not empty after {timeout} s: {json.dumps(self.queue_state())[:1000]}")
            time.sleep(0.1)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt (global, or only if ``prompt_id`` is the running prompt)."""
        r = self.request("POST", "/interrupt", json_body={"prompt_id": prompt_id} if prompt_id else {})
        if r.status != 200:
            raise HostError(f"POST /interrupt -> HTTP {r.status}: {r.body[:500]!r}")

    def clear_queue(self) -> None:
        self.request("POST", "/queue", json_body={"clear": True})

    def upload_image(self, path: str | os.PathLike, *, name: str | None = None, subfolder: str = "",
                     overwrite: bool = True, folder_type: str = "input") -> dict:
        """POST /upload/image (any file type, mp4 too); returns ``{"name", "subfolder", "type"}``."""
        path = Path(path)
        fname = name or path.name
        ctype = mimetypes.guess_type(fname)[0] or "application/octet-stream"
        fields = {"type": folder_type, "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        body, content_type = multipart_body(fields, [("image", fname, path.read_bytes(), ctype)])
        r = self.request("POST", "/upload/image", data=body, headers={"Content-Type": content_type}, timeout=120)
        if r.status != 200:
            raise HostError(f"POST /upload/image -> HTTP {r.status}: {r.body[:500]!r}")
        return r.json()

    def view(self, filename: str, subfolder: str = "", folder_type: str = "output") -> bytes:
        q = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": folder_type})
        r = self.request("GET", f"/view?{q}", timeout=120)
        if r.status != 200:
            raise HostError(f"GET /view?{q} -> HTTP {r.status}")
        return r.body

    def output_files(self, entry: dict, node_id: str | None = None) -> list[Path]:
        """Paths of files listed in a history entry's outputs (images/gifs/videos/audio/...)."""
        roots = {"output": self.output_dir, "input": self.input_dir, "temp": self.temp_dir}
        found = []
        for nid, out in entry.get("outputs", {}).items():
            if node_id is not None and nid != str(node_id):
                continue
            for items in out.values():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and "filename" in item:
                        root = roots.get(item.get("type", "output"), self.output_dir)
                        found.append(root / item.get("subfolder", "") / item["filename"])
        return found

    # -- diagnostics -----------------------------------------------------------------------
    def import_failures(self) -> list[str]:
        """Log lines where ComfyUI reports a custom node (or comfy_entrypoint) that failed to load.
        A failed pack does not stop the boot; ComfyUI only logs it."""
        marks = ("Cannot import", "(IMPORT FAILED)", "comfy_entrypoint in", "Skip ")
        return [ln for ln in self.log_text().splitlines()
                if any(m in ln for m in marks) and "custom_nodes" in ln]

    def require_nodes(self, *node_ids: str) -> dict:
        """Assert the nodes are registered; on failure raise with the import errors from the log."""
        info = self.object_info()
        missing = [n for n in node_ids if n not in info]
        if missing:
            raise HostError(f"nodes not registered: {missing}; import failures: {self.import_failures()}"
                            f"\n--- log tail ---\n{self.log_tail(80)}")
        return {n: info[n] for n in node_ids}

    def ws_messages(self, client_id: str | None = None) -> "WSCollector":
        """Open /ws?clientId=... (default: this host's client_id, the one queue() uses) and collect
        messages in a background thread. Use as a context manager or call .close()."""
        return WSCollector(self.ws_url, client_id or self.client_id).start()
