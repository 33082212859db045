"""Recover a camera track from a video alone with COLMAP (the PyPI ``pycolmap`` bindings).

    track_video(video, out, intrinsics=None, options=None, progress=None) -> TrackingResult

Pipeline (docs/tracking.md): the video (a file decoded with OpenCV, or an image folder)
is read once as a stream, its frames written to ``<out>/images`` on a thread of their own.
At a working size (long side ``max_image_size``, 640 px by default) the features of the
last keyframe are followed into each frame (pyramidal Lucas-Kanade, checked both ways);
a frame becomes a keyframe when too few survive, they moved too far, their motion shows
parallax, or too many frames passed. Keyframes get SIFT features capped by count,
enter the COLMAP database at once and are matched with their predecessors; global
mapping (GLOMAP) of the keyframes follows, with the intrinsics held fixed when they are
given (a focal guess is refined otherwise), incremental mapping as a fallback. Every
other frame is posed by PnP on the 3D points of the features followed into it, checked
against the interpolation between its keyframes. Short clips and photo sets (features
rarely outlive a frame) are mapped frame by frame instead, SIFT on every frame and
sequential matching, as before keyframes. The model has every frame, named by its frame
number, as a COLMAP binary model in ``<out>/sparse`` (read back by
``core.formats.readers.read_colmap``), with ``<out>/track_report.json``. The folder
appears only when everything succeeded (built beside it, then renamed). Memory holds a few
frames whatever the video's length.

A plausibility check that needs no ground truth then refuses (TrackingError naming the
frames) or warns: too few frames, featureless frames, a camera that does not move,
unregistered frames, step lengths far off the rest, a frame that jumps away from its
neighbours, a focal guess that drifted out of any plausible lens.

pycolmap is optional: ``tracking_available()`` says whether it can be used here without
importing it. ``import_pycolmap()`` loads the system zlib first: on Linux, a pycolmap
loaded before zlib makes later zlib use abort with "double free".

No bpy here. Everything is deterministic for the same input and options: fixed random
seeds, rule-based keyframes, matching as fixed matrix products, single-threaded mapping.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

PYCOLMAP_VERSION = "4.2.1"
MIN_FRAMES = 3
DEFAULT_LONG_SIDE = 640          # SIFT on frames at most this long (keypoints in full-res pixels)
DEFAULT_FEATURES = 1024          # SIFT features per keyframe
EVERY_FRAME_FEATURES = 8192      # ... per frame when every frame is mapped (short clips, photos)
SHORT_CLIP = 48                  # clips this short whose frames are far apart ...
SPARSE_MOTION = 0.005            # ... (median motion per frame above this fraction of the long side) are
                                 # mapped frame by frame: subsampled clips, where keyframes leave too few views
MIN_KEYFRAMES = 12               # at least this many keyframes (when the frame count is known)
PHOTO_LIKE = 0.5                 # more keyframes than this fraction of the frames: photos, mapped one by one
GUESS_FOCAL_FACTOR = 0.6         # focal guess = 0.6 x the long side, refined (no lens given)
MIN_FEATURES = 100               # fewer SIFT features than this: a blank or blurred frame
STATIC_MOTION_PX = 1.0           # features never this far (median) from where they were picked up: static
STEP_OUTLIER = 6.0               # a step this many times the median step length: refused
STEP_WARN = 3.0                  # ... this many times: a warning
JUMP_RATIO = 2.5                 # |c_t - midpoint of its neighbours| / median step: a jump
MAX_REPROJ_PX = 2.0              # mean reprojection error above this: a warning
FOCAL_DRIFT = (0.35, 2.5)        # refined focal / guess outside this: refused
REPORT_NAME = "track_report.json"
SEED = 0


class TrackingError(ValueError):
    """Tracking refused or failed: the message names the frames and the reason."""


class TrackingUnavailable(ImportError):
    """pycolmap cannot be used on this platform or Python."""


# ---------------------------------------------------------------------------
# availability

@functools.lru_cache(maxsize=1)
def tracking_available() -> tuple[bool, str]:
    """(True, "pycolmap X") when pycolmap can be imported here, else (False, why).
    Cheap: pycolmap itself is not imported (the Blender UI calls this; cached)."""
    import importlib.util
    import platform

    if sys.platform == "darwin":
        release = platform.mac_ver()[0]
        major = int(release.split(".")[0]) if release.split(".")[0].isdigit() else 0
        if 0 < major < 14:
            return False, (f"video tracking is not available on macOS {release}: the pycolmap wheel "
                           "needs macOS 14 or later")

    try:
        spec = importlib.util.find_spec("pycolmap")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        plat = _platform_name()
        why = {"macos-x64": "pycolmap has no wheel for Intel macOS with this Python (Apple Silicon, "
                            "Linux x64 and Windows x64 have one)"}.get(plat, "pycolmap is not installed")
        return False, f"video tracking is not available on this platform ({plat}): {why}"
    try:
        from importlib.metadata import version
        v = version("pycolmap")
    except Exception:  # metadata missing (a copied package): still importable
        v = "unknown version"
    return True, f"pycolmap {v}"


def _platform_name() -> str:
    import platform

    machine = platform.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64"
    osname = {"darwin": "macos", "win32": "windows"}.get(sys.platform, "linux")
    return f"{osname}-{arch}"


def import_pycolmap():
    """pycolmap, with the system zlib loaded first (Linux: pycolmap's own zlib symbols
    otherwise win and later zlib use aborts with "double free")."""
    if "pycolmap" in sys.modules:
        return sys.modules["pycolmap"]
    import zlib  # noqa: F401  (links the system libz where Python uses it)
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util
        with contextlib.suppress(OSError):
            ctypes.CDLL(ctypes.util.find_library("z") or "libz.so.1", mode=ctypes.RTLD_GLOBAL)
    try:
        import cv2  # noqa: F401  (OpenCV first as well: it is used beside pycolmap)
    except ImportError:
        pass
    try:
        import pycolmap
    except ImportError as exc:
        ok, why = tracking_available()
        raise TrackingUnavailable(why if not ok else f"pycolmap cannot be imported: {exc}") from None
    # COLMAP's progress log (glog, INFO per image) would drown the report: warnings and up.
    with contextlib.suppress(AttributeError):
        pycolmap.logging.minloglevel = int(os.environ.get("PARASCALE_COLMAP_LOG", "1"))
    return pycolmap


# ---------------------------------------------------------------------------
# intrinsics

@dataclass
class Intrinsics:
    """What the user knows about the lens. fx (pixels) fixes the focal; fy for non-square
    pixels (default fx). Without fx the focal is a guess that the mapping refines."""

    fx: Optional[float] = None
    fy: Optional[float] = None
    source: str = "guess"

    @property
    def known(self) -> bool:
        return self.fx is not None


def intrinsics_from_args(width: int, height: int, focal=None, focal_y=None, fov=None, sensor=None,
                         lens=None) -> Intrinsics:
    """--focal PX [--focal-y PX] | --fov DEG (horizontal) | --sensor MM --lens MM.
    The sensor size is taken along the image's long side (Blender's Auto sensor fit)."""
    given = [n for n, v in (("--focal", focal), ("--fov", fov), ("--sensor/--lens", sensor or lens))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"give the lens one way only, not {' and '.join(given)}")
    if focal_y is not None and focal is None:
        raise ValueError("--focal-y needs --focal (the horizontal focal in pixels)")
    if focal is not None:
        if not (focal > 0 and (focal_y is None or focal_y > 0)):
            raise ValueError(f"--focal must be positive pixels, got {focal}" +
                             (f" / --focal-y {focal_y}" if focal_y is not None else ""))
        return Intrinsics(float(focal), float(focal_y if focal_y is not None else focal), "focal")
    if fov is not None:
        if not 1.0 <= fov <= 179.0:
            raise ValueError(f"--fov is the horizontal field of view in degrees, 1..179; got {fov}")
        fx = 0.5 * width / math.tan(math.radians(fov) / 2)
        return Intrinsics(fx, fx, "fov")
    if sensor is not None or lens is not None:
        if sensor is None or lens is None:
            raise ValueError("--sensor and --lens go together (both in millimetres)")
        if not (sensor > 0 and lens > 0):
            raise ValueError(f"--sensor and --lens must be positive millimetres, got {sensor}, {lens}")
        fx = lens / sensor * max(width, height)
        return Intrinsics(fx, fx, "sensor+lens")
    return Intrinsics()


# ---------------------------------------------------------------------------
# options and result

@dataclass
class TrackOptions:
    """How to track. The defaults track a 30 fps video at several frames per second on two
    cores; keyframes="all" with max_image_size=0 is the every-frame, full-resolution
    baseline (SIFT, matching and mapping on every frame)."""

    max_image_size: int = DEFAULT_LONG_SIDE   # SIFT and feature tracking on frames this long; <= 0: full size
    max_features: Optional[int] = None        # SIFT per keyframe (None: 1024; 8192 when every frame is mapped)
    keyframes: str = "auto"                   # "auto": by feature overlap and parallax; "all": every frame
    min_overlap: float = 0.6                  # new keyframe when fewer of the followed features survive ...
    max_motion: float = 0.06                  # ... or they moved this fraction of the long side (75th pct.) ...
    max_parallax: float = 0.01                # ... or moved off a homography by this fraction (median) ...
    max_gap: int = 20                         # ... or after this many frames, with at least ...
    min_parallax: float = 0.0025              # ... this much parallax (fraction of the long side)
    track_points: int = 800                   # features followed (KLT) from each keyframe, spread over the frame
    overlap: int = 5                          # keyframe matching: pairs up to this many keyframes apart (and 2^k)
    mapper: str = "global"                    # "global" (incremental as fallback) or "incremental"
    keep_database: bool = False

    def check(self) -> None:
        if self.keyframes not in ("auto", "all"):
            raise ValueError(f"keyframes must be 'auto' or 'all', got {self.keyframes!r}")
        if self.mapper not in ("global", "incremental"):
            raise ValueError(f"mapper must be 'global' or 'incremental', got {self.mapper!r}")
        if not (0.0 < self.min_overlap < 1.0 and self.max_motion > 0 and 0 <= self.min_parallax < self.max_parallax
                and self.max_gap >= 1
                and self.track_points >= 20 and (self.max_features or MIN_FEATURES) >= MIN_FEATURES
                and self.overlap >= 1):
            raise ValueError(f"tracking options out of range: {self}")


@dataclass
class TrackingResult:
    out: Path
    model: Path
    frames: int
    registered: int
    names: list
    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int
    reprojection_error: float
    points: int
    mapper: str
    intrinsics: str
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    keyframes: list = field(default_factory=list)

    def report(self) -> dict:
        return {"frames": self.frames, "registered": self.registered, "mapper": self.mapper,
                "keyframes": list(self.keyframes),
                "intrinsics": self.intrinsics, "width": self.width, "height": self.height,
                "K": self.K.tolist(), "reprojection_error_px": self.reprojection_error, "points": self.points,
                "warnings": list(self.warnings), "checks": self.checks, "timings_s": self.timings,
                "pycolmap": _pycolmap_version(), "model": "sparse", "images": "images"}


def _pycolmap_version() -> str:
    mod = sys.modules.get("pycolmap")
    return getattr(mod, "__version__", "unknown") if mod else "not loaded"


Progress = Optional[Callable[[float, str], None]]


# ---------------------------------------------------------------------------
# frames: a stream, one frame in memory at a time

class _FrameWriter:
    """Writes the frames of a video as PNG into images/ on a thread of its own (OpenCV
    releases the GIL while encoding), at most QUEUE frames behind the tracking."""

    QUEUE = 4

    def __init__(self, folder: Path):
        import queue
        import threading

        self.folder = folder
        self.error = None
        self.seconds = 0.0
        self._q = queue.Queue(maxsize=self.QUEUE)
        self._thread = threading.Thread(target=self._run, name="parascale-frame-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import cv2

        while True:
            item = self._q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            name, img = item
            t = time.perf_counter()
            try:
                if not cv2.imwrite(str(self.folder / name), img, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
                    raise OSError(f"{self.folder / name}: cannot write the frame")
            except Exception as exc:  # reported by put() / close()
                self.error = exc
            self.seconds += time.perf_counter() - t

    def put(self, name: str, img) -> None:
        if self.error is not None:
            raise self.error
        self._q.put((name, img))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _frame_stream(video, images: Path):
    """(total or 0, generator of (name, gray, bgr-or-None)) for a video file or an image
    folder; the frames also land in `images` (a folder's files are linked or copied)."""
    import cv2

    from .formats.readers import list_images
    from .formats.validate import check_image_header

    video = Path(video)
    if video.is_dir():
        files = list_images(video)
        if not files:
            raise TrackingError(f"{video}: no images in this folder (expected the frames of one shot)")
        for p in files:  # every header first: a declared 100000x100000 is refused by its size, never decoded
            try:
                check_image_header(p)
            except ValueError as exc:
                raise TrackingError(str(exc)) from None

        def folder_frames():
            size = None
            for p in files:
                img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise TrackingError(f"{p}: cannot read this image")
                s = (img.shape[1], img.shape[0])
                if size is not None and s != size:
                    raise TrackingError(f"{p}: size {s[0]}x{s[1]} differs from the first frame ({size[0]}x{size[1]})")
                size = s
                dst = images / p.name
                try:
                    os.link(p, dst)
                except OSError:
                    shutil.copyfile(p, dst)
                yield p.name, img, None

        return len(files), folder_frames()
    if not video.is_file():
        raise FileNotFoundError(f"{video}: no such video file or image folder")
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        cap.release()
        raise TrackingError(f"{video}: OpenCV cannot open this video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)

    def video_frames():
        size, i = None, 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                s = (img.shape[1], img.shape[0])
                if size is not None and s != size:
                    raise TrackingError(f"{video} frame {i}: size changes from {size[0]}x{size[1]} to {s[0]}x{s[1]}")
                size = s
                yield f"frame_{i:06d}.png", cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), img
                i += 1
        finally:
            cap.release()
        if i == 0:
            raise TrackingError(f"{video}: no frames could be decoded")

    return total, video_frames()


# ---------------------------------------------------------------------------
# the front end: keyframes, their SIFT features and matches, features followed between them

_LK = dict(winSize=(15, 15), maxLevel=2)
MOTION_PERCENTILE = 75           # image motion that starts a keyframe: this percentile of the feature motions
PARALLAX_MIN_POINTS = 12         # fewer followed features: no parallax measured
FB_MAX_PX = 0.5                  # forward-backward disagreement above this (working pixels): track dropped
MIN_MATCHES = 15                 # verified matches for a keyframe pair to count
SPREAD_CELLS = (16, 9)           # the followed features are spread over this grid


class _FrontEnd:
    """Streams frames: follows the last keyframe's features with pyramidal Lucas-Kanade
    (forward-backward checked) and starts a new keyframe when too few survive, they moved
    too far, their motion shows parallax a homography cannot explain, or too many frames
    passed. Each keyframe gets SIFT features (pycolmap, at the working size, keypoints in
    full-size pixels), goes into the COLMAP database and is matched (mutual nearest
    neighbours, ratio test, then COLMAP's two-view verification) with its `overlap`
    predecessors and those 2^k keyframes back. The positions of the followed features in
    every frame are spooled to disk per keyframe segment, so memory holds a few frames
    whatever the length.

    With keyframes=False it only follows corners (restarted when too few survive) to
    measure the image motion; the every-frame pipeline does the rest."""

    def __init__(self, pycolmap, db_path: Path, spool: Path, options: TrackOptions, intrinsics: Intrinsics,
                 keyframes: bool = True, total: int = 0):
        self.pc = pycolmap
        self.opt = options
        # a short clip still gets MIN_KEYFRAMES keyframes (a handful of views maps poorly)
        self.max_gap = min(options.max_gap, max(2, total // MIN_KEYFRAMES)) if total else options.max_gap
        self.intr = intrinsics
        self.keyframes = keyframes
        self.db_path, self.spool = db_path, spool
        self.names: list = []
        self.kf_frames: list = []       # frame index of each keyframe (of each restart without keyframes)
        self.kf_ids: list = []          # their database image ids
        self.kf_counts: list = []       # SIFT features of each keyframe
        self.motion: list = []          # median feature motion per step (full-size pixels)
        self.reach = 0.0                # largest median distance of the features from their keyframe
        self.seconds = {"tracking": 0.0, "features": 0.0, "matching": 0.0}
        self._recent: dict = {}         # keyframe number -> (xy full-size, descriptors), a window
        self._segment: list = []        # (frame, anchor keypoint indices, xy full-size) of the current segment
        self.db = None
        self.cam = None
        self.W = self.H = None

    # -- setup on the first frame
    def _start(self, W: int, H: int) -> None:
        pc = self.pc
        self.W, self.H = W, H
        L = self.opt.max_image_size
        s = min(1.0, L / max(W, H)) if L and L > 0 else 1.0
        self.sw, self.sh = max(1, int(round(W * s))), max(1, int(round(H * s)))
        self.sx, self.sy = self.sw / W, self.sh / H
        if not self.keyframes:
            return
        model, params = _camera(self.intr, W, H)
        self.db = pc.Database.open(str(self.db_path))
        cam = pc.Camera(model=model, width=W, height=H, params=params)
        cam.has_prior_focal_length = self.intr.known
        cam.camera_id = self.db.write_camera(cam)
        self.cam = cam
        rig = pc.Rig()
        rig.add_ref_sensor(cam.sensor_id)
        self.rig_id = self.db.write_rig(rig)
        ext = pc.FeatureExtractionOptions()
        ext.max_image_size = -1
        ext.num_threads = 1
        ext.use_gpu = False
        ext.sift.max_num_features = int(self.opt.max_features or DEFAULT_FEATURES)
        ext.sift.max_num_orientations = 1      # the cap is a count of descriptors
        self.extractor = pc.FeatureExtractor.create(ext, device=pc.Device.cpu)
        self.verify = pc.TwoViewGeometryOptions()
        self.verify.ransac.random_seed = SEED
        self.verify.min_num_inliers = MIN_MATCHES

    def add(self, name: str, gray) -> None:
        import cv2

        i = len(self.names)
        self.names.append(name)
        if i == 0:
            self._start(gray.shape[1], gray.shape[0])
        t = time.perf_counter()
        small = (cv2.resize(gray, (self.sw, self.sh), interpolation=cv2.INTER_AREA)
                 if (self.sw, self.sh) != (gray.shape[1], gray.shape[0]) else gray)
        new = i == 0 or self._follow(i, small)
        self.seconds["tracking"] += time.perf_counter() - t
        if new:
            self._keyframe(i, small) if self.keyframes else self._restart(i, small)
        self._prev = small

    def _follow(self, i: int, small) -> bool:
        """Follow the features into frame i; True when frame i must be a keyframe."""
        import cv2

        pts, idx = self._pts, self._idx
        if len(pts):
            nxt, st, _ = cv2.calcOpticalFlowPyrLK(self._prev, small, pts, None, **_LK)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(small, self._prev, nxt, None, **_LK)
            good = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm((back - pts)[:, 0], axis=1) < FB_MAX_PX)
            x, y = nxt[:, 0, 0], nxt[:, 0, 1]
            good &= (x >= 0) & (y >= 0) & (x <= self.sw - 1) & (y <= self.sh - 1)
            d = (nxt - pts)[good, 0] / np.array([self.sx, self.sy], np.float32)
            self.motion.append(float(np.median(np.linalg.norm(d, axis=1))) if len(d) else 0.0)
            pts, idx = nxt[good], idx[good]
        else:
            self.motion.append(0.0)
        self._pts, self._idx = pts, idx
        a, b = self._anchor_xy[idx], pts[:, 0]
        if len(idx):
            moved = (b - a) / np.array([self.sx, self.sy], np.float32)
            self.reach = max(self.reach, float(np.median(np.linalg.norm(moved, axis=1))))
        if not self.keyframes:
            return len(idx) < self.opt.min_overlap * max(self._n0, 1)
        self._segment.append((i, idx.astype(np.int32), self._to_full(pts[:, 0])))
        if len(idx) < max(self.opt.min_overlap * self._n0, MIN_MATCHES):
            return True                 # the overlap with the last keyframe runs out
        L = max(self.sw, self.sh)
        if np.percentile(np.linalg.norm(b - a, axis=1), MOTION_PERCENTILE) > self.opt.max_motion * L:
            return True                 # ... or soon will: the view moved on
        parallax = _parallax(a, b)
        if parallax > self.opt.max_parallax * L:
            return True                 # a good baseline
        # after max_gap frames, any baseline that triangulates (keyframes closer than that in
        # baseline make the mapping worse, not better: measured on a slow move)
        return i - self.kf_frames[-1] >= self.max_gap and parallax > self.opt.min_parallax * L

    def _restart(self, i: int, small) -> None:
        """Without keyframes: new corners to follow (for the motion only)."""
        import cv2

        corners = cv2.goodFeaturesToTrack(small, int(self.opt.track_points), 0.01, 5)
        self._pts = (corners if corners is not None else np.zeros((0, 1, 2))).astype(np.float32)
        self._anchor_xy = self._pts[:, 0].copy()
        self._idx = np.arange(len(self._pts))
        self._n0 = len(self._idx)
        self.kf_frames.append(i)

    def _to_full(self, xy_cv) -> np.ndarray:
        """Working-image OpenCV pixel coordinates -> full-size COLMAP coordinates
        (COLMAP puts the first pixel's centre at 0.5; scaling is about the corner)."""
        xy = np.asarray(xy_cv, np.float64).reshape(-1, 2) + 0.5
        return xy / np.array([self.sx, self.sy])

    def _keyframe(self, i: int, small) -> None:
        pc = self.pc
        t = time.perf_counter()
        kp, desc = self.extractor.extract_from_uint8_array(np.ascontiguousarray(small))
        km = pc.keypoints_to_matrix(kp).astype(np.float64)
        cap = int(self.opt.max_features or DEFAULT_FEATURES)
        if len(km) > cap:  # COLMAP's cap drops whole octaves: keep the `cap` largest scales
            keep = np.sort(np.argsort(-km[:, 2], kind="stable")[:cap])
            km = km[keep]
            desc = pc.FeatureDescriptors(desc.type, np.ascontiguousarray(np.asarray(desc.data)[keep]))
        self.seconds["features"] += time.perf_counter() - t
        t = time.perf_counter()
        km[:, 0] /= self.sx
        km[:, 1] /= self.sy
        km[:, 2] /= 0.5 * (self.sx + self.sy)
        iid = self.db.write_image(pc.Image(name=self.names[i], camera_id=self.cam.camera_id))
        frame = pc.Frame()
        frame.rig_id = self.rig_id
        frame.add_data_id(pc.data_t(self.cam.sensor_id, iid))
        self.db.write_frame(frame)
        self.db.write_keypoints(iid, km.astype(np.float32))
        self.db.write_descriptors(iid, desc)
        k = len(self.kf_frames)
        self._flush_segment()
        self.kf_frames.append(i)
        self.kf_ids.append(iid)
        self.kf_counts.append(len(km))
        xy = np.ascontiguousarray(km[:, :2])
        D = np.ascontiguousarray(desc.data, np.uint8)
        self._match_with_earlier(k, xy, D)
        self._recent[k] = (xy, D)
        for old in [j for j in self._recent if j < k - self.opt.overlap]:
            del self._recent[old]
        self.seconds["matching"] += time.perf_counter() - t
        t = time.perf_counter()
        # the features followed from here on: spread over the frame, finer scales first
        small_xy = xy * np.array([self.sx, self.sy]) - 0.5
        sel = _spread(small_xy, km[:, 2], self.sw, self.sh, int(self.opt.track_points))
        self._kf_xy = self._anchor_xy = small_xy.astype(np.float32)
        self._pts = self._kf_xy[sel].reshape(-1, 1, 2).copy()
        self._idx = sel
        self._n0 = len(sel)
        self.seconds["tracking"] += time.perf_counter() - t

    def _partners(self, k: int) -> list:
        out = [k - d for d in range(1, self.opt.overlap + 1) if k - d >= 0]
        j = 1
        while k - (1 << j) >= 0:
            if k - (1 << j) not in out:
                out.append(k - (1 << j))
            j += 1
        return out

    def _features(self, k: int):
        if k in self._recent:
            return self._recent[k]
        iid = self.kf_ids[k]
        xy = np.ascontiguousarray(np.asarray(self.db.read_keypoints(iid), np.float64)[:, :2])
        D = np.ascontiguousarray(self.db.read_descriptors(iid).data, np.uint8)
        return xy, D

    def _match_with_earlier(self, k: int, xy, D) -> None:
        pc = self.pc
        for p in self._partners(k):
            xa, Da = self._features(p)
            m = mutual_matches(Da, D)
            if len(m) < MIN_MATCHES:
                continue
            m = m.astype(np.uint32)
            self.db.write_matches(self.kf_ids[p], self.kf_ids[k], m)
            tvg = pc.estimate_two_view_geometry(self.cam, xa, self.cam, xy, m, self.verify)
            if len(tvg.inlier_matches) >= MIN_MATCHES:
                self.db.write_two_view_geometry(self.kf_ids[p], self.kf_ids[k], tvg)

    def _flush_segment(self) -> None:
        """The followed positions since the last keyframe, to disk (one file per segment)."""
        if not self.kf_frames:
            self._segment = []
            return
        k = len(self.kf_frames) - 1
        seg = self._segment
        frames = np.array([f for f, _, _ in seg], np.int64)
        counts = np.array([len(ix) for _, ix, _ in seg], np.int64)
        idx = np.concatenate([ix for _, ix, _ in seg]) if seg else np.zeros(0, np.int32)
        xy = np.concatenate([p for _, _, p in seg]) if seg else np.zeros((0, 2))
        np.savez(self.spool / f"segment_{k:06d}.npz", frames=frames, counts=counts, idx=idx, xy=xy)
        self._segment = []

    def finish(self, gray_last) -> None:
        """The last frame is a keyframe too (the track ends on a mapped frame)."""
        if not self.keyframes:
            return
        n = len(self.names)
        if n and self.kf_frames[-1] != n - 1:
            import cv2

            small = (cv2.resize(gray_last, (self.sw, self.sh), interpolation=cv2.INTER_AREA)
                     if (self.sw, self.sh) != (gray_last.shape[1], gray_last.shape[0]) else gray_last)
            self._keyframe(n - 1, small)
        self._flush_segment()
        self.db.close()

    def segments(self):
        """(anchor keyframe number, frames, [(idx, xy) per frame]) in order, from the spool."""
        for k in range(len(self.kf_frames)):
            path = self.spool / f"segment_{k:06d}.npz"
            if not path.is_file():
                continue
            with np.load(path) as z:
                frames, counts, idx, xy = z["frames"], z["counts"], z["idx"], z["xy"]
            ends = np.cumsum(counts)
            starts = ends - counts
            yield k, frames, [(idx[a:b], xy[a:b]) for a, b in zip(starts, ends)]


def _parallax(a: np.ndarray, b: np.ndarray) -> float:
    """Median distance (pixels) of the points b from a homography fitted to a -> b by least
    median of squares: image motion that a rotation (or a plane) cannot explain, the
    parallax a baseline needs. 0 when there are too few points."""
    import cv2

    if len(a) < PARALLAX_MIN_POINTS:
        return 0.0
    Hm, _ = cv2.findHomography(a.astype(np.float64), b.astype(np.float64), cv2.LMEDS)
    if Hm is None:
        return 0.0
    p = cv2.perspectiveTransform(a.reshape(-1, 1, 2).astype(np.float64), Hm)[:, 0]
    return float(np.median(np.linalg.norm(p - b, axis=1)))


def _spread(xy, scale, w: int, h: int, n: int) -> np.ndarray:
    """Up to n keypoint indices spread over a grid of cells: in turn, each cell's next
    finest-scale keypoint (deterministic)."""
    if len(xy) <= n:
        return np.arange(len(xy))
    cx = np.clip((xy[:, 0] / w * SPREAD_CELLS[0]).astype(int), 0, SPREAD_CELLS[0] - 1)
    cy = np.clip((xy[:, 1] / h * SPREAD_CELLS[1]).astype(int), 0, SPREAD_CELLS[1] - 1)
    cell = cy * SPREAD_CELLS[0] + cx
    order = np.lexsort((np.arange(len(xy)), scale, cell))
    cs = cell[order]
    rank = np.arange(len(order)) - np.searchsorted(cs, cs, side="left")
    pick = order[np.lexsort((order, rank))][:n]
    return np.sort(pick)


MATCH_BLOCK = 256                # descriptor rows per block: matching memory stays at a few MB


def mutual_matches(Da: np.ndarray, Db: np.ndarray, ratio: float = 0.8) -> np.ndarray:
    """(m, 2) index pairs of descriptors that are each other's nearest neighbour (L2) and
    pass Lowe's ratio test. Deterministic (matrix products in fixed blocks, then arg-min)."""
    import cv2

    Da = np.ascontiguousarray(Da, np.float32)
    Db = np.ascontiguousarray(Db, np.float32)
    if len(Da) < 2 or len(Db) < 2:
        return np.zeros((0, 2), np.int64)
    na = np.einsum("ij,ij->i", Da, Da)
    nb = np.einsum("ij,ij->i", Db, Db)
    first = np.empty(len(Da), np.int64)
    best = np.empty(len(Da), np.float32)
    second = np.empty(len(Da), np.float32)
    colmin = np.full(len(Db), np.inf, np.float32)   # per column: min over rows of |a|^2 - 2 a.b ...
    colarg = np.full(len(Db), -1, np.int64)         # ... and the row reaching it (the first, in ties)
    for r0 in range(0, len(Da), MATCH_BLOCK):
        r1 = min(r0 + MATCH_BLOCK, len(Da))
        G2 = cv2.gemm(Da[r0:r1], Db, -2.0, None, 0.0, flags=cv2.GEMM_2_T)   # -2 a.b (one thread
        # of OpenCV here: numpy's threaded BLAS spins on a busy machine)
        rows = np.arange(r1 - r0)
        C = G2 + na[r0:r1, None]
        arg = np.argmin(C, axis=0)
        val = C[arg, np.arange(len(Db))]
        better = val < colmin
        colmin[better] = val[better]
        colarg[better] = arg[better] + r0
        G2 += nb[None, :]                            # |b|^2 - 2 a.b: row-wise distance up to |a|^2
        f = np.argmin(G2, axis=1)
        first[r0:r1] = f
        best[r0:r1] = G2[rows, f]
        G2[rows, f] = np.inf
        second[r0:r1] = G2.min(axis=1)
    rows = np.arange(len(Da))
    d1 = np.sqrt(np.maximum(best + na, 0))
    d2 = np.sqrt(np.maximum(second + na, 0))
    ok = d1 < ratio * d2
    ok &= colarg[first] == rows                     # mutual: row i is its column's nearest row
    return np.stack([rows[ok], first[ok]], axis=1)


# ---------------------------------------------------------------------------
# the pipeline

def track_video(video, out, intrinsics: Optional[Intrinsics] = None, options: Optional[TrackOptions] = None,
                progress: Progress = None, strict: bool = True, fps=None, force: bool = False) -> TrackingResult:
    """Recover the camera track of `video` (file or image folder) into the folder `out`
    (created; an earlier tracking output there is replaced as far as its manifest.json
    says ParaScale wrote it, the user's files there stay; any other folder is refused
    unless force).

    intrinsics: Intrinsics (see intrinsics_from_args); None guesses the focal.
    strict: refuse implausible tracks (TrackingError); False keeps them with warnings.
    fps: the video's frame rate (a number or "30000/1001"; default the rate a video file
    declares; an image folder without it is untimed). The clock goes to frame_times.json
    beside the model (core.formats.frame_times), so the track keeps the video's time.
    force: replace `out` whole even when ParaScale's manifest does not say it wrote it."""
    from .clock import exact_rate
    from .formats.frame_times import clock_of_video, write_frame_times
    from .formats.writers import atomic_folder, check_replaceable_folder

    pycolmap = import_pycolmap()
    intrinsics = intrinsics or Intrinsics()
    options = options or TrackOptions()
    if fps is not None:
        exact_rate(fps)  # a rate that is no rate is refused before any work
    options.check()
    out = Path(out)
    try:  # refused before any work: ParaScale's manifest must say it wrote what is there (or force)
        check_replaceable_folder(out, None, force)
    except ValueError as exc:
        raise TrackingError(str(exc)) from None
    progress = progress or (lambda f, msg: None)
    t0 = time.perf_counter()
    with atomic_folder(out, manifest={"kind": "parascale track", "video": str(video)}, force=force) as work:
        images = work / "images"
        images.mkdir()
        scratch = Path(tempfile.mkdtemp(prefix="colmap-", dir=work))
        spool = scratch / "segments"
        spool.mkdir()
        db = scratch / "database.db"
        pycolmap.Database.open(str(db)).close()  # creates the schema
        progress(0.0, "reading frames")
        total, frames = _frame_stream(video, images)
        every = options.keyframes == "all"
        front = _FrontEnd(pycolmap, db, spool, options, intrinsics, keyframes=not every, total=total)
        share = 0.2 if every else 0.6   # of the progress bar: the stream (every frame: only following)
        writer = None
        gray = None
        t_read = 0.0
        try:
            t = time.perf_counter()
            for name, gray, bgr in frames:
                if bgr is not None:
                    if writer is None:
                        writer = _FrameWriter(images)
                    writer.put(name, bgr)
                t_read += time.perf_counter() - t
                front.add(name, gray)
                n = len(front.names)
                if total and (n % 10 == 0 or n == total):
                    what = f"{len(front.kf_frames)} keyframes" if front.keyframes else "following features"
                    progress(share * min(1.0, n / total), f"frame {n}/{total}: {what}")
                t = time.perf_counter()
            names = front.names
            if len(names) < MIN_FRAMES:
                raise TrackingError(f"{video}: only {len(names)} frame(s); tracking needs at least {MIN_FRAMES} "
                                    "frames of a moving camera")
            front.finish(gray)
        finally:
            if front.db is not None:
                with contextlib.suppress(Exception):
                    front.db.close()
            if writer is not None:
                t = time.perf_counter()
                writer.close()
                t_read += time.perf_counter() - t
        timings = {"frames": t_read, **front.seconds}
        motion = np.asarray(front.motion)
        how = "every frame" if every else "keyframes"
        step = float(np.median(motion)) / max(front.W, front.H) if len(motion) else 0.0
        if not every and len(front.kf_frames) > PHOTO_LIKE * len(names):
            # features rarely outlive a frame or two: photos or a very fast move, not a video
            every, how = True, f"every frame ({len(front.kf_frames)} of {len(names)} frames wanted a keyframe)"
        elif not every and len(names) <= SHORT_CLIP and step > SPARSE_MOTION:
            # a short clip of frames far apart (subsampled): a handful of keyframes maps poorly, all
            # its frames map well (a short clip of close frames is the other way round)
            every, how = True, (f"every frame (a short clip, {100 * step:.1f}% of the frame's size of motion "
                                "per frame)")
        if every:
            db.unlink()
            pycolmap.Database.open(str(db)).close()
            progress(share, f"SIFT features and matching on all {len(names)} frames")
            _every_frame_database(pycolmap, video, db, images, names, intrinsics, options, timings)
            kf = list(range(len(names)))
        else:
            kf = front.kf_frames
            blank = [j for j, c in enumerate(front.kf_counts) if c < MIN_FEATURES]
            if blank:
                _refuse_blank(video, names, [kf[j] for j in blank], [front.kf_counts[j] for j in blank])
        _check_motion(video, front.reach, names)

        t = time.perf_counter()
        progress(0.6, f"{options.mapper} mapping of {len(kf)} {'frames' if every else 'keyframes'}")
        pycolmap.set_random_seed(SEED)
        kf_names = [names[f] for f in kf]
        recon, mapper = None, options.mapper
        if options.mapper == "global":
            recon = _global(pycolmap, db, images, scratch, intrinsics.known, kf_names)
            if recon is None or recon.num_reg_images() < len(kf):
                progress(0.7, "incremental mapping (fallback)")
                inc = _incremental(pycolmap, db, images, scratch, intrinsics.known, kf_names)
                if inc is not None and (recon is None or inc.num_reg_images() > recon.num_reg_images()):
                    recon, mapper = inc, "incremental"
        else:
            recon = _incremental(pycolmap, db, images, scratch, intrinsics.known, kf_names)
        timings["mapping"] = time.perf_counter() - t
        if recon is None or recon.num_reg_images() == 0:
            raise TrackingError(f"{video}: COLMAP found no consistent camera track (too little parallax, "
                                "or too few matching features between frames)")

        t = time.perf_counter()
        if not every:
            progress(0.85, f"posing the {len(names) - len(kf)} frames between keyframes")
        reg = _register_all(pycolmap, recon, kf, [] if every else front.segments(), names, check=not every)
        timings["registration"] = time.perf_counter() - t
        progress(0.95, "checking the track")
        model_rec = _full_model(pycolmap, recon, reg, names)
        model_rec.update_point_3d_errors()
        c2w, registered = reg.c2w, reg.registered
        K = np.asarray(next(iter(recon.cameras.values())).calibration_matrix(), float)
        err = float(model_rec.compute_mean_reprojection_error())
        W, H = front.W, front.H
        checks, warnings, errors = plausibility(c2w, registered, names, err, K, intrinsics, W, H)
        checks["median_motion_px"] = float(np.median(motion)) if len(motion) else 0.0
        checks["max_reach_px"] = front.reach
        checks["keyframes"] = len(kf)
        checks["frames_by"] = how
        checks["keyframes_registered_by_mapping"] = int(recon.num_reg_images())
        checks["min_pnp_inliers"] = int(reg.inliers[reg.inliers > 0].min()) if (reg.inliers > 0).any() else 0
        if reg.interpolated:
            warnings.append(f"{_frames_text(reg.interpolated, names)} posed by interpolation between keyframes "
                            "(too few features followed there to place them on their own)")
        checks["interpolated"] = len(reg.interpolated)
        if errors and strict:
            raise TrackingError(f"{video}: the recovered track is not plausible: " + "; ".join(errors))
        warnings = errors + warnings if not strict else warnings

        model = work / "sparse"
        model.mkdir()
        model_rec.write(str(model))
        if options.keep_database:
            shutil.move(str(db), work / "database.db")
        shutil.rmtree(scratch)
        timings["total"] = time.perf_counter() - t0
        result = TrackingResult(out=out, model=out / "sparse", frames=len(names), registered=int(registered.sum()),
                                names=names, c2w=c2w, K=K, width=W, height=H, reprojection_error=err,
                                points=int(model_rec.num_points3D()), mapper=mapper, intrinsics=intrinsics.source,
                                warnings=warnings, timings={k: round(v, 3) for k, v in timings.items()},
                                checks=checks, keyframes=[names[f] for f in kf])
        clock = clock_of_video(video, names, fps)  # frame i at i / rate: the video's own time
        if clock is not None:
            write_frame_times(work, clock)
        doc = {"video": str(video), "names": names, **result.report()}
        (work / REPORT_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        _check_readable(work, len(names) if registered.all() else None)
    progress(1.0, "done")
    return result


def _every_frame_database(pycolmap, video, db, images, names, intrinsics, options, timings) -> None:
    """The every-frame pipeline's database: all frames imported in frame order, SIFT on
    each (COLMAP's own extraction, long side capped), sequential matching (each frame with
    the next `overlap` x 2 and those 2^k apart), verified with a fixed seed."""
    W, H = _image_size(images / names[0])
    cam_model, params = _camera(intrinsics, W, H)
    t = time.perf_counter()
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = cam_model
    reader.camera_params = ",".join(repr(float(p)) for p in params)
    ext = pycolmap.FeatureExtractionOptions()
    ext.max_image_size = int(options.max_image_size) if options.max_image_size > 0 else -1
    ext.num_threads = -1          # one image per thread, each deterministic; ids follow the import order
    ext.use_gpu = False
    ext.sift.max_num_features = int(options.max_features or EVERY_FRAME_FEATURES)
    _quiet_call(pycolmap.import_images, db, images, camera_mode=pycolmap.CameraMode.SINGLE,
                image_names=names, options=reader)
    _quiet_call(pycolmap.extract_features, db, images, image_names=names,
                camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader, extraction_options=ext,
                device=pycolmap.Device.cpu)
    timings["features"] = timings.get("features", 0.0) + time.perf_counter() - t
    counts = _keypoint_counts(pycolmap, db, names)
    blank = [i for i, c in enumerate(counts) if c < MIN_FEATURES]
    if blank:
        _refuse_blank(video, names, blank, [counts[i] for i in blank])
    t = time.perf_counter()
    match = pycolmap.FeatureMatchingOptions()
    match.num_threads = 1         # more threads change the result from run to run
    match.use_gpu = False
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = 2 * int(options.overlap)
    pairing.quadratic_overlap = True   # also frames 2^k apart: bridges gaps and orbits
    verify = pycolmap.TwoViewGeometryOptions()
    verify.ransac.random_seed = SEED
    _quiet_call(pycolmap.match_sequential, db, matching_options=match, pairing_options=pairing,
                verification_options=verify, device=pycolmap.Device.cpu)
    timings["matching"] = timings.get("matching", 0.0) + time.perf_counter() - t


def _image_size(path: Path) -> tuple[int, int]:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise TrackingError(f"{path}: cannot read this image")
    return img.shape[1], img.shape[0]


def _keypoint_counts(pycolmap, db, names) -> list:
    with pycolmap.Database.open(str(db)) as d:
        by_name = {im.name: im.image_id for im in d.read_all_images()}
        return [int(d.num_keypoints_for_image(by_name[n])) if n in by_name else 0 for n in names]


def _refuse_blank(video, names, frames, counts) -> None:
    raise TrackingError(f"{video}: {_frames_text(frames, names)} ha{'s' if len(frames) == 1 else 've'} "
                        f"{_counts_text(counts)} SIFT features (at least {MIN_FEATURES} needed): a blank, "
                        "dark or blurred image cannot be tracked")


def _camera(intr: Intrinsics, W: int, H: int):
    cx, cy = W / 2.0, H / 2.0
    if intr.known:
        return "PINHOLE", [intr.fx, intr.fy, cx, cy]
    # One focal (square pixels): with fx and fy both free, the pixel aspect is poorly
    # determined by a short clip and drags the rotations (up to 2 deg on the test clips).
    return "SIMPLE_PINHOLE", [GUESS_FOCAL_FACTOR * max(W, H), cx, cy]


def _quiet_call(fn, *args, **kwargs):
    return fn(*(str(a) if isinstance(a, Path) else a for a in args), **kwargs)


def _global(pycolmap, db, images, scratch, fixed: bool, names):
    opts = pycolmap.GlobalPipelineOptions()
    opts.num_threads = 1
    opts.random_seed = SEED
    opts.multiple_models = False
    opts.image_names = list(names)
    m = opts.mapper
    m.num_threads = 1
    m.random_seed = SEED
    m.rotation_averaging.random_seed = SEED
    m.global_positioning.random_seed = SEED
    m.global_positioning.use_gpu = False
    m.retriangulation.random_seed = SEED
    ba = m.bundle_adjustment
    ba.refine_focal_length = not fixed
    ba.refine_principal_point = False
    ba.refine_extra_params = False
    ba.ceres.use_gpu = False
    ba.ceres.solver_options.num_threads = 1
    out = scratch / "global"
    out.mkdir()
    recs = _quiet_call(pycolmap.global_mapping, db, images, out, options=opts)
    return _largest(recs)


def _incremental(pycolmap, db, images, scratch, fixed: bool, names):
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = 1          # more than one thread is not deterministic
    opts.random_seed = SEED
    opts.multiple_models = False
    opts.image_names = list(names)
    opts.ba_refine_focal_length = not fixed
    opts.ba_refine_principal_point = False
    opts.ba_refine_extra_params = False
    out = scratch / "incremental"
    out.mkdir()
    recs = _quiet_call(pycolmap.incremental_mapping, db, images, out, options=opts)
    return _largest(recs)


def _largest(recs):
    if not recs:
        return None
    return max(recs.values(), key=lambda r: r.num_reg_images())


def _check_motion(video, reach: float, names) -> None:
    """A static shot: the features never get STATIC_MOTION_PX away from where they were
    picked up (the median over them; measured from their keyframe, not step by step, so a
    slow move at a high frame rate counts)."""
    if reach < STATIC_MOTION_PX:
        raise TrackingError(f"{video}: the camera does not move (over all {len(names)} frames the features "
                            f"get at most {reach:.2f} px from where they were picked up; at least "
                            f"{STATIC_MOTION_PX:g} px is needed): a static shot has no camera track to recover")


# ---------------------------------------------------------------------------
# every frame: keyframes from the mapping, the rest by PnP on the followed features

MIN_PNP_INLIERS = 15             # fewer: the frame is interpolated between its keyframes (a warning)
PNP_MAX_ERROR_PX = 3.0           # RANSAC threshold (full-size pixels)
CHECK_CENTRE = 1.0               # PnP centre off the keyframe interpolation by more than this keyframe step ...
CHECK_ROT_DEG = 2.0              # ... or its rotation by more than this (or the keyframes' rotation): rejected


@dataclass
class _Registered:
    c2w: np.ndarray                 # (N, 4, 4), NaN where unregistered
    registered: np.ndarray          # (N,) bool
    inliers: np.ndarray             # (N,) PnP inliers; -1 for keyframes from the mapping
    observations: list              # per frame: (xy (m, 2), point3D ids (m,)) the pose rests on
    interpolated: list


def _pose_c2w(cam_from_world) -> np.ndarray:
    w2c = np.eye(4)
    w2c[:3, :] = np.asarray(cam_from_world.matrix())
    return np.linalg.inv(w2c)


def _register_all(pycolmap, recon, kf_frames, segments, names, check: bool = True) -> _Registered:
    """Poses of every frame: the mapped keyframes', then PnP for the frames in `segments`
    (anchor keyframe, frames, followed features), then (check=True) each PnP pose against
    the interpolation between its keyframes, which also stands in for failed frames."""
    from .rotations import rotation_angle

    n = len(names)
    c2w = np.full((n, 4, 4), np.nan)
    inliers = np.zeros(n, np.int64)
    observations = [None] * n
    by_name = {im.name: im for im in recon.images.values() if im.has_pose}
    camera = next(iter(recon.cameras.values()))
    # keyframes: their poses, and the 3D point (if any) of each of their keypoints
    kf_xyz, kf_pid = [], []
    for k, f in enumerate(kf_frames):
        im = by_name.get(names[f])
        if im is None:
            kf_xyz.append(None)
            kf_pid.append(None)
            continue
        c2w[f] = _pose_c2w(im.cam_from_world())
        inliers[f] = -1
        pts = im.points2D
        pid = np.full(len(pts), -1, np.int64)
        xyz = np.full((len(pts), 3), np.nan)
        obs_xy, obs_id = [], []
        for j, p in enumerate(pts):
            if p.has_point3D():
                pid[j] = p.point3D_id
                xyz[j] = recon.points3D[p.point3D_id].xyz
                obs_xy.append(p.xy)
                obs_id.append(p.point3D_id)
        observations[f] = (np.asarray(obs_xy, float).reshape(-1, 2), np.asarray(obs_id, np.int64))
        kf_xyz.append(xyz)
        kf_pid.append(pid)
    est = pycolmap.AbsolutePoseEstimationOptions()
    est.ransac.random_seed = SEED
    est.ransac.max_error = PNP_MAX_ERROR_PX
    ref = pycolmap.AbsolutePoseRefinementOptions()
    ref.refine_focal_length = False
    ref.refine_extra_params = False
    for k, frames, per_frame in segments:
        xyz, pid = kf_xyz[k], kf_pid[k]
        for f, (idx, xy) in zip(frames, per_frame):
            if inliers[f] == -1 or xyz is None:   # a mapped keyframe, or an anchor without 3D points
                continue
            X = xyz[idx]
            ok = np.isfinite(X[:, 0])
            r = None
            if ok.sum() >= MIN_PNP_INLIERS:
                r = pycolmap.estimate_and_refine_absolute_pose(xy[ok], X[ok], camera, est, ref)
            if r is None or r["num_inliers"] < MIN_PNP_INLIERS:
                continue                           # left to the interpolation below
            c2w[f] = _pose_c2w(r["cam_from_world"])
            inliers[f] = int(r["num_inliers"])
            mask = np.asarray(r["inlier_mask"], bool).reshape(-1)
            observations[f] = (xy[ok][mask], pid[idx][ok][mask])
    # the check: each PnP pose against the interpolation between its keyframes
    kf = np.asarray(kf_frames)
    interpolated = []
    for f in range(n if check else 0):
        if inliers[f] == -1:
            continue
        a = kf[kf < f].max() if (kf < f).any() else None
        b = kf[kf > f].min() if (kf > f).any() else None
        if a is None or b is None or inliers[a] != -1 or inliers[b] != -1:
            continue
        guess = resample_poses_se3(c2w[[a, b]], (f - a) / (b - a))
        if np.isfinite(c2w[f, 0, 0]):
            step = np.linalg.norm(c2w[b, :3, 3] - c2w[a, :3, 3])
            off_c = np.linalg.norm(c2w[f, :3, 3] - guess[:3, 3]) / max(step, 1e-12)
            rot_ab = float(np.degrees(rotation_angle(c2w[a, :3, :3].T @ c2w[b, :3, :3])))
            off_r = float(np.degrees(rotation_angle(c2w[f, :3, :3].T @ guess[:3, :3])))
            if off_c <= CHECK_CENTRE and off_r <= max(CHECK_ROT_DEG, rot_ab):
                continue
        c2w[f] = guess
        inliers[f] = 0
        observations[f] = None
        interpolated.append(f)
    registered = np.isfinite(c2w[:, 0, 0])
    return _Registered(c2w, registered, inliers, observations, sorted(interpolated))


def resample_poses_se3(pair: np.ndarray, alpha: float) -> np.ndarray:
    """The pose a fraction alpha of the way from pair[0] to pair[1]: rotation slerped,
    centre linear (the screw-free interpolation on SE(3) that keyframe tracks use)."""
    from .cameras import resample_poses

    return resample_poses(pair, np.array([0.0, 1.0]), np.array([float(alpha)]))[0]


def _full_model(pycolmap, recon, reg: _Registered, names):
    """A COLMAP model with every registered frame (image id = frame number + 1, named as
    the frame) and the keyframe mapping's 3D points, observed in the keyframes and in
    the frames posed on them (the PnP inliers)."""
    camera = next(iter(recon.cameras.values()))
    model = pycolmap.Reconstruction()
    cam = pycolmap.Camera(model=camera.model_name, width=camera.width, height=camera.height,
                          params=list(camera.params), camera_id=1)
    model.add_camera_with_trivial_rig(cam)
    tracks: dict = {}
    for f, name in enumerate(names):
        if not reg.registered[f]:
            continue
        obs = reg.observations[f]
        xy, ids = obs if obs is not None else (np.zeros((0, 2)), np.zeros(0, np.int64))
        image = pycolmap.Image(name=name, keypoints=np.asarray(xy, float).reshape(-1, 2), camera_id=1,
                               image_id=f + 1)
        w2c = np.linalg.inv(reg.c2w[f])
        model.add_image_with_trivial_frame(image, pycolmap.Rigid3d(w2c[:3, :]))
        for j, pid in enumerate(ids):
            tracks.setdefault(int(pid), []).append((f + 1, j))
    for pid in sorted(tracks):
        elems = tracks[pid]
        if len(elems) < 2:
            continue
        p = recon.points3D[pid]
        track = pycolmap.Track([pycolmap.TrackElement(i, j) for i, j in elems])
        model.add_point3D(p.xyz, track, p.color)
    return model


def _frames_text(idx, names, limit: int = 6) -> str:
    idx = list(idx)
    parts = [f"{i} ({names[i]})" for i in idx[:limit]]
    more = f" and {len(idx) - limit} more" if len(idx) > limit else ""
    return ("frame " if len(idx) == 1 else "frames ") + ", ".join(parts) + more


def _counts_text(counts) -> str:
    return "only " + ", ".join(str(c) for c in counts[:6])


def plausibility(c2w, registered, names, reproj, K, intrinsics: Intrinsics, W, H) -> tuple[dict, list, list]:
    """Checks that need no ground truth. Returns (figures, warnings, errors); every
    message names its frames (0-based, step t = frame t-1 -> t)."""
    warnings, errors = [], []
    checks = {"registered": int(registered.sum()), "frames": len(names), "reprojection_error_px": reproj}
    missing = np.flatnonzero(~registered)
    if len(missing):
        errors.append(f"{_frames_text(missing, names)} could not be registered")
    ok = np.flatnonzero(registered)
    if len(ok) >= 2 and np.all(np.diff(ok) == 1):
        centres = c2w[ok, :3, 3]
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        med = float(np.median(steps))
        checks["median_step"] = med
        if med <= 0:
            errors.append("the recovered camera does not move")
        else:
            ratio = steps / med
            checks["max_step_ratio"] = float(ratio.max())
            big = np.flatnonzero(ratio > STEP_OUTLIER)
            warn = np.flatnonzero((ratio > STEP_WARN) & (ratio <= STEP_OUTLIER))
            if len(big):
                errors.append(f"step length outlier at {_frames_text(ok[big + 1], names)} "
                              f"({', '.join(f'{ratio[i]:.1f}x' for i in big[:6])} the median step)")
            if len(warn):
                warnings.append(f"long step at {_frames_text(ok[warn + 1], names)} "
                                f"({', '.join(f'{ratio[i]:.1f}x' for i in warn[:6])} the median step)")
            if len(centres) >= 3:
                mid = 0.5 * (centres[:-2] + centres[2:])
                dev = np.linalg.norm(centres[1:-1] - mid, axis=1) / med
                checks["max_jump_ratio"] = float(dev.max())
                # a jump is a local peak: its neighbours deviate only because of it
                padded = np.concatenate([[0.0], dev, [0.0]])
                peak = (dev >= padded[:-2]) & (dev >= padded[2:])
                jump = np.flatnonzero((dev > JUMP_RATIO) & peak)
                if len(jump):
                    errors.append(f"{_frames_text(ok[jump + 1], names)} jump{'s' if len(jump) == 1 else ''} away "
                                  f"from {'its' if len(jump) == 1 else 'their'} neighbours "
                                  f"({', '.join(f'{dev[i]:.1f}x' for i in jump[:6])} the median step)")
    if reproj > MAX_REPROJ_PX:
        warnings.append(f"mean reprojection error {reproj:.2f} px (above {MAX_REPROJ_PX:g} px)")
    if K is not None:
        fx, fy = float(K[0, 0]), float(K[1, 1])
        checks["fx"], checks["fy"] = fx, fy
        checks["fov_deg"] = math.degrees(2 * math.atan(0.5 * W / fx))
        if not intrinsics.known:
            guess = GUESS_FOCAL_FACTOR * max(W, H)
            for name, f in ((("fx", fx), ("fy", fy)) if fx != fy else (("focal", fx),)):
                r = f / guess
                if not FOCAL_DRIFT[0] <= r <= FOCAL_DRIFT[1]:
                    errors.append(f"the refined focal {name} = {f:.1f} px is {r:.2f}x the guess "
                                  f"{guess:.1f} px: no lens fits; give --focal, --fov or --sensor/--lens")
    return checks, warnings, errors


def _check_readable(folder: Path, expected: Optional[int]) -> None:
    """The written model must read back through the project's own COLMAP reader."""
    from .formats.readers import read_colmap

    track = read_colmap(folder / "sparse", images=folder / "images")
    if expected is not None and len(track) != expected:
        raise TrackingError(f"{folder}: the written model has {len(track)} frames, expected {expected}")
