"""`parascale measure`: read a reference track and measure its Parallax Number per step.

    parascale measure --track PATH [--video FILE|DIR] [--format F]
                      [--estimator harmonic|mean|flow] --json OUT

Writes {"source": "points"|"depth"|"video"|"scene", "estimator": ..., "timed": true|false,
"fps": ..., "steps": [{"frame": t, "pi": ..., "translation": ..., "time": ...}, ...]}: one
entry per step, frame t is the 0-based position in the track's frame order and the step
runs t-1 -> t. A timed track (timestamps, or a tracked video's frame_times.json) gives
"time", seconds from the first frame to frame t, and "fps", its frame rate (null when
untimed or when its times follow no one rate).
With --video, Pi is read from the video's optical flow checked against the track
(estimator flow), and each step also gives the shares of the frame "kept" (static
geometry measured), "filled" (movers, occlusions: counted with the motion of the geometry
around them), "rejected" and "infinity" (sky: not counted); otherwise Pi comes from the
track's points, or its depth maps.
"""
from __future__ import annotations

import json
from pathlib import Path

from ...core.formats.writers import atomic_write_text


def add_arguments(parser) -> None:
    from ...core.parallax import ESTIMATORS
    from ...core.formats.readers import FORMATS
    from ...core.reference import DIS_PRESETS

    parser.add_argument("--track", help="track file or folder (COLMAP model, transforms.json, "
                        "RealEstate10K .txt, poses_bounds.npy, MegaSaM .npz); without it, --video is tracked first")
    parser.add_argument("--video", help="the track's video file or image folder: Pi from optical flow")
    parser.add_argument("--format", choices=("auto",) + FORMATS, default="auto", help="force a track format")
    parser.add_argument("--estimator", choices=ESTIMATORS, default=None,
                        help="harmonic (default from depth), mean, or flow (always with --video)")
    parser.add_argument("--json", required=True, help="output JSON file")
    parser.add_argument("--offset", type=int, default=None,
                        help="track frame i is video frame OFFSET+i (default: counts must match)")
    parser.add_argument("--size", default=None, metavar="WxH",
                        help="image size for normalised-intrinsics tracks (RealEstate10K); default: the "
                             "video's frame size, else square pixels at height 576")
    parser.add_argument("--images", default=None, help="image folder whose files the track names (checked)")
    parser.add_argument("--preset", choices=tuple(DIS_PRESETS), default="medium", help="DIS optical-flow preset")
    from .track import add_lens_arguments  # --video alone: track it first (parascale track)
    add_lens_arguments(parser, with_out=True)


def parse_size(text):
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 384x256, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"--size must be positive, got {text!r}")
    return w, h


def measure(track_path, video=None, format=None, estimator=None, offset=None, size=None, images=None,
            preset="medium", progress=None):
    """(ReferencePi, Track) as the command measures them. The video is streamed (a few
    frames in memory whatever its length); progress(done, total) per step."""
    from ...core.formats.readers import read_track
    from ...core.reference import measure_reference, pi_from_video, video_size

    if video is not None and size is None:
        size = video_size(video)
    track = read_track(track_path, None if format in (None, "auto") else format, size=size, images=images)
    if video is not None:
        if estimator not in (None, "flow"):
            raise ValueError(f"with --video Pi is measured from optical flow (estimator flow), not {estimator!r}; "
                             "drop --video to measure from the track's points or depth")
        # an image folder is read in the track's own image order when it names its files
        ref = pi_from_video(track, video, offset=offset, preset=preset, progress=progress)
    else:
        ref = measure_reference(track, estimator=estimator)
    from ...core.formats.validate import check_reference_pi
    check_reference_pi(ref, f"{track_path}")  # a still camera or NaN/inf Pi: refused with the reason
    return ref, track


def with_clock(data: dict, track) -> dict:
    """The measurement's JSON with the track's clock: "timed", "fps" and each step's "time"."""
    from ...core.clock import track_rate

    timed = bool(track.meta.get("timed", False))
    rate = track_rate(track) if timed else None
    data["timed"], data["fps"] = timed, float(rate) if rate is not None else None
    if timed:
        t = track.times - track.times[0]
        for step in data["steps"]:
            step["time"] = float(t[step["frame"]])
    return data


def progress_printer(label: str, stream=None):
    """progress(done, total) printing '<label>: step done/total' about every 1%."""
    import sys

    stream = stream or sys.stdout
    state = {"last": -1}

    def progress(done, total):
        pct = 100 * done // max(total, 1)
        if pct != state["last"] or done == total:
            state["last"] = pct
            print(f"\r{label}: step {done}/{total}", end="\n" if done == total else "", file=stream, flush=True)
    return progress


def measure_command(args, progress=None):
    """What `parascale measure` does before it writes: every argument checked, the
    video tracked first when no --track is given, then measured. Returns (ReferencePi,
    Track). `parascale batch` runs its measure and track jobs through here."""
    from . import checks as chk

    chk.check_input("--track", args.track)
    chk.check_video("--video", args.video)
    chk.check_input("--images", args.images, "folder")
    chk.check_int("--offset", args.offset, 0, chk.MAX_OFFSET, "video frame of the track's first frame")
    size = parse_size(args.size)
    if size is not None and max(size) > chk.MAX_RENDER_SIDE:
        raise ValueError(f"--size {args.size}: sides must be at most {chk.MAX_RENDER_SIDE}")
    chk.check_output_file("--json", args.json)
    chk.check_distinct({"--track": args.track, "--json": args.json})
    from .track import check_lens_arguments
    check_lens_arguments(args)
    if args.track is None:
        from .track import track_first
        if args.video is None:
            raise ValueError("give --track PATH, or --video FILE|DIR alone to track the video first")
        args.track = track_first(args)
    return measure(args.track, args.video, args.format, args.estimator, args.offset,
                   size, args.images, args.preset, progress=progress)


def write_json(path, ref, track) -> dict:
    """The --json document of a measured reference (with the track's clock), written
    atomically; returns it."""
    data = with_clock(ref.to_json(), track)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    return data


def run(args) -> int:
    ref, track = measure_command(args, progress=progress_printer("measuring video") if args.video else None)
    data = write_json(args.json, ref, track)
    print(f"{track.source}: {len(track)} frames, Pi from {ref.source} ({ref.estimator})")
    video = ref.pixel_shares() is not None
    print(f"{'frame':>6} {'pi':>10} {'translation':>12}" + (f" {'counted':>8} {'sky':>6}" if video else ""))
    for s in data["steps"]:
        extra = f" {100 * (s['kept'] + s['filled']):>7.0f}% {100 * s['infinity']:>5.0f}%" if video else ""
        print(f"{s['frame']:>6d} {s['pi']:>10.5f} {s['translation']:>12.5g}{extra}")
    if video:
        print("counted: share of the video's pixels whose motion counts (static geometry; movers and occlusions "
              "filled from around them); sky: at infinity, not counted")
    print(f"wrote {args.json}")
    return 0
