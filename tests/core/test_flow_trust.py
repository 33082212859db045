"""Flow that knows when it cannot measure (core.flow_trust): analytic image pairs whose true
translational image motion is known, with texture, without it, with still render noise,
with empty background, and beyond what the flow resolves."""
import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

W, H = 256, 144
F = 200.0  # focal length (px)
K = np.array([[F, 0, W / 2], [0, F, H / 2], [0, 0, 1]])
I3 = np.eye(3)


def texture(seed=0, size=(H, W), scale=3.0, contrast=60.0):
    """Smooth random texture (grey levels about 128 +- contrast)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (size[0] + 64, size[1] + 64)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), scale)
    smooth /= smooth.std()
    return np.clip(128 + contrast * smooth, 0, 255).astype(np.float32)


def shift(image, dx, dy=0.0):
    """The image content moved by (dx, dy) pixels (what a sideways camera step does to a
    fronto-parallel plane: uniform motion, no rotation)."""
    M = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, M, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


def u8(image):
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def crop(image):
    return image[32:32 + H, 32:32 + W]


def test_textured_plane_reads_its_true_motion_and_is_trusted():
    from parascale.core.flow_trust import measure_step

    big = texture()
    dx = 4.0  # px: Pi = dx / F
    r = measure_step(u8(crop(big)), u8(crop(shift(big, dx))), I3, K)
    assert r.measurable and r.trusted > 0.9
    assert r.pi == pytest.approx(dx / F, rel=0.03)
    assert r.coverage == pytest.approx(1.0)


def test_white_wall_is_not_measurable_instead_of_reading_low():
    """A textured band at the top, a flat wall filling the rest: DIS interpolates the wall,
    so the step is not measured (rather than a number for the wall that was never seen)."""
    from parascale.core.flow_trust import measure_step

    big = texture(1)
    big[60:, :] = 200.0  # the wall: uniform
    a, b = crop(big), crop(shift(big, 5.0))
    r = measure_step(u8(a), u8(b), I3, K)
    assert not r.measurable and np.isnan(r.pi)
    assert r.trusted < 0.5
    assert r.reasons["texture"] > 0.5


def test_still_render_noise_is_not_taken_for_texture():
    """A flat scene under the same noise pattern in both frames (a low-sample render with a
    fixed seed): flow reads the still noise as zero motion; the noise threshold refuses it."""
    from parascale.core.flow_trust import measure_step

    flat = np.full((H + 64, W + 64), 150.0, np.float32)
    flat[:, (W + 64) // 2:] = 120.0  # one edge, moving
    noise = np.random.default_rng(5).normal(0, 8.0, (H, W)).astype(np.float32)
    a = crop(flat) + noise
    b = crop(shift(flat, 4.0)) + noise  # the noise stays put
    r = measure_step(u8(a), u8(b), I3, K)
    assert not r.measurable
    assert r.reasons["texture"] > 0.8


def test_object_against_empty_background_is_read_over_the_covered_pixels():
    """A textured square moving 6 px over a uniform background: over the covered pixels Pi
    is the square's motion; the whole-frame figure is not that (background counted)."""
    from parascale.core.flow_trust import measure_step

    obj = texture(2)
    bg = np.full_like(obj, 90.0)
    mask = np.zeros(obj.shape, bool)
    mask[80:150, 90:190] = True
    frame0 = np.where(mask, obj, bg)
    mask1 = shift(mask.astype(np.float32), 6.0) > 0.5
    frame1 = np.where(mask1, shift(obj, 6.0), bg)
    cov0, cov1 = crop(mask), crop(mask1)
    r = measure_step(u8(crop(frame0)), u8(crop(frame1)), I3, K, cov0, cov1)
    assert r.measurable
    assert r.pi == pytest.approx(6.0 / F, rel=0.05)
    assert r.coverage == pytest.approx(cov0.sum() / ((H - 12) * (W - 12)), rel=0.05)  # inside the border
    # the whole frame counts the background too (flow smears the square into it): another figure
    assert r.pi_frame < 0.85 * r.pi


def test_motion_beyond_what_the_flow_resolves_is_not_trusted():
    """DIS (medium) follows a uniform shift of 0.07 of the long side and fails from about
    0.08-0.1 (measured at 256, 384 and 540 px): beyond max_motion the flow is not trusted,
    and where DIS fails outright forward and backward disagree."""
    from parascale.core.flow_trust import DEFAULT_TRUST, measure_step

    big = texture(3, size=(H + 128, W + 128))
    window = lambda im: im[64:64 + H, 64:64 + W]  # noqa: E731
    within = measure_step(u8(window(big)), u8(window(shift(big, 0.06 * W))), I3, K)
    assert within.measurable and within.pi == pytest.approx(0.06 * W / F, rel=0.03)
    beyond = measure_step(u8(window(big)), u8(window(shift(big, 0.075 * W))), I3, K)
    assert DEFAULT_TRUST.max_motion < 0.075
    assert not beyond.measurable and beyond.reasons["range"] > 0.9
    failed = measure_step(u8(window(big)), u8(window(shift(big, 0.15 * W))), I3, K)
    assert not failed.measurable
    assert failed.reasons["inconsistent"] + failed.reasons["range"] > 0.5


def test_occluded_pixels_fail_forward_backward():
    """A textured square sliding 8 px over a textured background that stays: the background
    it covers at t has no match (occlusion); forward-backward flags it."""
    from parascale.core.flow_trust import measure_step

    bg = texture(4)
    fg = texture(9, contrast=80.0)
    mask = np.zeros(bg.shape, bool)
    mask[70:160, 80:180] = True
    mask1 = shift(mask.astype(np.float32), 8.0) > 0.5
    frame0 = np.where(mask, fg, bg)
    frame1 = np.where(mask1, shift(fg, 8.0), bg)
    r = measure_step(u8(crop(frame0)), u8(crop(frame1)), I3, K)
    assert r.reasons["inconsistent"] > 0.01


def test_summary_needs_half_the_steps_measurable():
    from parascale.core.flow_trust import StepReading, summary

    ok = StepReading(0.01, 0.01, 0.01, 1.0, 0.9, 0.9, True)
    bad = StepReading(float("nan"), 0.01, 0.01, 1.0, 0.2, 0.2, False)
    assert summary([ok, ok, bad])["measurable"]
    assert not summary([ok, bad, bad])["measurable"]
    assert summary([ok, bad, bad])["trusted"] == pytest.approx(0.2)


def test_noise_sigma_reads_gaussian_noise():
    from parascale.core.flow_trust import noise_sigma

    noise = np.random.default_rng(0).normal(128, 5.0, (200, 200))
    assert noise_sigma(noise) == pytest.approx(5.0, rel=0.1)
