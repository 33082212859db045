"""Blender operators: thin wrappers that call parascale_blender (File > Import/Export, the panel's buttons).
May import: bpy, parascale_blender; core only for types.

Each module lists its classes in CLASSES and may offer `menu_import` / `menu_export`
draw functions for File > Import / Export.
"""
import bpy

from . import calibrate, export_poses, import_track
from . import track_video

MODULES = (import_track, calibrate, export_poses, track_video)
CLASSES = tuple(cls for module in MODULES for cls in module.CLASSES)


def _menus():
    for module in MODULES:
        if hasattr(module, "menu_import"):
            yield bpy.types.TOPBAR_MT_file_import, module.menu_import
        if hasattr(module, "menu_export"):
            yield bpy.types.TOPBAR_MT_file_export, module.menu_export


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    for menu, draw in _menus():
        menu.append(draw)
    export_poses.register()


def unregister():
    export_poses.unregister()
    for menu, draw in _menus():
        menu.remove(draw)
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
