"""Track a video (or a Movie Clip) with COLMAP and import it as a ready reference camera.

Thin: the tracking is `parascale track` run by parascale_blender.tracking_job.TrackJob in a
subprocess of Blender's own Python (a crash in COLMAP cannot take Blender down; the UI
stays responsive with a progress bar; Esc cancels and leaves nothing; without a window
the progress is printed), then the model is imported once with
parascale_blender.reference.import_reference on the video's own clock (its
frame_times.json), the video measured for Pi, and the panel pointed at it with the
estimator `exact` (parascale_blender.settings.use_imported_reference), as Import Track does.
"""
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

from ..parascale_blender.reference import clip_rate, import_reference
from ..parascale_blender.settings import use_imported_reference
from ..parascale_blender.tracking_job import TrackJob, console_progress, frame_width, tracking_available
from .calibrate import end_modal


def default_out(video: Path) -> Path:
    """Where the model goes unless told: beside the video, '<name>_track'."""
    return video.parent / f"{video.stem if video.is_file() else video.name}_track"


def _clip_in_context(context):
    space = getattr(context, "space_data", None)
    clip = getattr(space, "clip", None) if space is not None and space.type == "CLIP_EDITOR" else None
    return clip


class PARASCALE_OT_track_video(bpy.types.Operator):
    """Recover the camera track of a video with COLMAP, then import it as a reference camera
    with its Parallax Number (the work runs in a separate process; Esc cancels)"""

    bl_idname = "parascale.track_video"
    bl_label = "Track Video (ParaScale)"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Video", subtype="FILE_PATH",
                             description="Video file or folder of frames to track")
    clip_name: StringProperty(name="Movie Clip", default="",
                              description="Movie Clip to track (its file; frame rate, lens, sensor and pixel "
                                          "aspect from the clip)")
    use_lens: BoolProperty(name="Known Lens", default=False,
                           description="Hold this lens fixed (more accurate); otherwise the focal is guessed "
                                       "and refined")
    lens: FloatProperty(name="Focal Length", default=24.0, min=0.1, soft_max=500.0, unit="CAMERA",
                        description="Focal length in millimetres")
    sensor: FloatProperty(name="Sensor Width", default=36.0, min=0.1, soft_max=100.0,
                          description="Sensor size in millimetres along the image's width (as in the Movie "
                                      "Clip's camera data)")
    pixel_aspect: FloatProperty(name="Pixel Aspect", default=1.0, min=0.01, max=100.0,
                                description="Vertical focal over horizontal focal (fy / fx), the width of a pixel "
                                            "over its height: 1 for square pixels, 2 for a 2x anamorphic squeeze "
                                            "(as in the Movie Clip's camera data)")
    fps: FloatProperty(name="Frame Rate", default=0.0, min=0.0, max=1000.0,
                       description="The video's frame rate; 0: the rate the video file declares (a folder of "
                                   "frames without one plays one frame per scene frame). Frame i is keyed at "
                                   "i / rate seconds in scene time")
    set_scene: BoolProperty(name="Set Scene to Track", default=False,
                            description="Set the scene's frame rate (exactly, 29.97 as 30 / 1.001), frame range "
                                        "and resolution to the video's, so every video frame lands on a whole "
                                        "frame (like Setup Tracking Scene)")
    out_dir: StringProperty(name="Output Folder", subtype="DIR_PATH", default="",
                            description="Where the COLMAP model is written (default: beside the video, "
                                        "'<name>_track')")
    background: BoolProperty(name="Video as Background", default=True,
                             description="Show the video as the reference camera's background, in step with the keys")
    run_modal: BoolProperty(default=False, options={"HIDDEN", "SKIP_SAVE"})

    _job = None
    _timer = None

    @classmethod
    def poll(cls, context):
        ok, why = tracking_available()
        if not ok:
            cls.poll_message_set(why)
        return ok

    def _prefill_from_clip(self, clip, scene) -> None:
        cam = clip.tracking.camera
        self.clip_name = clip.name
        self.filepath = bpy.path.abspath(clip.filepath, library=clip.library)
        self.lens, self.sensor = float(cam.focal_length), float(cam.sensor_width)
        self.pixel_aspect = float(cam.pixel_aspect)
        self.fps = clip_rate(clip, scene)
        self.use_lens = True

    def invoke(self, context, event):
        clip = bpy.data.movieclips.get(self.clip_name) if self.clip_name else _clip_in_context(context)
        if clip is not None:
            self._prefill_from_clip(clip, context.scene)
        if context.window is None:
            return self.execute(context)
        self.run_modal = True
        return context.window_manager.invoke_props_dialog(self, width=420)

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "filepath")
        col.prop(self, "use_lens")
        sub = col.column()
        sub.enabled = self.use_lens
        sub.prop(self, "lens")
        sub.prop(self, "sensor")
        sub.prop(self, "pixel_aspect")
        col.prop(self, "fps")
        col.prop(self, "set_scene")
        col.prop(self, "out_dir")
        col.prop(self, "background")

    def _make_job(self, context) -> TrackJob:
        if self.clip_name and not self.filepath:
            clip = bpy.data.movieclips.get(self.clip_name)
            if clip is None:
                raise ValueError(f"no Movie Clip named {self.clip_name!r}")
            self._prefill_from_clip(clip, context.scene)
        video = Path(bpy.path.abspath(self.filepath))
        if not self.filepath or not video.exists():
            raise FileNotFoundError(f"{video}: no such video file or image folder")
        out = Path(bpy.path.abspath(self.out_dir)) if self.out_dir else default_out(video)
        focal = focal_y = None
        if self.use_lens:  # Movie Clip convention: focal in pixels = lens / sensor width * image width
            focal = self.lens / self.sensor * frame_width(video)
            focal_y = focal * self.pixel_aspect if self.pixel_aspect != 1.0 else None
        elif self.pixel_aspect != 1.0:
            raise ValueError(f"Pixel Aspect {self.pixel_aspect:g} holds the vertical focal to the horizontal one: "
                             "give the lens too (Known Lens), or leave the pixel aspect at 1")
        self._job = TrackJob(video, out, focal=focal, focal_y=focal_y, fps=self.fps or None)
        return self._job

    def _import(self, context, progress=None):
        job = self._job
        try:
            result = import_reference(context, job.out, format="colmap", video=job.video,
                                      background=self.background, name=f"Reference {Path(job.video).stem}",
                                      set_scene=self.set_scene, progress=progress)
        except (ValueError, OSError, ImportError) as exc:
            self.report({"ERROR"}, f"tracked, but the import failed: {exc}")
            return {"CANCELLED"}
        for msg in (job.result or {}).get("warnings", []) + result.warnings:
            self.report({"WARNING"}, msg)
        for ob in context.selected_objects:
            ob.select_set(False)
        result.obj.select_set(True)
        context.view_layer.objects.active = result.obj
        use_imported_reference(context.scene, result)  # the panel is ready: this camera, `exact`
        self.report({"INFO"}, f"Tracked and imported {len(result.track)} frames as {result.obj.name!r} "
                              f"({result.clock}; model in {job.out})")
        return {"FINISHED"}

    def execute(self, context):
        try:
            job = self._make_job(context).start()
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if self.run_modal and context.window is not None:  # from the UI: progress, Esc cancels
            wm = context.window_manager
            wm.progress_begin(0, 1000)
            self._timer = wm.event_timer_add(0.2, window=context.window)
            wm.modal_handler_add(self)
            return {"RUNNING_MODAL"}
        # Headless or from a script: blocking, the progress printed (no window to show a bar).
        if job.wait(progress=console_progress(f"ParaScale: tracking {Path(job.video).name}")) != 0:
            self.report({"ERROR"}, f"Tracking failed: {job.error}")
            return {"CANCELLED"}
        return self._import(context, progress=console_progress(f"ParaScale: measuring Pi of {Path(job.video).name}"))

    def _stop_modal(self, context):
        end_modal(self, context)

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel()
            self._stop_modal(context)
            self.report({"WARNING"}, "Tracking cancelled; nothing was written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        code = job.poll()
        context.window_manager.progress_update(int(1000 * job.fraction))
        context.workspace.status_text_set(f"ParaScale: tracking {Path(job.video).name}: {job.message} "
                                          f"({100 * job.fraction:.0f}%, Esc to cancel)")
        if code is None:
            return {"RUNNING_MODAL"}
        self._stop_modal(context)
        if code != 0:
            self.report({"ERROR"}, f"Tracking failed: {job.error}")
            return {"CANCELLED"}
        return self._import(context)

    def cancel(self, context):
        if self._job is not None:
            self._job.cancel()


def menu_import(self, context):
    self.layout.operator(PARASCALE_OT_track_video.bl_idname, text="Video, Tracked (ParaScale)")


CLASSES = (PARASCALE_OT_track_video,)
