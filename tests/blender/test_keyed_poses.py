"""Camera poses read from F-curves in one pass (issue 23, long tracks in linear time):
the same matrices, to 1e-9, as the depsgraph gives frame by frame, for every kind of
keyed camera; parented, constrained, driven and NLA cameras go through the depsgraph."""
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _camera(bpy, name="Cam"):
    obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _both(bpy, obj, frames):
    from parascale.parascale_blender import animation

    scene = bpy.context.scene
    fast = animation.keyed_poses(obj, frames, scene)
    assert fast is not None, "a camera moved by its own action alone is read from its F-curves"
    baked = animation.baked_poses(obj, scene, frames)
    return fast, baked


# frames on keys, between keys, at sub-frames, before and after the keyed range
FRAMES = [-3, 0, 1, 1.25, 2, 2.5, 3.7, 5, 7.01, 9.99, 10, 11, 12, 14.5, 20, 23.0001]


def _key_everything(bpy, obj, interpolation, rotation_mode):
    obj.rotation_mode = rotation_mode
    obj.delta_location = (0.1, -0.2, 0.05)
    obj.delta_rotation_euler = (0.02, 0.01, -0.03)
    obj.delta_rotation_quaternion = (0.99, 0.01, 0.02, 0.0)
    rng = np.random.default_rng(3)
    for f in (1, 4, 5, 9, 12, 17):
        obj.location = rng.normal(size=3) * 3
        if rotation_mode == "QUATERNION":
            q = rng.normal(size=4)
            obj.rotation_quaternion = q / np.linalg.norm(q) * 1.001  # Blender normalises on use
            obj.keyframe_insert("rotation_quaternion", frame=f)
        elif rotation_mode == "AXIS_ANGLE":
            obj.rotation_axis_angle = [rng.uniform(-3, 3), *rng.normal(size=3)]
            obj.keyframe_insert("rotation_axis_angle", frame=f)
        else:
            obj.rotation_euler = rng.uniform(-3, 3, size=3)
            obj.keyframe_insert("rotation_euler", frame=f)
        obj.keyframe_insert("location", frame=f)
    for fc in _curves(obj):
        for kp in fc.keyframe_points:
            kp.interpolation = interpolation
        fc.update()


def _curves(obj):
    from bpy_extras.anim_utils import action_get_channelbag_for_slot
    ad = obj.animation_data
    return list(action_get_channelbag_for_slot(ad.action, ad.action_slot).fcurves)


@pytest.mark.parametrize("interpolation,rotation_mode", [
    ("LINEAR", "QUATERNION"), ("CONSTANT", "XYZ"), ("BEZIER", "ZXY"), ("LINEAR", "AXIS_ANGLE"),
    ("BEZIER", "QUATERNION")])
def test_keyed_camera_same_matrices(fresh_blender, interpolation, rotation_mode):
    bpy = fresh_blender
    obj = _camera(bpy)
    _key_everything(bpy, obj, interpolation, rotation_mode)
    fast, baked = _both(bpy, obj, FRAMES)
    np.testing.assert_allclose(fast, baked, rtol=0, atol=1e-9)


def test_extrapolation_modifiers_and_a_long_linear_track(fresh_blender):
    """Linear extrapolation, an F-curve modifier, and a result-like camera keyed on every
    frame (written in bulk, linear keys) read at every frame and between frames."""
    bpy = fresh_blender
    from parascale.core.cameras import look_at
    from parascale.parascale_blender import animation

    obj = _camera(bpy)
    n = 3000
    th = np.linspace(0, 6, n)
    c2w = np.stack([look_at((3 * np.cos(t), 3 * np.sin(t), 1 + 0.1 * t), (0, 0, 0)) for t in th])
    animation.write_camera_animation(obj, c2w, np.arange(1, n + 1), "long", curves={"pi_ref": np.ones(n)})
    curves = _curves(obj)
    curves[0].extrapolation = "LINEAR"
    curves[4].modifiers.new("NOISE")
    frames = np.r_[np.arange(-5, n + 6), np.linspace(1, n, 977) + 0.37]
    fast, baked = _both(bpy, obj, frames)
    np.testing.assert_allclose(fast, baked, rtol=0, atol=1e-9)
    # the keyed positions read back as written (float32 keys; the noise is on a rotation curve)
    np.testing.assert_allclose(fast[6:6 + n, :3, 3], c2w[:, :3, 3], atol=1e-5)


def test_unanimated_and_static_channels(fresh_blender):
    bpy = fresh_blender
    obj = _camera(bpy)
    obj.location = (1, 2, 3)
    obj.rotation_euler = (0.3, 0.2, 0.1)
    fast, baked = _both(bpy, obj, [1, 5])
    np.testing.assert_allclose(fast, baked, rtol=0, atol=1e-9)
    obj.keyframe_insert("location", index=1, frame=1)   # one channel keyed, the rest static
    obj.location.y = 7
    obj.keyframe_insert("location", index=1, frame=9)
    fast, baked = _both(bpy, obj, [1, 3.5, 9])
    np.testing.assert_allclose(fast, baked, rtol=0, atol=1e-9)


def _parented(bpy):
    obj = _camera(bpy)
    parent = bpy.data.objects.new("Rig", None)
    bpy.context.scene.collection.objects.link(parent)
    obj.parent = parent
    obj.location = (0, -2, 0.5)
    for f, x in ((1, 0.0), (10, 4.0)):
        parent.location.x = x
        parent.rotation_euler.z = 0.1 * x
        parent.keyframe_insert("location", frame=f)
        parent.keyframe_insert("rotation_euler", frame=f)
    return obj


def _constrained(bpy):
    obj = _parented(bpy)
    target = bpy.data.objects.new("Look", None)
    bpy.context.scene.collection.objects.link(target)
    target.location = (0, 5, 0)
    obj.constraints.new("TRACK_TO").target = target
    return obj


def _nla(bpy):
    obj = _camera(bpy)
    for f, x in ((1, 0.0), (10, 3.0)):
        obj.location.x = x
        obj.keyframe_insert("location", frame=f)
    action = obj.animation_data.action
    track = obj.animation_data.nla_tracks.new()
    track.strips.new("move", 1, action)
    obj.animation_data.action = None
    return obj


def _driven(bpy):
    obj = _camera(bpy)
    fc = obj.driver_add("location", 0)
    fc.driver.expression = "frame * 0.1"
    return obj


@pytest.mark.parametrize("make", [_parented, _constrained, _nla, _driven])
def test_parents_constraints_nla_drivers_go_through_the_depsgraph(fresh_blender, make):
    bpy = fresh_blender
    from parascale.parascale_blender import animation

    obj = make(bpy)
    scene = bpy.context.scene
    assert animation.keyed_poses(obj, [1, 5], scene) is None
    poses = animation.evaluated_poses(obj, scene, [1, 3, 5.5, 10])
    np.testing.assert_allclose(poses, animation.baked_poses(obj, scene, [1, 3, 5.5, 10]), atol=0)
    assert not np.allclose(poses[0], poses[-1]), "the camera moves"


def test_scaled_camera_is_refused_on_both_paths(fresh_blender):
    bpy = fresh_blender
    from parascale.parascale_blender import animation

    obj = _camera(bpy)
    obj.scale = (2, 2, 2)
    obj.keyframe_insert("location", frame=1)
    with pytest.raises(ValueError, match="world scale"):
        animation.evaluated_poses(obj, bpy.context.scene, [1, 2])


def _intrinsics_by_frame_set(bpy, obj, frames):
    from parascale.parascale_blender import animation

    scene = bpy.context.scene
    Ks = []
    for f in frames:
        whole = int(np.floor(f))
        scene.frame_set(whole, subframe=float(f - whole))
        Ks.append(animation.camera_intrinsics(obj, scene)[0])
    scene.frame_set(1)
    return np.array(Ks)


@pytest.mark.parametrize("driven", [False, True])
def test_zoom_intrinsics_same_as_frame_by_frame(fresh_blender, driven):
    bpy = fresh_blender
    from parascale.parascale_blender import animation

    obj = _camera(bpy)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 320, 180
    data = obj.data
    for f, lens, shift in ((1, 30.0, 0.0), (6, 45.0, 0.05), (10, 60.0, -0.1)):
        data.lens, data.shift_x = lens, shift
        data.keyframe_insert("lens", frame=f)
        data.keyframe_insert("shift_x", frame=f)
    if driven:
        data.driver_add("shift_y").driver.expression = "frame * 0.001"
    frames = [0, 1, 2.5, 6, 7.25, 10, 12]
    Ks, W, H = animation.camera_intrinsics_at(obj, scene, frames)
    assert (W, H) == (320, 180)
    np.testing.assert_allclose(Ks, _intrinsics_by_frame_set(bpy, obj, frames), rtol=0, atol=1e-9)
    assert Ks[0, 0, 0] < Ks[-1, 0, 0], "the lens zooms in"
