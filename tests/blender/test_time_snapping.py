"""No frame is lost to rounded timestamps (issue 17, item 4): times within 1e-3 of a frame are on it.

RealEstate10K timestamps are whole microseconds. A 48-frame track at 24 fps whose last time
(1,958,333 us) is rounded down lands at scene frame 47.99999; the transfer took frames 1..47
of 48. The same for a 29.97 track in Blender's 29.97 scene (30 / 1.001, fps_base stored as
float32). Every route reads times on frames the same way (core.clock): the import's keys,
the transfer's frame range and its reference on those frames, the camera-route reference."""
import numpy as np
import pytest

pytest.importorskip("bpy")

from analytic_scenes import reference_move  # noqa: E402
from blender_scenes import add_camera, build_tabletop  # noqa: E402

from parascale.core.cameras import Track  # noqa: E402
from parascale.core.formats.readers import read_track  # noqa: E402
from parascale.core.formats.writers import write_re10k  # noqa: E402


@pytest.fixture
def addon(fresh_blender):
    import parascale

    parascale.register()
    yield fresh_blender
    parascale.unregister()


def microsecond_track(tmp_path, n, rate):
    """A RealEstate10K file of the analytic move, frame i at i / rate rounded DOWN to whole
    microseconds (as the published files are), read back."""
    us = np.floor(np.arange(n) * 1e6 / rate + 158692025).astype(np.int64)
    K = np.array([[300.0, 0, 160], [0, 300, 90], [0, 0, 1]])
    path = write_re10k(Track(c2w=reference_move(n), K=K, width=320, height=180, times=np.arange(n) / rate),
                       tmp_path / f"move_{n}.txt", timestamps_us=us.tolist())
    return path, read_track(path, size=(320, 180))


def scene_at(bpy, fps, fps_base=1.0, n=48):
    build_tabletop(bpy)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, fps_base
    scene.frame_start, scene.frame_end = 1, n + 50
    target = add_camera(bpy, "Target", reference_move(n)[0])
    return scene, target


@pytest.mark.parametrize("n, rate, fps, fps_base", [(48, 24.0, 24, 1.0), (300, 30000 / 1001, 30, 1.001)],
                         ids=["48 frames at 24", "300 frames at 29.97"])
def test_transfer_keeps_the_last_frame_of_microsecond_timestamps(addon, tmp_path, n, rate, fps, fps_base):
    from parascale.parascale_blender.pipeline import ReferenceMotion, Transfer, TransferOptions

    bpy = addon
    path, track = microsecond_track(tmp_path, n, rate)
    scene, target = scene_at(bpy, fps, fps_base, n)
    raw_last = (track.times[-1] - track.times[0]) * fps / scene.render.fps_base
    assert 0 < n - 1 - raw_last < 1e-3, raw_last        # the last time is a hair short of its frame
    ref = ReferenceMotion(track.c2w, track.times, np.full(n - 1, 0.01), "exact", "video", path.name)
    job = Transfer(scene, target, ref, TransferOptions(depth_size=(16, 9), safety=False))
    try:
        assert job.frames == list(range(1, n + 1))      # was 1..n-1: the last frame lost
        # the reference on those frames is the track itself, not a resampling a hair off it
        assert np.array_equal(job.reference.c2w, track.c2w)
        assert np.array_equal(job.reference.pi, ref.pi)
    finally:
        job.cancel()


def test_import_keys_whole_frames_and_the_camera_route_keeps_them(addon, tmp_path):
    """Import Track of the microsecond file into a 24 fps scene: keys on frames 1..48, and the
    imported camera as a reference (the panel's Camera route) spans all 48."""
    from parascale.parascale_blender.animation import _fcurve, property_keys
    from parascale.parascale_blender.sources import reference_from_object

    bpy = addon
    path, track = microsecond_track(tmp_path, 48, 24.0)
    scene, target = scene_at(bpy, 24)
    assert bpy.ops.parascale.import_track(filepath=str(path), background=False) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    fc = _fcurve(obj, "location", 0)
    co = np.empty(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    assert np.array_equal(co[0::2], np.arange(1, 49))
    # no Pi without a video: give the camera route one to carry
    from parascale.parascale_blender.animation import write_property_curve
    write_property_curve(obj, "pi_ref", np.arange(1, 49), np.r_[0.0, np.full(47, 0.01)])
    ref = reference_from_object(obj, scene)
    assert len(ref.c2w) == 48 and ref.duration * 24 == pytest.approx(47, abs=1e-9)
    assert property_keys(obj, "pi_ref")[0][-1] == 48
