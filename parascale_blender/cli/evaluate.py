"""`parascale evaluate`: render a calibrated camera and measure the Pi it realises by
optical flow, against the reference (closed loop, docs/metrics.md)."""
from __future__ import annotations

import json
import os

from .parser import CommandError


def add_arguments(p):
    p.add_argument("--blend", required=True, help=".blend holding the camera (opened, never saved)")
    p.add_argument("--camera", required=True, help="the animated camera to evaluate (e.g. 'Camera.ParaScale')")
    p.add_argument("--reference", help="reference track file; default: the camera's own pi_ref curve")
    p.add_argument("--video", help="the reference's video (file or image folder): Pi by optical flow")
    p.add_argument("--format", help="force the reference track format")
    p.add_argument("--render-size", type=int, default=384,
                   help="long side of the measurement renders (px; default 384, where flow stops being the limit)")
    p.add_argument("--samples", type=int, default=4, help="Cycles samples per measurement render")
    p.add_argument("--frames-dir", help="keep the measurement renders in this folder")
    p.add_argument("--json", required=True, help="where to write the report")


def check_args(args) -> None:
    """Every argument checked before any work (nothing opened, rendered or created)."""
    from . import checks as chk

    chk.check_blend("--blend", args.blend)
    chk.check_input("--reference", args.reference)
    chk.check_track_format("--format", args.format)
    chk.check_video("--video", args.video)
    chk.check_int("--render-size", args.render_size, 16, chk.MAX_RENDER_SIDE, "long side in pixels")
    chk.check_render_memory("--render-size", args.render_size)
    chk.check_int("--samples", args.samples, 1, chk.MAX_SAMPLES, "Cycles samples")
    chk.check_output_folder("--frames-dir", args.frames_dir)
    chk.check_output_file("--json", args.json)
    chk.check_distinct({"--blend": args.blend, "--reference": args.reference, "--json": args.json})


def run(args) -> int:
    check_args(args)
    import bpy
    from ...core.formats.writers import atomic_write_text, json_safe
    from .. import evaluate, pipeline
    from .transfer import find_camera, open_blend

    open_blend(bpy, args.blend)
    camera = find_camera(bpy, args.camera, args.blend)
    if camera.type != "CAMERA":
        raise CommandError(f"{args.blend}: {args.camera!r} is not a camera")
    # Evaluate in the scene the camera lives in (a file may hold several).
    scene = camera.users_scene[0] if camera.users_scene else bpy.context.scene
    if bpy.context.window is not None:
        bpy.context.window.scene = scene
    reference = None
    if args.reference:
        reference = pipeline.reference_from_track_file(args.reference, video=args.video, format=args.format,
                                                       estimator="flow")

    def progress(done, total):
        print(f"\rrendering: frame {done}/{total}", end="", flush=True)

    out = evaluate.evaluate_camera(scene, camera, reference, long_side=args.render_size,
                                   samples=args.samples, folder=args.frames_dir, progress=progress)
    print()
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    atomic_write_text(args.json, json.dumps(json_safe(out), indent=2, allow_nan=False) + "\n")
    for w in out["warnings"]:
        print(f"warning: {w}")
    for miss in out["misses"]:
        print(f"miss: step {miss['step']}: realised/reference {miss['ratio']:.2f}: {miss['reason']}")
    print(f"{camera.name}: PCE {out['pce']:.4f} (p90 {out['pce_p90']:.4f}), TransErr {out['trans_err']:.4f}, "
          f"RotErr {out['rot_err']:.3f} deg, measured by optical flow; report {args.json}")
    return 0
