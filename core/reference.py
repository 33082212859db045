"""The reference Parallax Number per step (docs/estimators.md).

Three ways to read Pi_ref of step t (frame t-1 -> t):

- ``pi_from_points``: the track's sparse points visible in frame t-1 (any estimator;
  ``flow`` uses the points' normalised image coordinates).
- ``pi_from_depths``: dense depth maps in the track's own units (MegaSaM-style), or any
  per-frame depth callable (``source="scene"`` for a Blender Z pass).
- ``pi_from_video``: gauge free. Dense DIS optical flow between frames t-1 and t,
  derotated with the track (H = K_t R_t^T R_{t-1} K_{t-1}^-1, R camera-to-world), in
  focal-length units, checked pixel by pixel against the track's own motion
  (core.video_pi): Pi is the mean translational motion over the pixels that show static
  geometry, movers and occlusions counted with the motion of the geometry around them,
  pixels at infinity (sky) left out as the target leaves out empty background. Pairs
  with the ``exact`` estimator on the target.

``measure_reference`` picks one the way the command line does; ``resample_reference``
moves a result onto other frame times (the target's frame rate).

OpenCV is imported inside the functions that need it, so this module loads without it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from .cameras import Track, resample_track, steps
from .formats.validate import check_image_header
from .parallax import ESTIMATORS, coverage, normalized_grid, parallax, scale_intrinsics

SOURCES = ("points", "depth", "video", "scene")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")
# DIS presets: OpenCV's, "medium" with its finest level at full resolution (OpenCV's stops at
# half: it smooths motion edges and under-reads large motion on weak texture by about 5%).
DIS_PRESETS = {"ultrafast": (0, None), "fast": (1, None), "medium": (2, 0)}
DEFAULT_PRESET = "medium"
DEFAULT_BORDER = 0.04
FLOW_LONG_SIDE = 384  # flow on frames at most this wide/high (960x540 -> 384x216)


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

    def pixel_shares(self) -> Optional[dict]:
        """Per-step shares of the frame by class for a video reading (kept, filled,
        rejected, infinity: lists of len(pi)), else None."""
        px = self.meta.get("pixels")
        if not px or any(len(v) != len(self.pi) for v in px.values()):
            return None
        return px

    def counted(self) -> Optional[np.ndarray]:
        """Per-step share of the frame whose motion counts in Pi (kept + filled), video only."""
        px = self.pixel_shares()
        return None if px is None else np.asarray(px["kept"], float) + np.asarray(px["filled"], float)

    def to_json(self) -> dict:
        px = self.pixel_shares()
        steps_out = []
        for t, (p, d) in enumerate(zip(self.pi, self.translation)):
            entry = {"frame": t + 1, "pi": float(p), "translation": float(d)}
            if px is not None:  # a video reading: which pixels counted
                entry.update({k: float(v[t]) for k, v in px.items()})
            steps_out.append(entry)
        return {"source": self.source, "estimator": self.estimator, "steps": steps_out}


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
    cover = np.empty(len(d))  # fraction of each step's depth map that sees geometry
    for t in range(1, len(track)):
        Z = np.asarray(depth(t - 1), float)
        if Z.ndim != 2:
            raise ValueError(f"depth of frame {t - 1} must be (h, w), got {Z.shape}")
        Z = np.where(np.isfinite(Z) & (Z > 0), Z, np.inf)
        h, w = Z.shape
        K = scale_intrinsics(track.K[t - 1], track.width, track.height, w, h)
        xy = normalized_grid(K, w, h) if estimator in ("flow", "exact") else None
        pis[t - 1] = parallax(Z, d[t - 1], estimator, xy)
        cover[t - 1] = coverage(Z)
    return ReferencePi(source, estimator, pis, np.linalg.norm(d, axis=1), track.times.copy(), list(track.names),
                       meta={"coverage": cover.tolist()})


# ---------------------------------------------------------------------------
# from the video

# Container signatures (first bytes) of the video files FFmpeg reads: a file is taken
# as a video by what it is, never by what a decoder makes of it (FFmpeg decodes a
# text file as frames of noise).
def _container(head: bytes) -> Optional[str]:
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[:3] == b"FLV":
        return "FLV"
    if head[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11":
        return "ASF/WMV"
    if head[:4] == b"DKIF":
        return "IVF"
    if head[:9] == b"YUV4MPEG2":
        return "Y4M"
    if head[:1] == b"\x47" and len(head) > 376 and head[188:189] == b"\x47" and head[376:377] == b"\x47":
        return "MPEG-TS"
    if head[:3] == b"\x00\x00\x01" or head[:4] == b"\x00\x00\x00\x01":
        return "MPEG / H.264 stream"
    return None


def check_video_file(path) -> str:
    """The container name of a video file, or ValueError naming the file and what it
    looks like instead."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror})") from None
    kind = _container(head)
    if kind is None:
        looks = "empty" if not head else ("text" if _is_text(head) else f"starts with {head[:8]!r}")
        raise ValueError(f"{path}: not a video file ({looks}); expected a video container (MP4/MOV, AVI, "
                         "MKV/WebM, MPEG, GIF, Ogg, ...) or a folder of images")
    return kind


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _folder_files(source: Path, names: Optional[Sequence[str]]) -> list:
    from .formats.readers import list_images
    files = None
    if names:
        cand = [source / Path(n).name for n in names]
        if all(p.is_file() for p in cand):
            files = cand
    if files is None:
        files = list_images(source)
    if not files:
        raise ValueError(f"{source}: no images in this folder")
    return files


def iter_frames(source, names: Optional[Sequence[str]] = None, gray: bool = True) -> Iterator[np.ndarray]:
    """Frames of a video file or an image folder one at a time, as uint8 arrays (one
    frame in memory, whatever the length). A folder is read as in read_frames; a
    file must be a video container (check_video_file)."""
    import cv2

    source = Path(source)
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    if source.is_dir():
        first = None
        for p in _folder_files(source, names):
            check_image_header(p)  # a declared 100000x100000 is refused by its size, never decoded
            img = cv2.imread(str(p), flag)
            if img is None:
                raise ValueError(f"{p}: cannot read this image")
            if first is None:
                first = img.shape
            elif img.shape != first:
                raise ValueError(f"{p}: size {img.shape[1]}x{img.shape[0]} differs from the first image "
                                 f"({first[1]}x{first[0]})")
            yield img
        return
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such video file or image folder")
    check_video_file(source)
    cap = cv2.VideoCapture(str(source))
    try:
        if not cap.isOpened():
            raise ValueError(f"{source}: OpenCV cannot open this video")
        count = 0
        while True:
            ok, img = cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if gray else img
        if count == 0:
            raise ValueError(f"{source}: no frames could be decoded")
    finally:
        cap.release()


def video_frame_count(source, names: Optional[Sequence[str]] = None) -> Optional[int]:
    """Frames in an image folder (exact), or the count a video file's container
    declares (may be approximate; None when it declares none)."""
    source = Path(source)
    if source.is_dir():
        return len(_folder_files(source, names))
    import cv2
    check_video_file(source)
    cap = cv2.VideoCapture(str(source))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    return n if n > 0 else None


def video_size(source) -> tuple[int, int]:
    """(width, height) of the first frame of a video file or image folder."""
    frames = iter_frames(source)
    try:
        img = next(frames)
    except StopIteration:
        raise ValueError(f"{source}: no frames could be decoded") from None
    finally:
        frames.close()
    return img.shape[1], img.shape[0]


def read_frames(source, names: Optional[Sequence[str]] = None, gray: bool = True) -> tuple[list, list]:
    """Every frame of a video file (cv2.VideoCapture) or an image folder, as uint8 arrays
    in a list (short clips; pi_from_video streams instead).

    For a folder: when every one of `names` (a track's image names) is a file there, those
    files in that order; otherwise all images sorted by name. Returns (frames, labels)."""
    source = Path(source)
    frames = list(iter_frames(source, names, gray))
    if source.is_dir():
        return frames, [p.name for p in _folder_files(source, names)]
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
    return residual_parallax_coverage(flow, H, K, border)[0]


def residual_field(flow: np.ndarray, H: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Per-pixel magnitude of flow minus the flow of homography H, per axis over the focal
    lengths of K (focal-length units): the translation-induced image motion."""
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    qx = H[0, 0] * xs[None, :] + H[0, 1] * ys[:, None] + H[0, 2]
    qy = H[1, 0] * xs[None, :] + H[1, 1] * ys[:, None] + H[1, 2]
    qw = H[2, 0] * xs[None, :] + H[2, 1] * ys[:, None] + H[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        rx = flow[..., 0] - (qx / qw - xs[None, :])
        ry = flow[..., 1] - (qy / qw - ys[:, None])
        mag = np.hypot(rx / K[0, 0], ry / K[1, 1])
    return np.where(qw > 0, mag, np.inf)


def residual_parallax_coverage(flow: np.ndarray, H: np.ndarray, K: np.ndarray,
                               border: float = DEFAULT_BORDER) -> tuple[float, float]:
    """(residual_parallax, coverage): coverage is the fraction of the frame's pixels the
    mean is taken over (inside the border, matched inside the image)."""
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float64) + 0.5
    ys = np.arange(h, dtype=np.float64) + 0.5
    mag = residual_field(flow, H, K)
    b = int(round(border * min(h, w)))
    mask = np.zeros((h, w), bool)
    mask[b:h - b, b:w - b] = True
    # pixels whose match leaves the image have no reliable flow
    ex = xs[None, :] + flow[..., 0]
    ey = ys[:, None] + flow[..., 1]
    mask &= (ex >= 0) & (ex < w) & (ey >= 0) & (ey < h) & np.isfinite(mag)
    counted = int(mask.sum())
    if not counted:
        return float("nan"), 0.0
    return float(mag[mask].mean()), counted / float(h * w)


def dis_flow(prev: np.ndarray, cur: np.ndarray, preset: str = DEFAULT_PRESET, _cache={}) -> np.ndarray:
    """Dense DIS optical flow (h, w, 2) from prev to cur (uint8 grayscale)."""
    import cv2

    if preset not in DIS_PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r} (expected one of {', '.join(DIS_PRESETS)})")
    dis = _cache.get(preset)
    if dis is None:
        base, finest = DIS_PRESETS[preset]
        dis = cv2.DISOpticalFlow_create(base)
        if finest is not None:
            dis.setFinestScale(finest)
        _cache[preset] = dis
    return dis.calc(prev, cur, None)


def pi_from_video(track: Track, video, offset: Optional[int] = None, preset: str = DEFAULT_PRESET,
                  frames: Optional[Sequence] = None, flow_long_side: Optional[int] = FLOW_LONG_SIDE,
                  progress: Optional[Callable[[int, int], None]] = None) -> ReferencePi:
    """Gauge-free Pi of every step from the video (file or image folder) of the track:
    DIS flow checked against the track (core.video_pi.read_step): pixels that contradict
    the camera's own motion count with the motion of the static geometry around them,
    pixels at infinity do not count. meta["pixels"] holds the per-step shares of the
    frame (kept, filled, rejected, infinity) and meta["unchecked_steps"] the steps where
    track and flow disagreed on most of the frame.

    The video is read as a stream: two frames in memory whatever its length.
    offset: None requires exactly one video frame per track frame; an integer k pairs
    track frame i with video frame k + i (the video may then be longer).
    frames: already decoded grayscale frames, any iterable (skips reading `video`).
    flow_long_side: frames larger than this are downscaled before the flow (Pi is in
    focal-length units, so only K follows); None keeps full resolution.
    progress(done, total): called after each step."""
    from .video_pi import read_step

    n = len(track)
    if offset is not None and offset < 0:
        raise ValueError(f"{video}: offset {offset} must be 0 or more")
    if frames is None and offset is None and Path(video).is_dir():
        count = video_frame_count(video, names=track.names)  # exact for a folder: refuse before any work
        if count != n:
            raise ValueError(f"{video}: {count} video frames for a track of {n} frames; they must "
                             "match one to one, or give an explicit offset (track frame i = video frame "
                             "offset + i)")
    stream = iter(frames) if frames is not None else iter_frames(video, names=track.names)
    R = track.rotations
    d, _ = steps(track.c2w)
    pis = np.empty(n - 1)
    cover = np.zeros(n - 1)  # fraction of each step's frame that Pi is averaged over
    readings = [None] * (n - 1)
    seen = 0          # video frames read so far
    prev = K = None
    flow_size = None
    try:
        for img in stream:
            seen += 1
            i = seen - 1 - (offset or 0)  # track frame of this video frame
            if i < 0:
                continue
            if i >= n:
                if offset is not None:
                    break  # the rest of a longer video is not needed
                continue  # counting: the error below says how many there are
            g = _flow_frame(img if img.ndim == 2 else _to_gray(img), flow_long_side)
            if K is None:
                h, w = g.shape
                flow_size = [w, h]
                K = np.stack([scale_intrinsics(k, track.width, track.height, w, h) for k in track.K])
            elif g.shape != prev.shape:
                raise ValueError(f"{video}: frame {seen - 1} is {img.shape[1]}x{img.shape[0]}, unlike the "
                                 "frames before it")
            if i > 0:
                reading = read_step(prev, g, dis_flow(prev, g, preset), K[i - 1], K[i], R[i - 1], R[i], d[i - 1])
                pis[i - 1] = reading.pi
                readings[i - 1] = reading
                cover[i - 1] = reading.counted
                if progress is not None:
                    progress(i, n - 1)
            prev = g
    finally:
        if hasattr(stream, "close"):
            stream.close()
    if offset is None and seen != n:
        raise ValueError(f"{video}: {seen} video frames for a track of {n} frames; they must "
                         "match one to one, or give an explicit offset (track frame i = video frame "
                         "offset + i)")
    offset = offset or 0
    if offset + n > seen:
        raise ValueError(f"{video}: offset {offset} needs video frames {offset}..{offset + n - 1}, "
                         f"but the video has {seen}")
    if not np.isfinite(pis).all():
        t = int(np.argmax(~np.isfinite(pis))) + 1
        raise ValueError(f"{video}: step {t} has no usable flow")
    pixels = {k: [round(float(getattr(r, k)), 6) for r in readings]
              for k in ("kept", "filled", "rejected", "infinity")}
    return ReferencePi("video", "flow", pis, np.linalg.norm(d, axis=1), track.times.copy(), list(track.names),
                       meta={"video": str(video), "offset": offset, "preset": preset, "flow_size": flow_size,
                             "pixels": pixels, "coverage": cover.tolist(),
                             "unchecked_steps": [t + 1 for t, r in enumerate(readings) if not r.checked]})


def _flow_frame(frame: np.ndarray, long_side: Optional[int]) -> np.ndarray:
    """The frame downscaled (area averaging) so its long side is at most `long_side`:
    at 960x540 the flow costs a quarter and Pi moves by about 0.1% (parascale bench)."""
    h, w = frame.shape
    if long_side is None or max(h, w) <= long_side:
        return frame
    import cv2

    scale = long_side / max(h, w)
    size = (max(2, int(round(w * scale))), max(2, int(round(h * scale))))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


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
        meta = {**{k: v for k, v in ref.meta.items() if k != "coverage"},  # per old step
                "resampled_from": len(times)}
        px = ref.pixel_shares()
        if px is not None:  # each new step takes the shares of the old step its middle falls in
            mid = 0.5 * (new_times[1:] + new_times[:-1])
            at = np.clip(np.searchsorted(times, mid, side="right") - 1, 0, len(ref.pi) - 1)
            meta["pixels"] = {k: [v[j] for j in at] for k, v in px.items()}
        out = ReferencePi("video", ref.estimator, pi, np.linalg.norm(d, axis=1), new_times,
                          list(new_track.names), meta=meta)
        return out, new_track
    if ref.source == "points":
        return pi_from_points(new_track, ref.estimator), new_track
    if ref.source == "depth":
        return pi_from_depths(new_track, ref.estimator), new_track
    raise ValueError(f"a {ref.source!r} reference is resampled by re-measuring its scene at the new times")
