"""File > Export > Camera Poses for Video Generators (ParaScale): a thin operator over
parascale_blender.export.export_camera."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..parascale_blender import compat, export, pipeline, presets

FORMAT_ITEMS = (
    ("re10k", "RealEstate10K (.txt)", "CameraCtrl, VideoX-Fun Wan camera, AC3D, CamI2V"),
    ("motionctrl", "MotionCtrl (.json)", "12 numbers per frame, world-to-camera"),
    ("recammaster", "ReCamMaster (.json)", "Unreal Engine matrices in centimetres, 81 frames"),
    ("nerf", "NeRF transforms.json", "camera-to-world, OpenGL axes"),
    ("colmap", "COLMAP text model (folder)", "cameras.txt, images.txt, points3D.txt"),
    ("gen3c", "GEN3C (folder with depth)", "camera.npz and the scene's Z-pass depth.npz"),
    ("parascale", "ParaScale (.json)", "poses, intrinsics, times, Pi curves, provenance"),
)


def _generator_items(_self, _context):
    from ..parascale_blender.export import GAUGES

    items = [("auto", "Format's Generator", "The gauge of the generator the format is for (scene units for "
                                             "NeRF, COLMAP and ParaScale json)"),
             ("scene", "Scene Units", "Translation as it is in this scene, no gauge")]
    return items + [(name, name, f"Translation in {name}'s gauge: {g.units}") for name, g in GAUGES.items()]


def default_camera(context):
    """The camera Export writes unless told otherwise (export.default_camera): the
    ParaScale result, else the active object if it is an animated camera, else the scene camera."""
    return export.default_camera(context.scene, context.active_object)


def _camera(context, name):
    return context.scene.objects.get(name) if name else default_camera(context)


def _camera_problem(obj, scene):
    return export.camera_problem(obj, scene)


class PARASCALE_OT_export_poses(bpy.types.Operator, ExportHelper):
    """Export an animated camera as the pose file of a camera-conditioned video generator,
    with the parascale_bridge.py script next to it"""

    bl_idname = "parascale.export_poses"
    bl_label = "Camera Poses for Video Generators (ParaScale)"
    bl_options = {"REGISTER", "PRESET"}  # PRESET: the generator presets in the file browser's sidebar

    filename_ext = ""
    check_extension = None
    filter_glob: StringProperty(default="*.txt;*.json", options={"HIDDEN"})
    # ExportHelper's path, declared to take Blender's "//" (resolved against the .blend on export)
    filepath: StringProperty(name="File Path", description="Where the export is written", maxlen=1024,
                             subtype="FILE_PATH", options=compat.path_options("SKIP_SAVE"))

    format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="parascale",
                         description="Pose file format of the video generator to drive")
    frame_count: IntProperty(name="Frames", default=0, min=0,
                             description="Resample to this many evenly spaced frames (0 = all frames; "
                                         "ReCamMaster always uses 81)")
    frame_start: IntProperty(name="Start", default=0, description="First frame (start = end: the keyed range)")
    frame_end: IntProperty(name="End", default=0, description="Last frame (start = end: the keyed range)")
    generator: EnumProperty(name="Gauge", items=_generator_items,
                            description="Whose depth scale the translation is written in: a generator feels "
                                        "parallax, so the move is rescaled from this scene's depth to its")
    speed: FloatProperty(name="Speed", default=1.0, min=1e-6, max=1e6, soft_max=10.0,
                         description="Explicit multiplier on the translation, on top of the gauge (1 = as calibrated)")
    force: BoolProperty(name="Replace Anyway", default=False,
                        description="Replace what is at the output even where ParaScale's manifest does not say it "
                                    "wrote it (the files there are deleted). Off: such an output is refused, and "
                                    "the user's own files beside an earlier export are kept")
    width: IntProperty(name="Width", default=0, min=0, max=65536,
                       description="Width of the generated video in pixels: the camera's view is scaled to cover "
                                   "Width x Height and cropped at the centre (0 and 0: the scene's render size)")
    height: IntProperty(name="Height", default=0, min=0, max=65536,
                        description="Height of the generated video in pixels (0 and 0: the scene's render size)")
    camera: StringProperty(name="Camera", default="",
                           description="Camera object (empty: the ParaScale result, else the active or scene camera)")

    @classmethod
    def poll(cls, context):
        if context.scene is None or default_camera(context) is None:
            cls.poll_message_set("no animated camera in this scene: calibrate, or key a camera's motion")
            return False
        return True

    def invoke(self, context, event):
        if not self.camera:
            self.camera = default_camera(context).name
        return ExportHelper.invoke(self, context, event)

    def check(self, context):
        """Keep the file name's extension in step with the format."""
        if not self.filepath:
            return False
        try:
            wanted = str(export.output_path(self.format, self.filepath))
        except ValueError:
            return False
        if wanted != self.filepath:
            self.filepath = wanted
            return True
        return False

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "format")
        layout.prop(self, "generator")
        layout.prop(self, "speed")
        layout.prop_search(self, "camera", context.scene, "objects")
        layout.prop(self, "frame_count")
        col = layout.column(align=True)
        col.prop(self, "width", text="Size")
        col.prop(self, "height", text=" ")
        row = layout.row(align=True)
        row.prop(self, "frame_start")
        row.prop(self, "frame_end")
        layout.prop(self, "force")

    def execute(self, context):
        obj = _camera(context, self.camera)
        problem = _camera_problem(obj, context.scene)
        if problem:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        frame_range = (self.frame_start, self.frame_end) if self.frame_end > self.frame_start else None
        if bool(self.width) != bool(self.height):
            self.report({"ERROR"}, f"Size {self.width}x{self.height}: give both Width and Height (0 and 0: the "
                                   "scene's render size)")
            return {"CANCELLED"}
        size = (self.width, self.height) if self.width else None
        try:
            result = export.export_with_gauge(context.scene, obj, self.format,
                                              pipeline.absolute_path(self.filepath, "export"),
                                              frames=self.frame_count or None, frame_range=frame_range,
                                              generator=self.generator, speed=self.speed, size=size, ui="blender",
                                              force=self.force)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        pipeline.store_export(context.scene, result, obj)
        for warning in result.warnings:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, "Wrote " + ", ".join(result.paths))
        return {"FINISHED"}


class PARASCALE_OT_check_range(bpy.types.Operator):
    """Where the move sits in the panel's Generator's training range at its Speed (one Z pass
    of the start frame; the panel then follows Generator and Speed without rendering)"""

    bl_idname = "parascale.check_range"
    bl_label = "Check Range"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        if getattr(context.scene, "parascale", None) is None or default_camera(context) is None:
            cls.poll_message_set("no animated camera in this scene: calibrate, or key a camera's motion")
            return False
        return True

    def execute(self, context):
        settings = context.scene.parascale
        out = pipeline.refresh_range(context.scene, default_camera(context), render=True)
        if out is None:
            self.report({"ERROR"}, settings.range_text)
            return {"CANCELLED"}
        for warning in out["warnings"]:
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, settings.range_text)
        return {"FINISHED"}


CLASSES = (PARASCALE_OT_export_poses, PARASCALE_OT_check_range)


def register():
    """The generator presets (operators/presets/...) listed in the Export dialog's preset menu."""
    compat.register_preset_path(str(presets.PRESET_ROOT))


def unregister():
    compat.unregister_preset_path(str(presets.PRESET_ROOT))


def menu_export(self, context):
    self.layout.operator(PARASCALE_OT_export_poses.bl_idname, text=PARASCALE_OT_export_poses.bl_label)
