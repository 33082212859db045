"""Camera-track readers into the common Track (docs/conventions.md, docs/formats.md).

    read_track(path, format=None, **options) -> Track

Formats (auto-detected by content; `format` forces one):

- ``colmap``: COLMAP sparse model, text or binary (a folder, or one of its files).
  Cameras SIMPLE_PINHOLE, PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV (K kept, distortion
  recorded); images world-to-camera with Hamilton QW QX QY QZ; points3D with their
  tracks become Track.points and per-frame visibility. Frames ordered by image name.
  Timed by the video's clock when a ``frame_times.json`` sits beside the model (what
  ``parascale track`` writes; core.formats.frame_times), else untimed.
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
record and what was expected. Every value handed on is checked once, in core.formats.validate
(poses, intrinsics, image size, frame count); memory is bounded by the file's size,
never by a number inside it (npy/npz headers are checked against the bytes present
before anything is allocated; COLMAP ids are mapped, never used as array sizes).
Parsers never execute or unpickle data (``json``, ``struct``, npy headers read as
literals; object arrays refused).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..cameras import Track, TrackError, invert_poses, make_c2w
from ..clock import rate_text
from ..rotations import matrix_from_quat
from . import colmap as _colmap
from . import validate as V
from .frame_times import find_frame_times, read_frame_times
from .validate import TrackFormatError, read_text

__all__ = ["TrackFormatError", "FORMATS", "read_track", "detect_format", "read_colmap", "read_transforms",
           "read_re10k", "read_llff", "read_megasam", "IMAGE_EXTENSIONS", "list_images"]

FORMATS = ("colmap", "transforms", "re10k", "llff", "megasam")
DEFAULT_FPS = 24.0
RE10K_DEFAULT_HEIGHT = 576
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".exr", ".webp")
OPENGL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


# ---------------------------------------------------------------------------
# helpers

def list_images(folder) -> list:
    """Image files in a folder, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _find_image(folder: Path, name: str) -> Optional[Path]:
    try:
        p = folder / name
        if p.is_file():
            return p
        if not Path(name).suffix:  # NeRF synthetic: file_path without extension
            for ext in (".png", ".jpg", ".jpeg", ".exr"):
                q = folder / (name + ext)
                if q.is_file():
                    return q
    except (OSError, ValueError):  # a name too long, or with a NUL: no such image
        return None
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
    """The Track, after the boundary checks every reader shares (core.formats.validate)."""
    n = V.check_frame_count(path, len(kwargs["c2w"]))
    kwargs["c2w"] = V.check_poses(path, kwargs["c2w"], where)
    kwargs["K"] = V.check_intrinsics(path, kwargs["K"], where, n=n)
    kwargs["width"], kwargs["height"] = V.check_image_size(path, kwargs["width"], kwargs["height"])
    V.check_fov(path, kwargs["K"], kwargs["width"], kwargs["height"], where)
    kwargs["times"] = V.check_times(path, kwargs["times"], where)
    if kwargs.get("points") is not None:
        kwargs["points"] = V.check_points(path, kwargs["points"])
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
    except UnicodeDecodeError as exc:
        text = None
        if exc.reason == "unexpected end of data" and len(head) == 4096:  # a character cut by the 4 KiB read
            text = head[:exc.start].decode("utf-8")
    if text is None:
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
    with V.guard(path, f"a {fmt} track"):  # the net under the readers' own named errors
        track = reader(path, **kwargs)
    track.meta.setdefault("format", fmt)
    track.meta.setdefault("path", str(path))
    return track


# ---------------------------------------------------------------------------
# COLMAP

def read_colmap(path, images=None, fps: Optional[float] = None) -> Track:
    """A COLMAP sparse model (folder or one of its files). images: the image folder,
    checked for every image the model names (by default <model>/../images if present).
    A frame_times.json beside the model (or one or two folders up) times every image
    with the video's clock; without one the model is untimed (index / fps)."""
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
    V.check_rotations(path, R_w2c, where)
    w2c = make_c2w(R_w2c, t)
    c2w = invert_poses(w2c)
    cams = [model.cameras[im.camera_id] for im in imgs]
    sizes = {(c.width, c.height) for c in cams}
    if len(sizes) > 1:
        raise TrackFormatError(f"{path}: cameras of different image sizes {sorted(sizes)}; "
                               "a track needs one image size")
    W, H = sizes.pop()
    K = V.check_intrinsics(path, np.stack([c.K() for c in cams]), where)
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
        V.check_points(path, points, lambda i: f"point {model.point_ids[i]}")
        # Image ids are mapped to frames through a sorted list, never used as an
        # array size (an id of 4294967295 would otherwise ask for 32 GiB).
        ids_sorted = np.array(sorted(im.image_id for im in imgs), dtype=np.int64)
        frame_sorted = np.array([i for _, i in sorted((im.image_id, i) for i, im in enumerate(imgs))], np.int64)
        lengths = np.array([len(tr) for tr in model.tracks], np.int64)
        flat_img = (np.concatenate(model.tracks).astype(np.int64) if len(model.tracks)
                    else np.zeros(0, np.int64))
        flat_pt = np.repeat(np.arange(len(points)), lengths)
        pos = np.clip(np.searchsorted(ids_sorted, flat_img), 0, len(ids_sorted) - 1)
        fr = np.where(ids_sorted[pos] == flat_img, frame_sorted[pos], -1)
        keep = fr >= 0
        order = np.argsort(fr[keep], kind="stable")
        fr_k, pt_k = fr[keep][order], flat_pt[keep][order]
        bounds = np.searchsorted(fr_k, np.arange(len(imgs) + 1))
        visibility = [np.unique(pt_k[bounds[i]:bounds[i + 1]]) for i in range(len(imgs))]
    meta = {"timed": False, "fps": float(fps or DEFAULT_FPS), "image_folder": str(folder) if folder else None,
            "image_ids": [im.image_id for im in imgs]}
    times = _untimed(len(imgs), fps)
    clock = find_frame_times(Path(model.files["cameras"]).parent)
    if clock is not None:  # the video's own clock (parascale track writes it beside the model)
        ft = read_frame_times(clock)
        times = ft.times_of(names, f"the model {path}")
        meta.update(timed=True, fps=ft.fps, rate=rate_text(ft.rate) if ft.rate is not None else None,
                    frame_times=str(clock), clock_source=ft.source)
        if ft.fps is None:
            meta.pop("fps")
    return _build(path, where=where, c2w=c2w, K=K, width=W, height=H, times=times,
                  names=names, points=points, visibility=visibility, distortion=distortion,
                  source=f"colmap {model.files['kind']}: {path}", meta=meta)


# ---------------------------------------------------------------------------
# NeRF transforms.json

_INTR_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h", "camera_angle_x", "camera_angle_y",
              "k1", "k2", "k3", "k4", "p1", "p2")


def _num(path, where, obj, key):
    return V.json_number(path, where, obj[key], repr(key))


def read_transforms(path, images=None, fps: Optional[float] = None, check_images: Optional[bool] = None,
                    size=None) -> Track:
    """NeRF / instant-ngp / nerfstudio transforms.json (file or folder holding it).

    check_images: None (default) checks that every named image exists as soon as one of
    them does (a pose-only json without its images still reads); True always; False never.
    size: (W, H) when the json has neither w/h nor readable images."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    data = V.load_json(path, "a transforms.json object")
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise TrackFormatError(f"{path}: expected an object with a \"frames\" list")
    frames = data["frames"]
    if not frames:
        raise TrackFormatError(f"{path}: \"frames\" is empty (expected at least one frame)")
    V.check_frame_count(path, len(frames))
    base = Path(images) if images is not None else path.parent
    recs = []
    for i, fr in enumerate(frames):
        where = f"frames[{i}]"
        if not isinstance(fr, dict) or "transform_matrix" not in fr or "file_path" not in fr:
            raise TrackFormatError(f"{path} {where}: expected an object with \"file_path\" and \"transform_matrix\"")
        if not isinstance(fr["file_path"], str):
            raise TrackFormatError(f"{path} {where}: file_path must be a string, got {V._short(fr['file_path'])}")
        where = f"frames[{i}] ({fr['file_path'][:200]})"
        M = V.json_matrix(path, where, fr["transform_matrix"], (4, 4), "transform_matrix", allow_3x4=True)
        recs.append((fr["file_path"], i, where, M, fr))
    recs.sort(key=lambda r: r[0])
    names = [r[0] for r in recs]
    where = [r[2] for r in recs]
    M = np.stack([r[3] for r in recs])
    V.check_poses(path, M, where, "transform_matrix")
    c2w = M @ OPENGL_TO_CV

    # image size: global w/h, per-frame w/h, images on disk, or size=
    def get(fr, key, where_i):
        if key in fr:
            return _num(path, where_i, fr, key)
        if key in data:
            return _num(path, "(top level)", data, key)
        return None

    def focal_from_angle(key, side, wh):
        a = get(fr, key, wh)
        if a is None:
            return None
        if not 0 < a < math.pi:
            raise TrackFormatError(f"{path} {wh}: {key} must be a field of view in radians between 0 and pi, "
                                   f"got {a:g}")
        return 0.5 * side / math.tan(0.5 * a)

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
        w, h = V.check_image_size(path, w, h, wh)
        fx, fy = get(fr, "fl_x", wh), get(fr, "fl_y", wh)
        if fx is None:
            fx = focal_from_angle("camera_angle_x", w, wh)
            if fx is None:
                raise TrackFormatError(f"{path} {wh}: no focal length (expected \"fl_x\" or \"camera_angle_x\")")
        if fy is None:
            fy = (focal_from_angle("camera_angle_y", h, wh) if "fl_x" not in fr and "fl_x" not in data else None)
            fy = fx if fy is None else fy
        cx = get(fr, "cx", wh)
        cy = get(fr, "cy", wh)
        cx = w / 2.0 if cx is None else cx
        cy = h / 2.0 if cy is None else cy
        if not (fx > 0 and fy > 0):
            raise TrackFormatError(f"{path} {wh}: focal length and image size must be positive "
                                   f"(fl_x={fx}, fl_y={fy}, w={w}, h={h})")
        Ks.append([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
        sizes.append((w, h))
    if len(set(sizes)) > 1:
        raise TrackFormatError(f"{path}: frames of different image sizes {sorted(set(sizes))}; "
                               "a track needs one image size")
    W, H = sizes[0]
    dist = {k: _num(path, "(top level)", data, k) for k in ("k1", "k2", "k3", "k4", "p1", "p2") if k in data}
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
    V.check_finite(path, w2c3, where, "the world-to-camera matrix")
    R = w2c3[:, :, :3].copy()
    t = w2c3[:, :, 3].copy()
    fixed = []
    if fix_reflection:
        det = np.linalg.det(R)
        neg = det < 0
        R[neg, 1, :] *= -1
        t[neg, 1] *= -1
        fixed = [where[i] for i in np.flatnonzero(neg)]
    V.check_rotations(path, R, where)
    c2w = invert_poses(make_c2w(R, t))
    meta = {"url": url, "timestamps_us": stamps.tolist()}
    if size is None:
        H = RE10K_DEFAULT_HEIGHT
        W = round(H * intr[0, 1] / intr[0, 0] / 2.0) * 2.0
        if not 2 <= W <= V.MAX_IMAGE_SIDE:
            raise TrackFormatError(f"{path} {where[0]}: fx/W {intr[0, 0]:g} and fy/H {intr[0, 1]:g} give an "
                                   f"aspect ratio of {intr[0, 1] / intr[0, 0]:g}; pass size=(W, H)")
        W = int(W)
        meta["size_assumed"] = True
    else:
        W, H = V.check_image_size(path, size[0], size[1], "(size given)")
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
    return V.read_npy(path, kind)


def read_llff(path, size=None, images=None, fps: Optional[float] = None) -> Track:
    """LLFF poses_bounds.npy (file or folder). size=(W, H) of the images actually used
    (for example images_8); by default the H, W stored in the file. images: a folder
    whose sorted image files name the frames (checked: one per row)."""
    path = Path(path)
    if path.is_dir():
        path = path / "poses_bounds.npy"
    arr = _load_npy(path, "LLFF poses_bounds.npy")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        raise TrackFormatError(f"{path}: expected a float32 or float64 (N, 17) array, got {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] not in (15, 17) or len(arr) == 0:
        raise TrackFormatError(f"{path}: expected shape (N, 17) (3x5 pose-hwf block and near/far per row), "
                               f"got {arr.shape}")
    arr = arr.astype(float)
    where = [f"row {i}" for i in range(len(arr))]
    V.check_finite(path, arr, where, "the row")
    P = arr[:, :15].reshape(-1, 3, 5)
    llff = P[:, :, :4]
    R = np.stack([llff[:, :, 1], llff[:, :, 0], -llff[:, :, 2]], axis=-1)
    V.check_rotations(path, R, where)
    c2w = make_c2w(R, llff[:, :, 3])
    Hs, Ws, fs = P[:, 0, 4], P[:, 1, 4], P[:, 2, 4]
    bad = ~((Hs >= 1) & (Hs <= V.MAX_IMAGE_SIDE) & (Ws >= 1) & (Ws <= V.MAX_IMAGE_SIDE) & (fs > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise TrackFormatError(f"{path} {where[i]}: H, W, f must be positive, H and W at most "
                               f"{V.MAX_IMAGE_SIDE} pixels (got H={Hs[i]:g}, W={Ws[i]:g}, f={fs[i]:g})")
    W0, H0 = V.check_image_size(path, round(Ws[0]), round(Hs[0]), where[0])
    W, H = V.check_image_size(path, size[0], size[1], "(size given)") if size is not None else (W0, H0)
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
    in the poses' units (<= 0, non-finite or beyond 1e9 read as background), images
    optional (only its shape is read). Every member is checked before it is inflated."""
    path = Path(path)
    what = "a MegaSaM .npz"
    with V.NpzReader(path, what) as npz:
        missing = [k for k in ("cam_c2w", "intrinsic") if k not in npz]
        if missing:
            raise TrackFormatError(f"{path}: missing array(s) {', '.join(missing)} (expected cam_c2w (N,4,4), "
                                   f"intrinsic (3,3), depths (N,h,w); found {', '.join(npz.files) or 'none'})")
        shape, _ = npz.header("cam_c2w")
        if len(shape) != 3 or shape[1:] not in ((4, 4), (3, 4)) or shape[0] == 0:
            raise TrackFormatError(f"{path}: cam_c2w must be (N, 4, 4), got {shape}")
        n = V.check_frame_count(path, shape[0], "cam_c2w")
        c2w = npz.array("cam_c2w", as_float=True).astype(float)
        K = npz.array("intrinsic", as_float=True).astype(float)
        depths = None
        if "depths" in npz:
            dshape, _ = npz.header("depths")
            if len(dshape) != 3 or dshape[0] != n:
                raise TrackFormatError(f"{path}: depths must be ({n}, h, w), got {dshape}")
            V.check_image_size(path, dshape[2], dshape[1], "depths")
            depths = npz.array("depths", as_float=True)
        img_shape = npz.header("images")[0] if "images" in npz else None
    where = [f"cam_c2w[{i}]" for i in range(n)]
    V.check_finite(path, c2w, where, "cam_c2w")
    c2w = V.check_poses(path, c2w, where, "cam_c2w")
    K = V.check_intrinsics(path, K, (lambda i: f"intrinsic[{i}]") if K.ndim == 3 else (lambda i: "intrinsic"),
                           n=n)
    if depths is not None:
        for z in depths:  # in place, frame by frame: no full-size temporaries
            z[~(np.isfinite(z) & (z > 0) & (z <= V.MAX_MAGNITUDE))] = np.inf
    if img_shape is not None and len(img_shape) >= 3:
        W, H = V.check_image_size(path, img_shape[2], img_shape[1], "images")
    elif depths is not None:
        H, W = depths.shape[1:]
    else:
        W, H = V.check_image_size(path, round(2 * K[0, 0, 2]), round(2 * K[0, 1, 2]),
                                  "intrinsic (image size from 2 cx, 2 cy)")
    return _build(path, where=where, c2w=c2w, K=K, width=W, height=H, times=_untimed(n, fps),
                  names=[f"{i:05d}" for i in range(n)], depths=depths, source=f"MegaSaM npz: {path}",
                  meta={"timed": False, "fps": float(fps or DEFAULT_FPS)})
