import bpy
op = bpy.context.active_operator

# ParaScale export preset: CamI2V
op.format = 're10k'
op.generator = 'cami2v'
op.frame_count = 16
op.width = 256
op.height = 256
op.speed = 1.0
