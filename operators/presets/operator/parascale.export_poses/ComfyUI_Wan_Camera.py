import bpy
op = bpy.context.active_operator

# ParaScale export preset: ComfyUI Wan Camera (ParaScale json); for the Load ParaScale Poses node (docs/comfyui.md); the json keeps scene units
op.format = 'parascale'
op.generator = 'auto'
op.frame_count = 81
op.width = 832
op.height = 480
op.speed = 1.0
