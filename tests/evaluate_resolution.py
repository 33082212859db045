"""Where does the flow measurement of `evaluate` stop being the limit? One calibrated
camera (town looking down: every pixel sees geometry, so flow and geometry count the same
pixels; a CameraCtrl clip; exact), rendered at several long sides and measured by
optical flow, against the same keyed poses measured by geometry (ray-cast points
reprojected, whole frame: the pixels flow sees).

    PARASCALE_DATA=../shared/data .venv/bin/python tests/evaluate_resolution.py [--clips a,b]

Prints, per long side, mean |ln(flow / geometry)| per step (the measurement's own error)
and the PCE each path gives against the reference. Not a test: renders take minutes.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_scene_setup import PULL_BACK, clip_reference, load_scene  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", default=f"{PULL_BACK},0c11dbe781b1c11c")
    ap.add_argument("--sizes", default="192,256,384,512")
    ap.add_argument("--scene", default="town_down")
    args = ap.parse_args()
    import bpy  # noqa: F401

    from parascale.core.metrics import pce
    from parascale.parascale_blender import animation, evaluate, pipeline
    from parascale.parascale_blender.safety import realised_by_geometry

    data = Path(os.environ.get("PARASCALE_DATA", "../shared/data"))
    for clip in args.clips.split(","):
        ref = clip_reference(data, clip)
        scene, cam = load_scene(bpy, data, args.scene, 1.0)
        result = pipeline.transfer(scene, cam, ref, pipeline.TransferOptions(depth="raycast", depth_size=(64, 36),
                                                                            safety=False))
        c2w = animation.evaluated_poses(result.camera, scene, result.frames)
        K, W, H = animation.camera_intrinsics(cam, scene)
        geo = realised_by_geometry(scene, c2w, K, W, H, grid=(160, 90))
        print(f"{clip}: geometry (160x90) PCE covered {pce(geo['pi_covered'], ref.pi)['mean']:.3f}, "
              f"whole frame {pce(geo['pi_frame'], ref.pi)['mean']:.3f}", flush=True)
        for size in [int(s) for s in args.sizes.split(",")]:
            t0 = time.time()
            flow = evaluate.realised_pi_by_flow(scene, result.camera, result.frames, long_side=size)
            err = pce(flow.pi, geo["pi_covered"])["mean"]  # the flow counts the covered pixels, trusted
            print(f"  {size:4d} px: flow vs geometry mean |ln| {err:.3f}; PCE by flow {pce(flow.pi, ref.pi)['mean']:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
