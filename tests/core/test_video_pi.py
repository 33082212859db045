"""Pi of a video step checked against the track (core.video_pi): analytic scenes rendered
in numpy, where the truth is the exact estimator over the pixels that see geometry.

A textured ground under a sky (a vertical gradient at infinity), a camera that trucks and
pans, and a textured square that moves on its own: the reading must give the ground's
exact Pi, leave the sky out, and not let the square's own motion in."""
import numpy as np
import pytest

from parascale.core.cameras import make_c2w, steps
from parascale.core.parallax import exact_motion, normalized_grid
from parascale.core.reference import dis_flow
from parascale.core.video_pi import StepReading, read_step
from analytic_scenes import rot  # noqa: E402

cv2 = pytest.importorskip("cv2")

W, H, F = 320, 180, 200.0
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1.0]])
GROUND = 1.5  # the ground plane: world y = GROUND (camera y points down)
FAR = 40.0     # ... up to this depth, then the sky (a textured ground to the horizon aliases into noise)
TEXELS = 15.0  # texture samples per unit on the ground


@pytest.fixture(scope="module")
def texture():
    rng = np.random.default_rng(7)
    return cv2.GaussianBlur(rng.random((2048, 2048)).astype(np.float32), (0, 0), 1.2)


def render(texture, c2w, mover=None, ss=3):
    """(uint8 image, planar depth): the ground textured in world x, z up to FAR; beyond it
    and above the horizon a sky whose grey level depends on the ray's elevation only
    (at infinity). mover:
    (x0, y0, size, patch) pastes a textured square at pixel (x0, y0). The image is
    supersampled ss x ss (a camera's lens filters; an unfiltered texture at the horizon
    would alias into noise no flow can follow); the depth is at the pixel centres."""
    img = _shade(texture, c2w, ss)
    img = cv2.resize(img.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)
    if mover is not None:
        x0, y0, size, patch = mover
        img[y0:y0 + size, x0:x0 + size] = patch
    depth = _shade(texture, c2w, 1, depth=True)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), depth


def _shade(texture, c2w, ss, depth=False):
    u, v = np.meshgrid((np.arange(W * ss) + 0.5) / ss, (np.arange(H * ss) + 0.5) / ss)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    dirs = rays @ c2w[:3, :3].T
    c = c2w[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (GROUND - c[1]) / dirs[..., 1]
    hit = (dirs[..., 1] > 1e-6) & (s > 0) & (s < FAR)
    if depth:
        return np.where(hit, s, np.inf)  # planar depth: the rays have camera z = 1
    X = c + np.where(hit, s, 0)[..., None] * dirs
    mx = (X[..., 0] * TEXELS + 1024).astype(np.float32)
    mz = (X[..., 2] * TEXELS % 2048).astype(np.float32)
    ground = cv2.remap(texture, mx, mz, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    elevation = -dirs[..., 1] / np.linalg.norm(dirs, axis=-1)
    sky = 0.75 + 0.2 * np.clip(elevation, 0, 1)
    return np.where(hit, 0.15 + 0.55 * (ground - ground.min()) / np.ptp(ground), sky)


def truth(depth, d):
    """The target's reading: exact motion averaged over the pixels that see geometry."""
    m = exact_motion(depth, normalized_grid(K, W, H), d)
    return float(m[np.isfinite(depth)].mean())


def path(n=4, dx=0.06, pan=0.4):
    out, R, c = [], np.eye(3), np.zeros(3)
    for _ in range(n):
        out.append(make_c2w(R, c))
        c = c + R @ np.array([dx, 0.0, 0.25 * dx])
        R = R @ rot(1, pan)
    return np.array(out)


def reading(frames, c2w, i, **kw):
    d, _ = steps(c2w)
    a, b = frames[i - 1], frames[i]
    flow = dis_flow(a, b)  # the reading's own flow (DIS medium, finest level at full resolution)
    return read_step(a, b, flow, K, K, c2w[i - 1, :3, :3], c2w[i, :3, :3], d[i - 1], **kw)


def test_ground_under_a_sky_reads_the_exact_pi_of_the_ground(texture):
    c2w = path()
    frames, depths = zip(*(render(texture, m) for m in c2w))
    d, _ = steps(c2w)
    sky_share = float(np.isinf(depths[0]).mean())
    assert 0.3 < sky_share < 0.6
    for i in (1, 2, 3):
        r = reading(frames, c2w, i)
        assert isinstance(r, StepReading) and r.checked
        # the sky counts neither as motion nor as still pixels: Pi is the ground's own (the
        # flow itself reads this weakly textured, magnified ground about 4% low)
        assert r.pi == pytest.approx(truth(depths[i - 1], d[i - 1]), rel=0.06)
        assert r.infinity == pytest.approx(sky_share, abs=0.05)
        assert r.kept + r.filled + r.rejected + r.infinity == pytest.approx(1.0)
        # the whole-frame mean (sky as still pixels) would be lower by the sky's share
        assert r.pi * (1 - sky_share) < 0.8 * truth(depths[i - 1], d[i - 1])


def test_a_square_moving_on_its_own_does_not_count(texture):
    """The square moves down and left 6 px a frame while the camera trucks right: its
    motion contradicts the track, and the ground behind it is filled from around it."""
    c2w = path()
    rng = np.random.default_rng(3)
    patch = cv2.resize(rng.random((12, 12)).astype(np.float32), (44, 44), interpolation=cv2.INTER_NEAREST)
    plain, moving = [], []
    for i, m in enumerate(c2w):
        plain.append(render(texture, m)[0])
        moving.append(render(texture, m, mover=(150 - 6 * i, 110 + 6 * i, 44, patch))[0])
    for i in (1, 2, 3):
        a, b = reading(plain, c2w, i), reading(moving, c2w, i)
        assert b.pi == pytest.approx(a.pi, rel=0.05)
        assert b.filled > a.filled + 0.02  # the square (3.4% of the frame) and its edges were found
    # with the check off in effect (the square's motion counted), Pi would grow by far more
    diag = {}
    reading(moving, c2w, 2, diagnostics=diag)
    assert diag["contradict"][120:150, 145:175].mean() > 0.8


def test_pure_rotation_under_a_sky_is_zero(texture):
    c2w = np.array([make_c2w(rot(1, 1.5 * i) @ rot(0, 0.5 * i), np.zeros(3)) for i in range(3)])
    frames = [render(texture, m)[0] for m in c2w]
    r = reading(frames, c2w, 1)
    assert r.pi < 2e-3  # about 5 px of rotation flow, all of it explained by the track


def test_no_translation_falls_back_to_the_derotated_magnitude(texture):
    """A step whose track has no translation cannot be checked: the mean derotated
    motion over the pixels not at infinity (here the video shows a truck the track lacks)."""
    c2w = path(n=2)
    frames = [render(texture, m)[0] for m in c2w]
    still = np.array([c2w[0], make_c2w(c2w[1][:3, :3], c2w[0][:3, 3])])
    r = reading(frames, still, 1)
    assert r.pi > 0.005 and r.infinity > 0.3
