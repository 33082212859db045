"""Blender adapter layer (bpy, mathutils), no UI: camera animation in and out, depth
of a scene, the transfer pipeline and the headless command line."""
