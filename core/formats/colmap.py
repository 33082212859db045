"""COLMAP sparse models (text and binary) without COLMAP: cameras, images, points3D.

Only parsing: nothing is executed or unpickled. Every error is a TrackFormatError
(a ValueError) naming the file, the line (text) or record (binary), and what was
expected. `write_binary_model` exists for tests and round trips.

Format reference: https://colmap.github.io/format.html
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .validate import MAX_IMAGE_SIDE, TrackFormatError, check_fov, check_intrinsics, read_text

U64 = 1 << 64


# model id -> (name, number of params). Only the models ParaScale reads are listed;
# the others are named in the error so the user knows what they have.
MODELS = {
    0: ("SIMPLE_PINHOLE", 3),
    1: ("PINHOLE", 4),
    2: ("SIMPLE_RADIAL", 4),
    3: ("RADIAL", 5),
    4: ("OPENCV", 8),
}
OTHER_MODELS = {5: "OPENCV_FISHEYE", 6: "FULL_OPENCV", 7: "FOV", 8: "SIMPLE_RADIAL_FISHEYE",
                9: "RADIAL_FISHEYE", 10: "THIN_PRISM_FISHEYE", 11: "RAD_TAN_THIN_PRISM_FISHEYE"}
MODEL_IDS = {name: mid for mid, (name, _) in MODELS.items()}
SUPPORTED = ", ".join(name for name, _ in MODELS.values())


@dataclass
class ColmapCamera:
    camera_id: int
    model: str
    width: int
    height: int
    params: np.ndarray

    def K(self) -> np.ndarray:
        p = self.params
        if self.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
            fx = fy = p[0]
            cx, cy = p[1], p[2]
        else:  # PINHOLE, OPENCV
            fx, fy, cx, cy = p[:4]
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    def distortion(self) -> dict:
        p = [float(v) for v in self.params]
        coeffs = {"SIMPLE_PINHOLE": {}, "PINHOLE": {},
                  "SIMPLE_RADIAL": {"k1": p[3:4]},
                  "RADIAL": {"k1": p[3:4], "k2": p[4:5]},
                  "OPENCV": {"k1": p[4:5], "k2": p[5:6], "p1": p[6:7], "p2": p[7:8]}}[self.model]
        return {"model": self.model, **{k: v[0] for k, v in coeffs.items() if v}}


@dataclass
class ColmapImage:
    image_id: int
    qvec: np.ndarray  # w, x, y, z (Hamilton), world-to-camera
    tvec: np.ndarray  # world-to-camera translation
    camera_id: int
    name: str
    point3d_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    where: str = ""   # "file line n" / "file record n", for error messages


@dataclass
class ColmapModel:
    cameras: dict
    images: dict
    point_ids: Optional[np.ndarray] = None      # (P,)
    xyz: Optional[np.ndarray] = None            # (P, 3)
    tracks: Optional[list] = None               # per point: image ids (np.ndarray)
    files: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# text

def _text_lines(path: Path, allow_empty: bool = False):
    if allow_empty and not Path(path).read_bytes().strip():
        return
    text = read_text(path, "a COLMAP text model")
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#"):
            yield n, s


def _numbers(path, n, tokens, what, kinds):
    out = []
    for tok, kind in zip(tokens, kinds):
        try:
            v = kind(tok)
        except ValueError:
            raise TrackFormatError(f"{path} line {n}: {tok!r} is not a number (expected {what})") from None
        if kind is float and not np.isfinite(v):
            raise TrackFormatError(f"{path} line {n}: non-finite value {tok!r} (expected {what})")
        if kind is int and not -U64 < v < U64:  # ids are at most 64-bit
            raise TrackFormatError(f"{path} line {n}: {tok[:24]!r} is out of range (expected {what})")
        out.append(v)
    return out


def _check_model(path, where, model: str, nparams: int):
    name = str(model)
    if name not in MODEL_IDS:
        raise TrackFormatError(f"{path} {where}: unknown or unsupported camera model {name!r} "
                               f"(expected one of {SUPPORTED})")
    expected = MODELS[MODEL_IDS[name]][1]
    if nparams != expected:
        raise TrackFormatError(f"{path} {where}: camera model {name} takes {expected} parameters, "
                               f"got {nparams}")


def _checked(path, where: str, cam: ColmapCamera) -> ColmapCamera:
    """A camera's intrinsics checked where they are written (the cameras file's line or
    record): focal lengths positive, a field of view of 1 to 179 degrees."""
    K = check_intrinsics(path, cam.K()[None], [where])
    check_fov(path, K, cam.width, cam.height, [where])
    return cam


def read_cameras_text(path) -> dict:
    path = Path(path)
    cams = {}
    for n, s in _text_lines(path):
        tok = s.split()
        if len(tok) < 4:
            raise TrackFormatError(f"{path} line {n}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS[], "
                                   f"got {len(tok)} columns")
        _check_model(path, f"line {n}", tok[1], len(tok) - 4)
        cid, w, h = _numbers(path, n, [tok[0], tok[2], tok[3]], "integer id, width, height", [int, int, int])
        params = np.array(_numbers(path, n, tok[4:], "camera parameters", [float] * (len(tok) - 4)))
        if not (0 < w <= MAX_IMAGE_SIDE and 0 < h <= MAX_IMAGE_SIDE):
            raise TrackFormatError(f"{path} line {n}: image size must be 1 to {MAX_IMAGE_SIDE} pixels a side, "
                                   f"got {w}x{h}")
        if cid in cams:
            raise TrackFormatError(f"{path} line {n}: camera id {cid} appears twice")
        cams[cid] = _checked(path, f"line {n}", ColmapCamera(cid, tok[1], w, h, params))
    return cams


def read_images_text(path) -> dict:
    """images.txt: after the comments, lines alternate strictly between an image line
    and its POINTS2D line (which may be empty)."""
    path = Path(path)
    text = read_text(path, "a COLMAP images.txt")
    lines = [(n, s.strip()) for n, s in enumerate(text.splitlines(), start=1) if not s.lstrip().startswith("#")]
    while lines and not lines[-1][1]:
        lines.pop()
    images = {}
    for i in range(0, len(lines), 2):
        n, s = lines[i]
        tok = s.split()
        if len(tok) < 10:
            raise TrackFormatError(f"{path} line {n}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME "
                                   f"(10 columns), got {len(tok)}")
        name = " ".join(tok[9:])
        vals = _numbers(path, n, tok[:9], "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID",
                        [int] + [float] * 7 + [int])
        pts = np.zeros(0, np.int64)
        if i + 1 < len(lines) and lines[i + 1][1]:
            n2, s2 = lines[i + 1]
            tok2 = s2.split()
            if len(tok2) % 3:
                raise TrackFormatError(f"{path} line {n2}: expected POINTS2D as X Y POINT3D_ID triples, "
                                       f"got {len(tok2)} numbers (not a multiple of 3)")
            try:
                arr = np.array(tok2, dtype=float).reshape(-1, 3)
            except (ValueError, OverflowError):
                raise TrackFormatError(f"{path} line {n2}: POINTS2D must be numbers (X Y POINT3D_ID ...)") from None
            ids = arr[:, 2]
            if not (np.isfinite(arr).all() and (np.abs(ids) < 2.0 ** 63).all()):
                raise TrackFormatError(f"{path} line {n2}: POINTS2D must be finite X Y and integer POINT3D_ID "
                                       "(-1 for none)")
            pts = ids.astype(np.int64)
        iid = vals[0]
        if iid in images:
            raise TrackFormatError(f"{path} line {n}: image id {iid} appears twice")
        images[iid] = ColmapImage(iid, np.array(vals[1:5]), np.array(vals[5:8]), vals[8], name, pts,
                                  where=f"{path} line {n}")
    if not images:
        raise TrackFormatError(f"{path}: no images (expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME lines)")
    return images


def read_points3d_text(path):
    path = Path(path)
    ids, xyz, tracks = [], [], []
    for n, s in _text_lines(path, allow_empty=True):  # a model without points has an empty file
        tok = s.split()
        if len(tok) < 8 or (len(tok) - 8) % 2:
            raise TrackFormatError(f"{path} line {n}: expected POINT3D_ID X Y Z R G B ERROR TRACK[] "
                                   f"(8 columns plus pairs), got {len(tok)} columns")
        vals = _numbers(path, n, tok[:4], "POINT3D_ID X Y Z", [int, float, float, float])
        try:
            tr = np.array(tok[8:], dtype=np.int64).reshape(-1, 2)[:, 0]
        except (ValueError, OverflowError):
            raise TrackFormatError(f"{path} line {n}: TRACK must be integer IMAGE_ID POINT2D_IDX pairs "
                                   "(64-bit)") from None
        if not 0 <= vals[0] < U64:
            raise TrackFormatError(f"{path} line {n}: POINT3D_ID {vals[0]} is out of range (expected 0 to 2^64-1)")
        ids.append(vals[0])
        xyz.append(vals[1:4])
        tracks.append(tr)
    return np.array(ids, np.uint64), np.array(xyz, float).reshape(-1, 3), tracks


# ---------------------------------------------------------------------------
# binary

class _Reader:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.buf = path.read_bytes()
        except OSError as exc:
            raise TrackFormatError(f"{path}: cannot read ({exc.strerror})") from None
        if not self.buf:
            raise TrackFormatError(f"{path}: empty file (expected a COLMAP binary model)")
        self.pos = 0

    def take(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise TrackFormatError(f"{self.path}: truncated at byte {self.pos} of {len(self.buf)} "
                                   f"while reading {what} ({size} bytes expected)")
        out = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return out

    def array(self, dtype, count: int, what: str):
        dtype = np.dtype(dtype)
        size = dtype.itemsize * count
        if count < 0 or self.pos + size > len(self.buf):
            raise TrackFormatError(f"{self.path}: truncated at byte {self.pos} of {len(self.buf)} "
                                   f"while reading {what} ({size} bytes expected)")
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += size
        return out

    def cstring(self, what: str) -> str:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise TrackFormatError(f"{self.path}: truncated at byte {self.pos} while reading {what} "
                                   "(expected a NUL-terminated name)")
        raw = self.buf[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TrackFormatError(f"{self.path}: {what} is not a UTF-8 name") from None

    def done(self):
        if self.pos != len(self.buf):
            raise TrackFormatError(f"{self.path}: {len(self.buf) - self.pos} unexpected bytes after the last "
                                   f"record (at byte {self.pos}); the count in the header does not match")

    def count(self, what: str, limit_each: int) -> int:
        """The record count of the header, checked against the bytes that follow
        (each record is at least limit_each bytes). Nothing is sized from it."""
        (n,) = self.take("<Q", f"the number of {what}")
        rest = len(self.buf) - self.pos
        if n * limit_each > rest:
            end = len(self.buf)
            raise TrackFormatError(f"{self.path}: truncated at byte {end} of {end}: the header says {n} {what} "
                                   f"(at least {n * limit_each} bytes) but only {rest} bytes follow, so record "
                                   f"{rest // limit_each} ({what.rstrip('s')}) cannot be there")
        return n


def _finite(path, what, arr):
    if not np.isfinite(arr).all():
        raise TrackFormatError(f"{path} {what}: non-finite value (NaN or inf)")


def read_cameras_binary(path) -> dict:
    path = Path(path)
    r = _Reader(path)
    cams = {}
    for k in range(r.count("cameras", 24)):
        what = f"record {k} (camera)"
        cid, mid, w, h = r.take("<iiQQ", what)
        if mid not in MODELS:
            name = OTHER_MODELS.get(mid, f"id {mid}")
            raise TrackFormatError(f"{path} {what}: unknown or unsupported camera model {name} "
                                   f"(expected one of {SUPPORTED})")
        name, npar = MODELS[mid]
        params = r.array("<f8", npar, f"{what} parameters").astype(float)
        _finite(path, what, params)
        if not (0 < w <= MAX_IMAGE_SIDE and 0 < h <= MAX_IMAGE_SIDE):
            raise TrackFormatError(f"{path} {what}: implausible image size {w}x{h} (expected 1 to "
                                   f"{MAX_IMAGE_SIDE} pixels a side)")
        if cid in cams:
            raise TrackFormatError(f"{path} {what}: camera id {cid} appears twice")
        cams[cid] = _checked(path, what, ColmapCamera(cid, name, int(w), int(h), params))
    r.done()
    return cams


def read_images_binary(path) -> dict:
    path = Path(path)
    r = _Reader(path)
    images = {}
    for k in range(r.count("images", 64)):
        what = f"record {k} (image)"
        vals = r.take("<I4d3dI", what)
        name = r.cstring(f"{what} name")
        (npts,) = r.take("<Q", f"{what} number of 2D points")
        pts = r.array([("x", "<f8"), ("y", "<f8"), ("id", "<i8")], npts, f"{what} 2D points")
        arr = np.array(vals[1:8], float)
        _finite(path, f"{what} ({name})", arr)
        if vals[0] in images:
            raise TrackFormatError(f"{path} {what} ({name}): image id {vals[0]} appears twice")
        images[vals[0]] = ColmapImage(vals[0], arr[:4], arr[4:7], vals[8], name,
                                      pts["id"].astype(np.int64), where=f"{path} {what}")
    r.done()
    if not images:
        raise TrackFormatError(f"{path}: no images in the model")
    return images


def read_points3d_binary(path):
    path = Path(path)
    r = _Reader(path)
    n = r.count("points", 43)
    ids, xyz, tracks = [], [], []
    head = struct.Struct("<Q3d3BdQ")
    buf = r.buf
    for k in range(n):
        if r.pos + head.size > len(buf):
            raise TrackFormatError(f"{path}: truncated at byte {r.pos} of {len(buf)} while reading "
                                   f"record {k} (point)")
        pid, x, y, z, _r, _g, _b, _err, tlen = head.unpack_from(buf, r.pos)
        r.pos += head.size
        tr = r.array("<u4", 2 * tlen, f"record {k} (point {pid}) track")
        ids.append(pid)
        xyz.append((x, y, z))
        tracks.append(tr[0::2].astype(np.int64))
    r.done()
    ids = np.array(ids, np.uint64)  # COLMAP point ids are unsigned 64-bit
    xyz = np.array(xyz, float).reshape(-1, 3)
    _finite(path, "points", xyz)
    return ids, xyz, tracks


# ---------------------------------------------------------------------------
# a whole model

def find_model_files(path) -> tuple[dict, str]:
    """The cameras/images/points3D files of the model at path (a folder, or one of its
    files), and whether they are 'text' or 'binary'. Looks in path, path/sparse/0, path/0."""
    path = Path(path)
    folder = path.parent if path.is_file() else path
    prefer = None
    if path.is_file():
        prefer = "binary" if path.suffix == ".bin" else "text"
    for cand in (folder, folder / "sparse" / "0", folder / "sparse", folder / "0"):
        for kind, ext in ((prefer, None), ("text", ".txt"), ("binary", ".bin")):
            if kind is None:
                continue
            ext = ext or (".bin" if kind == "binary" else ".txt")
            files = {k: cand / f"{k}{ext}" for k in ("cameras", "images", "points3D")}
            if files["cameras"].is_file() or files["images"].is_file():
                missing = [f.name for k, f in files.items() if k != "points3D" and not f.is_file()]
                if missing:
                    raise TrackFormatError(f"{cand}: incomplete COLMAP {kind} model, missing "
                                           f"{', '.join(missing)} (expected cameras{ext} and images{ext}, "
                                           f"points3D{ext} optional)")
                return files, kind
    raise TrackFormatError(f"{path}: no COLMAP model here (expected cameras.txt/images.txt or "
                           "cameras.bin/images.bin, possibly under sparse/0)")


def read_model(path) -> ColmapModel:
    files, kind = find_model_files(path)
    if kind == "text":
        cams, imgs = read_cameras_text(files["cameras"]), read_images_text(files["images"])
        pts = read_points3d_text(files["points3D"]) if files["points3D"].is_file() else None
    else:
        cams, imgs = read_cameras_binary(files["cameras"]), read_images_binary(files["images"])
        pts = read_points3d_binary(files["points3D"]) if files["points3D"].is_file() else None
    model = ColmapModel(cams, imgs, files={k: str(v) for k, v in files.items()})
    model.files["kind"] = kind
    if pts is not None:
        model.point_ids, model.xyz, model.tracks = pts
    return model


# ---------------------------------------------------------------------------
# writing (binary), for round trips and tests

def write_binary_model(folder, cameras: dict, images: dict, point_ids=None, xyz=None, tracks=None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", len(cameras)))
        for cam in cameras.values():
            f.write(struct.pack("<iiQQ", cam.camera_id, MODEL_IDS[cam.model], cam.width, cam.height))
            f.write(np.asarray(cam.params, "<f8").tobytes())
    with open(folder / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(images)))
        for im in images.values():
            f.write(struct.pack("<I4d3dI", im.image_id, *im.qvec, *im.tvec, im.camera_id))
            f.write(im.name.encode() + b"\0")
            ids = np.asarray(im.point3d_ids, np.int64)
            f.write(struct.pack("<Q", len(ids)))
            pts = np.zeros(len(ids), [("x", "<f8"), ("y", "<f8"), ("id", "<i8")])
            pts["id"] = ids
            f.write(pts.tobytes())
    if xyz is not None:
        with open(folder / "points3D.bin", "wb") as f:
            f.write(struct.pack("<Q", len(xyz)))
            for pid, p, tr in zip(point_ids, xyz, tracks):
                f.write(struct.pack("<Q3d3BdQ", int(pid), *map(float, p), 128, 128, 128, 1.0, len(tr)))
                pairs = np.zeros((len(tr), 2), "<u4")
                pairs[:, 0] = tr
                f.write(pairs.tobytes())


def model_size(path) -> int:
    return os.path.getsize(path)
