"""Calibration at the cost of its depth (issue 23): what is not the Z pass was removed
without changing a step or a warning.

- The steps and warnings of transfers on two analytic scenes equal the numbers recorded
  from the implementation before the change (Z pass, harmonic and exact, with and
  without stop-short), to 1e-6.
- check_path (safety) asks Blender only where geometry can be; its warnings equal
  casting every ray, on scenes with instances, scaled and hidden objects and near
  geometry, and a camera far from everything casts no grid at all.
"""
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Recorded with the implementation before issue 23 (main at 3569275), bpy 5.2.3.
RECORDED = {
    "tabletop_harmonic": {"scale": [0.028846332606, 0.0344936550393, 0.0343993070633, 0.0285874354955, 0.0220903844618, 0.0204980930415, 0.0248539558779, 0.0307493281621, 0.0324572219934, 0.028291349051, 0.0218710813104], "warnings": {}},  # noqa: E501
    "tabletop_harmonic_stop_short": {"scale": [0.028846332606, 0.0344936550393, 0.0343993070633, 0.0285874354955, 0.0220903844618, 0.0204980930415, 0.0248539558779, 0.0307493281621, 0.0324572219934, 0.028291349051, 0.0218710813104], "warnings": {}},  # noqa: E501
    "tabletop_exact": {"scale": [0.0440678013172, 0.0513572934271, 0.0501328921714, 0.0408932905483, 0.03110781417, 0.0283725078123, 0.0336203965488, 0.0405178692912, 0.0417582991564, 0.0355808297567, 0.0270078912341], "warnings": {}},  # noqa: E501
    "tabletop_exact_stop_short": {"scale": [0.0440678013172, 0.0513572934271, 0.0501328921714, 0.0408932905483, 0.03110781417, 0.0283725078123, 0.0336203965488, 0.0405178692912, 0.0417582991564, 0.0355808297567, 0.0270078912341], "warnings": {}},  # noqa: E501
    "wall_exact": {"scale": [0.445108714379, 0.484733068354, 0.527884852093, 0.574878065749, 0.0474133981563, 0.0516342171334, 0.056230793551, 0.0612365558981, 0.0666879465338], "warnings": {"collision": [5]}},  # noqa: E501
    "wall_exact_stop_short": {"scale": [0.445108714379, 0.484733068354, 0.520158216522, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "warnings": {"stopped_short": [4, 5, 6, 7, 8, 9, 10]}},  # noqa: E501
    "wall_harmonic": {"scale": [0.15, 0.154500002861, 0.15913500309, 0.163909049034, 0.168826320171, 0.173891115189, 0.179107847214, 0.184481077194, 0.190015511488], "warnings": {"estimator_mismatch": [], "near_clip": [10], "collision": [10]}},  # noqa: E501
    "wall_harmonic_stop_short": {"scale": [0.15, 0.154500002861, 0.15913500309, 0.163909049034, 0.168826320171, 0.173891115189, 0.179107847214, 0.184481077194, 0.116149584502], "warnings": {"estimator_mismatch": [], "stopped_short": [10]}},  # noqa: E501
}


def _run(scene, cam, ref, **kw):
    from parascale.parascale_blender import pipeline

    r = pipeline.transfer(scene, cam, ref, pipeline.TransferOptions(**kw))
    return np.asarray(r.scale), {w.code: list(w.frames) for w in r.warnings}


def _check(name, got):
    scale, warnings = got
    np.testing.assert_allclose(scale, RECORDED[name]["scale"], rtol=0, atol=1e-6, err_msg=name)
    assert warnings == RECORDED[name]["warnings"], name


def test_tabletop_steps_equal_the_recorded_ones(fresh_blender):
    bpy = fresh_blender
    from analytic_scenes import reference_move
    from blender_scenes import add_camera, build_tabletop

    from parascale.parascale_blender import pipeline

    build_tabletop(bpy)
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 12
    c2w = reference_move(12)
    cam = add_camera(bpy, "Target", c2w[0])
    pi = 0.02 + 0.005 * np.sin(np.arange(11))
    for source, estimator in (("scene", "harmonic"), ("video", "exact")):
        ref = pipeline.ReferenceMotion(c2w, np.arange(12) / 24, pi, estimator, source, "ref")
        _check(f"tabletop_{estimator}", _run(scene, cam, ref, depth_size=(48, 27)))
        _check(f"tabletop_{estimator}_stop_short",
               _run(scene, cam, ref, depth_size=(48, 27), stop_short=True, result_name="S"))


def _look_plus_y(x, y):
    from parascale.core.cameras import look_at
    return look_at(np.array([x, y, 0.0]), np.array([x, y + 10.0, 0.0]))


def test_pull_back_through_a_wall_steps_equal_the_recorded_ones(fresh_blender):
    bpy = fresh_blender
    from blender_scenes import add_camera

    from parascale.parascale_blender import pipeline

    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y, scene.render.fps = 64, 36, 24
    scene.frame_start, scene.frame_end = 1, 10
    bpy.ops.mesh.primitive_plane_add(size=200, location=(0, 5, 0), rotation=(np.pi / 2, 0, 0))
    bpy.ops.mesh.primitive_plane_add(size=200, location=(0, -1.5, 0), rotation=(np.pi / 2, 0, 0))
    ref = pipeline.ReferenceMotion(np.stack([_look_plus_y(0, -0.1 * i) for i in range(10)]), np.arange(10) / 24,
                                   np.full(9, 0.03), "exact", "scene", "wall")
    cam = add_camera(bpy, "Target", _look_plus_y(0, 0))
    cam.data.clip_start, cam.data.clip_end = 0.05, 1000
    for estimator in ("exact", "harmonic"):
        _check(f"wall_{estimator}", _run(scene, cam, ref, depth_size=(32, 18), method=estimator))
        _check(f"wall_{estimator}_stop_short", _run(scene, cam, ref, depth_size=(32, 18), method=estimator,
                                                    stop_short=True, result_name="S"))


# ---------------------------------------------------------------------------
# check_path: the same warnings as casting every ray

def _cast_everywhere(monkeypatch):
    from parascale.parascale_blender import safety

    monkeypatch.setattr(safety.GeometryBounds, "anything_within",
                        lambda self, points, radius: np.ones(len(np.reshape(points, (-1, 3))), bool))
    monkeypatch.setattr(safety.GeometryBounds, "segments_touch",
                        lambda self, a, b: np.ones(len(np.reshape(a, (-1, 3))), bool))
    monkeypatch.setattr(safety.GeometryBounds, "inside_any_box", lambda self, point: True)


def _warnings(scene, c2w, clip_start):
    from parascale.parascale_blender import safety

    K = np.array([[40.0, 0, 32], [0, 40.0, 18], [0, 0, 1]])
    found = safety.check_path(scene, c2w, list(range(1, len(c2w) + 1)), K, 64, 36, clip_start)
    return {w.code: (w.frames, w.message) for w in found}


def _busy_scene(bpy):
    """A scaled, rotated cube on the path, a collection instance beside it, a hidden
    wall (hidden objects are not hit), a small sphere near the path, a far floor."""
    scene = bpy.context.scene
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 2.0, 0), rotation=(0.3, 0.2, 0.5), scale=(0.4, 2.0, 0.3))
    bpy.ops.mesh.primitive_plane_add(size=100, location=(0, 0, -3))
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.2, location=(1.3, 4.0, 0.25))
    bpy.ops.mesh.primitive_plane_add(size=4, location=(0, 6.0, 0), rotation=(np.pi / 2, 0, 0))
    hidden = bpy.context.active_object
    hidden.hide_viewport = True
    group = bpy.data.collections.new("Props")
    bpy.ops.mesh.primitive_ico_sphere_add(radius=0.3, location=(0, 0, 0))
    ico = bpy.context.active_object
    for c in ico.users_collection:
        c.objects.unlink(ico)
    group.objects.link(ico)
    holder = bpy.data.objects.new("Holder", None)
    holder.instance_type, holder.instance_collection = "COLLECTION", group
    holder.location = (-1.2, 3.0, 0.0)
    scene.collection.objects.link(holder)
    return scene


@pytest.mark.parametrize("path", ["through", "beside", "far"])
def test_check_path_same_as_casting_every_ray(fresh_blender, monkeypatch, path):
    bpy = fresh_blender
    scene = _busy_scene(bpy)
    ys = np.linspace(-2, 8, 26)
    x = {"through": 0.0, "beside": -1.0, "far": 40.0}[path]   # beside: grazes the instance
    c2w = np.stack([_look_plus_y(x + 0.05 * np.sin(y), y) for y in ys])
    fast = _warnings(scene, c2w, 0.4)
    _cast_everywhere(monkeypatch)
    assert _warnings(scene, c2w, 0.4) == fast
    if path == "through":
        assert "collision" in fast and "near_clip" in fast, "the path must meet the cube for this to test anything"
    if path == "beside":
        assert "near_clip" in fast, "the path must pass near the instance for this to test anything"


def test_start_inside_a_mesh_same_as_casting_every_ray(fresh_blender, monkeypatch):
    bpy = fresh_blender
    bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 0, 0), scale=(1.5, 1.5, 1.5))
    scene = bpy.context.scene
    c2w = np.stack([_look_plus_y(0, 0.05 * i) for i in range(4)])
    fast = _warnings(scene, c2w, 0.6)
    assert "inside_mesh" in fast
    _cast_everywhere(monkeypatch)
    assert _warnings(scene, c2w, 0.6) == fast


def test_a_camera_far_from_geometry_casts_no_grid(fresh_blender, monkeypatch):
    """The bench's case: a camera flying over a large terrain never comes within its
    clip_start of it, so no grid of rays is cast (one box test per pose)."""
    bpy = fresh_blender
    from parascale.parascale_blender import safety

    bpy.ops.mesh.primitive_grid_add(x_subdivisions=50, y_subdivisions=50, size=20)
    scene = bpy.context.scene
    grids = []
    real = safety.RayCaster.nearer_than
    monkeypatch.setattr(safety.RayCaster, "nearer_than", lambda self, *a, **k: grids.append(1) or real(self, *a, **k))
    from parascale.core.cameras import look_at
    c2w = np.stack([look_at(np.array([-1.5 + 0.1 * i, -12.0 + 0.2 * i, 5.0]), np.zeros(3)) for i in range(30)])
    assert _warnings(scene, c2w, 0.1) == {}
    assert grids == []
    c2w[:, 2, 3] = 0.02   # now skimming the grid: the rays are cast, and find it
    assert "near_clip" in _warnings(scene, c2w, 0.1)
    assert grids


def test_too_many_instances_to_box_casts_everywhere(fresh_blender, monkeypatch):
    """Past GeometryBounds.MAX_BOXES objects and instances, every pose is a "maybe" (the
    boxes would cost more than the rays): the same warnings as with the boxes."""
    bpy = fresh_blender
    from parascale.parascale_blender import safety

    scene = _busy_scene(bpy)
    c2w = np.stack([_look_plus_y(0.05 * np.sin(y), y) for y in np.linspace(-2, 8, 26)])
    boxed = _warnings(scene, c2w, 0.4)
    monkeypatch.setattr(safety.GeometryBounds, "MAX_BOXES", 2)
    assert safety.GeometryBounds(safety.scene_depsgraph(scene)).everywhere
    assert _warnings(scene, c2w, 0.4) == boxed
