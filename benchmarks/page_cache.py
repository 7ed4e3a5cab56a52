"""Memory pressure for the loaded in-host run: a process rewriting a file as large as the free memory, so
that the page cache fills the machine's free memory and stays dirty (the kernel must write it back and
reclaim it while a prompt takes fresh memory).

    python -m benchmarks.page_cache write-load PATH [BYTES]    (what PageCacheWriter runs)

Standard library only: the writer process stays small.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from .procfs import meminfo
from .units import GIB, MB

ROOT = Path(__file__).resolve().parents[1]
WRITER_MIN_BYTES, WRITER_MAX_BYTES = 4 * GIB, 12 * GIB  # the file's size: the disk holds at most this much
WRITER_CHUNK = 16 * MB


def write_load(path: str, file_bytes: int) -> None:
    """Rewrite ``path`` (``file_bytes`` long) from the start, over and over, until SIGTERM; then delete it.

    Prints the bytes written so far after every GiB, so the parent knows when the cache is dirty."""
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    chunk = os.urandom(WRITER_CHUNK)
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while not stop:
            os.lseek(fd, 0, os.SEEK_SET)
            for _ in range(file_bytes // WRITER_CHUNK):
                if stop:
                    break
                os.write(fd, chunk)
                written += WRITER_CHUNK
                if written % GIB == 0:
                    print(written, flush=True)
    finally:
        os.close(fd)
        os.unlink(path)
        print(f"done {written}", flush=True)


class PageCacheWriter:
    """``write_load`` in its own process, on a file the size of the free memory (at least 4 GiB): started,
    waited for until it has written the whole file once (the free memory is then page cache), stopped."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / f"page-cache-load-{uuid.uuid4().hex[:8]}.bin"
        free = meminfo()["MemFree"] + GIB
        self.file_bytes = min(WRITER_MAX_BYTES, max(WRITER_MIN_BYTES, free // WRITER_CHUNK * WRITER_CHUNK))
        self.warm_bytes = self.file_bytes  # one whole pass before any measurement
        self.process: subprocess.Popen | None = None
        self.written = 0
        self._warm = threading.Event()

    def __enter__(self) -> "PageCacheWriter":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen([sys.executable, "-m", "benchmarks.page_cache", "write-load", str(self.path),
                                         str(self.file_bytes)],
                                        cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._follow, name="page-cache-writer", daemon=True).start()
        while not self._warm.wait(1.0):
            if self.process.poll() is not None:
                raise RuntimeError(f"the page-cache writer ended early (code {self.process.returncode})")
        return self

    def _follow(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip().isdigit():
                self.written = int(line)
                if self.written >= self.warm_bytes:
                    self._warm.set()

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.path.unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["write-load"]:
        write_load(argv[1], int(argv[2]) if len(argv) > 2 else WRITER_MIN_BYTES)
    else:
        raise SystemExit("usage: python -m benchmarks.page_cache write-load PATH [BYTES]")


if __name__ == "__main__":
    main(sys.argv[1:])
