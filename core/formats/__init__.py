"""Camera-track file formats: readers (every input format, checked at the boundary), writers (every export, atomic), COLMAP, validation.
May import: numpy, the standard library and core's cameras and rotations; never bpy, never the Blender side."""
