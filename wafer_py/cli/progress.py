"""The CLI's progress bar: redrawn in place on a terminal, a line per tenth in a log."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """A progress bar on ``stream``: redrawn in place (``\\r``) on a terminal, else one
    line at each tenth of the way (for logs). Nothing at all unless ``enabled``."""

    def __init__(self, total: int, what: str, stream: TextIO, *, enabled: bool = True) -> None:
        self.total = max(total, 1)
        self.what = what
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self._next_tenth = 1
        self._drawn_at = 0.0
        self._done = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        self._done = done
        if self.tty:
            now = time.monotonic()
            if now - self._drawn_at >= 0.1 or done >= self.total:
                self._drawn_at = now
                self.stream.write("\r" + self._line())
                self.stream.flush()
        else:
            tenth = min(10, done * 10 // self.total)
            if tenth >= self._next_tenth:
                self._next_tenth = tenth + 1
                self.stream.write(self._line() + "\n")
                self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (a terminal's cursor is left on it)."""
        if self.enabled and self.tty and self._drawn_at:
            self.stream.write("\r" + self._line() + "\n")
            self.stream.flush()

    def _line(self) -> str:
        total = max(self.total, self._done)
        share = self._done / total
        filled = int(share * 30)
        bar = "#" * filled + "-" * (30 - filled)
        return f"[{bar}] {self._done:,}/{total:,} {self.what} {int(share * 100):3d}%"
