import bpy
op = bpy.context.active_operator

# ParaScale export preset: Uni3C (ParaScale json, bridge); run parascale_bridge.py --generator uni3c on it
op.format = 'parascale'
op.generator = 'auto'
op.frame_count = 81
op.width = 832
op.height = 480
op.speed = 1.0
