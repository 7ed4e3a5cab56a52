"""The child processes the harness starts: each in its own session, logging to a file, stopped by group."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Mapping

# Inherited variables that would let a child reach a real Kling account; dropped unless asked for.
KLING_ENV_PREFIX = "KLING_"


def child_environment(*, inherit_kling_env: bool = False, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child: unbuffered output, ``KLING_*`` left out unless inherited
    (a test host must not reach a real Kling account by accident)."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if inherit_kling_env or not k.startswith(KLING_ENV_PREFIX)}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail_of(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file ("" if it cannot be read)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ChildProcess:
    """A child in its own process group, logging to a file; stops with SIGTERM, then SIGKILL.

    Its own session, so that stopping it signals only what it started (ComfyUI's workers included)."""

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
        return tail_of(self.log_path, lines)
