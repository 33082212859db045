"""Closed-loop evaluation: render a camera, measure the Pi it realises by optical
flow exactly as a reference video is measured (DESIGN sections 4.2 and 6), and
score it against the reference. The depth that drove the calibration is not used."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.cameras import steps
from ..core.metrics import cami2v_errors, pce, trajectory_errors
from ..core.reference import pi_from_video
from .export import camera_track
from .render import render_frames, render_size_for

MISS_THRESHOLD = 0.2  # |ln(realised / reference)| above this is reported as a miss
DOLLY_SHARE = 0.5     # a step whose translation is mostly along the view axis


def realised_pi_by_flow(scene, camera, frames, folder=None, *, long_side: int = 256, samples: int = 4,
                        progress=None):
    """Render `camera` at `frames` and measure its Pi per step from the images.
    Returns (ReferencePi with source 'video', the camera's Track)."""
    frames = [int(f) for f in frames]
    width, height = render_size_for(scene, long_side)
    with tempfile.TemporaryDirectory(prefix="parascale_eval_") as tmp:
        out = Path(folder) if folder is not None else Path(tmp)
        render_frames(scene, camera, frames, out, width, height, samples=samples, progress=progress)
        track = camera_track(scene, camera, (frames[0], frames[-1]))
        realised = pi_from_video(track, out)
    return realised, track


def explain_misses(method: str, per_step: np.ndarray, realised: np.ndarray, reference: np.ndarray,
                   ref_d: np.ndarray, scale_ratio: Optional[float] = None) -> list:
    """Which steps miss (|ln ratio| > MISS_THRESHOLD) and the likely reason."""
    misses = []
    dolly = np.abs(ref_d[:, 2]) / np.maximum(np.linalg.norm(ref_d, axis=1), 1e-300)
    for t in np.flatnonzero(np.nan_to_num(per_step, nan=np.inf) > MISS_THRESHOLD):
        ratio = realised[t] / reference[t] if reference[t] > 0 else float("inf")
        if method == "raw":
            why = "the reference trajectory is copied in its own units"
            if scale_ratio:
                why += f"; the target is {scale_ratio:g}x the reference scene"
        elif method == "global":
            why = ("one scale set at the first frame; the target's depth along the move changes "
                   "differently from the reference's")
        elif method in ("mean", "harmonic") and dolly[t] > DOLLY_SHARE:
            why = (f"dolly step ({dolly[t]:.0%} of the translation along the view axis): {method} weighs "
                   "depth alone, while forward motion moves the image in proportion to the distance "
                   "from the centre; the flow estimator weighs it the way the image does")
        elif method == "mean":
            why = "the mean depth reads the far background too strongly (Jensen's inequality)"
        elif not np.isfinite(per_step[t]):
            why = "no measurable image motion on this step"
        else:
            why = ("optical-flow measurement error (low texture, occlusions or motion leaving the "
                   "image at this step)")
        misses.append({"step": int(t + 1), "ratio": float(ratio), "reason": why})
    return misses


def score(realised_pi, reference_pi, c2w, ref_c2w) -> dict:
    """PCE (mean, p90, per step), TransErr and RotErr (CameraCtrl's) and CamI2V's
    RotErr, TransErr and CamMC (cami2v_*) of a realised move."""
    p = pce(realised_pi, reference_pi)
    out = {"pce": p["mean"], "pce_p90": p["p90"], "pce_per_step": [None if not np.isfinite(v) else float(v)
                                                                   for v in p["per_step"]]}
    out.update(trajectory_errors(c2w, ref_c2w))
    out.update(cami2v_errors(c2w, ref_c2w))
    return out


def closed_loop(scene, camera, reference_pi, ref_c2w=None, *, method: str = "", long_side: int = 256,
                samples: int = 4, folder=None, progress=None) -> dict:
    """Render, measure by flow, and score one calibrated camera against a reference
    Pi per step (and the reference poses, when given, for TransErr / RotErr)."""
    from .animation import animated_frame_range

    frame_range = animated_frame_range(camera)
    if frame_range is None:
        raise ValueError(f"camera {camera.name!r} has no animation to evaluate")
    frames = list(range(frame_range[0], frame_range[1] + 1))
    reference_pi = np.asarray(reference_pi, float)
    if len(reference_pi) != len(frames) - 1:
        raise ValueError(f"camera {camera.name!r} has {len(frames) - 1} steps (frames {frames[0]}..{frames[-1]}) "
                         f"but the reference has {len(reference_pi)}")
    realised, track = realised_pi_by_flow(scene, camera, frames, folder, long_side=long_side,
                                          samples=samples, progress=progress)
    ref_c2w = track.c2w if ref_c2w is None else ref_c2w
    out = {"camera": camera.name, "frames": frames, "measured_by": "optical_flow",
           "pi_ref": reference_pi.tolist(), "pi_realised": realised.pi.tolist()}
    out.update(score(realised.pi, reference_pi, track.c2w, ref_c2w))
    ref_d, _ = steps(ref_c2w)
    per_step = np.array([np.nan if v is None else v for v in out["pce_per_step"]])
    out["misses"] = explain_misses(method or str(camera.get("parascale_method", "")), per_step,
                                   realised.pi, reference_pi, ref_d)
    return out


def evaluate_camera(scene, camera, reference=None, *, long_side: int = 256, samples: int = 4,
                    folder=None, progress=None) -> dict:
    """Closed-loop evaluation of a camera against a reference move (a
    pipeline.ReferenceMotion mapped onto the camera's frames), or, without one,
    against the pi_ref curve a ParaScale result carries. Used by the Evaluate
    operator and `parascale evaluate`."""
    from .animation import animated_frame_range, property_curve

    frame_range = animated_frame_range(camera)
    if frame_range is None:
        raise ValueError(f"camera {camera.name!r} has no animation to evaluate")
    frames = np.arange(frame_range[0], frame_range[1] + 1)
    warnings = []
    ref_c2w = None
    if reference is not None:
        fps = scene.render.fps / scene.render.fps_base
        reference = reference.at_fps(fps)
        needed = (frames[-1] - frames[0]) / fps
        if needed > reference.duration + 1e-6:
            raise ValueError(f"the reference {reference.label!r} lasts {reference.duration:.3f} s but camera "
                             f"{camera.name!r} is keyed over {needed:.3f} s (frames {frames[0]}..{frames[-1]})")
        mapped = reference.on_times((frames - frames[0]) / fps)
        reference_pi, ref_c2w, estimator = mapped.pi, mapped.c2w, reference.estimator
    else:
        curve = property_curve(camera, "pi_ref", frames)
        if curve is None:
            raise ValueError(f"camera {camera.name!r} has no pi_ref curve: give the reference it was calibrated "
                             "from (a track file and its video)")
        reference_pi, estimator = curve[1:], str(camera.get("parascale_estimator", "harmonic"))
    if estimator != "flow":
        warnings.append(f"the reference Pi was read with {estimator!r}; the renders are measured by optical "
                        "flow, which `flow` matches best (a video reference always is)")
    out = closed_loop(scene, camera, reference_pi, ref_c2w, long_side=long_side, samples=samples,
                      folder=folder, progress=progress)
    out["warnings"] = warnings
    return out
