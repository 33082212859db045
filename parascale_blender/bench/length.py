"""Bench section 5: a 100,000-frame track through measure, transfer and every export
format in a fresh process, against a tenth of the length (linear cost)."""
from __future__ import annotations

import os
import time
from typing import Callable

import numpy as np

from .video import _texture
from .common import (TARGET_LENGTH_RATIO, Config, Results, _log, add_camera, row)


# Length: long tracks through measure, transfer and every export format

LENGTH_VIDEO_SIZE = (64, 36)   # tiny frames: the figure is about length, not resolution


def clip_frames(n: int, size=LENGTH_VIDEO_SIZE, seed: int = 7):
    """The track (c2w, K) of a camera trucking over a textured plane and a generator of
    its n frames (uint8 gray), made one at a time: nothing of length n but the poses.
    The image moves by `size[0] / 200` pixels a frame, wrapping around the texture."""
    import cv2

    W, H = size
    f = 0.9 * W
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    tex = _texture(max(W, H), seed)[:H, :W]  # wraps around: a plane as wide as needed
    step = W / 200.0                       # pixels per frame on a plane at depth Z = 4
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) * step * 4.0 / f

    def frames():
        for i in range(n):
            M = np.array([[1.0, 0, (i * step) % W], [0, 1.0, 0]])
            yield cv2.warpAffine(tex, M, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                 borderMode=cv2.BORDER_WRAP)
    return c2w, K, frames


def write_clip(folder, n: int, size=LENGTH_VIDEO_SIZE, fps: float = 24.0):
    """A video file (MJPG .avi, written frame by frame) and its RealEstate10K track."""
    import cv2

    from ...core.cameras import Track
    from ...core.formats.writers import write_re10k

    c2w, K, frames = clip_frames(n, size)
    W, H = size
    video = os.path.join(folder, f"clip_{n}.avi")
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H), isColor=False)
    for img in frames():
        vw.write(img)
    vw.release()
    track = os.path.join(folder, f"clip_{n}.txt")
    write_re10k(Track(c2w=c2w, K=K, width=W, height=H, times=np.arange(n) / fps), track)
    return video, track


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def length_case(n: int, folder, log: Callable[[str], None] = _log) -> dict:
    """An n-frame track through measure (its video streamed from a file), transfer (ray-
    cast depth on a 4x3 grid, the smallest honest target) and every export format, in
    this process; the seconds and the peak resident memory after each stage. Run it in
    a fresh process (bench_length_subprocess) so the peaks are its own."""
    import bpy

    from ...core.formats import writers
    from ...core.formats.readers import read_track
    from ...core.reference import pi_from_video
    from .. import export, pipeline

    out = {"frames": n, "stages": []}

    def stage(name, t0, **extra):
        out["stages"].append({"stage": name, "seconds": time.perf_counter() - t0, "peak_mb": _peak_mb(), **extra})
        log(f"length {n:,}: {name} {out['stages'][-1]['seconds']:.1f} s, peak {_peak_mb():.0f} MB")

    import_peak = _peak_mb()
    t0 = time.perf_counter()
    video, track_path = write_clip(folder, n)
    stage("write video", t0)

    t0 = time.perf_counter()
    track = read_track(track_path, "re10k", size=LENGTH_VIDEO_SIZE)
    ref = pi_from_video(track, video)
    stage("measure (video streamed)", t0, pi_median=float(np.median(ref.pi)))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_plane_add(size=1e6, location=(0, 0, -4.0))
    scene.frame_start, scene.frame_end = 1, n
    scene.render.fps = 24
    scene.render.resolution_x, scene.render.resolution_y = LENGTH_VIDEO_SIZE
    cam = add_camera(scene, "Target", np.diag([1.0, -1.0, -1.0, 1.0]))  # looking down at the plane
    motion = pipeline.ReferenceMotion(track.c2w, track.times, ref.pi, "flow", "video", "clip", track.K)
    t0 = time.perf_counter()
    result = pipeline.transfer(scene, cam, motion, pipeline.TransferOptions(method="flow", depth="raycast",
                                                                             depth_size=(4, 3)))
    stage("transfer (ray-cast depth 4x3)", t0, pce=float(result.pce["mean"]))

    t0 = time.perf_counter()
    cam_track = export.camera_track(scene, result.camera)
    stage("export: read the camera", t0)
    for fmt in writers.FORMATS:
        t0 = time.perf_counter()
        path = os.path.join(folder, f"export_{fmt}{writers.EXTENSIONS[fmt]}")
        kwargs = {}
        if fmt == "gen3c":  # the Z-pass renders are per frame; the writer gets a 4x3 grid
            kwargs["depths"] = np.full((n, 3, 4), 4.0, np.float32)
        writers.write_track(cam_track, fmt, path, frames=None if fmt != "recammaster" else n, **kwargs)
        stage(f"export {fmt}", t0)
    out["import_peak_mb"] = import_peak
    out["peak_mb"] = _peak_mb()
    return out


def bench_length_subprocess(n: int, timeout: float = 3600) -> dict:
    """length_case(n) in a fresh Python (its own peak memory), as a dict."""
    import json
    import subprocess
    import sys

    code = ("import json, sys, tempfile\n"
            "from parascale.parascale_blender.bench.length import length_case\n"
            "with tempfile.TemporaryDirectory(prefix='parascale_length_') as d:\n"
            f"    res = length_case({int(n)}, d, log=lambda m: print(m, file=sys.stderr, flush=True))\n"
            "print('LENGTH ' + json.dumps(res))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"length case ({n} frames) failed:\n{r.stderr[-2000:]}")
    for line in r.stderr.splitlines():
        _log(line)
    line = next(l for l in r.stdout.splitlines() if l.startswith("LENGTH "))
    return json.loads(line[len("LENGTH "):])


def bench_length(cfg: Config, res: Results) -> None:
    """Peak memory and time of a long track through every stage; the baseline row is
    the same run at a tenth of the length (a linear path costs ~10x for 10x frames)."""
    n = cfg.length_frames
    small = bench_length_subprocess(n // 10)
    big = bench_length_subprocess(n)
    rows = []
    for a, b in zip(big["stages"], small["stages"]):
        base = f"{b['stage']}, {n // 10:,} frames"
        per = b["seconds"] / (n // 10)
        rows.append(row(base, per, "frame", base, per, total_s=b["seconds"], peak_mb=b["peak_mb"]))
        rows.append(row(f"{a['stage']}, {n:,} frames", a["seconds"] / n, "frame", base, per,
                        total_s=a["seconds"], peak_mb=a["peak_mb"]))
    res.sections["length"] = {"frames": n, "video_size": list(LENGTH_VIDEO_SIZE), "rows": rows,
                              "peak_mb": big["peak_mb"], "import_peak_mb": big["import_peak_mb"],
                              "peak_mb_small": small["peak_mb"]}
    # Issue 23: per-frame cost at n within TARGET_LENGTH_RATIO of that at n / 10, for each
    # of measure, transfer and export (every export stage, reading the camera included).
    for group in ("measure", "transfer", "export"):
        def total(case):
            return sum(st["seconds"] for st in case["stages"] if st["stage"].startswith(group))
        ratio = (total(big) / n) / (total(small) / (n // 10))
        res.targets.append({"name": f"{group} of a {n:,}-frame track: per-frame cost at most {TARGET_LENGTH_RATIO:g}x "
                                    f"that at {n // 10:,} frames (linear)",
                            "value_ratio": ratio, "limit_ratio": TARGET_LENGTH_RATIO,
                            "met": bool(ratio <= TARGET_LENGTH_RATIO), "applies": not cfg.quick})
