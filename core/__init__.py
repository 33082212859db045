"""ParaScale core, the method: camera math, rotations, Parallax Number estimators, calibration, metrics, gauges, reference Pi; formats/ and tracking.py beside it.
May import: numpy, OpenCV (reference, flow_trust, preview, tracking), pycolmap (tracking only), the standard library; never bpy, mathutils or parascale_blender."""
