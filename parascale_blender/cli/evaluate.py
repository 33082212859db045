"""`parascale evaluate`: render a calibrated camera and measure the Pi it realises by
optical flow over the pixels that see geometry where the flow is trusted, against the
reference (closed loop, docs/metrics.md); beside it the depth evaluation (ray cast) of the
same camera, and optionally a side-by-side preview video (--preview FILE.mp4)."""
from __future__ import annotations

import json
import os

from .parser import CommandError

PREVIEW_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv")


def add_arguments(p):
    p.add_argument("--blend", required=True, help=".blend holding the camera (opened, never saved)")
    p.add_argument("--camera", required=True, help="the animated camera to evaluate (e.g. 'Camera.ParaScale')")
    p.add_argument("--reference", help="reference track file; default: the camera's own pi_ref curve")
    p.add_argument("--video", help="the reference's video (file or image folder): Pi by optical flow")
    p.add_argument("--format", help="force the reference track format")
    p.add_argument("--render-size", type=int, default=384,
                   help="long side of the measurement renders (px; default 384, where flow stops being the limit)")
    p.add_argument("--samples", type=int, default=4, help="Cycles samples per measurement render (default 4)")
    p.add_argument("--no-denoise", action="store_true",
                   help="render without OpenImageDenoise (default: denoised, which the flow needs on noisy renders)")
    p.add_argument("--frames-dir", help="keep the measurement renders in this folder")
    p.add_argument("--preview", metavar="FILE.mp4",
                   help="write the reference video and the renders side by side on one clock, with the per-step "
                        "Pi of both and the share of pixels trusted drawn under them")
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
    if args.preview is not None:
        if not args.preview.lower().endswith(PREVIEW_EXTENSIONS):
            raise CommandError(f"--preview {args.preview}: expected a video file name ending in "
                               f"{', '.join(PREVIEW_EXTENSIONS)}")
        chk.check_output_file("--preview", args.preview)
    chk.check_distinct({"--blend": args.blend, "--reference": args.reference, "--json": args.json,
                        "--preview": args.preview, "--video": args.video})


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
        reference = pipeline.reference_from_track_file(args.reference, video=args.video, format=args.format)

    def progress(done, total):
        print(f"\rrendering: frame {done}/{total}", end="", flush=True)

    out = evaluate.evaluate_camera(scene, camera, reference, long_side=args.render_size, samples=args.samples,
                                   denoise=not args.no_denoise, folder=args.frames_dir, preview=args.preview,
                                   progress=progress)
    print()
    depth = None
    if camera.get("parascale_result"):  # a ParaScale result: its depth figure beside the render's
        depth = pipeline.evaluate_depth(scene, camera, reference)
        out["depth"] = depth
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    atomic_write_text(args.json, json.dumps(json_safe(out), indent=2, allow_nan=False) + "\n")
    for line in report_lines(out, depth):
        print(line)
    print(f"report {args.json}" + (f", preview {out['preview']['path']}" if out.get("preview") else ""))
    return 0


def report_lines(out: dict, depth=None) -> list:
    """What `parascale evaluate` prints: warnings, advice, misses, then the figures (depth
    first when there is one, the render's beside it, the whole-frame one labelled apart)."""
    import math

    lines = [f"warning: {w}" for w in out["warnings"]]
    if out.get("advice"):
        lines.append(f"estimators: {out['advice']}")
    for miss in out["misses"]:
        lines.append(f"miss: step {miss['step']}: realised/reference {miss['ratio']:.2f}: {miss['reason']}")
    if out.get("unmeasured_steps") and out["measurable"]:
        steps = out["unmeasured_steps"]
        lines.append(f"not measured by optical flow: step(s) {', '.join(map(str, steps[:10]))}"
                     f"{' ...' if len(steps) > 10 else ''} (too few pixels trusted); scored on the other steps")
    name = out["camera"]
    if depth is not None:
        figure = (f"PCE {depth['pce']:.4f} (p90 {depth['pce_p90']:.4f})" if math.isfinite(depth["pce"]) else
                  "no step to score")
        lines.append(f"{name}: by depth:  {figure}; {depth['summary']}")
    if out["measurable"]:
        errors = (f", TransErr {out['trans_err']:.4f}, RotErr {out['rot_err']:.3f} deg" if out.get("against_reference")
                  else "")
        lines.append(f"{name}: by render: PCE {out['pce']:.4f} (p90 {out['pce_p90']:.4f}){errors}; {out['summary']}")
    else:
        lines.append(f"{name}: by render: {out['not_measurable']}")
    whole = out["whole_frame"]
    if whole["pce"] is not None:
        lines.append(f"  (secondary) whole frame by flow, background and untrusted pixels counted: PCE "
                     f"{whole['pce']:.4f}; not the rule the calibration counts")
    return lines
