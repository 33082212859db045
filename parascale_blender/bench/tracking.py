"""Bench section: video tracking with COLMAP (pycolmap): frames per second, and the
rotation and centre errors against the true path of a rendered 3-D scene."""
from __future__ import annotations

import time

import numpy as np

from .common import (Config, Results, _log, row)

# issue 17's goals for `parascale track VIDEO --focal F` on such a clip
TARGET_TRACK_FPS = 4.0         # end to end, frames per second
TARGET_TRACK_ROT_DEG = 0.5     # rotation error per frame
TARGET_TRACK_CENTRE = 0.02     # centre error after Sim(3), fraction of the path length
TRACK_MOVERS = 3               # boxes crossing the view


def tracking_footage(cfg: Config, log=_log):
    """The clip: the glTF town of the shared data when PARASCALE_DATA has it, else the
    procedural block town (no data needed); rendered once, then cached. Returns
    (footage, which scene in words)."""
    import os
    from pathlib import Path

    from ..footage import SCENES, render_footage

    data = os.environ.get("PARASCALE_DATA")
    town = data and (Path(data) / SCENES["town"]).is_file()
    scene = "town" if town else "procedural"
    words = ("the glTF truck town (PARASCALE_DATA real_scenes)" if town
             else "the procedural block town (PARASCALE_DATA not set: no glTF scene)")
    W, H = cfg.track_size
    log(f"tracking: rendering (or reading from the cache) {cfg.track_frames} frames of {scene} at {W}x{H} ...")
    fp = render_footage(scene, frames=cfg.track_frames, width=W, height=H, fps=30.0, movers=TRACK_MOVERS,
                        data_dir=data if town else None)
    return fp, words


def bench_tracking(cfg: Config, res: Results) -> None:
    """`track_video` with the lens given (what `parascale track VIDEO --focal F` runs) on
    a rendered clip of a 3-D scene along a known path, three boxes crossing the view:
    every frame mapped at full resolution (the baseline: SIFT, matching and mapping on
    every frame) against the default (keyframes, the rest by PnP; SIFT at 640 px) and a
    faster setting, each with its errors against the true path."""
    import shutil
    import tempfile
    from pathlib import Path

    from ...core.metrics import track_errors
    from ...core.tracking import DEFAULT_LONG_SIDE, Intrinsics, TrackOptions, track_video, tracking_available

    ok, why = tracking_available()
    if not ok or cfg.quick:
        why = why if not ok else "--quick: the tracking section runs only in the full bench (COLMAP takes minutes)"
        res.notes.append(f"tracking section skipped: {why}")
        _log(f"tracking: skipped ({why})")
        return
    fp, scene = tracking_footage(cfg)
    n = len(fp)
    K = fp.K
    path_length = float(np.linalg.norm(np.diff(fp.c2w[:, :3, 3], axis=0), axis=1).sum())
    configs = (("baseline: every frame, full resolution", TrackOptions(keyframes="all", max_image_size=0)),
               (f"default: keyframes, SIFT at {DEFAULT_LONG_SIDE} px", TrackOptions()),
               ("fast: keyframes, SIFT at 480 px, 600 features followed",
                TrackOptions(max_image_size=480, track_points=600)))
    tmp = Path(tempfile.mkdtemp(prefix="parascale-bench-track-"))
    measured = {}
    try:
        for k, (label, options) in enumerate(configs):
            _log(f"tracking: {label} ({n} frames) ...")
            t0 = time.perf_counter()
            result = track_video(fp.video, tmp / f"out{k}", Intrinsics(K[0, 0], K[1, 1], "focal"), options,
                                 strict=False)
            sec = (time.perf_counter() - t0) / n
            err = track_errors(result.c2w, fp.c2w)
            measured[label] = (sec, err, result)
            _log(f"tracking: {label}: {1 / sec:.2f} fps, {result.registered}/{n} posed, rotation error up to "
                 f"{err['rot_max_deg']:.3f} deg, centres within {100 * err['centre_max_frac']:.3f}% of the path")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base_label = next(iter(measured))
    base = measured[base_label][0]
    rows = [row(label, sec, "frame", base_label, base, fps=1.0 / sec, rot_error_deg=err["rot_max_deg"],
                rot_median_deg=err["rot_median_deg"], centre_error=err["centre_max_frac"],
                registered=result.registered, keyframes=len(result.keyframes), stages_s=result.timings,
                warnings=result.warnings)
            for label, (sec, err, result) in measured.items()]
    res.sections["tracking"] = {
        "size": [fp.width, fp.height], "frames": n, "scene": scene, "movers": TRACK_MOVERS,
        "path_length": path_length,
        "rot_error": "largest per-frame rotation error (deg) after the best world rotation; centre error: "
                     "largest distance from the true centre after the best Sim(3), % of the path length",
        "rows": rows}
    sec, err, result = measured[configs[1][0]]
    everyone = result.registered == n
    res.targets.append({"name": f"video tracking at >= {TARGET_TRACK_FPS:g} fps end to end ({n} frames "
                                f"{fp.width}x{fp.height}, lens given): default",
                        "value_fps": 1.0 / sec, "limit_fps": TARGET_TRACK_FPS, "met": 1.0 / sec >= TARGET_TRACK_FPS,
                        "applies": True})
    res.targets.append({"name": "video tracking accuracy: every frame posed, rotation <= "
                                f"{TARGET_TRACK_ROT_DEG:g} deg per frame, centres within "
                                f"{100 * TARGET_TRACK_CENTRE:g}% of the path: default",
                        "text": f"{result.registered}/{n} posed, rotation up to {err['rot_max_deg']:.3f} deg, "
                                f"centres within {100 * err['centre_max_frac']:.3f}%",
                        "met": bool(everyone and err["rot_max_deg"] <= TARGET_TRACK_ROT_DEG
                                    and err["centre_max_frac"] <= TARGET_TRACK_CENTRE),
                        "applies": True})
