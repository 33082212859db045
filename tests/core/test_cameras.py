"""Camera conventions: Blender parameters <-> K, axes, resampling."""
import itertools

import numpy as np
import pytest

from parascale.core.cameras import (BlenderCamera, Track, TrackError, blender_from_intrinsics,
                                    blender_to_cv, cv_to_blender, intrinsics_from_blender, make_c2w,
                                    project, relative_poses, resample_poses, steps)
from parascale.core.rotations import continuous_quats, matrix_from_quat, quat_from_matrix, rotation_angle

# Small images: mathutils works in float32, which alone costs ~1e-4 px at 1000 px.
CASES = list(itertools.product([(400, 240), (240, 400)], ["AUTO", "HORIZONTAL", "VERTICAL"],
                               [(0.0, 0.0), (0.12, -0.07)]))


def random_rotations(n, seed=0):
    return matrix_from_quat(np.random.default_rng(seed).normal(size=(n, 4)))


@pytest.mark.parametrize("size,fit,shift", CASES)
def test_projection_matches_world_to_camera_view(fresh_blender, size, fit, shift):
    bpy = fresh_blender
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Matrix, Vector

    scene = bpy.context.scene
    r = scene.render
    r.resolution_x, r.resolution_y = size
    r.resolution_percentage = 50
    r.pixel_aspect_x, r.pixel_aspect_y = 1.0, 1.3
    data = bpy.data.cameras.new("cam")
    data.lens, data.sensor_width, data.sensor_height = 35.0, 36.0, 20.0
    data.sensor_fit = fit
    data.shift_x, data.shift_y = shift
    obj = bpy.data.objects.new("cam", data)
    scene.collection.objects.link(obj)
    c2w_cv = make_c2w(random_rotations(1, 5)[0], [0.3, -2.0, 1.0])
    obj.matrix_world = Matrix(cv_to_blender(c2w_cv).tolist())
    bpy.context.view_layer.update()

    params = BlenderCamera(lens=35.0, sensor_width=36.0, sensor_height=20.0, sensor_fit=fit,
                           shift_x=shift[0], shift_y=shift[1], resolution_x=size[0], resolution_y=size[1],
                           resolution_percentage=50, pixel_aspect_x=1.0, pixel_aspect_y=1.3)
    K, W, H = intrinsics_from_blender(params)
    rng = np.random.default_rng(1)
    cam_pts = np.c_[rng.uniform(-1, 1, (20, 2)), rng.uniform(2, 6, 20)]
    world = cam_pts @ c2w_cv[:3, :3].T + c2w_cv[:3, 3]
    uv, z = project(K, c2w_cv, world)
    for p, (u, v), zz in zip(world, uv, z):
        ndc = world_to_camera_view(scene, obj, Vector(p))
        assert abs(ndc.x * W - u) < 1e-4 and abs((1 - ndc.y) * H - v) < 1e-4
        assert ndc.z == pytest.approx(zz, rel=1e-6)


@pytest.mark.parametrize("size,fit,shift", CASES)
def test_parameters_round_trip(size, fit, shift):
    params = BlenderCamera(lens=28.0, sensor_width=36.0, sensor_height=24.0, sensor_fit=fit,
                           shift_x=shift[0], shift_y=shift[1], resolution_x=size[0], resolution_y=size[1],
                           resolution_percentage=100, pixel_aspect_x=1.0, pixel_aspect_y=1.25)
    K, W, H = intrinsics_from_blender(params)
    back = blender_from_intrinsics(K, W, H, sensor_fit=fit, sensor_width=36.0, sensor_height=24.0)
    for name in ("lens", "shift_x", "shift_y", "pixel_aspect_x", "pixel_aspect_y"):
        assert getattr(back, name) == pytest.approx(getattr(params, name), rel=1e-12, abs=1e-12), name
    assert (back.resolution_x, back.resolution_y, back.sensor_fit) == (params.resolution_x, params.resolution_y, fit)
    # Any other sensor choice must still render the same K.
    other = blender_from_intrinsics(K, W, H, sensor_fit="VERTICAL", sensor_width=23.5)
    assert np.allclose(intrinsics_from_blender(other)[0], K, rtol=1e-12)


def test_axes_conversion_is_an_involution_and_looks_down_minus_z():
    mw = np.eye(4)
    c2w = blender_to_cv(mw)
    assert np.allclose(c2w[:3, 2], [0, 0, -1])  # OpenCV z (forward) = Blender -z
    assert np.allclose(c2w[:3, 1], [0, -1, 0])  # OpenCV y (down) = Blender -y
    assert np.allclose(cv_to_blender(c2w), mw)


def test_steps_and_relative_poses():
    R = random_rotations(5, 2)
    c = np.random.default_rng(3).normal(size=(5, 3))
    c2w = make_c2w(R, c)
    d, dR = steps(c2w)
    assert np.allclose(d[1], R[1].T @ (c[2] - c[1]))
    assert np.allclose(dR[3], R[3].T @ R[4])
    rel = relative_poses(c2w)
    assert np.allclose(rel[0], np.eye(4))
    d_rel, dR_rel = steps(rel)  # steps do not depend on the world frame
    assert np.allclose(d_rel, d) and np.allclose(dR_rel, dR)


def test_quaternions_round_trip_and_stay_continuous():
    R = random_rotations(200, 4)
    q = quat_from_matrix(R)
    assert np.allclose(matrix_from_quat(q), R, atol=1e-12)
    q[::2] *= -1
    cont = continuous_quats(q)
    assert (np.einsum("ij,ij->i", cont[1:], cont[:-1]) >= 0).all()
    assert np.allclose(matrix_from_quat(cont), R, atol=1e-12)


def test_resample_slerps_rotation_and_lerps_centre():
    axis_angle = np.radians([0, 40])
    R = np.stack([[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]] for a in axis_angle])
    c2w = make_c2w(R, [[0, 0, 0], [2, 0, 0]])
    out = resample_poses(c2w, np.array([0.0, 1.0]), np.array([0.0, 0.25, 0.5, 1.0, 2.0]))
    assert np.degrees(rotation_angle(out[1, :3, :3])) == pytest.approx(10.0)
    assert np.degrees(rotation_angle(out[2, :3, :3])) == pytest.approx(20.0)
    assert out[2, 0, 3] == pytest.approx(1.0)
    assert np.allclose(out[4], c2w[1])  # clamped past the end


def test_track_validation_names_the_frame():
    c2w = np.stack([np.eye(4)] * 3)
    c2w[1, 0, 0] = 2.0
    with pytest.raises(TrackError, match=r"frame 1 \(b\) is not a rotation"):
        Track(c2w, np.eye(3), 10, 10, None, names=["a", "b", "c"])
    c2w = np.stack([np.eye(4)] * 3)
    c2w[2, 0, 3] = np.nan
    with pytest.raises(TrackError, match="pose of frame 2 .* not finite"):
        Track(c2w, np.eye(3), 10, 10, None)
