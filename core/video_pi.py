"""Pi of one video step from its optical flow, checked against the track
(docs/estimators.md, "Reading Pi from a video").

The flow of frame t-1 -> t is derotated with the track's rotations (every end point
mapped back through the rotation-only homography into frame t-1's orientation), so what
remains at each pixel is the image motion of the step's translation, the quantity the
target's `exact` estimator averages. A static point moves along its epipolar direction
e_p = (x u_z - u_x, y u_z - u_y) (u: the unit translation in camera t-1), away from the
focus of expansion; its motion is the component of the derotated flow along e_p. Pixels
are then sorted:

- kept: static geometry measured by the flow; their own motion counts.
- filled: their flow contradicts the track (a perpendicular epipolar residual above the
  step's noise, or motion against the epipolar direction: moving people and cars,
  occlusion edges, flow failures); they count with the motion the static geometry
  around them implies (1/Z of a plane is affine in the image: an affine inverse-depth
  fit on a ring of kept pixels around each such region).
- rejected: contradicting pixels with no static geometry around them; not counted.
- infinity: pixels at infinity, not counted (the target's empty background):
  low-texture regions whose images the camera's rotation alone explains as well as the
  flow does (a sky), and textured pixels whose local mean motion is below 3% of the
  step's typical motion (clouds, far mountains).

Pi = mean motion over kept and filled pixels. The contradiction threshold follows the
step's own residual scale, so a recovered track a little off does not read as
contradiction everywhere. Without a translation (a still or rotating camera) nothing can be
checked, and the mean derotated magnitude over the pixels not at infinity is Pi.

numpy + OpenCV (imported in the functions), never bpy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Flat: the smallest eigenvalue of the structure tensor over TEXTURE_WINDOW px (grey
# levels^2 / px^2) below TEXTURE_MIN: no 2-D texture at all (a plain or graded sky, a blank
# wall); the flow there is its own interpolation. Weak texture above it is measured.
TEXTURE_WINDOW = 5
TEXTURE_MIN = 0.05
# Contradiction: the perpendicular epipolar residual (px of the flow grid) above
# max(EPIPOLAR_PX, NOISE_K x the step's robust residual scale, EPIPOLAR_SHARE x the motion),
# or a motion against the epipolar direction beyond the same floor.
EPIPOLAR_PX = 0.75
EPIPOLAR_SHARE = 0.15
NOISE_K = 3.0
BACKWARD_PX = 0.5
GROW_PX = 3              # contradicting regions grow by this (the flow blurs motion edges)
# At infinity: textured pixels whose local mean motion (window INFINITY_WINDOW x the long
# side) is below INFINITY_SHARE x the step's median motion.
INFINITY_SHARE = 0.03
INFINITY_WINDOW = 0.05
# Flat regions that touch the frame's edge (a sky goes on beyond the frame; a flat patch
# enclosed by geometry is a surface) and cover at least SKY_MIN_AREA of it are at infinity when
# the rotation-only warp matches at most SKY_MARGIN x the flow's warp + SKY_FLOOR (grey^2, about
# 8-bit and compression noise), on images blurred by SKY_BLUR px, the worst (1 - SKY_TRIM) of
# the region's pixels left out (occlusion edges).
SKY_MIN_AREA = 0.002
SKY_MARGIN = 2.0
SKY_FLOOR = 0.25
SKY_BLUR = 1.5
SKY_TRIM = 0.9
FILL_RING_PX = 7
FILL_MIN_AREA = 0.001   # smaller holes keep the pyramid fill (a local average)
# Fewer kept pixels than this share of the measured ones: the track and the flow disagree
# on most of the frame, nothing can be told apart, and the step falls back to the mean
# derotated magnitude (reported as unchecked).
MIN_CHECKED = 0.25


@dataclass
class StepReading:
    """One step's Pi and the shares of the frame by class (kept + filled + rejected +
    infinity = 1). checked: False when the step fell back to the unchecked mean."""

    pi: float
    kept: float
    filled: float
    rejected: float
    infinity: float
    checked: bool = True

    @property
    def counted(self) -> float:
        """Share of the frame whose motion counts in Pi (kept + filled)."""
        return self.kept + self.filled

    def as_dict(self) -> dict:
        return asdict(self)


def texture(img: np.ndarray, window: int = TEXTURE_WINDOW) -> np.ndarray:
    """Smallest eigenvalue of the structure tensor over window x window (grey^2/px^2)."""
    import cv2

    g = img.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) * 0.125
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) * 0.125
    ixx = cv2.boxFilter(gx * gx, -1, (window, window))
    iyy = cv2.boxFilter(gy * gy, -1, (window, window))
    ixy = cv2.boxFilter(gx * gy, -1, (window, window))
    half = 0.5 * (ixx + iyy)
    return half - np.sqrt(np.maximum(half * half - (ixx * iyy - ixy * ixy), 0.0))


def _grid(K: np.ndarray, w: int, h: int):
    xs = (np.arange(w) + 0.5 - K[0, 2]) / K[0, 0]
    ys = (np.arange(h) + 0.5 - K[1, 2]) / K[1, 1]
    return np.meshgrid(xs, ys)


def _apply_h(H: np.ndarray, X: np.ndarray, Y: np.ndarray):
    w = H[2, 0] * X + H[2, 1] * Y + H[2, 2]
    return (H[0, 0] * X + H[0, 1] * Y + H[0, 2]) / w, (H[1, 0] * X + H[1, 1] * Y + H[1, 2]) / w, w


def derotated_flow(flow: np.ndarray, K_prev, K_cur, R_prev, R_cur):
    """The translation-induced motion (normalised units of frame t-1) at each pixel: the
    flow's end point mapped back through the rotation-only homography, minus the pixel."""
    h, w = flow.shape[:2]
    X, Y = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    back = K_prev @ R_prev.T @ R_cur @ np.linalg.inv(K_cur)   # frame t pixels -> frame t-1, rotation only
    px, py, _ = _apply_h(back, X + flow[..., 0], Y + flow[..., 1])
    return (px - X) / K_prev[0, 0], (py - Y) / K_prev[1, 1]


def epipolar_components(rx, ry, x, y, u):
    """(along, across, a): the motion along the static-point direction e_p of unit
    translation u, the perpendicular residual, and |e_p| (the exact estimator's a)."""
    ex, ey = x * u[2] - u[0], y * u[2] - u[1]
    a = np.hypot(ex, ey)
    with np.errstate(invalid="ignore", divide="ignore"):
        ex = np.where(a > 0, ex / a, 0.0)
        ey = np.where(a > 0, ey / a, 0.0)
    return rx * ex + ry * ey, rx * ey - ry * ex, a


def sky_regions(prev, cur, flow, H, textured, *, min_area=SKY_MIN_AREA, margin=SKY_MARGIN, floor=SKY_FLOOR,
                blur=SKY_BLUR, trim=SKY_TRIM) -> np.ndarray:
    """(h, w) bool: flat regions at infinity. A flat region touching the frame's edge is at
    infinity when the camera's rotation alone (homography H, frame t-1 -> t) warps frame t
    onto frame t-1 about as well as the flow does: its images carry no parallax. A plain
    region with no shading at all cannot tell and is taken as at infinity."""
    import cv2

    h, w = prev.shape
    nl, lab, stats, _ = cv2.connectedComponentsWithStats((~textured).astype(np.uint8), connectivity=8)
    x0, y0 = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    edge = (x0 == 0) | (y0 == 0) | (x0 + stats[:, cv2.CC_STAT_WIDTH] == w) | (y0 + stats[:, cv2.CC_STAT_HEIGHT] == h)
    big = [i for i in range(1, nl) if stats[i, cv2.CC_STAT_AREA] >= min_area * h * w and edge[i]]
    if not big:
        return np.zeros((h, w), bool)
    X, Y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    hx, hy, _ = _apply_h(H, X + 0.5, Y + 0.5)
    p = cv2.GaussianBlur(prev, (0, 0), blur).astype(np.float32)
    c = cv2.GaussianBlur(cur, (0, 0), blur).astype(np.float32)
    e_rot = (cv2.remap(c, (hx - 0.5).astype(np.float32), (hy - 0.5).astype(np.float32), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE) - p) ** 2
    e_flow = (cv2.remap(c, X + flow[..., 0], Y + flow[..., 1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE) - p) ** 2
    at_inf = np.zeros(nl, bool)
    for i in big:
        r = lab == i
        er, ef = np.sort(e_rot[r]), np.sort(e_flow[r])
        k = max(1, int(trim * len(er)))
        at_inf[i] = er[:k].mean() <= margin * ef[:k].mean() + floor
    return at_inf[lab]


def push_pull(value: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted local average of `value` everywhere (weights >= 0, at most 1): a pyramid
    fills each pixel from the finest level where weight is present."""
    import cv2

    v = (value * weight).astype(np.float32)
    w = weight.astype(np.float32)
    levels = [(v, w)]
    while min(levels[-1][0].shape) > 2:
        v, w = cv2.pyrDown(v), cv2.pyrDown(w)
        levels.append((v, w))
    v, w = levels[-1]
    est = np.where(w > 1e-6, v / np.maximum(w, 1e-6), 0.0).astype(np.float32)
    for v, w in reversed(levels[:-1]):
        up = cv2.resize(est, (v.shape[1], v.shape[0]), interpolation=cv2.INTER_LINEAR)
        own = np.where(w > 1e-6, v / np.maximum(w, 1e-6), 0.0)
        trust = np.clip(w, 0.0, 1.0)
        est = (trust * own + (1 - trust) * up).astype(np.float32)
    return est


def affine_fill(lam, weight, kept, holes, x, y, fallback, ring: int = FILL_RING_PX, min_ring: int = 30):
    """lam (motion per unit |e_p|, an inverse depth) in each connected hole, enclosed
    islands included: a robust weighted affine fit lam = c0 + c1 x + c2 y on the kept
    pixels of a ring around it, clipped to the ring's range. Holes too small or with too
    thin a ring keep `fallback`."""
    import cv2

    out = np.array(fallback, np.float32)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    H, W = holes.shape
    min_area = max(20, int(FILL_MIN_AREA * H * W))
    for i in range(1, n):
        x0, y0, w, h, area = stats[i]
        if area < min_area:
            continue
        x0, y0, x1, y1 = max(0, x0 - ring - 1), max(0, y0 - ring - 1), min(W, x0 + w + ring + 1), min(H, y0 + h + ring + 1)
        comp = lab[y0:y1, x0:x1] == i
        outside = np.pad((~comp).astype(np.uint8), 1, constant_values=1)
        cv2.floodFill(outside, None, (0, 0), 2)
        solid = comp | (outside[1:-1, 1:-1] == 1)   # the hole with the islands it encloses
        rg = (cv2.dilate(solid.astype(np.uint8), kernel) > 0) & ~solid & kept[y0:y1, x0:x1]
        if rg.sum() < min_ring:
            continue
        xs, ys = x[y0:y1, x0:x1], y[y0:y1, x0:x1]
        A = np.stack([np.ones(rg.sum()), xs[rg], ys[rg]], 1)
        w0 = weight[y0:y1, x0:x1][rg]
        lv = lam[y0:y1, x0:x1][rg]
        med = float(np.median(lv))
        wv = w0 * ((lv > 0.5 * med) & (lv < 2.0 * med)) if med > 0 else w0
        coef = np.array([med, 0.0, 0.0])
        for _ in range(4):
            if np.count_nonzero(wv) < 10:
                break
            Aw = A * wv[:, None]
            coef = np.linalg.solve(Aw.T @ A + 1e-9 * np.eye(3), Aw.T @ lv)
            res = lv - A @ coef
            s = 1.4826 * float(np.median(np.abs(res[wv > 0]))) + 1e-12
            wv = w0 * (np.abs(res) < 3 * s)
        inliers = lv[wv > 0] if np.count_nonzero(wv) >= 10 else lv
        lo, hi = np.quantile(inliers, [0.02, 0.98])
        sub = out[y0:y1, x0:x1]
        sub[comp] = np.clip(coef[0] + coef[1] * xs[comp] + coef[2] * ys[comp], lo, hi)
    return out


def read_step(prev: np.ndarray, cur: np.ndarray, flow: np.ndarray, K_prev: np.ndarray, K_cur: np.ndarray,
              R_prev: np.ndarray, R_cur: np.ndarray, d: np.ndarray, *, diagnostics: dict = None) -> StepReading:
    """Pi of one step (frame t-1 `prev` -> t `cur`, uint8 grayscale on the flow's grid;
    `flow` (h, w, 2) in pixels) against the track: K on this grid, R camera-to-world, d
    the step's translation in camera t-1 (its length does not matter). `diagnostics`, a
    dict, receives the per-pixel maps (for tests and figures)."""
    import cv2

    h, w = prev.shape
    f = 0.5 * (K_prev[0, 0] + K_prev[1, 1])
    x, y = _grid(K_prev, w, h)
    rx, ry = derotated_flow(flow, K_prev, K_cur, R_prev, R_cur)
    textured = texture(prev) >= TEXTURE_MIN
    H = K_cur @ R_cur.T @ R_prev @ np.linalg.inv(K_prev)
    sky = sky_regions(prev, cur, flow, H, textured)
    measured = ~sky
    length = float(np.linalg.norm(d))
    u = np.asarray(d, float) / length if length > 0 else None
    if u is None:  # no translation: nothing to check against, the derotated magnitude is all there is
        m = np.hypot(rx, ry)
        contradict = np.zeros((h, w), bool)
        a = np.ones((h, w))
    else:
        m, eps, a = epipolar_components(rx, ry, x, y, u)
        m_px, eps_px = m * f, np.abs(eps) * f
        ref = textured & measured
        noise = 1.4826 * float(np.median(eps_px[ref])) if ref.any() else 0.0
        floor = max(EPIPOLAR_PX, NOISE_K * noise)
        contradict = measured & ((eps_px > np.maximum(floor, EPIPOLAR_SHARE * np.abs(m_px)))
                                 | (m_px < -max(BACKWARD_PX, NOISE_K * noise)))
        if GROW_PX > 0 and contradict.any():
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * GROW_PX + 1, 2 * GROW_PX + 1))
            contradict = (cv2.dilate(contradict.astype(np.uint8), k) > 0) & measured
    static = measured & ~contradict
    # textured pixels whose neighbourhood does not move: at infinity
    k = max(3, int(round(INFINITY_WINDOW * max(h, w))) | 1)
    share = cv2.boxFilter(static.astype(np.float32), -1, (k, k))
    total = cv2.boxFilter(np.where(static, m, 0).astype(np.float32), -1, (k, k))
    local = np.where(share > 0, total / np.maximum(share, 1e-6), 0.0)
    typical = float(np.median(m[static])) if static.any() else 0.0
    far = static & (local < INFINITY_SHARE * typical)
    kept = static & ~far
    filled = np.zeros((h, w), bool)
    motion = m
    if kept.any() and contradict.any():
        known = kept | far | sky
        geometry = push_pull(kept.astype(np.float32), known.astype(np.float32))
        wt = np.where(kept, a * a, 0.0).astype(np.float32)
        wt /= max(float(wt.max()), 1e-12)
        lam = np.where(kept, m / np.maximum(a, 1e-12), 0.0).astype(np.float32)
        filled = contradict & (geometry > 0.5)
        lam_fill = affine_fill(lam, wt, kept, filled, x, y, fallback=push_pull(lam, wt))
        motion = np.where(filled, lam_fill * a, m)
    n_measured = np.count_nonzero(measured)
    checked = u is None or np.count_nonzero(kept) >= MIN_CHECKED * max(n_measured, 1)
    if not checked:  # track and flow disagree on most pixels: the unchecked mean
        counted = measured & ~far
        pi = float(np.hypot(rx, ry)[counted].mean()) if counted.any() else 0.0
        kept, filled = counted, np.zeros((h, w), bool)
    else:
        counted = kept | filled
        pi = float(motion[counted].mean()) if counted.any() else 0.0
    n = float(h * w)
    infinity = np.count_nonzero(sky | far) / n
    out = StepReading(pi=max(pi, 0.0), kept=np.count_nonzero(kept) / n, filled=np.count_nonzero(filled) / n,
                      rejected=0.0, infinity=infinity, checked=bool(checked))
    out.rejected = max(0.0, 1.0 - out.kept - out.filled - out.infinity)
    if diagnostics is not None:
        diagnostics.update(kept=kept, filled=filled, sky=sky, far=far, contradict=contradict, motion=motion,
                           textured=textured, u=u)
    return out
