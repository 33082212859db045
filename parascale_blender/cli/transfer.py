"""`parascale transfer`: calibrate a reference move into a target .blend scene.

The target .blend is opened, never saved: the result goes to --output (a copy
of the scene plus the new "<camera>.ParaScale" camera, or --result-name) and --report (JSON).
"""
from __future__ import annotations

import json
import os

from .parser import CommandError


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
    p.add_argument("--estimator", choices=["harmonic", "mean", "flow", "exact"],
                   help="how Pi is read on the target; default: the one matching the reference "
                        "(exact with --video, else harmonic)")
    p.add_argument("--method", choices=["raw", "global", "harmonic", "mean", "flow", "exact"],
                   help="calibration method; default: the estimator (raw and global are baselines; "
                        "global sets its one scale with the estimator)")
    p.add_argument("--stop-short", action="store_true",
                   help="shorten any step that would pass through geometry (stop before the surface)")
    p.add_argument("--realised-grid", default="64x36",
                   help="ray-cast grid WxH for the independent realised Pi of the result, or 'none' "
                        "(default 64x36)")
    p.add_argument("--depth", default="zpass", choices=["zpass", "raycast"])
    p.add_argument("--depth-size", default="96x54", help="depth grid WxH (default 96x54)")
    p.add_argument("--start-frame", type=int, help="first frame (default: the scene's start)")
    p.add_argument("--end-frame", type=int, help="last frame (default: as long as the reference lasts)")
    p.add_argument("--follow-zoom", action="store_true", help="the lens follows the reference's zoom")
    p.add_argument("--result-name", help="name of the new camera (default '<camera>.ParaScale'); an earlier "
                                         "ParaScale result of that name is updated in place")
    p.add_argument("--output", required=True, help="where to save the scene with the new camera (.blend)")
    p.add_argument("--report", required=True, help="where to write the JSON report (it records the .blend's size "
                                                   "and SHA-256: the pair's commit record)")
    p.add_argument("--force", action="store_true",
                   help="replace --output and --report even when no report of ParaScale's records the .blend there "
                        "as it is (without it such outputs are refused)")
    from .track import add_lens_arguments  # --video alone: track it first (parascale track)
    add_lens_arguments(p, with_out=True)


def parse_size(text: str) -> tuple[int, int]:
    from .checks import parse_size as checked_size

    return checked_size("--depth-size", text)


def check_args(args) -> None:
    """Every argument checked before any work: inputs exist and are what they claim,
    numbers in range, outputs writable and distinct (nothing is created)."""
    from . import checks as chk

    chk.check_input("--track", args.track)
    chk.check_track_format("--format", args.format)
    chk.check_video("--video", args.video)
    chk.check_blend("--source-blend", args.source_blend)
    chk.check_blend("--target", args.target)
    chk.check_frame("--start-frame", args.start_frame)
    chk.check_frame("--end-frame", args.end_frame)
    chk.check_frame_range("--start-frame/--end-frame", args.start_frame, args.end_frame)
    if args.result_name is not None and not (args.result_name.strip() and len(args.result_name) <= 63):
        raise CommandError(f"--result-name {args.result_name!r}: a camera name of 1 to 63 characters")
    from .track import check_lens_arguments
    check_lens_arguments(args)
    if args.realised_grid.lower() != "none":
        chk.parse_size("--realised-grid", args.realised_grid)
    if not args.output.lower().endswith(".blend"):
        raise CommandError(f"--output {args.output}: expected a .blend file name")
    chk.check_output_file("--output", args.output)
    chk.check_output_file("--report", args.report)
    chk.check_distinct({"--target": args.target, "--source-blend": args.source_blend,
                        "--track": args.track, "--output": args.output, "--report": args.report})
    from ...core.formats.writers import check_replaceable_pair

    try:  # the .blend there must be one a report of ParaScale's records (or --force)
        check_replaceable_pair(args.output, args.report, args.force)
    except ValueError as exc:
        raise CommandError(f"--output {exc}") from None


def check_scene_range(scene, args) -> None:
    """--start-frame/--end-frame inside the target scene's frames (checked once the
    scene is open, before any work)."""
    lo, hi = scene.frame_start, scene.frame_end
    for option, value in (("--start-frame", args.start_frame), ("--end-frame", args.end_frame)):
        if value is not None and not lo <= value <= hi:
            raise CommandError(f"{option} {value}: outside the scene's frames {lo}..{hi} in {args.target}; "
                               f"choose a frame in {lo}..{hi} or change the scene's frame range")


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
    video_alone = bool(args.video and not args.track and not args.source_blend)
    if not video_alone and bool(args.track) == bool(args.source_blend):
        raise CommandError("give the reference as --track PATH, --video FILE alone (tracked first), or "
                           "--source-blend PATH [--source-camera NAME]")
    check_args(args)
    depth_size = parse_size(args.depth_size)
    realised_grid = None if args.realised_grid.lower() == "none" else parse_size(args.realised_grid)
    if args.video and args.estimator in ("harmonic", "mean"):
        raise CommandError(f"--estimator {args.estimator} reads depth, but with --video the reference Pi is "
                           "image motion measured from the video; use --estimator exact (the default with "
                           "--video) or flow, or drop --video to read Pi from the track's points or depth")

    import bpy
    from .. import pipeline

    # The target's cameras and frame range are checked before the reference is measured.
    open_blend(bpy, args.target)
    find_camera(bpy, args.camera, args.target)
    check_scene_range(bpy.context.scene, args)
    if video_alone:  # every argument and the target checked: now recover the track (parascale track)
        from .track import track_first
        args.track = track_first(args)

    from ...core.parallax import default_estimator_for, estimator_advice

    if args.track:
        reference = pipeline.reference_from_track_file(
            args.track, video=args.video, format=args.format,
            estimator=args.estimator or default_estimator_for("video" if args.video else "points"))
    else:
        open_blend(bpy, args.source_blend)
        source = find_camera(bpy, args.source_camera, args.source_blend)
        reference = pipeline.reference_from_object(source, bpy.context.scene,
                                                   estimator=args.estimator or default_estimator_for("scene"),
                                                   depth=args.depth, depth_size=depth_size)
    estimator = args.estimator or default_estimator_for(reference.source)
    method = args.method or estimator
    read = "image motion by optical flow" if reference.source == "video" else reference.estimator
    print(f"reference: {reference.label} ({len(reference.c2w)} frames, Pi from {reference.source}, {read})")

    open_blend(bpy, args.target)
    scene = bpy.context.scene
    target = find_camera(bpy, args.camera, args.target)
    options = pipeline.TransferOptions(method=method, depth=args.depth, frame_start=args.start_frame,
                                       frame_end=args.end_frame, depth_size=depth_size,
                                       follow_zoom=args.follow_zoom, estimator=estimator,
                                       stop_short=args.stop_short, realised_grid=realised_grid,
                                       result_name=args.result_name)
    print(f"method {method}, estimator {estimator}")
    print(f"estimators: {estimator_advice(reference.source)}")

    def progress(done, total):
        print(f"\rcalibrating: step {done}/{total}", end="", flush=True)

    job = pipeline.Transfer(scene, target, reference, options)
    for w in job.warnings:  # said before the work, not after
        print(f"warning: {w.message}")
    result = job.run(progress=progress)
    print()
    report = result.report()
    save_outputs(bpy, args.output, args.report, report, force=args.force)
    for w in result.warnings[len(job.warnings):]:
        print(f"warning: {w.message}")
    print(f"{report['camera']}: frames {report['frames'][0]}..{report['frames'][-1]}, method {report['method']}, "
          f"estimator {report['estimator']}")
    print(f"  calibration residual (the target's Pi on the calibration's own depth; ~0 by construction for "
          f"per-frame methods, not a quality figure): PCE {report['pce']:.4g}")
    if result.realised is not None:
        r = result.realised
        print(f"  realised PCE {r['pce']:.4f} (p90 {r['pce_p90']:.4f}), measured independently by {r['measured_by']}; "
              f"geometry covers {100 * min(r['coverage']):.1f}% of the view at least")
    print(f"saved {args.output}, report {args.report}")
    return 0


def save_outputs(bpy, output, report_path, report: dict, force: bool = False) -> None:
    """The .blend and its report as one set (core.formats.writers.AtomicSet): both written
    beside, then moved in, the report last. The report is the commit record: it holds the
    .blend's name, size and SHA-256 ("output"), so it always describes the .blend beside
    it, or a journal says the commit was cut short (the next run finishes it)."""
    from ...core.formats.writers import AtomicSet, check_replaceable_pair, json_safe
    from ..quiet import quiet_stdout

    for path in (output, report_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    check_replaceable_pair(output, report_path, force)  # again, just before writing
    with AtomicSet([output, report_path]) as out:
        with quiet_stdout():  # Blender's "Saved copy as <temporary name>"
            bpy.ops.wm.save_as_mainfile(filepath=str(out.tmp(output)), copy=True)
        record = out.entry(output)
        report = {**report, "output": {**record.as_dict(), "path": os.path.abspath(output)}}
        with open(out.tmp(report_path), "w", encoding="utf-8") as fh:
            fh.write(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")  # NaN: null
            fh.flush()
            os.fsync(fh.fileno())
        out.commit()
