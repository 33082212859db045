"""Validation at the boundary: every reader checks the values it hands on here, once
per kind of value, so "what is a valid pose" has one answer.

- ``check_poses``: camera-to-world (N, 4, 4): finite, last row 0 0 0 1, the 3x3 block
  a rotation (orthonormal, determinant +1, within ROT_TOL), translation at most
  MAX_MAGNITUDE (1e300 is finite but overflows the first square taken of it).
- ``check_intrinsics``: pixel K (N, 3, 3) or (3, 3): finite, fx and fy > 0, lower
  part zero, last row 0 0 1, entries at most MAX_MAGNITUDE.
- ``check_fov``: the field of view K implies at the image size, MIN_FOV_DEG..MAX_FOV_DEG
  (1..179) degrees on both axes.
- ``check_image_size``: whole pixels, 1..MAX_IMAGE_SIDE a side.
- ``check_image_header``: an image file's declared size (PNG, JPEG, BMP, TIFF, WebP, GIF
  headers read, nothing decoded) within OpenCV's pixel limit.
- ``check_frame_count``: 1..MAX_FRAMES (or a given minimum).
- ``check_points`` / ``check_times``: finite, bounded; times increasing.

Parsing guards, so memory is bounded by the file and never by a number inside it:
``read_text`` (strict UTF-8), ``load_json`` (nesting and container count bounded,
big integers and RecursionError caught), ``read_npy`` / ``NpzReader`` (every array
size read from a header is checked against the bytes the file holds before anything
is allocated; npz members against a bound relative to the file before inflating).

``guard(path, what)`` turns any raw exception a parser can raise on bad bytes
(OverflowError, MemoryError, RecursionError, UnicodeError, zlib/lzma errors,
tokenize.TokenError from an npy header, LinAlgError, ValueError from numpy...) into
TrackFormatError naming the file. Readers raise TrackFormatError themselves with the
line or record wherever they know it; the guard is the net under them.

Every error is TrackFormatError (a ValueError) naming the file, the line or record
where known, and what was expected.
"""
from __future__ import annotations

import ast
import contextlib
import json
import lzma
import math
import os
import re
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

__all__ = ["TrackFormatError", "ROT_TOL", "MAX_IMAGE_SIDE", "MAX_FRAMES", "MAX_MAGNITUDE", "MIN_FOV_DEG",
           "MAX_FOV_DEG", "check_poses", "check_rotations", "check_intrinsics", "check_fov", "check_image_header",
           "image_header_size", "check_image_size", "check_frame_count",
           "check_points", "check_times", "check_finite", "check_reference_pi", "guard", "read_text",
           "load_json", "read_npy", "NpzReader", "inflate_bound"]


class TrackFormatError(ValueError):
    """A track file that cannot be read: names the file, the line or record, and
    what was expected there."""


ROT_TOL = 1e-4
# No real image is anywhere near 65536 pixels a side (16K video is 15360 wide); a
# larger number is a corrupt field, and would size render buffers.
MAX_IMAGE_SIDE = 65536
# An hour at 240 fps is 864,000 frames.
MAX_FRAMES = 1_000_000
# Coordinates, focal lengths and principal points: 1e9 (1,000 km in millimetres) is
# far beyond any scene, and its square (1e18) stays far from float64 overflow.
MAX_MAGNITUDE = 1e9
# Fields of view a camera may have, in degrees, horizontally and vertically: beyond them
# a focal length is a corrupt or unit-confused field (a normalised 1e-300 is a 180-degree
# view; 1 degree is a 2,000 mm lens on full frame, 179 a fisheye's edge).
MIN_FOV_DEG = 1.0
MAX_FOV_DEG = 179.0
# OpenCV refuses to decode an image of more pixels than this (CV_IO_MAX_IMAGE_PIXELS, set
# by the environment variable OPENCV_IO_MAX_IMAGE_PIXELS); images are checked by their
# header against it before anything is decoded.
CV_MAX_IMAGE_PIXELS_DEFAULT = 1 << 30
# Declared array bytes an npz member may inflate to: this many times the file's size
# (plus INFLATE_SLACK for small files). Real float depth maps deflate < 2x.
INFLATE_RATIO = 16
INFLATE_SLACK = 4 << 20
# JSON: a camera track is numbers in shallow lists; each container costs ~60 bytes
# in Python, so a file that is mostly brackets would cost far more than its size.
MAX_JSON_DEPTH = 64
MIN_BYTES_PER_CONTAINER = 4

# What a parser may raise on bad bytes (as opposed to a bug in our own code, which
# would be a NameError, AttributeError...). ValueError covers numpy's messages,
# UnicodeDecodeError and json.JSONDecodeError.
RAW_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, MemoryError, RecursionError,
              ZeroDivisionError, EOFError, struct.error, zlib.error, lzma.LZMAError, zipfile.BadZipFile,
              zipfile.LargeZipFile, tokenize.TokenError, SyntaxError, NotImplementedError,
              np.linalg.LinAlgError, UnicodeError)


def _at(path, where) -> str:
    if where and str(where).startswith(str(path)):  # COLMAP's "<file> line n" already names it
        return str(where)
    return f"{path} {where}" if where else f"{path}"


@contextlib.contextmanager
def guard(path, what: str, also: tuple = ()):
    """Raw parsing exceptions inside the block become TrackFormatError naming `path`.
    also: more exception types (OSError around zip members, where a corrupt offset
    makes zipfile seek before the start of the file)."""
    try:
        yield
    except TrackFormatError:
        raise
    except RAW_ERRORS + also as exc:
        kind = type(exc).__name__
        text = str(exc).strip() or "no detail"
        if len(text) > 200:
            text = text[:200] + "..."
        raise TrackFormatError(f"{path}: cannot read as {what} ({kind}: {text})") from None


# ---------------------------------------------------------------------------
# values

def _where_list(where, n) -> Sequence[str]:
    if where is None:
        return [f"frame {i}" for i in range(n)]
    if callable(where):
        return [where(i) for i in range(n)]
    return where


def check_finite(path, arr, where, what: str) -> np.ndarray:
    """arr (N, ...): every row finite and at most MAX_MAGNITUDE, else the first bad row named."""
    arr = np.asarray(arr, float)
    flat = arr.reshape(len(arr), -1)
    with np.errstate(invalid="ignore"):
        nonfinite = ~np.isfinite(flat).all(axis=1)
        huge = (np.abs(flat) > MAX_MAGNITUDE).any(axis=1)
    if nonfinite.any():
        i = int(np.argmax(nonfinite))
        raise TrackFormatError(f"{_at(path, _where_list(where, len(arr))[i])}: non-finite value (NaN or inf) "
                               f"in {what}")
    if huge.any():
        i = int(np.argmax(huge))
        v = float(flat[i][np.argmax(np.abs(flat[i]))])
        raise TrackFormatError(f"{_at(path, _where_list(where, len(arr))[i])}: {what} holds {v:g}, beyond "
                               f"+-{MAX_MAGNITUDE:g} (expected scene coordinates and pixels)")
    return arr


def check_rotations(path, R, where=None) -> np.ndarray:
    """R (N, 3, 3): finite, orthonormal, determinant +1 within ROT_TOL."""
    R = np.asarray(R, float)
    wl = _where_list(where, len(R))
    flat = R.reshape(len(R), 9)
    bad_finite = ~np.isfinite(flat).all(axis=1)
    if bad_finite.any():
        i = int(np.argmax(bad_finite))
        raise TrackFormatError(f"{_at(path, wl[i])}: non-finite value (NaN or inf) in the rotation")
    zero = ~flat.any(axis=1)
    if zero.any():
        i = int(np.argmax(zero))
        raise TrackFormatError(f"{_at(path, wl[i])}: the 3x3 rotation block is all zero (a placeholder, not a "
                               "pose; expected an orthonormal matrix with determinant +1)")
    big = np.abs(flat).max(axis=1) > 2.0  # entries of a rotation are within [-1, 1]
    err = np.where(big, np.inf, 0.0)
    small = ~big
    if small.any():
        Rs = R[small]
        err[small] = np.abs(np.swapaxes(Rs, -1, -2) @ Rs - np.eye(3)).max(axis=(-2, -1))
    det = np.zeros(len(R))
    if small.any():
        det[small] = np.linalg.det(R[small])
    bad = (err > ROT_TOL) | (np.abs(det - 1.0) > ROT_TOL)
    if bad.any():
        i = int(np.argmax(bad))
        why = (f"determinant {det[i]:+.4f}: a reflection, not a rotation" if err[i] <= ROT_TOL
               else f"R^T R differs from the identity by {err[i]:.3g}")
        raise TrackFormatError(f"{_at(path, wl[i])}: the 3x3 rotation block is not a rotation ({why}; "
                               "expected an orthonormal matrix with determinant +1)")
    return R


def check_poses(path, c2w, where=None, what: str = "the pose") -> np.ndarray:
    """Camera-to-world (N, 4, 4) (or (N, 3, 4)): finite, bounded, last row 0 0 0 1,
    rotation block a rotation. Returns (N, 4, 4) float."""
    M = np.asarray(c2w, float)
    if M.ndim != 3 or M.shape[1:] not in ((4, 4), (3, 4)) or len(M) == 0:
        raise TrackFormatError(f"{path}: {what} must be (N, 4, 4) with N >= 1, got shape {M.shape}")
    wl = _where_list(where, len(M))
    flat = M.reshape(len(M), -1)
    zero = ~flat.any(axis=1)
    if zero.any():
        i = int(np.argmax(zero))
        raise TrackFormatError(f"{_at(path, wl[i])}: {what} is all zero (a placeholder, not a camera pose)")
    check_finite(path, M, wl, what)
    if M.shape[1] == 4:
        dev = np.abs(M[:, 3] - [0, 0, 0, 1]).max(axis=1)
        if (dev > 1e-6).any():
            i = int(np.argmax(dev > 1e-6))
            raise TrackFormatError(f"{_at(path, wl[i])}: last row of {what} must be 0 0 0 1, got "
                                   f"{' '.join(f'{v:g}' for v in M[i, 3])}")
    check_rotations(path, M[:, :3, :3], wl)
    out = np.zeros((len(M), 4, 4))
    out[:, :3, :4] = M[:, :3, :4]
    out[:, 3, 3] = 1.0
    return out


def check_intrinsics(path, K, where=None, n: Optional[int] = None) -> np.ndarray:
    """Pixel intrinsics (N, 3, 3) or (3, 3) (repeated to n): finite, fx, fy > 0, zero
    below the diagonal, last row 0 0 1. Returns (N, 3, 3) float."""
    K = np.asarray(K, float)
    if K.shape == (3, 3) and n is not None:
        K = np.repeat(K[None], n, axis=0)
    if K.ndim != 3 or K.shape[1:] != (3, 3) or (n is not None and len(K) != n):
        want = f"(3, 3) or ({n}, 3, 3)" if n is not None else "(N, 3, 3)"
        raise TrackFormatError(f"{path}: intrinsics must be {want}, got shape {K.shape}")
    wl = _where_list(where, len(K))
    check_finite(path, K, wl, "the intrinsics K")
    bad_row = np.abs(K[:, 2] - [0, 0, 1]).max(axis=1) > 1e-9
    if bad_row.any():
        i = int(np.argmax(bad_row))
        raise TrackFormatError(f"{_at(path, wl[i])}: last row of K must be 0 0 1 (a pixel intrinsics matrix), "
                               f"got {' '.join(f'{v:g}' for v in K[i, 2])}")
    if (K[:, 1, 0] != 0).any():
        i = int(np.argmax(K[:, 1, 0] != 0))
        raise TrackFormatError(f"{_at(path, wl[i])}: K[1][0] must be 0, got {K[i, 1, 0]:g}")
    bad_f = ~((K[:, 0, 0] > 0) & (K[:, 1, 1] > 0))
    if bad_f.any():
        i = int(np.argmax(bad_f))
        raise TrackFormatError(f"{_at(path, wl[i])}: focal lengths must be positive, got fx={K[i, 0, 0]:g}, "
                               f"fy={K[i, 1, 1]:g}")
    K = K.copy()
    K[:, 2] = [0.0, 0.0, 1.0]  # exactly: within 1e-9 above is rounding in the file
    return K


def fov_degrees(focal, side):
    """Field of view (degrees) of a focal length (pixels) across `side` pixels."""
    with np.errstate(over="ignore", divide="ignore"):
        return np.degrees(2 * np.arctan(np.asarray(side, float) / (2 * np.asarray(focal, float))))


def check_fov(path, K, width: int, height: int, where=None) -> None:
    """The field of view K implies at width x height is MIN_FOV_DEG..MAX_FOV_DEG degrees on
    both axes (K already checked: finite, fx, fy > 0); else the first bad frame named with
    the implied field of view."""
    K = np.asarray(K, float).reshape(-1, 3, 3)
    wl = _where_list(where, len(K))
    fovx, fovy = fov_degrees(K[:, 0, 0], width), fov_degrees(K[:, 1, 1], height)
    bad = ~((fovx >= MIN_FOV_DEG) & (fovx <= MAX_FOV_DEG) & (fovy >= MIN_FOV_DEG) & (fovy <= MAX_FOV_DEG))
    if bad.any():
        i = int(np.argmax(bad))
        x_bad = not MIN_FOV_DEG <= fovx[i] <= MAX_FOV_DEG
        axis, f, side, fov = ("horizontal", K[i, 0, 0], width, fovx[i]) if x_bad else \
            ("vertical", K[i, 1, 1], height, fovy[i])
        raise TrackFormatError(f"{_at(path, wl[i])}: focal length {f:.6g} px across {side} px implies a {axis} "
                               f"field of view of {fov:.4g} degrees; expected {MIN_FOV_DEG:g} to {MAX_FOV_DEG:g} "
                               "degrees (a focal in other units, or a corrupt field?)")


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux MemAvailable; elsewhere the
    free physical pages, or Windows' available physical memory); None when unknown.
    Sizes a user asks for (tensors, depth maps, renders) are checked against it before
    any work."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if os.name == "nt":
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
            pass
        return None
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def opencv_max_pixels() -> int:

    try:
        return int(os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", CV_MAX_IMAGE_PIXELS_DEFAULT))
    except ValueError:
        return CV_MAX_IMAGE_PIXELS_DEFAULT


def image_header_size(path) -> Optional[tuple[int, int]]:
    """(width, height) an image file's header declares, read from its first bytes (PNG,
    JPEG, BMP, TIFF, WebP, GIF); None when the format is not one of these or the header
    is cut short. Nothing is decoded."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:2] == b"BM" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return abs(w), abs(h)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8 " and len(head) >= 30:
                w, h = struct.unpack("<HH", head[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if kind == b"VP8L" and len(head) >= 25:
                b = head[21:25]
                return 1 + (((b[1] & 0x3F) << 8) | b[0]), 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | (b[1] >> 6))
            if kind == b"VP8X" and len(head) >= 30:
                return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
            return None
        if head[:2] == b"\xff\xd8":
            return _jpeg_size(fh)
        if head[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(fh, head[:2] == b"II")
    return None


def _jpeg_size(fh) -> Optional[tuple[int, int]]:
    """The first start-of-frame marker's size, walking the segments (bounded)."""
    fh.seek(2)
    for _ in range(10000):
        b = fh.read(1)
        while b == b"\xff":
            b = fh.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD9:
            return None
        seg = fh.read(2)
        if len(seg) < 2:
            return None
        length = struct.unpack(">H", seg)[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            body = fh.read(5)
            if len(body) < 5:
                return None
            h, w = struct.unpack(">HH", body[1:5])
            return w, h
        if length < 2:
            return None
        fh.seek(length - 2, 1)
        # the next byte should be 0xFF
        nxt = fh.read(1)
        if nxt != b"\xff":
            return None
        fh.seek(-1, 1)
    return None


def _tiff_size(fh, little: bool) -> Optional[tuple[int, int]]:
    e = "<" if little else ">"
    fh.seek(4)
    raw = fh.read(4)
    if len(raw) < 4:
        return None
    fh.seek(struct.unpack(e + "I", raw)[0])
    raw = fh.read(2)
    if len(raw) < 2:
        return None
    count = min(struct.unpack(e + "H", raw)[0], 4096)
    size = {}
    for _ in range(count):
        ent = fh.read(12)
        if len(ent) < 12:
            break
        tag, typ = struct.unpack(e + "HH", ent[:4])
        if tag in (256, 257):
            size[tag] = struct.unpack(e + "H", ent[8:10])[0] if typ == 3 else struct.unpack(e + "I", ent[8:12])[0]
    return (size[256], size[257]) if 256 in size and 257 in size else None


def check_image_header(path) -> Optional[tuple[int, int]]:
    """An image file whose header declares more pixels than OpenCV decodes (or a side over
    MAX_IMAGE_SIDE) is refused with its size before anything is decoded. Returns the
    declared (width, height), or None for formats whose header is not read here."""
    try:
        size = image_header_size(path)
    except OSError as exc:
        raise TrackFormatError(f"{path}: cannot read this image ({exc.strerror or exc})") from None
    except struct.error:
        size = None
    if size is None:
        return None
    w, h = size
    limit = opencv_max_pixels()
    if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE or w * h > limit:
        raise TrackFormatError(f"{path}: the image header declares {w}x{h} pixels ({w * h:,}), beyond OpenCV's "
                               f"limit of {limit:,} pixels ({MAX_IMAGE_SIDE} a side at most); not decoded")
    if w == 0 or h == 0:
        raise TrackFormatError(f"{path}: the image header declares {w}x{h} pixels; not an image")
    return w, h


def check_image_size(path, width, height, where=None) -> tuple[int, int]:
    """(W, H) as whole pixels between 1 and MAX_IMAGE_SIDE."""
    out = []
    for label, v in (("width", width), ("height", height)):
        if isinstance(v, bool):
            v = None
        try:
            f = float(v)
        except (TypeError, ValueError, OverflowError):
            raise TrackFormatError(f"{_at(path, where)}: image {label} must be a number, got {_short(v)}") from None
        if not (math.isfinite(f) and 1 <= f <= MAX_IMAGE_SIDE) or abs(f - round(f)) > 1e-6:
            raise TrackFormatError(f"{_at(path, where)}: image {label} must be a whole number of pixels from 1 "
                                   f"to {MAX_IMAGE_SIDE}, got {v!r}")
        out.append(int(round(f)))
    return out[0], out[1]


def check_frame_count(path, n, where=None, minimum: int = 1, maximum: int = MAX_FRAMES) -> int:
    """A frame count between minimum and maximum."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not minimum <= n <= maximum:
        raise TrackFormatError(f"{_at(path, where)}: frame count must be a whole number from {minimum} to "
                               f"{maximum}, got {n!r}")
    return int(n)


def check_points(path, xyz, where=None, what: str = "3D points") -> np.ndarray:
    xyz = np.asarray(xyz, float).reshape(-1, 3)
    if len(xyz):
        check_finite(path, xyz, where or (lambda i: f"point {i}"), what)
    return xyz


def check_times(path, times, where=None) -> np.ndarray:
    t = np.asarray(times, float).reshape(-1)
    wl = _where_list(where, len(t))
    if len(t):
        check_finite(path, t[:, None], wl, "the frame time")
    if len(t) > 1 and (np.diff(t) <= 0).any():
        i = int(np.argmax(np.diff(t) <= 0)) + 1
        raise TrackFormatError(f"{_at(path, wl[i])}: frame times must increase ({t[i - 1]:g} then {t[i]:g})")
    return t


def check_reference_pi(ref, label) -> None:
    """A measured reference: every step's Pi finite, and not a camera that never
    moves (every translation 0), whose Pi is 0 throughout and would transfer as a
    still camera."""
    pi = np.asarray(ref.pi, float)
    tr = np.asarray(ref.translation, float)
    bad = ~np.isfinite(pi) | ~np.isfinite(tr)
    if bad.any():
        i = int(np.argmax(bad))
        raise TrackFormatError(f"{label}: Pi of step {i + 1} (frame {i} -> {i + 1}) is {pi[i]:g} "
                               f"(translation {tr[i]:g}); expected finite values: check the track's "
                               "poses, points or depth")
    if len(tr) and not (tr > 0).any():
        raise TrackFormatError(f"{label}: the reference camera never moves (every step's translation is 0), "
                               "so its Parallax Number is 0 throughout: there is no parallax to measure or "
                               "transfer")


# ---------------------------------------------------------------------------
# text and JSON

def read_text(path, expected: str) -> str:
    """A text file's contents (strict UTF-8), or TrackFormatError naming the file
    and what was expected when it is not UTF-8 or empty."""
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise TrackFormatError(f"{path}: is a folder (expected {expected})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TrackFormatError(f"{path} line {line}: not UTF-8 text at byte {exc.start} "
                               f"(expected {expected})") from None
    del raw
    if "\x00" in text:
        raise TrackFormatError(f"{path} line {text.count(chr(10), 0, text.index(chr(0))) + 1}: NUL byte in a "
                               f"text file (expected {expected})")
    if not text.strip():
        raise TrackFormatError(f"{path}: empty file (expected {expected})")
    return text


def load_json(path, expected: str, text: Optional[str] = None):
    """Parse a JSON file. Memory and stack stay bounded by the file: containers
    counted before parsing, nesting depth limited. NaN/Infinity literals parse (Python
    writes them) and are refused by the value checks, which know the frame."""
    if text is None:
        text = read_text(path, expected)
    containers = text.count("[") + text.count("{")
    if containers * MIN_BYTES_PER_CONTAINER > len(text) + 64:
        raise TrackFormatError(f"{path}: {containers} '[' or '{{' in {len(text)} characters: too many nested "
                               f"lists or objects for a camera track (expected {expected})")
    # Nesting depth without recursion: brackets outside strings.
    depth = 0
    for tok in _JSON_BRACKETS.finditer(text):
        c = tok.group()
        if c in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                line = text.count("\n", 0, tok.start()) + 1
                raise TrackFormatError(f"{path} line {line}: JSON nested deeper than {MAX_JSON_DEPTH} levels "
                                       f"(expected {expected})")
        elif c in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TrackFormatError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg}; expected {expected})") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise TrackFormatError(f"{path}: invalid JSON ({type(exc).__name__}: {str(exc)[:200]}; expected "
                               f"{expected})") from None


# strings (skipped whole, escapes included) or a bracket
_JSON_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)


def json_number(path, where, value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TrackFormatError(f"{_at(path, where)}: {what} must be a number, got {_short(value)}")
    try:
        f = float(value)
    except OverflowError:
        raise TrackFormatError(f"{_at(path, where)}: {what} is too large ({str(value)[:20]}...)") from None
    if not math.isfinite(f):
        raise TrackFormatError(f"{_at(path, where)}: {what} is not finite ({value})")
    return f


def json_matrix(path, where, value, shape, what: str, allow_3x4: bool = False) -> np.ndarray:
    """A nested JSON list of numbers of the given shape (allow_3x4: a (3, 4) also
    accepted for (4, 4), returned as (4, 4) with last row 0 0 0 1)."""
    if not isinstance(value, list):
        raise TrackFormatError(f"{_at(path, where)}: {what} must be a list of numbers, got {_short(value)}")
    rows = value if len(shape) == 2 else [value]
    for r in rows:
        if not isinstance(r, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r):
            raise TrackFormatError(f"{_at(path, where)}: {what} must be a {'x'.join(map(str, shape))} list of "
                                   f"numbers, got {_short(value)}")
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise TrackFormatError(f"{_at(path, where)}: {what} has rows of different lengths {sorted(lengths)} "
                               f"(expected {'x'.join(map(str, shape))})")
    try:
        M = np.array(value, dtype=float)
    except OverflowError:
        raise TrackFormatError(f"{_at(path, where)}: {what} holds an integer too large for a number") from None
    four = allow_3x4 and tuple(shape) == (4, 4)
    if four and M.shape == (3, 4):
        M = np.vstack([M, [0.0, 0.0, 0.0, 1.0]])
    if M.shape != tuple(shape):
        raise TrackFormatError(f"{_at(path, where)}: {what} must be {'x'.join(map(str, shape))}"
                               f"{' (or 3x4)' if four else ''}, got shape {M.shape}")
    return M


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


# ---------------------------------------------------------------------------
# numpy containers

NUMERIC_KINDS = "fiu"


def inflate_bound(file_size: int) -> int:
    return INFLATE_RATIO * int(file_size) + INFLATE_SLACK


def _parse_npy_header(path, fh, what: str):
    """(shape, dtype, fortran_order, header_end) from an open .npy stream, without
    allocating anything its numbers ask for."""
    magic = fh.read(8)
    if len(magic) < 8 or not magic.startswith(b"\x93NUMPY"):
        raise TrackFormatError(f"{path}: cannot read as {what} (not a .npy array: bad magic)")
    major = magic[6]
    if major == 1:
        raw = fh.read(2)
        hlen = struct.unpack("<H", raw)[0] if len(raw) == 2 else -1
        enc = "latin1"
    elif major in (2, 3):
        raw = fh.read(4)
        hlen = struct.unpack("<I", raw)[0] if len(raw) == 4 else -1
        enc = "latin1" if major == 2 else "utf8"
    else:
        raise TrackFormatError(f"{path}: cannot read as {what} (unknown .npy format version {major})")
    if hlen < 0 or hlen > 10000:
        raise TrackFormatError(f"{path}: cannot read as {what} (npy header length {hlen}; truncated or corrupt)")
    header = fh.read(hlen)
    if len(header) != hlen:
        raise TrackFormatError(f"{path}: cannot read as {what} (npy header truncated)")
    try:
        d = ast.literal_eval(header.decode(enc))
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError, UnicodeDecodeError,
            tokenize.TokenError) as exc:
        raise TrackFormatError(f"{path}: cannot read as {what} (npy header is not a literal dict: "
                               f"{type(exc).__name__})") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise TrackFormatError(f"{path}: cannot read as {what} (npy header must hold descr, fortran_order, shape)")
    shape = d["shape"]
    if (not isinstance(shape, tuple) or len(shape) > 8
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise TrackFormatError(f"{path}: cannot read as {what} (npy shape {_short(shape)} is not a tuple of "
                               "non-negative integers)")
    if not isinstance(d["fortran_order"], bool):
        raise TrackFormatError(f"{path}: cannot read as {what} (npy fortran_order must be True or False)")
    descr = d["descr"]
    if not isinstance(descr, str):
        raise TrackFormatError(f"{path}: cannot read as {what} (an object or structured array; expected plain "
                               "numbers; pickles are never loaded)")
    try:
        dtype = np.dtype(descr)
    except (TypeError, ValueError, SyntaxError):
        raise TrackFormatError(f"{path}: cannot read as {what} (npy dtype {descr!r} is not understood)") from None
    if dtype.kind == "O" or dtype.hasobject:
        raise TrackFormatError(f"{path}: cannot read as {what} (an object array; pickles are never loaded)")
    if dtype.kind not in NUMERIC_KINDS or dtype.itemsize == 0:
        raise TrackFormatError(f"{path}: cannot read as {what} (dtype {dtype}; expected numbers)")
    return shape, dtype, d["fortran_order"], 8 + (2 if major == 1 else 4) + hlen


def _npy_nbytes(shape, dtype) -> int:
    n = 1
    for s in shape:
        n *= s  # Python ints: no overflow
    return n * dtype.itemsize


def _read_exact_into(path, fh, arr: np.ndarray, what: str) -> None:
    """Fill arr's memory from fh in 1 MiB pieces (no whole-file bytes copy)."""
    mv = memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")
    pos, total = 0, arr.nbytes
    while pos < total:
        got = fh.readinto(mv[pos:min(total, pos + (1 << 20))])
        if not got:
            raise TrackFormatError(f"{path}: cannot read as {what} (data truncated: {pos} of {total} bytes)")
        pos += got


def _npy_array(path, fh, shape, dtype, fortran: bool, what: str) -> np.ndarray:
    order = "F" if fortran else "C"
    arr = np.empty(shape, dtype=dtype, order=order)
    flat = arr.reshape(-1, order="A") if arr.size else arr
    if arr.size:
        # reshape(order="A") of a contiguous array is a view on the same memory
        _read_exact_into(path, fh, flat, what)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def read_npy(path, what: str, max_bytes: Optional[int] = None) -> np.ndarray:
    """A plain numeric .npy array. The header's shape times the item size must equal
    the bytes the file holds after the header (never allocated from the header alone)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh, guard(path, what):
        shape, dtype, fortran, start = _parse_npy_header(path, fh, what)
        need = _npy_nbytes(shape, dtype)
        have = size - start
        if need != have:
            raise TrackFormatError(f"{path}: cannot read as {what} (header says shape {shape} of {dtype}, "
                                   f"{need} bytes, but the file holds {have} bytes after it; truncated or "
                                   "corrupt)")
        if max_bytes is not None and need > max_bytes:
            raise TrackFormatError(f"{path}: cannot read as {what} (array of {need} bytes is over the "
                                   f"{max_bytes}-byte limit)")
        return _npy_array(path, fh, shape, dtype, fortran, what)


class NpzReader:
    """Arrays of an .npz (a zip of .npy members), each checked before it is inflated:
    its declared size against a bound relative to the file, its npy header's shape
    against the member's declared size; the total inflated across members bounded too.
    Only stored and deflated members are read (what numpy writes)."""

    def __init__(self, path, what: str):
        self.path = Path(path)
        self.what = what
        self.file_size = self.path.stat().st_size
        self.budget = inflate_bound(self.file_size)
        with guard(self.path, what, (OSError,)):
            try:
                self.zf = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as exc:
                raise TrackFormatError(f"{self.path}: cannot read as {what} (not a zip/npz archive: {exc})") from None
            self.members = {}
            for info in self.zf.infolist():
                name = info.filename
                if name.endswith(".npy"):
                    self.members.setdefault(name[:-4], info)

    @property
    def files(self) -> list:
        return list(self.members)

    def __contains__(self, key) -> bool:
        return key in self.members

    def close(self) -> None:
        self.zf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _open(self, key):
        info = self.members[key]
        where = f"{self.path}: member {key!r}"
        if info.flag_bits & 0x1:
            raise TrackFormatError(f"{where}: encrypted member (expected a plain npz)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise TrackFormatError(f"{where}: compression method {info.compress_type} (expected stored or "
                                   "deflated, as numpy writes)")
        if info.file_size > self.budget:
            raise TrackFormatError(f"{where}: declares {info.file_size} bytes uncompressed, over the "
                                   f"{self.budget}-byte limit for a {self.file_size}-byte file "
                                   f"({INFLATE_RATIO}x + {INFLATE_SLACK >> 20} MiB); refusing to inflate")
        if info.compress_size > self.file_size:
            raise TrackFormatError(f"{where}: declares {info.compress_size} compressed bytes in a "
                                   f"{self.file_size}-byte file; truncated or corrupt")
        return info, where

    @contextlib.contextmanager
    def _member(self, info, where):
        """The member's stream; damaged zip structure or data named as such."""
        with guard(where, self.what):
            try:
                with self.zf.open(info) as fh:
                    yield fh
            except (zlib.error, zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
                raise TrackFormatError(f"{where}: damaged zip entry ({type(exc).__name__}: {str(exc)[:120]}); "
                                       "the file is corrupt or truncated") from None

    def header(self, key):
        """(shape, dtype) of a member, reading only its npy header."""
        info, where = self._open(key)
        with self._member(info, where) as fh:
            shape, dtype, _, start = _parse_npy_header(where, fh, self.what)
            self._check_sizes(where, info, shape, dtype, start)
            return shape, dtype

    def _check_sizes(self, where, info, shape, dtype, start):
        need = _npy_nbytes(shape, dtype)
        if need != info.file_size - start:
            raise TrackFormatError(f"{where}: npy header says shape {shape} of {dtype} ({need} bytes) but the "
                                   f"member declares {info.file_size - start} bytes of data; corrupt")
        return need

    def array(self, key, as_float: bool = False) -> np.ndarray:
        """A member's array. as_float: integers become float64, floats keep their
        precision (float16 becomes float32); that converted size counts to the bound."""
        info, where = self._open(key)
        with self._member(info, where) as fh:
            shape, dtype, fortran, start = _parse_npy_header(where, fh, self.what)
            need = self._check_sizes(where, info, shape, dtype, start)
            out_item = dtype.itemsize
            if as_float:
                out_item = 8 if dtype.kind in "iu" else max(4, dtype.itemsize)
            cost = need + (_npy_nbytes(shape, np.dtype(f"f{out_item}")) if out_item != dtype.itemsize
                           or dtype.kind != "f" else 0)
            if cost > self.budget:
                raise TrackFormatError(f"{where}: shape {shape} needs {cost} bytes in memory, over the "
                                       f"{self.budget}-byte limit for a {self.file_size}-byte file; refusing")
            self.budget -= need
            arr = _npy_array(where, fh, shape, dtype, fortran, self.what)
        if as_float and (arr.dtype.kind != "f" or arr.dtype.itemsize < 4):
            arr = arr.astype(np.float64 if arr.dtype.kind in "iu" else np.float32)
        return arr
