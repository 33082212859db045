"""ParaScale core: camera math, Parallax Number estimators, calibration, metrics
and file formats. numpy (and OpenCV where noted) only; never bpy or mathutils."""
