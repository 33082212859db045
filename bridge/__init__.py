"""The standalone generator bridge (parascale_bridge.py): numpy only, never bpy."""
