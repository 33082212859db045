"""ComfyUI nodes for ParaScale exports: Load ParaScale Poses, Save CameraCtrl Pose File, Preview ParaScale Path.
May import: numpy, the standard library and the bridge (..parascale_bridge); torch lazily at node outputs; never bpy or the rest of parascale.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
