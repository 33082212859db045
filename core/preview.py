"""A picture to judge by eye: the reference video and the result's renders side by side,
frame by frame on one clock, with the per-step Pi of both (and the share of pixels the
flow trusted) drawn under them (`parascale evaluate --preview`, the panel's Save Preview).

numpy and OpenCV (imported inside the functions); never bpy. Written atomically: the
video goes to a temporary name beside the destination and is moved onto it when whole.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .formats.writers import clean_stale, temp_sibling

STRIP = 120           # height of the plot strip under the pictures (px, before scaling)
MAX_WIDTH = 1280      # the side-by-side picture is scaled down to at most this width
COLOURS = {"ref": (80, 160, 255), "realised": (255, 220, 80), "trusted": (110, 110, 110),
           "cursor": (255, 255, 255), "text": (235, 235, 235), "axis": (70, 70, 70)}  # BGR
FOURCC = "mp4v"       # MPEG-4 Part 2 in an MP4 container: OpenCV's FFmpeg writes it everywhere


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if h == height:
        return image
    return cv2.resize(image, (max(2, int(round(w * height / h))), height), interpolation=cv2.INTER_AREA)


def _bgr(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image[..., :3]


def _placeholder(height: int, width: int, text: str) -> np.ndarray:
    import cv2

    out = np.full((height, width, 3), 40, np.uint8)
    cv2.putText(out, text, (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLOURS["text"], 1, cv2.LINE_AA)
    return out


def _plot(width: int, height: int, t: int, pi_ref, pi_realised, trusted) -> np.ndarray:
    """The strip: Pi of the reference and realised per step (one scale), the trusted share
    as grey bars (0..1 of the lower part), a cursor on the step that ends at this frame."""
    import cv2

    out = np.zeros((height, width, 3), np.uint8)
    n = len(pi_ref)
    top, bottom, left, right = 22, height - 6, 8, width - 8
    values = [v for v in list(pi_ref) + list(pi_realised) if v is not None and np.isfinite(v)]
    vmax = max(values) * 1.1 if values and max(values) > 0 else 1.0
    x = lambda i: int(round(left + (right - left) * (i + 0.5) / max(n, 1)))  # noqa: E731
    y = lambda v: int(round(bottom - (bottom - top) * min(v / vmax, 1.0)))  # noqa: E731
    cv2.line(out, (left, bottom), (right, bottom), COLOURS["axis"], 1)
    bar = max(1, (right - left) // max(n, 1) - 2)
    for i, share in enumerate(trusted):
        if share is not None and np.isfinite(share):
            h = int(round((bottom - top) * 0.35 * min(max(share, 0.0), 1.0)))
            cv2.rectangle(out, (x(i) - bar // 2, bottom - h), (x(i) + bar // 2, bottom), COLOURS["trusted"], -1)
    for name, series in (("ref", pi_ref), ("realised", pi_realised)):
        pts = [(x(i), y(v)) if v is not None and np.isfinite(v) else None for i, v in enumerate(series)]
        for a, b in zip(pts[:-1], pts[1:]):
            if a is not None and b is not None:
                cv2.line(out, a, b, COLOURS[name], 2, cv2.LINE_AA)
        for p in pts:
            if p is not None:
                cv2.circle(out, p, 2, COLOURS[name], -1, cv2.LINE_AA)
    if t >= 1:
        cv2.line(out, (x(t - 1), top - 4), (x(t - 1), bottom), COLOURS["cursor"], 1)

    def fmt(v):
        return "-" if v is None or not np.isfinite(v) else f"{v:.4f}"

    if t >= 1:
        i = t - 1
        share = trusted[i] if i < len(trusted) else None
        text = (f"step {t}: Pi reference {fmt(pi_ref[i])}  realised {fmt(pi_realised[i])}  "
                f"trusted {'-' if share is None or not np.isfinite(share) else f'{100 * share:.0f}%'}")
    else:
        text = "frame 0: Pi reference (orange), realised (blue), share of pixels trusted (grey bars)"
    cv2.putText(out, text, (left, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.42, COLOURS["text"], 1, cv2.LINE_AA)
    return out


def compose_frame(t: int, reference: Optional[np.ndarray], render: np.ndarray, pi_ref, pi_realised, trusted,
                  labels=("reference", "result (render)")) -> np.ndarray:
    """One preview frame (BGR uint8): reference | render on top, the Pi strip below."""
    import cv2

    render = _bgr(render)
    h = render.shape[0]
    left = _fit(_bgr(reference), h) if reference is not None else _placeholder(h, render.shape[1], "no reference video")
    top = np.hstack([left, render])
    for text, x0 in ((labels[0], 6), (labels[1], left.shape[1] + 6)):
        cv2.putText(top, text, (x0, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(top, text, (x0, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLOURS["text"], 1, cv2.LINE_AA)
    frame = np.vstack([top, _plot(top.shape[1], STRIP, t, pi_ref, pi_realised, trusted)])
    if frame.shape[1] > MAX_WIDTH:
        s = MAX_WIDTH / frame.shape[1]
        frame = cv2.resize(frame, (MAX_WIDTH, int(round(frame.shape[0] * s))), interpolation=cv2.INTER_AREA)
    # Even sizes: many players refuse odd ones.
    return frame[:frame.shape[0] // 2 * 2, :frame.shape[1] // 2 * 2]


def write_preview(path, renders: Sequence[np.ndarray], fps: float, pi_ref, pi_realised, trusted,
                  references: Optional[Sequence[Optional[np.ndarray]]] = None,
                  labels=("reference", "result (render)")) -> dict:
    """Write the side-by-side video: frame i shows reference frame i (None: a placeholder)
    beside render i, at `fps` (the clock both were sampled on). pi_ref, pi_realised and
    trusted have one value per step (None/nan where not measured). Returns what was written."""
    import cv2

    path = Path(path)
    if not renders:
        raise ValueError(f"{path}: no frames to write")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"{path}: frame rate {fps!r} must be a positive number")
    n = len(renders)
    if len(pi_ref) != n - 1:
        raise ValueError(f"{path}: {len(pi_ref)} reference Pi values for {n} frames ({n - 1} steps)")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{path}: folder {folder} does not exist")
    clean_stale(path)
    tmp = temp_sibling(path, path.suffix or ".mp4")
    writer = None
    try:
        for t in range(n):
            ref = references[t] if references is not None and t < len(references) else None
            frame = compose_frame(t, ref, renders[t], pi_ref, pi_realised, trusted, labels)
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), float(fps), size)
                if not writer.isOpened():
                    raise ValueError(f"{path}: OpenCV cannot write {FOURCC} video here")
            writer.write(frame)
        writer.release()
        writer = None
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise ValueError(f"{path}: the video writer produced nothing")
        os.replace(tmp, path)
    finally:
        if writer is not None:
            writer.release()
        if tmp.exists():
            tmp.unlink()
    return {"path": str(path), "frames": n, "fps": float(fps), "size": list(size)}
