"""`parascale transfer`: calibrate a reference move into a target .blend scene.

The target .blend is opened, never saved: the result goes to --output (a copy
of the scene plus the new "<camera>.ParaScale" camera) and --report (JSON).
"""
from __future__ import annotations

import json
import os

from .cli import CommandError


def add_arguments(p):
    ref = p.add_argument_group("reference (one of)")
    ref.add_argument("--track", help="reference camera track (COLMAP, transforms.json, RealEstate10K txt, "
                                     "LLFF poses_bounds.npy, MegaSaM npz)")
    ref.add_argument("--video", help="the reference video (file or image folder) to measure Pi from")
    ref.add_argument("--format", help="force the track format instead of detecting it")
    ref.add_argument("--source-blend", help="a .blend holding the reference camera animation")
    ref.add_argument("--source-camera", help="camera object in --source-blend (default: its scene camera)")
    p.add_argument("--target", required=True, help="target scene .blend (not modified)")
    p.add_argument("--camera", help="target camera object (default: the scene camera)")
    p.add_argument("--estimator", default="harmonic", choices=["harmonic", "mean", "flow"])
    p.add_argument("--method", choices=["raw", "global", "harmonic", "mean", "flow"],
                   help="calibration method; default: the estimator (raw and global are baselines)")
    p.add_argument("--depth", default="zpass", choices=["zpass", "raycast"])
    p.add_argument("--depth-size", default="96x54", help="depth grid WxH (default 96x54)")
    p.add_argument("--start-frame", type=int, help="first frame (default: the scene's start)")
    p.add_argument("--end-frame", type=int, help="last frame (default: as long as the reference lasts)")
    p.add_argument("--follow-zoom", action="store_true", help="the lens follows the reference's zoom")
    p.add_argument("--output", required=True, help="where to save the scene with the new camera (.blend)")
    p.add_argument("--report", required=True, help="where to write the JSON report")
    from .cmd_track import add_lens_arguments  # --video alone: track it first (parascale track)
    add_lens_arguments(p, with_out=True)


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise CommandError(f"--depth-size {text!r}: expected WIDTHxHEIGHT, for example 96x54") from None
    if w < 2 or h < 2:
        raise CommandError(f"--depth-size {text!r}: both sides must be at least 2")
    return w, h


def find_camera(bpy, name, blend):
    scene = bpy.context.scene
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None:
            cams = ", ".join(o.name for o in bpy.data.objects if o.type == "CAMERA") or "none"
            raise CommandError(f"{blend}: no object named {name!r} (cameras: {cams})")
        return obj
    if scene.camera is None:
        raise CommandError(f"{blend}: the scene has no active camera; name one with --camera")
    return scene.camera


def open_blend(bpy, path):
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such .blend file")
    bpy.ops.wm.open_mainfile(filepath=os.path.abspath(path), load_ui=False)


def run(args) -> int:
    if args.video and not args.track and not args.source_blend:
        from .cmd_track import track_first
        args.track = track_first(args)
    if bool(args.track) == bool(args.source_blend):
        raise CommandError("give the reference as --track PATH, or as --source-blend PATH [--source-camera NAME]")
    for path in (args.output, args.report):
        if os.path.abspath(path) == os.path.abspath(args.target):
            raise CommandError(f"{path}: would overwrite the target scene; choose another output")
    depth_size = parse_size(args.depth_size)

    import bpy
    from . import pipeline
    from ..core.writers import atomic_write_text

    method = args.method or args.estimator
    if args.track:
        reference = pipeline.reference_from_track_file(args.track, video=args.video, format=args.format,
                                                       estimator=args.estimator)
    else:
        open_blend(bpy, args.source_blend)
        source = find_camera(bpy, args.source_camera, args.source_blend)
        reference = pipeline.reference_from_object(source, bpy.context.scene, estimator=args.estimator,
                                                   depth=args.depth, depth_size=depth_size)
    print(f"reference: {reference.label} ({len(reference.c2w)} frames, Pi from {reference.source}, "
          f"{reference.estimator})")

    open_blend(bpy, args.target)
    scene = bpy.context.scene
    target = find_camera(bpy, args.camera, args.target)
    options = pipeline.TransferOptions(method=method, depth=args.depth, frame_start=args.start_frame,
                                       frame_end=args.end_frame, depth_size=depth_size,
                                       follow_zoom=args.follow_zoom)

    def progress(done, total):
        print(f"\rcalibrating: step {done}/{total}", end="", flush=True)

    result = pipeline.transfer(scene, target, reference, options, progress=progress)
    print()
    report = result.report()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.abspath(args.output), copy=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.report)), exist_ok=True)
    atomic_write_text(args.report, json.dumps(report, indent=2) + "\n")
    for w in result.warnings:
        print(f"warning: {w.message}")
    print(f"{report['camera']}: frames {report['frames'][0]}..{report['frames'][-1]}, method {report['method']}, "
          f"PCE {report['pce']:.4g}; saved {args.output}, report {args.report}")
    return 0
