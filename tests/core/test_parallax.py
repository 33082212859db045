"""The three Parallax Number estimators against analytic depth maps."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from parascale.core.parallax import normalized_grid, parallax, parallax_of_depth_map, scale_intrinsics

W, H = 64, 48
K = np.array([[50.0, 0, 32.0], [0, 50.0, 24.0], [0, 0, 1]])


def plane(z):
    return np.full((H, W), float(z))


@pytest.mark.parametrize("estimator", ["mean", "harmonic", "flow"])
def test_fronto_parallel_plane_sideways(estimator):
    d = np.array([0.3, -0.4, 0.0])  # |d| = 0.5, no z component: flow is uniform
    assert parallax_of_depth_map(plane(2.5), K, d, estimator) == pytest.approx(0.5 / 2.5, rel=1e-12)


def test_two_planes_jensen_ratio():
    Z1, Z2 = 1.0, 9.0
    depth = plane(Z1)
    depth[:, W // 2:] = Z2  # half the pixels each
    d = np.array([1.0, 0, 0])
    harmonic = parallax_of_depth_map(depth, K, d, "harmonic")
    mean = parallax_of_depth_map(depth, K, d, "mean")
    # harmonic = (1/Z1 + 1/Z2)/2 ; mean = 1/((Z1+Z2)/2); worked by hand: (10/9)/2 / (1/5)
    assert harmonic == pytest.approx((1 / 1 + 1 / 9) / 2)
    assert mean == pytest.approx(1 / 5)
    assert harmonic / mean == pytest.approx(25 / 9)
    assert harmonic > mean  # Jensen


def test_forward_dolly_flow_sees_radius_harmonic_does_not():
    Z = 4.0
    d = np.array([0, 0, 0.2])
    xy = normalized_grid(K, W, H)
    r = np.hypot(xy[..., 0], xy[..., 1])
    flow = parallax_of_depth_map(plane(Z), K, d, "flow")
    assert flow == pytest.approx(0.2 * r.mean() / Z, rel=1e-12)
    assert parallax_of_depth_map(plane(Z), K, d, "harmonic") == pytest.approx(0.2 / Z)
    assert flow < 0.2 / Z  # a dolly moves the image less than a truck of the same length


@pytest.mark.parametrize("estimator", ["harmonic", "flow"])
def test_background_counts_as_zero_motion(estimator):
    depth = plane(2.0)
    depth[: H // 4] = np.inf  # a quarter of the image is sky
    d = np.array([0.1, 0.0, 0.0])
    assert parallax_of_depth_map(depth, K, d, estimator) == pytest.approx(0.75 * 0.1 / 2.0)


def test_mean_ignores_background_and_all_background_is_zero():
    depth = plane(2.0)
    depth[: H // 4] = np.inf
    d = np.array([0.1, 0.0, 0.0])
    assert parallax_of_depth_map(depth, K, d, "mean") == pytest.approx(0.1 / 2.0)
    sky = np.full((H, W), np.inf)
    for est in ("mean", "harmonic", "flow"):
        assert parallax_of_depth_map(sky, K, d, est) == 0.0


def test_blender_background_value_reads_as_infinite_after_conversion():
    # Cycles writes 1e10 on empty background; adapters convert it to +inf before this.
    depth = plane(3.0)
    depth[0, 0] = np.inf
    assert parallax(depth, [1, 0, 0], "harmonic") == pytest.approx((W * H - 1) / (W * H) / 3.0)


def test_unknown_estimator_is_named():
    with pytest.raises(ValueError, match="unknown estimator 'median'"):
        parallax(plane(1), [1, 0, 0], "median")


def test_scale_intrinsics_keeps_rays():
    Ks = scale_intrinsics(K, W, H, W // 2, H // 2)
    # the pixel centre (0.5,0.5) of the small grid covers big pixels 0..1: same ray as big (1,1)
    small = normalized_grid(Ks, W // 2, H // 2)[0, 0]
    assert small == pytest.approx([(1.0 - 32) / 50, (1.0 - 24) / 50])


@settings(max_examples=60, deadline=None)
@given(s=st.floats(1e-4, 1e4), seed=st.integers(0, 2**31 - 1))
def test_gauge_invariance(s, seed):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 20.0, size=(H, W))
    depth[rng.random((H, W)) < 0.2] = np.inf
    d = rng.normal(size=3)
    for est in ("mean", "harmonic", "flow"):
        base = parallax_of_depth_map(depth, K, d, est)
        scaled = parallax_of_depth_map(depth * s, K, d * s, est)
        assert scaled == pytest.approx(base, rel=1e-9)


@pytest.mark.parametrize("estimator", ["mean", "harmonic", "flow"])
def test_linear_in_translation_length(estimator):
    rng = np.random.default_rng(3)
    depth = rng.uniform(1, 5, size=(H, W))
    d = rng.normal(size=3)
    assert parallax_of_depth_map(depth, K, 7.0 * d, estimator) == pytest.approx(
        7.0 * parallax_of_depth_map(depth, K, d, estimator), rel=1e-12)


# ---------------------------------------------------------------------------
# exact image motion: checked against reprojection of the depth's 3D points

def reprojected_motion(Z, K_, d):
    """Mean image motion (focal units) over the covered pixels when the camera moves by
    d: each pixel's point is rebuilt in 3D and projected into the moved camera (pixel
    coordinates, then divided by the focal length): independent of core.parallax."""
    h, w = Z.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    covered = np.isfinite(Z)
    X = np.stack([(u - K_[0, 2]) / K_[0, 0] * Z, (v - K_[1, 2]) / K_[1, 1] * Z, Z], -1)[covered]
    Xm = X - np.asarray(d, float)
    u2 = Xm[:, 0] / Xm[:, 2] * K_[0, 0] + K_[0, 2]
    v2 = Xm[:, 1] / Xm[:, 2] * K_[1, 1] + K_[1, 2]
    return float(np.mean(np.hypot((u2 - u[covered]) / K_[0, 0], (v2 - v[covered]) / K_[1, 1])))


def sphere_depth(distance, radius):
    from analytic_scenes import AnalyticScene
    return AnalyticScene(spheres=[((0, 0, distance), radius)]).depth(np.eye(4), K, W, H)


@pytest.mark.parametrize("sign", [1, -1])
def test_exact_dolly_on_a_plane_matches_closed_form(sign):
    from parascale.core.parallax import exact_step
    D, pi = 3.0, 0.04
    xy = normalized_grid(K, W, H)
    mean_r = np.hypot(xy[..., 0], xy[..., 1]).mean()
    # Every pixel moves by s r / (D - s u_z): solved by hand for s.
    closed = pi * D / (mean_r + pi) if sign > 0 else pi * D / (mean_r - pi)
    step = exact_step(plane(D), xy, [0, 0, sign], pi)
    assert step.status == "solved"
    assert step.length == pytest.approx(closed, rel=1e-6)
    assert reprojected_motion(plane(D), K, [0, 0, sign * step.length]) == pytest.approx(pi, rel=1e-6)
    assert parallax(plane(D), [0, 0, sign * closed], "exact", xy) == pytest.approx(pi, rel=1e-9)


@pytest.mark.parametrize("sign", [1, -1])
def test_exact_dolly_on_a_sphere_matches_reprojection(sign):
    from parascale.core.parallax import exact_step
    Z = sphere_depth(4.0, 1.0)  # covers the middle of the frame, background around it
    assert 0.1 < np.isfinite(Z).mean() < 0.9
    xy = normalized_grid(K, W, H)
    pi = 0.03
    step = exact_step(Z, xy, [0, 0, sign], pi)
    assert step.status == "solved"
    assert reprojected_motion(Z, K, [0, 0, sign * step.length]) == pytest.approx(pi, rel=1e-6)
    d = np.array([0.2, -0.1, 0.3 * sign])
    assert parallax(Z, d, "exact", xy) == pytest.approx(reprojected_motion(Z, K, d), rel=1e-9)


@pytest.mark.parametrize("sign", [1, -1])
def test_first_order_flow_length_is_biased_on_dolly_steps(sign):
    """flow (first order) overshoots forward and undershoots backward steps: the
    exact image motion of its step misses the Pi it was asked for."""
    from parascale.core.parallax import exact_step, parallax_per_unit
    D, pi = 3.0, 0.04
    xy = normalized_grid(K, W, H)
    g = parallax_per_unit(plane(D), [0, 0, sign], "flow", xy)
    s_flow = pi / g
    s_exact = exact_step(plane(D), xy, [0, 0, sign], pi).length
    realised = reprojected_motion(plane(D), K, [0, 0, sign * s_flow])
    if sign > 0:
        assert s_flow > s_exact and realised > pi * 1.05
    else:
        assert s_flow < s_exact and realised < pi * 0.95
    # the size of the bias is the depth ratio of the step: Z / (Z - s u_z)
    assert realised / pi == pytest.approx(D / (D - sign * s_flow), rel=1e-9)


def test_exact_pull_back_from_a_small_object_saturates():
    """Backward, every point slides at most to the focus of expansion: beyond that
    image motion the step is unreachable, at any length."""
    from parascale.core.parallax import exact_step
    Z = sphere_depth(10.0, 0.5)
    xy = normalized_grid(K, W, H)
    step = exact_step(Z, xy, [0, 0, -1], 0.5)
    assert step.status == "unreachable"
    assert step.limit < 0.5
    capped = exact_step(Z, xy, [0, 0, -1], 0.5, max_length=3.0)
    assert capped.status == "unreachable" and capped.length == 3.0


def test_exact_sideways_is_first_order():
    from parascale.core.parallax import exact_step
    Z = sphere_depth(4.0, 1.0)
    xy = normalized_grid(K, W, H)
    step = exact_step(Z, xy, [1, 0, 0], 0.02)
    inv = np.where(np.isfinite(Z), 1 / np.where(np.isfinite(Z), Z, 1), 0)
    assert step.length == pytest.approx(0.02 / inv[np.isfinite(Z)].mean(), rel=1e-9)


def test_exact_forward_stops_before_the_nearest_point():
    from parascale.core.parallax import exact_step
    xy = normalized_grid(K, W, H)
    step = exact_step(plane(2.0), xy, [0, 0, 1], 50.0)  # absurd Pi: still in front of the plane
    assert step.status == "solved" and 0 < step.length < 2.0
