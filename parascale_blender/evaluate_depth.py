"""Evaluation of a result camera from depth, independent of the calibration: the scene ray
cast on a grid of its own, each step's Pi realised by reprojection into the next keyed pose."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..core.cameras import steps
from ..core.metrics import pce, trajectory_errors
from ..core.parallax import parallax_of_depth_map
from . import animation
from .motion import ReferenceMotion, TransferError


def result_curves(obj, frames) -> dict:
    """The per-step curves a ParaScale result carries (value at frame t = step t-1 -> t)."""
    out = {}
    for name in ("pi_ref", "pi_target", "scale"):
        values = animation.property_curve(obj, name, frames)
        if values is not None:
            out[name] = values[1:]
    return out


class DepthEvaluation:
    """Re-measure the Pi a result camera realises, independently of the calibration: its
    keyed poses are read back, the scene is ray cast on a grid of its own (not the Z pass
    that drove the calibration), and each step's Pi is the reprojection of those points
    into the next keyed pose (`exact`, over the pixels that see geometry) or, for the
    depth-only estimators, their own formula on the ray-cast depth. One step per step();
    PCE against the result's reference Pi curve; TransErr / RotErr against the reference move."""

    GRID = (64, 36)

    def __init__(self, scene, result_obj, reference: Optional[ReferenceMotion] = None, *, depth_size=GRID):
        from .safety import RayCaster

        frame_range = animation.animated_frame_range(result_obj, scene)
        if frame_range is None:
            raise TransferError(f"camera {result_obj.name!r} has no animation to evaluate")
        self.frames = np.arange(frame_range[0], frame_range[1] + 1)
        curves = result_curves(result_obj, self.frames)
        if "pi_ref" not in curves:
            raise TransferError(f"camera {result_obj.name!r} has no pi_ref curve; is it a ParaScale result?")
        self.scene, self.obj, self.reference = scene, result_obj, reference
        self.grid = tuple(int(v) for v in depth_size)
        self.pi_ref = curves["pi_ref"]
        self.estimator = str(result_obj.get("parascale_estimator", "harmonic"))
        self.c2w = animation.evaluated_poses(result_obj, scene, self.frames)
        self.K, self.W, self.H = animation.camera_intrinsics(result_obj, scene)
        self.d, _ = steps(self.c2w)
        self.realised = np.zeros(len(self.d))
        self.coverage = np.zeros(len(self.d))  # share of the grid that sees geometry, frame t-1 of each step
        self.steps_done = 0
        self._caster = RayCaster(scene)

    @property
    def n_steps(self) -> int:
        return len(self.d)

    def step(self) -> bool:
        from ..core.parallax import realised_parallax

        t = self.steps_done
        Z, Kg, _ = self._caster.depth(self.c2w[t], self.K, self.W, self.H, self.grid)
        Z = np.where(Z < self.obj.data.clip_start, np.inf, Z)
        self.coverage[t] = float(np.isfinite(Z).mean())
        if self.estimator == "exact":
            self.realised[t] = realised_parallax(Z, Kg, self.c2w[t], self.c2w[t + 1], "covered")
        else:
            self.realised[t] = parallax_of_depth_map(Z, Kg, self.d[t], self.estimator)
        self.steps_done += 1
        return self.steps_done == self.n_steps

    def cancel(self):
        self._caster = None

    def finish(self) -> dict:
        while self.steps_done < self.n_steps:
            self.step()
        self.cancel()
        how = "reprojection of" if self.estimator == "exact" else f"{self.estimator} on"
        exact = self.estimator == "exact"
        out = {"camera": self.obj.name, "frames": self.frames.tolist(), "estimator": self.estimator,
               "measured_by": f"depth: {how} ray cast {self.grid[0]}x{self.grid[1]}",
               "pi_ref": self.pi_ref.tolist(), "pi_realised": self.realised.tolist(),
               "coverage": self.coverage.tolist(),
               # what it measures and how much of the frame it used, in one line (the panel's)
               "summary": (f"geometry by ray cast, {'covered pixels' if exact else 'whole frame'}: "
                           f"{100 * float(np.median(self.coverage)):.0f}% of the frame sees geometry"
                           if self.n_steps else "")}
        score = pce(self.realised, self.pi_ref)
        out.update(pce=score["mean"], pce_p90=score["p90"])
        if self.reference is not None:
            fps = animation.scene_fps(self.scene)
            ref = self.reference.at_fps(fps).on_clock(fps).on_times((self.frames - self.frames[0]) / fps)
            out.update(trajectory_errors(self.c2w, ref.c2w))
        return out


def evaluate_depth(scene, result_obj, reference: Optional[ReferenceMotion] = None, *,
                   depth_size=DepthEvaluation.GRID) -> dict:
    """DepthEvaluation run to the end."""
    return DepthEvaluation(scene, result_obj, reference, depth_size=depth_size).finish()
