"""Recover a camera track from a video alone with COLMAP (the PyPI ``pycolmap`` bindings).

    track_video(video, out, intrinsics=None, options=None, progress=None) -> TrackingResult

Pipeline: frames (a video file decoded with OpenCV, or an image folder) are written to
``<out>/images``; SIFT features on frames whose long side is capped (``max_image_size``,
640 px by default: as accurate as full resolution on the test clips, 2-3x faster);
sequential matching; global mapping (GLOMAP) with the intrinsics held fixed when they
are given (a focal guess is refined otherwise); incremental mapping as a fallback. The
model is written as a COLMAP binary model in ``<out>/sparse`` (read back by
``core.formats.readers.read_colmap``), with ``<out>/track_report.json``. The folder appears only
when everything succeeded (built beside it, then renamed).

A plausibility check that needs no ground truth then refuses (TrackingError naming the
frames) or warns: too few frames, featureless frames, a camera that does not move,
unregistered frames, step lengths far off the rest, a frame that jumps away from its
neighbours, a focal guess that drifted out of any plausible lens.

pycolmap is optional: ``tracking_available()`` says whether it can be used here without
importing it. ``import_pycolmap()`` loads the system zlib first: on Linux, a pycolmap
loaded before zlib makes later zlib use abort with "double free".

No bpy here. Everything is deterministic for the same input and options: fixed random
seeds, and single-threaded mapping.
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
GUESS_FOCAL_FACTOR = 0.6         # focal guess = 0.6 x the long side, refined (no lens given)
MIN_FEATURES = 100               # fewer SIFT features than this: a blank or blurred frame
STATIC_MOTION_PX = 1.0           # median feature motion below this on every step: no movement
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
    max_image_size: int = DEFAULT_LONG_SIDE   # SIFT long side; <= 0: full resolution
    max_features: int = 8192
    overlap: int = 10                         # sequential matching: pairs up to 10 frames apart
    mapper: str = "global"                    # "global" (incremental as fallback) or "incremental"
    num_threads: int = -1                     # feature extraction (deterministic per image)
    match_threads: int = 1                    # matching: more threads change the result run to run
    keep_database: bool = False


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

    def report(self) -> dict:
        return {"frames": self.frames, "registered": self.registered, "mapper": self.mapper,
                "intrinsics": self.intrinsics, "width": self.width, "height": self.height,
                "K": self.K.tolist(), "reprojection_error_px": self.reprojection_error, "points": self.points,
                "warnings": list(self.warnings), "checks": self.checks, "timings_s": self.timings,
                "pycolmap": _pycolmap_version(), "model": "sparse", "images": "images"}


def _pycolmap_version() -> str:
    mod = sys.modules.get("pycolmap")
    return getattr(mod, "__version__", "unknown") if mod else "not loaded"


Progress = Optional[Callable[[float, str], None]]


# ---------------------------------------------------------------------------
# frames

def write_frames(video, folder: Path, progress: Progress = None) -> tuple[list, int, int]:
    """The frames of a video file (decoded with OpenCV, written as PNG) or of an image
    folder (linked or copied, names kept) in `folder`. Returns (names, width, height)."""
    import cv2

    from .formats.readers import list_images
    from .formats.validate import check_image_header

    video = Path(video)
    folder.mkdir(parents=True, exist_ok=True)
    names, size = [], None
    if video.is_dir():
        files = list_images(video)
        if not files:
            raise TrackingError(f"{video}: no images in this folder (expected the frames of one shot)")
        for p in files:  # every header first: a declared 100000x100000 is refused by its size, never decoded
            try:
                check_image_header(p)
            except ValueError as exc:
                raise TrackingError(str(exc)) from None
        for i, p in enumerate(files):
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise TrackingError(f"{p}: cannot read this image")
            s = (img.shape[1], img.shape[0])
            if size is not None and s != size:
                raise TrackingError(f"{p}: size {s[0]}x{s[1]} differs from the first frame ({size[0]}x{size[1]})")
            size = s
            dst = folder / p.name
            try:
                os.link(p, dst)
            except OSError:
                shutil.copyfile(p, dst)
            names.append(p.name)
            if progress:
                progress(0.1 * (i + 1) / len(files), f"frame {i + 1}/{len(files)}")
        return names, size[0], size[1]
    if not video.is_file():
        raise FileNotFoundError(f"{video}: no such video file or image folder")
    cap = cv2.VideoCapture(str(video))
    try:
        if not cap.isOpened():
            raise TrackingError(f"{video}: OpenCV cannot open this video")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        while True:
            ok, img = cap.read()
            if not ok:
                break
            s = (img.shape[1], img.shape[0])
            if size is not None and s != size:
                raise TrackingError(f"{video} frame {len(names)}: size changes from {size[0]}x{size[1]} to {s[0]}x{s[1]}")
            size = s
            name = f"frame_{len(names):06d}.png"
            if not cv2.imwrite(str(folder / name), img):
                raise OSError(f"{folder / name}: cannot write the frame")
            names.append(name)
            if progress and total:
                progress(0.1 * min(1.0, len(names) / total), f"frame {len(names)}/{total}")
    finally:
        cap.release()
    if not names:
        raise TrackingError(f"{video}: no frames could be decoded")
    return names, size[0], size[1]


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
    out = Path(out)
    try:  # refused before any work: ParaScale's manifest must say it wrote what is there (or force)
        check_replaceable_folder(out, None, force)
    except ValueError as exc:
        raise TrackingError(str(exc)) from None
    progress = progress or (lambda f, msg: None)
    timings = {}
    t0 = time.perf_counter()
    with atomic_folder(out, manifest={"kind": "parascale track", "video": str(video)}, force=force) as work:
        images = work / "images"
        progress(0.0, "reading frames")
        names, W, H = write_frames(video, images, progress)
        if len(names) < MIN_FRAMES:
            raise TrackingError(f"{video}: only {len(names)} frame(s); tracking needs at least {MIN_FRAMES} "
                                "frames of a moving camera")
        timings["frames"] = time.perf_counter() - t0
        scratch = Path(tempfile.mkdtemp(prefix="colmap-", dir=work))
        db = scratch / "database.db"
        cam_model, params = _camera(intrinsics, W, H)

        t = time.perf_counter()
        progress(0.1, f"SIFT features on {len(names)} frames")
        reader = pycolmap.ImageReaderOptions()
        reader.camera_model = cam_model
        reader.camera_params = ",".join(repr(float(p)) for p in params)
        ext = pycolmap.FeatureExtractionOptions()
        ext.max_image_size = int(options.max_image_size) if options.max_image_size > 0 else -1
        ext.num_threads = options.num_threads
        ext.use_gpu = False
        ext.sift.max_num_features = options.max_features
        # Images enter the database in frame order first: with several extraction threads the
        # ids would otherwise follow completion order, and the mapping follows the ids.
        pycolmap.Database.open(str(db)).close()  # creates the schema
        _quiet_call(pycolmap.import_images, db, images, camera_mode=pycolmap.CameraMode.SINGLE,
                    image_names=names, options=reader)
        _quiet_call(pycolmap.extract_features, db, images, image_names=names,
                    camera_mode=pycolmap.CameraMode.SINGLE, reader_options=reader, extraction_options=ext,
                    device=pycolmap.Device.cpu)
        timings["features"] = time.perf_counter() - t
        counts = _keypoint_counts(pycolmap, db, names)
        blank = [i for i, n in enumerate(counts) if n < MIN_FEATURES]
        if blank:
            raise TrackingError(f"{video}: {_frames_text(blank, names)} ha{'s' if len(blank) == 1 else 've'} "
                                f"{_counts_text([counts[i] for i in blank])} SIFT features (at least {MIN_FEATURES} "
                                "needed): a blank, dark or blurred image cannot be tracked")

        t = time.perf_counter()
        progress(0.35, "matching neighbouring frames")
        match = pycolmap.FeatureMatchingOptions()
        match.num_threads = options.match_threads
        match.use_gpu = False
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = int(options.overlap)
        pairing.quadratic_overlap = True   # also frames 2^k apart: bridges gaps and orbits
        verify = pycolmap.TwoViewGeometryOptions()
        verify.ransac.random_seed = SEED
        _quiet_call(pycolmap.match_sequential, db, matching_options=match, pairing_options=pairing,
                    verification_options=verify, device=pycolmap.Device.cpu)
        timings["matching"] = time.perf_counter() - t
        motion = _step_motion(pycolmap, db, names)
        _check_motion(video, motion, names)

        t = time.perf_counter()
        progress(0.55, "global mapping")
        pycolmap.set_random_seed(SEED)
        recon, mapper = None, options.mapper
        if options.mapper == "global":
            recon = _global(pycolmap, db, images, scratch, intrinsics.known)
            if recon is None or recon.num_reg_images() < len(names):
                progress(0.7, "incremental mapping (fallback)")
                inc = _incremental(pycolmap, db, images, scratch, intrinsics.known)
                if inc is not None and (recon is None or inc.num_reg_images() > recon.num_reg_images()):
                    recon, mapper = inc, "incremental"
        else:
            recon = _incremental(pycolmap, db, images, scratch, intrinsics.known)
        timings["mapping"] = time.perf_counter() - t
        if recon is None or recon.num_reg_images() == 0:
            raise TrackingError(f"{video}: COLMAP found no consistent camera track (too little parallax, "
                                "or too few matching features between frames)")

        progress(0.9, "checking the track")
        c2w, K, registered = _poses(recon, names)
        err = float(recon.compute_mean_reprojection_error())
        checks, warnings, errors = plausibility(c2w, registered, names, err, K, intrinsics, W, H)
        checks["median_motion_px"] = float(np.median(motion))
        if errors and strict:
            raise TrackingError(f"{video}: the recovered track is not plausible: " + "; ".join(errors))
        warnings = errors + warnings if not strict else warnings

        model = work / "sparse"
        model.mkdir()
        recon.write(str(model))
        if options.keep_database:
            shutil.move(str(db), work / "database.db")
        shutil.rmtree(scratch)
        timings["total"] = time.perf_counter() - t0
        result = TrackingResult(out=out, model=out / "sparse", frames=len(names), registered=int(registered.sum()),
                                names=names, c2w=c2w, K=K, width=W, height=H, reprojection_error=err,
                                points=int(recon.num_points3D()), mapper=mapper, intrinsics=intrinsics.source,
                                warnings=warnings, timings={k: round(v, 3) for k, v in timings.items()},
                                checks=checks)
        clock = clock_of_video(video, names, fps)  # frame i at i / rate: the video's own time
        if clock is not None:
            write_frame_times(work, clock)
        doc = {"video": str(video), "names": names, **result.report()}
        (work / REPORT_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        _check_readable(work, len(names) if registered.all() else None)
    progress(1.0, "done")
    return result


def _camera(intr: Intrinsics, W: int, H: int):
    cx, cy = W / 2.0, H / 2.0
    if intr.known:
        return "PINHOLE", [intr.fx, intr.fy, cx, cy]
    # One focal (square pixels): with fx and fy both free, the pixel aspect is poorly
    # determined by a short clip and drags the rotations (up to 2 deg on the test clips).
    return "SIMPLE_PINHOLE", [GUESS_FOCAL_FACTOR * max(W, H), cx, cy]


def _quiet_call(fn, *args, **kwargs):
    return fn(*(str(a) if isinstance(a, Path) else a for a in args), **kwargs)


def _global(pycolmap, db, images, scratch, fixed: bool):
    opts = pycolmap.GlobalPipelineOptions()
    opts.num_threads = 1
    opts.random_seed = SEED
    opts.multiple_models = False
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


def _incremental(pycolmap, db, images, scratch, fixed: bool):
    opts = pycolmap.IncrementalPipelineOptions()
    opts.num_threads = 1          # more than one thread is not deterministic
    opts.random_seed = SEED
    opts.multiple_models = False
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


def _keypoint_counts(pycolmap, db, names) -> list:
    with pycolmap.Database.open(str(db)) as d:
        by_name = {im.name: im.image_id for im in d.read_all_images()}
        return [int(d.num_keypoints_for_image(by_name[n])) if n in by_name else 0 for n in names]


def _step_motion(pycolmap, db, names) -> np.ndarray:
    """Median image motion (full-res pixels) of the verified matches of each step t-1 -> t;
    0 where a step has no verified match."""
    out = np.zeros(len(names) - 1)
    with pycolmap.Database.open(str(db)) as d:
        by_name = {im.name: im.image_id for im in d.read_all_images()}
        ids = [by_name[n] for n in names]
        kps = {i: np.asarray(d.read_keypoints(i))[:, :2] for i in ids}
        for t in range(1, len(ids)):
            a, b = ids[t - 1], ids[t]
            if not d.exists_two_view_geometry(a, b):
                continue
            tvg = d.read_two_view_geometry(a, b)
            m = np.asarray(tvg.inlier_matches)
            if len(m) == 0:
                continue
            out[t - 1] = float(np.median(np.linalg.norm(kps[b][m[:, 1]] - kps[a][m[:, 0]], axis=1)))
    return out


def _check_motion(video, motion: np.ndarray, names) -> None:
    if np.all(motion < STATIC_MOTION_PX):
        raise TrackingError(f"{video}: the camera does not move (median feature motion at most "
                            f"{motion.max():.2f} px per frame over all {len(names)} frames; at least "
                            f"{STATIC_MOTION_PX:g} px is needed): a static shot has no camera track to recover")


def _poses(recon, names):
    """c2w (N,4,4) OpenCV, K (3,3), registered mask; unregistered frames are NaN."""
    n = len(names)
    c2w = np.full((n, 4, 4), np.nan)
    registered = np.zeros(n, bool)
    index = {name: i for i, name in enumerate(names)}
    K = None
    for image in recon.images.values():
        if not image.has_pose or image.name not in index:
            continue
        i = index[image.name]
        w2c = np.eye(4)
        w2c[:3, :] = np.asarray(image.cam_from_world().matrix())
        c2w[i] = np.linalg.inv(w2c)
        registered[i] = True
        if K is None:
            K = np.asarray(image.camera.calibration_matrix(), float)
    return c2w, K, registered


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
