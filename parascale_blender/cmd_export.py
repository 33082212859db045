"""`parascale export`: write a camera's animation as a video generator's pose file.

The .blend is opened, never saved. The bridge script (parascale_bridge.py) is copied
next to what was written.
"""
from __future__ import annotations

from .cli import CommandError

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
    p.add_argument("--depth-size", default="96x54", help="GEN3C depth grid WxH (default 96x54)")
    p.add_argument("--scene", help="scene name (default: the file's active scene)")


def run(args) -> int:
    import os

    import bpy

    from .export import export_camera

    if not os.path.isfile(args.blend):
        raise CommandError(f"{args.blend}: no such .blend file")
    try:
        w, h = (int(x) for x in args.depth_size.lower().split("x"))
    except ValueError:
        raise CommandError(f"--depth-size {args.depth_size!r}: expected WxH, for example 96x54")
    bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.blend))
    scene = bpy.data.scenes.get(args.scene) if args.scene else bpy.context.scene
    if scene is None:
        raise CommandError(f"{args.blend}: no scene {args.scene!r}")
    obj = bpy.data.objects.get(args.camera)
    if obj is None:
        cams = sorted(o.name for o in bpy.data.objects if o.type == "CAMERA")
        raise CommandError(f"{args.blend}: no object {args.camera!r} (cameras: {', '.join(cams) or 'none'})")
    paths = export_camera(scene, obj, args.format, args.output, frames=args.frames,
                          frame_range=tuple(args.frame_range) if args.frame_range else None,
                          depth_size=(w, h))
    for p in paths:
        print(p)
    return 0
