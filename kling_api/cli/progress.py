"""The CLI's task progress: one line rewritten in place on a terminal, plain lines anywhere else.

A log file or a CI console cannot rewind a line, so there `\\r` and `ESC[K` would only leave control codes
behind; off a terminal each status change gets one line of its own and the elapsed-time ticks are left out.
"""
from __future__ import annotations

import sys
from typing import TextIO

from ..remote.tasks import StatusUpdate

_REWRITE_LINE = "\r\033[K"


class ProgressOutput:
    """Writes status updates and messages to one stream (stderr by default), terminal-aware."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty())
        self._line_open = False  # a rewritten line is on screen without its newline
        self._last_status: str | None = None

    def status(self, update: StatusUpdate) -> None:
        """The task's progress: a callback for ``on_status``."""
        if self.live:
            self.stream.write(_REWRITE_LINE + update.describe())
            self._line_open = True
        elif update.status != self._last_status:
            self.stream.write(update.describe() + "\n")
        self._last_status = update.status
        self.stream.flush()

    def message(self, text: str) -> None:
        """A line of its own, after the progress line if one is open."""
        self.end_line()
        self.stream.write(text + "\n")
        self.stream.flush()

    def end_line(self) -> None:
        """Closes an open progress line so that what follows starts on a line of its own."""
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
