"""A progress bar for the command line, on stderr."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """A one-line progress bar on stderr (only when stderr is a terminal, else a line every 10 %)."""

    def __init__(self, label: str, total: int, stream=None):
        # sys.stderr as it is now, not as it was at import (it may have been redirected since)
        self.label, self.total, self.stream = label, max(total, 1), stream or sys.stderr
        self.started = time.monotonic()
        self.tty = self.stream.isatty()
        self.last_decile = -1

    def update(self, done: int, total: int | None = None, extra: str = "") -> None:
        if total:
            self.total = max(total, 1)
        fraction = min(done / self.total, 1.0)
        elapsed = time.monotonic() - self.started
        eta = elapsed / fraction - elapsed if fraction > 0 else float("nan")
        text = f"{self.label} {done}/{self.total} {fraction:6.1%} | {elapsed:5.0f}s elapsed, {eta:5.0f}s left {extra}"
        if self.tty:
            width = 24
            filled = int(width * fraction)
            self.stream.write("\r[" + "#" * filled + "-" * (width - filled) + "] " + text)
        elif int(fraction * 10) > self.last_decile:
            self.last_decile = int(fraction * 10)
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
