"""`parascale track`: recover the camera track of a video with COLMAP (pycolmap).

    parascale track VIDEO [--focal PX [--focal-y PX] | --fov DEG | --sensor MM --lens MM] --out DIR
                    [--fps RATE] [--max-image-size PX] [--keyframes auto|all] [--mapper global|incremental]
                    [--keep-implausible]

VIDEO is a video file or a folder of frames. By default keyframes are chosen as the video
plays (by feature overlap, motion and parallax), mapped, and every other frame is posed
on the features followed into it; --keyframes all maps every frame (slower; short clips
and photo sets are mapped that way anyway). DIR receives images/ (the frames),
sparse/ (the COLMAP binary model: read it with --track DIR), frame_times.json (the video's
clock: frame i at i / rate, the rate the video file declares or --fps; a frame folder
without --fps has none and plays one frame per scene frame) and track_report.json.
Without a lens the focal is guessed (0.6 x the long side) and refined; give it when you
know it. An implausible track (unregistered frames, a jump, an outlier step, a focal that
fits no lens) is refused with the frames named; --keep-implausible writes it anyway with
the problems as warnings.

`measure` and `transfer` call `track_first` when they get --video without --track.
This module is bpy-free; `main(argv)` runs it alone (the Blender operator starts it in a
subprocess of Blender's own Python so that a crash in COLMAP cannot take Blender down).
"""
from __future__ import annotations

import argparse
import atexit
import json
import shutil
import sys
import tempfile
from pathlib import Path

from ..tracking_job import PROGRESS_PREFIX


def add_lens_arguments(parser, with_out: bool = False) -> None:
    """The lens options shared by track, measure and transfer (video without a track)."""
    g = parser.add_argument_group("lens (tracking a video; one of, optional)")
    g.add_argument("--focal", type=float, metavar="PX", help="focal length in pixels (held fixed)")
    g.add_argument("--focal-y", type=float, metavar="PX", help="vertical focal in pixels, for non-square pixels")
    g.add_argument("--fov", type=float, metavar="DEG", help="horizontal field of view in degrees")
    g.add_argument("--sensor", type=float, metavar="MM", help="sensor size along the long side, with --lens")
    g.add_argument("--lens", type=float, metavar="MM", help="focal length in millimetres, with --sensor")
    if with_out:
        g.add_argument("--track-out", metavar="DIR",
                       help="keep the recovered track (COLMAP model) here; default a temporary folder")


def check_lens_arguments(args) -> None:
    """The lens options in range, before any work (shared by track, measure, transfer)."""
    from . import checks as chk
    from .parser import CommandError

    chk.check_number("--focal", getattr(args, "focal", None), 1e-3, 1e6)
    chk.check_number("--focal-y", getattr(args, "focal_y", None), 1e-3, 1e6)
    chk.check_number("--fov", getattr(args, "fov", None), 1e-3, 179.0)
    chk.check_number("--sensor", getattr(args, "sensor", None), 1e-3, 1e4)
    chk.check_number("--lens", getattr(args, "lens", None), 1e-3, 1e5)
    if (getattr(args, "sensor", None) is None) != (getattr(args, "lens", None) is None):
        raise CommandError("--sensor and --lens go together (the focal in pixels is lens / sensor x width)")
    if getattr(args, "track_out", None) is not None:
        chk.check_output_folder("--track-out", args.track_out)


def add_arguments(parser) -> None:
    from ...core.tracking import DEFAULT_LONG_SIDE

    parser.add_argument("video", metavar="VIDEO", help="video file or folder of frames")
    add_lens_arguments(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (images/, sparse/, report)")
    parser.add_argument("--force", action="store_true",
                        help="replace --out whole even when ParaScale's manifest does not say it wrote what is there")
    parser.add_argument("--fps", metavar="RATE", default=None,
                        help="the video's frame rate, e.g. 24, 29.97 or 30000/1001 (default: the rate the video "
                             "file declares; a folder of frames is untimed without it)")
    parser.add_argument("--max-image-size", type=int, default=DEFAULT_LONG_SIDE, metavar="PX",
                        help=f"long side for SIFT features and feature following (default {DEFAULT_LONG_SIDE}; "
                             "0 = full resolution)")
    parser.add_argument("--keyframes", choices=("auto", "all"), default="auto",
                        help="auto (default): map keyframes, pose the frames between by PnP; all: map every frame")
    parser.add_argument("--mapper", choices=("global", "incremental"), default="global",
                        help="global mapping (default; incremental as a fallback) or incremental only")
    parser.add_argument("--keep-implausible", action="store_true",
                        help="write an implausible track anyway, with its problems as warnings")
    parser.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # machine-readable lines


def intrinsics_for(args, video):
    """Intrinsics from the lens options, at the video's frame size."""
    from ...core.tracking import Intrinsics, intrinsics_from_args

    if all(getattr(args, k, None) is None for k in ("focal", "focal_y", "fov", "sensor", "lens")):
        return Intrinsics()
    from ...core.reference import read_frames

    if Path(video).is_dir():
        frames, _ = read_frames(video)
        h, w = frames[0].shape[:2]
    else:
        w, h = _video_size(video)
    return intrinsics_from_args(w, h, args.focal, getattr(args, "focal_y", None), args.fov, args.sensor, args.lens)


def _video_size(video) -> tuple[int, int]:
    import cv2

    if not Path(video).is_file():
        raise FileNotFoundError(f"{video}: no such video file or image folder")
    cap = cv2.VideoCapture(str(video))
    try:
        ok, img = cap.read()
    finally:
        cap.release()
    if not ok:
        raise ValueError(f"{video}: OpenCV cannot decode a frame of this video")
    return img.shape[1], img.shape[0]


def _progress_printer(machine: bool):
    last = [-1]

    def progress(fraction: float, message: str) -> None:
        if machine:
            print(f"{PROGRESS_PREFIX} {fraction:.4f} {message}", flush=True)
            return
        pct = int(100 * fraction)
        if pct != last[0]:
            last[0] = pct
            print(f"[{pct:3d}%] {message}", flush=True)

    return progress


def track(video, out, args, progress=None):
    """Run the tracking with the command's options; returns the TrackingResult."""
    from ...core.tracking import TrackingUnavailable, TrackOptions, track_video
    from .parser import CommandError

    options = TrackOptions(max_image_size=getattr(args, "max_image_size", TrackOptions.max_image_size),
                           keyframes=getattr(args, "keyframes", "auto"), mapper=getattr(args, "mapper", "global"))
    try:
        return track_video(video, out, intrinsics_for(args, video), options, progress=progress,
                           strict=not getattr(args, "keep_implausible", False), fps=getattr(args, "fps", None),
                           force=getattr(args, "force", False))
    except TrackingUnavailable as exc:
        raise CommandError(str(exc)) from None


def print_report(result) -> None:
    by = result.checks.get("frames_by", "")
    kf = f"{len(result.keyframes)} keyframes mapped, the rest posed between them" if by == "keyframes" else by
    print(f"{result.registered}/{result.frames} frames registered ({kf}; {result.mapper} mapping, "
          f"intrinsics {result.intrinsics}: fx {result.K[0, 0]:.1f} px, fy {result.K[1, 1]:.1f} px), "
          f"mean reprojection error {result.reprojection_error:.3f} px, {result.points} points")
    t = result.timings
    print(f"time {t.get('total', 0):.1f} s ({result.frames / max(t.get('total', 1e-9), 1e-9):.1f} frames/s): "
          + ", ".join(f"{k} {v:.1f} s" for k, v in t.items() if k != "total"))
    clock = Path(result.out) / "frame_times.json"
    if clock.is_file():
        from ...core.formats.frame_times import read_frame_times

        ft = read_frame_times(clock)
        rate = f"{ft.fps:.6g} fps" if ft.fps else "no single rate"
        print(f"clock: {rate} ({ft.source}), {ft.times[-1] - ft.times[0]:.3f} s over {len(ft.names)} frames, "
              f"in {clock.name}")
    else:
        print("clock: none (a folder of frames without --fps): one frame per scene frame")
    for w in result.warnings:
        print(f"warning: {w}")


def check_rate(option: str, value) -> None:
    """A frame rate option: a positive number or fraction (24, 29.97, 30000/1001), at most 1000."""
    from ...core.clock import exact_rate
    from .parser import CommandError

    if value is None:
        return
    try:
        rate = exact_rate(value)
    except ValueError:
        rate = None
    if rate is None or not 0 < rate <= 1000:
        raise CommandError(f"{option} {value}: expected a frame rate in frames per second, e.g. 24, 29.97 "
                           "or 30000/1001 (at most 1000)")


def track_first(args) -> str:
    """measure / transfer with --video and no --track: track the video first and return
    the model folder (--track-out, or a temporary folder removed at exit)."""
    out = getattr(args, "track_out", None)
    if out is None:
        tmp = tempfile.mkdtemp(prefix="parascale-track-")
        atexit.register(shutil.rmtree, tmp, True)
        out = str(Path(tmp) / "track")
    print(f"no --track: recovering the camera track of {args.video} first")
    result = track(args.video, out, args, progress=_progress_printer(False))
    print_report(result)
    return out


def run(args) -> int:
    from . import checks as chk
    from .parser import CommandError

    check_lens_arguments(args)
    chk.check_input("VIDEO", args.video)
    chk.check_int("--max-image-size", args.max_image_size, 0, 1 << 16, "pixels on the long side (0 = full)")
    chk.check_output_folder("--out", args.out)
    check_rate("--fps", args.fps)
    chk.check_video("VIDEO", args.video)  # an image folder's headers: sizes OpenCV would refuse
    from ...core.formats.writers import check_replaceable_folder

    try:  # the folder must be an earlier output of ParaScale's (its manifest), or --force
        check_replaceable_folder(args.out, None, args.force)
    except ValueError as exc:
        raise CommandError(f"--out {exc}") from None
    result = track(args.video, args.out, args, progress=_progress_printer(args.progress))
    print_report(result)
    print(f"wrote {args.out} (COLMAP model in {Path(args.out) / 'sparse'}; "
          f"use it with --track {args.out})")
    if args.progress:
        print(f"{PROGRESS_PREFIX}-RESULT " + json.dumps({"out": str(args.out), "frames": result.frames,
                                                        "registered": result.registered,
                                                        "warnings": result.warnings}), flush=True)
    return 0


def main(argv=None) -> int:
    """`parascale track` on its own (the Blender operator's subprocess)."""
    from .parser import CommandError

    parser = argparse.ArgumentParser(prog="parascale track", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (CommandError, ValueError, OSError, ImportError) as exc:
        print(f"parascale track: error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
