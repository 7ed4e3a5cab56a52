"""Boot a real, headless ComfyUI with this pack (and the Kling API emulator) for tests and demos.

Importable from tests (``tests/conftest.py`` puts ``tests/support`` on ``sys.path``) and from
scripts (``sys.path.insert(0, "<repo>/tests/support")``). Standard library only, except
``ComfyHost.ws_messages`` which needs aiohttp (ComfyUI's own venv always has it).

    from comfy_host import ComfyHost, EmulatorProcess

    with EmulatorProcess(api_key="k") as emu, \\
         ComfyHost(env={"KLING_API_BASE": emu.url, "KLING_API_KEY": "k"}) as host:
        pid = host.queue(prompt)
        entry = host.wait(pid, timeout=120)

Where ComfyUI comes from: ``find_comfyui()`` (``COMFYUI_DIR`` / ``KLING_PYTHON`` override what
``scripts/setup_host.sh`` installed under ``~/.cache/kling-comfy-host``).
"""
from __future__ import annotations

import json
import mimetypes
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_LINK_NAME = "comfyui-kling"
SETUP_HINT = "run scripts/setup_host.sh (it installs ComfyUI 0.3.75 and its venv; add --browser for Chromium)"

# Inherited variables that would let a test host reach a real Kling account; dropped unless asked for.
_KLING_ENV_PREFIX = "KLING_"


# --------------------------------------------------------------------------------------------
# errors


class HostNotInstalled(RuntimeError):
    """ComfyUI or its Python is missing; the message says how to install it."""


class HostError(RuntimeError):
    """The ComfyUI process failed to boot, died, or answered something unexpected."""


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


# --------------------------------------------------------------------------------------------
# locating the install


class ComfyInstall(NamedTuple):
    comfyui_dir: Path
    python: str


def host_root() -> Path:
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


NEWEST_FRONTEND_FILE = Path(__file__).resolve().parent / "newest_frontend.txt"  # the one pin of it


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# tiny HTTP client (stdlib only)


class HttpResponse(NamedTuple):
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


def http_request(method: str, url: str, *, json_body: Any = None, data: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> HttpResponse:
    """One request; HTTP error statuses are returned (not raised). Connection errors raise OSError."""
    hdrs = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode("utf-8")
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return HttpResponse(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, e.read(), dict(e.headers or {}))


def _multipart(fields: Mapping[str, str], files: Iterable[tuple[str, str, bytes, str]]) -> tuple[bytes, str]:
    boundary = "----kling" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                f"{value}\r\n").encode("utf-8")
    for field, filename, content, ctype in files:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: {ctype}\r\n\r\n").encode("utf-8")
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Process:
    """A child in its own process group, logging to a file; stops with SIGTERM, then SIGKILL."""

    proc: subprocess.Popen | None = None
    log_path: Path

    def _spawn(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self._reaped = False
        self._log_file = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen(argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _terminate(self, grace: float) -> int | None:
        if self.proc is None:
            return None
        if getattr(self, "_reaped", False):
            return self.proc.returncode
        self._reaped = True
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(10)
        # (if the leader had already exited, its pgid may be reused by now: signal nothing)
        self._log_file.close()
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # our own session: only what we started
        except (ProcessLookupError, PermissionError):
            pass

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return _tail(self.log_path, lines)


# --------------------------------------------------------------------------------------------
# ComfyUI


class ComfyHost(_Process):
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
        env = {k: v for k, v in os.environ.items()
               if self.inherit_kling_env or not k.startswith(_KLING_ENV_PREFIX)}
        env["PYTHONUNBUFFERED"] = "1"
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
        body, content_type = _multipart(fields, [("image", fname, path.read_bytes(), ctype)])
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


# --------------------------------------------------------------------------------------------
# /ws collector


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


# --------------------------------------------------------------------------------------------
# Kling API emulator


def emulator_available(module: str = "kling_api.emulator", root: str | os.PathLike = REPO_ROOT) -> bool:
    """Whether ``module`` can be found under ``root`` (the repo), without importing anything and
    without touching sys.path (a stricter stand-in for ``importlib.util.find_spec``)."""
    from importlib.machinery import PathFinder
    search = [str(root)]
    spec = None
    for part in module.split("."):
        spec = PathFinder.find_spec(part, search)
        if spec is None:
            return False
        search = list(spec.submodule_search_locations or [])
    return spec is not None


class EmulatorProcess(_Process):
    """``python -m kling_api.emulator --port P --api-key K`` from the repo root, as a subprocess.

    Ready when GET /_emulator/requests answers 200. ``url`` is the base URL to give the pack as
    KLING_API_BASE. ``module``/``cwd`` exist so the harness itself can be tested with a stand-in.
    """

    def __init__(self, *, api_key: str | None = "test-key", port: int | None = None,
                 extra_args: Iterable[str] = (), env: Mapping[str, str] | None = None,
                 python: str | None = None, module: str = "kling_api.emulator",
                 cwd: str | os.PathLike = REPO_ROOT, log_path: str | os.PathLike | None = None,
                 boot_timeout: float = 30.0):
        self.api_key = api_key
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.python = python or os.environ.get("KLING_PYTHON") or sys.executable
        self.module = module
        self.cwd = Path(cwd)
        self._own_log = log_path is None
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="kling-emulator-",
                                                                              suffix=".log")[1])
        self.boot_timeout = boot_timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        argv = [self.python, "-m", self.module, "--port", str(self.port)]
        if self.api_key is not None:
            argv += ["--api-key", self.api_key]
        return argv + self.extra_args

    def start(self) -> "EmulatorProcess":
        if self.running:
            return self
        env = {k: v for k, v in os.environ.items() if not k.startswith(_KLING_ENV_PREFIX)}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join([str(self.cwd)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.update(self.extra_env)
        self._spawn(self.command(), self.cwd, env)
        deadline = time.monotonic() + self.boot_timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise HostError(f"emulator exited with code {self.proc.returncode} "
                                    f"({' '.join(self.command())})\n--- {self.log_path} ---\n{self.log_tail()}")
                try:
                    if http_request("GET", self.url + "/_emulator/requests", timeout=2).status == 200:
                        return self
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise HostError(f"emulator did not answer GET /_emulator/requests within "
                                    f"{self.boot_timeout:.0f} s\n--- {self.log_path} ---\n{self.log_tail()}")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 10.0) -> int | None:
        code = self._terminate(grace)
        if self._own_log and os.environ.get("KLING_KEEP_HOST_DIR") != "1":
            self.log_path.unlink(missing_ok=True)
        return code

    def __enter__(self) -> "EmulatorProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        r = http_request(method, self.url + path, json_body=body, timeout=10)
        if r.status >= 300:
            raise HostError(f"{method} {path} -> HTTP {r.status}: {r.body[:500]!r}")
        ctype = r.headers.get("Content-Type", "")
        return r.json() if r.body and "json" in ctype else (r.body.decode("utf-8", "replace") or None)

    def _listing(self, name: str) -> Any:
        body = self._call("GET", f"/_emulator/{name}")
        return body[name] if isinstance(body, dict) and name in body else body

    def requests(self) -> list[dict]:
        """GET /_emulator/requests: the recorded API requests (the ``"requests"`` list)."""
        return self._listing("requests")

    def tasks(self) -> list[dict]:
        """GET /_emulator/tasks: the tasks created so far."""
        return self._listing("tasks")

    def callbacks(self) -> list[dict]:
        """GET /_emulator/callbacks: the callback_url deliveries made so far."""
        return self._listing("callbacks")

    def config(self) -> dict:
        """GET /_emulator/config: the current timing/fault switches."""
        return self._call("GET", "/_emulator/config")

    def set_config(self, config: Mapping[str, Any] | None = None, **changes: Any) -> Any:
        """POST /_emulator/config (e.g. ``processing_seconds=0.5``); returns the emulator's answer.
        An unknown key is HTTP 400 -> ``HostError`` listing the valid keys."""
        return self._call("POST", "/_emulator/config", {**dict(config or {}), **changes})

    def reset(self) -> Any:
        """POST /_emulator/reset: forget recorded requests, tasks and config changes."""
        return self._call("POST", "/_emulator/reset", {})

    def upload(self, data: bytes, content_type: str = "image/png") -> str:
        """POST /_emulator/uploads: host bytes on the emulator; returns their loopback URL."""
        r = http_request("POST", self.url + "/_emulator/uploads", data=data,
                         headers={"Content-Type": content_type}, timeout=30)
        if r.status != 200:
            raise HostError(f"POST /_emulator/uploads -> HTTP {r.status}: {r.body[:500]!r}")
        return r.json()["url"]
