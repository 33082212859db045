"""parascale_blender.compat on the Blender under test: each bridge does the same thing
on 4.5, 5.0 and 5.2, checked by what it produces, not by which branch it took."""
import numpy as np
import pytest

from analytic_scenes import reference_move
from blender_scenes import add_camera, build_tabletop

K = np.array([[96 * 30 / 36, 0, 48], [0, 96 * 30 / 36, 27], [0, 0, 1.0]])


def test_depth_pass_silences_and_restores_the_users_own_compositor(fresh_blender, tmp_path):
    """A user compositor that writes files of its own: while ParaScale reads depth it must
    write nothing, and afterwards it is exactly as it was and writes again."""
    bpy = fresh_blender
    from parascale.parascale_blender import compat
    from parascale.parascale_blender.depth import ZPassDepth

    build_tabletop(bpy)
    scene = bpy.context.scene
    scene.camera = add_camera(bpy, "User", reference_move(2)[0])
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    bpy.context.view_layer.use_pass_z = True
    user_dir = tmp_path / "user_outputs"
    compat.add_depth_output(scene, bpy.context.view_layer, str(user_dir), "user_####")  # the user's own node
    before = compat.compositor_state(scene)

    with ZPassDepth(scene) as zp:
        view = zp.depth(reference_move(2)[1], K, 96, 54)
    assert np.isfinite(view.depth).mean() > 0.5 and (view.depth > 0).all()
    assert not user_dir.exists() or not list(user_dir.iterdir())  # the user's node wrote nothing
    assert compat.compositor_state(scene) == before

    scene.render.filepath = str(tmp_path / "render_")
    bpy.ops.render.render(write_still=False)
    written = [p.name for p in user_dir.iterdir()]
    assert len(written) == 1 and written[0].startswith("user_0001") and written[0].endswith(".exr"), written


def test_bulk_keys_land_in_the_objects_slot(fresh_blender):
    bpy = fresh_blender
    from parascale.parascale_blender import compat

    obj = bpy.data.objects.new("O", None)
    bpy.context.scene.collection.objects.link(obj)
    action = bpy.data.actions.new("A")
    slot = action.slots.new(id_type="OBJECT", name="O")
    ad = obj.animation_data_create()
    ad.action, ad.action_slot = action, slot
    bag = compat.ensure_channelbag(action, slot)
    assert compat.ensure_channelbag(action, slot) == bag  # found again, not duplicated
    fc = compat.ensure_fcurve(bag, "location", 2)
    assert compat.ensure_fcurve(bag, "location", 2) == fc and len(bag.fcurves) == 1
    fc.keyframe_points.add(2)
    fc.keyframe_points.foreach_set("co", [1.0, 0.5, 11.0, 2.5])
    fc.keyframe_points.foreach_set("interpolation", [1, 1])  # LINEAR
    fc.update()
    bpy.context.scene.frame_set(6)
    assert obj.location.z == pytest.approx(1.5, rel=1e-6)


def test_eevee_and_material_nodes(fresh_blender):
    bpy = fresh_blender
    from parascale.parascale_blender import compat

    scene = bpy.context.scene
    scene.render.engine = compat.EEVEE
    assert scene.render.engine == compat.EEVEE and "EEVEE" in compat.EEVEE
    mat = bpy.data.materials.new("M")
    tree = compat.material_node_tree(mat)
    assert tree is not None and tree == mat.node_tree
    assert compat.material_node_tree(mat) == tree
    tree.nodes.new("ShaderNodeEmission")  # usable for building a material


def test_depth_renders_leave_the_users_scene_with_its_own_users(fresh_blender):
    """The compositor's Render Layers node took a user of the context scene (the user's)
    on creation: scenes[0].users went from 1 to 2 after a depth render, one more per pass."""
    bpy = fresh_blender
    from parascale.parascale_blender.depth import ZPassDepth

    build_tabletop(bpy)
    scene = bpy.context.scene
    users = scene.users
    for _ in range(3):
        with ZPassDepth(scene, width=8, height=6) as zp:
            zp.depth(reference_move(2)[0], K, 96, 54)
        assert scene.users == users, f"{scene.users} users, expected {users}"
    assert bpy.data.scenes[0].users == 1
