"""Closed-loop evaluation: render a camera, measure the Pi it realises by optical flow, and
score it against the reference (docs/metrics.md). The depth that drove the calibration is
not used.

One pixel rule: the flow is read over the pixels that see geometry (the renders' alpha),
as the calibration counts them. Each step reports the share of those pixels whose flow
can be trusted (core.flow_trust: forward-backward consistency, texture above the render's
noise, no occlusion, motion the flow resolves); when too little is trusted the step is not
measured, and when too few steps are, the figure is withheld ("not measurable by optical
flow here") and the depth evaluation is the one to read, instead of a number that blames
the steps. The whole-frame figure (every pixel, background included) is kept as a
secondary, labelled line.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..core.cameras import Track, steps
from ..core.clock import SNAP, whole_frames
from ..core.flow_trust import DEFAULT_TRUST, TrustSettings, measure_steps, summary
from ..core.metrics import cami2v_errors, pce, trajectory_errors
from ..core.parallax import estimator_advice, render_evaluation_advice
from .animation import camera_intrinsics, scene_fps
from .render import FrameRenderer, render_size_for

# Long side of the closed-loop renders. Measured against ray-cast geometry on a fully
# covered real scene (docs/real-scenes.md): flow's own error 0.12/0.25 at 256 px,
# 0.08/0.18 at 384, 0.06/0.16 at 512 (two clips): 384 is the knee.
EVAL_LONG_SIDE = 384
# Samples and denoising of the measurement renders (docs/metrics.md, "What helps the flow"):
# a noisy render is a still pattern that drags the flow towards zero and hides real texture
# under the noise threshold; OpenImageDenoise at its fast settings removes it for about a
# third of a 4-sample render's time, where 16 samples without it cost twice as much and
# still leave most of the pixels below the noise.
EVAL_SAMPLES = 4
EVAL_DENOISE = True
MISS_THRESHOLD = 0.2  # |ln(realised / reference)| above this is reported as a miss
DOLLY_SHARE = 0.5     # a step whose translation is mostly along the view axis
BLANK_STD = 2.0       # grey-level spread (0..255) below which a render shows nothing to track
BACKGROUND_GREY = 127.5  # what empty background is composited over before the flow
NOT_MEASURABLE = "not measurable by optical flow here ({trusted:.0f}% of pixels trusted)"
DEPTH_POINTER = ("read the depth evaluation instead (the panel's Evaluate shows it beside; `parascale evaluate` "
                 "prints it beside; `parascale transfer` prints it as its realised PCE)")


def not_measurable_message(trusted_share: float) -> str:
    """The sentence for a render evaluation that cannot measure (share of covered pixels trusted)."""
    return NOT_MEASURABLE.format(trusted=100 * trusted_share) + "; " + DEPTH_POINTER


def load_render(path) -> tuple:
    """(grey uint8 composited over BACKGROUND_GREY, covered bool mask, BGR uint8 composite)
    of a measurement render (RGBA: alpha = sees geometry; RGB: every pixel covered)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: cannot read this render")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        bgr = image[..., :3].astype(np.float32) * alpha + BACKGROUND_GREY * (1.0 - alpha)
        bgr = np.clip(np.round(bgr), 0, 255).astype(np.uint8)
        covered = alpha[..., 0] > 0.5
    else:
        bgr = image[..., :3]
        covered = np.ones(image.shape[:2], bool)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), covered, bgr


@dataclass
class FlowReading:
    """The realised Pi of a rendered move by flow over the covered pixels: pi per step (nan where not
    measurable), the per-step readings (core.flow_trust.StepReading) and their summary."""

    pi: np.ndarray
    steps: list
    summary: dict
    track: Track
    images: list = field(default_factory=list)  # BGR composites, when kept for a preview

    @property
    def measurable(self) -> bool:
        return bool(self.summary["measurable"])

    def per_step(self, key: str) -> list:
        return [getattr(r, key) for r in self.steps]


class FlowMeasurement:
    """Render `camera` at `frames` one frame per step() and measure its Pi per step from
    the images (finish() -> FlowReading). Renders are RGBA (the world's background
    transparent: alpha is the coverage) with `samples` and, by default, OpenImageDenoise.
    Rendering happens in a temporary scene; cancel() or an error leaves nothing."""

    def __init__(self, scene, camera, frames, folder=None, *, long_side: int = EVAL_LONG_SIDE,
                 samples: int = EVAL_SAMPLES, denoise: bool = EVAL_DENOISE, trust: TrustSettings = DEFAULT_TRUST,
                 keep_images: bool = False):
        self.scene, self.camera = scene, camera
        self.frames = [float(f) for f in frames]  # sub-frames allowed: a reference's own sample times
        self.trust, self.keep_images = trust, keep_images
        self.samples, self.denoise = int(samples), bool(denoise)
        self._tmpdir = None
        if folder is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="parascale_eval_")
            folder = self._tmpdir.name
        self.folder = Path(folder)
        width, height = render_size_for(scene, long_side)
        self.size = (width, height)
        self._renderer = FrameRenderer(scene, camera, self.folder, width, height, samples=samples,
                                       transparent=True, denoise=denoise).__enter__()
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

    def path(self, i: int) -> Path:
        return self.folder / f"frame_{i:05d}.png"

    def finish(self) -> FlowReading:
        while self.done < len(self.frames):
            self.step()
        self._renderer.close()
        try:
            grey, covered, images = [], [], []
            for i in range(len(self.frames)):
                g, c, bgr = load_render(self.path(i))
                grey.append(g)
                covered.append(c)
                if self.keep_images:
                    images.append(bgr)
            self._check_not_blank(grey, covered)
            track = self.track()
            h, w = grey[0].shape
            from ..core.parallax import scale_intrinsics
            K = np.stack([scale_intrinsics(k, track.width, track.height, w, h) for k in track.K])
            readings = measure_steps(grey, K, track.rotations, covered, self.trust)
            pi = np.array([r.pi for r in readings], float)
            info = summary(readings, self.trust)
            info.update(samples=self.samples, denoise=self.denoise, size=[w, h])
            return FlowReading(pi, readings, info, track, images)
        finally:
            self.cancel()

    def _check_not_blank(self, grey, covered):
        """Optical flow on uniform images measures noise, not motion: refuse renders that
        show nothing at their start, middle and end (an unlit scene: the geometry renders
        black; or no geometry in view at all). A move that leaves the scene part-way is the
        move's own doing and is measured (its steps are not measurable)."""
        spreads = []
        for i in sorted({0, len(grey) // 2, len(grey) - 1}):
            pixels = grey[i][covered[i]]
            spreads.append(float(pixels.std()) if pixels.size > 1 else 0.0)
        if max(spreads) < BLANK_STD:
            raise ValueError(f"the renders of {self.camera.name!r} are blank (grey level spread at most "
                             f"{max(spreads):.2f} over what they show): the scene has no lights or world to show "
                             "it, or nothing in view, so optical flow has nothing to measure; light it, or "
                             "evaluate from depth")

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


def realised_pi_by_flow(scene, camera, frames, folder=None, *, long_side: int = EVAL_LONG_SIDE,
                        samples: int = EVAL_SAMPLES, denoise: bool = EVAL_DENOISE, progress=None) -> FlowReading:
    """Render `camera` at `frames` and measure its Pi per step from the images (FlowReading)."""
    run = FlowMeasurement(scene, camera, frames, folder, long_side=long_side, samples=samples, denoise=denoise)
    while not run.step():
        if progress:
            progress(run.done, run.n_steps)
    return run.finish()


def explain_misses(method: str, per_step: np.ndarray, realised: np.ndarray, reference: np.ndarray,
                   ref_d: np.ndarray, scale_ratio: Optional[float] = None, trusted=None) -> list:
    """Which measured steps miss (|ln ratio| > MISS_THRESHOLD) and the likely reason.
    Steps the flow could not measure are not misses (evaluate reports them apart)."""
    misses = []
    realised = np.array([np.nan if v is None else v for v in realised], float)
    per_step = np.array([np.nan if v is None else v for v in per_step], float)
    dolly = np.abs(ref_d[:, 2]) / np.maximum(np.linalg.norm(ref_d, axis=1), 1e-300)
    for t in np.flatnonzero(np.nan_to_num(per_step, nan=np.inf) > MISS_THRESHOLD):
        if not np.isfinite(realised[t]):
            continue  # not measured: reported as such, never blamed on the step
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
            share = f" ({100 * trusted[t]:.0f}% of its pixels trusted)" if trusted is not None else ""
            why = (f"the flow{share} differs from the reference here; the depth evaluation says "
                   "whether the move or the flow is off")
        misses.append({"step": int(t + 1), "ratio": float(ratio), "reason": why})
    return misses


def _finite(value):
    return float(value) if value is not None and np.isfinite(value) else None


def score(realised_pi, reference_pi, c2w, ref_c2w) -> dict:
    """PCE (mean, p90, per step; over the steps measured), TransErr and RotErr (CameraCtrl's)
    and CamI2V's RotErr, TransErr and CamMC (cami2v_*) of a realised move."""
    p = pce(realised_pi, reference_pi)
    out = {"pce": _finite(p["mean"]), "pce_p90": _finite(p["p90"]),
           "pce_per_step": [_finite(v) for v in p["per_step"]], "steps_scored": int(p["n"])}
    out.update(trajectory_errors(c2w, ref_c2w))
    out.update(cami2v_errors(c2w, ref_c2w))
    return out


def _keyed_frames(camera, scene=None) -> list:
    from .animation import animated_frame_range

    frame_range = animated_frame_range(camera, scene)
    if frame_range is None:
        raise ValueError(f"camera {camera.name!r} has no animation to evaluate")
    return list(range(frame_range[0], frame_range[1] + 1))


@dataclass
class PreviewRequest:
    """Where to write the side-by-side preview, and the reference video frames that go
    with each rendered sample (video path and one video frame index per sample)."""

    path: str
    video: Optional[str] = None
    video_frames: Optional[Sequence[int]] = None
    fps: float = 24.0


def read_video_frames(video, indices: Sequence[int]) -> list:
    """The frames of a video file or image folder at `indices` (BGR; None past its end)."""
    from ..core.reference import iter_frames

    wanted = {int(i) for i in indices}
    found = {}
    if wanted:
        last = max(wanted)
        for i, img in enumerate(iter_frames(video, gray=False)):
            if i in wanted:
                found[i] = img
            if i >= last:
                break
    return [found.get(int(i)) for i in indices]


class ClosedLoop:
    """Render one calibrated camera, measure its Pi by flow where it can be trusted, and score it against a
    reference Pi per step (and the reference poses, when given, for TransErr / RotErr).
    Stepwise (one render per step()) so the Evaluate operator can show progress and
    cancel; finish() returns the scores."""

    def __init__(self, scene, camera, reference_pi, ref_c2w=None, *, method: str = "",
                 long_side: int = EVAL_LONG_SIDE, samples: int = EVAL_SAMPLES, denoise: bool = EVAL_DENOISE,
                 folder=None, warnings=(), frames=None, preview: Optional[PreviewRequest] = None,
                 advice: Optional[str] = None, estimator: Optional[str] = None):
        self.camera, self.method, self.warnings = camera, method, list(warnings)
        self.scene = scene
        self.frames = _keyed_frames(camera, scene) if frames is None else [float(f) for f in frames]
        self.reference_pi = np.asarray(reference_pi, float)
        if len(self.reference_pi) != len(self.frames) - 1:
            raise ValueError(f"camera {camera.name!r} has {len(self.frames) - 1} steps (frames {self.frames[0]}.."
                             f"{self.frames[-1]}) but the reference has {len(self.reference_pi)}")
        self.ref_c2w = ref_c2w
        self.preview = preview
        self.advice = advice
        self.estimator = estimator or str(camera.get("parascale_estimator", "")) or None
        self.measurement = FlowMeasurement(scene, camera, self.frames, folder, long_side=long_side,
                                           samples=samples, denoise=denoise, keep_images=preview is not None)

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
        reading = self.measurement.finish()
        track = reading.track
        ref_c2w = track.c2w if self.ref_c2w is None else self.ref_c2w
        info = reading.summary
        out = {"camera": self.camera.name, "frames": self.frames, "measured_by": "optical_flow",
               "against_reference": self.ref_c2w is not None,  # TransErr / RotErr mean something
               "rule": ("mean over the pixels that see geometry; a step is measured when at least "
                        f"{100 * DEFAULT_TRUST.min_trusted:.0f}% of them have trusted flow (docs/metrics.md)"),
               "pi_ref": self.reference_pi.tolist(), "pi_realised": [_finite(v) for v in reading.pi],
               "pi_trusted_only": [_finite(v) for v in reading.per_step("pi_trusted")],
               "trusted": [_finite(v) for v in reading.per_step("trusted")],
               "coverage": [_finite(v) for v in reading.per_step("coverage")],
               "used": [_finite(v) for v in reading.per_step("used")],
               "measurable": reading.measurable, "steps_measurable": info["steps_measurable"],
               "trusted_median": info["trusted"], "coverage_median": info["coverage"],
               "used_median": info["used"],
               "render": {"samples": info["samples"], "denoise": info["denoise"], "size": info["size"]},
               "reasons": [r.reasons for r in reading.steps]}
        scored = score(reading.pi, self.reference_pi, track.c2w, ref_c2w)
        if not reading.measurable:
            scored.update(pce=None, pce_p90=None)
        out.update(scored)
        whole = pce(np.array(reading.per_step("pi_frame"), float), self.reference_pi)
        out["whole_frame"] = {
            "pce": _finite(whole["mean"]), "pce_p90": _finite(whole["p90"]),
            "pi": [_finite(v) for v in reading.per_step("pi_frame")],
            "note": "every pixel inside the border, background included: not the rule "
                    "the calibration counts (flow carries an object's motion into empty background)"}
        out["not_measurable"] = None if reading.measurable else not_measurable_message(info["trusted"])
        unmeasured = [t + 1 for t, r in enumerate(reading.steps) if not r.measurable]
        out["unmeasured_steps"] = unmeasured
        ref_d, _ = steps(ref_c2w)
        per_step = np.array([np.nan if v is None else v for v in out["pce_per_step"]])
        out["misses"] = [] if not reading.measurable else explain_misses(
            self.method or str(self.camera.get("parascale_method", "")), per_step, reading.pi,
            self.reference_pi, ref_d, trusted=np.array(reading.per_step("trusted")))
        out["summary"] = render_summary(out)
        out["warnings"] = self.warnings
        out["advice"] = self.advice
        out["render_advice"] = render_evaluation_advice(self.estimator) if self.estimator else None
        if self.preview is not None:
            out["preview"] = self._write_preview(reading)
        return out

    def _write_preview(self, reading: FlowReading) -> dict:
        from ..core.preview import write_preview

        req = self.preview
        refs = None
        if req.video and req.video_frames is not None:
            refs = read_video_frames(req.video, req.video_frames)
        return write_preview(req.path, reading.images, req.fps, self.reference_pi.tolist(),
                             [_finite(v) for v in reading.pi], [_finite(v) for v in reading.per_step("trusted")],
                             references=refs,
                             labels=("reference video" if refs else "reference (no video)",
                                     f"{self.camera.name} (render)"))


def render_summary(out: dict) -> str:
    """One line: what the render figure measures and how much of the frame it used."""
    if out.get("measurable") is False:
        return (f"optical flow on renders: {NOT_MEASURABLE.format(trusted=100 * out['trusted_median'])}; "
                f"{100 * out['coverage_median']:.0f}% of the frame sees geometry")
    return (f"optical flow on renders over the pixels that see geometry ({100 * out['coverage_median']:.0f}% of "
            f"the frame), {100 * out['trusted_median']:.0f}% of them trusted")


def closed_loop(scene, camera, reference_pi, ref_c2w=None, *, method: str = "", long_side: int = EVAL_LONG_SIDE,
                samples: int = EVAL_SAMPLES, denoise: bool = EVAL_DENOISE, folder=None, progress=None) -> dict:
    """ClosedLoop run to the end."""
    run = ClosedLoop(scene, camera, reference_pi, ref_c2w, method=method, long_side=long_side,
                     samples=samples, denoise=denoise, folder=folder)
    while not run.step():
        if progress:
            progress(run.steps_done, run.n_steps)
    return run.finish()


def closed_loop_for(scene, camera, reference=None, *, long_side: int = EVAL_LONG_SIDE, samples: int = EVAL_SAMPLES,
                    denoise: bool = EVAL_DENOISE, folder=None, preview: Optional[str] = None) -> ClosedLoop:
    """A ClosedLoop of a camera against a reference move (a ReferenceMotion mapped onto the
    camera's frames), or, without one, against the pi_ref curve a ParaScale result
    carries. preview: write the side-by-side video there (with the reference's video when
    the reference has one)."""
    from .animation import property_curve

    frames = np.array(_keyed_frames(camera, scene))
    fps = scene_fps(scene)
    warnings = []
    ref_c2w = None
    sample_frames = None
    video, video_frames, clock = None, None, fps
    estimator = str(camera.get("parascale_estimator", "")) or None
    source = camera.get("parascale_pi_source")
    if reference is not None:
        source = reference.source
        reference = reference.at_fps(fps).on_clock(fps)  # times within 1e-3 of a frame are on it
        if frames[-1] - frames[0] > whole_frames(reference.duration, fps):
            raise ValueError(f"the reference {reference.label!r} lasts {reference.duration:.3f} s but camera "
                             f"{camera.name!r} is keyed over {(frames[-1] - frames[0]) / fps:.3f} s "
                             f"(frames {frames[0]}..{frames[-1]})")
        native = (reference.times - reference.times[0]) * fps
        n = int(np.searchsorted(native, frames[-1] - frames[0] + SNAP, side="right"))
        video = reference.video
        if n >= 2 and np.median(np.diff(native[:n])) >= 1.0 - 1e-6:
            # Measure the same steps the reference was measured on: render at its own sample
            # times (sub-frames), so each flow step spans what a video step spans. Per scene
            # frame, a slow track's steps shrink to sub-pixel motion that flow cannot resolve.
            sample_frames = frames[0] + native[:n]
            reference_pi, ref_c2w = reference.pi[:n - 1], reference.c2w[:n]
            video_frames = [reference.video_offset + i for i in range(n)]
            clock = fps / float(np.median(np.diff(native[:n])))
        else:
            mapped = reference.on_times((frames - frames[0]) / fps)
            reference_pi, ref_c2w = mapped.pi, mapped.c2w
            t_ref = reference.times - reference.times[0]
            nearest = np.abs(t_ref[None, :] - ((frames - frames[0]) / fps)[:, None]).argmin(axis=1)
            video_frames = [reference.video_offset + int(i) for i in nearest]
    else:
        curve = property_curve(camera, "pi_ref", frames)
        if curve is None:
            raise ValueError(f"camera {camera.name!r} has no pi_ref curve: give the reference it was calibrated "
                             "from (a track file and its video)")
        reference_pi = curve[1:]
    used = estimator or "harmonic"
    advice_render = render_evaluation_advice(used)
    if advice_render:
        warnings.append(advice_render)
    advice = estimator_advice(str(source)) if source else None
    request = None
    if preview is not None:
        request = PreviewRequest(str(preview), video, video_frames if video else None, clock)
    return ClosedLoop(scene, camera, reference_pi, ref_c2w, long_side=long_side, samples=samples, denoise=denoise,
                      folder=folder, warnings=warnings, frames=sample_frames, preview=request, advice=advice,
                      estimator=used)


def evaluate_camera(scene, camera, reference=None, *, long_side: int = EVAL_LONG_SIDE, samples: int = EVAL_SAMPLES,
                    denoise: bool = EVAL_DENOISE, folder=None, preview=None, progress=None) -> dict:
    """Closed-loop evaluation (closed_loop_for) run to the end. Used by `parascale evaluate`."""
    run = closed_loop_for(scene, camera, reference, long_side=long_side, samples=samples, denoise=denoise,
                          folder=folder, preview=preview)
    while not run.step():
        if progress:
            progress(run.steps_done, run.n_steps)
    return run.finish()


class Evaluations:
    """The Evaluate operator's job: the depth evaluation (always; cheap, ray cast) and, when
    asked, the render evaluation, one step() after another; finish() -> {"depth": ...,
    "render": ... or None}, the two figures the panel shows side by side."""

    def __init__(self, depth_job, render_job=None):
        self.jobs = [depth_job] + ([render_job] if render_job is not None else [])
        self.depth_job, self.render_job = depth_job, render_job
        self._current = 0
        self._done_before = 0

    @property
    def n_steps(self) -> int:
        return sum(j.n_steps for j in self.jobs)

    @property
    def steps_done(self) -> int:
        return self._done_before + (self.jobs[self._current].steps_done if self._current < len(self.jobs) else 0)

    def step(self) -> bool:
        job = self.jobs[self._current]
        if job.step():
            self._done_before += job.n_steps
            self._current += 1
        return self._current == len(self.jobs)

    def cancel(self):
        for job in self.jobs:
            job.cancel()

    def finish(self) -> dict:
        try:
            depth = self.depth_job.finish()
            render = self.render_job.finish() if self.render_job is not None else None
        except BaseException:
            self.cancel()
            raise
        return {"depth": depth, "render": render}
