"""Target and reference scenes built in bpy for tests (mirror analytic_scenes)."""
import numpy as np

from analytic_scenes import reference_move


def add_camera(bpy, name, c2w_cv=None, scene=None):
    from mathutils import Matrix

    from parascale.core.cameras import cv_to_blender

    scene = scene or bpy.context.scene
    data = bpy.data.cameras.new(name)
    data.lens, data.sensor_width = 30.0, 36.0
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    if c2w_cv is not None:
        obj.matrix_world = Matrix(cv_to_blender(c2w_cv).tolist())
    return obj


def build_tabletop(bpy, scale=1.0):
    """Floor, back wall and three spheres, about 1 unit across at scale 1."""
    bpy.ops.mesh.primitive_plane_add(size=6 * scale, location=(0, 0, 0))
    bpy.ops.mesh.primitive_plane_add(size=6 * scale, location=(0, 1.0 * scale, 0), rotation=(np.pi / 2, 0, 0))
    for centre, radius in [((0.0, 0.0, 0.15), 0.15), ((0.3, 0.2, 0.1), 0.1), ((-0.25, 0.3, 0.2), 0.2)]:
        bpy.ops.mesh.primitive_uv_sphere_add(radius=radius * scale, location=tuple(np.array(centre) * scale),
                                             segments=48, ring_count=24)
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 320, 180
    scene.render.fps = 24


def animate_reference(bpy, n=12, scale=1.0, name="Reference"):
    """A camera keyed with the analytic reference move (dolly, truck and pan)."""
    from parascale.parascale_blender.animation import write_camera_animation

    c2w = reference_move(n, scale)
    obj = add_camera(bpy, name, c2w[0])
    write_camera_animation(obj, c2w, np.arange(1, n + 1), name + ".move")
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, n
    scene.camera = obj
    return obj, c2w


def save_reference_and_target(bpy, folder):
    """folder/ref.blend (a tabletop with the camera "Reference" keyed over frames 1..12)
    and folder/target.blend (the tabletop, a still camera "Target" at the move's start,
    frames 1..12); leaves an empty factory scene."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    build_tabletop(bpy)
    animate_reference(bpy, 12)
    bpy.ops.wm.save_as_mainfile(filepath=str(folder / "ref.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    build_tabletop(bpy)
    target = add_camera(bpy, "Target", reference_move(12)[0])
    bpy.context.scene.camera = target
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, 12
    bpy.ops.wm.save_as_mainfile(filepath=str(folder / "target.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
