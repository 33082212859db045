"""ParaScale core, the method: camera math, rotations, the clock (frame rates, times on frames), Parallax Number estimators, calibration, metrics, gauges, reference Pi; formats/ and tracking.py beside it.
May import: numpy, OpenCV (reference, tracking, clock: a video's declared rate), pycolmap (tracking only), the standard library; never bpy, mathutils or parascale_blender."""
