"""Track Video is one step to a ready reference (issue 17, item 1), driven as a person drives it:
the extension registered, bpy.ops in the order the panel offers them.

Measured before: after `parascale.track_video` the panel's reference camera was unset and the
estimator stayed `harmonic` (Calibrate greyed out); the camera had one key per scene frame
(a 30 fps video in a 24 fps scene played 25% slow, a Movie Clip's fps was ignored); there
was no Set Scene to Track, no pixel aspect, and nothing was printed while it ran headless.

Videos: the 16 frames of RealEstate10K clip 0bf152ef84195293 (384x256, non-square pixels:
fy/fx = 1.185) written as 30 fps and 29.97 (30000/1001) mp4 files; tracking takes ~4 s each.
"""
import json

import numpy as np
import pytest

pytest.importorskip("bpy")
cv2 = pytest.importorskip("cv2")

from parascale.core.tracking import tracking_available  # noqa: E402

AVAILABLE, WHY = tracking_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY)

from analytic_scenes import reference_move  # noqa: E402
from blender_scenes import add_camera, build_tabletop  # noqa: E402

from clip_videos import CLIP, CLIP_FOCAL, CLIP_SIZE  # noqa: E402

N = 16
W, H = CLIP_SIZE
FX, FY = CLIP_FOCAL                            # the clip's own pose file (normalised intrinsics)
SENSOR = 36.0
LENS = FX / W * SENSOR                         # Movie Clip convention: focal px = lens / sensor x width
ASPECT = FY / FX                               # 1.185: a 16:9 video resized to 3:2
NTSC = 30000 / 1001


@pytest.fixture
def addon(fresh_blender):
    import parascale

    parascale.register()
    yield fresh_blender
    parascale.unregister()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """{30: mp4 at 30 fps, 'ntsc': mp4 at 30000/1001} of the clip's 16 frames."""
    from clip_videos import clip_frames, write_video
    from conftest import data_root

    root = data_root()
    if root is None:
        pytest.skip("real data not available: set PARASCALE_DATA to the shared data folder")
    frames = clip_frames(root, CLIP)
    assert len(frames) == N and frames[0].shape[:2] == (H, W)
    folder = tmp_path_factory.mktemp("videos")
    return {30: write_video(folder / "walk30.mp4", frames, 30.0),
            "ntsc": write_video(folder / "walk2997.mp4", frames, NTSC)}


def target_scene(bpy, fps=24, fps_base=1.0):
    """The user's scene: a tabletop at `fps`, a target camera picked in the panel."""
    build_tabletop(bpy, 10.0)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, fps_base
    scene.frame_start, scene.frame_end = 1, 250
    target = add_camera(bpy, "Target", reference_move(8, 10.0)[0])
    s = scene.parascale
    s.target_camera = target
    s.depth_width, s.depth_height = 32, 18
    return scene, target


def key_frames(obj):
    from parascale.parascale_blender.animation import _fcurve

    fc = _fcurve(obj, "location", 0)
    co = np.empty(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2]


def cameras(bpy):
    return {o.name for o in bpy.data.objects if o.type == "CAMERA"}


def track_video(bpy, video, out, **options):
    kw = dict(filepath=str(video), use_lens=True, lens=LENS, sensor=SENSOR, pixel_aspect=ASPECT,
              out_dir=str(out), background=False)
    kw.update(options)
    return bpy.ops.parascale.track_video(**kw)


def test_track_video_is_one_step_to_a_ready_reference(addon, videos, tmp_path, capsys):
    """30 fps video, 24 fps scene: the panel holds the new camera and `exact`, the keys span
    (N-1)/30 s on the video's clock (sub-frames 0.8 apart), one camera was made, the progress
    was printed, and Calibrate runs without a further click."""
    bpy = addon
    scene, target = target_scene(bpy, fps=24)
    before = cameras(bpy)
    assert track_video(bpy, videos[30], tmp_path / "walk30_track") == {"FINISHED"}

    made = cameras(bpy) - before
    assert made == {"Reference walk30"}                    # imported once
    obj = bpy.data.objects["Reference walk30"]
    s = scene.parascale
    assert s.reference_kind == "OBJECT" and s.reference_object == obj
    assert s.estimator == "exact"
    assert obj["parascale_pi_source"] == "video"

    frames = key_frames(obj)
    assert len(frames) == N and frames[0] == scene.frame_start
    assert (frames[-1] - frames[0]) / 24 == pytest.approx((N - 1) / 30, abs=1e-9)   # (N-1)/30 s
    assert np.allclose(np.diff(frames), 24 / 30, atol=1e-9)
    assert (scene.render.fps, scene.render.fps_base) == (24, 1.0)                    # left as it was

    clock = json.loads((tmp_path / "walk30_track" / "frame_times.json").read_text())
    assert clock["rate"] == "30" and clock["source"] == "container" and len(clock["times"]) == N

    printed = capsys.readouterr().out
    assert "ParaScale: tracking walk30.mp4:" in printed and "100% done" in printed
    assert "ParaScale: measuring Pi of walk30.mp4: 100% step 15/15" in printed

    assert bpy.ops.parascale.calibrate.poll()
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    result = s.result_camera
    assert result is not None and key_frames(result).tolist() == list(range(1, 14))  # 0.5 s at 24 fps


def test_set_scene_to_track_and_the_pixel_aspect(addon, videos, tmp_path):
    """Set Scene to Track: 30 fps exactly, the range of the 16 frames, 384x256 with the
    video's pixel aspect; every key on a whole frame; the recovered fy/fx is the one given."""
    from parascale.core.formats.readers import read_track

    bpy = addon
    scene, target = target_scene(bpy, fps=24)
    assert track_video(bpy, videos[30], tmp_path / "m", set_scene=True) == {"FINISHED"}
    r = scene.render
    assert (r.fps, r.fps_base) == (30, 1.0)
    assert (scene.frame_start, scene.frame_end) == (1, N)
    assert (r.resolution_x, r.resolution_y, r.resolution_percentage) == (W, H, 100)
    assert r.pixel_aspect_x / r.pixel_aspect_y == pytest.approx(ASPECT, rel=1e-6)
    obj = scene.parascale.reference_object
    assert key_frames(obj).tolist() == list(range(1, N + 1))
    K = read_track(tmp_path / "m" / "sparse").K[0]
    assert K[1, 1] / K[0, 0] == pytest.approx(ASPECT, rel=1e-6)
    assert K[0, 0] == pytest.approx(FX, rel=1e-5)


def test_a_2997_video_sets_30_over_1001_and_keys_whole_frames(addon, videos, tmp_path):
    bpy = addon
    scene, target = target_scene(bpy, fps=25)
    assert track_video(bpy, videos["ntsc"], tmp_path / "m", set_scene=True) == {"FINISHED"}
    r = scene.render
    assert r.fps == 30 and r.fps_base == pytest.approx(1.001, abs=1e-6)   # Blender's 29.97 preset
    obj = scene.parascale.reference_object
    assert key_frames(obj).tolist() == list(range(1, N + 1))
    clock = json.loads((tmp_path / "m" / "frame_times.json").read_text())
    assert clock["rate"] == "30000/1001"
    assert clock["times"][-1] == pytest.approx((N - 1) * 1001 / 30000, abs=1e-12)
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}


def test_a_movie_clip_brings_its_fps_lens_sensor_and_pixel_aspect(addon, videos, tmp_path):
    """Track Video called with a Movie Clip: the clip's frame rate (29.97), focal length,
    sensor width and pixel aspect are the ones used; the keys sit at i / 29.97 s in a 24 fps scene."""
    from parascale.core.formats.readers import read_track

    bpy = addon
    scene, target = target_scene(bpy, fps=24)
    clip = bpy.data.movieclips.load(str(videos["ntsc"]))
    cam = clip.tracking.camera
    cam.sensor_width, cam.focal_length, cam.pixel_aspect = SENSOR, LENS, ASPECT
    assert bpy.ops.parascale.track_video(clip_name=clip.name, out_dir=str(tmp_path / "m"),
                                         background=False) == {"FINISHED"}
    clock = json.loads((tmp_path / "m" / "frame_times.json").read_text())
    assert clock["rate"] == "30000/1001" and clock["source"] == "given"           # the clip's fps
    K = read_track(tmp_path / "m" / "sparse").K[0]
    assert K[0, 0] == pytest.approx(FX, rel=1e-4)                                  # its lens and sensor
    assert K[1, 1] / K[0, 0] == pytest.approx(ASPECT, rel=1e-4)                    # its pixel aspect
    obj = scene.parascale.reference_object
    frames = key_frames(obj)
    assert frames[-1] - frames[0] == pytest.approx((N - 1) * 1001 / 30000 * 24, abs=1e-6)
    assert scene.parascale.estimator == "exact"
    assert clip.frame_start == 1 and clip.animation_data is None                   # the user's clip untouched


def test_pixel_aspect_without_a_lens_is_refused_before_tracking(addon, videos, tmp_path):
    bpy = addon
    target_scene(bpy)
    with pytest.raises(RuntimeError, match="Pixel Aspect 1.2 .* give the lens too"):
        bpy.ops.parascale.track_video(filepath=str(videos[30]), use_lens=False, pixel_aspect=1.2,
                                      out_dir=str(tmp_path / "m"))
    assert not (tmp_path / "m").exists()
