"""Real third-party target scenes (glTF, imported with Blender's own importer) and real
CameraCtrl references, shared by tests/blender/test_real_scenes.py and tests/real_scenes_sweep.py.

The start poses are what an animator would pick: the ship framed three-quarters, filling
most of the frame; in the town, standing in the street looking across the houses. The
target lens matches the reference's field of view (RealEstate10K: fx about 0.48 W).
"""
from pathlib import Path

import numpy as np

CLIPS = ("0bf152ef84195293", "0c11dbe781b1c11c", "0c9b371cc6225682", "0f47577ab3441480",
         "0f68374b76390082", "2c80f9eb0d3b2bb4", "2f25826f0d0ef09a", "3c35b868a8ec3433",
         "3f79dc32d575bcdc", "4a2d6753676df096")
PULL_BACK = "0f47577ab3441480"
SCENES = {"ship": "real_scenes/dutch_ship/dutch_ship_medium_1k.gltf",
          "town": "real_scenes/truck_town/town_model.gltf"}
FPS = 8
WIDTH, HEIGHT = 384, 216


def start_pose(name: str) -> np.ndarray:
    """c2w (OpenCV axes) at scale 1."""
    from parascale.core.cameras import look_at

    if name == "ship":
        centre = np.array([1.7, 0.1, 9.0])
        return look_at(centre + np.array([-0.55, -0.8, 0.12]) / np.linalg.norm([-0.55, -0.8, 0.12]) * 30.0,
                       centre)
    if name == "town":
        return look_at(np.array([2.0, -14.0, 15.0]), np.array([16.5, 7.7, 12.5]))
    if name == "town_down":  # the same street, looking down at the houses: no sky in view
        return look_at(np.array([2.0, -14.0, 22.0]), np.array([10.0, 0.0, 8.0]))
    raise ValueError(name)


def load_scene(bpy, data_dir: Path, name: str, scale: float):
    """Factory-empty file with the scene imported and scaled by `scale` about the origin,
    and a target camera at the start pose (scaled too). Returns (scene, camera)."""
    from mathutils import Matrix

    from parascale.core.cameras import cv_to_blender

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    bpy.ops.import_scene.gltf(filepath=str(data_dir / SCENES[name.split("_")[0]]))
    root = bpy.data.objects.new("ScaleRoot", None)
    scene.collection.objects.link(root)
    for obj in list(scene.objects):
        if obj.parent is None and obj is not root:
            obj.parent = root
    root.scale = (scale, scale, scale)
    data = bpy.data.cameras.new("Target")
    data.sensor_width, data.lens = 36.0, 17.3
    data.clip_start, data.clip_end = 0.01 * scale, 1e4 * scale
    cam = bpy.data.objects.new("Target", data)
    scene.collection.objects.link(cam)
    pose = start_pose(name)
    pose[:3, 3] *= scale
    cam.matrix_world = Matrix(cv_to_blender(pose).tolist())
    scene.camera = cam
    world = bpy.data.worlds.new("Sky")  # lights the glTF materials for renders (ray casts ignore it)
    world.color = (0.6, 0.6, 0.6)
    scene.world = world
    scene.render.resolution_x, scene.render.resolution_y = WIDTH, HEIGHT
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    scene.frame_start, scene.frame_end = 1, 200
    bpy.context.view_layer.update()
    return scene, cam


def clip_reference(data_dir: Path, clip: str):
    """The clip's RealEstate10K track with Pi from its video, one clip frame per scene frame."""
    from dataclasses import replace

    from parascale.parascale_blender.pipeline import reference_from_track_file

    root = data_dir / "cameractrl_realestate10k" / "assets"
    ref = reference_from_track_file(root / "pose_files" / f"{clip}.txt",
                                    video=root / "reference_videos" / f"{clip}.mp4")
    return replace(ref, times=np.arange(len(ref.c2w)) / FPS)
