"""PCE, Umeyama alignment, TransErr and RotErr."""
import numpy as np
import pytest

from parascale.core.cameras import make_c2w
from parascale.core.metrics import pce, rot_err, trajectory_errors, trans_err, umeyama
from parascale.core.rotations import matrix_from_quat


def test_pce_is_scale_symmetric_and_zero_on_match():
    ref = np.array([0.01, 0.02, 0.05, 0.03])
    assert pce(ref, ref)["mean"] == 0.0
    assert pce(2 * ref, ref)["mean"] == pytest.approx(np.log(2))
    assert pce(0.5 * ref, ref)["mean"] == pytest.approx(pce(2 * ref, ref)["mean"])


def test_pce_skips_steps_below_floor_and_reports_p90():
    ref = np.array([0.1, 0.0, 0.1, 0.1, 0.1])
    real = np.array([0.1, 0.3, 0.2, 0.1, 0.1])
    out = pce(real, ref)
    assert out["n"] == 4
    assert np.isnan(out["per_step"][1])
    assert out["mean"] == pytest.approx(np.log(2) / 4)
    assert out["p90"] == pytest.approx(np.percentile([0, np.log(2), 0, 0], 90))


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 3))
    R = matrix_from_quat(rng.normal(size=4))
    s, t = 3.7, np.array([1.0, -2.0, 0.5])
    dst = s * src @ R.T + t
    s2, R2, t2 = umeyama(src, dst)
    assert s2 == pytest.approx(s) and np.allclose(R2, R) and np.allclose(t2, t)
    assert trans_err(src, dst) == pytest.approx(0.0, abs=1e-9)


def test_trans_err_hides_scale_and_rot_err_sums_angles():
    rng = np.random.default_rng(1)
    c = rng.normal(size=(8, 3))
    R = matrix_from_quat(rng.normal(size=(8, 4)))
    errs = trajectory_errors(make_c2w(R, 1000 * c), make_c2w(R, c))
    assert errs["trans_err"] == pytest.approx(0.0, abs=1e-9)  # scale mismatch hidden by Sim(3)
    assert errs["rot_err"] == pytest.approx(0.0, abs=1e-6)
    tilt = np.array([[1, 0, 0], [0, np.cos(0.1), -np.sin(0.1)], [0, np.sin(0.1), np.cos(0.1)]])
    assert rot_err(R @ tilt, R) == pytest.approx(8 * np.degrees(0.1))
    noisy = c + rng.normal(scale=0.1, size=c.shape)
    assert trans_err(noisy, c) > 0.1
