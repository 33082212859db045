"""The clock of a tracked video: ``frame_times.json`` beside a COLMAP model (docs/formats.md).

    {"format": "parascale frame times", "version": 1,
     "video": "clip.mp4", "rate": "30000/1001", "fps": 29.97002997002997,
     "source": "container",
     "names": ["frame_000000.png", ...], "times": [0.0, 0.03336666666666667, ...]}

``names`` are the model's image names in video order, ``times`` their times in seconds
from the video's first frame (frame i at i / rate). ``rate`` is the exact frame rate
("30", "30000/1001", "25/2") or null when the times follow no one rate; ``fps`` is the
same as a number. ``source`` says where the rate came from: ``container`` (the video
file declares it) or ``given`` (``parascale track --fps``, a Movie Clip's rate).

`parascale track` writes it (``write_frame_times``); ``read_colmap`` finds it beside the
model (``find_frame_times``) and times the track with it, so every route (Track Video,
Import Track, measure, transfer --track MODEL) keeps the video's clock. Without it a
COLMAP model is untimed: one image per scene frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..clock import exact_rate, rate_text
from . import validate as V

NAME = "frame_times.json"
FORMAT = "parascale frame times"
VERSION = 1
SOURCES = ("container", "given")
EXPECTED = ('a ParaScale frame_times.json: {"format": "parascale frame times", "version": 1, "rate", '
            '"names": [...], "times": [...]}')


@dataclass
class FrameTimes:
    names: list
    times: np.ndarray
    rate: Optional[Fraction]
    source: str
    video: str = ""
    path: Optional[Path] = None

    @property
    def fps(self) -> Optional[float]:
        return float(self.rate) if self.rate is not None else None

    def times_of(self, names: Sequence[str], model="the model") -> np.ndarray:
        """Times of the model's images, in the order given; an image without a time is an error."""
        index = {n: i for i, n in enumerate(self.names)}
        out = np.empty(len(names))
        for k, name in enumerate(names):
            i = index.get(name)
            if i is None:
                raise V.TrackFormatError(f"{self.path}: no time for image {name!r} of {model} (expected every "
                                         f"image the model names among its \"names\")")
            out[k] = self.times[i]
        return out


def frame_times_for(names: Sequence[str], rate, source: str, video="") -> FrameTimes:
    """Frame i of `names` (video order) at i / rate seconds."""
    rate = exact_rate(rate)
    if source not in SOURCES:
        raise ValueError(f"frame times source {source!r}: expected one of {', '.join(SOURCES)}")
    times = np.array([float(Fraction(i) / rate) for i in range(len(names))])
    return FrameTimes(list(names), times, rate, source, str(video))


def clock_of_video(video, names: Sequence[str], fps=None) -> Optional[FrameTimes]:
    """The clock of a tracked video's frames (`names`, in video order): at `fps` when given
    (source "given"), else at the rate a video file declares ("container"); None for an
    image folder without a rate (untimed) or a file that declares none."""
    from ..clock import video_rate

    if fps is not None:
        return frame_times_for(names, fps, "given", video)
    rate = video_rate(video)
    return frame_times_for(names, rate, "container", video) if rate is not None else None


def to_json(ft: FrameTimes) -> dict:
    return {"format": FORMAT, "version": VERSION, "video": ft.video,
            "rate": rate_text(ft.rate) if ft.rate is not None else None,
            "fps": ft.fps, "source": ft.source, "names": list(ft.names),
            "times": [float(t) for t in ft.times]}


def write_frame_times(folder, ft: FrameTimes) -> Path:
    """frame_times.json in `folder` (written atomically)."""
    import json

    from .writers import atomic_write_text

    path = Path(folder) / NAME
    atomic_write_text(path, json.dumps(to_json(ft), indent=1) + "\n")
    return path


def read_frame_times(path) -> FrameTimes:
    """frame_times.json, checked: every name a unique string, every time finite and
    increasing in video order, the rate a positive number or fraction (or null)."""
    path = Path(path)
    doc = V.load_json(path, EXPECTED)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise V.TrackFormatError(f"{path}: not a frame times file (expected {EXPECTED})")
    version = doc.get("version")
    if version != VERSION:
        raise V.TrackFormatError(f"{path}: version {V._short(version)}; this ParaScale reads version {VERSION} "
                                 "(a newer ParaScale wrote it?)")
    names, times = doc.get("names"), doc.get("times")
    if not isinstance(names, list) or not isinstance(times, list):
        raise V.TrackFormatError(f"{path}: \"names\" and \"times\" must be lists (expected {EXPECTED})")
    if len(names) != len(times):
        raise V.TrackFormatError(f"{path}: {len(names)} names but {len(times)} times (expected one time per name)")
    V.check_frame_count(path, len(names), "names")
    for i, n in enumerate(names):
        if not isinstance(n, str) or not n:
            raise V.TrackFormatError(f"{path} names[{i}]: expected an image name, got {V._short(n)}")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise V.TrackFormatError(f"{path}: image {dup!r} named twice in \"names\"")
    t = np.array([V.json_number(path, f"times[{i}]", v, "the frame time") for i, v in enumerate(times)])
    t = V.check_times(path, t, [f"times[{i}] ({names[i]})" for i in range(len(names))])
    rate = doc.get("rate")
    if rate is not None:
        if not isinstance(rate, (str, int, float)) or isinstance(rate, bool):
            raise V.TrackFormatError(f"{path} rate: expected a frame rate like \"30\" or \"30000/1001\", "
                                     f"got {V._short(rate)}")
        try:
            rate = exact_rate(rate)
        except ValueError as exc:
            raise V.TrackFormatError(f"{path} rate: {exc}") from None
        if not math.isfinite(float(rate)) or float(rate) > 1e6:
            raise V.TrackFormatError(f"{path} rate: {rate} frames per second is out of range")
    source = doc.get("source", "container")
    if source not in SOURCES:
        raise V.TrackFormatError(f"{path} source: expected one of {', '.join(SOURCES)}, got {V._short(source)}")
    video = doc.get("video", "")
    return FrameTimes(names, t, rate, source, video if isinstance(video, str) else "", path)


def find_frame_times(model_dir) -> Optional[Path]:
    """frame_times.json of a COLMAP model: in its folder, or one or two folders up
    (DIR/sparse, DIR/sparse/0), the nearest first."""
    here = Path(model_dir)
    for folder in (here, here.parent, here.parent.parent):
        cand = folder / NAME
        if cand.is_file():
            return cand
    return None
