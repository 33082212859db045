"""The animator's path in Blender, driven the way the sidebar and the File menu drive it:
bpy.ops.parascale.import_track -> calibrate -> evaluate -> export, on real data.

Each test here reproduces something a user saw go wrong (issue "the animator's path"):
the Camera route inflating Pi, the background clip out of sync, the panel left empty,
Export greyed out, recalibration destroying the result, the scene changing mid-run,
cameras driven by parents or the NLA refused, a target from another scene accepted."""
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")

from analytic_scenes import reference_move  # noqa: E402
from blender_scenes import add_camera, build_tabletop  # noqa: E402

CLIP = "0bf152ef84195293"
SMALL_DEPTH = (48, 27)


@pytest.fixture
def addon(fresh_blender):
    import parascale

    parascale.register()
    yield fresh_blender
    parascale.unregister()


def clip_files(data_dir, clip=CLIP):
    root = data_dir / "cameractrl_realestate10k" / "assets"
    return root / "pose_files" / f"{clip}.txt", root / "reference_videos" / f"{clip}.mp4"


def target_scene(bpy, fps=24, scale=10.0):
    build_tabletop(bpy, scale)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    target = add_camera(bpy, "Target", reference_move(8, scale)[0])
    s = scene.parascale
    s.target_camera = target
    s.depth_width, s.depth_height = SMALL_DEPTH
    return scene, target


def keyed(obj, name):
    """(frames, values) of an animated property of obj, e.g. '["scale"]' or 'location'."""
    from parascale.parascale_blender.animation import _fcurve

    fc = _fcurve(obj, name)
    co = np.empty(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2], co[1::2]


def scene_state(bpy, scene):
    """What the user sees of their scene: settings a depth render would be tempted to change."""
    from parascale.parascale_blender import compat

    r = scene.render
    return (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
            r.use_compositing, r.use_persistent_data, scene.camera, compat.compositor_state(scene),
            scene.frame_current, bpy.context.view_layer.use_pass_z, bpy.context.scene,
            tuple(sorted(o.name for o in scene.objects)), tuple(sorted(c.name for c in scene.collection.children)))


def user_ids(bpy):
    return {(type(i).__name__, i.name) for i in bpy.data.user_map()}


# ---------------------------------------------------------------------------
# 1 and 3: one move by every route; the import fills the panel

@pytest.mark.parametrize("fps", [8, 24, 30])
def test_camera_route_and_track_route_give_the_same_move(addon, data_dir, fps):
    bpy = addon
    from parascale.core.reference import pi_from_video
    from parascale.core.formats.readers import read_track

    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, fps)
    assert bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video)) == {"FINISHED"}
    s = scene.parascale
    ref = s.reference_object
    assert ref is not None and ref.get("parascale_reference"), "Import must set the panel's reference"
    assert s.reference_kind == "OBJECT" and s.estimator == "exact"  # a video reference: exact image motion

    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    result = s.result_camera
    frames_a, scale_a = keyed(result, '["scale"]')
    _, pi_a = keyed(result, '["pi_ref"]')
    pointer = result.as_pointer()

    # The true total reference Pi over the calibrated span: the video's own Pi, read off
    # the track file independently of Blender, interpolated as a cumulative curve.
    track = read_track(track_path)
    true_pi = pi_from_video(track, video).pi
    cum = np.concatenate([[0.0], np.cumsum(true_pi)])
    span = (frames_a[-1] - frames_a[0]) / fps
    expected_total = np.interp(span, track.times - track.times[0], cum)
    assert pi_a.sum() == pytest.approx(expected_total, rel=1e-5)  # was 6.7x inflated at 24 fps

    s.reference_kind, s.track_path, s.video_path = "FILE", str(track_path), str(video)
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    assert s.result_camera.as_pointer() == pointer  # updated in place
    frames_b, scale_b = keyed(s.result_camera, '["scale"]')
    np.testing.assert_array_equal(frames_a, frames_b)
    # Blender keys poses in float32: a step read back from keys carries eps32 * |c| / |d|
    # (about 1e-6 here); the track file is read in float64. Nothing else may differ.
    rel = np.abs(scale_b[1:] / scale_a[1:] - 1)
    assert np.median(rel) < 1e-6 and rel.max() < 5e-6, rel.max()


def test_background_clip_runs_in_step_with_the_keys(addon, data_dir):
    bpy = addon
    from parascale.parascale_blender.animation import _fcurve

    track_path, video = clip_files(data_dir)
    scene, _ = target_scene(bpy, 24)
    assert bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video)) == {"FINISHED"}
    ref = scene.parascale.reference_object
    key_frames, _ = keyed(ref, "location")
    assert key_frames[-1] > 100  # sub-frame keys spread over 4.2 s at 24 fps
    clip = ref.data.background_images[0].clip
    start = _fcurve(clip, "frame_start")
    assert start is not None
    # Blender shows 0-based clip frame (f - frame_start) at scene frame f.
    for i, k in enumerate(key_frames):
        f = int(np.ceil(k - 1e-6))
        assert f - start.evaluate(f) == i, f"scene frame {f}: clip frame {f - start.evaluate(f)}, key {i}"
    f_between = int(np.ceil(key_frames[3] + 1e-6)) + 1
    assert f_between < key_frames[4]
    assert f_between - start.evaluate(f_between) == 3  # held until the next key


def test_set_scene_to_track_gives_one_scene_frame_per_track_frame(addon, data_dir):
    bpy = addon
    from parascale.core.formats.readers import read_track

    track_path, video = clip_files(data_dir)
    scene, _ = target_scene(bpy, 24)
    before = user_ids(bpy)
    assert bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video),
                                          set_scene=True) == {"FINISHED"}
    ref = scene.parascale.reference_object
    key_frames, _ = keyed(ref, "location")
    track = read_track(track_path)
    fps = scene.render.fps / scene.render.fps_base
    # The track's mean rate: its first and last frames on whole frames, the ones between at
    # their true times (RealEstate10K strides jitter by a frame of the source video).
    assert fps == pytest.approx((len(track) - 1) / (track.times[-1] - track.times[0]), rel=1e-6)  # fps_base is float32
    assert key_frames[0] == 1 and key_frames[-1] == pytest.approx(16, abs=1e-4)
    assert np.abs(key_frames - np.arange(1, 17)).max() < 0.5
    assert (scene.frame_start, scene.frame_end) == (1, 16)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (384, 256)
    start = ref.data.background_images[0].clip
    from parascale.parascale_blender.animation import _fcurve
    curve = _fcurve(start, "frame_start")
    shown = [f - (curve.evaluate(f) if curve else start.frame_start) for f in range(1, 17)]
    assert shown == list(range(16))  # one video frame per scene frame
    assert before < user_ids(bpy)


def test_reference_without_pi_is_refused_at_calibrate(addon, data_dir):
    bpy = addon
    track_path, _ = clip_files(data_dir)
    scene, target = target_scene(bpy, 24)
    assert bpy.ops.parascale.import_track(filepath=str(track_path)) == {"FINISHED"}
    assert scene.parascale.reference_object is not None
    with pytest.raises(RuntimeError, match="no Parallax Number.*video"):
        bpy.ops.parascale.calibrate()
    assert "Target.ParaScale" not in bpy.data.objects


# ---------------------------------------------------------------------------
# 4: export after calibrate

def test_export_is_enabled_after_calibrate_and_paths_are_handled(addon, data_dir, tmp_path):
    bpy = addon
    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    scene.camera = target  # the unanimated target is the active camera
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    assert bpy.ops.parascale.export_poses.poll()

    out = tmp_path / "new" / "folder" / "poses"  # no extension, folders missing
    assert bpy.ops.parascale.export_poses(filepath=str(out), format="re10k") == {"FINISHED"}
    written = out.with_suffix(".txt")
    assert written.is_file() and not out.exists()
    lines = written.read_text().splitlines()
    result = scene.parascale.result_camera
    frames, _ = keyed(result, "location")
    assert len(lines) == 1 + len(frames)  # the result camera was exported, not the still target
    assert (written.parent / "parascale_bridge.py").is_file()
    manifest = json.loads((written.parent / "poses.txt.manifest.json").read_text())
    assert manifest["gauge"]["generator"] == "cameractrl"  # RealEstate10K files speak CameraCtrl's gauge
    assert scene.parascale.export_summary.startswith("cameractrl:")

    assert not bpy.data.filepath
    with pytest.raises(RuntimeError, match="not been saved"):
        bpy.ops.parascale.export_poses(filepath="//poses.txt", format="re10k")


def test_cli_export_creates_missing_folders(addon, tmp_path):
    bpy = addon
    from parascale.parascale_blender.cli import main
    from blender_scenes import animate_reference

    build_tabletop(bpy, 1.0)
    animate_reference(bpy, 6)
    blend = tmp_path / "s.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    out = tmp_path / "newdir" / "poses.txt"
    assert main(["export", "--blend", str(blend), "--camera", "Reference", "--format", "re10k",
                 "--output", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 7


# ---------------------------------------------------------------------------
# 5: recalibration updates the result in place; name clashes are caught first

def test_recalibration_keeps_the_result_object_scene_camera_and_markers(addon, data_dir):
    bpy = addon
    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    result = scene.parascale.result_camera
    scene.camera = result
    marker = scene.timeline_markers.new("cut", frame=3)
    marker.camera = result
    result.data.lens = 70.0  # a user edit the next calibration replaces from the target
    pointer = result.as_pointer()
    target.location.x += 0.5  # the user moves the start
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    result = scene.parascale.result_camera
    assert result.as_pointer() == pointer and scene.camera == result and marker.camera == result
    assert result.data.lens == pytest.approx(target.data.lens)
    assert result.animation_data.action.name in bpy.data.actions
    assert len([a for a in bpy.data.actions if a.name.startswith("Target.ParaScale")]) == 1  # not leaked
    assert [o.name for o in bpy.data.objects if o.name.startswith("Target")] == ["Target", "Target.ParaScale"]
    from parascale.parascale_blender.animation import evaluated_poses
    np.testing.assert_allclose(evaluated_poses(result, scene, [1]), evaluated_poses(target, scene, [1]),
                               atol=1e-5)  # the new run starts where the target now is


def test_name_clash_is_refused_before_any_work(addon, data_dir, monkeypatch):
    bpy = addon
    from parascale.parascale_blender import transfer as transfer_module

    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    bpy.ops.mesh.primitive_cube_add()
    bpy.context.active_object.name = "Target.ParaScale"
    depth_calls = []
    real = transfer_module.depth_source
    monkeypatch.setattr(transfer_module, "depth_source", lambda *a, **k: depth_calls.append(a) or real(*a, **k))
    with pytest.raises(RuntimeError, match="exists and is not a ParaScale result"):
        bpy.ops.parascale.calibrate()
    assert depth_calls == []  # refused before the depth pass started
    assert bpy.data.objects["Target.ParaScale"].type == "MESH"


def test_result_name_keeps_two_calibrations_of_one_target_side_by_side(addon, data_dir):
    bpy = addon
    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    s = scene.parascale
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    first = s.result_camera
    s.result_name, s.estimator = "Target.flow", "flow"
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    second = s.result_camera
    assert (first.name, second.name) == ("Target.ParaScale", "Target.flow")
    assert first.name in bpy.data.objects and first.animation_data.action != second.animation_data.action
    assert sorted(o.name for o in bpy.data.objects if o.name.startswith("Target")) == [
        "Target", "Target.ParaScale", "Target.flow"]


# ---------------------------------------------------------------------------
# 6: the user's scene does not change, before, during or after; also on error and cancel

def test_scene_is_untouched_during_calibration_and_evaluation(addon, data_dir, monkeypatch):
    bpy = addon
    from parascale.parascale_blender import pipeline

    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    from parascale.parascale_blender import compat

    scene.render.engine = compat.EEVEE
    scene.camera = target
    compat.new_compositor(scene, "User compositor")
    scene.frame_set(3)
    state = scene_state(bpy, scene)
    seen = []

    def spy(cls):
        real = cls.step

        def step(self):
            out = real(self)
            seen.append(scene_state(bpy, scene))
            return out
        monkeypatch.setattr(cls, "step", step)

    spy(pipeline.Transfer)
    spy(pipeline.DepthEvaluation)
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    calibrating, seen[:] = list(seen), []
    with_result = scene_state(bpy, scene)
    assert bpy.ops.parascale.evaluate() == {"FINISHED"}
    assert len(calibrating) > 10 and len(seen) > 10
    for s in calibrating:
        assert s == state, [(a, b) for a, b in zip(s, state) if a != b]
    for s in seen:
        assert s == with_result, [(a, b) for a, b in zip(s, with_result) if a != b]
    # the only change the user sees: the result camera
    assert [a for a, b in zip(with_result, state) if a != b] == [tuple(sorted(state[12] + ("Target.ParaScale",)))]
    assert "Render Result" not in bpy.data.images
    from parascale.parascale_blender.animation import property_keys
    frames, realised = property_keys(scene.parascale.result_camera, "pi_realised")
    assert len(frames) == len(keyed(scene.parascale.result_camera, "location")[0]) and realised[1:].min() > 0
    assert scene.parascale.eval_measured_by.startswith("depth: reprojection of ray cast")
    # independent of the Z pass that drove the calibration: not zero by construction, yet close
    assert scene.parascale.calib_residual < 1e-6 < scene.parascale.eval_pce < 0.1, scene.parascale.eval_pce
    assert not [s for s in bpy.data.scenes if s.name.startswith("ParaScale")]
    assert not [o for o in bpy.data.objects if o.name.startswith("ParaScale")]

    # cancel half-way and an error half-way leave nothing behind
    ids = user_ids(bpy)
    job = pipeline.transfer_from_settings(scene)
    for _ in range(3):
        job.step()
    assert scene_state(bpy, scene) == with_result
    job.cancel()
    assert user_ids(bpy) == ids and scene_state(bpy, scene) == with_result
    job = pipeline.transfer_from_settings(scene)
    monkeypatch.setattr(job._depth, "depth", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
    with pytest.raises(RuntimeError, match="disk full"):
        job.step()
    assert user_ids(bpy) == ids and scene_state(bpy, scene) == with_result


# ---------------------------------------------------------------------------
# 8 and 9: cameras animators have; a target from another scene

def _baked_and_driven(bpy, how):
    """A camera moved by `how` (parent | nla) and a baked copy with the same world poses."""
    from parascale.parascale_blender.animation import write_camera_animation

    c2w = reference_move(8, 1.0)
    baked = add_camera(bpy, "Baked", c2w[0])
    write_camera_animation(baked, c2w, np.arange(1, 9), "baked")
    driven = add_camera(bpy, "Driven")
    if how == "parent":
        rig = bpy.data.objects.new("Rig", None)
        bpy.context.scene.collection.objects.link(rig)
        write_camera_animation(rig, c2w, np.arange(1, 9), "rig")  # camera axes on an empty: fine
        driven.parent = rig
    else:
        action = write_camera_animation(driven, c2w, np.arange(1, 9), "driven")
        ad = driven.animation_data
        track = ad.nla_tracks.new()
        track.strips.new("move", 1, action)
        ad.action = None
    return baked, driven


@pytest.mark.parametrize("how", ["parent", "nla"])
def test_parented_and_nla_cameras_are_references_like_their_baked_copy(addon, how):
    bpy = addon
    from parascale.parascale_blender import pipeline

    build_tabletop(bpy, 1.0)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 8
    baked, driven = _baked_and_driven(bpy, how)
    a = pipeline.reference_from_object(baked, scene, depth_size=SMALL_DEPTH)
    b = pipeline.reference_from_object(driven, scene, depth_size=SMALL_DEPTH)
    np.testing.assert_allclose(b.c2w, a.c2w, atol=1e-5)
    np.testing.assert_allclose(b.pi, a.pi, rtol=1e-4)
    target = add_camera(bpy, "Target", reference_move(8, 1.0)[0])
    s = scene.parascale
    s.target_camera, s.depth_width, s.depth_height = target, *SMALL_DEPTH
    s.reference_object = driven
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    _, scale_driven = keyed(s.result_camera, '["scale"]')
    s.reference_object = baked
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    _, scale_baked = keyed(s.result_camera, '["scale"]')
    np.testing.assert_allclose(scale_driven, scale_baked, rtol=1e-3, atol=1e-9)


def test_target_from_another_scene_is_refused_with_the_reason(addon, data_dir):
    bpy = addon
    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    other = bpy.data.scenes.new("Other")
    stranger = add_camera(bpy, "Stranger", reference_move(8, 1.0)[0], scene=other)
    scene.parascale.target_camera = stranger
    with pytest.raises(RuntimeError, match="not in scene"):
        bpy.ops.parascale.calibrate()
    assert "Stranger.ParaScale" not in bpy.data.objects


def test_blend_camera_route_matches_the_camera_in_this_file(addon, tmp_path):
    bpy = addon
    from blender_scenes import animate_reference
    from parascale.parascale_blender import pipeline

    build_tabletop(bpy, 1.0)
    animate_reference(bpy, 8)
    blend = tmp_path / "ref.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    local = pipeline.reference_from_object(bpy.data.objects["Reference"], bpy.context.scene,
                                           depth_size=SMALL_DEPTH)
    ids = user_ids(bpy)
    linked = pipeline.reference_from_blend(blend, "Reference", depth_size=SMALL_DEPTH)
    assert user_ids(bpy) == ids  # nothing linked stays behind
    np.testing.assert_allclose(linked.c2w, local.c2w, atol=1e-6)
    np.testing.assert_allclose(linked.pi, local.pi, rtol=1e-6)
    s = bpy.context.scene.parascale
    s.reference_kind, s.blend_path, s.blend_camera = "BLEND", str(blend), "Reference"
    s.target_camera = add_camera(bpy, "Target", reference_move(8, 3.0)[0])
    s.depth_width, s.depth_height = SMALL_DEPTH
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}


def solved_clip(bpy, folder, c2w, fx=300.0, size=(320, 180), n_points=60):
    """A movie clip whose markers are exact projections of random points seen from c2w
    (OpenCV axes), solved by Blender's own camera solver in a Clip Editor context."""
    import cv2

    from parascale.core.cameras import invert_poses

    W, H = size
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(c2w)):
        cv2.imwrite(str(folder / f"f_{i + 1:04d}.png"), np.zeros((H, W, 3), np.uint8))
    clip = bpy.data.movieclips.load(str(folder / "f_0001.png"))
    cam = clip.tracking.camera
    cam.sensor_width, cam.focal_length_pixels, cam.principal_point_pixels = 36.0, fx, (W / 2, H / 2)
    points = np.random.default_rng(0).uniform([-1, -0.5, -0.3], [1, 1.5, 0.6], (n_points, 3))
    w2c = invert_poses(c2w)
    tracks = clip.tracking.objects[0].tracks
    for j, X in enumerate(points):
        track = tracks.new(name=f"p{j}", frame=1)
        for i in range(len(c2w)):
            x = w2c[i, :3, :3] @ X + w2c[i, :3, 3]
            u, v = fx * x[0] / x[2] + W / 2, fx * x[1] / x[2] + H / 2
            track.markers.insert_frame(i + 1, co=(u / W, 1 - v / H))
    tracking_object = clip.tracking.objects[0]
    tracking_object.keyframe_a, tracking_object.keyframe_b = 1, len(c2w)
    clip.tracking.settings.use_keyframe_selection = False
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.type = "CLIP_EDITOR"
    area.spaces.active.clip = clip
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region, space_data=area.spaces.active):
        assert bpy.ops.clip.solve_camera() == {"FINISHED"}
    assert clip.tracking.reconstruction.is_valid
    return clip


def test_camera_solver_constraint_camera_calibrates_like_its_baked_copy(addon, tmp_path):
    """A Setup-Tracking-Scene-style camera: no keys, a Camera Solver constraint on the
    scene's active clip. It is read per frame from the depsgraph, like a baked copy; the
    Clip route reads the same solve."""
    bpy = addon
    from parascale.parascale_blender import pipeline
    from parascale.parascale_blender.animation import evaluated_poses, write_camera_animation

    build_tabletop(bpy, 1.0)
    scene = bpy.context.scene
    clip = solved_clip(bpy, tmp_path / "clip", reference_move(10, 1.0))
    scene.active_clip = clip
    scene.frame_start, scene.frame_end = 1, 30  # longer than the clip: the clip sets the range
    solved = add_camera(bpy, "Solved")
    constraint = solved.constraints.new("CAMERA_SOLVER")
    constraint.use_active_clip = True
    poses = evaluated_poses(solved, scene, range(1, 11))
    # The solve has its own gauge: put a wall and a ball in front of where it looks.
    ahead = poses[0][:3, 3] + 4 * np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1).sum() * poses[0][:3, 2]
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.5 * np.linalg.norm(ahead - poses[0][:3, 3]), location=ahead)
    baked = add_camera(bpy, "Baked")
    write_camera_animation(baked, poses, np.arange(1, 11), "baked")

    from_clip = pipeline.reference_from_movieclip(clip, scene)
    np.testing.assert_allclose(from_clip.c2w, poses, atol=1e-4)  # the Clip route: the same solve
    a = pipeline.reference_from_object(solved, scene, depth_size=SMALL_DEPTH)
    b = pipeline.reference_from_object(baked, scene, depth_size=SMALL_DEPTH)
    assert len(a.c2w) == 10  # the clip's frames, not the scene's 30
    assert a.pi.min() > 0
    np.testing.assert_allclose(a.pi, b.pi, rtol=1e-4)

    s = scene.parascale
    s.target_camera = add_camera(bpy, "Target", reference_move(10, 5.0)[0])
    s.depth_width, s.depth_height = SMALL_DEPTH
    results = {}
    for ref in (solved, baked):
        s.reference_object = ref
        assert bpy.ops.parascale.calibrate() == {"FINISHED"}
        results[ref.name] = keyed(s.result_camera, '["scale"]')[1]
    np.testing.assert_allclose(results["Solved"], results["Baked"], rtol=1e-3, atol=1e-9)
    s.reference_kind, s.clip = "CLIP", clip
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}


def test_results_share_nothing_with_the_user_and_a_failed_keying_leaves_nothing(addon, data_dir, monkeypatch):
    bpy = addon
    from parascale.parascale_blender import animation, pipeline

    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 8)
    target.data.keyframe_insert("lens", frame=1)  # the user's own lens animation
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    result = scene.parascale.result_camera
    assert result.data != target.data
    assert result.data.animation_data.action != target.data.animation_data.action
    user_lens_action = target.data.animation_data.action
    keys_before = [tuple(k.co) for k in animation._fcurve(target.data, "lens").keyframe_points]
    animation._fcurve(result.data, "lens").keyframe_points[0].co[1] = 99.0  # edit the result's lens key
    assert [tuple(k.co) for k in animation._fcurve(target.data, "lens").keyframe_points] == keys_before
    assert target.data.animation_data.action == user_lens_action

    # keying fails half-way: the previous result is as it was, nothing new is left
    ids = user_ids(bpy)
    previous = result.animation_data.action
    real = animation.write_fcurve

    def failing(bag, path, *args, **kwargs):
        if path == "rotation_quaternion":
            raise RuntimeError("keying failed")
        return real(bag, path, *args, **kwargs)
    monkeypatch.setattr(animation, "write_fcurve", failing)
    with pytest.raises(RuntimeError, match="keying failed"):
        bpy.ops.parascale.calibrate()
    assert user_ids(bpy) == ids and result.animation_data.action == previous

    # a reference with no usable Pi is refused with the reason
    with pytest.raises(pipeline.TransferError, match="not a number at step"):
        pipeline.ReferenceMotion(np.repeat(np.eye(4)[None], 3, 0), np.arange(3.0), [0.1, np.nan], "flow", "video")
    with pytest.raises(pipeline.TransferError, match="zero at every step"):
        pipeline.ReferenceMotion(np.repeat(np.eye(4)[None], 3, 0), np.arange(3.0), [0.0, 0.0], "flow", "video")


def test_closed_loop_refuses_blank_renders_and_measures_on_the_reference_steps(addon, data_dir):
    """An unlit scene renders black: flow on it would be noise reported as a PCE. And a
    slow track in a fast scene is measured on its own steps, not on sub-pixel frame steps."""
    bpy = addon
    from parascale.parascale_blender import animation, evaluate, pipeline

    track_path, video = clip_files(data_dir)
    scene, target = target_scene(bpy, 24, scale=1.0)
    scene.render.resolution_x, scene.render.resolution_y = 96, 64
    bpy.ops.parascale.import_track(filepath=str(track_path), video=str(video))
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    reference = pipeline.reference_from_settings(scene)
    run = evaluate.closed_loop_for(scene, scene.parascale.result_camera, reference, long_side=96, samples=1)
    keys = animation.property_keys(scene.parascale.reference_object, "pi_ref")[0]
    np.testing.assert_allclose(run.frames, keys[:len(run.frames)], atol=1e-4)  # the reference's own times
    assert len(run.frames) < 20  # 16 video steps, not ~100 scene frames
    run.cancel()
    scene.world = None  # factory-empty scene: no world, no lights
    with pytest.raises(ValueError, match="blank"):
        evaluate.closed_loop_for(scene, scene.parascale.result_camera, reference, long_side=96,
                                 samples=1).finish()
    assert "Render Result" not in bpy.data.images


def test_depth_passes_in_turn_see_each_scene_own_geometry(fresh_blender):
    """Blender keeps a render per scene name; temporary scenes must never reuse one, or a
    depth pass reads the previous scene's persistent data. And a scene that is not the
    window's (a target in another scene, the demo's) has its own visibility."""
    bpy = fresh_blender
    from parascale.core.cameras import look_at
    from parascale.parascale_blender.depth import ZPassDepth

    K = np.array([[60.0, 0, 48], [0, 60.0, 27], [0, 0, 1]])
    pose = look_at(np.zeros(3), np.array([0.0, 1.0, 0.0]))
    for depth in (7.5, 3.0, 7.5):
        scene = bpy.data.scenes.new(f"plane at {depth}")
        bpy.context.window.scene = scene
        bpy.ops.mesh.primitive_plane_add(size=100, location=(0, depth, 0), rotation=(np.pi / 2, 0, 0))
        bpy.context.window.scene = bpy.data.scenes[0]  # the depth pass reads a scene not on screen
        with ZPassDepth(scene) as zp:
            Z = zp.depth(pose, K, 96, 54).depth
        assert np.allclose(Z, depth, rtol=1e-5), (depth, np.nanmin(Z), np.nanmax(Z))


PHOTO_TRACKS = {
    # name: (track, video or image folder, estimator the import must pick)
    "llff_fern": ("llff_fern/data/nerf_llff_data/fern/colmap_text", None, "harmonic"),
    "instant_ngp_fox": ("instant_ngp_fox/data/nerf/fox/transforms.json", "instant_ngp_fox/data/nerf/fox/images",
                        "exact"),
}


@pytest.mark.parametrize("name", sorted(PHOTO_TRACKS))
def test_photo_tracks_go_import_calibrate_evaluate_export_bridge(addon, data_dir, tmp_path, name):
    """Untimed photo tracks (one frame per photo) through the whole flow, as the panel and
    the File menu run it; the Camera and Track routes give the same keys."""
    import subprocess
    import sys

    bpy = addon
    track_rel, video_rel, estimator = PHOTO_TRACKS[name]
    track_path = data_dir / track_rel
    video = data_dir / video_rel if video_rel else None
    scene, target = target_scene(bpy, 24)
    kwargs = {"video": str(video)} if video else {}
    assert bpy.ops.parascale.import_track(filepath=str(track_path), **kwargs) == {"FINISHED"}
    s = scene.parascale
    assert s.estimator == estimator
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    frames_a, scale_a = keyed(s.result_camera, '["scale"]')
    assert bpy.ops.parascale.evaluate() == {"FINISHED"}
    assert 0 < s.eval_pce < 0.5, s.eval_pce  # independent ray-cast figure: neither zero nor wild

    s.reference_kind, s.track_path, s.video_path = "FILE", str(track_path), str(video or "")
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    frames_b, scale_b = keyed(s.result_camera, '["scale"]')
    np.testing.assert_array_equal(frames_a, frames_b)
    # The keys hold the reference in float32 (about 1e-7 here); each step's depth is sampled on
    # a 48x27 grid at a pose that depends on every earlier step, so that difference can move
    # an edge across a sample and grow along the move. The first steps agree to float32.
    rel = np.abs(scale_b[1:] / scale_a[1:] - 1)
    assert rel[:3].max() < 2e-6 and np.median(rel) < 1e-4 and rel.max() < 1e-3, rel

    out = tmp_path / "poses"
    assert bpy.ops.parascale.export_poses(filepath=str(out), format="parascale") == {"FINISHED"}
    bridge = tmp_path / "parascale_bridge.py"
    run = subprocess.run([sys.executable, str(bridge), str(out.with_suffix(".json")), "--generator", "cameractrl",
                          "--out", str(tmp_path / "cameractrl"), "--size", "64x96", "--plucker"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    tensors = list((tmp_path / "cameractrl").glob("*.npy"))
    assert tensors, sorted(p.name for p in (tmp_path / "cameractrl").iterdir())
    plucker = np.load(tensors[0])
    assert plucker.ndim == 4 and plucker.shape[1] == 6 and np.isfinite(plucker).all()
