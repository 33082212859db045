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
