"""The clock of a camera track: frame rates, frame times, and times on a scene's frames.

- ``exact_rate(fps)``: the rate a float stands for, as a Fraction: whole rates and the
  NTSC rates n*1000/1001 (29.97 is 30000/1001) when the float is within
  ``RATE_TOLERANCE`` of one (containers store 29.97, Blender a float32); any other rate
  as the nearest fraction with a denominator of at most 1001.
- ``blender_rate(rate)``: (fps, fps_base) for a Blender scene: 30000/1001 is (30, 1.001),
  as Blender's own 29.97 preset; ``scene_rate(fps, fps_base)`` reads it back exactly
  (Blender stores fps_base as float32).
- ``frames_of_times(times, fps)``: scene frames (from 0) of times in seconds. A frame
  within ``SNAP`` (1e-3 frame) of a whole number is that number: timestamps in whole
  microseconds (RealEstate10K), a float32 fps_base or a rate written with two decimals
  never lose a frame to rounding.
- ``whole_frames(duration, fps)``: how many whole frame steps a duration holds (snapped).
- ``track_rate(track)``: the frame rate of a timed track (its clock's, else its mean rate).
- ``video_rate(video)``: the frame rate a video file's container declares (no decoding).

No bpy here.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

import numpy as np

SNAP = 1e-3              # frames: a time this close to a frame is on it
RATE_TOLERANCE = 2e-4    # relative: 29.97 (two decimals) is 30000/1001; 23.98 is 24000/1001
SCENE_TOLERANCE = 1e-6   # relative: a scene's fps / fps_base, with fps_base in float32 (6e-8)
MAX_DENOMINATOR = 1001


def exact_rate(fps, tolerance: float = RATE_TOLERANCE, max_denominator: Optional[int] = MAX_DENOMINATOR) -> Fraction:
    """The frame rate `fps` (a number, a Fraction, or text: "29.97" or "30000/1001") stands
    for, as a Fraction: a whole or NTSC rate within `tolerance` (relative), else the
    nearest fraction with a denominator of at most `max_denominator` (None: the float
    itself). ValueError when it is not a positive finite rate."""
    if isinstance(fps, str):  # "30000/1001" is exact; "29.97" is read like the number 29.97
        try:
            fps = Fraction(fps.strip()) if "/" in fps else float(fps)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"frame rate {fps!r}: expected a number or a fraction like 30000/1001") from None
    if isinstance(fps, Fraction):
        rate = fps
    else:
        fps = float(fps)
        if not math.isfinite(fps):
            raise ValueError(f"frame rate {fps}: expected a positive finite number")
        rate = None
        if fps > 0:
            candidates = (Fraction(round(fps)), Fraction(round(fps * 1.001) * 1000, 1001))
            best = min((c for c in candidates if c > 0), key=lambda c: abs(float(c) - fps), default=None)
            if best is not None and abs(float(best) - fps) <= tolerance * fps:
                rate = best
            elif max_denominator is None:
                rate = Fraction(fps)
            else:
                rate = Fraction(fps).limit_denominator(max_denominator)
        else:
            rate = Fraction(0)
    if not rate > 0:
        raise ValueError(f"frame rate {fps}: expected a positive number of frames per second")
    return rate


def scene_rate(fps, fps_base) -> Fraction:
    """The rate a Blender scene's render.fps / render.fps_base stands for. fps_base is
    stored as float32 (Blender's 29.97 preset, 30 / 1.001, reads 29.9700286): within
    SCENE_TOLERANCE of a whole or NTSC rate it is that rate, else exactly what it says."""
    return exact_rate(float(fps) / float(fps_base), tolerance=SCENE_TOLERANCE, max_denominator=None)


def rate_text(rate) -> str:
    """'30', '30000/1001', '25/2': how the rate is written in files."""
    rate = exact_rate(rate)
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def blender_rate(rate) -> tuple[int, float]:
    """(render.fps, render.fps_base) for a scene at `rate` (Blender's presets: 29.97 is 30 / 1.001)."""
    rate = exact_rate(rate)
    whole = max(1, round(rate))
    return int(whole), float(Fraction(whole) / rate)


def snap_frames(frames, tol: float = SNAP) -> np.ndarray:
    """Frames within `tol` of a whole number become that number."""
    frames = np.asarray(frames, float)
    whole = np.round(frames)
    return np.where(np.abs(frames - whole) <= tol, whole, frames)


def frames_of_times(times, fps: float, start: float = 0.0) -> np.ndarray:
    """Scene frames of `times` (seconds; the first at `start`) on a clock of `fps`, snapped."""
    times = np.asarray(times, float)
    if len(times) == 0:
        return times.copy()
    return start + snap_frames((times - times[0]) * float(fps))


def whole_frames(duration: float, fps: float) -> int:
    """How many whole frame steps fit in `duration` seconds at `fps` (snapped: a duration a
    microsecond short of 47 frames holds 47)."""
    return int(np.floor(float(duration) * float(fps) + SNAP))


def track_rate(track) -> Optional[Fraction]:
    """The frame rate of a timed Track (core.cameras.Track), exact, or None when untimed:
    its clock's own rate when it has one (meta "rate": a tracked video's frame_times.json),
    else the mean rate over its frames (at which its first and last frames fall on whole
    frames, and frames between at their true times)."""
    if not track.meta.get("timed", False) or len(track) < 2:
        return None
    if track.meta.get("rate"):
        return exact_rate(track.meta["rate"])
    duration = float(track.times[-1] - track.times[0])
    return exact_rate((len(track) - 1) / duration) if duration > 0 else None


def video_rate(video) -> Optional[Fraction]:
    """The frame rate a video file's container declares, exact (None: unknown, or a folder)."""
    from pathlib import Path

    if not Path(video).is_file():
        return None
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) if cap.isOpened() else 0.0
    finally:
        cap.release()
    if not (fps and math.isfinite(fps) and 0 < fps < 10000):
        return None
    return exact_rate(fps)
