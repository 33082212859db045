"""The Parallax Number Pi and its three estimators (docs/estimators.md).

Pi of a step is the translation-induced image motion in units of focal length,
read over the depth of the frame the step starts from. Depth is planar Z with
background (sky, nothing hit) as +inf, which moves by zero.
"""
from __future__ import annotations

import numpy as np

ESTIMATORS = ("harmonic", "mean", "flow")


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
    xy = normalized_grid(K, depth.shape[1], depth.shape[0]) if estimator == "flow" else None
    return parallax(depth, d, estimator, xy)
