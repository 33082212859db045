"""Export of an animated camera from a small bpy scene: through `parascale export`
(subprocess, fresh Blender) and through export_camera in process; the written poses
equal the camera's evaluated poses; a camera without animation is a clear error."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parascale.core.formats import readers, writers

REPO = Path(__file__).resolve().parents[2]


def build_scene(bpy, blend: Path):
    """A camera flying a curved, rotating path over frames 1..12 (with custom-property
    curves like a ParaScale result), plus a static camera and a cube; saved to blend."""
    from parascale.parascale_blender import animation

    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.render.fps = 24
    scene.frame_start, scene.frame_end = 1, 12
    bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 5, 0))
    cam_data = bpy.data.cameras.new("Cam")
    cam_data.lens = 35
    cam = bpy.data.objects.new("Cam", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.rotation_mode = "XYZ"
    for f in range(1, 13):
        s = (f - 1) / 11
        cam.location = (np.sin(s * 2), -5 + 2 * s, 0.3 * s * s)
        cam.rotation_euler = (1.4 + 0.1 * s, 0.05 * s, 0.3 * s)
        cam.keyframe_insert("location", frame=f)
        cam.keyframe_insert("rotation_euler", frame=f)
        cam["pi_ref"] = 0.01 * f
        cam.keyframe_insert('["pi_ref"]', frame=f)
    cam["parascale_estimator"] = "harmonic"
    still = bpy.data.objects.new("Still", bpy.data.cameras.new("Still"))
    scene.collection.objects.link(still)
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    # the reference: the camera evaluated from the saved file, as the export sees it
    # (matrix_world is float32; evaluating before and after a reload differs by ~1e-7)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene, cam = bpy.context.scene, bpy.data.objects["Cam"]
    frames = list(range(1, 13))
    return animation.evaluated_poses(cam, scene, frames), animation.camera_intrinsics(cam, scene)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "parascale", "export", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)


def test_cli_export_equals_evaluated_poses(fresh_blender, tmp_path):
    blend = tmp_path / "scene.blend"
    c2w, (K, W, H) = build_scene(fresh_blender, blend)
    mtime = blend.stat().st_mtime

    out = tmp_path / "cam.json"
    r = cli("--blend", blend, "--camera", "Cam", "--format", "parascale", "--output", out)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "parascale_bridge.py").is_file()
    back = writers.read_parascale(out)
    np.testing.assert_allclose(back.c2w, c2w, atol=1e-9)
    np.testing.assert_allclose(back.K[0], K, atol=1e-9)
    assert (back.width, back.height) == (W, H) == (64, 36)
    np.testing.assert_allclose(back.times, np.arange(1, 13) / 24.0)
    np.testing.assert_allclose(back.meta["curves"]["pi_ref"], 0.01 * np.arange(1, 13), atol=1e-6)
    assert back.meta["estimator"] == "harmonic" and back.meta["reference"]["camera"] == "Cam"

    r = cli("--blend", blend, "--camera", "Cam", "--format", "re10k", "--output", tmp_path / "cam.txt",
            "--generator", "scene")
    assert r.returncode == 0, r.stderr
    t = readers.read_track(tmp_path / "cam.txt", "re10k", size=(W, H))
    # Blender's matrix_world is float32: its rotation block is orthonormal to ~1e-7, and
    # world-to-camera formats read back through a rigid inverse (R^T, -R^T t), so the
    # centres come back to ~1e-7 x |c|; the ParaScale json above is exact.
    np.testing.assert_allclose(t.c2w, c2w, atol=1e-6)
    np.testing.assert_allclose(t.K[0], K, atol=1e-9)

    r = cli("--blend", blend, "--camera", "Cam", "--format", "colmap", "--output", tmp_path / "sparse")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sparse" / "parascale_bridge.py").is_file()
    np.testing.assert_allclose(readers.read_track(tmp_path / "sparse", "colmap").c2w, c2w, atol=1e-6)

    # resampled to a generator's frame count: ends equal, count right
    r = cli("--blend", blend, "--camera", "Cam", "--format", "motionctrl", "--output", tmp_path / "m.json",
            "--frames", "16", "--generator", "scene")
    assert r.returncode == 0, r.stderr
    m = writers.read_motionctrl(tmp_path / "m.json")
    assert len(m) == 16
    np.testing.assert_allclose(m.c2w[[0, -1]], c2w[[0, -1]], atol=1e-6)

    # by default in MotionCtrl's gauge: the scene's poses x (3.568 / scene depth scale), said
    # on stdout and recorded in the manifest beside the file
    r = cli("--blend", blend, "--camera", "Cam", "--format", "motionctrl", "--output", tmp_path / "g.json",
            "--frames", "16")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "g.json.manifest.json").read_text())
    g = man["gauge"]
    assert g["generator"] == "motionctrl" and g["generator_depth_scale"] == pytest.approx(3.568)
    assert g["factor"] == pytest.approx(3.568 / g["scene_depth_scale"])
    assert f"translation x {g['factor']:.6g}" in r.stdout
    gm = writers.read_motionctrl(tmp_path / "g.json")
    np.testing.assert_allclose(gm.c2w[:, :3, 3], m.c2w[:, :3, 3] * g["factor"], rtol=1e-6, atol=1e-9)
    # the depth scale: flow Pi per unit translation over the start frame's Z pass, background
    # moving by zero; the same rule on an independent ray-cast depth of that pose agrees
    from parascale.core import gauge
    from parascale.parascale_blender.depth import RayCastDepth

    bpy = fresh_blender
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    with RayCastDepth(bpy.context.scene, 96, 54) as rc:
        view = rc.depth(c2w[0], K, W, H)
    expect = gauge.depth_scale(view.depth, view.K, gauge.move_direction(c2w))
    assert g["scene_depth_scale"] == pytest.approx(expect, rel=0.02)
    assert g["depth_frame"] == 1
    r = cli("--blend", blend, "--camera", "Cam", "--format", "colmap", "--output", tmp_path / "s2",
            "--speed", "2")
    assert r.returncode == 2 and "speed" in r.stderr

    # bad inputs: clear one-line errors, exit 2, nothing written; the .blend never saved
    before = sorted(os.listdir(tmp_path))
    r = cli("--blend", blend, "--camera", "Still", "--format", "re10k", "--output", tmp_path / "x.txt")
    assert r.returncode == 2 and "has no animation" in r.stderr and "Still" in r.stderr
    r = cli("--blend", blend, "--camera", "Nope", "--format", "re10k", "--output", tmp_path / "x.txt")
    assert r.returncode == 2 and "no object 'Nope'" in r.stderr
    r = cli("--blend", blend, "--camera", "Cam", "--format", "re10k", "--output", tmp_path / "x.txt",
            "--frames", "1")
    assert r.returncode == 2 and "at least 2" in r.stderr
    assert sorted(os.listdir(tmp_path)) == before
    assert blend.stat().st_mtime == mtime


def test_export_camera_in_process_gen3c_and_operator(fresh_blender, tmp_path):
    bpy = fresh_blender
    from parascale.parascale_blender.export import export_camera

    c2w, (K, W, H) = build_scene(bpy, tmp_path / "s.blend")
    scene = bpy.context.scene
    cam = bpy.data.objects["Cam"]
    paths = export_camera(scene, cam, "gen3c", tmp_path / "g", frames=4, depth_size=(16, 9))
    assert paths == [str(tmp_path / "g"), str(tmp_path / "g" / "parascale_bridge.py"),
                     str(tmp_path / "g" / "manifest.json")]
    # GEN3C's gauge: translation and depth both in units of the start frame's depth scale
    factor = json.loads((tmp_path / "g" / "manifest.json").read_text())["gauge"]["factor"]
    camz = np.load(tmp_path / "g" / "camera.npz")
    expect = c2w[[0, -1]].copy()
    expect[:, :3, 3] *= factor
    np.testing.assert_allclose(np.linalg.inv(camz["w2c"][[0, -1]]), expect, atol=1e-6)
    depth = np.load(tmp_path / "g" / "depth.npz")["depth"]
    assert depth.shape == (4, 9, 16)
    assert np.isfinite(depth).any() and np.isinf(depth).any()  # the cube, and background
    # the file's depth is the scene's (an independent ray cast of frame 1) x the same factor
    from parascale.parascale_blender.depth import RayCastDepth

    with RayCastDepth(scene, 16, 9) as rc:
        z = rc.depth(c2w[0], K, W, H).depth
    both = np.isfinite(z) & np.isfinite(depth[0])
    assert both.sum() >= 3
    assert np.median(depth[0][both] / z[both]) == pytest.approx(factor, rel=0.01)

    rec = export_camera(scene, cam, "recammaster", tmp_path / "r.json")
    assert len(json.loads(Path(rec[0]).read_text())) == 81

    with pytest.raises(ValueError, match="has no animation"):
        export_camera(scene, bpy.data.objects["Still"], "re10k", tmp_path / "still.txt")

    # the operator: registered, enabled while any camera moves, writes through export_camera
    from parascale.operators import export_poses
    bpy.utils.register_class(export_poses.PARASCALE_OT_export_poses)
    try:
        assert bpy.ops.parascale.export_poses.poll()
        res = bpy.ops.parascale.export_poses(filepath=str(tmp_path / "op.json"), format="parascale",
                                             frame_count=5)
        assert res == {"FINISHED"}
        assert len(writers.read_parascale(tmp_path / "op.json")) == 5
        scene.camera = bpy.data.objects["Still"]
        assert bpy.ops.parascale.export_poses.poll()  # the scene camera is still; the moving one is found
        assert export_poses.default_camera(bpy.context) == cam
        cam.animation_data_clear()
        assert not bpy.ops.parascale.export_poses.poll()  # no camera moves: nothing to export
    finally:
        bpy.utils.unregister_class(export_poses.PARASCALE_OT_export_poses)


def test_export_size_gen3c_depth_at_that_size_and_option_names(fresh_blender, tmp_path):
    """size: the view scaled to cover it and cropped at the centre; GEN3C's depth is a Z pass
    at that size (not the 96x54 calibration grid) with the same K as camera.npz; messages
    name the option where the user sets it (Frames in Blender, --frames on the command line)."""
    bpy = fresh_blender
    from parascale.parascale_blender.export import export_with_gauge

    c2w, (K, W, H) = build_scene(bpy, tmp_path / "s.blend")
    scene, cam = bpy.context.scene, bpy.data.objects["Cam"]
    res = export_with_gauge(scene, cam, "gen3c", tmp_path / "g", frames=4, size=(32, 24), ui="blender")
    camz, depthz = np.load(tmp_path / "g" / "camera.npz"), np.load(tmp_path / "g" / "depth.npz")
    assert list(camz["image_size"]) == [32, 24] and res.image_size == (32, 24)
    assert depthz["depth"].shape == (4, 24, 32)
    np.testing.assert_allclose(depthz["intrinsics"], camz["intrinsics"], rtol=1e-12)
    # 64x36 covers 32x24 at scale 2/3: focal x 2/3, centre cropped
    s = 24 / 36
    np.testing.assert_allclose(camz["intrinsics"][0][[0, 1], [0, 1]], K[[0, 1], [0, 1]] * s, rtol=1e-9)
    np.testing.assert_allclose(camz["intrinsics"][0][:2, 2], [K[0, 2] * s - (64 * s - 32) / 2, K[1, 2] * s],
                               rtol=1e-9)
    man = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert man["depth"]["size"] == [32, 24] and man["image_size"] == [32, 24]
    assert any("resample it (Frames)" in w for w in res.warnings), res.warnings  # 4 frames: GEN3C takes 121
    # no size: the depth is at the render size
    export_with_gauge(scene, cam, "gen3c", tmp_path / "g2", frames=3)
    assert np.load(tmp_path / "g2" / "depth.npz")["depth"].shape == (3, 36, 64)
    r = cli("--blend", tmp_path / "s.blend", "--camera", "Cam", "--format", "gen3c", "--output", tmp_path / "g3",
            "--frames", "3", "--size", "16x12")
    assert r.returncode == 0, r.stderr
    assert "resample it (--frames)" in r.stderr and "(Frames)" not in r.stderr
    assert np.load(tmp_path / "g3" / "depth.npz")["depth"].shape == (3, 12, 16)


def test_realestate10k_for_cameractrl_is_precorrected_for_1280x720(fresh_blender, tmp_path):
    """At a size that is not 16:9, the RealEstate10K file for CameraCtrl (and VideoX-Fun's
    Wan) is written so that CameraCtrl's 1280x720 aspect correction gives back K: read
    CameraCtrl's way it equals the file the bridge writes for the same move (its
    plucker.npy), and no 16:9 warning is given; for a gauge without that reader it warns."""
    bpy = fresh_blender
    from generator_refs import cameractrl_reference
    from parascale.parascale_blender.export import export_with_gauge

    build_scene(bpy, tmp_path / "s.blend")
    scene, cam = bpy.context.scene, bpy.data.objects["Cam"]
    res = export_with_gauge(scene, cam, "re10k", tmp_path / "cc.txt", frames=16, size=(24, 16))
    assert not any("16:9" in w for w in res.warnings), res.warnings
    json_res = export_with_gauge(scene, cam, "parascale", tmp_path / "cc.json", frames=16, size=(24, 16))
    bridge = tmp_path / "parascale_bridge.py"
    r = subprocess.run([sys.executable, str(bridge), str(tmp_path / "cc.json"), "--generator", "cameractrl",
                        "--out", str(tmp_path / "b"), "--size", "16x24", "--plucker"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    emb = np.load(tmp_path / "b" / "plucker.npy")
    np.testing.assert_allclose(cameractrl_reference(tmp_path / "cc.txt", 16, 24), emb, rtol=1e-5, atol=1e-5)
    assert json_res.image_size == (24, 16)
    other = export_with_gauge(scene, cam, "re10k", tmp_path / "ac3d.txt", frames=16, size=(24, 16), generator="ac3d")
    assert any("not 16:9" in w for w in other.warnings)
