"""Before/after on real scenes measured by optical flow on renders (the closed-loop path),
beside the geometry figures, for a few clips (renders are the expensive part).

    PARASCALE_DATA=../shared/data .venv/bin/python tests/real_scenes_flow.py [--clips a,b] [--size 384]

Flow sees the whole frame (a still background counts), so its figure is compared with the
geometry figure over the whole frame; the covered-pixel figure is the coverage rule's.
"""
import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_scene_setup import PULL_BACK, clip_reference, load_scene  # noqa: E402

CONFIGS = {"before (flow)": ("flow", None), "after (exact)": ("exact", 2.0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=PULL_BACK)
    ap.add_argument("--scenes", default="ship,town")
    ap.add_argument("--size", type=int, default=384)
    args = ap.parse_args()
    import bpy  # noqa: F401

    from parascale.core.calibrate import Calibrator
    from parascale.core.cameras import steps
    from parascale.core.metrics import pce
    from parascale.parascale_blender import animation, evaluate
    from parascale.parascale_blender.depth import depth_source
    from parascale.parascale_blender.safety import covered_flow_pi, realised_by_geometry

    data = Path(os.environ.get("PARASCALE_DATA", "../shared/data"))
    print("| scene | clip | config | PCE by flow (whole frame) | by flow (covered) | by geometry (whole frame) | "
          "by geometry (covered) |")
    print("|---|---|---|---|---|---|---|")
    for clip in args.clips.split(","):
        ref = clip_reference(data, clip)
        d, dR = steps(ref.c2w)
        for name in args.scenes.split(","):
            scene, cam = load_scene(bpy, data, name, 1.0)
            K, W, H = animation.camera_intrinsics(cam, scene)
            start = animation.evaluated_poses(cam, scene, [1])[0]
            frames = list(range(1, len(ref.c2w) + 1))
            for label, (method, bound) in CONFIGS.items():
                with depth_source("raycast", scene, 64, 36, clip_start=cam.data.clip_start) as src:
                    res = Calibrator(d, dR, ref.pi, start, lambda i, c2w: src.depth(c2w, K, W, H), method,
                                     gain_bound=bound, z_min=cam.data.clip_start).run()
                obj = bpy.data.objects.new(f"{name}.{method}", cam.data.copy())
                scene.collection.objects.link(obj)
                animation.write_camera_animation(obj, res.c2w, frames, obj.name + ".move")
                with tempfile.TemporaryDirectory() as folder:
                    flow = evaluate.realised_pi_by_flow(scene, obj, frames, folder, long_side=args.size)
                    track = flow.track
                    masked = covered_flow_pi(scene, folder, track, res.c2w, K, W, H)
                geo = realised_by_geometry(scene, res.c2w, K, W, H, grid=(80, 45))
                print(f"| {name} | {clip} | {label} | {pce(flow.pi, ref.pi)['mean']:.3f} | "
                      f"{pce(masked, ref.pi)['mean']:.3f} | {pce(geo['pi_frame'], ref.pi)['mean']:.3f} | "
                      f"{pce(geo['pi_covered'], ref.pi)['mean']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
