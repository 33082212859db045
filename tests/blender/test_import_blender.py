"""Importing reference tracks into Blender (bpy): keyed camera, pi_ref curve, cleanup."""
import numpy as np
import pytest

pytest.importorskip("bpy")

from parascale.core.cameras import invert_poses, make_c2w  # noqa: E402
from parascale.core.formats.readers import TrackFormatError, read_track  # noqa: E402
from parascale.core.reference import pi_from_points  # noqa: E402
from parascale.core.rotations import quat_from_matrix  # noqa: E402
from analytic_scenes import rot  # noqa: E402

CLIPS = "cameractrl_realestate10k/assets"


def write_colmap_text(folder, n=8, seed=0):
    """A small COLMAP text model with O(1) coordinates, rotating cameras and points."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    c2w = [make_c2w(rot(1, 4 * i) @ rot(0, -2 * i + 5), [0.1 * i, 0.03 * i * i, -0.05 * i]) for i in range(n)]
    w2c = invert_poses(np.array(c2w))
    (folder / "cameras.txt").write_text("1 PINHOLE 320 240 300 310 160 120\n")
    lines = []
    for i in range(n):
        q = quat_from_matrix(w2c[i, :3, :3])
        t = w2c[i, :3, 3]
        lines.append(f"{i + 1} {' '.join(f'{v:.17g}' for v in q)} {' '.join(f'{v:.17g}' for v in t)} 1 "
                     f"img{n - 1 - i:02d}.png")  # names in reverse id order: must sort by name
        lines.append("")
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    pts = rng.uniform([-1, -1, 2], [1, 1, 4], (200, 3))
    with open(folder / "points3D.txt", "w") as f:
        for k, p in enumerate(pts):
            track = " ".join(f"{i + 1} {k}" for i in range(n))
            f.write(f"{k + 1} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g} 128 128 128 1.0 {track}\n")
    return folder


def id_names(bpy):
    return {(type(i).__name__, i.name) for i in bpy.data.user_map()}


def pi_curve(obj):
    bag = obj.animation_data.action.layers[0].strips[0].channelbag(obj.animation_data.action_slot)
    return bag.fcurves.find('["pi_ref"]')


def test_import_colmap_keys_camera_and_pi(fresh_blender, tmp_path):
    bpy = fresh_blender
    from parascale.parascale_blender.animation import evaluated_poses
    from parascale.parascale_blender.reference import import_reference

    model = write_colmap_text(tmp_path / "model")
    scene = bpy.context.scene
    scene.frame_start = 10
    res = import_reference(bpy.context, model, estimator="harmonic", apply_render_size=True)
    track = read_track(model)
    obj = res.obj
    assert obj.type == "CAMERA" and obj.name in scene.objects
    np.testing.assert_array_equal(res.frames, 10 + np.arange(8))  # untimed: one frame per image
    P = evaluated_poses(obj, scene, res.frames)
    np.testing.assert_allclose(P, track.c2w, atol=1e-6)
    assert track.names[0] == "img00.png"
    # the image's intrinsics: scene resolution and the camera's projection
    from parascale.parascale_blender.animation import camera_intrinsics
    K, W, H = camera_intrinsics(obj, scene)
    assert (W, H) == (320, 240)
    np.testing.assert_allclose(K, track.K[0], atol=1e-3)
    # pi_ref: frame of step t holds Pi of step t, first frame 0; linear keys
    expected = np.concatenate([[0], pi_from_points(track, "harmonic").pi])
    fc = pi_curve(obj)
    assert fc is not None and len(fc.keyframe_points) == 8
    assert all(k.interpolation == "LINEAR" for k in fc.keyframe_points)
    got = [fc.evaluate(f) for f in res.frames]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert expected[1:].min() > 0
    assert obj["parascale_pi_source"] == "points" and obj["parascale_estimator"] == "harmonic"
    assert obj["parascale_format"] == "colmap" and obj["parascale_source_path"] == str(model)
    # quaternion keys never flip sign between neighbours
    bag = obj.animation_data.action.layers[0].strips[0].channelbag(obj.animation_data.action_slot)
    q = np.array([[bag.fcurves.find("rotation_quaternion", index=i).evaluate(f) for i in range(4)]
                  for f in res.frames])
    assert (np.einsum("ij,ij->i", q[1:], q[:-1]) > 0).all()


def test_import_re10k_with_video(fresh_blender, data_dir):
    bpy = fresh_blender
    from parascale.parascale_blender.animation import evaluated_poses
    from parascale.parascale_blender.reference import import_reference

    clip = data_dir / CLIPS
    scene = bpy.context.scene
    scene.render.fps = 24
    res = import_reference(bpy.context, clip / "pose_files/0f47577ab3441480.txt",
                           video=clip / "reference_videos/0f47577ab3441480.mp4", background=True)
    track = read_track(clip / "pose_files/0f47577ab3441480.txt", size=(384, 256))
    # timed track: frames at its timestamps on the scene's 24 fps
    np.testing.assert_allclose(res.frames, scene.frame_start + track.times * 24)
    np.testing.assert_allclose(evaluated_poses(res.obj, scene, res.frames), track.c2w, atol=1e-6)
    assert res.reference.source == "video" and (res.reference.pi > 0).all()
    cam = res.obj.data
    assert cam.show_background_images and cam.background_images[0].clip is not None
    assert any("render size" in w for w in res.warnings)  # not applied: the user is told


def test_failed_import_leaves_nothing(fresh_blender, tmp_path, monkeypatch):
    bpy = fresh_blender
    from parascale.parascale_blender import reference

    before = id_names(bpy)
    bad = tmp_path / "bad.txt"
    bad.write_text("\n" + "0 " * 18 + "\n")
    with pytest.raises(TrackFormatError, match="bad.txt line 2"):
        reference.import_reference(bpy.context, bad)
    assert id_names(bpy) == before

    # a failure after the object, its data and action exist: all removed again
    model = write_colmap_text(tmp_path / "model")

    def boom(obj, *args, **kwargs):
        reference.write_camera_animation.__wrapped__(obj, *args, **kwargs)
        raise RuntimeError("disk full")
    original = reference.write_camera_animation
    boom.__wrapped__ = original
    monkeypatch.setattr(reference, "write_camera_animation", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        reference.import_reference(bpy.context, model)
    assert id_names(bpy) == before
    assert len(bpy.data.actions) == 0 and len(bpy.data.cameras) == 0


def test_operator_import_and_error(fresh_blender, tmp_path):
    bpy = fresh_blender
    from parascale.operators import import_track

    for cls in import_track.CLASSES:
        bpy.utils.register_class(cls)
    try:
        model = write_colmap_text(tmp_path / "model")
        assert bpy.ops.parascale.import_track(filepath=str(model / "images.txt")) == {"FINISHED"}
        obj = bpy.context.view_layer.objects.active
        assert obj is not None and obj["parascale_pi_source"] == "points"
        before = id_names(bpy)
        bad = tmp_path / "empty.json"
        bad.write_text("")
        with pytest.raises(RuntimeError, match="empty.json: empty file"):
            bpy.ops.parascale.import_track(filepath=str(bad))
        assert id_names(bpy) == before
    finally:
        for cls in reversed(import_track.CLASSES):
            bpy.utils.unregister_class(cls)


def test_read_blend_camera_with_parent_and_constraint(fresh_blender, tmp_path):
    bpy = fresh_blender
    from parascale.parascale_blender.animation import evaluated_poses
    from parascale.parascale_blender.reference import read_blend_camera

    scene = bpy.context.scene
    scene.render.fps = 30
    scene.frame_start, scene.frame_end = 1, 11
    rig = bpy.data.objects.new("Rig", None)
    scene.collection.objects.link(rig)
    rig.location = (0, 0, 0)
    rig.keyframe_insert("location", frame=1)
    rig.location = (2, 0, 0.5)
    rig.keyframe_insert("location", frame=11)
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("CamData"))
    scene.collection.objects.link(cam)
    cam.parent = rig
    cam.location = (0, -5, 1)
    target = bpy.data.objects.new("Target", None)
    scene.collection.objects.link(target)
    cam.constraints.new("TRACK_TO").target = target
    expected = evaluated_poses(cam, scene, range(1, 12))
    path = tmp_path / "src.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    before = id_names(bpy)
    track = read_blend_camera(path, "Cam")
    assert len(track) == 11
    np.testing.assert_allclose(track.c2w, expected, atol=1e-6)
    np.testing.assert_allclose(track.times, np.arange(11) / 30)
    assert id_names(bpy) == before and len(bpy.data.libraries) == 0
    # the constraint matters: the camera turns as the rig slides past the target
    assert np.abs(track.c2w[0, :3, :3] - track.c2w[-1, :3, :3]).max() > 0.05
    with pytest.raises(ValueError, match="no object 'Nope'"):
        read_blend_camera(path, "Nope")
    assert id_names(bpy) == before


def test_movieclip_without_solve(fresh_blender, tmp_path):
    bpy = fresh_blender
    cv2 = pytest.importorskip("cv2")
    from parascale.parascale_blender.reference import track_from_movieclip

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i:03d}.png"), np.full((32, 48), 50 * i, np.uint8))
    clip = bpy.data.movieclips.load(str(tmp_path / "f000.png"))
    with pytest.raises(ValueError, match="no camera solve"):
        track_from_movieclip(clip)
