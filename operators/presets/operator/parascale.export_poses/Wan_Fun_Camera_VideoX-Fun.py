import bpy
op = bpy.context.active_operator

# ParaScale export preset: Wan Fun Camera (VideoX-Fun); RealEstate10K .txt for predict_v2v_control_camera.py, pre-corrected for 1280x720
op.format = 're10k'
op.generator = 'wan-fun-camera'
op.frame_count = 81
op.width = 832
op.height = 480
op.speed = 1.0
