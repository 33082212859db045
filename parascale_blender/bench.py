"""The benchmark behind `parascale bench`: the hot paths against their baselines.

Five sections, each measured in one run on this machine so that the ratios are
comparable even when absolute timings are noisy (a shared machine):

1. depth per keyframe: the Z pass rebuilt per frame (compositor rebuilt, no
   persistent data) vs the Z pass with reuse vs ray casting, on procedurally
   built target scenes of about 10k, 100k and 1M triangles;
2. calibration: keyframes per second for a 240-frame shot on the 1M-triangle
   scene through pipeline.transfer with default options (target: under 30 s);
3. reference Pi from video: frames per second at 960x540 for the full per-frame
   work (DIS flow, rotation homography, residual): full resolution (baseline), the
   default path (flow on downscaled frames) and faster DIS presets, each with its
   Pi error against the analytic truth (target: 30 fps);
4. camera keyframes: 10,000 frames written in bulk (foreach_set) vs
   Object.keyframe_insert per frame, the same keys;
5. length: a 100,000-frame track (its 64x36 video written to a file and streamed
   back) through measure, transfer (ray-cast depth) and every export format, in a
   fresh process: seconds and peak resident memory per stage, against the same run
   at a tenth of the length (equal per-frame times: linear cost).

Every timed figure is a row {label, seconds (per unit), unit, baseline,
baseline_seconds, ratio = baseline_seconds / seconds}.

bpy is imported by the functions that need it: importing this module is cheap.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.cameras import look_at

TARGET_CALIBRATION_S = 30.0   # 240 keyframes on the 1M-triangle scene
TARGET_VIDEO_FPS = 30.0       # reference Pi from video at 960x540
LENGTH_FRAMES = 100_000       # the length section's track
VIDEO_SIZE = (960, 540)
DEPTH_SIZE = (96, 54)         # TransferOptions' default depth grid
FPS = 24


@dataclass
class Config:
    quick: bool = False
    triangles: tuple = (10_000, 100_000, 1_000_000)
    depth_frames: int = 8          # depth calls per method and scene
    calib_frames: int = 240
    video_frames: int = 40
    video_repeats: int = 2
    key_frames: int = 10_000
    bulk_repeats: int = 3
    length_frames: int = LENGTH_FRAMES
    track_frames: int = 10         # video tracking (full bench only)

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if not quick:
            return cls()
        return cls(quick=True, triangles=(10_000, 30_000, 100_000), depth_frames=4, calib_frames=48,
                   video_frames=12, video_repeats=1, key_frames=1_000, bulk_repeats=3,
                   length_frames=2_000)


@dataclass
class Results:
    machine: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"machine": self.machine, "config": self.config, "sections": self.sections,
                "targets": self.targets, "notes": self.notes}


def _log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def row(label: str, seconds: float, unit: str, baseline: str, baseline_seconds: float, **extra) -> dict:
    out = {"label": label, "seconds": float(seconds), "unit": unit, "per_second": 1.0 / float(seconds),
           "baseline": baseline, "baseline_seconds": float(baseline_seconds),
           "ratio": float(baseline_seconds) / float(seconds)}
    out.update(extra)
    return out


# ---------------------------------------------------------------------------
# machine

def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__}
    try:
        info["cores_available"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import bpy
        info["bpy"] = bpy.app.version_string
    except ImportError:
        info["bpy"] = None
    try:
        import cv2
        info["opencv"] = cv2.__version__
        info["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        info["opencv"] = None
    return info


# ---------------------------------------------------------------------------
# scenes

def reference_move(n: int) -> np.ndarray:
    """Dolly, truck and pan together over a terrain 20 units across, c2w (n, 4, 4)."""
    out = []
    for i in range(n):
        s = i / max(n - 1, 1)
        eye = np.array([-1.5 + 3.0 * s, -12.0 + 4.0 * s, 5.0 - 1.0 * s])
        target = np.array([1.0 * s - 0.5, 0.0, 0.0])
        out.append(look_at(eye, target))
    return np.stack(out)


def grid_cells(triangles: int) -> int:
    """Cells per side of a square grid of two triangles per cell."""
    return max(2, int(round(math.sqrt(triangles / 2.0))))


def build_terrain_scene(triangles: int, name: str = "bench"):
    """An empty scene holding one rolling terrain mesh of about `triangles`
    triangles (a triangulated grid, built with foreach_set), 20 units across.
    Returns (scene, mesh object, exact triangle count)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    n = grid_cells(triangles)
    xs = np.linspace(-10.0, 10.0, n + 1)
    X, Y = np.meshgrid(xs, xs)
    Z = 0.6 * np.sin(0.9 * X) * np.cos(0.7 * Y) + 0.25 * np.sin(3.1 * X + 1.3 * Y) + 0.05 * np.sin(17 * X) * np.sin(13 * Y)
    co = np.c_[X.ravel(), Y.ravel(), Z.ravel()].astype(np.float32)
    i = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]).ravel()
    a, b, c, d = i, i + 1, i + n + 2, i + n + 1
    tris = np.concatenate([np.c_[a, b, c], np.c_[a, c, d]]).astype(np.int32)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(co))
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.loops.add(tris.size)
    mesh.loops.foreach_set("vertex_index", tris.ravel())
    mesh.polygons.add(len(tris))
    mesh.polygons.foreach_set("loop_start", np.arange(0, tris.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    scene.render.resolution_x, scene.render.resolution_y = VIDEO_SIZE
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    return scene, obj, len(mesh.polygons)


def add_camera(scene, name: str, c2w_cv: np.ndarray):
    import bpy
    from mathutils import Matrix

    from ..core.cameras import cv_to_blender

    data = bpy.data.cameras.new(name)
    data.lens, data.sensor_width = 30.0, 36.0
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.matrix_world = Matrix(cv_to_blender(c2w_cv).tolist())
    scene.camera = obj
    return obj


# ---------------------------------------------------------------------------
# 1. depth per keyframe

def _time_depth(make_source, poses, K, W, H) -> dict:
    """Seconds per depth call over all poses (the source already set up), and the
    first call alone (it builds what later calls reuse)."""
    with make_source() as src:
        times = []
        finite = 0.0
        for c2w in poses:
            t0 = time.perf_counter()
            view = src.depth(c2w, K, W, H)
            times.append(time.perf_counter() - t0)
            finite += float(np.isfinite(view.depth).mean())
    times = np.array(times)
    return {"per_keyframe_s": float(times.mean()), "first_s": float(times[0]),
            "steady_s": float(np.median(times[1:])) if len(times) > 1 else float(times[0]),
            "coverage": finite / len(poses)}


def bench_depth(cfg: Config, res: Results) -> None:
    from .animation import camera_intrinsics
    from .depth import RayCastDepth, ZPassDepth

    section = {"depth_size": list(DEPTH_SIZE), "keyframes": cfg.depth_frames, "scenes": [], "rows": [],
               "figure": "per keyframe = median of calls 2..n (steady state); first_s = the first call, "
                         "which builds what later calls reuse (BVH, compositor)"}
    moves = reference_move(cfg.calib_frames)
    poses = moves[np.linspace(0, len(moves) - 1, cfg.depth_frames).round().astype(int)]
    methods = [
        ("Z pass rebuilt per frame", lambda s: ZPassDepth(s, *DEPTH_SIZE, reuse=False)),
        ("Z pass with reuse", lambda s: ZPassDepth(s, *DEPTH_SIZE, reuse=True)),
        ("ray cast", lambda s: RayCastDepth(s, *DEPTH_SIZE)),
    ]
    for tri in cfg.triangles:
        t0 = time.perf_counter()
        scene, _, count = build_terrain_scene(tri)
        cam = add_camera(scene, "Camera", poses[0])
        K, W, H = camera_intrinsics(cam, scene)
        _log(f"depth: scene of {count:,} triangles built in {time.perf_counter() - t0:.1f} s")
        entry = {"triangles": count, "methods": {}}
        for label, make in methods:
            _log(f"depth: {count:,} triangles, {label}: {cfg.depth_frames} keyframes ...")
            m = _time_depth(lambda: make(scene), poses, K, W, H)
            entry["methods"][label] = m
            _log(f"depth: {count:,} triangles, {label}: {m['steady_s'] * 1e3:.1f} ms per keyframe "
                 f"(first {m['first_s'] * 1e3:.0f} ms, mean {m['per_keyframe_s'] * 1e3:.1f} ms)")
        base = entry["methods"]["Z pass rebuilt per frame"]["steady_s"]
        for label, m in entry["methods"].items():
            section["rows"].append(row(f"{label} @ {_tri_label(count)}", m["steady_s"], "keyframe",
                                       f"Z pass rebuilt per frame @ {_tri_label(count)}", base,
                                       triangles=count, first_s=m["first_s"], mean_s=m["per_keyframe_s"]))
        section["scenes"].append(entry)
    res.sections["depth"] = section


def _tri_label(n: int) -> str:
    if n >= 950_000:
        return f"{n / 1e6:.1f}M tris"
    return f"{n / 1e3:.0f}k tris"


# ---------------------------------------------------------------------------
# 2. calibration keyframes per second

def bench_calibration(cfg: Config, res: Results) -> None:
    import bpy

    from . import animation
    from .pipeline import ReferenceMotion, TransferOptions, transfer

    n = cfg.calib_frames
    tri = cfg.triangles[-1]
    t0 = time.perf_counter()
    scene, _, count = build_terrain_scene(tri)
    _log(f"calibration: scene of {count:,} triangles built in {time.perf_counter() - t0:.1f} s")
    c2w = reference_move(n)
    target = add_camera(scene, "Target", c2w[0])
    scene.frame_start, scene.frame_end = 1, n
    pi = np.full(n - 1, 0.0015)  # a steady move: 0.15% of the focal length per frame
    reference = ReferenceMotion(c2w, np.arange(n) / FPS, pi, "harmonic", "scene", "bench reference")

    def run(label, options):
        _log(f"calibration: {label}: {n} keyframes on {count:,} triangles ...")
        every = max(1, (n - 1) // 6)

        def progress(done, total):
            if done % every == 0 or done == total:
                _log(f"calibration: {label}: {done}/{total} steps, {time.perf_counter() - start:.1f} s")

        start = time.perf_counter()
        result = transfer(scene, target, reference, options, progress=progress)
        seconds = time.perf_counter() - start
        keys = len(result.frames)
        pce = float(result.pce["mean"])
        scale = np.asarray(result.scale, float)
        animation.remove_object(result.camera)
        _log(f"calibration: {label}: {keys} keyframes in {seconds:.1f} s ({keys / seconds:.1f} keyframes/s)")
        return {"total_s": seconds, "keyframes": keys, "pce": pce, "scale": scale}

    measured = {
        "transfer, default options (Z pass)": run("default options (Z pass)", TransferOptions()),
        "transfer, ray cast depth": run("ray cast depth", TransferOptions(depth="raycast")),
    }
    default = measured["transfer, default options (Z pass)"]
    base = default["total_s"] / default["keyframes"]
    rows = []
    b = default["scale"]
    for label, m in measured.items():
        # the same calibration? median |ln(step length / default's step length)|
        a = m.pop("scale")
        ok = (a > 0) & (b > 0)
        m["step_diff"] = float(np.median(np.abs(np.log(a[ok] / b[ok])))) if ok.any() else float("nan")
        rows.append(row(f"{label} @ {_tri_label(count)}", m["total_s"] / m["keyframes"], "keyframe",
                        f"transfer, default options (Z pass) @ {_tri_label(count)}", base,
                        total_s=m["total_s"], keyframes=m["keyframes"], pce=m["pce"], step_diff=m["step_diff"]))
    res.sections["calibration"] = {"triangles": count, "keyframes": n, "target_s": TARGET_CALIBRATION_S,
                                   "step_diff": "median over steps of |ln(step length / the default "
                                                "transfer's step length)|: 0 = the same calibration",
                                   "runs": measured, "rows": rows}
    limit = TARGET_CALIBRATION_S * n / 240.0
    for label, m in measured.items():
        res.targets.append({"name": f"{n} calibrated keyframes on {_tri_label(count)} in under {limit:g} s: {label}",
                            "value_s": m["total_s"], "limit_s": limit, "met": m["total_s"] < limit,
                            "applies": (not cfg.quick) and label == "transfer, default options (Z pass)"})
    bpy.ops.wm.read_factory_settings(use_empty=True)


# ---------------------------------------------------------------------------
# 3. reference Pi from video

def _texture(size: int, seed: int = 7) -> np.ndarray:
    """A uint8 multi-octave noise texture: detail at every scale for the flow to track."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((size, size), np.float32)
    for sigma, weight in ((0.7, 0.5), (2.0, 1.0), (6.0, 1.0), (18.0, 1.0), (50.0, 0.8)):
        layer = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
        img += weight * layer / (layer.std() + 1e-9)
    img = (img - img.mean()) / (img.std() + 1e-9)
    return np.clip(128 + 45 * img, 0, 255).astype(np.uint8)


def synthetic_video(n: int, size=VIDEO_SIZE):
    """Frames (uint8 gray, size) of a camera moving over a textured, tilted plane
    (dolly, truck and pan together), the track (c2w, K) and the exact per-step
    flow homographies. The frames are warps of one texture, so the true flow of
    every step is known: H_{t-1 -> t} = H_t H_{t-1}^-1, H_t = K R_t^T (I - c_t n^T / d) K^-1."""
    import cv2

    W, H = size
    f = 0.9 * W
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1.0]])
    Kinv = np.linalg.inv(K)
    normal = np.array([0.0, -0.35, 1.0])
    normal /= np.linalg.norm(normal)
    dist = 4.0 * normal[2]  # the plane passes through (0, 0, 4) in the first camera
    margin = W
    tex = _texture(W + 2 * margin)
    shift = np.array([[1, 0, margin], [0, 1, margin], [0, 0, 1.0]])  # frame-0 pixel -> texture pixel
    c2w = np.empty((n, 4, 4))
    homs = []
    frames = []
    for i in range(n):
        s = i / max(n - 1, 1)
        yaw = np.radians(4.0 * s)
        R = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        c = np.array([0.5 * s, 0.08 * s, 0.6 * s])
        c2w[i] = np.eye(4)
        c2w[i, :3, :3], c2w[i, :3, 3] = R, c
        Hi = K @ R.T @ (np.eye(3) - np.outer(c, normal) / dist) @ Kinv  # frame-0 pixel -> frame-i pixel
        homs.append(Hi)
        # pixel centres at +0.5: warp in centre coordinates
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
        M = np.linalg.inv(half) @ Hi @ half @ np.linalg.inv(shift)  # texture index -> frame-i index
        frames.append(cv2.warpPerspective(tex, M, (W, H), flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_REFLECT))
    steps_h = [homs[t] @ np.linalg.inv(homs[t - 1]) for t in range(1, n)]
    return frames, c2w, K, steps_h


def true_flow(Hs: np.ndarray, W: int, H: int) -> np.ndarray:
    xs = np.arange(W) + 0.5
    ys = np.arange(H) + 0.5
    X, Y = np.meshgrid(xs, ys)
    p = np.stack([X, Y, np.ones_like(X)], -1) @ Hs.T
    return np.stack([p[..., 0] / p[..., 2] - X, p[..., 1] / p[..., 2] - Y], -1).astype(np.float32)


def _video_variant(preset: str, factor: int) -> Callable:
    """Per-step Pi with DIS `preset` on frames scaled by 1/factor (flow at lower
    resolution, K scaled with it; Pi is in focal-length units, so it carries over)."""
    import cv2

    from ..core.reference import dis_flow, residual_parallax, rotation_homography

    def pis(frames, K, R) -> np.ndarray:
        out = np.empty(len(frames) - 1)
        Ks = K
        if factor > 1:
            Ks = K.copy()
            Ks[:2] /= factor
        prev = None
        for t in range(len(frames)):
            img = frames[t]
            if factor > 1:
                h, w = img.shape
                img = cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
            if prev is not None:
                flow = dis_flow(prev, img, preset)
                out[t - 1] = residual_parallax(flow, rotation_homography(Ks, Ks, R[t - 1], R[t]), Ks)
            prev = img
        return out

    return pis


def bench_video(cfg: Config, res: Results) -> None:
    from ..core.cameras import Track
    from ..core.reference import (DEFAULT_PRESET, FLOW_LONG_SIDE, pi_from_video, residual_parallax,
                                  rotation_homography)

    n = cfg.video_frames
    W, H = VIDEO_SIZE
    _log(f"video: making {n} synthetic {W}x{H} frames (textured plane, known flow) ...")
    frames, c2w, K, homs = synthetic_video(n)
    R = c2w[:, :3, :3]
    truth = np.array([residual_parallax(true_flow(homs[t - 1], W, H), rotation_homography(K, K, R[t - 1], R[t]), K)
                      for t in range(1, n)])
    track = Track(c2w, K, W, H, np.arange(n) / FPS, source="bench video")

    def err(pi):
        return float(np.median(np.abs(np.log(np.maximum(pi, 1e-12) / truth))))

    def time_it(fn):
        best, pis = math.inf, None
        for _ in range(cfg.video_repeats):
            t0 = time.perf_counter()
            pis = fn()
            best = min(best, time.perf_counter() - t0)
        return best / (n - 1), pis

    measured = {}
    runs = [(f"baseline: DIS {DEFAULT_PRESET}, flow at full res",
             lambda: pi_from_video(track, None, frames=frames, flow_long_side=None).pi),
            (f"default: pi_from_video (DIS {DEFAULT_PRESET}, flow at long side {FLOW_LONG_SIDE})",
             lambda: pi_from_video(track, None, frames=frames).pi)]
    for preset in ("fast", "ultrafast"):
        for factor in (1, 2):
            fn = _video_variant(preset, factor)
            runs.append((f"DIS {preset}, flow at {'full' if factor == 1 else f'1/{factor}'} res",
                         lambda fn=fn: fn(frames, K, R)))
    for label, fn in runs:
        _log(f"video: {label} ...")
        sec, pis = time_it(fn)
        measured[label] = (sec, pis)
        _log(f"video: {label}: {1 / sec:.1f} fps, Pi error {err(pis):.3f}")
    # Where the default path's time goes: the flow, and the residual (numpy, float64).
    from ..core.reference import dis_flow
    flow_t, resid_t = [], []
    for t in range(1, n):
        t0 = time.perf_counter()
        flow = dis_flow(frames[t - 1], frames[t], DEFAULT_PRESET)
        t1 = time.perf_counter()
        residual_parallax(flow, rotation_homography(K, K, R[t - 1], R[t]), K)
        flow_t.append(t1 - t0)
        resid_t.append(time.perf_counter() - t1)
    breakdown = {"flow_s": float(np.median(flow_t)), "residual_s": float(np.median(resid_t))}
    _log(f"video: full-resolution path per frame: flow {breakdown['flow_s'] * 1e3:.1f} ms, "
         f"rotation removal + residual {breakdown['residual_s'] * 1e3:.1f} ms")
    base_label, default_label = list(measured)[:2]
    base = measured[base_label][0]
    rows = [row(label, sec, "frame", base_label, base, fps=1.0 / sec, pi_error=err(pis))
            for label, (sec, pis) in measured.items()]
    res.sections["video"] = {"size": [W, H], "frames": n, "target_fps": TARGET_VIDEO_FPS,
                             "pi_truth_median": float(np.median(truth)),
                             "pi_error": "median over steps of |ln(Pi / Pi_true)|, Pi_true from the exact flow",
                             "full_res_breakdown": breakdown, "rows": rows}
    fps = 1.0 / measured[default_label][0]
    res.targets.append({"name": f"reference Pi from video at >= {TARGET_VIDEO_FPS:g} fps at {W}x{H}: default path",
                        "value_fps": fps, "limit_fps": TARGET_VIDEO_FPS, "met": fps >= TARGET_VIDEO_FPS,
                        "applies": True})


# ---------------------------------------------------------------------------
# 5. video tracking with COLMAP (pycolmap, optional)

def bench_tracking(cfg: Config, res: Results) -> None:
    """Frames per second of `parascale track` (frames written, SIFT, sequential matching,
    global mapping) on the synthetic 960x540 video with the lens given: SIFT at full
    resolution (baseline) vs the default long side, with the rotation error of each."""
    import shutil
    import tempfile
    from pathlib import Path

    import cv2

    from ..core.rotations import rotation_angle
    from ..core.track import DEFAULT_LONG_SIDE, Intrinsics, TrackOptions, track_video, tracking_available

    ok, why = tracking_available()
    if not ok or cfg.quick:
        why = why if not ok else "--quick: the tracking section runs only in the full bench (COLMAP takes minutes)"
        res.notes.append(f"tracking section skipped: {why}")
        _log(f"tracking: skipped ({why})")
        return
    n = cfg.track_frames
    W, H = VIDEO_SIZE
    frames, c2w, K, _ = synthetic_video(n)
    tmp = Path(tempfile.mkdtemp(prefix="parascale-bench-track-"))
    try:
        for i, f in enumerate(frames):
            cv2.imwrite(str(tmp / f"frame_{i:04d}.png"), f)
        rel_true = np.einsum("ji,njk->nik", c2w[0, :3, :3], c2w[:, :3, :3])
        measured = {}
        for label, size in (("baseline: SIFT at full resolution", 0),
                            (f"default: SIFT at long side {DEFAULT_LONG_SIDE}", DEFAULT_LONG_SIDE)):
            _log(f"tracking: {label} ({n} frames) ...")
            t0 = time.perf_counter()
            result = track_video(tmp, tmp / f"out{size}", Intrinsics(K[0, 0], K[1, 1], "focal"),
                                 TrackOptions(max_image_size=size), strict=False)
            sec = (time.perf_counter() - t0) / n
            R = result.c2w[:, :3, :3]
            rel = np.einsum("ji,njk->nik", R[0], R)
            err = float(np.degrees(rotation_angle(np.einsum("nji,njk->nik", rel, rel_true))).max())
            measured[label] = (sec, err, result.registered, result.timings)
            _log(f"tracking: {label}: {1 / sec:.2f} fps, {result.registered}/{n} registered, "
                 f"rotation error up to {err:.3f} deg")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base_label = next(iter(measured))
    base = measured[base_label][0]
    rows = [row(label, sec, "frame", base_label, base, fps=1.0 / sec, rot_error_deg=err, registered=reg,
                stages_s=timings) for label, (sec, err, reg, timings) in measured.items()]
    res.sections["tracking"] = {"size": [W, H], "frames": n,
                                "rot_error": "largest per-frame rotation error (deg) relative to frame 0; the "
                                             "video is one textured plane (two-fold homography ambiguity): "
                                             "accuracy is tested on real clips",
                                "rows": rows}


# ---------------------------------------------------------------------------
# 4. bulk keyframes vs keyframe_insert

def bench_keyframes(cfg: Config, res: Results) -> None:
    import bpy
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    from ..core.cameras import cv_to_blender
    from ..core.rotations import continuous_quats, quat_from_matrix
    from .animation import write_camera_animation

    n = cfg.key_frames
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    th = np.linspace(0.0, 6.0, n)
    c2w = np.stack([look_at((3 * np.cos(t), 3 * np.sin(t), 1 + 0.2 * np.sin(5 * t)), (0, 0, 0)) for t in th])
    frames = np.arange(1, n + 1)
    cam = bpy.data.cameras.new("bench")

    def new_obj(name):
        obj = bpy.data.objects.new(name, cam)
        scene.collection.objects.link(obj)
        return obj

    _log(f"keyframes: {n:,} frames in bulk (write_camera_animation), best of {cfg.bulk_repeats} ...")
    bulk = math.inf
    for k in range(cfg.bulk_repeats):
        obj = new_obj(f"bulk{k}")
        t0 = time.perf_counter()
        write_camera_animation(obj, c2w, frames, f"bulk{k}")
        bulk = min(bulk, time.perf_counter() - t0)
    _log(f"keyframes: bulk: {bulk:.3f} s")

    _log(f"keyframes: {n:,} frames with keyframe_insert (once) ...")
    mw = cv_to_blender(c2w)
    q = continuous_quats(quat_from_matrix(mw[:, :3, :3]))
    loc = mw[:, :3, 3]
    obj2 = new_obj("insert")
    obj2.rotation_mode = "QUATERNION"
    edit = bpy.context.preferences.edit
    saved = edit.keyframe_new_interpolation_type
    edit.keyframe_new_interpolation_type = "LINEAR"  # the same keys as the bulk writer
    try:
        t0 = time.perf_counter()
        for i in range(n):
            obj2.location = loc[i]
            obj2.rotation_quaternion = q[i]
            obj2.keyframe_insert("location", frame=float(frames[i]))
            obj2.keyframe_insert("rotation_quaternion", frame=float(frames[i]))
        insert = time.perf_counter() - t0
    finally:
        edit.keyframe_new_interpolation_type = saved
    _log(f"keyframes: keyframe_insert: {insert:.2f} s")

    # The two wrote the same keys: same curves, counts and values.
    def curves(o):
        bag = action_get_channelbag_for_slot(o.animation_data.action, o.animation_data.action_slot)
        out = {}
        for fc in bag.fcurves:
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            out[(fc.data_path, fc.array_index)] = co
        return out

    a, b = curves(bpy.data.objects["bulk0"]), curves(obj2)
    same = a.keys() == b.keys() and all(len(a[k]) == len(b[k]) and np.allclose(a[k], b[k], atol=1e-5) for k in a)
    rows = [row(f"keyframe_insert per frame ({n:,} frames)", insert / n, "frame",
                f"keyframe_insert per frame ({n:,} frames)", insert / n, total_s=insert),
            row(f"bulk foreach_set ({n:,} frames)", bulk / n, "frame",
                f"keyframe_insert per frame ({n:,} frames)", insert / n, total_s=bulk)]
    res.sections["keyframes"] = {"frames": n, "channels": len(a), "same_keys": bool(same), "rows": rows}
    bpy.ops.wm.read_factory_settings(use_empty=True)


# ---------------------------------------------------------------------------
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

    from ..core.cameras import Track
    from ..core.writers import write_re10k

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

    from ..core import writers
    from ..core.cameras import Track
    from ..core.readers import read_track
    from ..core.reference import pi_from_video
    from . import export, pipeline

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
    import tempfile

    code = ("import json, sys, tempfile\n"
            "from parascale.parascale_blender.bench import length_case\n"
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


# ---------------------------------------------------------------------------
# driver and table

SECTIONS = (("depth", bench_depth), ("calibration", bench_calibration), ("video", bench_video),
            ("keyframes", bench_keyframes), ("length", bench_length), ("tracking", bench_tracking))


def run_all(quick: bool = False, sections=None, log: Callable[[str], None] = _log) -> Results:
    cfg = Config.make(quick)
    res = Results(machine=machine_info(), config={k: (list(v) if isinstance(v, tuple) else v)
                                                  for k, v in cfg.__dict__.items()})
    start = time.perf_counter()
    for name, fn in SECTIONS:
        if sections and name not in sections:
            continue
        if quick and not sections and name == "length":
            continue  # minutes even when quick: run it with --only length
        t0 = time.perf_counter()
        fn(cfg, res)
        log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
    res.machine["bench_seconds"] = time.perf_counter() - start
    if quick:
        res.notes.append("--quick: smaller scenes and shots; the targets are stated for the full run")
        if not sections:
            res.notes.append("--quick leaves out the length section (--only length --quick: 2,000 frames)")
    return res


def _fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} us"


TITLES = {
    "depth": "Depth per keyframe ({w}x{h} grid, steady state), ratio = rebuilt-per-frame time / time",
    "calibration": "Calibration, {n}-frame shot, ratio = default transfer time / time",
    "video": "Reference Pi from video at {w}x{h}, ratio = full-resolution time / time",
    "keyframes": "Camera keyframes, ratio = keyframe_insert time / time",
    "length": "Length: a {n}-frame track, video {w}x{h} streamed; ratio = per-frame time at 1/10 the length / "
              "per-frame time (1 = linear)",
    "tracking": "Video tracking (COLMAP) at {w}x{h}, lens given, ratio = full-resolution time / time",
}


def format_table(res: Results) -> str:
    lines = []
    m = res.machine
    lines.append(f"ParaScale benchmark{' (--quick)' if res.config.get('quick') else ''}: {m.get('cpu')}, "
                 f"{m.get('cores')} cores, Blender {m.get('bpy')} (bpy module), Python {m.get('python')}, "
                 f"numpy {m.get('numpy')}, OpenCV {m.get('opencv')}")
    for name, sec in res.sections.items():
        size = sec.get("depth_size", sec.get("size", sec.get("video_size", [0, 0])))
        title = TITLES[name].format(w=size[0], h=size[1], n=f"{sec.get('keyframes', sec.get('frames', 0)):,}")
        lines.append("")
        lines.append(title)
        width = max(len(r["label"]) for r in sec["rows"]) + 2
        head = f"  {'':<{width}}{'per unit':>11}{'per second':>13}{'ratio':>9}"
        extra = {"video": "  Pi error", "calibration": "     total  steps vs default",
                 "depth": "  first call", "length": "     total  peak memory",
                 "tracking": "  rot err  registered"}.get(name, "")
        lines.append(head + extra)
        for r in sec["rows"]:
            line = f"  {r['label']:<{width}}{_fmt_time(r['seconds']):>11}{r['per_second']:>13.1f}{r['ratio']:>8.2f}x"
            if name == "video":
                line += f"{r['pi_error']:>10.3f}"
            elif name == "calibration":
                line += f"{r['total_s']:>9.1f} s{r['step_diff']:>17.1e}"
            elif name == "depth":
                line += f"{_fmt_time(r['first_s']):>12}"
            elif name == "length":
                line += f"{r['total_s']:>9.1f} s{r['peak_mb']:>10.0f} MB"
            elif name == "tracking":
                line += f"{r['rot_error_deg']:>9.3f}{r['registered']:>12d}"
            lines.append(line)
        if name == "keyframes":
            lines.append(f"  same keys written by both: {'yes' if sec['same_keys'] else 'NO'} "
                         f"({sec['channels']} curves x {sec['frames']:,} keys)")
        if name == "video":
            lines.append(f"  Pi error: {sec['pi_error']}")
            b = sec["full_res_breakdown"]
            lines.append(f"  full-resolution path per frame: DIS flow {_fmt_time(b['flow_s'])}, rotation removal + "
                         f"residual {_fmt_time(b['residual_s'])} (medians)")
        if name == "calibration":
            lines.append(f"  steps vs default: {sec['step_diff']}")
        if name == "length":
            lines.append(f"  peak resident memory {sec['peak_mb']:.0f} MB for {sec['frames']:,} frames "
                         f"({sec['peak_mb_small']:.0f} MB at {sec['frames'] // 10:,}; "
                         f"{sec['import_peak_mb']:.0f} MB after importing bpy)")
        if name == "tracking":
            lines.append(f"  rot err: {sec['rot_error']}")
    if res.targets:
        lines.append("")
        lines.append("Targets")
        for t in res.targets:
            if "value_s" in t:
                fig = f"{t['value_s']:.1f} s (limit {t['limit_s']:g} s)"
            else:
                fig = f"{t['value_fps']:.1f} fps (limit {t['limit_fps']:g} fps)"
                if "pi_error" in t:
                    fig += f", Pi error {t['pi_error']:.3f}"
            status = "met" if t["met"] else "MISSED"
            lines.append(f"  [{status:>6}] {t['name']}: {fig}")
    for note in res.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)
