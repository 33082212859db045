"""Collisions and near geometry, reported with their frames (parascale_blender.safety)."""
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def camera(bpy, c2w, clip_start=0.05):
    from blender_scenes import add_camera
    obj = add_camera(bpy, "Target", c2w)
    obj.data.clip_start, obj.data.clip_end = clip_start, 1000.0
    return obj


def look_plus_y(x, y, z=0.0):
    from parascale.core.cameras import look_at
    return look_at(np.array([x, y, z]), np.array([x, y + 10.0, z]))


def reference(c2w, pi=0.03):
    from parascale.parascale_blender.pipeline import ReferenceMotion
    n = len(c2w)
    return ReferenceMotion(c2w, np.arange(n) / 24.0, np.full(n - 1, pi), "exact", "scene", "synthetic")


def setup_scene(bpy, n):
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.fps = 64, 36, 24
    scene.frame_start, scene.frame_end = 1, n
    return scene


def transfer(bpy, scene, cam, ref, **kw):
    from parascale.parascale_blender import pipeline
    opts = pipeline.TransferOptions(depth="raycast", depth_size=(32, 18), **kw)
    return pipeline.transfer(scene, cam, ref, opts)


def codes(result):
    return {w.code: w for w in result.warnings}


def test_pull_back_toward_a_wall_names_the_frame_and_can_stop_short(fresh_blender):
    bpy = fresh_blender
    n = 10
    scene = setup_scene(bpy, n)
    bpy.ops.mesh.primitive_plane_add(size=200, location=(0, 5, 0), rotation=(np.pi / 2, 0, 0))   # in view
    bpy.ops.mesh.primitive_plane_add(size=200, location=(0, -1.5, 0), rotation=(np.pi / 2, 0, 0))  # behind
    ref = reference(np.stack([look_plus_y(0, -0.1 * i) for i in range(n)]))
    cam = camera(bpy, look_plus_y(0, 0))
    result = transfer(bpy, scene, cam, ref)
    from parascale.parascale_blender.animation import evaluated_poses
    centres = evaluated_poses(result.camera, scene, result.frames)[:, :3, 3]
    crossing = [f for f, a, b in zip(result.frames[1:], centres[:-1, 1], centres[1:, 1]) if a > -1.5 >= b]
    assert crossing, "the pull-back must reach the wall for this test to mean anything"
    found = codes(result)
    assert found["collision"].frames[0] == crossing[0]
    assert f"frames {crossing[0]}" in found["collision"].message

    stopped = transfer(bpy, scene, cam, ref, stop_short=True, result_name="Stopped")
    centres = evaluated_poses(stopped.camera, scene, stopped.frames)[:, :3, 3]
    assert centres[:, 1].min() >= -1.5 + 0.05 - 1e-6  # stops clip_start before the wall
    found = codes(stopped)
    assert "collision" not in found
    assert found["stopped_short"].frames[0] == crossing[0]


def test_path_through_a_box_names_both_faces(fresh_blender):
    bpy = fresh_blender
    n = 16
    scene = setup_scene(bpy, n)
    bpy.ops.mesh.primitive_plane_add(size=200, location=(0, 5, 0), rotation=(np.pi / 2, 0, 0))
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 0, 0))
    # a truck along x in steps of 0.4 from x = -3: frame k is at x = -3 + 0.4 (k - 1)
    ref = reference(np.stack([look_plus_y(-3 + 0.4 * i, 0) for i in range(n)]))
    cam = camera(bpy, look_plus_y(-3, 0))
    result = transfer(bpy, scene, cam, ref, method="raw")
    found = codes(result)
    # enters the box (x = -0.5) on the step into frame 8, leaves it (x = 0.5) into frame 10
    assert found["collision"].frames == [8, 10]
    assert "frames 8, 10" in found["collision"].message
    assert "inside_mesh" not in found


def test_start_inside_a_closed_mesh_and_near_clip(fresh_blender):
    bpy = fresh_blender
    n = 4
    scene = setup_scene(bpy, n)
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 0, 0))
    ref = reference(np.stack([look_plus_y(0, 0.05 * i) for i in range(n)]))
    cam = camera(bpy, look_plus_y(0, 0), clip_start=0.6)
    result = transfer(bpy, scene, cam, ref, method="raw")
    found = codes(result)
    assert found["inside_mesh"].frames == [1]
    # the face ahead is 0.5 away at the start, then 0.45, 0.40, 0.35: all inside clip_start 0.6
    assert found["near_clip"].frames == [1, 2, 3, 4]
    assert "frames 1, 2, 3, 4" in found["near_clip"].message


def test_ray_casts_see_the_scene_asked_for_not_the_context_scene(fresh_blender):
    """A second scene (the demo builds several): its own geometry is what is measured."""
    bpy = fresh_blender
    from parascale.parascale_blender.safety import realised_by_geometry

    other = bpy.data.scenes.new("Other")
    mesh = bpy.data.meshes.new("wall")
    mesh.from_pydata([(-50, 5, -50), (50, 5, -50), (50, 5, 50), (-50, 5, 50)], [], [(0, 1, 2, 3)])
    obj = bpy.data.objects.new("wall", mesh)
    other.collection.objects.link(obj)
    assert bpy.context.scene != other
    c2w = np.stack([look_plus_y(0, 0), look_plus_y(0.1, 0)])
    K = np.array([[32.0, 0, 32], [0, 32.0, 18], [0, 0, 1]])
    got = realised_by_geometry(other, c2w, K, 64, 36, grid=(16, 9))
    assert got["coverage"].min() == 1.0
    assert got["pi"][0] == pytest.approx(0.1 / 5.0, rel=1e-6)  # sideways over a plane at 5: |d| / Z


# ---------------------------------------------------------------------------
# Each safety warning on the asset kinds it meets in real files (tests/asset_scenes.py):
# a true positive and false positives, so a warning neither misses nor cries wolf.

def look(eye, at):
    from parascale.core.cameras import look_at
    return look_at(np.array(eye, float), np.array(at, float))


def truck(eye, at, step, n=4):
    """A sideways move: every pose looks the same way, the centre moves by `step` per frame."""
    eye, at, step = (np.array(v, float) for v in (eye, at, step))
    return np.stack([look(eye + i * step, at + i * step) for i in range(n)])


def run_raw(bpy, c2w, clip_start=0.05):
    scene = setup_scene(bpy, len(c2w))
    cam = camera(bpy, c2w[0], clip_start)
    return codes(transfer(bpy, scene, cam, reference(c2w), method="raw"))


def test_inside_mesh_fires_inside_a_closed_box(fresh_blender):
    bpy = fresh_blender
    from asset_scenes import closed_box

    closed_box(bpy, "Crate", (-2, -2, 0), (2, 2, 3))
    found = run_raw(bpy, truck((0.3, -0.5, 1.4), (0.3, 5, 1.4), (0.05, 0, 0)))
    assert found["inside_mesh"].frames == [1]
    assert "'Crate'" in found["inside_mesh"].message


@pytest.mark.parametrize("asset", ["open arena", "roofed arena", "open room", "closed room"])
def test_inside_mesh_does_not_fire_where_the_camera_is_in_the_open(fresh_blender, asset):
    """A one-sided arena (walls facing away from the play space, as game levels export
    them), the same with a roof of separate quads, a film set with a wall missing, a closed
    room whose faces point in: the camera is where a scene is filmed from, not inside a solid."""
    bpy = fresh_blender
    from asset_scenes import interior_room, one_sided_arena, open_room
    from parascale.parascale_blender.safety import RayCaster, crossings

    eye, at = (-4.0, -5.0, 1.7), (3.0, 9.0, 1.2)
    if asset == "open arena":
        one_sided_arena(bpy)
    elif asset == "roofed arena":
        one_sided_arena(bpy, roof=True)
    elif asset == "open room":
        open_room(bpy)
        eye, at = (0.0, 0.0, 1.5), (0.5, 4.0, 1.2)
    else:
        interior_room(bpy, furniture=False)
        eye, at = (-1.5, -2.5, 1.5), (0.8, 3.0, 1.0)
    bpy.context.view_layer.update()
    if asset == "roofed arena":
        # the case that cried wolf: every direction from the camera meets a face from behind
        caster = RayCaster(bpy.context.scene)
        rng = np.random.default_rng(0)
        dirs = rng.normal(size=(200, 3))
        first = [crossings(caster, np.array(eye), d)[0] for d in dirs]
        assert all(not front for _name, _dist, front in first)
    found = run_raw(bpy, truck(eye, at, (0.05, 0, 0)))
    assert "inside_mesh" not in found


def test_collision_fires_through_a_wall_and_not_in_the_open_arena(fresh_blender):
    bpy = fresh_blender
    from asset_scenes import open_room, one_sided_arena

    open_room(bpy)  # back wall at y = 4; a dolly of 1.5 per frame from y = 0 crosses it into frame 4
    found = run_raw(bpy, np.stack([look((0, 1.5 * i, 1.4), (0, 1.5 * i + 10, 1.4)) for i in range(4)]))
    assert found["collision"].frames == [4]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    one_sided_arena(bpy)  # every wall seen from behind, the move stays in the open
    found = run_raw(bpy, truck((-4, -5, 1.7), (3, 9, 1.2), (0.5, 0, 0), n=6))
    assert "collision" not in found


def test_near_clip_fires_at_an_arena_wall_seen_from_behind_and_not_in_an_open_room(fresh_blender):
    bpy = fresh_blender
    from asset_scenes import open_room, one_sided_arena

    one_sided_arena(bpy)  # the wall at y = 10 faces away: the camera 0.3 in front sees its back
    found = run_raw(bpy, truck((0, 9.7, 1.7), (0, 20, 1.7), (0.02, 0, 0)), clip_start=0.5)
    assert found["near_clip"].frames == [1, 2, 3, 4]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    open_room(bpy)  # looking out through the missing wall: nothing within clip_start
    found = run_raw(bpy, truck((0, 0, 1.4), (0, -10, 1.4), (0.05, 0, 0)), clip_start=0.5)
    assert "near_clip" not in found
