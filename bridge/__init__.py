"""The standalone generator bridge (parascale_bridge.py), copied next to every export and run in a generator's environment.
May import: numpy and the standard library only; never bpy, never the parascale package."""
