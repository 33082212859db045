"""The progress bar of `parascale batch`: done / failed / remaining and throughput.

On a terminal one line is redrawn in place; in a log (stderr not a terminal) a line is
printed every `every` seconds and at the end. A failed job is printed at once, on a line
of its own, with its reason. Throughput counts the jobs this run computed (skipped jobs
were done before) over the time since the first one was sent.
"""
from __future__ import annotations

import sys
import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def rate_text(jobs: int, seconds: float) -> str:
    if jobs <= 0 or seconds <= 0:
        return "- jobs/min"
    per_min = 60.0 * jobs / seconds
    return f"{per_min:.1f} jobs/min" if per_min < 600 else f"{per_min / 60:.1f} jobs/s"


class Progress:
    def __init__(self, total: int, skipped: int = 0, stream=None, every: float = 5.0, width: int = 24):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.skipped = total, skipped
        self.ok = self.failed = 0
        self.every, self.width = every, width
        self.t0 = self.t1 = None
        self._last = 0.0
        self._drawn = False

    @property
    def done(self) -> int:
        return self.skipped + self.ok

    @property
    def remaining(self) -> int:
        return self.total - self.done - self.failed

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.draw(force=True)

    def stop(self) -> None:
        """The clock stops: throughput is over the jobs' time, not the shutdown after."""
        if self.t0 is not None and self.t1 is None:
            self.t1 = time.perf_counter()

    def elapsed(self) -> float:
        if self.t0 is None:
            return 0.0
        return (self.t1 or time.perf_counter()) - self.t0

    def line(self) -> str:
        finished = self.done + self.failed
        fill = int(self.width * finished / max(self.total, 1))
        bar = "#" * fill + "-" * (self.width - fill)
        computed = self.ok + self.failed
        el = self.elapsed()
        text = (f"[{bar}] {finished}/{self.total}: {self.done} done"
                + (f" ({self.skipped} skipped)" if self.skipped else "")
                + f", {self.failed} failed, {self.remaining} remaining | {rate_text(computed, el)}, {_duration(el)}")
        if computed and self.remaining:
            text += f", ~{_duration(el / computed * self.remaining)} left"
        return text

    def draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.tty:
            print("\r" + self.line() + "\x1b[K", end="", file=self.stream, flush=True)
            self._drawn = True
        elif force or now - self._last >= self.every:
            print(self.line(), file=self.stream, flush=True)
        self._last = now

    def say(self, text: str) -> None:
        """A line of its own (a failure), above the bar."""
        if self.tty and self._drawn:
            print("\r\x1b[K", end="", file=self.stream)
        print(text, file=self.stream, flush=True)
        if self.tty and self.t0 is not None:
            self.draw()

    def finished(self, record: dict) -> None:
        if record.get("status") == "ok":
            self.ok += 1
        else:
            self.failed += 1
            self.say(f"parascale batch: job {record['id']} ({record['kind']}, line {record.get('line', '?')}) "
                     f"failed: {record.get('reason')}")
        self.draw(force=self.remaining == 0)

    def close(self) -> None:
        if self.tty and self._drawn:
            print(file=self.stream, flush=True)
