"""A reference move as the pipeline carries it: poses, frame times and the reference Pi per
step, on one time base (ReferenceMotion); TransferError for inputs a transfer cannot take."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from ..core.cameras import resample_poses
from ..core.clock import frames_of_times

PI_PROPERTY = "pi_ref"  # an imported reference's Pi curve (reference.PI_PROPERTY)
COUNTED_PROPERTY = "pi_counted"  # ... and, read from a video, the share of its pixels that counted


class TransferError(ValueError):
    """A transfer that cannot run: says which input and why. Nothing was changed."""


@dataclass
class ReferenceMotion:
    """A reference move: c2w (N, 4, 4) OpenCV axes, times (N,) seconds, and the
    reference Parallax Number of each step (N-1,) with the estimator it was read with."""

    c2w: np.ndarray
    times: np.ndarray
    pi: np.ndarray
    estimator: str
    source: str            # points | depth | video | scene
    label: str = ""
    K: Optional[np.ndarray] = None  # (N, 3, 3) for zoom following, if known
    # Untimed tracks (COLMAP, LLFF, transforms.json) have one image per scene frame.
    timed: bool = True
    # The video the Pi was read from, if any (track frame i = video frame video_offset + i):
    # for the evaluation's side-by-side preview.
    video: Optional[str] = None
    video_offset: int = 0
    # Read from a video: per step, the share of the frame whose motion counted in Pi
    # (static geometry, kept or filled; core.video_pi), else None.
    counted: Optional[np.ndarray] = None

    def __post_init__(self):
        self.c2w = np.asarray(self.c2w, float)
        self.times = np.asarray(self.times, float)
        self.pi = np.asarray(self.pi, float)
        if self.counted is not None:
            self.counted = np.asarray(self.counted, float)
            if self.counted.shape != self.pi.shape:
                self.counted = None
        if len(self.c2w) < 2:
            raise TransferError(f"reference {self.label!r} has {len(self.c2w)} frame(s); a move needs at least 2")
        if len(self.pi) != len(self.c2w) - 1:
            raise TransferError(f"reference {self.label!r}: {len(self.pi)} Pi values for {len(self.c2w)} frames")
        bad = np.flatnonzero(~np.isfinite(self.pi))
        if bad.size:
            raise TransferError(f"reference {self.label!r}: Pi is not a number at step(s) "
                                f"{', '.join(map(str, bad[:10] + 1))}; the track or its measurement is broken there")
        bad = np.flatnonzero(~np.isfinite(self.c2w).all(axis=(1, 2)))
        if bad.size:
            raise TransferError(f"reference {self.label!r}: frame(s) {', '.join(map(str, bad[:10]))} have "
                                "non-finite poses")
        if not np.any(self.pi > 0):
            raise TransferError(f"reference {self.label!r}: Pi is zero at every step, so the move has no "
                                "translation to transfer (a pure pan or a still camera); copy its rotation "
                                "directly instead")

    def at_fps(self, fps: float) -> "ReferenceMotion":
        """Untimed tracks put one frame on each frame of a scene at `fps`."""
        if self.timed:
            return self
        return replace(self, times=np.arange(len(self.c2w)) / fps, timed=True)

    def on_clock(self, fps: float) -> "ReferenceMotion":
        """Its times read on a scene clock of `fps`: a time within 1e-3 of a frame is on that
        frame (core.clock.frames_of_times), so timestamps rounded to whole microseconds
        (RealEstate10K) or a float32 fps_base never lose the last frame."""
        return replace(self, times=self.times[0] + frames_of_times(self.times, fps) / float(fps))

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])

    def on_times(self, new_times: np.ndarray) -> "ReferenceMotion":
        """The move at other frame times (seconds from its start): poses resampled
        (slerp), Pi by interpolating its cumulative sum (docs/estimators.md). Pi crosses
        time bases only this way, whatever route carried the reference, so every route agrees."""
        t = self.times - self.times[0]
        new_times = np.asarray(new_times, float)
        if len(new_times) <= len(t) and np.allclose(new_times, t[:len(new_times)], atol=1e-9):
            n = len(new_times)
            return replace(self, c2w=self.c2w[:n], times=new_times, pi=self.pi[:n - 1],
                           K=None if self.K is None else self.K[:n], timed=True, video=None,
                           counted=None if self.counted is None else self.counted[:n - 1])
        cumulative = np.concatenate([[0.0], np.cumsum(self.pi)])
        pi = np.diff(np.interp(new_times, t, cumulative))
        c2w = resample_poses(self.c2w, t, new_times)
        K = None
        if self.K is not None:  # zoom: focal length interpolated, the rest of K kept
            zoom = np.interp(new_times, t, self.K[:, 0, 0]) / self.K[0, 0, 0]
            K = np.repeat(self.K[:1], len(new_times), axis=0)
            K[:, :2, :2] *= zoom[:, None, None]
        counted = None
        if self.counted is not None:  # each new step: the share of the old step its middle falls in
            mid = 0.5 * (new_times[1:] + new_times[:-1])
            counted = self.counted[np.clip(np.searchsorted(t, mid, side="right") - 1, 0, len(self.counted) - 1)]
        # A video's frames are no longer this move's frames: the preview reads the video on
        # the original reference's times (evaluate.closed_loop_for), never on these.
        return replace(self, c2w=c2w, times=new_times, pi=np.maximum(pi, 0.0), K=K, timed=True, video=None,
                       counted=counted)
