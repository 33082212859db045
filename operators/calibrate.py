"""Calibrate and Evaluate: thin operators over parascale_blender.pipeline."""
import bpy

from ..parascale_blender import evaluate, pipeline


def _problem_or_none(context):
    return pipeline.settings_problem(context.scene)


class PARASCALE_OT_calibrate(bpy.types.Operator):
    """Transfer the reference move to the target camera, matching its Parallax Number per frame.
    Writes a new '<target>.ParaScale' camera; the target itself is left untouched"""

    bl_idname = "parascale.calibrate"
    bl_label = "Calibrate"
    bl_options = {"REGISTER", "UNDO"}

    _transfer = None
    _timer = None

    @classmethod
    def poll(cls, context):
        problem = _problem_or_none(context)
        if problem:
            cls.poll_message_set(problem)
            return False
        return True

    def _start(self, context):
        try:
            self._transfer = pipeline.transfer_from_settings(context.scene)
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return False
        return True

    def _finish(self, context):
        try:
            result = self._transfer.finish()
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        pipeline.store_result(context.scene, result)
        for warning in result.warnings:
            self.report({"WARNING"}, warning.message)
        self.report({"INFO"}, f"{result.camera.name}: {len(result.frames)} frames keyed "
                              f"({result.method}, PCE {result.pce['mean']:.4f})")
        return {"FINISHED"}

    def execute(self, context):
        if not self._start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.progress_begin(0, self._transfer.n_steps)
        try:
            while not self._transfer.step():
                wm.progress_update(self._transfer.steps_done)
        except (ValueError, OSError) as exc:
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
        wm.progress_begin(0, self._transfer.n_steps)
        self._timer = wm.event_timer_add(0.001, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _stop_modal(self, context):
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)

    def modal(self, context, event):
        if event.type == "ESC":
            self._transfer.cancel()  # nothing was written yet; the scene is restored
            self._stop_modal(context)
            self.report({"WARNING"}, "Calibration cancelled; nothing was changed")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            done = self._transfer.step()
        except (ValueError, OSError) as exc:
            self._stop_modal(context)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        t, n = self._transfer.steps_done, self._transfer.n_steps
        context.window_manager.progress_update(t)
        context.workspace.status_text_set(f"ParaScale: calibrating frame {t} of {n} (Esc to cancel)")
        if done:
            self._stop_modal(context)
            return self._finish(context)
        return {"RUNNING_MODAL"}


class PARASCALE_OT_evaluate(bpy.types.Operator):
    """Measure the Parallax Number the result camera realises and its PCE, TransErr and RotErr"""

    bl_idname = "parascale.evaluate"
    bl_label = "Evaluate"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        settings = getattr(context.scene, "parascale", None)
        if settings is None or settings.result_camera is None:
            cls.poll_message_set("Calibrate first: there is no result camera to evaluate")
            return False
        return True

    def execute(self, context):
        scene = context.scene
        settings = scene.parascale
        try:
            reference = pipeline.reference_from_settings(scene) if not _problem_or_none(context) else None
            if settings.eval_render:
                out = evaluate.evaluate_camera(scene, settings.result_camera, reference)
            else:
                out = pipeline.evaluate_depth(scene, settings.result_camera, reference,
                                              depth=settings.depth_source,
                                              depth_size=(settings.depth_width, settings.depth_height))
        except (ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings.has_evaluation = True
        settings.eval_measured_by = out["measured_by"]
        settings.eval_pce = out["pce"]
        settings.eval_pce_p90 = out["pce_p90"]
        settings.eval_trans_err = out.get("trans_err", float("nan"))
        settings.eval_rot_err = out.get("rot_err", float("nan"))
        for warning in out.get("warnings", []):
            self.report({"WARNING"}, warning)
        self.report({"INFO"}, f"PCE {out['pce']:.4f} (p90 {out['pce_p90']:.4f}), measured by {out['measured_by']}")
        return {"FINISHED"}


CLASSES = (PARASCALE_OT_calibrate, PARASCALE_OT_evaluate)
