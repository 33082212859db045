"""Bench section: video tracking with COLMAP (pycolmap), frames per second and accuracy."""
from __future__ import annotations

import time

import numpy as np

from .video import synthetic_video
from .common import (Config, Results, VIDEO_SIZE, _log, row)


# 5. video tracking with COLMAP (pycolmap, optional)

def bench_tracking(cfg: Config, res: Results) -> None:
    """Frames per second of `parascale track` (frames written, SIFT, sequential matching,
    global mapping) on the synthetic 960x540 video with the lens given: SIFT at full
    resolution (baseline) vs the default long side, with the rotation error of each."""
    import shutil
    import tempfile
    from pathlib import Path

    import cv2

    from ...core.rotations import rotation_angle
    from ...core.tracking import DEFAULT_LONG_SIDE, Intrinsics, TrackOptions, track_video, tracking_available

    ok, why = tracking_available()
    if not ok or cfg.quick:
        why = why if not ok else "--quick: the tracking section runs only in the full bench (COLMAP takes minutes)"
        res.notes.append(f"tracking section skipped: {why}")
        _log(f"tracking: skipped ({why})")
        return
    n = cfg.track_frames
    W, H = VIDEO_SIZE
    frames, c2w, K, _ = synthetic_video(n)
    tmp = Path(tempfile.mkdtemp(prefix="parascale-bench-track-"))
    try:
        for i, f in enumerate(frames):
            cv2.imwrite(str(tmp / f"frame_{i:04d}.png"), f)
        rel_true = np.einsum("ji,njk->nik", c2w[0, :3, :3], c2w[:, :3, :3])
        measured = {}
        for label, size in (("baseline: SIFT at full resolution", 0),
                            (f"default: SIFT at long side {DEFAULT_LONG_SIDE}", DEFAULT_LONG_SIDE)):
            _log(f"tracking: {label} ({n} frames) ...")
            t0 = time.perf_counter()
            result = track_video(tmp, tmp / f"out{size}", Intrinsics(K[0, 0], K[1, 1], "focal"),
                                 TrackOptions(max_image_size=size), strict=False)
            sec = (time.perf_counter() - t0) / n
            R = result.c2w[:, :3, :3]
            rel = np.einsum("ji,njk->nik", R[0], R)
            err = float(np.degrees(rotation_angle(np.einsum("nji,njk->nik", rel, rel_true))).max())
            measured[label] = (sec, err, result.registered, result.timings)
            _log(f"tracking: {label}: {1 / sec:.2f} fps, {result.registered}/{n} registered, "
                 f"rotation error up to {err:.3f} deg")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base_label = next(iter(measured))
    base = measured[base_label][0]
    rows = [row(label, sec, "frame", base_label, base, fps=1.0 / sec, rot_error_deg=err, registered=reg,
                stages_s=timings) for label, (sec, err, reg, timings) in measured.items()]
    res.sections["tracking"] = {"size": [W, H], "frames": n,
                                "rot_error": "largest per-frame rotation error (deg) relative to frame 0; the "
                                             "video is one textured plane (two-fold homography ambiguity): "
                                             "accuracy is tested on real clips",
                                "rows": rows}
