"""The reference Parallax Number per step (docs/estimators.md).

Three ways to read Pi_ref of step t (frame t-1 -> t):

- ``pi_from_points``: the track's sparse points visible in frame t-1 (any estimator;
  ``flow`` uses the points' normalised image coordinates).
- ``pi_from_depths``: dense depth maps in the track's own units (MegaSaM-style), or any
  per-frame depth callable (``source="scene"`` for a Blender Z pass).
- ``pi_from_video``: gauge free. Dense DIS optical flow between frames t-1 and t,
  minus the rotation-only flow of H = K_t R_t^T R_{t-1} K_{t-1}^-1 (R camera-to-world),
  per-axis division by the focal length, a thin border dropped, and Pi = the mean
  residual magnitude. Pairs with the ``flow`` estimator on the target.

``measure_reference`` picks one the way the command line does; ``resample_reference``
moves a result onto other frame times (the target's frame rate).

OpenCV is imported inside the functions that need it, so this module loads without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .cameras import Track, resample_track, steps
from .parallax import ESTIMATORS, normalized_grid, parallax, scale_intrinsics

SOURCES = ("points", "depth", "video", "scene")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}
DEFAULT_PRESET = "medium"
DEFAULT_BORDER = 0.04
FLOW_LONG_SIDE = 540  # flow on frames at most this wide/high (960x540 -> 540x304)


@dataclass
class ReferencePi:
    """Per-step reference Pi: pi[t-1] and translation[t-1] belong to step t (frame
    t-1 -> t), translation = |d_t| in track units."""

    source: str
    estimator: str
    pi: np.ndarray
    translation: np.ndarray
    times: Optional[np.ndarray] = None   # (N,) frame times of the track, seconds
    names: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.pi = np.asarray(self.pi, float)
        self.translation = np.asarray(self.translation, float)
        if self.source not in SOURCES:
            raise ValueError(f"unknown Pi source {self.source!r} (expected one of {', '.join(SOURCES)})")
        if self.pi.shape != self.translation.shape:
            raise ValueError(f"{len(self.pi)} Pi values for {len(self.translation)} translations")

    def __len__(self) -> int:
        return len(self.pi)

    def per_frame(self) -> np.ndarray:
        """(N,) with frame 0 = 0 and frame t = Pi of step t (for keying a curve)."""
        return np.concatenate([[0.0], self.pi])

    def to_json(self) -> dict:
        return {"source": self.source, "estimator": self.estimator,
                "steps": [{"frame": t + 1, "pi": float(p), "translation": float(d)}
                          for t, (p, d) in enumerate(zip(self.pi, self.translation))]}


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r} (expected one of {', '.join(ESTIMATORS)})")


# ---------------------------------------------------------------------------
# from reconstruction depth

def pi_from_points(track: Track, estimator: str = "harmonic", min_points: int = 1) -> ReferencePi:
    """Pi of every step from the points seen in frame t-1. Without per-frame visibility,
    the points in front of the camera and inside the image are used."""
    _check_estimator(estimator)
    if track.points is None or len(track.points) == 0:
        raise ValueError(f"{track.source or 'track'}: has no 3D points to measure Pi from")
    d, _ = steps(track.c2w)
    P = np.asarray(track.points, float)
    pis = np.empty(len(d))
    counts = np.empty(len(d), int)
    for t in range(1, len(track)):
        R, c = track.c2w[t - 1, :3, :3], track.c2w[t - 1, :3, 3]
        idx = track.visibility[t - 1] if track.visibility is not None else slice(None)
        Xc = (P[idx] - c) @ R
        Z = Xc[:, 2]
        front = Z > 0
        if track.visibility is None:
            K = track.K[t - 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                u = Xc[:, 0] / Z * K[0, 0] + K[0, 2]
                v = Xc[:, 1] / Z * K[1, 1] + K[1, 2]
            front &= (u >= 0) & (u < track.width) & (v >= 0) & (v < track.height)
        Xc, Z = Xc[front], Z[front]
        if len(Z) < min_points:
            raise ValueError(f"{track.source or 'track'}: frame {t - 1} ({track.names[t - 1]}) sees "
                             f"{len(Z)} points in front of the camera; at least {min_points} needed "
                             f"for step {t}")
        xy = Xc[:, :2] / Z[:, None]
        pis[t - 1] = parallax(Z, d[t - 1], estimator, xy)
        counts[t - 1] = len(Z)
    return ReferencePi("points", estimator, pis, np.linalg.norm(d, axis=1), track.times.copy(),
                       list(track.names), meta={"points_per_step": counts.tolist()})


def pi_from_depths(track: Track, estimator: str = "harmonic",
                   depth: Optional[Callable[[int], np.ndarray]] = None, source: str = "depth") -> ReferencePi:
    """Pi of every step over the dense depth of frame t-1: track.depths, or depth(i)
    returning an (h, w) planar depth map of frame i in track units (inf = background).
    The depth grid may be smaller than the track's image; K is rescaled to it."""
    _check_estimator(estimator)
    if depth is None:
        if track.depths is None:
            raise ValueError(f"{track.source or 'track'}: has no depth maps to measure Pi from")
        depth = lambda i: track.depths[i]  # noqa: E731
    d, _ = steps(track.c2w)
    pis = np.empty(len(d))
    for t in range(1, len(track)):
        Z = np.asarray(depth(t - 1), float)
        if Z.ndim != 2:
            raise ValueError(f"depth of frame {t - 1} must be (h, w), got {Z.shape}")
        Z = np.where(np.isfinite(Z) & (Z > 0), Z, np.inf)
        h, w = Z.shape
        K = scale_intrinsics(track.K[t - 1], track.width, track.height, w, h)
        xy = normalized_grid(K, w, h) if estimator in ("flow", "exact") else None
        pis[t - 1] = parallax(Z, d[t - 1], estimator, xy)
    return ReferencePi(source, estimator, pis, np.linalg.norm(d, axis=1), track.times.copy(), list(track.names))


# ---------------------------------------------------------------------------
# from the video

def read_frames(source, names: Optional[Sequence[str]] = None, gray: bool = True) -> tuple[list, list]:
    """Frames of a video file (cv2.VideoCapture) or an image folder, as uint8 arrays.

    For a folder: when every one of `names` (a track's image names) is a file there, those
    files in that order; otherwise all images sorted by name. Returns (frames, labels)."""
    import cv2

    source = Path(source)
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    if source.is_dir():
        from .readers import list_images
        files = None
        if names:
            cand = [source / Path(n).name for n in names]
            if all(p.is_file() for p in cand):
                files = cand
        if files is None:
            files = list_images(source)
        if not files:
            raise ValueError(f"{source}: no images in this folder")
        frames = []
        for p in files:
            img = cv2.imread(str(p), flag)
            if img is None:
                raise ValueError(f"{p}: cannot read this image")
            if frames and img.shape != frames[0].shape:
                raise ValueError(f"{p}: size {img.shape[1]}x{img.shape[0]} differs from the first image "
                                 f"({frames[0].shape[1]}x{frames[0].shape[0]})")
            frames.append(img)
        return frames, [p.name for p in files]
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such video file or image folder")
    cap = cv2.VideoCapture(str(source))
    try:
        if not cap.isOpened():
            raise ValueError(f"{source}: OpenCV cannot open this video")
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray else img)
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"{source}: no frames could be decoded")
    return frames, [f"{source.name}#{i}" for i in range(len(frames))]


def video_fps(source) -> Optional[float]:
    """Frame rate of a video file, or None for folders / unknown."""
    source = Path(source)
    if source.is_dir():
        return None
    import cv2
    cap = cv2.VideoCapture(str(source))
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
    finally:
        cap.release()
    return float(fps) if fps and fps > 0 else None


def rotation_homography(K_prev: np.ndarray, K_cur: np.ndarray, R_prev: np.ndarray, R_cur: np.ndarray) -> np.ndarray:
    """H mapping pixels of frame t-1 to frame t under rotation alone (camera-to-world R):
    H = K_t R_t^T R_{t-1} K_{t-1}^-1."""
    return K_cur @ R_cur.T @ R_prev @ np.linalg.inv(K_prev)


def residual_parallax(flow: np.ndarray, H: np.ndarray, K: np.ndarray, border: float = DEFAULT_BORDER) -> float:
    """Mean magnitude of flow (h, w, 2; frame t-1 -> t, pixels) minus the flow of H,
    per axis over fx, fy of K, inside the image minus a border (fraction of the short side)."""
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    # Homography applied separably-vectorised: q = H [x, y, 1].
    qx = H[0, 0] * xs[None, :] + H[0, 1] * ys[:, None] + H[0, 2]
    qy = H[1, 0] * xs[None, :] + H[1, 1] * ys[:, None] + H[1, 2]
    qw = H[2, 0] * xs[None, :] + H[2, 1] * ys[:, None] + H[2, 2]
    rx = flow[..., 0] - (qx / qw - xs[None, :])
    ry = flow[..., 1] - (qy / qw - ys[:, None])
    mag = np.hypot(rx / K[0, 0], ry / K[1, 1])
    b = int(round(border * min(h, w)))
    mask = np.zeros((h, w), bool)
    mask[b:h - b, b:w - b] = True
    # pixels whose match leaves the image have no reliable flow
    ex = xs[None, :] + flow[..., 0]
    ey = ys[:, None] + flow[..., 1]
    mask &= (ex >= 0) & (ex < w) & (ey >= 0) & (ey < h) & (qw > 0)
    if not mask.any():
        return float("nan")
    return float(mag[mask].mean())


def dis_flow(prev: np.ndarray, cur: np.ndarray, preset: str = DEFAULT_PRESET, _cache={}) -> np.ndarray:
    """Dense DIS optical flow (h, w, 2) from prev to cur (uint8 grayscale)."""
    import cv2

    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r} (expected one of {', '.join(DIS_PRESETS)})")
    dis = _cache.get(preset)
    if dis is None:
        dis = _cache[preset] = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    return dis.calc(prev, cur, None)


def pi_from_video(track: Track, video, offset: Optional[int] = None, preset: str = DEFAULT_PRESET,
                  border: float = DEFAULT_BORDER, frames: Optional[list] = None,
                  flow_long_side: Optional[int] = FLOW_LONG_SIDE) -> ReferencePi:
    """Gauge-free Pi of every step from the video (file or image folder) of the track.

    offset: None requires exactly one video frame per track frame; an integer k pairs
    track frame i with video frame k + i (the video may then be longer).
    frames: already decoded grayscale frames (skips reading `video`).
    flow_long_side: frames larger than this are downscaled before the flow (Pi is in
    focal-length units, so only K follows); None keeps full resolution."""
    if frames is None:
        frames, _ = read_frames(video, names=track.names)
    n = len(track)
    if offset is None:
        if len(frames) != n:
            raise ValueError(f"{video}: {len(frames)} video frames for a track of {n} frames; they must "
                             "match one to one, or give an explicit offset (track frame i = video frame "
                             "offset + i)")
        offset = 0
    if offset < 0 or offset + n > len(frames):
        raise ValueError(f"{video}: offset {offset} needs video frames {offset}..{offset + n - 1}, "
                         f"but the video has {len(frames)}")
    frames = frames[offset:offset + n]
    frames = _flow_frames([f if f.ndim == 2 else _to_gray(f) for f in frames], flow_long_side)
    h, w = frames[0].shape
    K = np.stack([scale_intrinsics(k, track.width, track.height, w, h) for k in track.K])
    R = track.rotations
    d, _ = steps(track.c2w)
    pis = np.empty(n - 1)
    for t in range(1, n):
        flow = dis_flow(frames[t - 1], frames[t], preset)
        H = rotation_homography(K[t - 1], K[t], R[t - 1], R[t])
        pis[t - 1] = residual_parallax(flow, H, K[t - 1], border)
    if not np.isfinite(pis).all():
        t = int(np.argmax(~np.isfinite(pis))) + 1
        raise ValueError(f"{video}: step {t} has no usable flow (everything leaves the image)")
    return ReferencePi("video", "flow", pis, np.linalg.norm(d, axis=1), track.times.copy(), list(track.names),
                       meta={"video": str(video), "offset": offset, "preset": preset, "border": border,
                             "flow_size": [w, h]})


def _flow_frames(frames: list, long_side: Optional[int]) -> list:
    """Frames downscaled (area averaging) so the long side is at most `long_side`:
    at 960x540 the flow costs a quarter and Pi moves by about 0.1% (parascale bench)."""
    h, w = frames[0].shape
    if long_side is None or max(h, w) <= long_side:
        return frames
    import cv2

    scale = long_side / max(h, w)
    size = (max(2, int(round(w * scale))), max(2, int(round(h * scale))))
    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def _to_gray(img: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


# ---------------------------------------------------------------------------
# choosing and resampling

def measure_reference(track: Track, video=None, estimator: Optional[str] = None, offset: Optional[int] = None,
                      preset: str = DEFAULT_PRESET) -> ReferencePi:
    """Pi_ref the way `parascale measure` chooses: with a video, from the video (flow);
    else from points when the track has them, else from its depth maps; else an error
    saying what is needed."""
    if video is not None:
        if estimator not in (None, "flow", "exact"):
            raise ValueError(f"Pi from a video is measured as image motion (estimator flow); "
                             f"{estimator!r} needs depth: drop --video to use the track's points or depth")
        return pi_from_video(track, video, offset=offset, preset=preset)
    estimator = estimator or "harmonic"
    if track.points is not None and len(track.points):
        return pi_from_points(track, estimator)
    if track.depths is not None:
        return pi_from_depths(track, estimator)
    raise ValueError(f"{track.source or 'the track'} has no 3D points and no depth maps, so its Parallax "
                     "Number cannot be read from it alone: give the video it was recovered from "
                     "(--video FILE|DIR, measured from optical flow), or a track with points "
                     "(COLMAP points3D) or depth (MegaSaM npz)")


def resample_reference(ref: ReferencePi, track: Track, new_times: np.ndarray, video=None,
                       **kwargs) -> tuple[ReferencePi, Track]:
    """Pi_ref and the track at other frame times (docs/estimators.md).

    Video (flow) Pi cannot be re-measured between frames: its cumulative sum is
    interpolated and differenced (so total image motion is conserved), as is the
    path length. Depth/points Pi: the track is resampled (slerp) and Pi recomputed."""
    new_times = np.asarray(new_times, float)
    new_track = resample_track(track, new_times)
    if ref.source == "video":
        times = track.times
        cum_pi = np.concatenate([[0.0], np.cumsum(ref.pi)])
        pi = np.diff(np.interp(new_times, times, cum_pi))
        d, _ = steps(new_track.c2w)
        out = ReferencePi("video", ref.estimator, pi, np.linalg.norm(d, axis=1), new_times,
                          list(new_track.names), meta={**ref.meta, "resampled_from": len(times)})
        return out, new_track
    if ref.source == "points":
        return pi_from_points(new_track, ref.estimator), new_track
    if ref.source == "depth":
        return pi_from_depths(new_track, ref.estimator), new_track
    raise ValueError(f"a {ref.source!r} reference is resampled by re-measuring its scene at the new times")
