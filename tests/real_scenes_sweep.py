"""Before/after sweep: every CameraCtrl clip (Pi from its video) into the town and the
ship at two scales, realised Pi measured by geometry (ray-cast points reprojected into
the next keyed pose, on a grid the calibration never saw).

    PARASCALE_DATA=../shared/data .venv/bin/python tests/real_scenes_sweep.py [--json OUT] [--clips N]

before: the first-order `flow` estimator over the whole frame, no step bound (the old
        behaviour with --estimator flow, the best of the old options);
after:  the default for a video reference, `exact` over covered pixels, step bound x2.
Columns: realised PCE under the coverage rule (covered pixels) and over the whole
frame (background counted as still), and the least coverage along the move.
Not a test: it takes a few minutes; its figures are quoted in docs/real-scenes.md.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_scene_setup import CLIPS, clip_reference, load_scene  # noqa: E402

SCALES = (0.01, 100.0)
CONFIGS = {"before (flow)": ("flow", None), "after (exact)": ("exact", 2.0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--clips", type=int, default=len(CLIPS))
    ap.add_argument("--scenes", default="town,ship")
    ap.add_argument("--scales", default=",".join(str(v) for v in SCALES))
    args = ap.parse_args()
    import bpy  # noqa: F401

    from parascale.core.calibrate import Calibrator
    from parascale.core.cameras import steps
    from parascale.core.metrics import pce
    from parascale.parascale_blender import animation
    from parascale.parascale_blender.depth import depth_source
    from parascale.parascale_blender.safety import realised_by_geometry

    data = Path(os.environ.get("PARASCALE_DATA", "../shared/data"))
    refs = {clip: clip_reference(data, clip) for clip in CLIPS[:args.clips]}
    rows = []
    scales = [float(v) for v in args.scales.split(",")]
    for name in args.scenes.split(","):
        for scale in scales:
            scene, cam = load_scene(bpy, data, name, scale)
            K, W, H = animation.camera_intrinsics(cam, scene)
            start = animation.evaluated_poses(cam, scene, [1])[0]
            for clip, ref in refs.items():
                d, dR = steps(ref.c2w)
                for label, (method, bound) in CONFIGS.items():
                    with depth_source("raycast", scene, 64, 36, clip_start=cam.data.clip_start) as src:
                        res = Calibrator(d, dR, ref.pi, start, lambda i, c2w: src.depth(c2w, K, W, H), method,
                                         gain_bound=bound, z_min=cam.data.clip_start).run()
                    cov = realised_by_geometry(scene, res.c2w, K, W, H, grid=(80, 45))
                    row = {"scene": name, "scale": scale, "clip": clip, "config": label,
                           "pce_covered": pce(cov["pi_covered"], ref.pi)["mean"],
                           "pce_frame": pce(cov["pi_frame"], ref.pi)["mean"],
                           "min_coverage": float(cov["coverage"].min()),
                           "max_step_ratio": float(np.max(res.scale[1:] / np.maximum(res.scale[:-1], 1e-300))),
                           "warnings": [w.code for w in res.warnings]}
                    rows.append(row)
                    print(f"{name:4s} x{scale:<6g} {clip} {label:14s} PCE covered {row['pce_covered']:.3f} "
                          f"frame {row['pce_frame']:.3f} min coverage {row['min_coverage']:.3f} "
                          f"{','.join(row['warnings'])}", flush=True)
    print()
    print("| scene | scale | config | mean PCE (covered) | worst PCE (covered) | mean PCE (frame) | clips <= 0.10 | "
          "ship/town in frame |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.scenes.split(","):
        for scale in scales:
            for label in CONFIGS:
                sel = [r for r in rows if r["scene"] == name and r["scale"] == scale and r["config"] == label]
                c = [r["pce_covered"] for r in sel]
                f = [r["pce_frame"] for r in sel]
                print(f"| {name} | x{scale:g} | {label} | {np.mean(c):.3f} | {np.max(c):.3f} | {np.mean(f):.3f} | "
                      f"{sum(v <= 0.10 for v in c)}/{len(c)} | {sum(r['min_coverage'] > 0 for r in sel)}/{len(sel)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
