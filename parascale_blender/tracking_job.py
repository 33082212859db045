"""`parascale track` as a child process of this Python (Blender's operator): a crash in
COLMAP cannot take Blender down, and the UI polls its progress. No bpy here."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from ..core.tracking import tracking_available  # noqa: F401  (the UI asks through the adapter)

PROGRESS_PREFIX = "PARASCALE-PROGRESS"  # the child's machine-readable progress lines (`parascale track --progress`)


def frame_width(video) -> int:
    """Width in pixels of the first frame of a video file or image folder."""
    from ..core.reference import video_size

    return video_size(video)[0]


def console_progress(label: str, stream=None, every: float = 2.0):
    """A progress callback that prints '<label>: <percent>% <message>' when the percent
    changes, or the message after `every` seconds (at most a line a second or so, however
    long the video): the Track Video operator without a window (background, scripts),
    where no bar shows. Takes progress(fraction, message) (the tracking) or
    progress(done, total) (the Pi measurement, as core.reference.pi_from_video calls it)."""
    import time

    last = {"pct": None, "what": None, "at": 0.0}

    def progress(a, b) -> None:
        if isinstance(b, str):
            pct, what = int(100 * a), b
        else:
            pct, what = int(100 * a / max(b, 1)), f"step {a}/{b}"
        now = time.monotonic()
        if pct != last["pct"] or (what != last["what"] and now - last["at"] >= every):
            last.update(pct=pct, what=what, at=now)
            print(f"{label}: {pct:3d}% {what}", file=stream or sys.stdout, flush=True)

    return progress


# Loads the extension folder as the package `parascale` without running its __init__
# (which registers Blender classes), then runs this module's main.
_BOOT = ("import sys, types; root = sys.argv[1]; pkg = types.ModuleType('parascale'); pkg.__path__ = [root]; "
         "sys.modules['parascale'] = pkg; from parascale.parascale_blender.cli.track import main; "
         "sys.exit(main(sys.argv[2:]))")


class TrackJob:
    """`parascale track` in a subprocess of this Python (sys.executable: Blender's own in
    Blender), so that a crash in COLMAP cannot take the caller down. poll() never blocks:
    a reader thread collects the child's progress lines.

        job = TrackJob(video, out, focal=..., focal_y=...); job.start()
        while job.poll() is None: ...  # job.fraction, job.message
        job.returncode == 0 -> job.out holds the model; else job.error says why
    """

    def __init__(self, video, out, focal=None, focal_y=None, fov=None, sensor=None, lens=None,
                 max_image_size=None, python=None, extra_args=(), fps=None):
        self.video, self.out = str(video), str(out)
        self.args = [self.video, "--out", self.out, "--progress"]
        if fps is not None:  # the video's frame rate (a Movie Clip's); default the file's own
            self.args += ["--fps", str(fps)]
        for flag, value in (("--focal", focal), ("--focal-y", focal_y), ("--fov", fov), ("--sensor", sensor),
                            ("--lens", lens), ("--max-image-size", max_image_size)):
            if value is not None:
                self.args += [flag, repr(float(value)) if flag != "--max-image-size" else str(int(value))]
        self.args += list(extra_args)
        self.python = python or sys.executable
        self.proc = None
        self.fraction, self.message = 0.0, "starting"
        self.result, self.error, self.returncode = None, None, None
        self._lines, self._err, self._threads = [], [], []

    def command(self) -> list:
        root = str(Path(__file__).resolve().parent.parent)
        return [self.python, "-c", _BOOT, root, *self.args]

    def start(self) -> "TrackJob":
        import os
        import subprocess
        import threading

        env = dict(os.environ)
        # The child sees the same packages (Blender adds extension wheels to sys.path at run time).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["PYTHONNOUSERSITE"] = "1"
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True, env=env, bufsize=1)
        self._threads = [threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
                         for stream, sink in ((self.proc.stdout, self._lines), (self.proc.stderr, self._err))]
        for t in self._threads:
            t.start()
        return self

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def _read_lines(self) -> None:
        while self._lines:
            line = self._lines.pop(0)
            if line.startswith(PROGRESS_PREFIX + "-RESULT "):
                self.result = json.loads(line.split(" ", 1)[1])
            elif line.startswith(PROGRESS_PREFIX + " "):
                _, frac, *msg = line.split(" ", 2)
                self.fraction, self.message = float(frac), (msg[0] if msg else "")

    def poll(self):
        """None while running; the return code when done (then result / error are set)."""
        self._read_lines()
        if self.returncode is not None:
            return self.returncode
        if self.proc is None or self.proc.poll() is None:
            return None
        for t in self._threads:  # the pipes are closed: the readers end at once
            t.join(5)
        self._read_lines()
        self.returncode = self.proc.returncode
        if self.returncode != 0:
            self.error = self._error_text()
        return self.returncode

    def _error_text(self) -> str:
        errors = [ln for ln in self._err if ln.startswith("parascale track: error:")]
        if errors:
            return errors[-1].split("error:", 1)[1].strip()
        tail = [ln for ln in self._err if ln.strip()][-3:]
        how = f"exit status {self.returncode}" if self.returncode > 0 else f"signal {-self.returncode}"
        return f"the tracking process stopped ({how}): " + (" | ".join(tail) or "no message")

    def wait(self, timeout=None, progress=None, interval: float = 0.25) -> int:
        """Block until the child ends (or `timeout` seconds: then subprocess.TimeoutExpired);
        progress(fraction, message) is called whenever the child reports a new stage or
        percent (console_progress prints it)."""
        import subprocess
        import time

        if progress is None:
            self.proc.wait(timeout)
            return self.poll()
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            progress(self.fraction, self.message)
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.command(), timeout)
            time.sleep(interval)
        progress(self.fraction, self.message)
        return self.returncode

    def cancel(self) -> None:
        """Stop the child and remove what it left half-written (its temporary folder)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        out = Path(self.out)
        # core.formats.writers.atomic_folder builds the result in ".<name>.tmp-<pid>-*" beside it.
        for leftover in out.parent.glob(f".{out.name}.tmp-{self.proc.pid}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self.returncode = self.proc.returncode
        self.error = "cancelled"
