import bpy
op = bpy.context.active_operator

# ParaScale export preset: ReCamMaster
op.format = 'recammaster'
op.generator = 'recammaster'
op.frame_count = 81
op.width = 832
op.height = 480
op.speed = 1.0
