"""The transfer: a reference move calibrated into a target scene step by step, against its
depth; the target camera is never modified, the result is a new camera (result_camera)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import numpy as np

from ..core.calibrate import ESTIMATORS, METHODS, CalibrationWarning, Calibrator, DepthView
from ..core.cameras import steps
from ..core.clock import whole_frames
from ..core.metrics import pce, trajectory_errors
from ..core.parallax import default_estimator_for, estimator_advice, estimator_mismatch
from . import animation
from .depth import depth_source
from .motion import ReferenceMotion, TransferError
from .result_camera import check_result_name, write_result_camera


@dataclass
class TransferOptions:
    method: Optional[str] = None      # raw | global | mean | harmonic | flow | exact; None: matches the reference
    depth: str = "zpass"              # zpass | raycast
    frame_start: Optional[int] = None  # default: scene.frame_start
    frame_end: Optional[int] = None    # default: as long as the reference lasts, within the scene range
    depth_size: tuple = (96, 54)
    follow_zoom: bool = False
    result_name: Optional[str] = None  # default "<target>.ParaScale"
    estimator: Optional[str] = None    # sets `global`'s scale; None: the one matching the reference
    stop_short: bool = False           # shorten steps that would pass through geometry
    safety: bool = True                # ray-cast checks of the result (near clip, collisions, inside)
    realised_grid: Optional[tuple] = None  # ray-cast grid for the independent realised Pi (None: skip)


@dataclass
class TransferResult:
    camera: object
    frames: list
    pi_ref: np.ndarray
    pi_target: np.ndarray
    scale: np.ndarray
    pce: dict
    errors: dict
    warnings: list = field(default_factory=list)
    method: str = ""
    estimator: str = ""
    realised: Optional[dict] = None
    # seconds spent in the depth source (setup, every render or ray cast, teardown): what
    # the rest of the transfer costs beside its depth (issue 23)
    depth_seconds: float = 0.0
    source: str = ""                   # how the reference's Pi was read (video | points | depth | scene)
    pi_ref_counted: Optional[np.ndarray] = None  # video reference: share of its pixels counted per step

    def report(self) -> dict:
        out = {
            "camera": self.camera.name, "frames": [int(f) for f in self.frames],
            "pi_ref": self.pi_ref.tolist(), "pi_target": self.pi_target.tolist(), "scale": self.scale.tolist(),
            "pce": self.pce["mean"], "pce_p90": self.pce["p90"],
            "trans_err": self.errors["trans_err"], "rot_err": self.errors["rot_err"],
            "method": self.method, "estimator": self.estimator,
            "pi_source": self.source, "advice": estimator_advice(self.source),
            "warnings": [w.as_dict() for w in self.warnings],
            # "pce" above is the calibration's residual (target Pi read on its own depth);
            # "realised" is measured independently (ray cast and reprojection of the keys).
            "calibration_residual": {"pce": self.pce["mean"], "pce_p90": self.pce["p90"]},
        }
        if self.realised is not None:
            out["realised"] = self.realised
        if self.pi_ref_counted is not None:
            # per step, the share of the reference video's pixels whose motion counted in its Pi
            # (static geometry; movers filled from around them, sky and flow failures left out)
            out["pi_ref_counted"] = [round(float(v), 4) for v in self.pi_ref_counted]
        return out


def _check_camera(obj, role: str, scene=None):
    if obj is None:
        raise TransferError(f"no {role} camera: pick a camera object")
    if obj.type != "CAMERA":
        raise TransferError(f"{role} {obj.name!r} is a {obj.type.lower()}, not a camera")
    if scene is not None and scene.objects.get(obj.name) != obj:
        raise TransferError(f"{role} camera {obj.name!r} is not in scene {scene.name!r}; the depth it "
                            "calibrates against is this scene's: link the camera into it, or switch scenes")
    if obj.data.type != "PERSP":
        raise TransferError(f"{role} camera {obj.name!r} is {obj.data.type.lower()}; only perspective "
                            "cameras have parallax")


class Transfer:
    """Calibrate `reference` into `scene` starting from `target`'s pose, step by step.

    Nothing is written until finish(); cancel() (or an error) restores the scene
    and leaves no trace.
    """

    def __init__(self, scene, target, reference: ReferenceMotion, options: TransferOptions = TransferOptions()):
        _check_camera(target, "target", scene)
        if options.method is None:  # the estimator that reads Pi the way the reference was read
            options = replace(options, method=default_estimator_for(reference.source))
        if options.method not in METHODS:
            raise TransferError(f"unknown method {options.method!r}; expected one of {', '.join(METHODS)}")
        check_result_name(target, options.result_name)
        self.scene, self.target, self.options = scene, target, options
        self.warnings: list = []
        fps = animation.scene_fps(scene)
        reference = reference.at_fps(fps).on_clock(fps)  # times within 1e-3 of a frame are on it
        start = scene.frame_start if options.frame_start is None else int(options.frame_start)
        last = start + whole_frames(reference.duration, fps)  # the last frame the reference covers
        end = min(scene.frame_end, last) if options.frame_end is None else int(options.frame_end)
        if end <= start:
            raise TransferError(f"frame range {start}..{end} has no step; the end must be after the start")
        if end > last:
            raise TransferError(
                f"the reference {reference.label!r} lasts {reference.duration:.3f} s ({len(reference.c2w)} frames) "
                f"but frames {start}..{end} need {(end - start) / fps:.3f} s at {fps:g} fps; shorten the range to "
                f"{start}..{last}")
        self.frames = list(range(start, end + 1))
        self.reference = reference.on_times((np.array(self.frames) - start) / fps)

        estimator = options.method if options.method in ESTIMATORS else (
            options.estimator or default_estimator_for(reference.source))
        mismatch = estimator_mismatch(reference.estimator, reference.source, estimator)
        if options.method != "raw" and mismatch:
            self.warnings.append(CalibrationWarning("estimator_mismatch", [], mismatch))
        start_pose = animation.evaluated_poses(target, scene, [start])[0]
        self.K, self.W, self.H = animation.camera_intrinsics(target, scene)
        self.clip = (target.data.clip_start, target.data.clip_end)
        self._clip_frames: list = []
        self.lens = None
        if options.follow_zoom and self.reference.K is not None:
            zoom = self.reference.K[:, 0, 0] / self.reference.K[0, 0, 0]
            self.lens = target.data.lens * zoom
        d, dR = steps(self.reference.c2w)
        # Every method measures the Pi it realises on the target, so all need depth.
        t0 = time.perf_counter()
        self._depth = depth_source(options.depth, scene, *options.depth_size, clip_start=self.clip[0])
        self._depth.__enter__()
        self.depth_seconds = time.perf_counter() - t0
        try:
            max_step = None
            if options.stop_short:
                from .safety import collision_limit
                max_step = collision_limit(scene, self.clip[0])
            self.calibrator = Calibrator(d, dR, self.reference.pi, start_pose, self._depth_at, options.method,
                                         frames=self.frames, global_estimator=estimator, z_min=self.clip[0],
                                         max_step=max_step)
        except BaseException:
            self.cancel()
            raise

    def _depth_at(self, i: int, c2w: np.ndarray) -> DepthView:
        K = self.K
        if self.lens is not None:
            K = K.copy()
            K[:2, :2] *= self.lens[i] / self.lens[0]
        t0 = time.perf_counter()
        view = self._depth.depth(c2w, K, self.W, self.H)
        self.depth_seconds += time.perf_counter() - t0
        Z = view.depth[np.isfinite(view.depth)]
        if Z.size and (Z.max() > self.clip[1] or Z.min() < self.clip[0]):
            self._clip_frames.append(self.frames[min(i, len(self.frames) - 1)])
        return view

    @property
    def n_steps(self) -> int:
        return self.calibrator.n_steps

    @property
    def steps_done(self) -> int:
        return self.calibrator.t

    def step(self) -> bool:
        try:
            return self.calibrator.step()
        except BaseException:
            self.cancel()
            raise

    def cancel(self):
        if self._depth is not None:
            t0 = time.perf_counter()
            self._depth.__exit__(None, None, None)
            self._depth = None
            self.depth_seconds += time.perf_counter() - t0

    def run(self, progress: Optional[Callable[[int, int], None]] = None) -> TransferResult:
        while not self.step():
            if progress:
                progress(self.steps_done, self.n_steps)
        return self.finish()

    def finish(self) -> TransferResult:
        self.cancel()  # depth pass done: restore the scene before writing anything
        result = self.calibrator.result()
        warnings = self.warnings + result.warnings
        if self._clip_frames:
            f = sorted(set(self._clip_frames))
            warnings.append(CalibrationWarning(
                "clip_range", f,
                f"frames {', '.join(map(str, f[:10]))}{' ...' if len(f) > 10 else ''}: the camera's clip range "
                f"{self.clip[0]:g}..{self.clip[1]:g} cuts geometry it looks at; the depth pass saw all of it, "
                "but renders will not"))
        realised = None
        if self.options.safety or self.options.realised_grid:
            from . import safety
            if self.options.safety:
                warnings += safety.check_path(self.scene, result.c2w, self.frames, self.K, self.W, self.H,
                                              self.clip[0])
            if self.options.realised_grid:
                realised = safety.realised_summary(result.pi_ref, safety.realised_by_geometry(
                    self.scene, result.c2w, self.K, self.W, self.H, grid=tuple(self.options.realised_grid)))
        camera = write_result_camera(self.scene, self.target, result, self.frames,
                                     self.options.result_name, self.lens)
        camera["parascale_pi_source"] = self.reference.source  # how the reference's Pi was read
        return TransferResult(
            camera=camera, frames=self.frames, pi_ref=result.pi_ref, pi_target=result.pi_target,
            scale=result.scale, pce=pce(result.pi_target, result.pi_ref),
            errors=trajectory_errors(result.c2w, self.reference.c2w), warnings=warnings,
            method=result.method, estimator=result.estimator, realised=realised, depth_seconds=self.depth_seconds,
            source=self.reference.source, pi_ref_counted=self.reference.counted)


def transfer(scene, target, reference: ReferenceMotion, options: TransferOptions = TransferOptions(),
             progress=None) -> TransferResult:
    """Run a whole transfer (see Transfer)."""
    return Transfer(scene, target, reference, options).run(progress)
