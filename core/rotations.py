"""Vectorised rotation helpers: quaternions (w, x, y, z, Hamilton), slerp, angles."""
from __future__ import annotations

import numpy as np


def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4), w >= 0."""
    R = np.asarray(R, dtype=float)
    shape = R.shape[:-2]
    R = R.reshape(-1, 3, 3)
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    # Shepperd's method: build from the largest of the four candidates for stability.
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                     1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=1)
    k = np.argmax(cand, axis=1)
    r = np.sqrt(np.maximum(cand[np.arange(len(k)), k], 1e-300))
    s = 0.5 / r
    half = 0.5 * r
    a = (R[:, 2, 1] - R[:, 1, 2]) * s
    b = (R[:, 0, 2] - R[:, 2, 0]) * s
    c = (R[:, 1, 0] - R[:, 0, 1]) * s
    xy = (R[:, 0, 1] + R[:, 1, 0]) * s
    xz = (R[:, 0, 2] + R[:, 2, 0]) * s
    yz = (R[:, 1, 2] + R[:, 2, 1]) * s
    cases = [k == 0, k == 1, k == 2, k == 3]
    q = np.stack([np.select(cases, [half, a, b, c]),
                  np.select(cases, [a, half, xy, xz]),
                  np.select(cases, [b, xy, half, yz]),
                  np.select(cases, [c, xz, yz, half])], axis=1)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q.reshape(shape + (4,))


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) (w, x, y, z), normalised here -> matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=float)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def continuous_quats(q: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions lie in the same hemisphere (no flips
    when keyed and interpolated component-wise)."""
    q = np.array(q, dtype=float)
    if len(q) < 2:
        return q
    dots = np.einsum("ij,ij->i", q[1:], q[:-1])
    flips = np.concatenate([[1.0], np.cumprod(np.where(dots < 0, -1.0, 1.0))])
    return q * flips[:, None]


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Element-wise slerp between quaternion arrays (N, 4) at fractions t (N,)."""
    q0 = np.asarray(q0, float)
    q1 = np.array(q1, float)
    t = np.asarray(t, float)[:, None]
    dot = np.einsum("ij,ij->i", q0, q1)[:, None]
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    near = sin_t < 1e-9
    safe = np.where(near, 1.0, sin_t)
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """Angle in radians of rotation matrices (..., 3, 3), robust near 0 and pi."""
    R = np.asarray(R, float)
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    # sin from the skew part keeps precision for tiny angles where arccos does not.
    skew = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0],
                     R[..., 1, 0] - R[..., 0, 1]], -1)
    sin = np.linalg.norm(skew, axis=-1) / 2.0
    return np.arctan2(sin, np.clip(cos, -1.0, 1.0))


def is_rotation(R: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """Per-matrix check that R (..., 3, 3) is orthonormal with determinant +1."""
    R = np.asarray(R, float)
    eye = np.eye(3)
    err = np.abs(np.swapaxes(R, -1, -2) @ R - eye).max(axis=(-2, -1))
    return (err < tol) & (np.abs(np.linalg.det(R) - 1.0) < tol) & np.isfinite(R).all(axis=(-2, -1))
