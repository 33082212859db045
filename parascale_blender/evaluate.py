"""Closed-loop evaluation: render a camera, measure the Pi it realises by optical
flow exactly as a reference video is measured (docs/estimators.md, docs/metrics.md), and
score it against the reference. The depth that drove the calibration is not used."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..core.cameras import steps
from ..core.clock import SNAP, whole_frames
from ..core.metrics import cami2v_errors, pce, trajectory_errors
from ..core.reference import pi_from_video
from ..core.cameras import Track
from .animation import camera_intrinsics, scene_fps
from .render import FrameRenderer, render_size_for

# Long side of the closed-loop renders. Measured against ray-cast geometry on a fully
# covered real scene (docs/real-scenes.md): flow's own error 0.12/0.25 at 256 px,
# 0.08/0.18 at 384, 0.06/0.16 at 512 (two clips): 384 is the knee.
EVAL_LONG_SIDE = 384
MISS_THRESHOLD = 0.2  # |ln(realised / reference)| above this is reported as a miss
DOLLY_SHARE = 0.5     # a step whose translation is mostly along the view axis
BLANK_STD = 2.0       # grey-level spread (0..255) below which a render shows nothing to track


class FlowMeasurement:
    """Render `camera` at `frames` one frame per step() and measure its Pi per step from
    the images (finish() -> (ReferencePi with source 'video', the camera's Track)).
    Rendering happens in a temporary scene; cancel() or an error leaves nothing."""

    def __init__(self, scene, camera, frames, folder=None, *, long_side: int = EVAL_LONG_SIDE, samples: int = 4):
        self.scene, self.camera = scene, camera
        self.frames = [float(f) for f in frames]  # sub-frames allowed: a reference's own sample times
        self._tmpdir = None
        if folder is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="parascale_eval_")
            folder = self._tmpdir.name
        self.folder = Path(folder)
        width, height = render_size_for(scene, long_side)
        self._renderer = FrameRenderer(scene, camera, self.folder, width, height, samples=samples).__enter__()
        self.done = 0

    @property
    def n_steps(self) -> int:
        return len(self.frames)

    def step(self) -> bool:
        try:
            self._renderer.render(self.frames[self.done], index=self.done)
        except BaseException:
            self.cancel()
            raise
        self.done += 1
        return self.done == len(self.frames)

    def finish(self):
        while self.done < len(self.frames):
            self.step()
        self._renderer.close()
        try:
            self._check_not_blank()
            return pi_from_video(self.track(), self.folder), self.track()
        finally:
            self.cancel()

    def _check_not_blank(self):
        """Optical flow on uniform images measures noise, not motion: refuse a render that
        shows nothing at its start, middle and end (an unlit scene). A move that leaves the
        scene part-way is the move's own doing and is measured."""
        import cv2

        spreads = []
        for i in sorted({0, len(self.frames) // 2, len(self.frames) - 1}):
            image = cv2.imread(str(self.folder / f"frame_{i:05d}.png"), cv2.IMREAD_GRAYSCALE)
            spreads.append(float(image.std()) if image is not None else 0.0)
        if max(spreads) < BLANK_STD:
            raise ValueError(f"the renders of {self.camera.name!r} are blank (grey level spread at most "
                             f"{max(spreads):.2f}): the scene has no lights or world to show it, so optical "
                             "flow has nothing to measure; light it, or evaluate from depth")

    def track(self) -> Track:
        """The rendered camera at the rendered frames (poses, per-frame K, times)."""
        from .animation import evaluated_poses
        from .sources import _intrinsics_at

        if getattr(self, "_track", None) is None:
            frames = np.array(self.frames)
            c2w = evaluated_poses(self.camera, self.scene, frames)
            K, W, H = camera_intrinsics(self.camera, self.scene)
            Ks = _intrinsics_at(self.camera, self.scene, frames)
            fps = scene_fps(self.scene)
            self._track = Track(c2w=c2w, K=np.repeat(K[None], len(frames), 0) if Ks is None else Ks, width=W,
                                height=H, times=(frames - frames[0]) / fps,
                                names=[f"frame_{i:05d}" for i in range(len(frames))],
                                source=f"{self.camera.name} rendered", meta={"timed": True})
        return self._track

    def cancel(self):
        self._renderer.close()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None


def realised_pi_by_flow(scene, camera, frames, folder=None, *, long_side: int = EVAL_LONG_SIDE, samples: int = 4,
                        progress=None):
    """Render `camera` at `frames` and measure its Pi per step from the images.
    Returns (ReferencePi with source 'video', the camera's Track)."""
    run = FlowMeasurement(scene, camera, frames, folder, long_side=long_side, samples=samples)
    while not run.step():
        if progress:
            progress(run.done, run.n_steps)
    return run.finish()


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


def _keyed_frames(camera, scene=None) -> list:
    from .animation import animated_frame_range

    frame_range = animated_frame_range(camera, scene)
    if frame_range is None:
        raise ValueError(f"camera {camera.name!r} has no animation to evaluate")
    return list(range(frame_range[0], frame_range[1] + 1))


class ClosedLoop:
    """Render one calibrated camera, measure its Pi by flow, and score it against a
    reference Pi per step (and the reference poses, when given, for TransErr / RotErr).
    Stepwise (one render per step()) so the Evaluate operator can show progress and
    cancel; finish() returns the scores."""

    def __init__(self, scene, camera, reference_pi, ref_c2w=None, *, method: str = "",
                 long_side: int = EVAL_LONG_SIDE, samples: int = 4, folder=None, warnings=(), frames=None):
        self.camera, self.method, self.warnings = camera, method, list(warnings)
        self.frames = _keyed_frames(camera, scene) if frames is None else [float(f) for f in frames]
        self.reference_pi = np.asarray(reference_pi, float)
        if len(self.reference_pi) != len(self.frames) - 1:
            raise ValueError(f"camera {camera.name!r} has {len(self.frames) - 1} steps (frames {self.frames[0]}.."
                             f"{self.frames[-1]}) but the reference has {len(self.reference_pi)}")
        self.ref_c2w = ref_c2w
        self.measurement = FlowMeasurement(scene, camera, self.frames, folder, long_side=long_side,
                                           samples=samples)

    @property
    def n_steps(self) -> int:
        return self.measurement.n_steps

    @property
    def steps_done(self) -> int:
        return self.measurement.done

    def step(self) -> bool:
        return self.measurement.step()

    def cancel(self):
        self.measurement.cancel()

    def finish(self) -> dict:
        realised, track = self.measurement.finish()
        ref_c2w = track.c2w if self.ref_c2w is None else self.ref_c2w
        out = {"camera": self.camera.name, "frames": self.frames, "measured_by": "optical_flow",
               "pi_ref": self.reference_pi.tolist(), "pi_realised": realised.pi.tolist()}
        out.update(score(realised.pi, self.reference_pi, track.c2w, ref_c2w))
        ref_d, _ = steps(ref_c2w)
        per_step = np.array([np.nan if v is None else v for v in out["pce_per_step"]])
        out["misses"] = explain_misses(self.method or str(self.camera.get("parascale_method", "")), per_step,
                                       realised.pi, self.reference_pi, ref_d)
        out["warnings"] = self.warnings
        return out


def closed_loop(scene, camera, reference_pi, ref_c2w=None, *, method: str = "", long_side: int = EVAL_LONG_SIDE,
                samples: int = 4, folder=None, progress=None) -> dict:
    """ClosedLoop run to the end."""
    run = ClosedLoop(scene, camera, reference_pi, ref_c2w, method=method, long_side=long_side,
                     samples=samples, folder=folder)
    while not run.step():
        if progress:
            progress(run.steps_done, run.n_steps)
    return run.finish()


def closed_loop_for(scene, camera, reference=None, *, long_side: int = EVAL_LONG_SIDE, samples: int = 4,
                    folder=None) -> ClosedLoop:
    """A ClosedLoop of a camera against a reference move (a pipeline.ReferenceMotion
    mapped onto the camera's frames), or, without one, against the pi_ref curve a
    ParaScale result carries."""
    from .animation import property_curve

    frames = np.array(_keyed_frames(camera, scene))
    warnings = []
    ref_c2w = None
    sample_frames = None
    if reference is not None:
        fps = scene_fps(scene)
        reference = reference.at_fps(fps).on_clock(fps)  # times within 1e-3 of a frame are on it
        if frames[-1] - frames[0] > whole_frames(reference.duration, fps):
            raise ValueError(f"the reference {reference.label!r} lasts {reference.duration:.3f} s but camera "
                             f"{camera.name!r} is keyed over {(frames[-1] - frames[0]) / fps:.3f} s "
                             f"(frames {frames[0]}..{frames[-1]})")
        native = (reference.times - reference.times[0]) * fps
        n = int(np.searchsorted(native, frames[-1] - frames[0] + SNAP, side="right"))
        if n >= 2 and np.median(np.diff(native[:n])) >= 1.0 - 1e-6:
            # Measure the same steps the reference was measured on: render at its own sample
            # times (sub-frames), so each flow step spans what a video step spans. Per scene
            # frame, a slow track's steps shrink to sub-pixel motion that flow cannot resolve.
            sample_frames = frames[0] + native[:n]
            reference_pi, ref_c2w, estimator = reference.pi[:n - 1], reference.c2w[:n], reference.estimator
        else:
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
    return ClosedLoop(scene, camera, reference_pi, ref_c2w, long_side=long_side, samples=samples,
                      folder=folder, warnings=warnings, frames=sample_frames)


def evaluate_camera(scene, camera, reference=None, *, long_side: int = EVAL_LONG_SIDE, samples: int = 4,
                    folder=None, progress=None) -> dict:
    """Closed-loop evaluation (closed_loop_for) run to the end. Used by `parascale evaluate`."""
    run = closed_loop_for(scene, camera, reference, long_side=long_side, samples=samples, folder=folder)
    while not run.step():
        if progress:
            progress(run.steps_done, run.n_steps)
    return run.finish()
