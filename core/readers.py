"""Camera-track readers into the common Track (docs/conventions.md, docs/formats.md).

    read_track(path, format=None, **options) -> Track

Formats (auto-detected by content; `format` forces one):

- ``colmap``: COLMAP sparse model, text or binary (a folder, or one of its files).
  Cameras SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV (K kept, distortion
  recorded); images world-to-camera with Hamilton QW QX QY QZ; points3D with their
  tracks become Track.points and per-frame visibility. Frames ordered by image name.
- ``transforms``: NeRF / instant-ngp / nerfstudio ``transforms.json``: ``fl_x fl_y cx cy
  w h`` or ``camera_angle_x``, per-frame intrinsics where present, camera-to-world in
  OpenGL axes (converted to OpenCV), frames ordered by file name.
- ``re10k``: RealEstate10K / CameraCtrl ``.txt``: first line a URL (may be empty), then
  19 numbers per frame: timestamp (microseconds), fx/W fy/H cx/W cy/H, k1 k2, 3x4
  world-to-camera row-major. The intrinsics are normalised, so the pixel size is a free
  choice: ``size=(W, H)`` sets it (pass the video's size when there is a video);
  without it the reader picks square pixels at a height of 576 (W = 576 * fy/fx,
  rounded to even: 1024x576 for the 16:9 RealEstate10K originals) and records
  ``meta["size_assumed"] = True``. Timestamps that do not increase (generator demo
  files use 0 or a constant) fall back to frame index / fps.
- ``llff``: LLFF ``poses_bounds.npy``: (N, 17), camera-to-world in axes [down, right,
  back], then H W f, then near/far (kept in ``meta["bounds"]``). ``size=(W, H)`` rescales
  the intrinsics to a downsampled image set (for example images_8).
- ``megasam``: MegaSaM-style ``.npz`` with ``cam_c2w`` (N,4,4), ``intrinsic`` (3,3) or
  (N,3,3), ``depths`` (N,h,w) and optionally ``images`` (N,h,w,3).

Formats without timestamps get ``times = index / fps`` (fps 24 unless given) and
``meta["timed"] = False``: one frame per image.

Malformed input raises TrackFormatError (a ValueError) naming the file, the line or
record and what was expected. Parsers never execute or unpickle data (``np.load`` with
``allow_pickle=False``, ``json``, ``struct``).
"""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from . import colmap as _colmap
from .cameras import Track, TrackError, invert_poses, make_c2w
from .colmap import TrackFormatError, read_text
from .rotations import matrix_from_quat

__all__ = ["TrackFormatError", "FORMATS", "read_track", "detect_format", "read_colmap", "read_transforms",
           "read_re10k", "read_llff", "read_megasam", "IMAGE_EXTENSIONS", "list_images"]

FORMATS = ("colmap", "transforms", "re10k", "llff", "megasam")
DEFAULT_FPS = 24.0
RE10K_DEFAULT_HEIGHT = 576
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".webp")
OPENGL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
ROT_TOL = 1e-4


# ---------------------------------------------------------------------------
# helpers

def list_images(folder) -> list:
    """Image files in a folder, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _check_rotations(path, R: np.ndarray, where: Sequence[str]) -> None:
    R = np.asarray(R, float)
    bad_finite = ~np.isfinite(R.reshape(len(R), -1)).all(axis=1)
    if bad_finite.any():
        i = int(np.argmax(bad_finite))
        raise TrackFormatError(f"{path} {where[i]}: non-finite value (NaN or inf) in the rotation")
    err = np.abs(np.swapaxes(R, -1, -2) @ R - np.eye(3)).max(axis=(-2, -1))
    det = np.linalg.det(R)
    bad = (err > ROT_TOL) | (np.abs(det - 1.0) > ROT_TOL)
    if bad.any():
        i = int(np.argmax(bad))
        why = (f"determinant {det[i]:+.4f}: a reflection, not a rotation" if err[i] <= ROT_TOL
               else f"R^T R differs from the identity by {err[i]:.3g}")
        raise TrackFormatError(f"{path} {where[i]}: the 3x3 rotation block is not a rotation ({why}; "
                               "expected an orthonormal matrix with determinant +1)")


def _check_finite(path, arr, where: Sequence[str], what: str) -> None:
    arr = np.asarray(arr, float)
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise TrackFormatError(f"{path} {where[i]}: non-finite value (NaN or inf) in {what}")


def _find_image(folder: Path, name: str) -> Optional[Path]:
    p = folder / name
    if p.is_file():
        return p
    if not Path(name).suffix:  # NeRF synthetic: file_path without extension
        for ext in (".png", ".jpg", ".jpeg", ".exr"):
            q = folder / (name + ext)
            if q.is_file():
                return q
    return None


def _check_images(path, folder: Path, names: Sequence[str], where: Sequence[str]) -> None:
    folder = Path(folder)
    if not folder.is_dir():
        raise TrackFormatError(f"{path}: image folder {folder} does not exist")
    for i, name in enumerate(names):
        if _find_image(folder, name) is None:
            raise TrackFormatError(f"{path} {where[i]}: image {name!r} does not exist in {folder} "
                                   "(expected one image file per frame of the track)")


def _untimed(n: int, fps: Optional[float]) -> np.ndarray:
    fps = float(fps or DEFAULT_FPS)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return np.arange(n) / fps


def _build(path, *, where, **kwargs) -> Track:
    try:
        return Track(**kwargs)
    except TrackError as exc:  # anything the reader did not catch itself, still naming the file
        raise TrackFormatError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------
# detection

def detect_format(path) -> str:
    """The format of a track file or folder, from its content."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "transforms.json").is_file():
            return "transforms"
        if (path / "poses_bounds.npy").is_file():
            return "llff"
        _colmap.find_model_files(path)  # raises naming what it expected
        return "colmap"
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head.strip():
        raise TrackFormatError(f"{path}: empty file (expected a camera track: COLMAP, transforms.json, "
                               "RealEstate10K .txt, poses_bounds.npy or MegaSaM .npz)")
    if head.startswith(b"\x93NUMPY"):
        return "llff"
    if head.startswith(b"PK"):
        return "megasam"
    if path.name in ("cameras.bin", "images.bin", "points3D.bin"):
        return "colmap"
    if path.name in ("cameras.txt", "images.txt", "points3D.txt"):
        return "colmap"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if path.suffix == ".bin":
            return "colmap"
        raise TrackFormatError(f"{path}: binary file of unknown format (expected a COLMAP .bin, "
                               ".npy or .npz)") from None
    s = text.lstrip()
    if s.startswith("{") or s.startswith("["):
        if s.startswith("{") and '"frames"' in path.read_text(encoding="utf-8", errors="replace"):
            return "transforms"
        raise TrackFormatError(f"{path}: JSON without a \"frames\" list; only NeRF-style transforms.json "
                               "is read as a track (expected {\"frames\": [{\"file_path\", \"transform_matrix\"}]})")
    if s.startswith("# Camera list") or s.startswith("# Image list") or s.startswith("# 3D point list"):
        return "colmap"
    return "re10k"


def read_track(path, format: Optional[str] = None, **options) -> Track:
    """Read any supported track. options go to the format's reader (images=, size=,
    fps=, check_images=, fix_reflection=); unknown ones for that format are ignored."""
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt in (None, "auto"):
        fmt = detect_format(path)
    readers = {"colmap": read_colmap, "transforms": read_transforms, "re10k": read_re10k,
               "llff": read_llff, "megasam": read_megasam}
    if fmt not in readers:
        raise ValueError(f"unknown track format {fmt!r} (expected one of {', '.join(FORMATS)})")
    import inspect
    reader = readers[fmt]
    accepted = inspect.signature(reader).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    track = reader(path, **kwargs)
    track.meta.setdefault("format", fmt)
    track.meta.setdefault("path", str(path))
    return track


# ---------------------------------------------------------------------------
# COLMAP

def read_colmap(path, images=None, fps: Optional[float] = None) -> Track:
    """A COLMAP sparse model (folder or one of its files). images: the image folder,
    checked for every image the model names (by default <model>/../images if present)."""
    path = Path(path)
    model = _colmap.read_model(path)
    imgs = sorted(model.images.values(), key=lambda im: im.name)
    where = [im.where for im in imgs]
    names = [im.name for im in imgs]
    for im in imgs:
        if im.camera_id not in model.cameras:
            raise TrackFormatError(f"{im.where}: camera id {im.camera_id} is not in {model.files['cameras']}")
        qn = np.linalg.norm(im.qvec)
        if not abs(qn - 1.0) < 1e-3:
            raise TrackFormatError(f"{im.where}: quaternion QW QX QY QZ has norm {qn:.6g} "
                                   "(expected a unit quaternion)")
    q = np.array([im.qvec for im in imgs])
    t = np.array([im.tvec for im in imgs])
    R_w2c = matrix_from_quat(q)
    _check_rotations(path, R_w2c, where)
    w2c = make_c2w(R_w2c, t)
    c2w = invert_poses(w2c)
    cams = [model.cameras[im.camera_id] for im in imgs]
    sizes = {(c.width, c.height) for c in cams}
    if len(sizes) > 1:
        raise TrackFormatError(f"{path}: cameras of different image sizes {sorted(sizes)}; "
                               "a track needs one image size")
    W, H = sizes.pop()
    K = np.stack([c.K() for c in cams])
    models = {c.camera_id: c.distortion() for c in cams}
    distortion = next(iter(models.values())) if len(models) == 1 else {"per_camera": models}
    folder = Path(images) if images is not None else None
    if folder is None:
        model_dir = Path(model.files["cameras"]).parent
        for cand in (model_dir.parent / "images", model_dir.parent.parent / "images"):
            if cand.is_dir() and any(_find_image(cand, n) for n in names[:1]):
                folder = cand
                break
    if folder is not None:
        _check_images(path, folder, names, where)
    points = visibility = None
    if model.xyz is not None and len(model.xyz):
        points = model.xyz
        frame_of = {im.image_id: i for i, im in enumerate(imgs)}
        lengths = np.array([len(tr) for tr in model.tracks])
        flat_img = np.concatenate(model.tracks) if len(model.tracks) else np.zeros(0, np.int64)
        flat_pt = np.repeat(np.arange(len(points)), lengths)
        lookup = np.full(max(frame_of) + 2 if frame_of else 1, -1)
        for iid, fi in frame_of.items():
            lookup[iid] = fi
        ok = (flat_img >= 0) & (flat_img < len(lookup))
        fr = np.where(ok, lookup[np.clip(flat_img, 0, len(lookup) - 1)], -1)
        keep = fr >= 0
        order = np.argsort(fr[keep], kind="stable")
        fr_k, pt_k = fr[keep][order], flat_pt[keep][order]
        bounds = np.searchsorted(fr_k, np.arange(len(imgs) + 1))
        visibility = [np.unique(pt_k[bounds[i]:bounds[i + 1]]) for i in range(len(imgs))]
    return _build(path, where=where, c2w=c2w, K=K, width=W, height=H, times=_untimed(len(imgs), fps),
                  names=names, points=points, visibility=visibility, distortion=distortion,
                  source=f"colmap {model.files['kind']}: {path}",
                  meta={"timed": False, "fps": float(fps or DEFAULT_FPS),
                        "image_folder": str(folder) if folder else None,
                        "image_ids": [im.image_id for im in imgs]})


# ---------------------------------------------------------------------------
# NeRF transforms.json

_INTR_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y",
              "k1", "k2", "k3", "k4", "p1", "p2")


def _num(path, where, obj, key):
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TrackFormatError(f"{path} {where}: {key!r} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise TrackFormatError(f"{path} {where}: {key!r} is not finite ({v})")
    return float(v)


def read_transforms(path, images=None, fps: Optional[float] = None, check_images: Optional[bool] = None,
                    size=None) -> Track:
    """NeRF / instant-ngp / nerfstudio transforms.json (file or folder holding it).

    check_images: None (default) checks that every named image exists as soon as one of
    them does (a pose-only json without its images still reads); True always; False never.
    size: (W, H) when the json has neither w/h nor readable images."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    raw = read_text(path, "a transforms.json object")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TrackFormatError(f"{path} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise TrackFormatError(f"{path}: expected an object with a \"frames\" list")
    frames = data["frames"]
    if not frames:
        raise TrackFormatError(f"{path}: \"frames\" is empty (expected at least one frame)")
    base = Path(images) if images is not None else path.parent
    recs = []
    for i, fr in enumerate(frames):
        where = f"frames[{i}]"
        if not isinstance(fr, dict) or "transform_matrix" not in fr or "file_path" not in fr:
            raise TrackFormatError(f"{path} {where}: expected an object with \"file_path\" and \"transform_matrix\"")
        where = f"frames[{i}] ({fr['file_path']})"
        try:
            M = np.array(fr["transform_matrix"], dtype=float)
        except (TypeError, ValueError):
            raise TrackFormatError(f"{path} {where}: transform_matrix must be a 4x4 list of numbers") from None
        if M.shape == (3, 4):
            M = np.vstack([M, [0, 0, 0, 1]])
        if M.shape != (4, 4):
            raise TrackFormatError(f"{path} {where}: transform_matrix must be 4x4 (or 3x4), got shape {M.shape}")
        recs.append((str(fr["file_path"]), i, where, M, fr))
    recs.sort(key=lambda r: r[0])
    names = [r[0] for r in recs]
    where = [r[2] for r in recs]
    M = np.stack([r[3] for r in recs])
    _check_finite(path, M, where, "transform_matrix")
    if np.abs(M[:, 3] - [0, 0, 0, 1]).max() > 1e-6:
        i = int(np.argmax(np.abs(M[:, 3] - [0, 0, 0, 1]).max(axis=1)))
        raise TrackFormatError(f"{path} {where[i]}: last row of transform_matrix must be 0 0 0 1")
    _check_rotations(path, M[:, :3, :3], where)
    c2w = M @ OPENGL_TO_CV

    # image size: global w/h, per-frame w/h, images on disk, or size=
    def get(fr, key, where_i):
        if key in fr:
            return _num(path, where_i, fr, key)
        if key in data:
            return _num(path, "(top level)", data, key)
        return None

    found = [_find_image(base, n) for n in names]
    if check_images or (check_images is None and any(found)):
        _check_images(path, base, names, where)
    Ks, sizes = [], []
    for (name, _, wh, _, fr), img in zip(recs, found):
        w, h = get(fr, "w", wh), get(fr, "h", wh)
        if w is None or h is None:
            if size is not None:
                w, h = size
            elif img is not None:
                import cv2
                arr = cv2.imread(str(img), cv2.IMREAD_UNCHANGED)
                if arr is None:
                    raise TrackFormatError(f"{path} {wh}: cannot read image {img} to learn its size")
                h, w = arr.shape[:2]
            else:
                raise TrackFormatError(f"{path} {wh}: no image size (expected \"w\" and \"h\", readable "
                                       "images, or size=(W, H))")
        fx, fy = get(fr, "fl_x", wh), get(fr, "fl_y", wh)
        if fx is None:
            ax = get(fr, "camera_angle_x", wh)
            if ax is None:
                raise TrackFormatError(f"{path} {wh}: no focal length (expected \"fl_x\" or \"camera_angle_x\")")
            fx = 0.5 * w / math.tan(0.5 * ax)
        if fy is None:
            ay = get(fr, "camera_angle_y", wh)
            fy = 0.5 * h / math.tan(0.5 * ay) if ay is not None and "fl_x" not in fr and "fl_x" not in data else fx
        cx = get(fr, "cx", wh)
        cy = get(fr, "cy", wh)
        cx = w / 2.0 if cx is None else cx
        cy = h / 2.0 if cy is None else cy
        if not (fx > 0 and fy > 0 and w > 0 and h > 0):
            raise TrackFormatError(f"{path} {wh}: focal length and image size must be positive "
                                   f"(fl_x={fx}, fl_y={fy}, w={w}, h={h})")
        Ks.append([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        sizes.append((int(round(w)), int(round(h))))
    if len(set(sizes)) > 1:
        raise TrackFormatError(f"{path}: frames of different image sizes {sorted(set(sizes))}; "
                               "a track needs one image size")
    W, H = sizes[0]
    dist = {k: float(data[k]) for k in ("k1", "k2", "k3", "k4", "p1", "p2") if k in data}
    if dist:
        dist = {"model": "OPENCV" if "p1" in dist else "RADIAL", **dist}
    return _build(path, where=where, c2w=c2w, K=np.array(Ks, float), width=W, height=H,
                  times=_untimed(len(recs), fps), names=names, distortion=dist,
                  source=f"transforms.json: {path}",
                  meta={"timed": False, "fps": float(fps or DEFAULT_FPS), "image_folder": str(base),
                        "file_order": [r[1] for r in recs]})


# ---------------------------------------------------------------------------
# RealEstate10K / CameraCtrl

def read_re10k(path, size=None, fps: Optional[float] = None, fix_reflection: bool = False) -> Track:
    """RealEstate10K / CameraCtrl pose .txt. size=(W, H) in pixels (see the module doc).

    fix_reflection: some generator demo files (CamI2V orbit_left) write a left-handed
    3x3 block (determinant -1, camera y flipped). By default that is an error; with
    fix_reflection=True the camera y row is negated on such frames (camera centres
    unchanged, image vertically consistent) and meta["fixed_reflection"] lists them."""
    path = Path(path)
    text = read_text(path, "a RealEstate10K pose file: a URL line, then 19 numbers per frame")
    lines = text.splitlines()
    rows, where = [], []
    url = None
    for n, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        tok = s.split()
        if n == 1 or (url is None and not rows):
            try:
                [float(t) for t in tok]
                numeric = True
            except ValueError:
                numeric = False
            if not numeric or len(tok) != 19:
                if n == 1:
                    url = s
                    continue
        if len(tok) != 19:
            raise TrackFormatError(f"{path} line {n}: expected 19 numbers (timestamp, fx fy cx cy, k1 k2, "
                                   f"3x4 world-to-camera), got {len(tok)} columns")
        try:
            vals = [float(t) for t in tok]
        except ValueError:
            bad = next(t for t in tok if not _is_float(t))
            raise TrackFormatError(f"{path} line {n}: {bad!r} is not a number (expected 19 numbers)") from None
        if not all(math.isfinite(v) for v in vals):
            raise TrackFormatError(f"{path} line {n}: non-finite value (NaN or inf); expected 19 finite numbers")
        rows.append(vals)
        where.append(f"line {n}")
    if not rows:
        raise TrackFormatError(f"{path}: no pose lines (expected 19 numbers per frame after the URL line)")
    a = np.array(rows)
    stamps = a[:, 0]
    intr = a[:, 1:5]
    w2c3 = a[:, 7:19].reshape(-1, 3, 4)
    if (intr[:, :2] <= 0).any():
        i = int(np.argmax((intr[:, :2] <= 0).any(axis=1)))
        raise TrackFormatError(f"{path} {where[i]}: normalised focal lengths fx/W, fy/H must be positive")
    R = w2c3[:, :, :3].copy()
    t = w2c3[:, :, 3].copy()
    fixed = []
    if fix_reflection:
        det = np.linalg.det(R)
        neg = det < 0
        R[neg, 1, :] *= -1
        t[neg, 1] *= -1
        fixed = [where[i] for i in np.flatnonzero(neg)]
    _check_rotations(path, R, where)
    c2w = invert_poses(make_c2w(R, t))
    meta = {"url": url, "timestamps_us": stamps.tolist()}
    if size is None:
        H = RE10K_DEFAULT_HEIGHT
        W = int(round(H * intr[0, 1] / intr[0, 0] / 2.0)) * 2
        meta["size_assumed"] = True
    else:
        W, H = int(size[0]), int(size[1])
        meta["size_assumed"] = False
    K = np.zeros((len(a), 3, 3))
    K[:, 0, 0] = intr[:, 0] * W
    K[:, 1, 1] = intr[:, 1] * H
    K[:, 0, 2] = intr[:, 2] * W
    K[:, 1, 2] = intr[:, 3] * H
    K[:, 2, 2] = 1.0
    if len(stamps) > 1 and np.all(np.diff(stamps) > 0):
        times = (stamps - stamps[0]) * 1e-6
        meta["timed"] = True
    elif len(stamps) == 1:
        times = np.zeros(1)
        meta["timed"] = True
    else:
        times = _untimed(len(stamps), fps)
        meta["timed"] = False
        meta["fps"] = float(fps or DEFAULT_FPS)
        meta["times_note"] = "timestamps do not increase; times are frame index / fps"
    if fixed:
        meta["fixed_reflection"] = fixed
    names = [f"{i:04d}" for i in range(len(a))]
    return _build(path, where=where, c2w=c2w, K=K, width=W, height=H, times=times, names=names,
                  distortion={"model": "RADIAL", "k1": float(a[0, 5]), "k2": float(a[0, 6])}
                  if np.any(a[:, 5:7]) else {},
                  source=f"RealEstate10K: {path}", meta=meta)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# numpy containers

def _load_npy(path: Path, kind: str):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TrackFormatError(f"{path}: cannot read as {kind} ({exc}); truncated, or an object array "
                               "(pickles are never loaded)") from None


def read_llff(path, size=None, images=None, fps: Optional[float] = None) -> Track:
    """LLFF poses_bounds.npy (file or folder). size=(W, H) of the images actually used
    (for example images_8); by default the H, W stored in the file. images: a folder
    whose sorted image files name the frames (checked: one per row)."""
    path = Path(path)
    if path.is_dir():
        path = path / "poses_bounds.npy"
    arr = _load_npy(path, "LLFF poses_bounds.npy")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise TrackFormatError(f"{path}: expected a numeric (N, 17) array, got {type(arr).__name__}"
                               f"{' of ' + str(arr.dtype) if hasattr(arr, 'dtype') else ''}")
    if arr.ndim != 2 or arr.shape[1] not in (15, 17) or len(arr) == 0:
        raise TrackFormatError(f"{path}: expected shape (N, 17) (3x5 pose-hwf block and near/far per row), "
                               f"got {arr.shape}")
    arr = arr.astype(float)
    where = [f"row {i}" for i in range(len(arr))]
    _check_finite(path, arr, where, "the row")
    P = arr[:, :15].reshape(-1, 3, 5)
    llff = P[:, :, :4]
    R = np.stack([llff[:, :, 1], llff[:, :, 0], -llff[:, :, 2]], axis=-1)
    _check_rotations(path, R, where)
    c2w = make_c2w(R, llff[:, :, 3])
    Hs, Ws, fs = P[:, 0, 4], P[:, 1, 4], P[:, 2, 4]
    if (Hs <= 0).any() or (Ws <= 0).any() or (fs <= 0).any():
        i = int(np.argmax((Hs <= 0) | (Ws <= 0) | (fs <= 0)))
        raise TrackFormatError(f"{path} {where[i]}: H, W, f must be positive")
    H0, W0 = int(round(Hs[0])), int(round(Ws[0]))
    W, H = (int(size[0]), int(size[1])) if size is not None else (W0, H0)
    sx, sy = W / Ws, H / Hs
    K = np.zeros((len(arr), 3, 3))
    K[:, 0, 0] = fs * sx
    K[:, 1, 1] = fs * sy
    K[:, 0, 2] = Ws / 2 * sx
    K[:, 1, 2] = Hs / 2 * sy
    K[:, 2, 2] = 1
    names = [f"{i:03d}" for i in range(len(arr))]
    if images is not None:
        files = list_images(images) if Path(images).is_dir() else []
        if len(files) != len(arr):
            raise TrackFormatError(f"{path}: {len(arr)} poses but {len(files)} images in {images} "
                                   "(expected one image per row, in sorted order)")
        names = [p.name for p in files]
    meta = {"timed": False, "fps": float(fps or DEFAULT_FPS), "full_size": [W0, H0]}
    if arr.shape[1] == 17:
        meta["bounds"] = arr[:, 15:17].tolist()
    return _build(path, where=where, c2w=c2w, K=K, width=W, height=H, times=_untimed(len(arr), fps),
                  names=names, source=f"LLFF: {path}", meta=meta)


def read_megasam(path, fps: Optional[float] = None) -> Track:
    """MegaSaM-style npz: cam_c2w (N,4,4) OpenCV, intrinsic (3,3)|(N,3,3), depths (N,h,w)
    in the poses' units (<= 0 or non-finite read as background), images optional."""
    path = Path(path)
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TrackFormatError(f"{path}: cannot read as a MegaSaM .npz ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise TrackFormatError(f"{path}: expected an .npz archive with cam_c2w, intrinsic, depths")
    with npz:
        missing = [k for k in ("cam_c2w", "intrinsic") if k not in npz.files]
        if missing:
            raise TrackFormatError(f"{path}: missing array(s) {', '.join(missing)} (expected cam_c2w (N,4,4), "
                                   f"intrinsic (3,3), depths (N,h,w); found {', '.join(npz.files) or 'none'})")
        try:
            c2w = np.asarray(npz["cam_c2w"], float)
            K = np.asarray(npz["intrinsic"], float)
            depths = np.asarray(npz["depths"], float) if "depths" in npz.files else None
            img_shape = npz["images"].shape if "images" in npz.files else None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise TrackFormatError(f"{path}: an array cannot be read ({exc}); truncated, or an object "
                                   "array (pickles are never loaded)") from None
    if c2w.ndim != 3 or c2w.shape[1:] not in ((4, 4), (3, 4)) or len(c2w) == 0:
        raise TrackFormatError(f"{path}: cam_c2w must be (N, 4, 4), got {c2w.shape}")
    n = len(c2w)
    where = [f"cam_c2w[{i}]" for i in range(n)]
    _check_finite(path, c2w, where, "cam_c2w")
    _check_rotations(path, c2w[:, :3, :3], where)
    c2w = make_c2w(c2w[:, :3, :3], c2w[:, :3, 3])
    if K.shape == (3, 3):
        K = np.repeat(K[None], n, axis=0)
    if K.shape != (n, 3, 3):
        raise TrackFormatError(f"{path}: intrinsic must be (3, 3) or ({n}, 3, 3), got {K.shape}")
    _check_finite(path, K, [f"intrinsic[{i}]" for i in range(n)], "intrinsic")
    if depths is not None:
        if depths.ndim != 3 or len(depths) != n:
            raise TrackFormatError(f"{path}: depths must be ({n}, h, w), got {depths.shape}")
        depths = np.where(np.isfinite(depths) & (depths > 0), depths, np.inf)
    if img_shape is not None and len(img_shape) >= 3:
        H, W = int(img_shape[1]), int(img_shape[2])
    elif depths is not None:
        H, W = depths.shape[1:]
    else:
        W, H = int(round(2 * K[0, 0, 2])), int(round(2 * K[0, 1, 2]))
    return _build(path, where=where, c2w=c2w, K=K, width=W, height=H, times=_untimed(n, fps),
                  names=[f"{i:05d}" for i in range(n)], depths=depths, source=f"MegaSaM npz: {path}",
                  meta={"timed": False, "fps": float(fps or DEFAULT_FPS)})
