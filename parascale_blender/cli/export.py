"""`parascale export`: write a camera's animation as a video generator's pose file.

The .blend is opened, never saved. The bridge script (parascale_bridge.py) is copied
next to what was written.
"""
from __future__ import annotations


from .parser import CommandError

FORMATS = ("re10k", "motionctrl", "recammaster", "nerf", "colmap", "gen3c", "parascale")


def add_arguments(p):
    p.add_argument("--blend", required=True, help=".blend file holding the camera (not modified)")
    p.add_argument("--camera", required=True, help="camera object name")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="re10k (CameraCtrl, VideoX-Fun, AC3D, CamI2V), motionctrl, recammaster, nerf "
                        "(transforms.json), colmap (text model folder), gen3c (folder with depth), parascale")
    p.add_argument("--output", required=True, help="output file (folder for colmap and gen3c)")
    p.add_argument("--frames", type=int, help="resample to N evenly spaced frames (default: every frame; "
                                              "recammaster: 81)")
    p.add_argument("--frame-range", nargs=2, type=int, metavar=("START", "END"),
                   help="frames to export (default: the camera's keyed range)")
    p.add_argument("--size", help="WxH of the generated video: the camera's view is scaled to cover it and "
                                  "cropped at the centre (default: the scene's render size)")
    p.add_argument("--depth-size", help="GEN3C depth WxH (default: the exported image size, --size or the "
                                        "render size; one Z pass per frame at that size)")
    p.add_argument("--scene", help="scene name (default: the file's active scene)")
    p.add_argument("--generator", default="auto",
                   help="write translation in this generator's gauge (core.gauge.GAUGES: cameractrl, "
                        "wan-fun-camera, motionctrl, cami2v, ac3d, recammaster, gen3c, uni3c), or 'scene' for "
                        "scene units (default: the format's generator: re10k cameractrl, motionctrl motionctrl, "
                        "recammaster recammaster, gen3c gen3c; nerf, colmap and parascale keep scene units)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="explicit multiplier on top of the gauge (1 = the calibrated motion as is; 1e-6 to 1e6)")
    p.add_argument("--force", action="store_true",
                   help="replace the output even where ParaScale's manifest does not say it wrote what is there "
                        "(the user's files there are deleted); without it such an output is refused")


def check_args(args) -> tuple:
    """Every argument checked before any work (nothing is opened or created);
    returns the image size and the GEN3C depth size, (W, H) or None for the defaults."""
    from ...core.formats import writers
    from . import checks as chk

    chk.check_blend("--blend", args.blend)
    chk.check_int("--frames", args.frames, 2, chk.MAX_EXPORT_FRAMES, "evenly spaced frames to write")
    if args.frame_range:
        a, b = args.frame_range
        chk.check_frame("--frame-range START", a)
        chk.check_frame("--frame-range END", b)
        chk.check_frame_range("--frame-range", a, b)
    size = chk.parse_size("--size", args.size, 1, chk.MAX_RENDER_SIDE) if args.size else None
    depth_size = chk.parse_size("--depth-size", args.depth_size) if args.depth_size else None
    if args.format == "gen3c" and depth_size is None and size is not None and max(size) > chk.MAX_DEPTH_SIDE:
        raise CommandError(f"--size {args.size}: GEN3C's depth renders at the exported size, at most "
                           f"{chk.MAX_DEPTH_SIDE} per side; give --depth-size")
    from ...core.gauge import GAUGES, GaugeError, export_generator, speed_problem

    if args.generator not in ("auto", "scene") and args.generator not in GAUGES:
        raise CommandError(f"--generator {args.generator!r}: choose auto, scene or one of {', '.join(GAUGES)}")
    problem = speed_problem(args.speed)
    if problem:
        raise CommandError(f"--speed {args.speed:g}: {problem}")
    try:
        export_generator(args.format, args.generator, args.speed)
    except GaugeError as exc:
        raise CommandError(f"--speed {args.speed:g} with --generator {args.generator}: {exc}") from None
    from ..outputs import check_replaceable, output_path

    try:
        final = output_path(args.format, args.output)
    except ValueError as exc:
        raise CommandError(f"--output {exc}") from None
    if args.format in writers.FOLDER_FORMATS:
        chk.check_output_folder("--output", args.output)
    else:
        chk.check_output_file("--output", args.output)
        if str(final) != str(args.output):  # the name the format's extension gives it
            chk.check_output_file("--output", str(final))
    try:  # refused now, not after the scene is opened and the depth rendered
        check_replaceable(args.format, final, args.force)
    except ValueError as exc:
        raise CommandError(f"--output {exc}") from None
    grid = depth_size or size  # the GEN3C depth grid (the exported size without --depth-size)
    if args.format == "gen3c" and args.frames and grid:
        need = 2 * 4 * args.frames * grid[0] * grid[1]
        avail = writers.available_memory()
        if avail is not None and need > avail:
            raise CommandError(f"--frames {args.frames} with a {grid[0]}x{grid[1]} depth grid: the GEN3C depth "
                               f"maps need {need / 2 ** 30:.3g} GiB of memory; {avail / 2 ** 30:.3g} GiB is available")
    chk.check_distinct({"--blend": args.blend, "--output": args.output})
    return size, depth_size


def check_keyed_range(obj, args, scene=None) -> None:
    """--frame-range inside the camera's keyed frames (outside them every pose is the
    same: nothing moves)."""
    from ..animation import animated_frame_range

    keyed = animated_frame_range(obj, scene) if obj.type == "CAMERA" else None
    if args.frame_range and keyed is not None:
        a, b = args.frame_range
        if a < keyed[0] or b > keyed[1]:
            raise CommandError(f"--frame-range {a} {b}: outside the keyed frames {keyed[0]}..{keyed[1]} of "
                               f"{obj.name!r} in {args.blend}")


def run(args) -> int:
    import os

    size, depth_size = check_args(args)  # before Blender starts (importing bpy costs ~350 MB) and the .blend opens

    import bpy

    from ..export import export_with_gauge

    bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.blend))
    scene = bpy.data.scenes.get(args.scene) if args.scene else bpy.context.scene
    if scene is None:
        raise CommandError(f"{args.blend}: no scene {args.scene!r}")
    if bpy.context.window is not None and bpy.context.window.scene != scene:
        bpy.context.window.scene = scene  # the Z pass (gauge, GEN3C depth) renders the active scene only
    obj = bpy.data.objects.get(args.camera)
    if obj is None:
        cams = sorted(o.name for o in bpy.data.objects if o.type == "CAMERA")
        raise CommandError(f"{args.blend}: no object {args.camera!r} (cameras: {', '.join(cams) or 'none'})")
    check_keyed_range(obj, args, scene)
    import sys

    result = export_with_gauge(scene, obj, args.format, args.output, frames=args.frames,
                               frame_range=tuple(args.frame_range) if args.frame_range else None,
                               depth_size=depth_size, generator=args.generator, speed=args.speed, size=size,
                               force=args.force)
    for p in result.paths:
        print(p)
    g = result.gauge
    if g["generator"]:
        print(f"gauge {g['generator']}: scene depth scale {g['scene_depth_scale']:.6g} scene units at frame "
              f"{g['depth_frame']}, generator depth scale {g['generator_depth_scale']:.6g} "
              f"({g['generator_units']}), speed {g['speed']:g}: translation x {g['factor']:.6g}")
    for w_ in result.warnings:
        print(f"parascale export: warning: {w_}", file=sys.stderr)
    return 0
