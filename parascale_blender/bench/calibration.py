"""Bench section 2: a 240-frame transfer on the 1M-triangle terrain, default options
and ray-cast depth."""
from __future__ import annotations

import time

import numpy as np

from .depth import _tri_label
from .common import (Config, FPS, Results, TARGET_CALIBRATION_S, _log, add_camera, build_terrain_scene, reference_move, row)


# 2. calibration keyframes per second

def bench_calibration(cfg: Config, res: Results) -> None:
    import bpy

    from .. import animation
    from ..pipeline import ReferenceMotion, TransferOptions, transfer

    n = cfg.calib_frames
    tri = cfg.triangles[-1]
    t0 = time.perf_counter()
    scene, _, count = build_terrain_scene(tri)
    _log(f"calibration: scene of {count:,} triangles built in {time.perf_counter() - t0:.1f} s")
    c2w = reference_move(n)
    target = add_camera(scene, "Target", c2w[0])
    scene.frame_start, scene.frame_end = 1, n
    pi = np.full(n - 1, 0.0015)  # a steady move: 0.15% of the focal length per frame
    reference = ReferenceMotion(c2w, np.arange(n) / FPS, pi, "harmonic", "scene", "bench reference")

    def run(label, options):
        _log(f"calibration: {label}: {n} keyframes on {count:,} triangles ...")
        every = max(1, (n - 1) // 6)

        def progress(done, total):
            if done % every == 0 or done == total:
                _log(f"calibration: {label}: {done}/{total} steps, {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        result = transfer(scene, target, reference, options, progress=progress)
        seconds = time.perf_counter() - start
        keys = len(result.frames)
        pce = float(result.pce["mean"])
        scale = np.asarray(result.scale, float)
        animation.remove_object(result.camera)
        _log(f"calibration: {label}: {keys} keyframes in {seconds:.1f} s ({keys / seconds:.1f} keyframes/s)")
        return {"total_s": seconds, "keyframes": keys, "pce": pce, "scale": scale}

    measured = {
        "transfer, default options (Z pass)": run("default options (Z pass)", TransferOptions()),
        "transfer, ray cast depth": run("ray cast depth", TransferOptions(depth="raycast")),
    }
    default = measured["transfer, default options (Z pass)"]
    base = default["total_s"] / default["keyframes"]
    rows = []
    b = default["scale"]
    for label, m in measured.items():
        # the same calibration? median |ln(step length / default's step length)|
        a = m.pop("scale")
        ok = (a > 0) & (b > 0)
        m["step_diff"] = float(np.median(np.abs(np.log(a[ok] / b[ok])))) if ok.any() else float("nan")
        rows.append(row(f"{label} @ {_tri_label(count)}", m["total_s"] / m["keyframes"], "keyframe",
                        f"transfer, default options (Z pass) @ {_tri_label(count)}", base,
                        total_s=m["total_s"], keyframes=m["keyframes"], pce=m["pce"], step_diff=m["step_diff"]))
    res.sections["calibration"] = {"triangles": count, "keyframes": n, "target_s": TARGET_CALIBRATION_S,
                                   "step_diff": "median over steps of |ln(step length / the default "
                                                "transfer's step length)|: 0 = the same calibration",
                                   "runs": measured, "rows": rows}
    limit = TARGET_CALIBRATION_S * n / 240.0
    for label, m in measured.items():
        res.targets.append({"name": f"{n} calibrated keyframes on {_tri_label(count)} in under {limit:g} s: {label}",
                            "value_s": m["total_s"], "limit_s": limit, "met": m["total_s"] < limit,
                            "applies": (not cfg.quick) and label == "transfer, default options (Z pass)"})
    bpy.ops.wm.read_factory_settings(use_empty=True)
