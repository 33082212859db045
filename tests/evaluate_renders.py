"""What helps the flow of `evaluate` on renders: samples and OpenImageDenoise, measured.

One calibrated camera per scene (exact, ray-cast depth), rendered under each render
setting (frames interleaved across settings, so the machine's load falls on all alike),
its realised Pi read by trusted flow (core.flow_trust) and compared with the same keyed
poses measured by geometry (ray cast, covered pixels).

    PARASCALE_DATA=../shared/data .venv-5.2/bin/python tests/evaluate_renders.py [--scenes ship,town,room]
        [--keep DIR]   (keep the renders and their times there; a second run re-reads them)

Prints a table: render time relative to 4 samples without denoising (same run), the share of
covered pixels trusted, whether the run is measurable, and mean |ln(flow / geometry)| per
step over the trusted pixels and over every covered pixel. Not a test: renders take minutes.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CONFIGS = [(4, False), (16, False), (4, True), (16, True), (1, True)]
CLIPS = {"ship": "0f47577ab3441480", "town": "0f47577ab3441480", "room": "0c11dbe781b1c11c"}


def build(bpy, data, name):
    from asset_scenes import room_scene
    from real_scene_setup import clip_reference, load_scene

    if name == "room":
        scene, cam = room_scene(bpy)
    else:
        scene, cam = load_scene(bpy, data, name, 1.0)
        scene.render.fps, scene.render.fps_base = 15, 4.0
    ref = clip_reference(data, CLIPS[name])
    fps = scene.render.fps / scene.render.fps_base
    from dataclasses import replace
    return scene, cam, replace(ref, times=np.arange(len(ref.c2w)) / fps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", default="ship,town,room")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--keep", help="keep the renders (and their render times) in this folder and reuse them")
    args = ap.parse_args()
    import bpy  # noqa: F401

    from dataclasses import replace

    from parascale.core.flow_trust import DEFAULT_TRUST, measure_steps, summary
    from parascale.core.metrics import pce
    from parascale.core.parallax import scale_intrinsics
    from parascale.parascale_blender import animation, evaluate, pipeline
    from parascale.parascale_blender.safety import realised_by_geometry

    data = Path(os.environ.get("PARASCALE_DATA", "../shared/data"))
    print("| scene | samples | denoise | render time (x 4 samples) | covered pixels trusted | measurable | "
          "flow vs geometry (the figure: every covered pixel) | trusted pixels alone |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.scenes.split(","):
        scene, cam, ref = build(bpy, data, name)
        opts = pipeline.TransferOptions(depth="raycast", depth_size=(64, 36), safety=False,
                                        frame_end=scene.frame_start + args.frames - 1)
        result = pipeline.transfer(scene, cam, ref, opts)
        frames = result.frames
        c2w = animation.evaluated_poses(result.camera, scene, frames)
        K, W, H = animation.camera_intrinsics(cam, scene)
        geo = realised_by_geometry(scene, c2w, K, W, H, grid=(96, 54))["pi_covered"]
        folders = [None] * len(CONFIGS)
        if args.keep:
            folders = [Path(args.keep) / f"{name}_{s}_{'oidn' if d else 'off'}" for s, d in CONFIGS]
        runs = [evaluate.FlowMeasurement(scene, result.camera, frames, folder, samples=s, denoise=d)
                for (s, d), folder in zip(CONFIGS, folders)]
        spent = [0.0] * len(runs)
        kept = all(f is not None and (f / "seconds.json").is_file() for f in folders)
        try:
            if kept:
                spent = [json.loads((f / "seconds.json").read_text()) for f in folders]
            for _ in ([] if kept else frames):
                for i, run in enumerate(runs):
                    t0 = time.perf_counter()
                    run.step()
                    spent[i] += time.perf_counter() - t0
            if args.keep and not kept:
                for f, sec in zip(folders, spent):
                    (f / "seconds.json").write_text(json.dumps(sec))
            for i, ((s, d), run) in enumerate(zip(CONFIGS, runs)):
                grey, covered = [], []
                for j in range(len(frames)):
                    g, c, _ = evaluate.load_render(run.path(j))
                    grey.append(g)
                    covered.append(c)
                track = run.track()
                h, w = grey[0].shape
                Kf = np.stack([scale_intrinsics(k, track.width, track.height, w, h) for k in track.K])
                # every step read (min_trusted 0) for the error columns; measurable by the default rule
                readings = measure_steps(grey, Kf, track.rotations, covered, replace(DEFAULT_TRUST, min_trusted=0.0))
                info = summary(readings)
                info["measurable"] = sum(r.trusted >= DEFAULT_TRUST.min_trusted for r in readings) * 2 >= len(readings)
                trusted = pce([r.pi_trusted for r in readings], geo)
                every = pce([r.pi_covered for r in readings], geo)
                print(f"| {name} | {s} | {'OIDN fast' if d else 'off'} | {spent[i] / spent[0]:.2f} "
                      f"({spent[i] / len(frames):.1f} s/frame) | {100 * info['trusted']:.0f}% | "
                      f"{'yes' if info['measurable'] else 'no'} | "
                      f"{every['mean']:.3f} | {trusted['mean']:.3f} |", flush=True)
        finally:
            for run in runs:
                run._renderer.close()
                if run._tmpdir is not None:
                    run._tmpdir.cleanup()
        print(f"| {name} | geometry vs reference | | | | | {pce(geo, result.pi_ref)['mean']:.3f} | |", flush=True)


if __name__ == "__main__":
    main()
