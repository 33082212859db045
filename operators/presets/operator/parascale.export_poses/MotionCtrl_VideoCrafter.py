import bpy
op = bpy.context.active_operator

# ParaScale export preset: MotionCtrl (VideoCrafter)
op.format = 'motionctrl'
op.generator = 'motionctrl'
op.frame_count = 16
op.width = 256
op.height = 256
op.speed = 1.0
