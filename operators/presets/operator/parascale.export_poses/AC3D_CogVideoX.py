import bpy
op = bpy.context.active_operator

# ParaScale export preset: AC3D (CogVideoX)
op.format = 're10k'
op.generator = 'ac3d'
op.frame_count = 49
op.width = 720
op.height = 480
op.speed = 1.0
