"""Camera-track file formats: readers (every input format, checked at the boundary), writers (every export, atomic), COLMAP, validation, frame times.
May import: numpy, the standard library and core's cameras, rotations and clock; never bpy, never the Blender side."""
