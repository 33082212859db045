"""File > Import > Reference Camera Track (ParaScale), plus drag and drop onto the 3D
viewport. Thin: the work is parascale_blender.reference.import_reference."""
import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..parascale_blender import pipeline
from ..parascale_blender.reference import import_reference

_FORMATS = (
    ("auto", "Auto", "Detect the format from the file's content"),
    ("colmap", "COLMAP", "COLMAP sparse model (cameras/images/points3D, .txt or .bin)"),
    ("transforms", "NeRF transforms.json", "NeRF / instant-ngp / nerfstudio transforms.json"),
    ("re10k", "RealEstate10K", "RealEstate10K / CameraCtrl pose .txt"),
    ("llff", "LLFF", "LLFF poses_bounds.npy"),
    ("megasam", "MegaSaM", "MegaSaM-style .npz with cam_c2w, intrinsic, depths"),
)
_ESTIMATORS = (
    ("harmonic", "Harmonic", "|d| times the mean inverse depth (default from points or depth)"),
    ("mean", "Mean", "|d| over the mean depth (as first published; reads low)"),
    ("flow", "Flow", "Mean first-order image motion; always used with a video"),
)


class PARASCALE_OT_import_track(bpy.types.Operator, ImportHelper):
    """Import a recovered camera track as a reference camera with its Parallax Number"""

    bl_idname = "parascale.import_track"
    bl_label = "Reference Camera Track (ParaScale)"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.txt;*.json;*.bin;*.npy;*.npz", options={"HIDDEN"})
    format: EnumProperty(name="Format", items=_FORMATS, default="auto",
                         description="Format of the track file (Auto reads it from the content)")
    estimator: EnumProperty(name="Estimator", items=_ESTIMATORS, default="harmonic",
                            description="How Pi is read from points or depth (a video always uses flow)")
    video: StringProperty(name="Video", subtype="FILE_PATH", default="",
                          description="The track's video file or image folder: Pi from its optical flow")
    offset: IntProperty(name="Video Offset", default=-1, min=-1,
                        description="Track frame i is video frame offset + i (-1: counts must match)")
    apply_render_size: BoolProperty(name="Set Render Size", default=False,
                                    description="Set the scene's resolution and pixel aspect to the track's")
    background: BoolProperty(name="Video as Background", default=True,
                             description="Show the video as the camera's background image, in step with the keys")
    set_scene: BoolProperty(name="Set Scene to Track", default=False,
                            description="Set the scene's frame rate, frame range and resolution to the track's, "
                                        "so every track frame lands on a whole frame (like Setup Tracking Scene)")

    def invoke(self, context, event):
        if self.filepath:  # dropped onto the viewport: options in a popup
            return self.invoke_popup(context)
        return ImportHelper.invoke(self, context, event)

    def execute(self, context):
        try:
            video = pipeline.absolute_path(self.video, "video") if self.video else None
            result = import_reference(
                context, self.filepath, format=self.format, video=video,
                estimator=None if video else self.estimator, apply_render_size=self.apply_render_size,
                offset=None if self.offset < 0 else self.offset, background=self.background,
                set_scene=self.set_scene)
        except (ValueError, OSError, ImportError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for msg in result.warnings:
            self.report({"WARNING"}, msg)
        for ob in context.selected_objects:
            ob.select_set(False)
        result.obj.select_set(True)
        context.view_layer.objects.active = result.obj
        pipeline.use_imported_reference(context.scene, result)
        src = result.reference.source if result.reference else "none"
        self.report({"INFO"}, f"Imported {len(result.track)} frames as {result.obj.name!r} (Pi from {src})")
        return {"FINISHED"}


class PARASCALE_FH_import_track(bpy.types.FileHandler):
    bl_idname = "PARASCALE_FH_import_track"
    bl_label = "Reference Camera Track (ParaScale)"
    bl_import_operator = "parascale.import_track"
    bl_file_extensions = ".txt;.json;.bin;.npz;.npy"

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_import(self, context):
    self.layout.operator(PARASCALE_OT_import_track.bl_idname, text="Reference Camera Track (ParaScale)")


CLASSES = (PARASCALE_OT_import_track, PARASCALE_FH_import_track)
