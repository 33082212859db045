"""The one place that knows which Blender it runs on (4.5 LTS, 5.0, 5.2 LTS).

Everything else calls these functions instead of asking. Each choice is made by
detecting the feature itself (an attribute, a function, an enum item), never by
comparing version numbers, so a point release that adds or drops a feature is
handled by what it actually has.

What differs between the supported versions:
- Compositor: 5.x assigns a node group to `scene.compositing_node_group` (File Output
  items, `media_type`); 4.5 edits the scene's own embedded `scene.node_tree` after
  `scene.use_nodes = True` (File Output slots, `base_path`).
- Bulk keys: 5.x has `anim_utils.action_ensure_channelbag_for_slot` and
  `fcurves.ensure`; 4.5 has the same layered actions but makes layer, keyframe strip
  and channelbag by hand, and F-curves with find/new.
- EEVEE's engine id is `BLENDER_EEVEE_NEXT` in 4.5 and `BLENDER_EEVEE` in 5.x.
- New materials have a node tree in 5.x; in 4.5 only after `use_nodes = True`.
- Cycles denoising: OpenImageDenoise may be missing from a build or CPU; `denoising_quality`
  is set only where the property exists.
- Path properties declare `PATH_SUPPORTS_BLEND_RELATIVE` where the option exists (Blender
  warns about "//" paths in properties without it); add-on preset folders are registered
  with `bpy.utils.register_preset_path` where it exists.
"""
from __future__ import annotations

import bpy

# -- compositor ---------------------------------------------------------------

# 5.x: the compositor is a node group the scene points at; 4.5: an embedded tree.
HAS_COMPOSITING_NODE_GROUP = "compositing_node_group" in bpy.types.Scene.bl_rna.properties



class _EmbeddedDepthOutput:
    """4.5: what add_depth_output put into the scene's own tree, to take out again."""

    def __init__(self, tree, nodes, muted, created):
        self.tree, self.nodes, self.muted, self.created = tree, nodes, muted, created


def _render_layers_node(tree, scene):
    """A Render Layers node reading `scene`, created with `scene` as the context scene: a new
    node takes a user of the context scene (the user's), and setting its scene afterwards
    did not give it back (scenes[0].users went 1 -> 2 after a depth render)."""
    with bpy.context.temp_override(scene=scene):
        layers = tree.nodes.new("CompositorNodeRLayers")
    if layers.scene != scene:
        layers.scene = scene
    return layers


def add_depth_output(scene, view_layer, directory: str, file_name: str):
    """Make the scene's compositor write the view layer's Z pass, and nothing else, as
    one 32-bit float EXR per render in `directory`, its name starting with file_name
    (#### replaced by the frame; 5.x appends the item name "Depth").
    Returns a handle for remove_depth_output. Headless, the File Output node is the
    readout that works (the Viewer image never exists in background)."""
    if HAS_COMPOSITING_NODE_GROUP:
        group = bpy.data.node_groups.new("ParaScale.depth", "CompositorNodeTree")
        layers = _render_layers_node(group, scene)
        layers.layer = view_layer.name
        out = group.nodes.new("CompositorNodeOutputFile")
        out.directory = directory
        out.file_name = file_name
        out.format.media_type = "IMAGE"  # must precede file_format, or OPEN_EXR is refused
        out.format.file_format = "OPEN_EXR"
        out.format.color_depth = "32"
        out.file_output_items.new("FLOAT", "Depth")
        group.links.new(layers.outputs["Depth"], out.inputs[0])
        scene.compositing_node_group = group  # ParaScale renders in a temporary scene of its own
        return group
    # 4.5: the tree belongs to the scene (use_nodes creates it). The user's own nodes are
    # muted while ParaScale renders, so their File Output nodes write nothing.
    created = scene.node_tree is None
    scene.use_nodes = True
    tree = scene.node_tree
    muted = {node.name: node.mute for node in tree.nodes}
    for node in tree.nodes:
        node.mute = True
    layers = _render_layers_node(tree, scene)
    layers.layer = view_layer.name
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.base_path = directory
    out.file_slots[0].path = file_name
    out.format.file_format = "OPEN_EXR"
    out.format.color_depth = "32"
    tree.links.new(layers.outputs["Depth"], out.inputs[0])
    return _EmbeddedDepthOutput(tree, [layers, out], muted, created)


def remove_depth_output(scene, handle) -> None:
    """Undo add_depth_output."""
    if handle is None:
        return
    if not isinstance(handle, _EmbeddedDepthOutput):
        if scene.compositing_node_group == handle:
            scene.compositing_node_group = None
        bpy.data.node_groups.remove(handle)
        return
    tree = handle.tree
    # A tree that use_nodes created comes with default nodes the user never had.
    for node in list(tree.nodes) if handle.created else handle.nodes:
        tree.nodes.remove(node)
    for node in tree.nodes:
        if node.name in handle.muted:
            node.mute = handle.muted[node.name]


def new_compositor(scene, name: str = "Compositor"):
    """A compositor for `scene` as a user would make one (tests use it as the user's
    own setup that ParaScale must leave as it was). Returns the node tree."""
    if HAS_COMPOSITING_NODE_GROUP:
        group = bpy.data.node_groups.new(name, "CompositorNodeTree")
        scene.compositing_node_group = group
        return group
    scene.use_nodes = True
    return scene.node_tree


def compositor_state(scene):
    """A comparable snapshot of the scene's compositor setup: which tree is used and,
    for 4.5's embedded tree, its nodes and their mute flags."""
    if HAS_COMPOSITING_NODE_GROUP:
        return scene.compositing_node_group
    tree = scene.node_tree
    nodes = tuple((n.name, n.bl_idname, n.mute) for n in tree.nodes) if tree is not None else ()
    return scene.use_nodes, nodes


# -- animation ----------------------------------------------------------------

def ensure_channelbag(action, slot):
    """The channelbag (F-curve container) of `slot` in a layered action, created on
    first use: one layer with one keyframe strip, as Blender itself makes them."""
    try:
        from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
    except ImportError:  # 4.5: the same data model, built by hand
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type="KEYFRAME")
        return strip.channelbag(slot, ensure=True)
    return action_ensure_channelbag_for_slot(action, slot)


def ensure_fcurve(channelbag, data_path: str, index: int = 0):
    """The F-curve for data_path[index] in a channelbag, created if missing."""
    fcurves = channelbag.fcurves
    if hasattr(fcurves, "ensure"):
        return fcurves.ensure(data_path, index=index)
    return fcurves.find(data_path, index=index) or fcurves.new(data_path, index=index)


# -- render engines and materials --------------------------------------------

_ENGINE_IDS = {item.identifier for item in bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items}

# EEVEE was renamed BLENDER_EEVEE_NEXT for 4.2-4.5 and back to BLENDER_EEVEE in 5.0.
EEVEE = "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in _ENGINE_IDS else "BLENDER_EEVEE"


def material_node_tree(material):
    """The shader node tree of a material; 4.5 gives new materials none until use_nodes."""
    if material.node_tree is None:
        material.use_nodes = True
    return material.node_tree


# -- denoising ------------------------------------------------------------------

def set_denoiser(scene) -> bool:
    """OpenImageDenoise on a Cycles scene at its fast settings (the measurement renders
    need the noise gone, not a pretty picture: docs/metrics.md measured HIGH at about 5x
    the render's own time for the same flow). False, with denoising left off, where this
    build or CPU has no OpenImageDenoise. `denoising_quality` is set where it exists."""
    cycles = scene.cycles
    try:
        cycles.denoiser = "OPENIMAGEDENOISE"
    except (TypeError, ValueError):
        cycles.use_denoising = False
        return False
    cycles.use_denoising = True
    cycles.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    cycles.denoising_prefilter = "FAST"
    if hasattr(cycles, "denoising_quality"):
        cycles.denoising_quality = "FAST"
    return True


# -- path properties and presets -------------------------------------------------

# Newer Blenders warn ('does not support blend relative "//" prefix') when a "//" path is put
# into a path property that does not declare it; ParaScale resolves "//" itself (bpy.path.abspath).
# The option comes with the RNA flag that reports it (bpy.props only checks options when a
# class registers, so the flag is what can be asked beforehand).
PATH_OPTION = ("PATH_SUPPORTS_BLEND_RELATIVE"
               if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else None)


def path_options(*options: str) -> set:
    """Property options for a file or folder path that ParaScale resolves against the .blend
    (Blender's // prefix): the given options plus the relative-path flag where it exists."""
    return set(options) | ({PATH_OPTION} if PATH_OPTION else set())


def register_preset_path(folder: str) -> bool:
    """Make Blender list the presets under folder/presets/ (operator presets of a packaged
    extension); False where this Blender cannot (its presets then live in the user's folder)."""
    register = getattr(bpy.utils, "register_preset_path", None)
    if register is None:
        return False
    register(folder)
    return True


def unregister_preset_path(folder: str) -> None:
    unregister = getattr(bpy.utils, "unregister_preset_path", None)
    if unregister is not None:
        unregister(folder)
