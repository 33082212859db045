"""File > Export > Camera Poses for Video Generators (ParaScale): a thin operator over
parascale_blender.export.export_camera."""
import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..parascale_blender import animation, export

FORMAT_ITEMS = (
    ("re10k", "RealEstate10K (.txt)", "CameraCtrl, VideoX-Fun Wan camera, AC3D, CamI2V"),
    ("motionctrl", "MotionCtrl (.json)", "12 numbers per frame, world-to-camera"),
    ("recammaster", "ReCamMaster (.json)", "Unreal Engine matrices in centimetres, 81 frames"),
    ("nerf", "NeRF transforms.json", "camera-to-world, OpenGL axes"),
    ("colmap", "COLMAP text model (folder)", "cameras.txt, images.txt, points3D.txt"),
    ("gen3c", "GEN3C (folder with depth)", "camera.npz and the scene's Z-pass depth.npz"),
    ("parascale", "ParaScale (.json)", "poses, intrinsics, times, Pi curves, provenance"),
)


def _camera(context, name):
    obj = context.scene.objects.get(name) if name else context.scene.camera
    return obj


def _camera_problem(obj):
    if obj is None:
        return "no camera: set the scene camera or pick one"
    if obj.type != "CAMERA":
        return f"{obj.name!r} is not a camera"
    if animation.animated_frame_range(obj) is None:
        return f"camera {obj.name!r} has no animation to export"
    return None


class PARASCALE_OT_export_poses(bpy.types.Operator, ExportHelper):
    """Export an animated camera as the pose file of a camera-conditioned video generator,
    with the parascale_bridge.py script next to it"""

    bl_idname = "parascale.export_poses"
    bl_label = "Camera Poses for Video Generators (ParaScale)"
    bl_options = {"REGISTER"}

    filename_ext = ""
    check_extension = None
    filter_glob: StringProperty(default="*.txt;*.json", options={"HIDDEN"})

    format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="parascale")
    frame_count: IntProperty(name="Frames", default=0, min=0,
                             description="Resample to this many evenly spaced frames (0 = all frames; "
                                         "ReCamMaster always uses 81)")
    frame_start: IntProperty(name="Start", default=0, description="First frame (start = end: the keyed range)")
    frame_end: IntProperty(name="End", default=0, description="Last frame (start = end: the keyed range)")
    camera: StringProperty(name="Camera", default="", description="Camera object (empty: the scene camera)")

    @classmethod
    def poll(cls, context):
        problem = _camera_problem(context.scene.camera if context.scene else None)
        if problem:
            cls.poll_message_set(problem)
            return False
        return True

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "format")
        layout.prop_search(self, "camera", context.scene, "objects")
        layout.prop(self, "frame_count")
        row = layout.row(align=True)
        row.prop(self, "frame_start")
        row.prop(self, "frame_end")

    def execute(self, context):
        obj = _camera(context, self.camera)
        problem = _camera_problem(obj)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        frame_range = (self.frame_start, self.frame_end) if self.frame_end > self.frame_start else None
        try:
            paths = export.export_camera(context.scene, obj, self.format, self.filepath,
                                         frames=self.frame_count or None, frame_range=frame_range)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, "Wrote " + ", ".join(paths))
        return {"FINISHED"}


CLASSES = (PARASCALE_OT_export_poses,)


def menu_export(self, context):
    self.layout.operator(PARASCALE_OT_export_poses.bl_idname, text=PARASCALE_OT_export_poses.bl_label)
