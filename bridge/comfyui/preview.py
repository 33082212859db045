"""The camera path seen from above, as an RGB image in numpy (no drawing library).

Colours (documented in docs/comfyui.md):
  green  a step inside the generator's training range (Pi per step),
  red    a step faster than its training data (the frame it reaches gets a red dot),
  blue   a step slower than its training data (blue dot),
  grey   a step without translation (a hold or a pan: never out of range),
  white  the view direction (a tick every few frames), the start (ring) and end (dot);
  a red (blue) frame round the image when the whole path is longer (shorter) than the
  paths of the training data.
"""
from __future__ import annotations

import numpy as np

BACKGROUND = (0.11, 0.11, 0.12)
IN_RANGE = (0.30, 0.80, 0.40)
TOO_FAST = (0.95, 0.25, 0.20)
TOO_SLOW = (0.30, 0.55, 1.00)
STILL = (0.55, 0.55, 0.55)
VIEW = (0.85, 0.85, 0.85)
MARGIN = 0.1


def up_vector(m: dict) -> np.ndarray:
    """World up: +Z for a ParaScale export (Blender's world), else the cameras' mean up
    (-y of the OpenCV camera axes)."""
    if m.get("kind") == "parascale":
        return np.array([0.0, 0.0, 1.0])
    u = -m["c2w"][:, :3, 1].mean(axis=0)
    n = np.linalg.norm(u)
    return u / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])


def plane_basis(up: np.ndarray):
    """Two unit vectors spanning the ground plane: world x (or y) made perpendicular to up."""
    a = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = a - (a @ up) * up
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def _stamp(img, pts, radius, colour):
    """Discs of `radius` pixels at the float pixel positions pts (m, 2) = (x, y)."""
    size_y, size_x = img.shape[:2]
    r = max(0.5, float(radius))
    k = int(np.ceil(r))
    oy, ox = np.mgrid[-k:k + 1, -k:k + 1]
    keep = ox ** 2 + oy ** 2 <= r * r
    ox, oy = ox[keep], oy[keep]
    px = np.rint(pts[:, 0])[:, None].astype(np.int64) + ox[None]
    py = np.rint(pts[:, 1])[:, None].astype(np.int64) + oy[None]
    ok = (px >= 0) & (px < size_x) & (py >= 0) & (py < size_y)
    img[py[ok], px[ok]] = colour


def _line(img, a, b, width, colour):
    n = max(2, int(np.ceil(np.linalg.norm(np.subtract(b, a)) * 2)) + 1)
    t = np.linspace(0.0, 1.0, n)[:, None]
    _stamp(img, np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t, width / 2, colour)


def top_view(m: dict, size: int = 512) -> np.ndarray:
    """(size, size, 3) float32 in 0..1: the move `m` (camera.move) from above, north up,
    equal scale on both axes, steps coloured by the training-range check."""
    size = int(size)
    img = np.empty((size, size, 3), np.float32)
    img[:] = BACKGROUND
    c2w = m["c2w"]
    n = len(c2w)
    e1, e2 = plane_basis(up_vector(m))
    P = np.stack([c2w[:, :3, 3] @ e1, c2w[:, :3, 3] @ e2], 1)
    F = np.stack([c2w[:, :3, 2] @ e1, c2w[:, :3, 2] @ e2], 1)
    lo, hi = P.min(0), P.max(0)
    extent = float(max(hi - lo))
    centre = (lo + hi) / 2
    scale = size * (1 - 2 * MARGIN) / extent if extent > 0 else 1.0
    px = np.stack([size / 2 + (P[:, 0] - centre[0]) * scale, size / 2 - (P[:, 1] - centre[1]) * scale], 1)
    line_w = max(2.0, size / 200)
    # view direction every few frames, under the path
    tick = size * 0.05
    for f in range(0, n, max(1, n // 16)):
        d = F[f] * np.array([1.0, -1.0])
        norm = np.linalg.norm(d)
        if norm > 1e-6:
            _line(img, px[f], px[f] + d / norm * tick, max(1.0, line_w / 2), VIEW)
    fast, slow = set(m["range"]["too_fast"]), set(m["range"]["too_slow"])
    pi = np.asarray(m["range"]["pi_step"])
    for t in range(n - 1):
        f = t + 1
        colour = TOO_FAST if f in fast else TOO_SLOW if f in slow else STILL if pi[t] <= 1e-12 else IN_RANGE
        _line(img, px[t], px[f], line_w, colour)
    for f in sorted(fast | slow):
        _stamp(img, px[f:f + 1], line_w * 1.6, TOO_FAST if f in fast else TOO_SLOW)
    _stamp(img, px[:1], line_w * 3, VIEW)
    _stamp(img, px[:1], line_w * 1.8, BACKGROUND)
    _stamp(img, px[-1:], line_w * 2, VIEW)
    path, (plo, phi) = m["range"]["path"], m["range"]["path_range"]
    if path > phi or 0 < path < plo:
        b = max(2, size // 64)
        colour = TOO_FAST if path > phi else TOO_SLOW
        img[:b], img[-b:], img[:, :b], img[:, -b:] = colour, colour, colour, colour
    return img
