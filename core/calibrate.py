"""Per-frame re-realisation of a reference move in a target scene (docs/estimators.md).

The target camera starts where the animator placed it. Each step copies the
reference's relative rotation and moves along the reference's translation
direction (in the camera frame) by whatever length makes the target scene,
seen from the previous calibrated pose, show the reference's Parallax Number.
Depth comes from a callback so the same code runs on a numpy scene, a Cycles
Z pass or a ray cast.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .cameras import make_c2w
from .parallax import COVERAGE_WARN, ESTIMATORS, ExactTerms, coverage, exact_step, normalized_grid, parallax

METHODS = ("raw", "global") + ESTIMATORS
# Step-to-step bound: the target's parallax per unit translation may fall by at most this
# factor from one step to the next (beyond what the reference's own Pi change asks for).
# A step changes every depth by at most its own length, so a scene-driven fall is about
# 1 + Pi/r for pixels at image radius r (1.1 for Pi 0.03 at r 0.3); only losing what the
# camera looks at (an object shrinking into empty background) falls faster, and that is
# the runaway this bound stops. docs/real-scenes.md gives the measurements.
GAIN_BOUND = 2.0


class CalibrationError(ValueError):
    """The calibration cannot produce a meaningful camera (named frames, reason)."""


@dataclass
class DepthView:
    """Planar depth (h, w) of the target seen from one pose; K is that pixel grid's."""

    depth: np.ndarray
    K: np.ndarray


DepthFn = Callable[[int, np.ndarray], DepthView]


@dataclass
class CalibrationWarning:
    code: str
    frames: list
    message: str

    def as_dict(self) -> dict:
        return {"code": self.code, "frames": list(self.frames), "message": self.message}


@dataclass
class CalibrationResult:
    method: str
    estimator: str
    c2w: np.ndarray            # (N, 4, 4) calibrated poses, OpenCV axes
    frames: list               # N frame labels (scene frame numbers)
    pi_ref: np.ndarray         # (N-1,) reference Pi per step
    pi_target: np.ndarray      # (N-1,) Pi the target shows per step, same estimator
    gain: np.ndarray           # (N-1,) target Pi per unit translation (0: background only)
    scale: np.ndarray          # (N-1,) translation length applied per step, target units
    warnings: list = field(default_factory=list)
    coverage: Optional[np.ndarray] = None  # (N-1,) fraction of the view that sees geometry, per step


class Calibrator:
    """Step-wise calibration, so a modal operator can advance it frame by frame and
    cancel cleanly. `run()` does all steps at once.

    ref_d: (N-1, 3) reference translation per step in the previous camera's frame.
    ref_dR: (N-1, 3, 3) reference relative rotation per step.
    pi_ref: (N-1,) reference Parallax Number per step (same estimator family).
    start_c2w: target camera pose at the first frame (OpenCV axes).
    depth_fn(i, c2w): depth of the target at pose c2w (i = frame index).
    method: raw | global | mean | harmonic | flow.
    global_estimator: the estimator that fixes the single scale of `global`.
    z_min: depth clamp (the target camera's clip_start).
    gain_bound: the most a step may grow against the previous one, beyond the growth of
    the reference's Pi (None: no bound). See GAIN_BOUND.
    max_step(i, c2w, direction): optional callback giving the longest step allowed from
    pose c2w along `direction` (world frame), e.g. to stop short of a collision.
    """

    def __init__(self, ref_d: np.ndarray, ref_dR: np.ndarray, pi_ref: np.ndarray,
                 start_c2w: np.ndarray, depth_fn: Optional[DepthFn], method: str = "harmonic",
                 *, frames: Optional[Sequence] = None, global_estimator: str = "harmonic",
                 z_min: float = 0.0, measure_target: bool = True, gain_bound: Optional[float] = GAIN_BOUND,
                 max_step: Optional[Callable[[int, np.ndarray, np.ndarray], float]] = None):
        if method not in METHODS:
            raise CalibrationError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
        self.ref_d = np.asarray(ref_d, float).reshape(-1, 3)
        self.ref_dR = np.asarray(ref_dR, float).reshape(-1, 3, 3)
        self.pi_ref = np.asarray(pi_ref, float).reshape(-1)
        n = len(self.ref_d)
        if len(self.ref_dR) != n or len(self.pi_ref) != n:
            raise CalibrationError(f"reference has {n} translations, {len(self.ref_dR)} rotations "
                                   f"and {len(self.pi_ref)} Pi values; expected one of each per step")
        if not np.isfinite(self.pi_ref).all() or (self.pi_ref < 0).any():
            i = int(np.argmax(~np.isfinite(self.pi_ref) | (self.pi_ref < 0)))
            raise CalibrationError(f"reference Pi of step {i + 1} is {self.pi_ref[i]}; expected a finite value >= 0")
        if method != "raw" and depth_fn is None:
            raise CalibrationError(f"method {method!r} needs the target's depth")
        self.method = method
        self.estimator = method if method in ESTIMATORS else global_estimator
        self.depth_fn = depth_fn
        self.z_min = float(z_min)
        self.measure_target = measure_target and depth_fn is not None
        self.gain_bound = gain_bound
        self.max_step = max_step
        self.frames = list(frames) if frames is not None else list(range(n + 1))
        if len(self.frames) != n + 1:
            raise CalibrationError(f"{len(self.frames)} frame labels for {n + 1} frames")

        self.R = [np.asarray(start_c2w, float)[:3, :3]]
        self.c = [np.asarray(start_c2w, float)[:3, 3]]
        self.gain = np.zeros(n)
        self.scale = np.zeros(n)
        self.pi_target = np.zeros(n)
        self.coverage = np.ones(n)
        self._last_gain: Optional[float] = None
        self._last_step: Optional[tuple] = None   # (length, reference Pi) of the last moving step
        self._bounded_frames: list = []
        self._bounded_short: list = []  # per bounded frame: the share of the reference's Pi not shown
        self._unreachable_frames: list = []
        self._low_coverage_frames: list = []
        self._stopped_frames: list = []
        self._background_frames: list = []
        self._no_direction_frames: list = []
        self._global_factor: Optional[float] = None
        self._grid_cache: Optional[tuple] = None
        self.t = 0  # steps done

    @property
    def n_steps(self) -> int:
        return len(self.ref_d)

    def done(self) -> bool:
        return self.t >= self.n_steps

    # -- depth -----------------------------------------------------------
    def _view(self, i: int, R: np.ndarray, c: np.ndarray):
        view = self.depth_fn(i, make_c2w(R, c))
        Z = np.asarray(view.depth, float)
        if self.z_min > 0:
            Z = np.where(np.isfinite(Z), np.maximum(Z, self.z_min), Z)
        xy = self._grid(view.K, Z.shape) if self.estimator in ("flow", "exact") else None
        return Z, xy

    def _grid(self, K, shape) -> np.ndarray:
        """normalized_grid of a pixel grid, made once per K and size (the depth source's grid
        is the same at every step unless the lens zooms)."""
        key = (np.asarray(K, float).tobytes(), tuple(shape))
        if self._grid_cache is None or self._grid_cache[0] != key:
            self._grid_cache = (key, normalized_grid(K, shape[1], shape[0]))
        return self._grid_cache[1]

    def _gain_at(self, i: int, R: np.ndarray, c: np.ndarray, direction: np.ndarray) -> float:
        Z, xy = self._view(i, R, c)
        return self._gain_of(Z, xy, direction)

    def _gain_of(self, Z, xy, direction) -> float:
        # exact: its first-order gain over the covered pixels (the slope at s = 0)
        return parallax(Z, direction, "flow" if self.estimator == "exact" else self.estimator, xy) / (
            coverage(Z) if self.estimator == "exact" and coverage(Z) > 0 else 1.0)

    def _rotation_ahead(self, k: int) -> np.ndarray:
        R = self.R[-1]
        for j in range(self.t, k):
            R = R @ self.ref_dR[j]
        return R

    def _probe_ahead(self, direction: np.ndarray) -> Optional[float]:
        """First valid gain seen from the current centre with the rotations still to
        come (used only while no valid gain has been seen yet)."""
        for k in range(self.t + 1, self.n_steps + 1):
            g = self._gain_at(k, self._rotation_ahead(k), self.c[-1], direction)
            if g > 0:
                return g
        return None

    # -- one step --------------------------------------------------------
    def step(self) -> bool:
        """Advance one frame; returns True when all steps are done."""
        if self.done():
            return True
        t = self.t
        d = self.ref_d[t]
        length = float(np.linalg.norm(d))
        direction = d / length if length > 0 else np.zeros(3)
        R_prev, c_prev = self.R[-1], self.c[-1]

        needs_depth = length > 0 and (self.measure_target or self.method in ESTIMATORS or (
            self.method == "global" and self._global_factor is None))
        Z = xy = terms = None
        g = 0.0
        if needs_depth:
            Z, xy = self._view(t, R_prev, c_prev)
            if self.estimator == "exact":
                # one pass over the pixels serves the gain, the solve and the Pi shown
                terms = ExactTerms(Z, xy, direction)
                g = terms.gain()
                self.coverage[t] = terms.coverage
            else:
                g = self._gain_of(Z, xy, direction)
                self.coverage[t] = coverage(Z)
            if self.coverage[t] < COVERAGE_WARN:
                self._low_coverage_frames.append(self.frames[t])
        self.gain[t] = g

        if self.method == "raw":
            s = length
        elif self.method == "global":
            if self._global_factor is None and length > 0 and self.pi_ref[t] > 0:
                if self.estimator == "exact" and g > 0:
                    s0 = exact_step(Z, xy, direction, self.pi_ref[t], terms=terms).length
                else:
                    g0 = g if g > 0 else self._probe_ahead(direction)
                    if g0 is None:
                        raise CalibrationError(self._all_background_message())
                    s0 = self.pi_ref[t] / g0
                self._global_factor = s0 / length
            s = length * (self._global_factor or 0.0)
        else:
            s = self._per_frame_length(t, g, length, direction, Z, xy, terms)
        s = self._stop_short(t, R_prev, c_prev, direction, s)

        self.scale[t] = s
        if self.estimator == "exact" and Z is not None:
            self.pi_target[t] = terms.mean_motion(s)
            self.gain[t] = self.pi_target[t] / s if s > 0 else g
        else:
            self.pi_target[t] = g * s
        if s > 0 and self.pi_ref[t] > 0:
            self._last_step = (s, float(self.pi_ref[t]))
        self.c.append(c_prev + R_prev @ direction * s)
        self.R.append(R_prev @ self.ref_dR[t])
        self.t += 1
        return self.done()

    def _bound(self, t: int) -> float:
        """Longest step allowed after the previous one (inf before the first move)."""
        if self.gain_bound is None or self._last_step is None:
            return np.inf
        s_prev, pi_prev = self._last_step
        return self.gain_bound * s_prev * max(1.0, self.pi_ref[t] / pi_prev)

    def _pace(self, t: int) -> float:
        s_prev, pi_prev = self._last_step
        return s_prev * max(1.0, self.pi_ref[t] / pi_prev)

    def _stop_short(self, t, R_prev, c_prev, direction, s) -> float:
        if self.max_step is None or s <= 0:
            return s
        limit = float(self.max_step(t, make_c2w(R_prev, c_prev), R_prev @ direction))
        if limit < s:
            self._stopped_frames.append(self.frames[t + 1])
            return max(limit, 0.0)
        return s

    def _per_frame_length(self, t: int, g: float, length: float, direction: np.ndarray,
                          Z=None, xy=None, terms=None) -> float:
        if self.pi_ref[t] == 0:
            return 0.0
        if length == 0:
            # Pi without a direction (flow noise on a still camera): nothing to scale.
            self._no_direction_frames.append(self.frames[t + 1])
            return 0.0
        bound = self._bound(t)
        if g > 0 and self.estimator == "exact":
            self._last_gain = g
            step = exact_step(Z, xy, direction, self.pi_ref[t], max_length=bound, terms=terms)
            if step.status == "unreachable":
                # No length shows this Pi: keep the pace (the previous step, scaled by the
                # reference's own Pi change) rather than grow; the object recedes linearly
                # instead of vanishing geometrically.
                self._unreachable_frames.append(self.frames[t + 1])
                return min(self._pace(t), step.length) if self._last_step is not None else step.first_order
            elif step.status == "capped":
                self._bounded_frames.append(self.frames[t + 1])
                self._bounded_short.append(max(0.0, 1.0 - step.pi / self.pi_ref[t]))
            return step.length
        if g > 0:
            self._last_gain = g
            s = self.pi_ref[t] / g
            if s > bound:
                self._bounded_frames.append(self.frames[t + 1])
                self._bounded_short.append(1.0 - bound / s)  # Pi is linear in the length here
                return bound
            return s
        self._background_frames.append(self.frames[t + 1])
        if self._last_gain is None:
            probed = self._probe_ahead(direction)
            if probed is None:
                raise CalibrationError(self._all_background_message())
            self._last_gain = probed
        return min(self.pi_ref[t] / self._last_gain, self._bound(t))

    def _all_background_message(self) -> str:
        return (f"the target camera sees only background (no geometry within its view) at every "
                f"frame from {self.frames[0]} to {self.frames[-1]}; nothing to measure parallax against. "
                "Aim the target camera at the scene or widen its clip range.")

    # -- result ----------------------------------------------------------
    def run(self, progress: Optional[Callable[[int, int], None]] = None) -> CalibrationResult:
        while not self.done():
            self.step()
            if progress is not None:
                progress(self.t, self.n_steps)
        return self.result()

    def result(self) -> CalibrationResult:
        if not self.done():
            raise CalibrationError(f"calibration stopped after {self.t} of {self.n_steps} steps")
        warnings = []
        if self._background_frames:
            f = self._background_frames
            warnings.append(CalibrationWarning(
                "background_only", f,
                f"frames {_frame_list(f)}: the target camera sees only background before the step; "
                "reused the last valid parallax gain"))
        if self._low_coverage_frames:
            f = self._low_coverage_frames
            warnings.append(CalibrationWarning(
                "low_coverage", f,
                f"frame {f[0]}: geometry covers {100 * self.coverage[self.frames.index(f[0])]:.1f}% of the "
                f"target's view (below {100 * COVERAGE_WARN:g}%; frames {_frame_list(f)}); Pi there rests on "
                "few pixels. " + (f"Pi counts only pixels that see geometry (estimator {self.estimator}); steps "
                                  f"stayed within the step-to-step bound (x{self.gain_bound})"
                                  if self.method in ESTIMATORS and self.gain_bound else
                                  f"Method {self.method} does not adapt its steps to the view")))
        if self._bounded_frames:
            f = self._bounded_frames
            short = np.asarray(self._bounded_short, float)
            worst = int(np.argmax(short))
            if len(f) == 1:
                held = f"that frame shows {100 * short[0]:.1f}% less parallax than the reference"
            else:
                held = (f"these frames show less parallax than the reference: {100 * short.min():.1f}% to "
                        f"{100 * short.max():.1f}% less (frame {f[worst]}: {100 * short[worst]:.1f}%)")
            warnings.append(CalibrationWarning(
                "step_bound", f,
                f"frames {_frame_list(f)}: the step needed to show the reference's Pi grew more than "
                f"x{self.gain_bound} against the previous one (the target lost what it looks at); the step "
                f"was held at that bound, so {held}"))
        if self._unreachable_frames:
            f = self._unreachable_frames
            warnings.append(CalibrationWarning(
                "unreachable", f,
                f"frames {_frame_list(f)}: no backward step of any length shows the reference's Pi here "
                "(the visible geometry is too small in frame: every point can only slide to the focus of "
                "expansion); the step kept the previous step's length (scaled by the reference's Pi), so the "
                "object recedes steadily instead of vanishing"))
        if self._stopped_frames:
            f = self._stopped_frames
            warnings.append(CalibrationWarning(
                "stopped_short", f,
                f"frames {_frame_list(f)}: the step was shortened to stop before geometry on its path"))
        if self._no_direction_frames:
            f = self._no_direction_frames
            warnings.append(CalibrationWarning(
                "no_direction", f,
                f"frames {_frame_list(f)}: the reference has parallax but no translation; step left still"))
        return CalibrationResult(
            method=self.method, estimator=self.estimator, c2w=make_c2w(np.stack(self.R), np.stack(self.c)),
            frames=self.frames, pi_ref=self.pi_ref.copy(), pi_target=self.pi_target.copy(),
            gain=self.gain.copy(), scale=self.scale.copy(), warnings=warnings, coverage=self.coverage.copy())


def _frame_list(frames: Sequence) -> str:
    frames = list(frames)
    if len(frames) > 12:
        return ", ".join(str(f) for f in frames[:10]) + f", ... ({len(frames)} in all)"
    return ", ".join(str(f) for f in frames)


def calibrate(ref_d, ref_dR, pi_ref, start_c2w, depth_fn, method="harmonic", *,
              progress=None, **kwargs) -> CalibrationResult:
    """Run a whole calibration (see Calibrator)."""
    return Calibrator(ref_d, ref_dR, pi_ref, start_c2w, depth_fn, method, **kwargs).run(progress)
