"""The Kling API emulator as a child process (``python -m kling_api.emulator``), with its control API.

A host test's ComfyUI talks to it over HTTP as to Kling (``KLING_API_BASE``); the test reads what it
received and switches its timing and faults through ``/_emulator/*``.

    with EmulatorProcess(api_key="k") as emu:
        emu.set_config(processing_seconds=0.5)
        ... emu.requests()
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import REPO_ROOT
from .errors import HostError
from .http import free_port, http_request
from .process import ChildProcess, child_environment


class EmulatorProcess(ChildProcess):
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
        env = child_environment()
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
