"""Evaluation metrics (docs/metrics.md): PCE, and CameraCtrl's TransErr / RotErr."""
from __future__ import annotations

import numpy as np

from .cameras import relative_poses
from .rotations import rotation_angle

PI_FLOOR = 1e-9


def pce(pi_realised, pi_ref) -> dict:
    """Parallax Consistency Error: |ln(realised / reference)| per step, over steps where
    both exceed 1e-9. Returns mean, 90th percentile, the per-step values (nan where
    excluded) and how many steps counted."""
    real = np.asarray(pi_realised, float).reshape(-1)
    ref = np.asarray(pi_ref, float).reshape(-1)
    if real.shape != ref.shape:
        raise ValueError(f"PCE needs one realised Pi per reference Pi ({len(ref)}), got {len(real)}")
    valid = (real > PI_FLOOR) & (ref > PI_FLOOR) & np.isfinite(real) & np.isfinite(ref)
    per_step = np.full(real.shape, np.nan)
    per_step[valid] = np.abs(np.log(real[valid] / ref[valid]))
    if not valid.any():
        return {"mean": float("nan"), "p90": float("nan"), "per_step": per_step, "n": 0}
    return {"mean": float(per_step[valid].mean()), "p90": float(np.percentile(per_step[valid], 90)),
            "per_step": per_step, "n": int(valid.sum())}


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True):
    """Similarity (s, R, t) minimising sum |dst - (s R src + t)|^2 (Umeyama 1991)."""
    src = np.asarray(src, float)
    dst = np.asarray(dst, float)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = (xs ** 2).sum() / len(src)
    if var_s < 1e-300:
        return 1.0, np.eye(3), mu_d - mu_s
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def trans_err(centers: np.ndarray, ref_centers: np.ndarray) -> float:
    """Sum over frames of |c_t - c*_t| after Sim(3) alignment of c onto c*."""
    s, R, t = umeyama(centers, ref_centers)
    aligned = s * np.asarray(centers, float) @ R.T + t
    return float(np.linalg.norm(aligned - ref_centers, axis=1).sum())


def rot_err(rotations: np.ndarray, ref_rotations: np.ndarray) -> float:
    """Sum over frames of the angle (degrees) of R_t^T R*_t."""
    R = np.asarray(rotations, float)
    Rs = np.asarray(ref_rotations, float)
    return float(np.degrees(rotation_angle(np.swapaxes(R, -1, -2) @ Rs)).sum())


def trajectory_errors(c2w: np.ndarray, ref_c2w: np.ndarray) -> dict:
    """TransErr and RotErr of a trajectory against a reference, both made relative
    to their first frame (as CameraCtrl compares generated and ground-truth poses)."""
    a = relative_poses(c2w)
    b = relative_poses(ref_c2w)
    return {"trans_err": trans_err(a[:, :3, 3], b[:, :3, 3]),
            "rot_err": rot_err(a[:, :3, :3], b[:, :3, :3])}


def best_world_rotation(rotations: np.ndarray, ref_rotations: np.ndarray) -> np.ndarray:
    """The rotation A minimising sum |A R_t - R*_t|^2 (orthogonal Procrustes, SVD)."""
    M = np.einsum("nij,nkj->ik", np.asarray(ref_rotations, float), np.asarray(rotations, float))
    U, _, Vt = np.linalg.svd(M)
    return U @ np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))]) @ Vt


def track_errors(c2w: np.ndarray, ref_c2w: np.ndarray) -> dict:
    """A recovered track against the true one, frame by frame, in a gauge-free way:
    rotation error (degrees) after the one world rotation that best fits the rotations,
    and centre error after the Sim(3) that best fits the centres (Umeyama), as a fraction
    of the true path's length (sum of its steps). Frames whose recovered pose is not finite
    are left out of the fits and reported as missing."""
    c2w = np.asarray(c2w, float)
    ref = np.asarray(ref_c2w, float)
    if c2w.shape != ref.shape:
        raise ValueError(f"tracks of different lengths: {c2w.shape} vs {ref.shape}")
    ok = np.isfinite(c2w.reshape(len(c2w), -1)).all(axis=1)
    rot = np.full(len(c2w), np.nan)
    cen = np.full(len(c2w), np.nan)
    if ok.sum() >= 3:
        R, Rs = c2w[ok, :3, :3], ref[ok, :3, :3]
        A = best_world_rotation(R, Rs)
        rot[ok] = np.degrees(rotation_angle(np.swapaxes(A @ R, -1, -2) @ Rs))
        s, Rc, t = umeyama(c2w[ok, :3, 3], ref[ok, :3, 3])
        aligned = s * c2w[ok, :3, 3] @ Rc.T + t
        path = float(np.linalg.norm(np.diff(ref[:, :3, 3], axis=0), axis=1).sum())
        cen[ok] = np.linalg.norm(aligned - ref[ok, :3, 3], axis=1) / max(path, 1e-300)
    return {"rot_deg": rot, "centre_frac": cen, "rot_max_deg": float(np.nanmax(rot)) if ok.any() else float("nan"),
            "rot_median_deg": float(np.nanmedian(rot)) if ok.any() else float("nan"),
            "centre_max_frac": float(np.nanmax(cen)) if ok.any() else float("nan"),
            "centre_median_frac": float(np.nanmedian(cen)) if ok.any() else float("nan"),
            "missing": [int(i) for i in np.flatnonzero(~ok)]}


# ---------------------------------------------------------------------------
# CamI2V's camera metrics (ZGCTroy/CamI2V evaluation/glomap_evaluation.py `metric`,
# utils/common.py `normalize_t`), the figures this field reports beside PCE.

def _cami2v_normalize_t(c2w: np.ndarray, ref: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Translations divided by the largest camera distance from the origin in `ref`."""
    scale = np.linalg.norm(ref[:, :3, 3], axis=1).max() + eps
    out = np.array(c2w, float, copy=True)
    out[:, :3, 3] /= scale
    return out


def cami2v_errors(c2w: np.ndarray, ref_c2w: np.ndarray) -> dict:
    """CamI2V's RotErr, TransErr and CamMC of a trajectory against a reference, both
    made relative to their first frame (c2w_0^-1 c2w_t):
      RotErr   = sum_t arccos((tr(R*_t^T R_t) - 1) / 2), in radians as CamI2V sums it;
      TransErr = sum_t |t_t - t*_t| with each trajectory's translations divided by its
                 own largest distance from the first camera (CamI2V's "relative" variant,
                 scale free);
      CamMC    = sum_t |[R|t]_t - [R*|t*]_t|_F on the same normalised 3x4 poses.
    Both trajectories must have the same frame count."""
    a = relative_poses(np.asarray(c2w, float))
    b = relative_poses(np.asarray(ref_c2w, float))
    if a.shape != b.shape:
        raise ValueError(f"CamI2V metrics need equal frame counts, got {len(a)} and {len(b)}")
    cos = (np.trace(np.swapaxes(b[:, :3, :3], -1, -2) @ a[:, :3, :3], axis1=-2, axis2=-1) - 1) / 2
    rot = float(np.arccos(np.clip(cos, -1, 1)).sum())
    an, bn = _cami2v_normalize_t(a, a), _cami2v_normalize_t(b, b)
    trans = float(np.linalg.norm(an[:, :3, 3] - bn[:, :3, 3], axis=1).sum())
    cammc = float(np.linalg.norm((an[:, :3, :4] - bn[:, :3, :4]).reshape(len(a), 12), axis=1).sum())
    return {"cami2v_rot_err": rot, "cami2v_trans_err": trans, "cami2v_cammc": cammc}
