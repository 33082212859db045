"""The clock (core.clock): exact frame rates, and times on frames without losing one to rounding.

Issue 17: RealEstate10K timestamps are whole microseconds; a 48-frame track at 24 fps whose
last time (1,958,333 us) is rounded down lands at frame 46.99999 from its first, and the
transfer lost its last frame. Times within 1e-3 of a frame are on it."""
from fractions import Fraction

import numpy as np
import pytest

from parascale.core.clock import (SNAP, blender_rate, exact_rate, frames_of_times, rate_text, snap_frames,
                                  whole_frames)


@pytest.mark.parametrize("given, expected", [
    (30.0, Fraction(30)), (24, Fraction(24)), (25.0, Fraction(25)),
    (29.97, Fraction(30000, 1001)),            # what a container declares (two decimals)
    (29.969999313354492, Fraction(30000, 1001)),  # a Movie Clip's fps (float32)
    (30000 / 1001, Fraction(30000, 1001)), (23.976, Fraction(24000, 1001)), (23.98, Fraction(24000, 1001)),
    (59.94, Fraction(60000, 1001)), ("30000/1001", Fraction(30000, 1001)), ("29.97", Fraction(30000, 1001)),
    ("24", Fraction(24)), (12.5, Fraction(25, 2)), (47 / 1.958333, Fraction(24)),  # a microsecond-rounded mean
    (Fraction(48, 2), Fraction(24)),
])
def test_exact_rate_recognises_whole_and_ntsc_rates(given, expected):
    assert exact_rate(given) == expected


@pytest.mark.parametrize("bad", [0, -24, float("nan"), float("inf"), "fast", "30/0", "", "-30000/1001", 1e-300])
def test_exact_rate_refuses_what_is_no_rate(bad):
    with pytest.raises(ValueError, match="frame rate"):
        exact_rate(bad)


def test_rate_text_and_blender_rate():
    assert rate_text(30) == "30" and rate_text(29.97) == "30000/1001" and rate_text(12.5) == "25/2"
    assert blender_rate(30) == (30, 1.0)
    assert blender_rate(29.97) == (30, pytest.approx(1.001, abs=1e-15))   # Blender's own 29.97 preset
    assert blender_rate(23.976) == (24, pytest.approx(1.001, abs=1e-15))
    fps, base = blender_rate(12.5)
    assert fps / base == pytest.approx(12.5, abs=1e-12)


def test_microsecond_timestamps_keep_their_last_frame():
    """48 frames at 24 fps in whole microseconds, rounded down: every time is within 1e-5 of a
    frame, and the last is frame 47 (it was 46.99999, one frame short)."""
    us = np.floor(np.arange(48) * 1e6 / 24)
    assert us[-1] == 1958333
    t = us * 1e-6
    raw = (t - t[0]) * 24
    assert int(np.floor(raw[-1] + 1e-6)) == 46      # the old rule lost the last frame
    assert np.array_equal(frames_of_times(t, 24), np.arange(48))
    assert whole_frames(t[-1] - t[0], 24) == 47
    assert np.array_equal(frames_of_times(t, 24, start=1), np.arange(1, 49))


def test_snapping_keeps_sub_frames_and_snaps_only_near_frames():
    f = np.array([0.0, 0.8, 1.6, 2.4, 3.2, 3.9995, 4.0012, 5.0 - 0.5 * SNAP])
    assert np.array_equal(snap_frames(f), [0.0, 0.8, 1.6, 2.4, 3.2, 4.0, 4.0012, 5.0])
    # 30 fps into a 24 fps scene: sub-frames 0.8 apart, every fifth frame whole
    t = np.arange(16) / 30
    fr = frames_of_times(t, 24)
    assert np.allclose(fr, 0.8 * np.arange(16), atol=1e-12)
    assert np.array_equal(fr[::5], [0.0, 4.0, 8.0, 12.0])


def test_ntsc_times_land_on_whole_frames_of_a_float32_scene_rate():
    """A 29.97 video's times (i * 1001 / 30000 s) on Blender's 30 / 1.001 scene, whose fps_base
    is stored as float32 (1.0010000467): thousands of frames stay whole."""
    base32 = float(np.float32(1.001))
    t = np.arange(5000) * 1001 / 30000
    fr = frames_of_times(t, 30 / base32)
    assert np.array_equal(fr, np.arange(5000))
    assert whole_frames(t[-1], 30 / base32) == 4999


def test_scene_rate_reads_blender_float32_rates_as_meant():
    from parascale.core.clock import scene_rate

    base32 = float(np.float32(1.001))
    assert scene_rate(30, base32) == Fraction(30000, 1001)
    assert scene_rate(24, 1.0) == Fraction(24)
    assert scene_rate(60, float(np.float32(1.001))) == Fraction(60000, 1001)
    # anything else is exactly what the scene says (a tight tolerance: no drift over long shots)
    assert float(scene_rate(24, 1.00001)) == 24 / 1.00001
    assert float(scene_rate(25, 2.0)) == 12.5
