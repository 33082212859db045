"""Bench section 1: depth per keyframe (Z pass rebuilt per frame vs reused vs ray cast)
on procedural terrains of 10k, 100k and 1M triangles."""
from __future__ import annotations

import time

import numpy as np

from .common import (Config, DEPTH_SIZE, Results, _log, add_camera, build_terrain_scene, reference_move, row)


# 1. depth per keyframe

def _time_depth(make_source, poses, K, W, H) -> dict:
    """Seconds per depth call over all poses (the source already set up), and the
    first call alone (it builds what later calls reuse)."""
    with make_source() as src:
        times = []
        finite = 0.0
        for c2w in poses:
            t0 = time.perf_counter()
            view = src.depth(c2w, K, W, H)
            times.append(time.perf_counter() - t0)
            finite += float(np.isfinite(view.depth).mean())
    times = np.array(times)
    return {"per_keyframe_s": float(times.mean()), "first_s": float(times[0]),
            "steady_s": float(np.median(times[1:])) if len(times) > 1 else float(times[0]),
            "coverage": finite / len(poses)}


def bench_depth(cfg: Config, res: Results) -> None:
    from ..animation import camera_intrinsics
    from ..depth import RayCastDepth, ZPassDepth

    section = {"depth_size": list(DEPTH_SIZE), "keyframes": cfg.depth_frames, "scenes": [], "rows": [],
               "figure": "per keyframe = median of calls 2..n (steady state); first_s = the first call, "
                         "which builds what later calls reuse (BVH, compositor)"}
    moves = reference_move(cfg.calib_frames)
    poses = moves[np.linspace(0, len(moves) - 1, cfg.depth_frames).round().astype(int)]
    methods = [
        ("Z pass rebuilt per frame", lambda s: ZPassDepth(s, *DEPTH_SIZE, reuse=False)),
        ("Z pass with reuse", lambda s: ZPassDepth(s, *DEPTH_SIZE, reuse=True)),
        ("ray cast", lambda s: RayCastDepth(s, *DEPTH_SIZE)),
    ]
    for tri in cfg.triangles:
        t0 = time.perf_counter()
        scene, _, count = build_terrain_scene(tri)
        cam = add_camera(scene, "Camera", poses[0])
        K, W, H = camera_intrinsics(cam, scene)
        _log(f"depth: scene of {count:,} triangles built in {time.perf_counter() - t0:.1f} s")
        entry = {"triangles": count, "methods": {}}
        for label, make in methods:
            _log(f"depth: {count:,} triangles, {label}: {cfg.depth_frames} keyframes ...")
            m = _time_depth(lambda: make(scene), poses, K, W, H)
            entry["methods"][label] = m
            _log(f"depth: {count:,} triangles, {label}: {m['steady_s'] * 1e3:.1f} ms per keyframe "
                 f"(first {m['first_s'] * 1e3:.0f} ms, mean {m['per_keyframe_s'] * 1e3:.1f} ms)")
        base = entry["methods"]["Z pass rebuilt per frame"]["steady_s"]
        for label, m in entry["methods"].items():
            section["rows"].append(row(f"{label} @ {_tri_label(count)}", m["steady_s"], "keyframe",
                                       f"Z pass rebuilt per frame @ {_tri_label(count)}", base,
                                       triangles=count, first_s=m["first_s"], mean_s=m["per_keyframe_s"]))
        section["scenes"].append(entry)
    res.sections["depth"] = section


def _tri_label(n: int) -> str:
    if n >= 950_000:
        return f"{n / 1e6:.1f}M tris"
    return f"{n / 1e3:.0f}k tris"
