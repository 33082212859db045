"""Calibrate, Evaluate and View Through Result: thin operators over parascale_blender.

Calibrate and Evaluate drive a stepwise job (n_steps, steps_done, step(), finish(),
cancel()) from a modal timer in the UI, with a progress bar and Esc to cancel, and run
it to the end in execute() when there is no window (headless, scripts)."""
import bpy

from ..parascale_blender import pipeline

ERRORS = (ValueError, OSError, RuntimeError)


def _problem_or_none(context):
    return pipeline.settings_problem(context.scene)


def end_modal(operator, context) -> None:
    """Undo what a modal operator's invoke set up: its timer, progress bar and status text."""
    wm = context.window_manager
    wm.event_timer_remove(operator._timer)
    wm.progress_end()
    context.workspace.status_text_set(None)


def _has_result(cls, context, message: str) -> bool:
    """poll() of the operators that work on the result camera."""
    settings = getattr(context.scene, "parascale", None)
    if settings is None or settings.result_camera is None:
        cls.poll_message_set(message)
        return False
    return True


class _StepwiseJob:
    """Mixin: run self._make_job(context) step by step, modal when there is a window."""

    _job = None
    _timer = None
    _label = "working"

    def _make_job(self, context):
        raise NotImplementedError

    def _done(self, context, out):
        raise NotImplementedError

    def _start(self, context) -> bool:
        try:
            self._job = self._make_job(context)
        except ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _finish(self, context):
        try:
            out = self._job.finish()
        except ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return self._done(context, out)

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, self._job.n_steps)
        try:
            while not self._job.step():
                wm.progress_update(self._job.steps_done)
        except ERRORS as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        finally:
            wm.progress_end()
        return self._finish(context)

    def invoke(self, context, event):
        if context.window is None:  # headless: no event loop to drive a modal operator
            return self.execute(context)
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, self._job.n_steps)
        self._timer = wm.event_timer_add(0.001, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _stop_modal(self, context):
        end_modal(self, context)

    def modal(self, context, event):
        if event.type == "ESC":
            self._job.cancel()  # nothing was written yet; temporary data is removed
            self._stop_modal(context)
            self.report({"WARNING"}, f"{self.bl_label} cancelled; nothing was changed")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = self._job.step()
        except ERRORS as exc:
            self._stop_modal(context)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        t, n = self._job.steps_done, self._job.n_steps
        context.window_manager.progress_update(t)
        context.workspace.status_text_set(f"ParaScale: {self._label} {t} of {n} (Esc to cancel)")
        if done:
            self._stop_modal(context)
            return self._finish(context)
        return {"RUNNING_MODAL"}


class PARASCALE_OT_calibrate(_StepwiseJob, bpy.types.Operator):
    """Transfer the reference move to the target camera, matching its Parallax Number per frame.
    Writes the camera '<target>.ParaScale' (updated in place on later runs); the target is left untouched"""

    bl_idname = "parascale.calibrate"
    bl_label = "Calibrate"
    bl_options = {"REGISTER", "UNDO"}
    _label = "calibrating step"

    @classmethod
    def poll(cls, context):
        problem = _problem_or_none(context)
        if problem:
            cls.poll_message_set(problem)
            return False
        return True

    def _make_job(self, context):
        return pipeline.transfer_from_settings(context.scene)

    def _done(self, context, result):
        pipeline.store_result(context.scene, result)
        for warning in result.warnings:
            self.report({"WARNING"}, warning.message)
        self.report({"INFO"}, f"{result.camera.name}: {len(result.frames)} frames keyed ({result.method}); "
                              f"calibration residual {result.pce['mean']:.4f} on its own depth "
                              "(Evaluate for an independent figure)")
        return {"FINISHED"}


class PARASCALE_OT_evaluate(_StepwiseJob, bpy.types.Operator):
    """Measure the Parallax Number the result camera realises, independently of the calibration:
    from depth (ray cast), and with Render and Measure also by optical flow on renders; PCE,
    TransErr and RotErr, the two figures side by side"""

    bl_idname = "parascale.evaluate"
    bl_label = "Evaluate"
    bl_options = {"REGISTER", "UNDO"}  # keys the realised Pi curve on the result
    _label = "evaluating step"

    @classmethod
    def poll(cls, context):
        return _has_result(cls, context, "Calibrate first: there is no result camera to evaluate")

    def _make_job(self, context):
        return pipeline.evaluation_from_settings(context.scene)

    def _done(self, context, out):
        pipeline.store_evaluation(context.scene, out)
        depth, render = out["depth"], out["render"]
        text = f"by depth: PCE {depth['pce']:.4f} (p90 {depth['pce_p90']:.4f})"
        if render is not None:
            for warning in render.get("warnings", []):
                self.report({"WARNING"}, warning)
            if render["measurable"]:
                text += f"; by render: PCE {render['pce']:.4f} (p90 {render['pce_p90']:.4f}), {render['summary']}"
            else:
                self.report({"WARNING"}, f"by render: {render['not_measurable']}")
                text += "; by render: not measurable"
            if render.get("preview"):
                text += f"; preview {render['preview']['path']}"
        self.report({"INFO"}, text)
        return {"FINISHED"}


class PARASCALE_OT_view_result(bpy.types.Operator):
    """Make the result camera the scene camera, select it (its Pi curves show in the Graph Editor)
    and look through it"""

    bl_idname = "parascale.view_result"
    bl_label = "View Through Result"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return _has_result(cls, context, "Calibrate first: there is no result camera")

    def execute(self, context):
        obj = context.scene.parascale.result_camera
        if context.scene.objects.get(obj.name) != obj:
            self.report({"ERROR"}, f"{obj.name!r} is not in scene {context.scene.name!r}")
            return {"CANCELLED"}
        context.scene.camera = obj
        for other in context.selected_objects:
            other.select_set(False)
        obj.select_set(True)
        context.view_layer.objects.active = obj
        if context.area is not None and context.area.type == "VIEW_3D":
            context.space_data.region_3d.view_perspective = "CAMERA"
        return {"FINISHED"}


CLASSES = (PARASCALE_OT_calibrate, PARASCALE_OT_evaluate, PARASCALE_OT_view_result)
