"""The gauge of each camera-conditioned video generator: the depth scale its training
poses assume, the unit its pose file is read in, and the range of motion its training
data covers. numpy (+ OpenCV for the measurement); never bpy.

Why: a generator feels parallax, |translation| / depth, but reads only translation.
RealEstate10K-trained generators (CameraCtrl, VideoX-Fun Wan camera, MotionCtrl,
CamI2V, AC3D) learnt what a translation means from RealEstate10K clips, whose SLAM
scale is arbitrary per clip but whose effective depth, in the clip's own pose units,
has a distribution we can measure: per step, D_t = |d_t| / Pi_t with Pi_t measured
from the clip's video (optical flow minus the rotation flow, the `flow` estimator).
To mean the same motion to the generator, an exported move is written in the
generator's gauge:

    translation_exported = translation_scene * (D_generator / D_scene) * speed

D_scene is the target scene's depth scale at the start frame by the calibration's
rule: 1 / (Pi per unit translation) of the `flow` estimator over the Z pass of the
start pose, along the move's first translation direction (the same quantity as the
RealEstate10K measurement). The scale is one number for the whole move (the file
stays a similarity copy of the move), and it is scale invariant: a scene and move
scaled by s give D_scene scaled by s and the same file.

Run the RealEstate10K measurement (figures in docs/gauge.md):

    python -m parascale.core.gauge /path/to/data/cameractrl_realestate10k [--json OUT]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .parallax import normalized_grid, parallax_per_unit

# The estimator of the scene depth scale: the one the RealEstate10K gauge is measured in.
DEPTH_ESTIMATOR = "flow"
# Frames of the measured RealEstate10K clips (CameraCtrl's 16-frame training clips).
RE10K_CLIP_FRAMES = 16


class GaugeError(ValueError):
    """A depth scale or gauge that cannot be determined (named in the message)."""


@dataclass(frozen=True)
class Gauge:
    """One generator's gauge.

    depth: the depth scale its training poses assume, in `units` (D_generator).
    pi_step: (lo, hi) Pi per step its training data covers, for `frames` frames.
    path: (lo, hi) total path length over the clip in units of depth (sum of Pi).
    """

    generator: str
    depth: float
    units: str
    kind: str          # "measured" (RealEstate10K clips) or "published" (paper's convention)
    source: str
    pi_step: tuple
    path: tuple
    frames: int
    frame_rule: str

    def as_dict(self) -> dict:
        return {"generator": self.generator, "depth": self.depth, "units": self.units, "kind": self.kind,
                "source": self.source, "pi_step": list(self.pi_step), "path": list(self.path),
                "frames": self.frames, "frame_rule": self.frame_rule}


# ---------------------------------------------------------------------------
# The table. RealEstate10K figures: `python -m parascale.core.gauge DATA` on the ten
# CameraCtrl clips (10 clips, 150 steps). The gauge is the median over clips of each
# clip's median D_t (each clip weighs the same; robust to the odd step whose flow is
# dominated by a near wall). The ranges are those of |d_t| / D_clip and of its sum over
# the clip: what an exported move computes for itself.

RE10K_DEPTH = 3.568          # median of the 10 clip medians (clip medians 1.922 .. 4.247)
RE10K_PI_STEP = (0.0102, 0.063)   # measured 0.01024 .. 0.06274, rounded outwards
RE10K_PATH = (0.28, 0.75)         # measured 0.281 .. 0.748, rounded outwards
_RE10K_SOURCE = ("measured here from RealEstate10K clips (CameraCtrl's assets, Pi by optical flow, "
                 "python -m parascale.core.gauge); generator trained on RealEstate10K")
RECAMMASTER_DEPTH = (3.0 * 5.0 * 7.0 * 10.0) ** 0.25  # 5.692 m
_RE10K_UNITS = "RealEstate10K units (ORB-SLAM scale of the training clips)"


def _re10k(generator: str, frames: int, rule: str, note: str) -> Gauge:
    return Gauge(generator, RE10K_DEPTH, _RE10K_UNITS, "measured", _RE10K_SOURCE + "; " + note,
                 RE10K_PI_STEP, RE10K_PATH, RE10K_CLIP_FRAMES, rule)


GAUGES = {
    "cameractrl": _re10k("cameractrl", 16, "16 frames (AnimateDiff), 14/25 (SVD); the pose file's K is "
                         "corrected assuming it was made at 1280x720 (--original_pose_width/height)",
                         "hehao13/CameraCtrl ray_condition: no translation rescaling"),
    "wan-fun-camera": _re10k("wan-fun-camera", 81, "4n+1 frames (the VAE compresses time by 4); "
                             "process_pose_file assumes 1280x720 and the script keeps the first "
                             "video_length poses (control_camera_video[:video_length])",
                             "aigc-apps/VideoX-Fun process_pose_file: CameraCtrl's ray_condition"),
    "motionctrl": _re10k("motionctrl", 16, "16 frames (VideoCrafter), 14 (SVD); 3x4 world-to-camera "
                         "per frame", "TencentARC/MotionCtrl camera_poses json (RT, 12 numbers)"),
    "cami2v": _re10k("cami2v", 16, "16 frames (DynamiCrafter base; not checked in CamI2V's loader); "
                     "RealEstate10K .txt", "ZGCTroy/CamI2V"),
    "ac3d": _re10k("ac3d", 49, "49 frames (CogVideoX base; AC3D's code is not in the searched index); "
                   "RealEstate10K .txt",
                   "snap-research/ac3d (rescales RealEstate10K so near depth is about 1 during training)"),
    "recammaster": Gauge(
        "recammaster", RECAMMASTER_DEPTH, "metres (the file holds centimetres; ReCamMaster divides by 100)",
        "published",
        "KwaiVGI/ReCamMaster README (MultiCamVideo dataset): cameras start 3, 5, 7 or 10 m from the subject "
        "(gauge: their geometric mean, 5.69 m); translations of 1/4 to 1x that distance over 81 frames, half "
        "of them at variable speed",
        (0.25 / 80 / 4, 1.0 / 80 * 4), (0.25, 1.0), 81,
        "exactly 81 frames; training reads every 4th pose (range(81)[::4], 21 poses), relative to frame 0, "
        "c2w[:, [1, 2, 0, 3]], column 1 negated, / 100"),
    "gen3c": Gauge(
        "gen3c", 1.0, "units of the start frame's depth scale (depth.npz is written in the same units)",
        "published",
        "nv-tlabs/GEN3C camera_utils.generate_camera_trajectory: offsets = movement_distance (default 0.3) "
        "x the centre depth of the first frame over the clip",
        (0.05 / 120 / 2, 1.0 / 120 * 2), (0.05, 1.0), 121,
        "120k+1 frames (121 by default); absolute world-to-camera with pixel K"),
    "uni3c": Gauge(
        "uni3c", 1.0, "units of the start frame's depth scale",
        "published",
        "ewrfcas/Uni3C: camera offsets of +-0.5 x the median foreground depth (Depth-Pro, metric)",
        (0.05 / 80 / 2, 1.0 / 80 * 2), (0.05, 1.0), 81,
        "4n+1 frames (81 by default); Plucker channels [d, o x d]"),
}

# Export formats -> the generator whose gauge they are written in (None: scene units).
FORMAT_GENERATOR = {"re10k": "cameractrl", "motionctrl": "motionctrl", "recammaster": "recammaster",
                    "gen3c": "gen3c", "nerf": None, "colmap": None, "parascale": None}


# Frame counts each generator's own code takes (checked in their loaders, see docs/gauge.md).
def _4n1(n: int) -> bool:
    return n >= 5 and (n - 1) % 4 == 0


FRAME_COUNTS = {
    "cameractrl": (lambda n: n in (16, 14, 25), "16 (AnimateDiff), 14 or 25 (SVD)"),
    "motionctrl": (lambda n: n in (16, 14), "16 (VideoCrafter) or 14 (SVD)"),
    "wan-fun-camera": (_4n1, "4n+1 (81 by default); VideoX-Fun keeps the first video_length poses"),
    "cami2v": (lambda n: n == 16, "16"),
    "ac3d": (lambda n: n == 49, "49"),
    "recammaster": (lambda n: n == 81, "exactly 81 (every 4th pose used)"),
    "gen3c": (lambda n: n >= 121 and (n - 1) % 120 == 0, "120k+1 (121, 241, ...)"),
    "uni3c": (_4n1, "4n+1 (81 by default)"),
}


def frame_count_problem(generator: str, n: int, frames_option: str = "--frames") -> Optional[str]:
    """None when `generator` takes n frames, else a message saying what it takes.
    frames_option names the setting that resamples (the CLI's --frames, Blender's Frames)."""
    ok, text = FRAME_COUNTS[gauge_of(generator).generator]
    if ok(int(n)):
        return None
    return f"{generator} takes {text} frames, this move has {n}: resample it ({frames_option}) or use the bridge"


def gauge_of(generator: str) -> Gauge:
    try:
        return GAUGES[generator]
    except KeyError:
        raise GaugeError(f"unknown generator {generator!r}; the gauge table knows {', '.join(GAUGES)}") from None


# ---------------------------------------------------------------------------
# Scene depth scale and the factor

def move_direction(c2w: np.ndarray) -> Optional[np.ndarray]:
    """Unit direction, in the start camera's frame, of the first step that translates;
    None for a move without translation."""
    c2w = np.asarray(c2w, float)
    c = c2w[:, :3, 3]
    scale = max(1.0, float(np.abs(c).max()))
    for t in range(1, len(c2w)):
        step = c[t] - c[t - 1]
        n = float(np.linalg.norm(step))
        if n > 1e-12 * scale:
            return c2w[0, :3, :3].T @ step / n
    return None


def depth_scale(Z: np.ndarray, K_grid: np.ndarray, direction: Optional[np.ndarray],
                estimator: str = DEPTH_ESTIMATOR) -> float:
    """The scene's depth scale seen from one pose: 1 / (Pi per unit translation along
    `direction`) over planar depth Z (h, w) on a grid with intrinsics K_grid (+inf =
    background). Same units as Z. Raises GaugeError when only background is seen."""
    Z = np.asarray(Z, float)
    xy = normalized_grid(K_grid, Z.shape[1], Z.shape[0]) if estimator == "flow" else None
    d = np.array([1.0, 0.0, 0.0]) if direction is None else np.asarray(direction, float)
    g = parallax_per_unit(Z, d, estimator, xy)
    if not (g > 0 and math.isfinite(g)):
        raise GaugeError("the start frame sees only background (no finite depth): the scene has no depth "
                         "scale to express the move in; aim the camera at the scene")
    return 1.0 / g


# --speed multiplies a calibrated move: a millionth to a million times it (beyond, the
# translation written would overflow or vanish). A depth scale is a distance in scene
# units, bounded like every coordinate (core.formats.validate.MAX_MAGNITUDE). The bridge
# carries the same limits.
MIN_SPEED, MAX_SPEED = 1e-6, 1e6
MIN_DEPTH_SCALE, MAX_DEPTH_SCALE = 1e-9, 1e9


def speed_problem(speed) -> Optional[str]:
    """Why `speed` cannot multiply a move (None: it can)."""
    try:
        v = float(speed)
    except (TypeError, ValueError, OverflowError):
        return f"expected a positive multiplier, got {speed!r}"
    if not (math.isfinite(v) and v > 0):
        return f"expected a positive multiplier (1 = the calibrated motion), got {v:g}"
    if not MIN_SPEED <= v <= MAX_SPEED:
        return (f"{v:g} is outside {MIN_SPEED:g} to {MAX_SPEED:g} (a multiplier on the calibrated translation; "
                "beyond, the translation written would overflow or vanish)")
    return None


def export_generator(fmt: str, generator: Optional[str] = "auto", speed: float = 1.0) -> Optional[str]:
    """The generator whose gauge an export in `fmt` is written in ("auto": the format's,
    FORMAT_GENERATOR; None or "scene": scene units, returned as None), with the speed
    checked against it: all before the scene is opened. Raises GaugeError."""
    if generator == "auto":
        generator = FORMAT_GENERATOR.get(fmt)
    if generator == "scene":
        generator = None
    if generator is not None:
        gauge_of(generator)
    problem = speed_problem(speed)
    if problem:
        raise GaugeError(f"speed {problem}")
    if generator is None and float(speed) != 1.0:
        raise GaugeError("speed multiplies the translation in a generator's gauge; this export writes scene "
                         "units (pick a generator, or use the bridge's --speed)")
    return generator


def gauge_factor(generator: str, scene_depth: float, speed: float = 1.0) -> float:
    """Multiplier from scene translation to the generator's units: D_gen / D_scene * speed."""
    if not (scene_depth > 0 and math.isfinite(scene_depth)):
        raise GaugeError(f"scene depth scale must be a positive number, got {scene_depth!r}")
    if not MIN_DEPTH_SCALE <= scene_depth <= MAX_DEPTH_SCALE:
        raise GaugeError(f"scene depth scale {scene_depth:g} is outside {MIN_DEPTH_SCALE:g} to {MAX_DEPTH_SCALE:g} "
                         "scene units")
    problem = speed_problem(speed)
    if problem:
        raise GaugeError(f"speed {problem}")
    return gauge_of(generator).depth / float(scene_depth) * float(speed)


def scale_translation(c2w: np.ndarray, factor: float) -> np.ndarray:
    """Poses with camera centres multiplied by factor (the world scaled about its origin:
    relative motion scales by factor, rotations unchanged)."""
    out = np.array(c2w, float, copy=True)
    out[..., :3, 3] *= factor
    return out


def record(generator: Optional[str], scene_depth: Optional[float], factor: float, speed: float = 1.0,
           **extra) -> dict:
    """The gauge block written into manifests and the ParaScale json."""
    g = GAUGES.get(generator) if generator else None
    out = {"generator": generator, "scene_depth_scale": scene_depth,
           "depth_estimator": DEPTH_ESTIMATOR,
           "generator_depth_scale": None if g is None else g.depth,
           "generator_units": "scene units" if g is None else g.units,
           "speed": speed, "factor": factor,
           "rule": "translation x generator_depth_scale / scene_depth_scale x speed"}
    if g is not None:
        out["source"] = g.source
    out.update(extra)
    return out


# ---------------------------------------------------------------------------
# Range check

def range_for(generator: str, frames: int) -> tuple:
    """(pi_step (lo, hi), path (lo, hi)) at `frames` frames: the total path range holds
    at any frame count; the per-step range scales as the same path over frames-1 steps."""
    g = gauge_of(generator)
    k = (g.frames - 1) / max(1, int(frames) - 1)
    return (g.pi_step[0] * k, g.pi_step[1] * k), tuple(g.path)


def move_in_range(generator: str, c2w: np.ndarray, frame_labels: Optional[Sequence] = None) -> dict:
    """Where a move, already written in `generator`'s gauge, sits in the range its
    training data covers. Per step Pi = |step| / D_generator; steps without translation
    are never out of range. Returns pi_step, pi_step_range, path, path_range,
    position (0 = the slowest training path, 1 = the fastest, log scale, may leave
    0..1; None for a move without translation), the labels of too-fast and too-slow frames and warning messages."""
    c2w = np.asarray(c2w, float)
    return steps_in_range(generator, np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1), frame_labels)


def steps_in_range(generator: str, step_lengths, frame_labels: Optional[Sequence] = None) -> dict:
    """move_in_range from the lengths of the move's steps (in the generator's gauge), for
    a move of len(step_lengths) + 1 poses."""
    g = gauge_of(generator)
    step_lengths = np.asarray(step_lengths, float).ravel()
    n = len(step_lengths) + 1
    labels = list(frame_labels) if frame_labels is not None else list(range(n))
    if len(labels) != n:
        raise GaugeError(f"{len(labels)} frame labels for {n} poses")
    pi = step_lengths / g.depth
    (lo, hi), (plo, phi) = range_for(generator, n)
    moving = pi > 1e-12
    fast = [labels[t + 1] for t in np.flatnonzero(pi > hi)]
    slow = [labels[t + 1] for t in np.flatnonzero(moving & (pi < lo))]
    path = float(pi.sum())
    position = (math.log(path / plo) / math.log(phi / plo)) if path > 0 else None  # None: no translation
    warnings = []
    if fast:
        warnings.append(f"{generator}: frames {_frames_text(fast)} move faster than its training data "
                        f"(Pi per step up to {pi.max():.3g}, training range {lo:.3g}..{hi:.3g}); "
                        "the generator may ignore or distort the move")
    if slow:
        warnings.append(f"{generator}: frames {_frames_text(slow)} move slower than its training data "
                        f"(Pi per step down to {pi[moving].min():.3g}, training range {lo:.3g}..{hi:.3g})")
    if path > phi:
        warnings.append(f"{generator}: the whole move travels {path:.3g} depths, more than its training "
                        f"data ({plo:.3g}..{phi:.3g}) over frames {labels[0]}..{labels[-1]}")
    elif 0 < path < plo:
        warnings.append(f"{generator}: the whole move travels {path:.3g} depths, less than its training "
                        f"data ({plo:.3g}..{phi:.3g}) over frames {labels[0]}..{labels[-1]}")
    return {"generator": generator, "pi_step": pi.tolist(), "pi_step_range": [lo, hi], "path": path,
            "path_range": [plo, phi], "position": position, "too_fast": fast, "too_slow": slow,
            "warnings": warnings}


def _frames_text(frames: list) -> str:
    """'3-5, 9' from [3, 4, 5, 9] (integers), else a comma list."""
    if not all(isinstance(f, (int, np.integer)) for f in frames):
        return ", ".join(str(f) for f in frames)
    parts, start, prev = [], frames[0], frames[0]
    for f in list(frames[1:]) + [None]:
        if f is not None and f == prev + 1:
            prev = f
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if f is not None:
            start = prev = f
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# Measuring the RealEstate10K gauge

def clip_depth(pi, translation) -> tuple[np.ndarray, float]:
    """(D_t, D_clip) of one clip: D_t = |d_t| / Pi_t over the steps where both are
    positive, D_clip their median (nan when no step moves): the clip's effective depth
    in its own pose units, the statistic the RealEstate10K gauge is made of."""
    pi = np.asarray(pi, float)
    d = np.asarray(translation, float)
    ok = np.isfinite(pi) & np.isfinite(d) & (pi > 0) & (d > 0)
    D = d[ok] / pi[ok]
    return D, (float(np.median(D)) if len(D) else float("nan"))


def measure_clip(pose_file, video) -> dict:
    """One RealEstate10K clip: Pi per step from its video (the project's measure path:
    readers.read_track at the video's size, reference.pi_from_video), |d_t| from its
    track, D_t = |d_t| / Pi_t."""
    from .formats.readers import read_track
    from .reference import pi_from_video, read_frames

    frames, _ = read_frames(video)
    track = read_track(pose_file, size=(frames[0].shape[1], frames[0].shape[0]))
    ref = pi_from_video(track, video, frames=frames)
    d = np.linalg.norm(np.diff(track.c2w[:, :3, 3], axis=0), axis=1)
    pi = np.asarray(ref.pi, float)
    D, D_clip = clip_depth(pi, d)
    return {"clip": Path(pose_file).stem, "frames": len(track), "pi": pi.tolist(), "translation": d.tolist(),
            "depth_per_step": D.tolist(), "depth_median": D_clip,
            "pi_gauge": (d / D_clip).tolist(), "path": float(d.sum() / D_clip)}


def measure_re10k(folder) -> dict:
    """The RealEstate10K gauge from a folder with assets/pose_files/<id>.txt and
    assets/reference_videos/<id>.mp4 (CameraCtrl's layout). The statistic: the median
    over clips of each clip's median D_t."""
    root = Path(folder)
    poses = sorted((root / "assets" / "pose_files").glob("*.txt"))
    if not poses:
        raise GaugeError(f"{root}: no assets/pose_files/*.txt (expected CameraCtrl's RealEstate10K layout)")
    clips = []
    for p in poses:
        video = root / "assets" / "reference_videos" / (p.stem + ".mp4")
        if not video.is_file():
            raise GaugeError(f"{p}: no video {video}")
        clips.append(measure_clip(p, video))
    medians = np.array([c["depth_median"] for c in clips])
    steps_D = np.concatenate([c["depth_per_step"] for c in clips])
    pi_g = np.concatenate([c["pi_gauge"] for c in clips])
    paths = np.array([c["path"] for c in clips])
    pct = lambda a: {f"p{q}": float(np.percentile(a, q)) for q in (0, 10, 25, 50, 75, 90, 100)}
    return {"clips": clips, "statistic": "median over clips of the clip's median |d_t| / Pi_t",
            "gauge": float(np.median(medians)),
            "clip_medians": pct(medians), "steps": pct(steps_D),
            "geometric_mean_of_clip_medians": float(np.exp(np.log(medians).mean())),
            "pi_step_range": [float(pi_g.min()), float(pi_g.max())],
            "path_range": [float(paths.min()), float(paths.max())], "n_clips": len(clips),
            "n_steps": int(len(steps_D))}


def _main(argv=None) -> int:
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m parascale.core.gauge",
                                 description="Measure the RealEstate10K gauge (effective depth in pose units)")
    ap.add_argument("folder", help="cameractrl_realestate10k folder (assets/pose_files, assets/reference_videos)")
    ap.add_argument("--json", help="write every figure to this file")
    args = ap.parse_args(argv)
    m = measure_re10k(args.folder)
    print(f"{'clip':18s} {'D median':>9s} {'D min':>7s} {'D max':>7s} {'path/D':>7s}")
    for c in m["clips"]:
        D = np.array(c["depth_per_step"])
        print(f"{c['clip']:18s} {c['depth_median']:9.3f} {D.min():7.3f} {D.max():7.3f} {c['path']:7.3f}")
    cm, st = m["clip_medians"], m["steps"]
    print(f"gauge (median of clip medians): {m['gauge']:.3f} RealEstate10K units "
          f"(clip medians {cm['p0']:.3f}..{cm['p100']:.3f}, quartiles {cm['p25']:.3f}..{cm['p75']:.3f}; "
          f"geometric mean {m['geometric_mean_of_clip_medians']:.3f})")
    print(f"all {m['n_steps']} steps: median {st['p50']:.3f}, p10..p90 {st['p10']:.3f}..{st['p90']:.3f}")
    print(f"Pi per step in the gauge: {m['pi_step_range'][0]:.4f}..{m['pi_step_range'][1]:.4f}; "
          f"path per clip: {m['path_range'][0]:.3f}..{m['path_range'][1]:.3f} depths")
    if args.json:
        from .formats.writers import atomic_write_text

        atomic_write_text(args.json, json.dumps(m, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
