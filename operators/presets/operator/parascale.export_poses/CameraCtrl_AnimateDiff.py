import bpy
op = bpy.context.active_operator

# ParaScale export preset: CameraCtrl (AnimateDiff); RealEstate10K .txt, pre-corrected for CameraCtrl's 1280x720 assumption
op.format = 're10k'
op.generator = 'cameractrl'
op.frame_count = 16
op.width = 384
op.height = 256
op.speed = 1.0
