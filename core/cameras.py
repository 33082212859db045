"""Camera conventions shared by every module (docs/conventions.md).

Poses are camera-to-world 4x4 matrices in OpenCV camera axes (x right, y down,
z forward). Intrinsics are pixel matrices K at an image of W x H pixels whose
pixel (0, 0) is the top-left corner and whose pixel centres sit at +0.5.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from .rotations import continuous_quats, matrix_from_quat, quat_from_matrix, slerp

# Blender camera axes are (x right, y up, z backward); this flips y and z. It is its
# own inverse, so the same matrix converts both ways.
BLENDER_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


class TrackError(ValueError):
    """A track that does not hold together (shapes, non-finite values, rotations)."""


def blender_to_cv(matrix_world: np.ndarray) -> np.ndarray:
    """Blender camera matrix_world (..., 4, 4), unit scale -> OpenCV c2w."""
    return np.asarray(matrix_world, float) @ BLENDER_TO_CV


def cv_to_blender(c2w: np.ndarray) -> np.ndarray:
    """OpenCV c2w (..., 4, 4) -> Blender camera matrix_world."""
    return np.asarray(c2w, float) @ BLENDER_TO_CV


def make_c2w(R: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Stack rotations (N, 3, 3) and centres (N, 3) into c2w (N, 4, 4)."""
    R = np.asarray(R, float)
    centers = np.asarray(centers, float)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = centers
    out[..., 3, 3] = 1.0
    return out


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """c2w (OpenCV axes) of a camera at `eye` looking at `target`, `up` roughly up."""
    eye, target, up = (np.asarray(v, float) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    return make_c2w(np.stack([x, np.cross(z, x), z], axis=1), eye)


def invert_poses(T: np.ndarray) -> np.ndarray:
    """Invert rigid transforms (..., 4, 4) exactly (R^T, -R^T t)."""
    T = np.asarray(T, float)
    Rt = np.swapaxes(T[..., :3, :3], -1, -2)
    return make_c2w(Rt, -np.einsum("...ij,...j->...i", Rt, T[..., :3, 3]))


def relative_poses(c2w: np.ndarray, reference_index: int = 0) -> np.ndarray:
    """Poses relative to one frame: that frame becomes the identity."""
    c2w = np.asarray(c2w, float)
    return invert_poses(c2w[reference_index])[None] @ c2w


def steps(c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step t (frame t-1 -> t): translation in the camera frame of t-1,
    d_t = R_{t-1}^T (c_t - c_{t-1}), and relative rotation dR_t = R_{t-1}^T R_t."""
    c2w = np.asarray(c2w, float)
    R = c2w[:, :3, :3]
    c = c2w[:, :3, 3]
    Rprev_T = np.swapaxes(R[:-1], -1, -2)
    d = np.einsum("nij,nj->ni", Rprev_T, c[1:] - c[:-1])
    dR = Rprev_T @ R[1:]
    return d, dR


@dataclass
class Track:
    """A camera track: what every reader produces and every writer consumes.

    c2w: (N, 4, 4) camera-to-world, OpenCV axes. K: (N, 3, 3) pixel intrinsics at
    width x height. times: (N,) seconds. names: per-frame labels (image names).
    points: optional (P, 3) world points; visibility: optional per-frame arrays of
    point indices seen in that frame. depths: optional (N, h, w) planar depth in
    track units (background +inf). distortion: model name and coefficients, kept
    for the record (poses and K are pinhole).
    """

    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int
    times: np.ndarray
    names: list = field(default_factory=list)
    points: Optional[np.ndarray] = None
    visibility: Optional[list] = None
    depths: Optional[np.ndarray] = None
    distortion: dict = field(default_factory=dict)
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.c2w = np.asarray(self.c2w, float)
        n = len(self.c2w)
        K = np.asarray(self.K, float)
        if K.shape == (3, 3):
            K = np.repeat(K[None], n, axis=0)
        self.K = K
        self.times = np.asarray(self.times, float) if self.times is not None else np.arange(n, dtype=float)
        if not self.names:
            self.names = [str(i) for i in range(n)]
        self.validate()

    def __len__(self) -> int:
        return len(self.c2w)

    def validate(self) -> None:
        n = len(self.c2w)
        where = f" ({self.source})" if self.source else ""
        if self.c2w.ndim != 3 or self.c2w.shape[1:] != (4, 4):
            raise TrackError(f"track{where}: poses must be (N, 4, 4), got {self.c2w.shape}")
        if n == 0:
            raise TrackError(f"track{where}: no frames")
        if self.K.shape != (n, 3, 3):
            raise TrackError(f"track{where}: intrinsics must be (N, 3, 3) for N={n}, got {self.K.shape}")
        if self.times.shape != (n,):
            raise TrackError(f"track{where}: need one frame time per pose ({n}), got {self.times.shape}")
        if len(self.names) != n:
            raise TrackError(f"track{where}: need one name per pose ({n}), got {len(self.names)}")
        for label, arr in (("pose", self.c2w), ("intrinsics", self.K), ("frame time", self.times)):
            bad = ~np.isfinite(arr.reshape(n, -1)).all(axis=1)
            if bad.any():
                i = int(np.argmax(bad))
                raise TrackError(f"track{where}: {label} of frame {i} ({self.names[i]}) is not finite")
        from .rotations import is_rotation
        ok = is_rotation(self.c2w[:, :3, :3])
        if not ok.all():
            i = int(np.argmin(ok))
            raise TrackError(f"track{where}: pose of frame {i} ({self.names[i]}) is not a rotation "
                             "(expected an orthonormal 3x3 block with determinant +1)")
        if not (self.width > 0 and self.height > 0):
            raise TrackError(f"track{where}: image size must be positive, got {self.width}x{self.height}")
        if n > 1 and np.any(np.diff(self.times) <= 0):
            i = int(np.argmax(np.diff(self.times) <= 0)) + 1
            raise TrackError(f"track{where}: frame times must increase; frame {i} ({self.names[i]}) does not")
        if self.depths is not None and len(self.depths) != n:
            raise TrackError(f"track{where}: {len(self.depths)} depth maps for {n} poses")

    @property
    def centers(self) -> np.ndarray:
        return self.c2w[:, :3, 3]

    @property
    def rotations(self) -> np.ndarray:
        return self.c2w[:, :3, :3]

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        return steps(self.c2w)

    def subset(self, index) -> "Track":
        """Frames picked by a slice or index array (points are kept)."""
        idx = np.arange(len(self))[index]
        return replace(
            self, c2w=self.c2w[idx], K=self.K[idx], times=self.times[idx],
            names=[self.names[i] for i in idx],
            visibility=[self.visibility[i] for i in idx] if self.visibility is not None else None,
            depths=self.depths[idx] if self.depths is not None else None)


def resample_poses(c2w: np.ndarray, times: np.ndarray, new_times: np.ndarray) -> np.ndarray:
    """Poses at new_times: centres linear, rotations slerped; clamped at the ends."""
    c2w = np.asarray(c2w, float)
    times = np.asarray(times, float)
    new_times = np.clip(np.asarray(new_times, float), times[0], times[-1])
    if len(times) == 1:
        return np.repeat(c2w[:1], len(new_times), axis=0)
    i = np.clip(np.searchsorted(times, new_times, side="right") - 1, 0, len(times) - 2)
    frac = (new_times - times[i]) / (times[i + 1] - times[i])
    q = continuous_quats(quat_from_matrix(c2w[:, :3, :3]))
    R = matrix_from_quat(slerp(q[i], q[i + 1], frac))
    c = c2w[i, :3, 3] * (1 - frac)[:, None] + c2w[i + 1, :3, 3] * frac[:, None]
    return make_c2w(R, c)


def resample_track(track: Track, new_times: np.ndarray) -> Track:
    """The track at other frame times (for example the target's frame rate).
    Points are kept; per-frame visibility and depth maps come from the nearest frame."""
    new_times = np.asarray(new_times, float)
    times = track.times
    c2w = resample_poses(track.c2w, times, new_times)
    if len(times) > 1:
        t = np.clip(new_times, times[0], times[-1])
        K = np.stack([[np.interp(t, times, track.K[:, r, c]) for c in range(3)] for r in range(3)])
        K = np.moveaxis(K, -1, 0)
    else:
        K = np.repeat(track.K[:1], len(new_times), axis=0)
    nearest = np.abs(new_times[:, None] - times[None, :]).argmin(axis=1)
    return replace(
        track, c2w=c2w, K=K, times=new_times,
        names=[f"{track.names[j]}@{t:.6g}" for j, t in zip(nearest, new_times)],
        visibility=[track.visibility[j] for j in nearest] if track.visibility is not None else None,
        depths=track.depths[nearest] if track.depths is not None else None)


# ---------------------------------------------------------------------------
# Blender camera parameters <-> pixel intrinsics (docs/conventions.md).

def fit_to_size(track: Track, width: int, height: int) -> Track:
    """The track as seen in a width x height image: its own image scaled to cover that
    size and cropped at the centre (how CameraCtrl, VideoX-Fun and the bridge treat an
    aspect mismatch). Poses unchanged; K scaled and its principal point moved."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise TrackError(f"image size {width}x{height}: both sides must be at least 1 pixel")
    if (width, height) == (track.width, track.height):
        return track
    s = max(width / track.width, height / track.height)
    K = np.array(track.K, float, copy=True)
    K[..., 0, 0] *= s
    K[..., 1, 1] *= s
    K[..., 0, 1] *= s
    K[..., 0, 2] = track.K[..., 0, 2] * s - (track.width * s - width) / 2
    K[..., 1, 2] = track.K[..., 1, 2] * s - (track.height * s - height) / 2
    return replace(track, K=K, width=width, height=height)


@dataclass
class BlenderCamera:
    """The Blender camera and render settings that fix the projection."""

    lens: float = 50.0
    sensor_width: float = 36.0
    sensor_height: float = 24.0
    sensor_fit: str = "AUTO"  # AUTO | HORIZONTAL | VERTICAL
    shift_x: float = 0.0
    shift_y: float = 0.0
    resolution_x: int = 1920
    resolution_y: int = 1080
    resolution_percentage: int = 100
    pixel_aspect_x: float = 1.0
    pixel_aspect_y: float = 1.0

    def image_size(self) -> tuple[int, int]:
        scale = self.resolution_percentage / 100.0
        return int(self.resolution_x * scale), int(self.resolution_y * scale)

    def effective_fit(self) -> str:
        W, H = self.image_size()
        if self.sensor_fit == "AUTO":
            return "HORIZONTAL" if W * self.pixel_aspect_x >= H * self.pixel_aspect_y else "VERTICAL"
        return self.sensor_fit

    def sensor_size(self) -> float:
        """The sensor dimension that spans the fitted image side. AUTO always uses
        sensor_width, for whichever side is longer (checked against Blender)."""
        if self.sensor_fit == "VERTICAL":
            return self.sensor_height
        return self.sensor_width

    def _view(self) -> float:
        W, H = self.image_size()
        if self.effective_fit() == "HORIZONTAL":
            return float(W)
        return H * self.pixel_aspect_y / self.pixel_aspect_x


def intrinsics_from_blender(cam: BlenderCamera) -> tuple[np.ndarray, int, int]:
    """K, W, H of a Blender camera as it renders (matches world_to_camera_view)."""
    W, H = cam.image_size()
    view = cam._view()
    aspect = cam.pixel_aspect_x / cam.pixel_aspect_y
    fx = cam.lens / cam.sensor_size() * view
    fy = fx * aspect
    cx = W / 2.0 - cam.shift_x * view
    cy = H / 2.0 + cam.shift_y * view * aspect
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return K, W, H


def blender_from_intrinsics(K: np.ndarray, width: int, height: int, *, sensor_fit: str = "AUTO",
                            sensor_width: float = 36.0, sensor_height: Optional[float] = None,
                            resolution_percentage: int = 100) -> BlenderCamera:
    """Blender parameters that render exactly K at width x height.

    The sensor fit and sensor size are free choices (they trade against the lens);
    pixel aspect comes from fy/fx with the smaller side at 1, as Blender expects.
    """
    K = np.asarray(K, float)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not (fx > 0 and fy > 0):
        raise ValueError(f"focal lengths must be positive, got fx={fx}, fy={fy}")
    ratio = fy / fx  # = pixel_aspect_x / pixel_aspect_y
    pax, pay = (ratio, 1.0) if ratio >= 1 else (1.0, 1.0 / ratio)
    if sensor_height is None:
        sensor_height = sensor_width * height / width
    scale = resolution_percentage / 100.0
    cam = BlenderCamera(sensor_width=sensor_width, sensor_height=sensor_height, sensor_fit=sensor_fit,
                        resolution_x=int(round(width / scale)), resolution_y=int(round(height / scale)),
                        resolution_percentage=resolution_percentage,
                        pixel_aspect_x=pax, pixel_aspect_y=pay)
    W, H = cam.image_size()
    if (W, H) != (int(width), int(height)):
        raise ValueError(f"{width}x{height} is not reachable at {resolution_percentage}%")
    view = cam._view()
    cam.lens = fx * cam.sensor_size() / view
    cam.shift_x = (W / 2.0 - cx) / view
    cam.shift_y = (cy - H / 2.0) / (view * ratio)
    return cam


def project(K: np.ndarray, c2w: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (P, 2) and planar depth (P,) of world points seen by one camera."""
    w2c = invert_poses(c2w)
    pc = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (pc[:, :2] / z[:, None]) * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    return uv, z
