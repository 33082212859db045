"""Procedural scenes built as real assets are: an interior room with white walls, an open
arena whose single-sided walls face away from the play space (as exported game levels
often are), a closed box, a room with one wall missing (a film set). Each is one or more
mesh objects built from vertices and faces, so which way every face points and which
edges are shared is exactly what the test says."""
import numpy as np

# Faces of a box on vertices box_verts(): outward normals, welded (every edge shared).
BOX_FACES_OUT = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (1, 2, 6, 5), (2, 3, 7, 6), (3, 0, 4, 7)]


def box_verts(lo, hi):
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    return [(x0, y0, z0), (x1, y0, z0), (x1, y1, z0), (x0, y1, z0),
            (x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)]


def material(bpy, name, colour, noise=None, scale=8.0, roughness=0.7):
    """A Principled material of one colour, or with a noise texture of relative contrast `noise`."""
    from parascale.parascale_blender.compat import material_node_tree

    mat = bpy.data.materials.new(name)
    tree = material_node_tree(mat)
    nodes, links = tree.nodes, tree.links
    bsdf = nodes.get("Principled BSDF")
    bsdf.inputs["Roughness"].default_value = roughness
    if noise is None:
        bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    else:
        tex = nodes.new("ShaderNodeTexNoise")
        tex.inputs["Scale"].default_value = scale
        tex.inputs["Detail"].default_value = 6.0
        ramp = nodes.new("ShaderNodeValToRGB")
        ramp.color_ramp.elements[0].color = (*[c * (1 - noise) for c in colour], 1.0)
        ramp.color_ramp.elements[1].color = (*[min(1.0, c * (1 + noise)) for c in colour], 1.0)
        links.new(tex.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def mesh_object(bpy, name, verts, faces, mat=None, scene=None):
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([tuple(map(float, v)) for v in verts], [], [tuple(f) for f in faces])
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    (scene or bpy.context.scene).collection.objects.link(obj)
    if mat is not None:
        mesh.materials.append(mat)
    return obj


def closed_box(bpy, name, lo, hi, mat=None, inward=False):
    """A closed, welded, consistently oriented box: faces out (a solid), or in (a room)."""
    faces = [tuple(reversed(f)) for f in BOX_FACES_OUT] if inward else BOX_FACES_OUT
    return mesh_object(bpy, name, box_verts(lo, hi), faces, mat)


def interior_room(bpy, size=(6.0, 8.0, 2.8), furniture=True):
    """A closed room (welded, faces pointing in) with white walls and ceiling and a wooden
    floor, a table, a sofa, a shelf and a picture; lit by a ceiling light. Floor centre at
    the origin."""
    sx, sy, sz = size
    white = material(bpy, "WhiteWall", (0.85, 0.85, 0.83), roughness=0.9)
    wood_floor = material(bpy, "Floor", (0.45, 0.30, 0.18), noise=0.5, scale=12.0)
    faces = [tuple(reversed(f)) for f in BOX_FACES_OUT[1:]] + [tuple(reversed(BOX_FACES_OUT[0]))]
    room = mesh_object(bpy, "Room", box_verts((-sx / 2, -sy / 2, 0), (sx / 2, sy / 2, sz)), faces, white)
    room.data.materials.append(wood_floor)
    room.data.polygons[-1].material_index = 1  # the floor
    if furniture:
        wood = material(bpy, "Wood", (0.5, 0.35, 0.2), noise=0.6, scale=20.0)
        fabric = material(bpy, "Fabric", (0.2, 0.3, 0.5), noise=0.4, scale=30.0)
        art = material(bpy, "Art", (0.6, 0.3, 0.2), noise=0.9, scale=4.0)
        closed_box(bpy, "Table", (-0.8, 1.0, 0.0), (0.8, 1.9, 0.75), wood)
        closed_box(bpy, "Sofa", (-1.2, 3.0, 0.0), (1.2, 3.9, 0.8), fabric)
        closed_box(bpy, "Shelf", (2.5, -1.0, 0.0), (2.95, 1.0, 1.9), wood)
        closed_box(bpy, "Picture", (-0.7, sy / 2 - 0.04, 1.3), (0.7, sy / 2 - 0.01, 2.1), art)
    light = bpy.data.lights.new("Ceiling", "AREA")
    light.energy, light.size = 300.0, 2.0
    lamp = bpy.data.objects.new("Ceiling", light)
    lamp.location = (0.0, 0.0, sz - 0.05)
    bpy.context.scene.collection.objects.link(lamp)
    world = bpy.data.worlds.new("Ambient")
    world.color = (0.05, 0.05, 0.05)
    bpy.context.scene.world = world
    return room


ROOM_START = ((-1.5, -2.5, 1.5), (0.8, 3.0, 1.0))  # eye, look-at: across the room at the far corner


def one_sided_arena(bpy, size=(20.0, 20.0), height=4.0, roof=False, mat=None):
    """An arena as game levels export it: a floor and four walls, single-sided and facing
    AWAY from the play space, each its own quad (not welded into one closed mesh), in one
    object; roof=True adds a roof, also facing away. From inside, every face is seen from
    behind."""
    sx, sy = size
    hx, hy = sx / 2, sy / 2
    verts, faces = [(-hx, -hy, 0), (hx, -hy, 0), (hx, hy, 0), (-hx, hy, 0)], [(3, 2, 1, 0)]  # normal down
    walls = [((-hx, hy), (hx, hy)), ((hx, hy), (hx, -hy)), ((hx, -hy), (-hx, -hy)), ((-hx, -hy), (-hx, hy))]
    for (x0, y0), (x1, y1) in walls:
        i = len(verts)
        verts += [(x0, y0, 0), (x1, y1, 0), (x1, y1, height), (x0, y0, height)]
        faces.append((i + 3, i + 2, i + 1, i))  # normal out of the arena
    if roof:
        i = len(verts)
        verts += [(-hx, -hy, height), (hx, -hy, height), (hx, hy, height), (-hx, hy, height)]
        faces.append((i, i + 1, i + 2, i + 3))  # normal up, away from the play space
    return mesh_object(bpy, "Arena", verts, faces, mat)


def open_room(bpy, size=(6.0, 8.0, 2.8), mat=None):
    """A room with its front wall (y = -size/2) missing: faces pointing in, not closed."""
    sx, sy, sz = size
    faces = [tuple(reversed(f)) for i, f in enumerate(BOX_FACES_OUT) if i != 2]
    return mesh_object(bpy, "OpenRoom", box_verts((-sx / 2, -sy / 2, 0), (sx / 2, sy / 2, sz)), faces, mat)


def target_camera(bpy, eye, at, name="Target", lens=17.3, clip_start=0.01, scene=None):
    """A camera at `eye` looking at `at` (36 mm sensor; 17.3 mm matches the RealEstate10K clips)."""
    from mathutils import Matrix

    from parascale.core.cameras import cv_to_blender, look_at

    scene = scene or bpy.context.scene
    data = bpy.data.cameras.new(name)
    data.sensor_width, data.lens = 36.0, lens
    data.clip_start, data.clip_end = clip_start, 1000.0
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.matrix_world = Matrix(cv_to_blender(look_at(np.array(eye, float), np.array(at, float))).tolist())
    scene.camera = obj
    return obj


def room_scene(bpy, fps=(15, 4.0), size=(384, 216)):
    """Factory-empty file with the interior room and a target camera across it; the scene
    at 3.75 fps (RealEstate10K's clip rate, one clip frame per scene frame)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    interior_room(bpy)
    cam = target_camera(bpy, *ROOM_START)
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.fps, scene.render.fps_base = fps
    scene.frame_start, scene.frame_end = 1, 200
    return scene, cam
