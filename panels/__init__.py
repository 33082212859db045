"""The ParaScale sidebar (3D View > N panel > ParaScale) and its settings."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

ESTIMATOR_ITEMS = [
    ("harmonic", "Harmonic", "|T| times the mean inverse depth, background counts as zero (default)"),
    ("mean", "Mean", "|T| over the mean depth (the paper as first published; reads low)"),
    ("flow", "Flow", "Mean first-order image motion: tells a dolly from a truck; pairs with a video reference"),
]
DEPTH_ITEMS = [
    ("zpass", "Z Pass", "Cycles depth pass at a small resolution (default)"),
    ("raycast", "Ray Cast", "Scene ray casts on the same pixel grid"),
]
REFERENCE_ITEMS = [
    ("OBJECT", "Camera", "An imported reference camera or any animated camera in this file"),
    ("FILE", "Track File", "A camera track file (COLMAP, transforms.json, RealEstate10K, LLFF, MegaSaM)"),
]


def _is_camera(_self, obj):
    return obj.type == "CAMERA"


class ParaScaleSettings(bpy.types.PropertyGroup):
    reference_kind: EnumProperty(name="Reference", items=REFERENCE_ITEMS, default="OBJECT")
    reference_object: PointerProperty(name="Reference Camera", type=bpy.types.Object, poll=_is_camera,
                                      description="Camera whose move is transferred")
    track_path: StringProperty(name="Track", subtype="FILE_PATH", description="Reference camera track file")
    video_path: StringProperty(name="Video", subtype="FILE_PATH",
                               description="Reference video (file or image folder) to measure Pi from, optional")
    target_camera: PointerProperty(name="Target Camera", type=bpy.types.Object, poll=_is_camera,
                                   description="Camera placed at the start of the shot in this scene; never modified")
    estimator: EnumProperty(name="Estimator", items=ESTIMATOR_ITEMS, default="harmonic")
    depth_source: EnumProperty(name="Depth", items=DEPTH_ITEMS, default="zpass")
    use_scene_range: BoolProperty(name="Scene Range", default=True,
                                  description="Start at the scene's start frame and run as long as the reference lasts")
    frame_start: IntProperty(name="Start", default=1)
    frame_end: IntProperty(name="End", default=250)
    depth_width: IntProperty(name="Depth Width", default=96, min=8, max=4096)
    depth_height: IntProperty(name="Depth Height", default=54, min=8, max=4096)
    follow_zoom: BoolProperty(name="Follow Zoom", default=False,
                              description="The lens follows the reference's focal length changes")
    result_camera: PointerProperty(name="Result", type=bpy.types.Object, poll=_is_camera)
    eval_render: BoolProperty(name="Render and Measure", default=False,
                              description="Evaluate by rendering the result and measuring its image motion "
                                          "by optical flow (closed loop); otherwise from the scene's depth")
    has_evaluation: BoolProperty(default=False)
    eval_pce: FloatProperty(name="PCE", precision=4)
    eval_pce_p90: FloatProperty(name="PCE p90", precision=4)
    eval_trans_err: FloatProperty(name="TransErr", precision=4)
    eval_rot_err: FloatProperty(name="RotErr (deg)", precision=3)
    eval_measured_by: StringProperty(name="Measured By")


class PARASCALE_PT_main(bpy.types.Panel):
    bl_label = "ParaScale"
    bl_idname = "PARASCALE_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ParaScale"

    def draw(self, context):
        layout = self.layout
        settings = context.scene.parascale

        box = layout.box()
        box.label(text="1. Reference", icon="CAMERA_DATA")
        box.prop(settings, "reference_kind", expand=True)
        if settings.reference_kind == "OBJECT":
            box.prop(settings, "reference_object")
            box.operator("parascale.import_track", icon="IMPORT")
        else:
            box.prop(settings, "track_path")
            box.prop(settings, "video_path")

        box = layout.box()
        box.label(text="2. Target", icon="OUTLINER_OB_CAMERA")
        box.prop(settings, "target_camera")
        box.prop(settings, "estimator")
        box.prop(settings, "depth_source")
        row = box.row(align=True)
        row.prop(settings, "depth_width")
        row.prop(settings, "depth_height")
        box.prop(settings, "follow_zoom")

        box = layout.box()
        box.label(text="3. Frames", icon="TIME")
        box.prop(settings, "use_scene_range")
        row = box.row(align=True)
        row.enabled = not settings.use_scene_range
        row.prop(settings, "frame_start")
        row.prop(settings, "frame_end")

        col = layout.column(align=True)
        col.scale_y = 1.3
        col.operator("parascale.calibrate", icon="PLAY")
        row = col.row(align=True)
        row.operator("parascale.evaluate", icon="GRAPH")
        row.prop(settings, "eval_render", text="", icon="RENDER_STILL")
        col.operator("parascale.export_poses", icon="EXPORT")


class PARASCALE_PT_results(bpy.types.Panel):
    bl_label = "Results"
    bl_idname = "PARASCALE_PT_results"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ParaScale"
    bl_parent_id = "PARASCALE_PT_main"

    @classmethod
    def poll(cls, context):
        return context.scene.parascale.result_camera is not None

    def draw(self, context):
        layout = self.layout
        settings = context.scene.parascale
        layout.prop(settings, "result_camera")
        if settings.has_evaluation:
            col = layout.column(align=True)
            col.prop(settings, "eval_measured_by", emboss=False)
            col.prop(settings, "eval_pce", emboss=False)
            col.prop(settings, "eval_pce_p90", emboss=False)
            col.prop(settings, "eval_trans_err", emboss=False)
            col.prop(settings, "eval_rot_err", emboss=False)
        else:
            layout.label(text="Evaluate to see PCE, TransErr and RotErr")


PANELS = (PARASCALE_PT_main, PARASCALE_PT_results)


def register_properties():
    bpy.utils.register_class(ParaScaleSettings)
    bpy.types.Scene.parascale = PointerProperty(type=ParaScaleSettings)


def unregister_properties():
    del bpy.types.Scene.parascale
    bpy.utils.unregister_class(ParaScaleSettings)


def register():
    for cls in PANELS:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(PANELS):
        bpy.utils.unregister_class(cls)
