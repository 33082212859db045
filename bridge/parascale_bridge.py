#!/usr/bin/env python3
"""ParaScale generator bridge: one standalone file, needs only numpy (never bpy, never
parascale), so it runs inside a video generator's own environment.

    python parascale_bridge.py POSES.json --generator G --out DIR
           [--size HxW] [--frames N] [--speed K] [--plucker] [--force] [--run REPO]

POSES is a ParaScale .json (schema "parascale.poses", written by ParaScale's export) or
a RealEstate10K .txt (its normalised intrinsics are read as square pixels at a height of
576, e.g. 1024x576 for the 16:9 originals; only the aspect ratio matters).

It writes into DIR (built in a temporary folder and swapped in at the end: an error
leaves nothing behind). An existing DIR is replaced only as far as its manifest.json
says ParaScale wrote it (name, size and SHA-256 of every file): files the user added or
changed there stay, and the run says so; a folder without a valid manifest that holds
anything is refused (--force replaces it whole). Limits, refused before any work:
--speed 1e-6..1e6; a recorded depth scale or unit scale 1e-9..1e9; --size 1..65536 a
side, the Plucker tensor at most 16 GiB and within the memory available; fields of view
1..179 degrees. The files written:
  - the generator's pose file,
  - its conditioning tensor as .npy: for Plucker-conditioned generators (cameractrl,
    wan-fun-camera, uni3c) plucker.npy only with --plucker (the generators compute it
    from the pose file themselves; at 81x480x832 it is 388 MB even as float16), shape
    (frames, 6, H, W), float16 for the Wan-based models (VideoX-Fun and Uni3C run Wan in
    bfloat16/float16; float16 keeps the embedding to 5e-4 relative, finer than the
    model reads it) and float32 for CameraCtrl, in CameraCtrl's ray_condition
    convention: pixel centres at +0.5, d = normalize(R_c2w K^-1 [u, v, 1]), o = camera
    centre, poses made relative to frame 0 first, channels [o x d, d] (Uni3C: [d, o x d]);
    otherwise the camera tensor the generator builds from its pose file (small);
    the manifest's "plucker" entry and the printed summary say which was done,
  - command.txt: the exact command line of the generator's own inference script,
  - manifest.json: what was written (each file's size and SHA-256), frame count, size,
    units, and notes.

Translation gauge (--speed K multiplies on top, named as such):
  a generator reads translation, but feels translation / depth. Each generator has a
  gauge, the depth scale its training poses assume (GAUGES below, the same table as
  ParaScale's core/gauge.py): the bridge writes
      translation x generator depth scale / scene depth scale x speed
  where the scene depth scale is the one a ParaScale export measured at the start
  frame and recorded in the .json ("meta" -> "gauge" -> "scene_depth_scale", scene
  units). So the same calibrated move from a 1 cm or a 10 km scene gives the same files.
  cameractrl, wan-fun-camera, motionctrl: RealEstate10K units; their gauge (3.568) is
      the median effective depth of RealEstate10K clips in their own pose units,
      measured from the clips' video. None of them rescales translation (MotionCtrl's SVD
      script multiplies x, y, z by 3, 1, 4 itself).
  recammaster: metres (its training cameras start 3, 5, 7 or 10 m from the subject;
      gauge 5.69 m, their geometric mean); the file is in centimetres, ReCamMaster
      divides by 100.
  gen3c, uni3c: units of the start frame's depth scale (they scale their own offsets by
      the image's centre / median foreground depth).
  A RealEstate10K .txt is already in the RealEstate10K gauge. A ParaScale .json without
  a recorded depth scale is written in metres 1:1 (unit_scale), with a warning.
  The bridge warns, naming the frames, when the move leaves the range of Pi per step
  and total path the generator's training data covers.

Frame counts: cameractrl 16 (AnimateDiff), 14 or 25 (SVD branch); motionctrl 16
(VideoCrafter) or 14 (SVD); wan-fun-camera, uni3c: 4k+1 (default 81); recammaster: 81
exactly; gen3c: 120k+1 (default 121). Without --frames, a track whose
frame count the generator takes keeps it; otherwise the generator's default is used.
A track with another frame count is resampled to
N evenly spaced times (slerp rotations, linear centres); one with N frames is used as is.

Intrinsics: the source image is scaled to cover --size and centre-cropped (as CameraCtrl
and VideoX-Fun treat an aspect mismatch). RealEstate10K files written for CameraCtrl and
VideoX-Fun are pre-corrected for the 1280x720 source size those scripts assume by
default, so the K they compute equals the K behind plucker.npy.

--run REPO executes the command inside REPO when everything it needs is there, and
otherwise says precisely what is missing. Model weights are never downloaded here.

Exit status 0 on success, 2 on any error (message names the file), 3 when --run finds
something missing (the files are still written).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SCHEMA = "parascale.poses"
SCHEMA_VERSION = 1


class BridgeError(Exception):
    pass


# ---------------------------------------------------------------------------
# Rotations (w, x, y, z)

def quat_from_matrix(R):
    R = np.asarray(R, float).reshape(-1, 3, 3)
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    cand = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], 1)
    k = np.argmax(cand, 1)
    r = np.sqrt(np.maximum(cand[np.arange(len(k)), k], 1e-300))
    s, half = 0.5 / r, 0.5 * r
    a, b, c = (R[:, 2, 1] - R[:, 1, 2]) * s, (R[:, 0, 2] - R[:, 2, 0]) * s, (R[:, 1, 0] - R[:, 0, 1]) * s
    xy, xz, yz = (R[:, 0, 1] + R[:, 1, 0]) * s, (R[:, 0, 2] + R[:, 2, 0]) * s, (R[:, 1, 2] + R[:, 2, 1]) * s
    cases = [k == 0, k == 1, k == 2, k == 3]
    q = np.stack([np.select(cases, [half, a, b, c]), np.select(cases, [a, half, xy, xz]),
                  np.select(cases, [b, xy, half, yz]), np.select(cases, [c, xz, yz, half])], 1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def matrix_from_quat(q):
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                     np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                     np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def slerp(q0, q1, t):
    t = t[:, None]
    dot = np.sum(q0 * q1, 1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    theta = np.arccos(np.clip(np.abs(dot), -1, 1))
    sin = np.sin(theta)
    near = sin < 1e-9
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def rigid_inverse(T):
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    out = np.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3])
    out[..., 3, 3] = 1
    return out


def resample(c2w, K, times, n):
    """Poses and K at n evenly spaced times over the span (slerp, linear)."""
    new = np.linspace(times[0], times[-1], n)
    i = np.clip(np.searchsorted(times, new, side="right") - 1, 0, len(times) - 2)
    frac = (new - times[i]) / (times[i + 1] - times[i])
    q = quat_from_matrix(c2w[:, :3, :3])
    flips = np.concatenate([[1.0], np.cumprod(np.where(np.sum(q[1:] * q[:-1], 1) < 0, -1.0, 1.0))])
    q = q * flips[:, None]
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, :3] = matrix_from_quat(slerp(q[i], q[i + 1], frac))
    out[:, :3, 3] = c2w[i, :3, 3] * (1 - frac)[:, None] + c2w[i + 1, :3, 3] * frac[:, None]
    Kn = K[i] * (1 - frac)[:, None, None] + K[i + 1] * frac[:, None, None]
    return out, Kn, new


# ---------------------------------------------------------------------------
# Input validation. A deliberate, small duplicate of parascale.core.formats.validate: this file
# must run in a generator's environment with numpy only, so it cannot import parascale.
# Same rules: poses finite, bounded, rotations orthonormal with det +1; K finite with
# fx, fy > 0 and last row 0 0 1; image sides 1..65536; unit_scale finite and > 0.
# Keep the two in step when a rule changes.

ROT_TOL = 1e-4
MAX_IMAGE_SIDE = 65536
MAX_FRAMES = 1_000_000
MAX_MAGNITUDE = 1e9
MAX_JSON_DEPTH = 64
MIN_FOV_DEG, MAX_FOV_DEG = 1.0, 179.0

# Limits on what the bridge computes, refused before any work (docs/robustness-outputs.md).
# --speed multiplies a calibrated move: a millionth to a million times it. A depth scale or
# unit scale is a distance in scene units like every coordinate: 1e-9 to 1e9 (beyond,
# the translation written would overflow or vanish in float32). One conditioning tensor
# is at most MAX_TENSOR_BYTES and must fit in the memory available (and on the disk).
MIN_SPEED, MAX_SPEED = 1e-6, 1e6
MIN_SCALE, MAX_SCALE = 1e-9, 1e9
MAX_TENSOR_BYTES = 16 << 30


def _rows_where(path, where, i):
    return f"{path} {where(i)}" if where else f"{path} frame {i}"


def _check_values(path, arr, what, where=None):
    flat = np.asarray(arr, float).reshape(len(arr), -1)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(flat).all(axis=1) | (np.abs(flat) > MAX_MAGNITUDE).any(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise BridgeError(f"{_rows_where(path, where, i)}: {what} is not finite or beyond +-{MAX_MAGNITUDE:g}")


def _check_poses(path, c2w, where=None):
    _check_values(path, c2w, "the pose", where)
    dev = np.abs(c2w[:, 3] - [0, 0, 0, 1]).max(axis=1)
    R = c2w[:, :3, :3]
    err = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(R)
    bad = (dev > 1e-6) | (err > ROT_TOL) | (np.abs(det - 1) > ROT_TOL)
    if bad.any():
        i = int(np.argmax(bad))
        raise BridgeError(f"{_rows_where(path, where, i)}: a pose is not a rotation (orthonormal, determinant +1) "
                          "with last row 0 0 0 1")


def _check_intrinsics(path, K, where=None):
    _check_values(path, K, "the intrinsics K", where)
    bad = ~((K[:, 0, 0] > 0) & (K[:, 1, 1] > 0)) | (np.abs(K[:, 2] - [0, 0, 1]).max(axis=1) > 1e-9) \
        | (K[:, 1, 0] != 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise BridgeError(f"{_rows_where(path, where, i)}: intrinsics need fx, fy > 0 and last row 0 0 1, got "
                          f"fx={K[i, 0, 0]:g} fy={K[i, 1, 1]:g} last row {K[i, 2].tolist()}")


def _check_fov(path, K, W, H, where=None, what="implies"):
    """Fields of view of MIN_FOV_DEG..MAX_FOV_DEG degrees on both axes (core.formats.validate.check_fov)."""
    with np.errstate(over="ignore", divide="ignore"):
        fx = np.degrees(2 * np.arctan(W / (2 * K[:, 0, 0])))
        fy = np.degrees(2 * np.arctan(H / (2 * K[:, 1, 1])))
    bad = ~((fx >= MIN_FOV_DEG) & (fx <= MAX_FOV_DEG) & (fy >= MIN_FOV_DEG) & (fy <= MAX_FOV_DEG))
    if bad.any():
        i = int(np.argmax(bad))
        xb = not MIN_FOV_DEG <= fx[i] <= MAX_FOV_DEG
        axis, f, side, fov = ("horizontal", K[i, 0, 0], W, fx[i]) if xb else ("vertical", K[i, 1, 1], H, fy[i])
        raise BridgeError(f"{_rows_where(path, where, i)}: focal length {f:.6g} px across {side} px {what} a {axis} "
                          f"field of view of {fov:.4g} degrees; expected {MIN_FOV_DEG:g} to {MAX_FOV_DEG:g} degrees")


def _check_size(path, W, H):
    for label, v in (("width", W), ("height", H)):
        # range first: math.isfinite of a 400-digit integer overflows
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 1 <= v <= MAX_IMAGE_SIDE \
                or v != int(v):
            raise BridgeError(f"{path}: image {label} must be a whole number of pixels from 1 to "
                              f"{MAX_IMAGE_SIDE}, got {v!r}")
    return int(W), int(H)


def _load_json(path, text):
    """json.loads with nesting bounded (no RecursionError) and big numbers refused."""
    depth = 0
    for tok in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        c = tok.group()
        depth += 1 if c in "[{" else -1 if c in "]}" else 0
        if depth > MAX_JSON_DEPTH:
            raise BridgeError(f"{path}: malformed JSON (nested deeper than {MAX_JSON_DEPTH} levels)")
    if (text.count("[") + text.count("{")) * 4 > len(text) + 64:
        raise BridgeError(f"{path}: malformed JSON (mostly brackets, not a pose file)")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, integers over 4300 digits
        raise BridgeError(f"{path}: malformed JSON ({str(exc)[:200]})")


def _matrix(path, i, value, shape, what):
    try:
        ok = isinstance(value, list) and len(value) == shape[0] and all(
            isinstance(r, list) and len(r) == shape[1]
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) for r in value)
        if ok:
            return np.array(value, float)
    except OverflowError:
        pass
    raise BridgeError(f"{path} frame {i}: malformed ParaScale pose file ({what} must be a "
                      f"{shape[0]}x{shape[1]} list of numbers)")


def _number(path, where, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BridgeError(f"{path} {where}: malformed ParaScale pose file (expected a number, got {str(v)[:40]})")
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise BridgeError(f"{path} {where}: {v} is not a finite number")
    return f


# ---------------------------------------------------------------------------
# Input

def load_poses(path: Path, size=None) -> dict:
    """{'c2w', 'K', 'width', 'height', 'times', 'unit_scale', 'kind'} from a ParaScale
    .json or a RealEstate10K .txt. Raises BridgeError naming the file (and the frame
    or line) for anything malformed; never a raw exception."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BridgeError(f"{path}: cannot read (not UTF-8 text at byte {exc.start})")
    except OSError as exc:
        raise BridgeError(f"{path}: cannot read ({exc})")
    try:
        return _parse_poses(path, text, size)
    except BridgeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError, RecursionError,
            ZeroDivisionError, np.linalg.LinAlgError) as exc:  # the net under the named checks
        raise BridgeError(f"{path}: cannot read as a pose file ({type(exc).__name__}: {str(exc)[:200]})")


def _parse_poses(path: Path, text: str, size) -> dict:
    line_of = None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        doc = _load_json(path, text)
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise BridgeError(f"{path}: not a ParaScale pose file (expected \"schema\": \"{SCHEMA}\")")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
            raise BridgeError(f"{path}: unsupported ParaScale schema version {str(version)[:40]!r}")
        frames = doc.get("frames")
        if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
            raise BridgeError(f"{path}: malformed ParaScale pose file (\"frames\" must be a list of objects)")
        if len(frames) > MAX_FRAMES:
            raise BridgeError(f"{path}: {len(frames)} frames, more than {MAX_FRAMES}")
        for i, f in enumerate(frames):
            missing = [k for k in ("c2w", "K", "time") if k not in f]
            if missing:
                raise BridgeError(f"{path} frame {i}: malformed ParaScale pose file (missing {', '.join(missing)})")
        c2w = np.array([_matrix(path, i, f["c2w"], (4, 4), "c2w") for i, f in enumerate(frames)]).reshape(-1, 4, 4)
        K = np.array([_matrix(path, i, f["K"], (3, 3), "K") for i, f in enumerate(frames)]).reshape(-1, 3, 3)
        times = np.array([_number(path, f"frame {i} time", f["time"]) for i, f in enumerate(frames)], float)
        size_doc = doc.get("image_size")
        if not isinstance(size_doc, dict) or "width" not in size_doc or "height" not in size_doc:
            raise BridgeError(f"{path}: malformed ParaScale pose file (\"image_size\" needs width and height)")
        W, H = _check_size(path, size_doc["width"], size_doc["height"])
        unit = doc.get("unit_scale")
        unit = 1.0 if unit is None else _number(path, "unit_scale", unit)
        if not unit > 0:
            raise BridgeError(f"{path} unit_scale: must be a positive number of metres per scene unit, got {unit}")
        if not MIN_SCALE <= unit <= MAX_SCALE:
            raise BridgeError(f"{path} unit_scale: {unit:g} metres per scene unit is outside {MIN_SCALE:g} to "
                              f"{MAX_SCALE:g} (the translation written would overflow or vanish)")
        meta = doc.get("meta")
        recorded = meta.get("gauge") if isinstance(meta, dict) else None
        recorded = recorded if isinstance(recorded, dict) else {}
        depth_scale = recorded.get("scene_depth_scale")
        if depth_scale is not None:
            depth_scale = _number(path, "meta.gauge.scene_depth_scale", depth_scale)
            if not (math.isfinite(depth_scale) and depth_scale > 0):
                raise BridgeError(f"{path}: meta.gauge.scene_depth_scale must be a positive number, got {depth_scale!r}")
            if not MIN_SCALE <= depth_scale <= MAX_SCALE:
                raise BridgeError(f"{path}: meta.gauge.scene_depth_scale {depth_scale:g} is outside {MIN_SCALE:g} to "
                                  f"{MAX_SCALE:g} scene units (a depth scale is a distance, bounded like every "
                                  "coordinate; the translation written would overflow or vanish)")
        kind = "parascale"
    else:
        lines = [l.split() for l in text.splitlines()]
        rows, where = [], []
        for n, tok in enumerate(lines, 1):
            if not tok or (n == 1 and len(tok) != 19):
                continue
            try:
                vals = [float(x) for x in tok]
            except ValueError:
                raise BridgeError(f"{path} line {n}: not a number in a RealEstate10K pose line")
            if len(vals) != 19:
                raise BridgeError(f"{path} line {n}: expected 19 numbers, got {len(vals)}")
            rows.append(vals)
            where.append(n)
        if not rows:
            raise BridgeError(f"{path}: no pose lines (neither a ParaScale .json nor a RealEstate10K .txt)")
        if len(rows) > MAX_FRAMES:
            raise BridgeError(f"{path}: {len(rows)} frames, more than {MAX_FRAMES}")
        a = np.array(rows)
        line_of = lambda i: f"line {where[i]}"  # noqa: E731
        _check_values(path, a[:, 1:], "a number", line_of)  # the timestamp (microseconds) may exceed 1e9
        if not np.isfinite(a[:, 0]).all():
            i = int(np.argmax(~np.isfinite(a[:, 0])))
            raise BridgeError(f"{path} line {where[i]}: the timestamp is not finite")
        bad = ~((a[:, 1] > 0) & (a[:, 2] > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise BridgeError(f"{path} line {where[i]}: normalised focal lengths fx/W, fy/H must be positive, "
                              f"got {a[i, 1]:g} {a[i, 2]:g}")
        if size is not None:
            H, W = size
        else:
            H = 576
            W = round(H * a[0, 2] / a[0, 1] / 2) * 2
            if not 2 <= W <= MAX_IMAGE_SIDE:
                raise BridgeError(f"{path} line {where[0]}: fx/W and fy/H give an aspect ratio of "
                                  f"{a[0, 2] / a[0, 1]:g}; not an image")
        W, H = _check_size(path, W, H)
        w2c = np.tile(np.eye(4), (len(a), 1, 1))
        w2c[:, :3, :4] = a[:, 7:].reshape(-1, 3, 4)
        _check_poses(path, w2c, line_of)
        c2w = rigid_inverse(w2c)
        K = np.zeros((len(a), 3, 3))
        K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = a[:, 1] * W, a[:, 2] * H, a[:, 3] * W, a[:, 4] * H, 1
        st = a[:, 0]
        times = (st - st[0]) * 1e-6 if len(st) > 1 and np.all(np.diff(st) > 0) else np.arange(len(a)) / 24.0
        unit, kind = 1.0, "re10k"
        depth_scale, recorded = RE10K_GAUGE["depth"], {"scene_depth_scale": RE10K_GAUGE["depth"],
                                                       "note": "a RealEstate10K file is in the RealEstate10K gauge"}
    n = len(c2w)
    if n < 2:
        raise BridgeError(f"{path}: the track has {n} frame(s); a camera move needs at least 2")
    if c2w.shape != (n, 4, 4) or K.shape != (n, 3, 3) or times.shape != (n,):
        raise BridgeError(f"{path}: inconsistent shapes: poses {c2w.shape}, K {K.shape}, times {times.shape}")
    _check_poses(path, c2w)
    _check_intrinsics(path, K)
    _check_fov(path, K, W, H, line_of if kind == "re10k" else None)
    _check_values(path, times[:, None], "the frame time")
    if np.any(np.diff(times) <= 0):
        raise BridgeError(f"{path}: frame times must increase")
    return {"c2w": c2w, "K": K, "width": W, "height": H, "times": times, "unit_scale": unit, "kind": kind,
            "depth_scale": depth_scale, "recorded_gauge": recorded}


def gauge_factor(gen, track, speed):
    """(factor, record): scene translation -> gen's units, and what the manifest says."""
    g = GAUGES[gen]
    D = track["depth_scale"]
    if D is None:
        factor = track["unit_scale"] * speed
        return factor, {"generator": gen, "scene_depth_scale": None, "generator_depth_scale": None,
                        "units": "metres (no depth scale recorded: not in the generator's gauge)",
                        "speed": speed, "factor": factor}
    factor = g["depth"] / D * speed
    rec = dict(track.get("recorded_gauge") or {})
    rec.update({"generator": gen, "scene_depth_scale": D, "generator_depth_scale": g["depth"],
                "units": g["units"], "speed": speed, "factor": factor,
                "rule": "translation x generator_depth_scale / scene_depth_scale x speed"})
    rec.pop("generator_units", None)
    return factor, rec


# ---------------------------------------------------------------------------
# Conditioning

def fit_intrinsics(K, W, H, out_h, out_w):
    """K at out_w x out_h after scaling the W x H image to cover it and cropping the
    centre (CameraCtrl / VideoX-Fun handle an aspect mismatch the same way)."""
    s = max(out_w / W, out_h / H)
    K2 = K.copy()
    K2[:, 0, 0] *= s
    K2[:, 1, 1] *= s
    K2[:, 0, 2] = K[:, 0, 2] * s - (W * s - out_w) / 2
    K2[:, 1, 2] = K[:, 1, 2] * s - (H * s - out_h) / 2
    return K2


def plucker(c2w, K, H, W, order="cameractrl", dtype=np.float32):
    """(N, 6, H, W) Plucker embedding of poses already made relative (computed in float64,
    stored as dtype frame by frame)."""
    n = len(c2w)
    u = np.arange(W, dtype=np.float64) + 0.5
    v = np.arange(H, dtype=np.float64) + 0.5
    out = np.empty((n, 6, H, W), dtype)
    for f in range(n):
        x = (u[None, :] - K[f, 0, 2]) / K[f, 0, 0]
        y = (v[:, None] - K[f, 1, 2]) / K[f, 1, 1]
        d = np.stack(np.broadcast_arrays(x, y, np.ones((H, W))), -1)
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        d = d @ c2w[f, :3, :3].T
        o = np.broadcast_to(c2w[f, :3, 3], d.shape)
        m = np.cross(o, d)
        pair = (m, d) if order == "cameractrl" else (d, m)
        out[f] = np.concatenate(pair, -1).transpose(2, 0, 1)
    return out


def relative_to_first(c2w):
    return rigid_inverse(c2w[0])[None] @ c2w


def re10k_text(c2w, K, W, H, times, assumed_wh=None):
    """RealEstate10K lines. assumed_wh: the (W, H) the consumer assumes the pose file was
    made at (VideoX-Fun fixes 1280x720): fx is pre-divided so its aspect correction
    gives back our K at W x H."""
    fxW = K[:, 0, 0] / W
    fyH = K[:, 1, 1] / H
    if assumed_wh is not None:
        pose_ratio, sample_ratio = assumed_wh[0] / assumed_wh[1], W / H
        if pose_ratio > sample_ratio:
            fxW = K[:, 0, 0] / (H * pose_ratio)
        else:
            fyH = K[:, 1, 1] / (W / pose_ratio)
    w2c = rigid_inverse(c2w)
    lines = ["https://parascale.invalid/bridge"]
    for i in range(len(c2w)):
        nums = [fxW[i], fyH[i], K[i, 0, 2] / W, K[i, 1, 2] / H, 0.0, 0.0] + list(w2c[i, :3, :4].ravel())
        lines.append(" ".join([str(int(round(times[i] * 1e6)))] + [repr(float(x)) for x in nums]))
    return "\n".join(lines) + "\n"


def ue_text(c2w_m):
    """ReCamMaster camera_extrinsics.json text, one camera "cam01", centimetres.
    World mapping as ParaScale's writer: swap x and y (Blender Z-up -> Unreal)."""
    G = np.array([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]])
    doc = {}
    for i, T in enumerate(c2w_m):
        R, c = T[:3, :3], T[:3, 3]
        rows = [G @ R[:, 2], G @ R[:, 0], -(G @ R[:, 1]), G @ c * 100.0]
        s = "".join("[" + " ".join(f"{v:g}" for v in list(r) + [0.0 if k < 3 else 1.0]) + "] "
                    for k, r in enumerate(rows))
        doc[f"frame{i}"] = {"cam01": s}
    return json.dumps(doc, indent=4)


# ---------------------------------------------------------------------------
# Generators

def _4k1(n):
    return n >= 5 and (n - 1) % 4 == 0


GENERATORS = {
    "cameractrl": {"frames": 16, "ok": lambda n: n in (16, 14, 25), "ok_text": "16 (AnimateDiff), 14 or 25 (SVD)",
                   "size": (256, 384), "repo": "hehao13/CameraCtrl"},
    "motionctrl": {"frames": 16, "ok": lambda n: n in (16, 14), "ok_text": "16 (VideoCrafter) or 14 (SVD)",
                   "size": (256, 256), "repo": "TencentARC/MotionCtrl"},
    "wan-fun-camera": {"frames": 81, "ok": _4k1, "ok_text": "4k+1 (81 by default)",
                       "size": (480, 832), "repo": "aigc-apps/VideoX-Fun"},
    "recammaster": {"frames": 81, "ok": lambda n: n == 81, "ok_text": "exactly 81",
                    "size": (480, 832), "repo": "KwaiVGI/ReCamMaster"},
    "gen3c": {"frames": 121, "ok": lambda n: n >= 121 and (n - 1) % 120 == 0, "ok_text": "120k+1 (121, 241, ...)",
              "size": (704, 1280), "repo": "nv-tlabs/GEN3C"},
    "uni3c": {"frames": 81, "ok": _4k1, "ok_text": "4k+1 (81 by default)",
              "size": (480, 832), "repo": "ewrfcas/Uni3C"},
}

# The gauge table: a copy of core/gauge.py's GAUGES (the bridge must run without
# ParaScale; tests/test_gauge.py checks the two agree). depth: the depth scale the
# generator's training poses assume; pi_step: Pi per step its training data covers at
# `frames` frames; path: total path in depths.
RE10K_GAUGE = {"depth": 3.568, "units": "RealEstate10K units", "pi_step": (0.0102, 0.063), "path": (0.28, 0.75),
               "frames": 16}
GAUGES = {
    "cameractrl": RE10K_GAUGE,
    "wan-fun-camera": RE10K_GAUGE,
    "motionctrl": RE10K_GAUGE,
    "recammaster": {"depth": (3.0 * 5.0 * 7.0 * 10.0) ** 0.25, "units": "metres (file: centimetres)",
                    "pi_step": (0.25 / 80 / 4, 1.0 / 80 * 4), "path": (0.25, 1.0), "frames": 81},
    "gen3c": {"depth": 1.0, "units": "start-frame depth scales", "pi_step": (0.05 / 120 / 2, 1.0 / 120 * 2),
              "path": (0.05, 1.0), "frames": 121},
    "uni3c": {"depth": 1.0, "units": "start-frame depth scales", "pi_step": (0.05 / 80 / 2, 1.0 / 80 * 2),
              "path": (0.05, 1.0), "frames": 81},
}


def range_check(gen, c2w):
    """Pi per step of a move already in gen's gauge (|step| / generator depth scale), the
    training range at its frame count, and the frames (index t + 1 of step t) that leave
    it: too fast, too slow (steps without translation never count). core/gauge.py
    move_in_range, same rule."""
    g = GAUGES[gen]
    n = len(c2w)
    pi = np.linalg.norm(np.diff(c2w[:, :3, 3], axis=0), axis=1) / g["depth"]
    k = (g["frames"] - 1) / max(1, n - 1)
    lo, hi = g["pi_step"][0] * k, g["pi_step"][1] * k
    return {"pi_step": pi, "pi_step_range": (lo, hi), "path": float(pi.sum()), "path_range": tuple(g["path"]),
            "too_fast": [int(t) + 1 for t in np.flatnonzero(pi > hi)],
            "too_slow": [int(t) + 1 for t in np.flatnonzero((pi > 1e-12) & (pi < lo))]}


def range_warnings(gen, c2w):
    """Messages naming the frames where a move already in gen's gauge leaves the range
    its training data covers (range_check)."""
    r = range_check(gen, c2w)
    n = len(c2w)
    pi, (lo, hi), (plo, phi) = r["pi_step"], r["pi_step_range"], r["path_range"]
    out = []
    fast, slow = r["too_fast"], r["too_slow"]
    if fast:
        out.append(f"{gen}: frames {', '.join(map(str, fast))} move faster than its training data "
                   f"(Pi per step up to {pi.max():.3g}, training range {lo:.3g}..{hi:.3g})")
    if slow:
        out.append(f"{gen}: frames {', '.join(map(str, slow))} move slower than its training data "
                   f"(training range {lo:.3g}..{hi:.3g} per step)")
    path = float(pi.sum())
    if path > phi or 0 < path < plo:
        out.append(f"{gen}: the whole move travels {path:.3g} depths, outside its training data "
                   f"({plo:.3g}..{phi:.3g}) over frames 0..{n - 1}")
    return out


# Names MotionCtrl's scripts read from their pose folder (hard-coded lists in
# main/evaluation/motionctrl_prompts_camerapose_trajs.py and main/inference/motionctrl_cmcm.py).
MOTIONCTRL_NAMES = {
    16: ["test_camera_d971457c81bca597", "test_camera_Round-ZoomIn", "test_camera_L", "test_camera_D",
         "test_camera_I", "test_camera_O", "test_camera_R", "test_camera_U", "test_camera_SPIN-CW-60",
         "test_camera_SPIN-ACW-60", "test_camera_I_0.2x", "test_camera_I_0.4x", "test_camera_I_1.0x",
         "test_camera_I_2.0x", "test_camera_O_0.2x", "test_camera_O_0.4x", "test_camera_O_1.0x",
         "test_camera_O_2.0x"],
    14: ["test_camera_L", "test_camera_D", "test_camera_I", "test_camera_O", "test_camera_R", "test_camera_U",
         "test_camera_Round-ZoomIn", "test_camera_Round-RI_90"],
}

VIDEOX_RUNNER = '''"""Run VideoX-Fun's predict_v2v_control_camera.py with ParaScale's camera (written by
parascale_bridge.py). The stock script takes no command-line flags: this runner reads it,
sets control_camera_txt, video_length and sample_size, and executes it unchanged
otherwise, from the VideoX-Fun checkout (the current directory)."""
import os, re
p = "examples/wan2.1_fun/predict_v2v_control_camera.py"
s = open(p).read()
for name, value in (("control_camera_txt", {pose!r}), ("video_length", {frames}), ("sample_size", [{h}, {w}])):
    s, n = re.subn(r"(?m)^" + name + r"\\s*=.*$", name + " = " + repr(value), s, count=1)
    if n != 1:
        raise SystemExit(p + ": no line '" + name + " = ...' to set")
exec(compile(s, os.path.abspath(p), "exec"), {{"__file__": os.path.abspath(p), "__name__": "__main__"}})
'''


def build_poses(track, n, factor):
    """The n poses build() writes, translation x factor (absolute c2w)."""
    if n == len(track["c2w"]):
        c2w = track["c2w"].copy()
    else:
        c2w = resample(track["c2w"], track["K"], track["times"], n)[0]
    c2w[:, :3, 3] *= factor
    return c2w


# The dtype plucker.npy is written in with --plucker: the Wan-based models run in
# bfloat16/float16 (VideoX-Fun's weight_dtype), CameraCtrl (AnimateDiff) in float32.
PLUCKER_DTYPE = {"cameractrl": "float32", "wan-fun-camera": "float16", "uni3c": "float16"}


def plucker_record(gen, n, out_h, out_w, written):
    """The manifest's "plucker" entry: whether plucker.npy was written, its dtype, shape and size."""
    if gen not in PLUCKER_DTYPE:
        return None
    dtype = PLUCKER_DTYPE[gen]
    shape = [n, 6, out_h, out_w]
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    rec = {"written": bool(written), "file": "plucker.npy", "dtype": dtype, "shape": shape, "bytes": nbytes}
    if not written:
        rec["note"] = (f"not written: {gen} computes it from its pose file; pass --plucker to write it "
                       f"({n}x6x{out_h}x{out_w} {dtype}, {nbytes / 1e6:.0f} MB)")
    return rec


def build(gen, track, out_h, out_w, n, speed, out_dir_final, plucker_tensor=False):
    """Files (name -> bytes or ndarray), the command (list of shell lines), the REPO
    paths it needs, and notes. plucker_tensor: write plucker.npy (PLUCKER_DTYPE)."""
    if n == len(track["c2w"]):  # same count: the frames as they are (no re-timing)
        c2w, K, times = track["c2w"].copy(), track["K"].copy(), track["times"]
    else:
        c2w, K, times = resample(track["c2w"], track["K"], track["times"], n)
    factor, _ = gauge_factor(gen, track, speed)
    c2w[:, :3, 3] *= factor  # the generator's gauge x speed
    K = fit_intrinsics(K, track["width"], track["height"], out_h, out_w)
    rel = relative_to_first(c2w)
    D = str(out_dir_final)
    q = shlex.quote
    files, needs, notes = {}, [], []
    if gen == "cameractrl":
        # CameraCtrl's --original_pose_width/height default to 1280x720 on both branches:
        # the file is written so that its aspect correction gives back our K exactly.
        files["poses.txt"] = re10k_text(rel, K, out_w, out_h, times, assumed_wh=(1280, 720))
        if plucker_tensor:
            files["plucker.npy"] = plucker(rel, K, out_h, out_w, "cameractrl", PLUCKER_DTYPE[gen])
        if n == 16:
            script = "inference.py"
            cmd = [f"python -m torch.distributed.launch --nproc_per_node=1 --master_port=25000 {script} "
                   f"--out_root {q(D + '/cameractrl_out')} --ori_model_path <SD1.5_PATH> "
                   "--unet_subfolder <UNET_SUBFOLDER> --motion_module_ckpt <ADV3_MM_CKPT> "
                   "--pose_adaptor_ckpt <CAMERACTRL_CKPT> "
                   "--model_config configs/train_cameractrl/adv3_256_384_cameractrl_relora.yaml "
                   "--visualization_captions assets/cameractrl_prompts.json --use_specific_seeds "
                   f"--trajectory_file {q(D + '/poses.txt')} --n_procs 1"]
            notes.append("AnimateDiff (main branch) samples at 256x384; the placeholders in <> are the "
                         "model paths of CameraCtrl's README")
        else:
            script = "inference.py"
            cmd = [f"python {script} --out_root {q(D + '/cameractrl_out')} --num_frames {n} "
                   f"--image_height {out_h} --image_width {out_w} "
                   "--ori_model_path <SVD_PATH> --pose_adaptor_ckpt <CAMERACTRL_SVD_CKPT> "
                   "--prompt_file <PROMPT_FILE> --model_config <SVD_MODEL_CONFIG> "
                   f"--trajectory_file {q(D + '/poses.txt')} --n_procs 1"]
            notes.append("SVD branch (git checkout svd): 14 frames for svd, 25 for svd-xt")
        needs.append(script)
    elif gen == "wan-fun-camera":
        files["poses.txt"] = re10k_text(rel, K, out_w, out_h, times, assumed_wh=(1280, 720))
        if plucker_tensor:
            files["plucker.npy"] = plucker(rel, K, out_h, out_w, "cameractrl", PLUCKER_DTYPE[gen])
        files["run_videox_fun.py"] = VIDEOX_RUNNER.format(pose=D + "/poses.txt", frames=n, h=out_h, w=out_w)
        cmd = [f"python {q(D + '/run_videox_fun.py')}"]
        needs += ["examples/wan2.1_fun/predict_v2v_control_camera.py",
                  "models/Diffusion_Transformer/Wan2.1-Fun-V1.1-1.3B-Control-Camera"]
        notes.append("VideoX-Fun's process_pose_file assumes the pose file was made at 1280x720 and "
                     "corrects the focal length for the aspect ratio; poses.txt is written so that this "
                     "correction gives back the exact K at the sample size (plucker.npy, with --plucker, is "
                     "that result). "
                     "Set prompt and start_image in the stock script as usual.")
    elif gen == "motionctrl":
        rows = rigid_inverse(rel)[:, :3, :4].reshape(n, 12)
        text = json.dumps(rows.tolist(), indent=4)
        files["camera_poses/test_camera_parascale.json"] = text
        for name in MOTIONCTRL_NAMES[n]:
            files[f"camera_poses/{name}.json"] = text
        files["camera_embedding.npy"] = rows.astype(np.float32)  # RT (frames, 12)
        if n == 16:
            cmd = [f"python main/evaluation/motionctrl_inference.py --seed 1234 --ckpt_path ./checkpoints/motionctrl.pth "
                   f"--base configs/inference/config_both.yaml --savedir {q(D + '/motionctrl_out')} --n_samples 1 --bs 1 "
                   f"--height {out_h} --width {out_w} --unconditional_guidance_scale 7.5 --ddim_steps 50 "
                   f"--ddim_eta 1.0 --condtype camera_motion --cond_dir {q(D)}"]
            needs += ["main/evaluation/motionctrl_inference.py", "checkpoints/motionctrl.pth"]
        else:
            cmd = [f"python main/inference/motionctrl_cmcm.py --ckpt checkpoints/motionctrl_svd.ckpt "
                   "--config configs/inference/config_motionctrl_cmcm.yaml --input <IMAGE_OR_FOLDER> "
                   f"--savedir {q(D + '/motionctrl_out')} --frames 14 --pose_dir {q(D + '/camera_poses')} "
                   f"--height {out_h} --width {out_w} --speed 1.0"]
            needs += ["main/inference/motionctrl_cmcm.py", "checkpoints/motionctrl_svd.ckpt"]
        notes.append("MotionCtrl's scripts read a hard-coded list of pose names; the same ParaScale poses "
                     "are written under every one of those names (and as test_camera_parascale.json), so "
                     "each of its prompts is rendered with this camera move. Poses are world-to-camera "
                     "relative to frame 0.")
    elif gen == "recammaster":
        files["camera_extrinsics.json"] = ue_text(c2w)
        emb = rel[::4, :3, :4].reshape(-1, 12)
        files["camera_embedding.npy"] = emb.astype(np.float32)  # (21, 12), as ReCamMaster builds it
        cmd = ["cp -n example_test_data/cameras/camera_extrinsics.json "
               "example_test_data/cameras/camera_extrinsics.json.orig",
               f"cp {q(D + '/camera_extrinsics.json')} example_test_data/cameras/camera_extrinsics.json",
               "python inference_recammaster.py --cam_type 1 --dataset_path <VIDEO_FOLDER_WITH_METADATA_CSV>"]
        needs += ["inference_recammaster.py", "example_test_data/cameras",
                  "models/ReCamMaster/checkpoints/step20000.ckpt", "models/Wan-AI/Wan2.1-T2V-1.3B"]
        notes.append("inference_recammaster.py reads ./example_test_data/cameras/camera_extrinsics.json "
                     "(hard-coded); the command keeps the original as .orig and puts ours there as cam01.")
    elif gen == "gen3c":
        w2c = rigid_inverse(c2w)
        buf = {"w2c": w2c, "intrinsics": K, "image_size": np.array([out_w, out_h]), "times": times}
        files["camera.npz"] = buf
        files["camera_embedding.npy"] = w2c.astype(np.float32)
        cmd = ["CUDA_HOME=$CONDA_PREFIX PYTHONPATH=$(pwd) python cosmos_predict1/diffusion/inference/gen3c_single_image.py "
               "--checkpoint_dir checkpoints --input_image_path <FIRST_FRAME_IMAGE> "
               f"--video_save_name parascale --guidance 1 --foreground_masking --num_video_frames {n} "
               f"--height {out_h} --width {out_w}"]
        needs += ["cosmos_predict1/diffusion/inference/gen3c_single_image.py", "checkpoints"]
        notes.append("GEN3C's stock command-line scripts only offer preset trajectories (--trajectory); "
                     "camera.npz (absolute w2c and K at the sample size, translation in start-frame depth "
                     "scales: GEN3C's gauge) is what its 3D cache renderer (Cache3D.render_cache) takes "
                     "for a custom path, e.g. from its GUI. The depth of a ParaScale GEN3C export (depth.npz) "
                     "is in the same units; multiply both by the image's centre depth in metres for metres.")
    elif gen == "uni3c":
        if plucker_tensor:
            files["plucker.npy"] = plucker(rel, K, out_h, out_w, "uni3c", PLUCKER_DTYPE[gen])
        files["camera.npz"] = {"w2c": rigid_inverse(c2w), "intrinsics": K, "image_size": np.array([out_w, out_h])}
        cmd = [f"python cam_render.py --reference_image <FIRST_FRAME_IMAGE> --output_path {q(D + '/uni3c_render')} "
               "--traj_type custom",
               f"python cam_control.py --reference_image <FIRST_FRAME_IMAGE> --render_path {q(D + '/uni3c_render')} "
               f"--output_path {q(D + '/uni3c_result.mp4')} --prompt <PROMPT>"]
        needs += ["cam_render.py", "cam_control.py"]
        notes.append("Uni3C's stage 1 (cam_render.py) builds its own path from d_r/d_theta/d_phi/offsets; "
                     "camera.npz (and plucker.npy, [d, o x d], with --plucker) carry the ParaScale path for a "
                     "custom render.")
    return files, cmd, needs, notes


# Temporaries are hidden siblings of the output folder, ".<name>.parascale-tmp-<pid>-...",
# so what a killed run left is recognised (its pid is gone) and removed by the next run.
TMP_TAG = ".parascale-tmp-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def clean_stale(out: Path) -> None:
    """Remove the temporaries of killed runs beside `out`; a swap killed between its two
    renames gets its old folder back."""
    stale = []
    for tag in (TMP_TAG, ".tmp-"):  # ".tmp-": earlier versions
        prefix = f".{out.name}{tag}"
        for p in out.parent.glob(prefix + "*"):
            pid = p.name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                stale.append(p)
    for p in stale:
        if p.name.endswith("-old") and p.is_dir() and not os.path.lexists(out):
            os.rename(p, out)
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif os.path.lexists(p):
            p.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---------------------------------------------------------------------------
# Ownership: the output folder's manifest.json lists, by relative name, size and SHA-256,
# the files the bridge wrote. A copy of core/formats/manifest.py's rules (this file needs
# numpy only): a listed file whose size and hash match is the bridge's and may be
# replaced; anything else is the user's and stays (hard-linked into the new folder); a
# folder holding anything and no valid manifest is refused (--force replaces it whole).
# A manifest is validated strictly as data: a manifest of the wrong shape is no manifest.

MANIFEST_SCHEMA = "parascale.outputs"
MANIFEST_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20
MAX_MANIFEST_ENTRIES = 100_000
MAX_NAME_CHARS = 1024
MAX_FOLDER_ENTRIES = 100_000
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ManifestError(Exception):
    pass


def _short(v) -> str:
    text = repr(v) if not isinstance(v, (list, dict)) else type(v).__name__ + " " + repr(v)[:60]
    return text if len(text) <= 60 else text[:57] + "..."


def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _name_problem(name):
    if not isinstance(name, str):
        return f"a name must be a string, got {_short(name)}"
    if not name or len(name) > MAX_NAME_CHARS:
        return f"a name must have 1 to {MAX_NAME_CHARS} characters, got {len(name)}"
    if any(ord(c) < 32 or c in "\\:" for c in name):
        return f"name {name[:80]!r} holds a control character, a backslash or a colon"
    if name.startswith("/"):
        return f"name {name[:80]!r} is absolute (expected a name inside the folder)"
    if any(p in ("", ".", "..") for p in name.split("/")):
        return f"name {name[:80]!r} is not a plain relative name inside the folder"
    return None


def read_manifest(path: Path) -> dict:
    """name -> (size, sha256) of a valid manifest, else ManifestError with the reason."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ManifestError("no manifest")
    except OSError as exc:
        raise ManifestError(f"cannot read it ({exc.strerror})")
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError("it is not a regular file")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{st.st_size} bytes, more than {MAX_MANIFEST_BYTES} for a list of files")
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read it as UTF-8 JSON ({type(exc).__name__})")
    try:
        doc = _load_json(path, text)
    except BridgeError as exc:
        raise ManifestError(str(exc).replace(f"{path}: ", "", 1))
    if not isinstance(doc, dict):
        raise ManifestError(f"expected a JSON object, got {_short(doc)}")
    if doc.get("schema") != MANIFEST_SCHEMA:
        raise ManifestError(f"no \"schema\": \"{MANIFEST_SCHEMA}\" (written by an earlier version, or not by ParaScale)")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MANIFEST_VERSION:
        raise ManifestError(f"unsupported version {_short(version)}")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ManifestError(f"\"files\" must be a list of {{name, size, sha256}}, got {_short(files)}")
    if len(files) > MAX_MANIFEST_ENTRIES:
        raise ManifestError(f"\"files\" lists {len(files)} entries, more than {MAX_MANIFEST_ENTRIES}")
    out = {}
    for i, e in enumerate(files):
        if not isinstance(e, dict) or set(e) != {"name", "size", "sha256"}:
            raise ManifestError(f"files[{i}] must be an object with exactly name, size and sha256, got {_short(e)}")
        problem = _name_problem(e["name"])
        if problem:
            raise ManifestError(f"files[{i}]: {problem}")
        size, digest = e["size"], e["sha256"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 1 << 53:
            raise ManifestError(f"files[{i}]: size must be a whole number of bytes, got {_short(size)}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ManifestError(f"files[{i}]: sha256 must be 64 lowercase hex digits, got {_short(digest)}")
        if e["name"] == MANIFEST_NAME or e["name"] in out:
            raise ManifestError(f"files[{i}]: {e['name'][:80]!r} is the manifest itself or listed twice")
        out[e["name"]] = (size, digest)
    return out


def _walk(folder: Path):
    """(relative name, kind) of everything under folder, links never followed; kind:
    file, link, other, or dir for an empty folder."""
    count, stack = 0, [("", folder)]
    while stack:
        rel, d = stack.pop()
        items = []
        with os.scandir(d) as it:
            for e in it:
                count += 1
                if count > MAX_FOLDER_ENTRIES:
                    raise BridgeError(f"{folder}: holds more than {MAX_FOLDER_ENTRIES} files, too many for a bridge "
                                      "output; choose another folder")
                items.append(e)
        if not items and rel:
            yield rel, "dir"
        for e in sorted(items, key=lambda e: e.name):
            name = f"{rel}/{e.name}" if rel else e.name
            if e.is_symlink():
                yield name, "link"
            elif e.is_dir(follow_symlinks=False):
                stack.append((name, Path(e.path)))
            elif e.is_file(follow_symlinks=False):
                yield name, "file"
            else:
                yield name, "other"


def _printable(name: str) -> str:
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _shown(names) -> str:
    names = [_printable(n) for n in names]
    return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


def _matches(p: Path, size: int, digest: str) -> bool:
    try:
        st = os.lstat(p)
        return stat.S_ISREG(st.st_mode) and st.st_size == size and sha256_of(p) == digest
    except OSError:
        return False


def folder_plan(out: Path, writes=None, force=False) -> list:
    """The user's entries in an existing output folder (they stay); BridgeError when the
    folder is not the bridge's (no valid manifest) or the run would overwrite one of them."""
    if not os.path.lexists(out):
        return []
    if out.is_symlink() or not out.is_dir():
        raise BridgeError(f"{out}: exists and is not a folder")
    if force:
        return []
    found = list(_walk(out))
    if not found:
        return []
    try:
        listed = read_manifest(out / MANIFEST_NAME)
    except ManifestError as exc:
        others = [n for n, _ in found if n != MANIFEST_NAME] or [MANIFEST_NAME]
        raise BridgeError(f"{out}: holds files ParaScale did not write ({_shown(others)}) and no valid ParaScale "
                          f"{MANIFEST_NAME} ({exc}); choose another folder, or --force to replace it with everything "
                          "in it")
    kept = sorted(n for n, kind in found if n != MANIFEST_NAME
                  and not (kind == "file" and n in listed and _matches(out / n, *listed[n])))
    if writes is not None:
        writes = list(writes) + [MANIFEST_NAME]
        clash = [k for k in kept if any(k == w or k.startswith(w + "/") or w.startswith(k + "/") for w in writes)]
        if clash:
            raise BridgeError(f"{out}: this run would overwrite {_shown(clash)}, which ParaScale did not write or "
                              "which changed since it did; move it away, choose another folder, or --force to "
                              "replace it")
    return kept


def _carry_over(old: Path, new: Path, names) -> None:
    """The user's files appear in the new folder too: hard links (never copied or moved,
    so a kill at any point loses nothing), copies where there are no hard links."""
    for name in names:
        src, dst = old / name, new / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir() and not src.is_symlink():
            dst.mkdir(exist_ok=True)
            continue
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            elif src.is_file():
                shutil.copy2(src, dst)
            else:
                raise BridgeError(f"{src}: cannot keep this special file in the new output; move it away")


def _no_exchange() -> bool:
    """PARASCALE_NO_RENAME_EXCHANGE=1: the two-rename swap of systems without renameat2 (tests force it)."""
    return os.environ.get("PARASCALE_NO_RENAME_EXCHANGE", "") not in ("", "0")


def _array_problem(name, data):
    if isinstance(data, dict):
        for k, v in data.items():
            problem = _array_problem(f"{name}:{k}", v)
            if problem:
                return problem
        return None
    if isinstance(data, np.ndarray) and data.dtype.kind == "f":
        if not np.isfinite(data).all():
            return f"{name} holds values that are not finite"
        if data.size and float(np.abs(data).max()) > MAX_MAGNITUDE:  # compared as a Python float (float16's max is 65504)
            return f"{name} holds values beyond +-{MAX_MAGNITUDE:g}"
    return None


def write_out(out: Path, files: dict, manifest: dict, force: bool = False) -> list:
    """Write the output folder beside `out`, then swap it in whole: a kill leaves the old
    folder or the new one, and nothing of an earlier run (another generator's files)
    stays in it. The user's files there stay (returned). Files get the user's umask.
    Every array is checked finite and bounded first: nothing non-finite is written."""
    for name, data in files.items():
        problem = _array_problem(name, data)
        if problem:
            raise BridgeError(f"{out}: {problem}; nothing written")
    out = out.resolve()
    parent = out.parent
    if not parent.is_dir():
        raise BridgeError(f"{out}: folder {parent} does not exist")
    clean_stale(out)  # a killed run's swap undone first, so what is judged is what the user has
    folder_plan(out, files, force)
    mask = os.umask(0o022)
    os.umask(mask)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TMP_TAG}{os.getpid()}-", dir=parent))
    try:
        os.chmod(tmp, 0o777 & ~mask)
        for name, data in files.items():
            p = tmp / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, np.ndarray):
                with open(p, "wb") as fh:
                    np.save(fh, data)
            elif isinstance(data, dict):
                with open(p, "wb") as fh:
                    np.savez(fh, **data)
            else:
                p.write_text(data)
        entries = [{"name": n, "size": (tmp / n).stat().st_size, "sha256": sha256_of(tmp / n)} for n in sorted(files)]
        kept = folder_plan(out, files, force)  # again: the user may have changed something meanwhile
        doc = {"schema": MANIFEST_SCHEMA, "version": MANIFEST_VERSION, **manifest, "files": entries}
        if kept:
            doc["kept"] = [_printable(n) for n in kept]
        (tmp / MANIFEST_NAME).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        _carry_over(out, tmp, kept)  # after the files got their modes: the user's keep theirs
        if not os.path.lexists(out):
            os.rename(tmp, out)
            return kept
        if not _no_exchange() and _exchange(tmp, out):
            shutil.rmtree(tmp, ignore_errors=True)  # it now holds the old folder
            return kept
        old = parent / f".{out.name}{TMP_TAG}{os.getpid()}-{os.urandom(4).hex()}-old"
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
        return kept
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_run(gen, repo: Path, cmd, needs) -> list:
    missing = []
    if not repo.is_dir():
        return [f"repository folder {repo} (clone https://github.com/{GENERATORS[gen]['repo']})"]
    for rel in needs:
        if not (repo / rel).exists():
            missing.append(f"{repo / rel}")
    placeholders = sorted({tok for line in cmd for tok in line.split() if tok.startswith("<") and tok.endswith(">")})
    for ph in placeholders:
        missing.append(f"a value for {ph} in command.txt (model path or input you must provide)")
    import importlib.util
    if importlib.util.find_spec("torch") is None:
        missing.append(f"PyTorch in this Python ({sys.executable}); run the bridge in the generator's environment")
    return missing


def parse_size(text):
    """--size HxW: whole pixels, 1 to MAX_IMAGE_SIDE a side."""
    m = re.fullmatch(r"([0-9]{1,12})x([0-9]{1,12})", text.strip().lower()) if text.isascii() else None
    if m is None:
        raise BridgeError(f"--size {text!r}: expected HxW in pixels, for example 480x832")
    h, w = int(m.group(1)), int(m.group(2))
    if not (1 <= h <= MAX_IMAGE_SIDE and 1 <= w <= MAX_IMAGE_SIDE):
        raise BridgeError(f"--size {text}: height and width must be 1 to {MAX_IMAGE_SIDE} pixels")
    return h, w


def check_speed(speed: float) -> float:
    if not (math.isfinite(speed) and speed > 0):
        raise BridgeError(f"--speed must be a positive number, got {speed}")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise BridgeError(f"--speed {speed:g}: outside {MIN_SPEED:g} to {MAX_SPEED:g} (a multiplier on the "
                          "calibrated translation; beyond, the translation written would overflow or vanish)")
    return speed


def output_names(gen: str, n: int, plucker_tensor: bool = False) -> list:
    """The files build() writes for gen at n frames (checked against the user's files
    before any work)."""
    names = {"cameractrl": ["poses.txt"],
             "wan-fun-camera": ["poses.txt", "run_videox_fun.py"],
             "motionctrl": ["camera_poses/test_camera_parascale.json", "camera_embedding.npy"]
             + [f"camera_poses/{name}.json" for name in MOTIONCTRL_NAMES.get(n, [])],
             "recammaster": ["camera_extrinsics.json", "camera_embedding.npy"],
             "gen3c": ["camera.npz", "camera_embedding.npy"],
             "uni3c": ["camera.npz"]}[gen]
    if plucker_tensor and gen in PLUCKER_DTYPE:
        names = names + ["plucker.npy"]
    return sorted(names + ["command.txt"])


def _bytes(n: float) -> str:
    for unit, k in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << k:
            return f"{n / (1 << k):.3g} {unit}"
    return f"{int(n)} bytes"


def available_memory():
    """Bytes of memory available to a new allocation (Linux MemAvailable; elsewhere the
    free physical pages, or Windows' available physical memory); None when unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32":
        try:
            import ctypes

            class MEMORYSTATUSEX(ctypes.Structure):
                _fields_ = [("dwLength", ctypes.c_ulong), ("dwMemoryLoad", ctypes.c_ulong),
                            ("ullTotalPhys", ctypes.c_ulonglong), ("ullAvailPhys", ctypes.c_ulonglong),
                            ("ullTotalPageFile", ctypes.c_ulonglong), ("ullAvailPageFile", ctypes.c_ulonglong),
                            ("ullTotalVirtual", ctypes.c_ulonglong), ("ullAvailVirtual", ctypes.c_ulonglong),
                            ("ullAvailExtendedVirtual", ctypes.c_ulonglong)]
            st = MEMORYSTATUSEX()
            st.dwLength = ctypes.sizeof(st)
            if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(st)):
                return int(st.ullAvailPhys)
        except (OSError, AttributeError, ImportError):
            return None
        return None
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(gen: str, n: int, out_h: int, out_w: int, out: Path, size_given: bool, frames_given: bool,
                 plucker_tensor: bool = False):
    """The Plucker tensor's size against MAX_TENSOR_BYTES, the memory available (with one
    frame's float64 work) and the disk, before any work (written with --plucker only)."""
    if not plucker_tensor or gen not in PLUCKER_DTYPE:
        return
    dtype = PLUCKER_DTYPE[gen]
    tensor = n * 6 * out_h * out_w * np.dtype(dtype).itemsize
    work = tensor + 200 * out_h * out_w  # one frame's float64 rays, moments and their copies
    opts = " ".join(([f"--frames {n}"] if frames_given else []) + ([f"--size {out_h}x{out_w}"] if size_given else []))
    what = f"{opts or f'{gen} at {n} frames of {out_h}x{out_w}'}: plucker.npy would be {n} x 6 x {out_h} x {out_w} " \
           f"{dtype} = {_bytes(tensor)}"
    if tensor > MAX_TENSOR_BYTES:
        raise BridgeError(f"{what}, more than the {_bytes(MAX_TENSOR_BYTES)} limit for one tensor")
    avail = available_memory()
    if avail is not None and work > avail:
        raise BridgeError(f"{what} and needs {_bytes(work)} of memory; {_bytes(avail)} is available")
    try:
        free = shutil.disk_usage(out.parent if out.parent.is_dir() else Path(".")).free
    except OSError:
        free = None
    if free is not None and tensor > free:
        raise BridgeError(f"{what}; the disk holding {out.parent} has {_bytes(free)} free")


def check_translation(path, gen, track, factor, plucker_tensor: bool = False) -> None:
    """The translation written (scene translation x factor) stays within +-MAX_MAGNITUDE
    (and within float16's range when the Plucker tensor is float16: a moment o x d is as
    large as o), and the move does not vanish in the type of the tensors written, before
    any work."""
    c = track["c2w"][:, :3, 3]
    reach = 2 * float(np.abs(c).max()) * factor  # relative poses: at most twice the farthest centre
    dtype = np.dtype(PLUCKER_DTYPE[gen]) if plucker_tensor and gen in PLUCKER_DTYPE else np.dtype(np.float32)
    limit = min(MAX_MAGNITUDE, float(np.finfo(dtype).max))
    if not reach <= limit:
        raise BridgeError(f"{path}: the translation written would reach {reach:.3g} (translation x {factor:.3g}: "
                          f"{gen}'s gauge x --speed), beyond +-{limit:g}"
                          + (f" ({dtype.name}, the type of plucker.npy)" if limit < MAX_MAGNITUDE else ""))
    step = float(np.linalg.norm(np.diff(c, axis=0), axis=1).max()) if len(c) > 1 else 0.0
    if step > 0 and not dtype.type(step * factor) > 0:
        raise BridgeError(f"{path}: the move's largest step {step:.3g} x {factor:.3g} ({gen}'s gauge x --speed) "
                          f"would vanish in {dtype.name}; the camera would not move")


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr, exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"parascale_bridge: error: {message} (see --help)\n")


def main(argv=None) -> int:
    ap = _Parser(prog="parascale_bridge.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("poses", help="ParaScale .json (or a RealEstate10K .txt)")
    ap.add_argument("--generator", required=True, help="one of: " + ", ".join(GENERATORS))
    ap.add_argument("--out", required=True, help="output folder (created; an earlier bridge output there is "
                                                 "replaced, the user's own files in it stay)")
    ap.add_argument("--size", help=f"HxW of the generated video (default per generator; 1 to {MAX_IMAGE_SIDE} a side)")
    ap.add_argument("--frames", type=int, help="frame count (default per generator)")
    ap.add_argument("--speed", type=float, default=1.0, help="multiplies translation (after unit conversion), "
                                                             f"{MIN_SPEED:g} to {MAX_SPEED:g}")
    ap.add_argument("--force", action="store_true", help="replace --out whole even when ParaScale's manifest does "
                                                         "not say it wrote what is there (deletes it)")
    ap.add_argument("--plucker", action="store_true",
                    help="also write plucker.npy, the Plucker tensor (cameractrl float32; wan-fun-camera, "
                         "uni3c float16)")
    ap.add_argument("--run", metavar="REPO", help="run the generator from its checkout REPO")
    args = ap.parse_args(argv)
    path = Path(args.poses)
    try:
        if args.generator not in GENERATORS:
            raise BridgeError(f"{path}: unknown generator {args.generator!r}; choose one of {', '.join(GENERATORS)}")
        spec = GENERATORS[args.generator]
        size = parse_size(args.size) if args.size is not None else None
        check_speed(args.speed)
        if args.frames is not None and not (2 <= args.frames <= MAX_FRAMES and spec["ok"](args.frames)):
            raise BridgeError(f"{path}: {args.generator} does not support {args.frames} frames "
                              f"(it needs {spec['ok_text']}, at most {MAX_FRAMES})")
        out = Path(args.out).resolve()
        if os.path.lexists(out) and (out.is_symlink() or not out.is_dir()):
            raise BridgeError(f"{out}: exists and is not a folder")
        track = load_poses(path)
        n = args.frames
        if n is None:  # the track's own count when the generator takes it, else its default
            n = len(track["c2w"]) if spec["ok"](len(track["c2w"])) else spec["frames"]
        out_h, out_w = size or spec["size"]
        # Every limit before any work: the translation written, the tensor's memory, the
        # field of view at the output size, the user's files in --out.
        factor, gauge_record = gauge_factor(args.generator, track, args.speed)
        check_translation(path, args.generator, track, factor, args.plucker)
        check_memory(args.generator, n, out_h, out_w, out, size is not None, args.frames is not None, args.plucker)
        _check_fov(path, fit_intrinsics(track["K"], track["width"], track["height"], out_h, out_w), out_w, out_h,
                   None, f"at the output size {out_h}x{out_w} (scaled to cover it, centre-cropped) implies")
        clean_stale(out)
        kept = folder_plan(out, output_names(args.generator, n, args.plucker), args.force)
        files, cmd, needs, notes = build(args.generator, track, out_h, out_w, n, args.speed, out,
                                         plucker_tensor=args.plucker)
        plucker_rec = plucker_record(args.generator, n, out_h, out_w, "plucker.npy" in files)
        if track["depth_scale"] is None:
            notes.append("no scene depth scale in the input: translation written in metres 1:1, not in the "
                         "generator's gauge; export again with ParaScale to record it")
        written_c2w = build_poses(track, n, gauge_record["factor"])
        warnings = range_warnings(args.generator, written_c2w)
        files["command.txt"] = "\n".join(cmd) + "\n"
        manifest = {"generator": args.generator, "repository": spec["repo"], "source": str(path),
                    "source_kind": track["kind"], "frames": n, "size": [out_h, out_w],
                    "unit_scale": track["unit_scale"], "speed": args.speed, "gauge": gauge_record,
                    "range_warnings": warnings,
                    "translation_unit": ("centimetres in camera_extrinsics.json (" + GAUGES["recammaster"]["units"]
                                         + " after ReCamMaster's /100)") if args.generator == "recammaster"
                    else gauge_record["units"],
                    "command": cmd, "notes": notes}
        if plucker_rec is not None:
            manifest["plucker"] = plucker_rec
        kept = write_out(out, files, manifest, args.force)
    except BridgeError as exc:
        print(f"parascale_bridge: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # ValueError: JSON of a non-finite number, never written
        print(f"parascale_bridge: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {', '.join(sorted(files))}")
    if kept:
        print(f"parascale_bridge: kept {len(kept)} file(s) in {out} that ParaScale did not write or that changed "
              f"since: {_shown(kept)}", file=sys.stderr)
    if plucker_rec is not None:
        print(f"plucker.npy: written, {plucker_rec['dtype']} {'x'.join(map(str, plucker_rec['shape']))}"
              if plucker_rec["written"] else f"plucker.npy: {plucker_rec['note']}")
    elif args.plucker:
        print(f"parascale_bridge: note: --plucker ignored: {args.generator} is not conditioned on Plucker rays "
              "(its camera tensor is camera_embedding.npy)", file=sys.stderr)
    for w in warnings:
        print(f"parascale_bridge: warning: {w}", file=sys.stderr)
    if track["depth_scale"] is None:
        print(f"parascale_bridge: warning: {path} records no scene depth scale; translation written in metres "
              "1:1, not in the generator's gauge", file=sys.stderr)
    print("command (run inside the generator's repository):")
    for line in cmd:
        print("  " + line)
    if args.run:
        repo = Path(args.run).resolve()
        missing = check_run(args.generator, repo, cmd, needs)
        if missing:
            print(f"parascale_bridge: cannot run {args.generator}; missing:", file=sys.stderr)
            for m in missing:
                print(f"  - {m}", file=sys.stderr)
            return 3
        for line in cmd:
            print(f"$ {line}")
            rc = subprocess.call(line, shell=True, cwd=repo)
            if rc != 0:
                print(f"parascale_bridge: {args.generator} exited with status {rc}", file=sys.stderr)
                return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
