"""Optical flow that knows when it cannot measure (docs/metrics.md, "Evaluate by rendering").

The realised Pi of a rendered move is the mean translation-induced image motion over the
pixels that see geometry (the coverage rule, docs/real-scenes.md), read from dense DIS
flow minus the rotation-only flow of the camera's own rotation. Flow is only evidence
where it can be: a pixel counts when all of these hold.

- covered: it sees geometry in frame t-1 (the render's alpha), at least `silhouette`
  pixels inside the covered region (flow smears across an object's outline), and its
  match in frame t lands on geometry too (otherwise it was occluded by background);
- consistent: forward and backward flow agree, |F(x) + B(x + F(x))|^2 <
  fb_alpha (|F|^2 + |B|^2) + fb_beta (Sundaram et al. 2010): occlusions and flow failures;
- textured: the smaller eigenvalue of the local structure tensor is above what the
  image's own noise gives (Immerkaer's estimate, scaled by a simulated noise image) and
  above `texture_min`: on a white wall flow is interpolated, not measured, and on a noisy
  low-sample render the noise is a still pattern that drags flow towards zero;
- resolvable: its motion is at most `max_motion` of the long side and its match stays
  in the image (DIS's pyramid does not follow larger steps at this resolution).

A step is measurable when at least `min_trusted` of its covered pixels (and `min_pixels`
pixels) are trusted. Its Pi is then the mean over every covered pixel (the calibration's
rule), not over the trusted ones alone: flow fails where motion is hard to read (smooth
near surfaces, fast near objects), so the trusted pixels lean to what is far, textured and
slow, and their mean reads low (measured on four scenes, docs/metrics.md: the covered mean
within 0.02-0.08 of geometry, the trusted mean 0.02-0.10). The trust test decides whether
the step can be read at all; otherwise it is not measured (nan), and the caller says so
instead of scoring it. `pi_trusted` keeps the trusted mean for diagnosis.

numpy and OpenCV (imported inside the functions); never bpy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .reference import DEFAULT_BORDER, DEFAULT_PRESET, dis_flow, residual_field, rotation_homography

REASONS = ("silhouette", "occluded", "inconsistent", "texture", "range")


@dataclass(frozen=True)
class TrustSettings:
    fb_alpha: float = 0.01       # forward-backward tolerance, relative to the motion ...
    fb_beta: float = 0.5         # ... and absolute (px^2)
    texture_blur: float = 1.0    # Gaussian sigma (px) before the structure tensor
    texture_block: int = 5       # structure tensor window (px)
    texture_min: float = 0.1     # smallest eigenvalue a pixel needs whatever the noise (OpenCV's scale)
    noise_factor: float = 2.0    # ... and this many times the 99th percentile that noise alone gives
    texture_reach: int = 8       # a pixel this close (px) to texture is held by it (DIS matches patches)
    silhouette: int = 0          # pixels dropped inside the outline of what is covered
    max_motion: float = 0.07     # largest motion flow is trusted with, share of the long side (DIS medium
                                 # follows 0.07 at 256-540 px and fails from 0.08-0.1: tests/core/test_flow_trust.py)
    border: float = DEFAULT_BORDER
    min_trusted: float = 0.7     # share of the covered pixels a measurable step needs trusted
    min_pixels: int = 100        # and at least this many pixels
    preset: str = DEFAULT_PRESET
    derotate: bool = True        # warp frame t-1 by the rotation first: the flow then follows the
                                 # translation alone (smaller steps, which DIS resolves better)


DEFAULT_TRUST = TrustSettings()


@dataclass
class StepReading:
    """One step's flow reading. Fractions of pixels inside the border: coverage (see
    geometry), used (trusted: what the Pi was read over); trusted is used / coverage."""

    pi: float                    # mean over the covered pixels when measurable, else nan
    pi_frame: float              # whole frame, background as it flows (the old figure)
    pi_covered: float            # mean over the covered pixels, measurable or not
    coverage: float
    used: float
    trusted: float
    measurable: bool
    reasons: dict = field(default_factory=dict)  # share of covered pixels failing each check
    pi_trusted: float = float("nan")  # mean over the trusted pixels alone (diagnostic: biased, see above)

    def to_json(self) -> dict:
        out = asdict(self)
        for k in ("pi", "pi_frame", "pi_covered", "pi_trusted"):
            out[k] = None if not np.isfinite(out[k]) else float(out[k])
        return out


def noise_sigma(gray: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """Standard deviation of the image's pixel noise (grey levels), Immerkaer's Laplacian
    difference operator with a median (robust to the texture's own edges)."""
    import cv2

    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    response = np.abs(cv2.filter2D(gray.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT))
    values = response[mask] if mask is not None else response.reshape(-1)
    if values.size == 0:
        return 0.0
    return float(np.median(values) / (0.6745 * 6.0))  # |L| of N(0, s) noise is half-normal with scale 6 s


_NOISE_LAMBDA: dict = {}


def _noise_lambda(settings: TrustSettings) -> float:
    """The 99th percentile of the structure tensor's smaller eigenvalue on unit-sigma
    Gaussian noise, through the same blur and window (scales with sigma^2)."""
    import cv2

    key = (settings.texture_blur, settings.texture_block)
    if key not in _NOISE_LAMBDA:
        noise = np.random.default_rng(0).normal(0.0, 1.0, (256, 256)).astype(np.float32)
        lam = _min_eigen(noise, settings)
        _NOISE_LAMBDA[key] = float(np.percentile(lam[8:-8, 8:-8], 99))
    return _NOISE_LAMBDA[key]


def _min_eigen(gray: np.ndarray, settings: TrustSettings) -> np.ndarray:
    import cv2

    g = gray.astype(np.float32)
    if settings.texture_blur > 0:
        g = cv2.GaussianBlur(g, (0, 0), settings.texture_blur)
    return cv2.cornerMinEigenVal(g, settings.texture_block, ksize=3)


def texture_mask(gray: np.ndarray, covered: Optional[np.ndarray] = None,
                 settings: TrustSettings = DEFAULT_TRUST) -> tuple[np.ndarray, float]:
    """Pixels with enough texture for flow to be measured there, and the threshold used
    (above texture_min and above what the image's own noise gives)."""
    import cv2

    sigma = noise_sigma(gray, covered)
    threshold = max(settings.texture_min, settings.noise_factor * _noise_lambda(settings) * sigma * sigma)
    textured = _min_eigen(gray, settings) > threshold
    if settings.texture_reach > 0:
        k = 2 * settings.texture_reach + 1
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        textured = cv2.dilate(textured.astype(np.uint8), disk) > 0
    return textured, threshold


def forward_backward(forward: np.ndarray, backward: np.ndarray, settings: TrustSettings = DEFAULT_TRUST):
    """(consistent, match_x, match_y): where forward and backward flow agree, and where
    each pixel's forward match lands (pixel-index coordinates)."""
    import cv2

    h, w = forward.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = xs + forward[..., 0], ys + forward[..., 1]
    back = cv2.remap(backward, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = ((forward + back) ** 2).sum(-1)
    size = (forward ** 2).sum(-1) + (back ** 2).sum(-1)
    return err < settings.fb_alpha * size + settings.fb_beta, mx, my


def measure_step(prev: np.ndarray, cur: np.ndarray, H: np.ndarray, K: np.ndarray,
                 covered_prev: Optional[np.ndarray] = None, covered_cur: Optional[np.ndarray] = None,
                 settings: TrustSettings = DEFAULT_TRUST, K_cur: Optional[np.ndarray] = None) -> StepReading:
    """Read one step (grayscale uint8 frames t-1 and t, H the rotation-only homography
    t-1 -> t, K of frame t-1 at this size, K_cur of frame t (default K); covered_*: bool
    masks of the pixels that see geometry, None: every pixel does).

    With settings.derotate, frame t-1 is first warped by H (what it would show after the
    rotation alone), so the flow between the warped frame and frame t is the translation's
    alone: its magnitude over frame t's focal lengths is the residual, pixel by pixel of the
    warped frame."""
    import cv2

    h, w = prev.shape
    K_cur = K if K_cur is None else K_cur
    valid = np.ones((h, w), bool)
    # texture and noise are the render's own: measured before any warp (interpolation
    # averages the noise down and would let it pass for texture)
    textured, _ = texture_mask(prev, covered_prev, settings)
    if settings.derotate:
        warp = lambda im, interp: cv2.warpPerspective(im, H, (w, h), flags=interp,  # noqa: E731
                                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        valid = warp(np.ones((h, w), np.uint8), cv2.INTER_NEAREST) > 0
        valid = cv2.erode(valid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        prev = warp(prev, cv2.INTER_LINEAR)
        textured = warp(textured.astype(np.uint8), cv2.INTER_NEAREST) > 0
        if covered_prev is not None:
            covered_prev = warp(covered_prev.astype(np.uint8), cv2.INTER_NEAREST) > 0
        forward = dis_flow(prev, cur, settings.preset)
        backward = dis_flow(cur, prev, settings.preset)
        mag = np.hypot(forward[..., 0] / K_cur[0, 0], forward[..., 1] / K_cur[1, 1]).astype(np.float64)
    else:
        forward = dis_flow(prev, cur, settings.preset)
        backward = dis_flow(cur, prev, settings.preset)
        mag = residual_field(forward, H, K)
    consistent, mx, my = forward_backward(forward, backward, settings)

    frame = np.zeros((h, w), bool)
    b = int(round(settings.border * min(h, w)))
    frame[b:h - b, b:w - b] = True
    frame &= valid
    stays = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1) & np.isfinite(mag)
    covered = frame if covered_prev is None else (covered_prev & frame)
    n_frame = int(frame.sum())
    n_cov = int(covered.sum())
    whole = frame & stays
    pi_frame = float(mag[whole].mean()) if whole.any() else float("nan")
    if n_cov == 0:
        return StepReading(float("nan"), pi_frame, float("nan"), 0.0, 0.0, 0.0, False,
                           {r: 0.0 for r in REASONS})

    core = covered
    if covered_prev is not None and settings.silhouette > 0:
        k = 2 * settings.silhouette + 1
        core = cv2.erode(covered_prev.astype(np.uint8), np.ones((k, k), np.uint8),
                         borderType=cv2.BORDER_CONSTANT, borderValue=1) > 0
        core &= covered
    lands = np.ones((h, w), bool)
    if covered_cur is not None:
        landed = cv2.remap(covered_cur.astype(np.float32), mx, my, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        lands = landed > 0.5
    resolvable = stays & (np.hypot(forward[..., 0], forward[..., 1]) <= settings.max_motion * max(h, w))

    trusted = core & lands & consistent & textured & resolvable
    n_trusted = int(trusted.sum())
    share = lambda m: float((covered & ~m).sum()) / n_cov  # noqa: E731
    reasons = {"silhouette": share(core), "occluded": share(lands), "inconsistent": share(consistent),
               "texture": share(textured), "range": share(resolvable)}
    pi_covered_mask = covered & stays
    pi_covered = float(mag[pi_covered_mask].mean()) if pi_covered_mask.any() else float("nan")
    frac = n_trusted / n_cov
    measurable = frac >= settings.min_trusted and n_trusted >= settings.min_pixels
    pi_trusted = float(mag[trusted].mean()) if n_trusted else float("nan")
    pi = pi_covered if measurable else float("nan")
    return StepReading(pi, pi_frame, pi_covered, n_cov / n_frame, n_trusted / n_frame, frac, measurable, reasons,
                       pi_trusted)


def measure_steps(frames: Sequence[np.ndarray], K: np.ndarray, R: np.ndarray,
                  covered: Optional[Sequence[np.ndarray]] = None, settings: TrustSettings = DEFAULT_TRUST,
                  progress: Optional[Callable[[int, int], None]] = None) -> list:
    """StepReading of every step of a rendered move: frames (N grayscale uint8), K (N, 3, 3)
    at the frames' size, R (N, 3, 3) camera-to-world rotations, covered (N bool masks)."""
    readings = []
    n = len(frames)
    for t in range(1, n):
        H = rotation_homography(K[t - 1], K[t], R[t - 1], R[t])
        cov_prev = None if covered is None else covered[t - 1]
        cov_cur = None if covered is None else covered[t]
        readings.append(measure_step(frames[t - 1], frames[t], H, K[t - 1], cov_prev, cov_cur, settings, K[t]))
        if progress is not None:
            progress(t, n - 1)
    return readings


def summary(readings: Sequence[StepReading], settings: TrustSettings = DEFAULT_TRUST) -> dict:
    """What a run of steps says as a whole: measurable when at least half its steps are;
    the median share of covered pixels trusted and of the frame used."""
    measurable = [r.measurable for r in readings]
    trusted = [r.trusted for r in readings if np.isfinite(r.trusted)]
    return {"measurable": bool(readings) and sum(measurable) * 2 >= len(readings),
            "steps_measurable": int(sum(measurable)), "steps": len(readings),
            "trusted": float(np.median(trusted)) if trusted else 0.0,
            "used": float(np.median([r.used for r in readings])) if readings else 0.0,
            "coverage": float(np.median([r.coverage for r in readings])) if readings else 0.0,
            "min_trusted": settings.min_trusted}
