"""The Parallax Number Pi and its estimators (docs/estimators.md, docs/real-scenes.md).

Pi of a step is the translation-induced image motion in units of focal length,
read over the depth of the frame the step starts from. Depth is planar Z with
background (sky, nothing hit) as +inf.

- harmonic, mean, flow: linear in the step length (Pi = gain * |d|); harmonic and
  flow average over the whole frame (background moves by zero), mean over what is hit.
- exact: the finite image motion of the step (each depth point reprojected into the
  moved camera, translation only), averaged over the pixels that see geometry (the
  coverage rule, docs/real-scenes.md). Not linear in |d|: `exact_step` solves for the
  length that shows a given Pi.
"""
from __future__ import annotations

import numpy as np

ESTIMATORS = ("harmonic", "mean", "flow", "exact")
LINEAR_ESTIMATORS = ("harmonic", "mean", "flow")
# Below this fraction of covered pixels the calibration warns: Pi then rests on few pixels.
COVERAGE_WARN = 0.05


def default_estimator_for(source: str) -> str:
    """The target estimator that matches how a reference's Pi was read: a video measures
    the finite image motion of each step (exact); points, depth maps and scenes give
    depth, read with harmonic (the documented default)."""
    return "exact" if source == "video" else "harmonic"


# One story about estimators, told in the same words by `parascale transfer`, `parascale
# evaluate` and the panel (tests/core/test_parallax.py and tests/ui assert the strings).
ADVICE_VIDEO = ("Pi read from a video is image motion: the target reads it with 'exact' (each step's "
                "finite image motion over the pixels that see geometry), and Evaluate by rendering "
                "measures that same motion over the same pixels")
ADVICE_DEPTH = ("Pi read from depth (points, depth maps, a scene) keeps its estimator on the target "
                "(harmonic unless chosen); evaluate such a result from depth, since rendering measures "
                "image motion, which only 'exact' reads")
ADVICE_RENDER = ("Evaluate by rendering measures image motion over the pixels that see geometry, which "
                 "is what 'exact' reads; a result calibrated with {estimator!r} is read from depth: "
                 "its figure is the depth evaluation")


def estimator_advice(source: str) -> str:
    """The advice for a reference whose Pi came from `source` (video | points | depth | scene)."""
    return ADVICE_VIDEO if source == "video" else ADVICE_DEPTH


def render_evaluation_advice(estimator: str):
    """None when a render (optical flow) evaluation reads a result the way it was calibrated
    (exact), else the sentence saying which figure to trust instead."""
    return None if estimator == "exact" else ADVICE_RENDER.format(estimator=estimator)


def estimator_mismatch(reference_estimator: str, source: str, target_estimator: str):
    """None when the target's estimator reads Pi the way the reference was read, else
    a sentence saying why not (callers warn or refuse before any work)."""
    if source == "video":
        if target_estimator == "exact":
            return None
        if target_estimator == "flow":
            return ("the reference Pi was measured from its video (finite image motion); 'flow' reads the "
                    "target to first order in the step (about +7% on forward and -10% on backward dolly "
                    "steps); 'exact' matches the video")
        return (f"the reference Pi was measured from its video (image motion) but the target uses "
                f"{target_estimator!r}, which reads depth only; use 'exact'")
    if reference_estimator == target_estimator:
        return None
    if source in ("scene", "depth") and target_estimator == "exact":
        return None if reference_estimator == "exact" else (
            f"the reference Pi was read with {reference_estimator!r} ({source}) but the target uses 'exact'")
    return (f"the reference Pi was read with {reference_estimator!r} ({source}) but the target uses "
            f"{target_estimator!r}; the two must match for Pi to mean the same")


def coverage(Z: np.ndarray) -> float:
    """Fraction of depth samples that see geometry (finite, positive depth)."""
    Z = np.asarray(Z, float)
    if Z.size == 0:
        return 0.0
    return float((np.isfinite(Z) & (Z > 0)).mean())


def scale_intrinsics(K: np.ndarray, width: int, height: int, new_width: int, new_height: int) -> np.ndarray:
    """K of the same camera sampled on a new_width x new_height pixel grid."""
    sx, sy = new_width / width, new_height / height
    out = np.array(K, float)
    out[0, :] *= sx
    out[1, :] *= sy
    out[2] = [0.0, 0.0, 1.0]
    return out


def normalized_grid(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised image coordinates (H, W, 2) of the pixel centres of a W x H grid."""
    K = np.asarray(K, float)
    u = (np.arange(width) + 0.5 - K[0, 2]) / K[0, 0]
    v = (np.arange(height) + 0.5 - K[1, 2]) / K[1, 1]
    x, y = np.meshgrid(u, v)
    return np.stack([x, y], axis=-1)


def _inverse_depth(Z: np.ndarray) -> np.ndarray:
    Z = np.asarray(Z, float)
    with np.errstate(divide="ignore"):
        inv = np.where(np.isfinite(Z) & (Z > 0), 1.0 / np.where(Z > 0, Z, 1.0), 0.0)
    return inv


def parallax(Z: np.ndarray, d: np.ndarray, estimator: str = "harmonic", xy: np.ndarray | None = None) -> float:
    """Pi of translation d (camera frame of the depth's view) over depth samples Z.

    Z: any shape, planar depth, +inf (or <= 0, nan) for background.
    xy: (..., 2) normalised image coordinates of the samples; needed for `flow`.
    Returns 0.0 when nothing but background is seen (the caller decides what that means).
    """
    Z = np.asarray(Z, float)
    d = np.asarray(d, float).reshape(3)
    n = Z.size
    if n == 0:
        return 0.0
    if estimator == "harmonic":
        return float(np.linalg.norm(d) * _inverse_depth(Z).sum() / n)
    if estimator == "mean":
        finite = np.isfinite(Z) & (Z > 0)
        if not finite.any():
            return 0.0
        return float(np.linalg.norm(d) / Z[finite].mean())
    if estimator == "flow":
        if xy is None:
            raise ValueError("the flow estimator needs the normalised image coordinates of the samples")
        xy = np.asarray(xy, float).reshape(Z.shape + (2,))
        inv = _inverse_depth(Z)
        ux = (d[0] - xy[..., 0] * d[2]) * inv
        uy = (d[1] - xy[..., 1] * d[2]) * inv
        return float(np.hypot(ux, uy).sum() / n)
    if estimator == "exact":
        if xy is None:
            raise ValueError("the exact estimator needs the normalised image coordinates of the samples")
        m = exact_motion(Z, xy, d)
        covered = np.isfinite(Z) & (Z > 0)
        if not covered.any():
            return 0.0
        return float(m[covered].mean())
    raise ValueError(f"unknown estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}")


def parallax_per_unit(Z: np.ndarray, direction: np.ndarray, estimator: str = "harmonic",
                      xy: np.ndarray | None = None) -> float:
    """Pi of a unit translation along `direction`: the gain g with Pi = g * |d|."""
    direction = np.asarray(direction, float).reshape(3)
    norm = np.linalg.norm(direction)
    if norm == 0:
        # No direction: mean and harmonic do not depend on it; flow picks the view axis' sideways.
        direction = np.array([1.0, 0.0, 0.0])
        norm = 1.0
    return parallax(Z, direction / norm, estimator, xy)


def parallax_of_depth_map(depth: np.ndarray, K: np.ndarray, d: np.ndarray, estimator: str = "harmonic") -> float:
    """Pi over a whole depth map (h, w) whose pixel grid has intrinsics K."""
    depth = np.asarray(depth, float)
    xy = normalized_grid(K, depth.shape[1], depth.shape[0]) if estimator in ("flow", "exact") else None
    return parallax(depth, d, estimator, xy)


# ---------------------------------------------------------------------------
# exact image motion

def _motion_terms(Z: np.ndarray, xy: np.ndarray, direction: np.ndarray):
    """Per covered sample: a = |(x u_z - u_x, y u_z - u_y)| and Z, so that a point at
    depth Z moved by s*u (camera frame) moves in the image by exactly s*a / (Z - s*u_z)."""
    Z = np.asarray(Z, float).reshape(-1)
    xy = np.asarray(xy, float).reshape(-1, 2)
    u = np.asarray(direction, float).reshape(3)
    covered = np.isfinite(Z) & (Z > 0)
    x, y, z = xy[covered, 0], xy[covered, 1], Z[covered]
    a = np.hypot(x * u[2] - u[0], y * u[2] - u[1])
    return a, z, covered


class ExactTerms:
    """The per-pixel terms of the exact image motion along one unit direction, computed
    once per calibration step and shared by its first-order gain, the length solve
    (exact_step) and the Pi the chosen length shows (mean_motion): one pass over the
    pixels instead of one per question. a, z: as _motion_terms; covered: their count."""

    __slots__ = ("a", "z", "uz", "covered", "size")

    def __init__(self, Z: np.ndarray, xy: np.ndarray, direction: np.ndarray):
        u = np.asarray(direction, float).reshape(3)
        u = u / np.linalg.norm(u)
        self.a, self.z, covered = _motion_terms(Z, xy, u)
        self.uz = float(u[2])
        self.covered = int(self.a.size)
        self.size = int(np.asarray(Z).size)

    @property
    def coverage(self) -> float:
        return self.covered / self.size if self.size else 0.0

    def gain(self) -> float:
        """First-order Pi per unit length over the covered pixels (0 when none)."""
        return float(np.sum(self.a / self.z) / self.covered) if self.covered else 0.0

    def mean_motion(self, s: float) -> float:
        """Pi of a step of length s, as parallax(Z, s * u, 'exact', xy): mean exact
        motion over the covered pixels, +inf once a point is reached."""
        if not self.covered:
            return 0.0
        den = self.z - s * self.uz
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(den > 0, s * self.a / np.where(den > 0, den, 1.0), np.inf)
        return float(m.sum() / self.covered)


def exact_motion(Z: np.ndarray, xy: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Exact image motion (focal-length units) of every sample when the camera
    translates by d (its own frame, rotation ignored): the point X = Z (x, y, 1) seen
    from the moved centre projects to ((Z x - d_x), (Z y - d_y)) / (Z - d_z), so it moves
    by |(x d_z - d_x, y d_z - d_y)| / (Z - d_z). Background moves by 0; a point the step
    reaches or passes (Z <= d_z) moves by +inf."""
    Z = np.asarray(Z, float)
    shape = Z.shape
    a, z, covered = _motion_terms(Z, xy, d)
    out = np.zeros(Z.size)
    den = z - float(np.asarray(d, float).reshape(3)[2])
    with np.errstate(divide="ignore", invalid="ignore"):
        out[covered] = np.where(den > 0, a / np.where(den > 0, den, 1.0), np.inf)
    return out.reshape(shape)


class ExactStep:
    """Result of exact_step: length (camera units), the Pi it shows, and why it stopped:
    'solved', 'unreachable' (a backward step's image motion saturates below the target
    Pi: every point ends at the focus of expansion) or 'empty' (no covered pixel)."""

    __slots__ = ("length", "pi", "status", "first_order", "limit")

    def __init__(self, length, pi, status, first_order, limit):
        self.length, self.pi, self.status = float(length), float(pi), status
        self.first_order, self.limit = float(first_order), float(limit)

    def __repr__(self):
        return f"ExactStep(length={self.length:.6g}, pi={self.pi:.6g}, status={self.status!r})"


# A backward step asked for more than this share of its saturation (the mean distance of
# the covered pixels to the focus of expansion) would shrink what is seen by more than half
# in one frame, a step longer than the distance to it: taken as unreachable.
SATURATION_SHARE = 0.5


def exact_step(Z: np.ndarray, xy: np.ndarray, direction: np.ndarray, pi: float, *,
               max_length: float = np.inf, iterations: int = 30, rtol: float = 1e-12,
               saturation: float = SATURATION_SHARE, terms: ExactTerms | None = None) -> ExactStep:
    """The step length s along unit `direction` whose exact image motion, averaged over
    the covered pixels of Z, equals `pi` (safeguarded Newton on the depth already
    rendered; no new depth is needed).

    M(s) = mean a/(Z/s - u_z) is 0 at s = 0 and increasing. Forward (u_z > 0) it is
    convex and infinite once the nearest point is reached; backward (u_z < 0) it is
    concave and saturates at mean a/|u_z|; sideways it is linear (= first order).
    Newton from the first-order length converges monotonically in each case.
    max_length caps the answer (the caller's bound); the result says when it acted.
    saturation: backward, a Pi at or above this share of the saturation is 'unreachable'
    (1.0: only what no length can show).
    terms: the step's ExactTerms when the caller has them (Z, xy, direction unused).
    """
    if terms is None:
        terms = ExactTerms(Z, xy, direction)
    a, z, uz = terms.a, terms.z, terms.uz
    n = a.size
    if n == 0:
        return ExactStep(0.0, 0.0, "empty", 0.0, 0.0)
    g = float(np.sum(a / z) / n)  # first-order gain: M'(0)
    if pi <= 0:
        return ExactStep(0.0, 0.0, "solved", 0.0, 0.0)
    if g <= 0:
        return ExactStep(0.0, 0.0, "empty", 0.0, 0.0)
    reach = float(z.min()) / uz if uz > 0 else np.inf  # forward: the nearest point reaches the camera
    hi = min(float(max_length), reach)

    def M(s):
        den = z - s * uz
        return float(np.sum(s * a / den) / n), float(np.sum(a * z / (den * den)) / n)

    s0 = pi / g
    if uz < 0:
        limit = float(np.sum(a) / n) / -uz  # image motion at an infinite pull-back
        if pi >= limit * min(saturation, 1 - 1e-12):
            return ExactStep(hi, M(hi)[0] if np.isfinite(hi) else limit, "unreachable", s0, limit)
    else:
        limit = np.inf
    if max_length < reach and M(max_length)[0] < pi:
        return ExactStep(max_length, M(max_length)[0], "capped", s0, limit)
    lo = 0.0
    s = min(s0, 0.5 * hi) if s0 >= hi else s0
    for _ in range(iterations):
        m, dm = M(s)
        if m > pi:
            hi = min(hi, s)
        else:
            lo = max(lo, s)
        if abs(m - pi) <= rtol * pi:
            break
        new = s - (m - pi) / dm if dm > 0 else 0.5 * (lo + hi)
        if not (lo <= new <= hi) or new == s:
            new = 0.5 * (lo + hi) if np.isfinite(hi) else 2 * max(s, lo)
        s = new
    return ExactStep(s, M(s)[0], "solved", s0, limit)


def realised_parallax(Z: np.ndarray, K: np.ndarray, c2w_prev: np.ndarray, c2w_cur: np.ndarray,
                      rule: str = "covered") -> float:
    """Pi a move from c2w_prev to c2w_cur really shows, by reprojection: every pixel of
    the depth map Z (seen from c2w_prev, pixel grid K) is rebuilt as a 3D point and
    projected into c2w_cur, and into c2w_cur's rotation alone; the difference, in
    focal-length units per axis, is the translation-induced motion. A point that ends
    behind the camera moves by +inf.

    rule: 'covered' averages over the pixels that see geometry (the coverage rule),
    'frame' over the whole frame with background moving by 0. 0.0 if nothing is covered.
    Independent of the calibration's path: it uses the two keyed poses as they are
    (full rotation between them), not a step direction and a length."""
    Z = np.asarray(Z, float)
    h, w = Z.shape
    covered = np.isfinite(Z) & (Z > 0)
    if not covered.any():
        return 0.0
    xy = normalized_grid(K, w, h)[covered]
    rays = np.c_[xy, np.ones(len(xy))]
    P = rays * Z[covered][:, None]
    Rp, cp = np.asarray(c2w_prev, float)[:3, :3], np.asarray(c2w_prev, float)[:3, 3]
    Rc, cc = np.asarray(c2w_cur, float)[:3, :3], np.asarray(c2w_cur, float)[:3, 3]
    world = P @ Rp.T + cp
    full = (world - cc) @ Rc             # the points in the new camera
    rot = rays @ (Rc.T @ Rp).T           # the same rays under the rotation alone
    with np.errstate(divide="ignore", invalid="ignore"):
        motion = np.hypot(full[:, 0] / full[:, 2] - rot[:, 0] / rot[:, 2],
                          full[:, 1] / full[:, 2] - rot[:, 1] / rot[:, 2])
    motion = np.where((full[:, 2] > 0) & (rot[:, 2] > 0), motion, np.inf)
    total = float(motion.sum())
    return total / (covered.sum() if rule == "covered" else Z.size)
