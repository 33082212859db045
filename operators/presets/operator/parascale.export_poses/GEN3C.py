import bpy
op = bpy.context.active_operator

# ParaScale export preset: GEN3C; depth.npz at 1280x704, one Z pass per frame
op.format = 'gen3c'
op.generator = 'gen3c'
op.frame_count = 121
op.width = 1280
op.height = 704
op.speed = 1.0
