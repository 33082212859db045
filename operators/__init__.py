"""Blender operators: thin wrappers that call parascale_blender."""
import bpy

from . import calibrate, io

CLASSES = calibrate.CLASSES + io.CLASSES


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    io.register_menus()


def unregister():
    io.unregister_menus()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
