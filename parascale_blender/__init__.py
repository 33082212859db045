"""Blender adapter (bpy, mathutils), no UI: camera animation in and out, scene depth, the transfer pipeline, evaluation, export; cli/, bench/ and demo/ are rooms of their own built on it.
May import: bpy, mathutils, numpy, core; the adapter's own modules never import cli, bench or demo."""
