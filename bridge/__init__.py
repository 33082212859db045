"""The generator side, standalone: parascale_bridge.py (copied next to every export) and the ComfyUI node pack (comfyui/).
May import: numpy and the standard library only (torch lazily, at a ComfyUI node's output); never bpy, never the rest of parascale.

This folder is a ComfyUI custom-node pack: copy or link it into ComfyUI/custom_nodes
(docs/comfyui.md). ComfyUI imports this file and reads the two mappings below.
"""
from .comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
