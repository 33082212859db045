"""`parascale measure`: read a reference track and measure its Parallax Number per step.

    parascale measure --track PATH [--video FILE|DIR] [--format F]
                      [--estimator harmonic|mean|flow] --json OUT

Writes {"source": "points"|"depth"|"video"|"scene", "estimator": ...,
"steps": [{"frame": t, "pi": ..., "translation": ...}, ...]}: one entry per step, frame t
is the 0-based position in the track's frame order and the step runs t-1 -> t.
With --video, Pi is read from the video's optical flow (estimator flow); otherwise
from the track's points, or its depth maps.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..core.writers import atomic_write_text


def add_arguments(parser) -> None:
    from ..core.parallax import ESTIMATORS
    from ..core.readers import FORMATS
    from ..core.reference import DIS_PRESETS

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
    from .cmd_track import add_lens_arguments  # --video alone: track it first (parascale track)
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
            preset="medium"):
    """(ReferencePi, Track) as the command measures them."""
    from ..core.readers import read_track
    from ..core.reference import measure_reference, pi_from_video, read_frames

    frames = None
    if video is not None:
        frames, _ = read_frames(video)
        if size is None:
            size = (frames[0].shape[1], frames[0].shape[0])
    track = read_track(track_path, None if format in (None, "auto") else format, size=size, images=images)
    if video is not None:
        if estimator not in (None, "flow"):
            raise ValueError(f"with --video Pi is measured from optical flow (estimator flow), not {estimator!r}; "
                             "drop --video to measure from the track's points or depth")
        if frames is not None and track.meta.get("format") == "colmap" and Path(video).is_dir():
            frames, _ = read_frames(video, names=track.names)  # the track's own image order
        ref = pi_from_video(track, video, offset=offset, preset=preset, frames=frames)
    else:
        ref = measure_reference(track, estimator=estimator)
    return ref, track


def run(args) -> int:
    if args.track is None:
        from .cmd_track import track_first
        if args.video is None:
            raise ValueError("give --track PATH, or --video FILE|DIR alone to track the video first")
        args.track = track_first(args)
    ref, track = measure(args.track, args.video, args.format, args.estimator, args.offset,
                         parse_size(args.size), args.images, args.preset)
    data = ref.to_json()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(data, indent=1) + "\n")
    print(f"{track.source}: {len(track)} frames, Pi from {ref.source} ({ref.estimator})")
    print(f"{'frame':>6} {'pi':>10} {'translation':>12}")
    for s in data["steps"]:
        print(f"{s['frame']:>6d} {s['pi']:>10.5f} {s['translation']:>12.5g}")
    print(f"wrote {args.json}")
    return 0
