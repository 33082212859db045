"""Analytic target scenes for tests: planes and spheres, depth by exact ray
intersection in numpy (independent of Blender and of the code under test)."""
import numpy as np

from parascale.core.calibrate import DepthView
from parascale.core.cameras import look_at
from parascale.core.parallax import normalized_grid


class AnalyticScene:
    def __init__(self, spheres=(), planes=(), scale=1.0):
        # spheres: (centre, radius); planes: (point, normal). Everything scaled by `scale`.
        self.spheres = [(np.asarray(c, float) * scale, r * scale) for c, r in spheres]
        self.planes = [(np.asarray(p, float) * scale, np.asarray(n, float) / np.linalg.norm(n))
                       for p, n in planes]

    def depth(self, c2w, K, width, height):
        """Planar depth (height, width) seen from c2w (OpenCV axes); +inf where nothing is hit."""
        xy = normalized_grid(K, width, height)
        rays_cam = np.concatenate([xy, np.ones(xy.shape[:2] + (1,))], axis=-1)  # z = 1: t is planar Z
        R, c = c2w[:3, :3], c2w[:3, 3]
        rays = rays_cam @ R.T
        best = np.full((height, width), np.inf)
        for centre, radius in self.spheres:
            oc = c - centre
            b = rays @ oc
            a = np.einsum("hwi,hwi->hw", rays, rays)
            disc = b * b - a * (oc @ oc - radius * radius)
            hit = disc >= 0
            sq = np.sqrt(np.where(hit, disc, 0))
            t = (-b - sq) / a
            t = np.where(t > 0, t, (-b + sq) / a)
            best = np.where(hit & (t > 0), np.minimum(best, t), best)
        for point, normal in self.planes:
            denom = rays @ normal
            with np.errstate(divide="ignore", invalid="ignore"):
                t = ((point - c) @ normal) / denom
            best = np.where((np.abs(denom) > 1e-12) & (t > 0), np.minimum(best, t), best)
        return best

    def depth_fn(self, K, width, height):
        def fn(_i, c2w):
            return DepthView(self.depth(c2w, K, width, height), K)
        return fn


def tabletop(scale=1.0):
    """A floor, a back wall and three spheres, about 1 unit across at scale 1."""
    return AnalyticScene(
        spheres=[((0.0, 0.0, 0.15), 0.15), ((0.3, 0.2, 0.1), 0.1), ((-0.25, 0.3, 0.2), 0.2)],
        planes=[((0, 0, 0), (0, 0, 1)), ((0, 1.0, 0), (0, -1, 0))],
        scale=scale)


def reference_move(n=12, scale=1.0):
    """Dolly, truck and pan together, in the tabletop, c2w (n, 4, 4)."""
    out = []
    for i in range(n):
        s = i / (n - 1)
        eye = np.array([-0.3 + 0.4 * s, -1.2 + 0.35 * s, 0.45 - 0.1 * s]) * scale
        target = np.array([0.15 * s - 0.05, 0.1, 0.15]) * scale
        out.append(look_at(eye, target))
    return np.stack(out)


def rot(axis, deg):
    """Rotation by `deg` degrees about axis 0 (x), 1 (y) or 2 (z)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R = np.eye(3)
    R[i, i] = R[j, j] = c
    R[i, j], R[j, i] = -s, s
    return R
