"""The ParaScale sidebar (3D View > N panel > ParaScale) and its settings (scene.parascale).
May import: bpy, parascale_blender, operators; core only for types."""
import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from ..parascale_blender import compat, presets

ESTIMATOR_ITEMS = [
    ("exact", "Exact", "Exact image motion of each step over the pixels that see geometry; matches a video "
                       "reference (set by Import)"),
    ("harmonic", "Harmonic", "|T| times the mean inverse depth, background counts as zero (default)"),
    ("mean", "Mean", "|T| over the mean depth (the paper as first published; reads low)"),
    ("flow", "Flow", "Mean first-order image motion: tells a dolly from a truck; pairs with a video reference"),
]
DEPTH_ITEMS = [
    ("zpass", "Z Pass", "Cycles depth pass at a small resolution (default)"),
    ("raycast", "Ray Cast", "Scene ray casts on the same pixel grid"),
]
REFERENCE_ITEMS = [
    ("OBJECT", "Camera", "An imported reference camera or any animated camera in this file "
                         "(keyed, parented, constrained or NLA)"),
    ("FILE", "Track", "A camera track file (COLMAP, transforms.json, RealEstate10K, LLFF, MegaSaM)"),
    ("BLEND", ".blend", "A camera animated in another .blend file"),
    ("CLIP", "Clip", "Blender's own camera solve of a movie clip"),
]


def _is_camera(_self, obj):
    return obj.type == "CAMERA"


def _range_update(_self, context):
    """Generator or Speed changed: the indicator follows from the kept depth scale (no render)."""
    from ..parascale_blender import export, pipeline

    pipeline.refresh_range(context.scene, export.default_camera(context.scene, context.active_object))


class ParaScaleSettings(bpy.types.PropertyGroup):
    reference_kind: EnumProperty(name="Reference", items=REFERENCE_ITEMS, default="OBJECT",
                                 description="Where the reference camera move comes from")
    reference_object: PointerProperty(name="Reference Camera", type=bpy.types.Object, poll=_is_camera,
                                      description="Camera whose move is transferred")
    track_path: StringProperty(name="Track", subtype="FILE_PATH", description="Reference camera track file",
                               options=compat.path_options())
    video_path: StringProperty(name="Video", subtype="FILE_PATH", options=compat.path_options(),
                               description="Reference video (file or image folder) to measure Pi from, optional")
    blend_path: StringProperty(name="File", subtype="FILE_PATH", options=compat.path_options(),
                               description=".blend file holding the reference camera")
    blend_camera: StringProperty(name="Camera", description="Name of the camera object in that .blend file")
    clip: PointerProperty(name="Movie Clip", type=bpy.types.MovieClip,
                          description="Movie clip with a camera solve (Movie Clip editor > Solve Camera)")
    target_camera: PointerProperty(name="Target Camera", type=bpy.types.Object, poll=_is_camera,
                                   description="Camera placed at the start of the shot in this scene; never modified")
    estimator: EnumProperty(name="Estimator", items=ESTIMATOR_ITEMS, default="harmonic",
                            description="How the Parallax Number is read from depth; must match the reference's "
                                        "(set by Import)")
    depth_source: EnumProperty(name="Depth", items=DEPTH_ITEMS, default="zpass",
                               description="How the target scene's depth is read")
    use_scene_range: BoolProperty(name="Scene Range", default=True,
                                  description="Start at the scene's start frame and run as long as the reference lasts")
    frame_start: IntProperty(name="Start", default=1, description="First frame of the calibrated move")
    frame_end: IntProperty(name="End", default=250, description="Last frame of the calibrated move")
    depth_width: IntProperty(name="Width", default=96, min=8, max=4096,
                             description="Width of the depth image the calibration reads (pixels)")
    depth_height: IntProperty(name="Height", default=54, min=8, max=4096,
                              description="Height of the depth image the calibration reads (pixels)")
    follow_zoom: BoolProperty(name="Follow Zoom", default=False,
                              description="The lens follows the reference's focal length changes")
    result_name: StringProperty(name="Result Name", default="",
                                description="Name of the calibrated camera (empty: '<target>.ParaScale'); give "
                                            "each calibration its own name to keep several side by side, "
                                            "calibrating again under a name updates that camera in place")
    result_camera: PointerProperty(name="Result", type=bpy.types.Object, poll=_is_camera,
                                   description="The calibrated camera (updated in place when you calibrate again)")
    has_calibration: BoolProperty(default=False, options={"HIDDEN"})
    calib_residual: FloatProperty(
        name="Residual", precision=4,
        description="Calibration residual: PCE of the target Pi against the reference Pi on the very depth that "
                    "drove the calibration; near zero by construction, it shows the solver converged")
    eval_render: BoolProperty(name="Render and Measure", default=False,
                              description="Also evaluate by rendering the result and measuring its image motion "
                                          "by optical flow over the pixels that see geometry, where the flow is "
                                          "trusted (closed loop); the depth figure is always measured")
    eval_samples: IntProperty(name="Samples", default=4, min=1, max=4096,
                              description="Cycles samples of each measurement render")
    eval_denoise: BoolProperty(name="Denoise", default=True,
                               description="OpenImageDenoise on the measurement renders: render noise is a still "
                                           "pattern that drags the flow towards zero and hides texture")
    eval_save_preview: BoolProperty(name="Save Preview", default=False,
                                    description="Write the reference video and the renders side by side on one "
                                                "clock, with the per-step Pi of both and the share of pixels trusted")
    eval_preview_path: StringProperty(name="Preview", subtype="FILE_PATH", default="//parascale_preview.mp4",
                                      options=compat.path_options(),
                                      description="Where Save Preview writes its video (.mp4)")
    eval_preview_written: StringProperty(name="Preview Written", options={"HIDDEN"})
    has_render_evaluation: BoolProperty(default=False, options={"HIDDEN"})
    eval_render_measurable: BoolProperty(default=False, options={"HIDDEN"})
    eval_render_pce: FloatProperty(name="PCE (render)", precision=4,
                                   description="PCE by optical flow on renders, over the covered pixels it trusts")
    eval_render_pce_p90: FloatProperty(name="p90 (render)", precision=4,
                                       description="90th percentile of the per-step PCE by optical flow on renders")
    eval_render_trusted: FloatProperty(name="Trusted", subtype="FACTOR", min=0.0, max=1.0,
                                       description="Median share of the pixels that see geometry whose flow "
                                                   "was trusted")
    eval_render_summary: StringProperty(name="Render Figure", description="What the render figure measures and "
                                                                           "how much of the frame it used")
    eval_render_advice: StringProperty(name="Render Advice",
                                       description="Which figure to read when the render evaluation does not read "
                                                   "the result the way it was calibrated")
    eval_depth_summary: StringProperty(name="Depth Figure", description="What the depth figure measures and how "
                                                                         "much of the frame it used")
    has_evaluation: BoolProperty(default=False, options={"HIDDEN"})
    eval_pce: FloatProperty(name="PCE", precision=4,
                            description="Mean |ln(realised Pi / reference Pi)| per step, measured independently")
    eval_pce_p90: FloatProperty(name="PCE p90", precision=4, description="90th percentile of the per-step PCE")
    eval_trans_err: FloatProperty(name="TransErr", precision=4,
                                  description="Translation error against the reference move after a similarity")
    eval_rot_err: FloatProperty(name="RotErr (deg)", precision=3,
                                description="Rotation error against the reference move, degrees")
    eval_measured_by: StringProperty(name="Measured By", description="How the realised Pi was measured")
    export_summary: StringProperty(name="Export", description="Where the last exported move sits in its "
                                                               "generator's training range")
    export_preset: EnumProperty(name="Generator", items=presets.enum_items(), default=presets.DEFAULT,
                                update=_range_update,
                                description="The generator Export writes for: its format, frames, size and gauge "
                                            "(the Export dialog's presets)")
    export_speed: FloatProperty(name="Speed", default=1.0, min=1e-6, soft_max=10.0, update=_range_update,
                                description="Multiplies the translation on top of the generator's gauge "
                                            "(1 = the move as calibrated)")
    range_state: StringProperty(default="none", options={"HIDDEN"})
    range_text: StringProperty(name="Training Range", default="",
                               description="Where the move sits in the Generator's training range at this Speed")
    range_position: FloatProperty(name="Range", subtype="FACTOR", min=-100.0, max=100.0, soft_min=0.0, soft_max=1.0,
                                  description="Where the move's path sits between the shortest (0) and the "
                                              "longest (1) path of the Generator's training data (log scale)")
    range_cache: StringProperty(default="", options={"HIDDEN"})


def _draw_reference(layout, context, settings):
    from ..parascale_blender.tracking_job import tracking_available
    from ..parascale_blender import pipeline

    layout.prop(settings, "reference_kind", expand=True)
    kind = settings.reference_kind
    if kind == "OBJECT":
        layout.prop(settings, "reference_object")
        summary = pipeline.reference_summary(settings.reference_object, context.scene)
        if summary:
            layout.label(text=summary, icon="INFO")
        pixels = pipeline.reference_pixels_summary(settings.reference_object)
        if pixels:  # Pi read from a video: how much of it showed static geometry
            layout.label(text=pixels, icon="IMAGE_DATA")
        row = layout.row(align=True)
        row.operator("parascale.import_track", text="Import Track", icon="IMPORT")
        row.operator("parascale.track_video", text="Track Video", icon="TRACKER")
        available, why = tracking_available()
        if not available:
            layout.label(text=why, icon="ERROR")  # says plainly why, e.g. no pycolmap wheel here
    elif kind == "FILE":
        layout.prop(settings, "track_path")
        layout.prop(settings, "video_path")
    elif kind == "BLEND":
        layout.prop(settings, "blend_path")
        layout.prop(settings, "blend_camera")
    else:
        layout.prop(settings, "clip")


class PARASCALE_PT_main(bpy.types.Panel):
    bl_label = "ParaScale"
    bl_idname = "PARASCALE_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "ParaScale"

    def draw(self, context):
        from ..parascale_blender import pipeline

        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.parascale

        box = layout.box()
        box.label(text="Reference", icon="CAMERA_DATA")
        _draw_reference(box, context, settings)

        box = layout.box()
        box.label(text="Target", icon="OUTLINER_OB_CAMERA")
        box.prop(settings, "target_camera")
        box.prop(settings, "estimator")
        problem = pipeline.estimator_problem(context.scene)
        if problem:
            for line in problem:
                box.label(text=line, icon="ERROR")
        box.prop(settings, "depth_source")
        col = box.column(align=True)
        col.prop(settings, "depth_width", text="Depth Size")
        col.prop(settings, "depth_height", text=" ")
        box.prop(settings, "follow_zoom")

        box = layout.box()
        box.label(text="Frames", icon="TIME")
        box.prop(settings, "use_scene_range")
        col = box.column(align=True)
        col.enabled = not settings.use_scene_range
        col.prop(settings, "frame_start")
        col.prop(settings, "frame_end")

        layout.prop(settings, "result_name")
        col = layout.column(align=True)
        col.scale_y = 1.3
        col.operator("parascale.calibrate", icon="PLAY")
        row = col.row(align=True)
        row.operator("parascale.evaluate", icon="GRAPH")
        row.prop(settings, "eval_render", text="", icon="RENDER_STILL")
        if settings.eval_render:
            sub = layout.column(align=True)
            sub.prop(settings, "eval_samples")
            sub.prop(settings, "eval_denoise")
            sub.prop(settings, "eval_save_preview")
            if settings.eval_save_preview:
                sub.prop(settings, "eval_preview_path", text="")

        _draw_export(layout.box(), settings)


RANGE_ICONS = {"inside": "CHECKMARK", "fast": "ERROR", "slow": "ERROR", "error": "CANCEL", "none": "INFO"}


def _draw_export(box, settings):
    """Generator and Speed, where the move sits in that generator's training range, and
    Export with the generator's preset (format, frames, size, gauge) and this speed."""
    box.label(text="Export", icon="EXPORT")
    box.prop(settings, "export_preset")
    row = box.row(align=True)
    row.prop(settings, "export_speed")
    row.operator("parascale.check_range", text="", icon="VIEWZOOM")
    if settings.range_state in ("inside", "fast", "slow"):
        row = box.row()
        row.enabled = False
        row.prop(settings, "range_position", slider=True)
    if settings.range_text:
        box.label(text=settings.range_text, icon=RANGE_ICONS.get(settings.range_state, "INFO"))
    props = box.operator("parascale.export_poses", text="Export", icon="EXPORT")
    preset = presets.BY_KEY.get(settings.export_preset)
    if preset is not None:
        for name, value in presets.operator_values(preset, settings.export_speed).items():
            setattr(props, name, value)


def _figure(value: float) -> str:
    return f"{value:.4f}" if value == value else "-"  # nan: not measured


def _draw_figures(layout, settings):
    """The depth figure and the render figure side by side, each with one line on what it
    measures and how much of the frame it used."""
    row = layout.row()
    depth, render = row.column(align=True), row.column(align=True)
    depth.label(text="Depth", icon="MOD_LENGTH")
    depth.label(text=f"PCE {_figure(settings.eval_pce)}")
    depth.label(text=f"p90 {_figure(settings.eval_pce_p90)}")
    render.label(text="Render", icon="RENDER_STILL")
    if not settings.has_render_evaluation:
        render.label(text="not run")
        render.label(text="(Render and Measure)")
    elif settings.eval_render_measurable:
        render.label(text=f"PCE {_figure(settings.eval_render_pce)}")
        render.label(text=f"p90 {_figure(settings.eval_render_pce_p90)}")
    else:
        render.label(text="not measurable", icon="ERROR")
        render.label(text=f"{100 * settings.eval_render_trusted:.0f}% trusted")
    col = layout.column(align=True)
    col.label(text="Depth: " + settings.eval_depth_summary)
    if settings.has_render_evaluation:
        col.label(text="Render: " + settings.eval_render_summary)
        if not settings.eval_render_measurable:
            col.label(text="Read the depth figure: flow cannot measure here", icon="INFO")
        if settings.eval_render_advice:
            col.label(text=settings.eval_render_advice, icon="ERROR")
        if settings.eval_preview_written:
            col.label(text="Preview: " + settings.eval_preview_written, icon="FILE_MOVIE")
    sub = layout.column(align=True)
    sub.enabled = False
    sub.prop(settings, "eval_trans_err")
    sub.prop(settings, "eval_rot_err")


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
        from ..parascale_blender import pipeline

        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.parascale
        layout.prop(settings, "result_camera")
        layout.operator("parascale.view_result", text="View Through Result", icon="VIEW_CAMERA")
        if settings.has_calibration:
            row = layout.row()
            row.enabled = False
            row.prop(settings, "calib_residual", text="Residual (depth)")
        if settings.has_evaluation:
            _draw_figures(layout, settings)
            for line in pipeline.figures_disagree(settings):
                layout.label(text=line, icon="ERROR")
        else:
            layout.label(text="Evaluate for an independent PCE", icon="INFO")
        lines = pipeline.advice_lines(context.scene)
        if lines:
            col = layout.column(align=True)
            col.label(text="Estimators:", icon="QUESTION")
            for line in lines:
                col.label(text=line)
        if settings.export_summary:
            layout.label(text=settings.export_summary, icon="EXPORT")
        layout.label(text="Graph Editor: pi_ref, pi_target, pi_realised", icon="GRAPH")


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
