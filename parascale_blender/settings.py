"""The panel's settings (scene.parascale) to and from the pipeline: what is missing, the
reference and options they describe, and the results, evaluations and exports shown there."""
from __future__ import annotations

import json
from typing import Optional

import bpy
import numpy as np

from ..core.parallax import default_estimator_for, estimator_advice, estimator_mismatch
from . import animation, presets
from .motion import COUNTED_PROPERTY, PI_PROPERTY, ReferenceMotion, TransferError
from .result_camera import RESULT_TAG
from .sources import reference_from_blend, reference_from_movieclip, reference_from_object, reference_from_track_file
from .transfer import Transfer, TransferOptions, TransferResult


def settings_problem(scene) -> Optional[str]:
    """Why the panel's transfer cannot run yet, or None."""
    settings = getattr(scene, "parascale", None)
    if settings is None:
        return "ParaScale settings are missing (is the add-on enabled?)"
    if settings.target_camera is None:
        return "Pick a target camera"
    kind = settings.reference_kind
    if kind == "OBJECT":
        if settings.reference_object is None:
            return "Pick a reference camera, or import a reference track"
        if settings.reference_object == settings.target_camera:
            return "The reference and the target must be different cameras"
    elif kind == "FILE" and not settings.track_path:
        return "Choose a reference track file"
    elif kind == "BLEND" and not (settings.blend_path and settings.blend_camera):
        return "Choose a .blend file and the name of its camera"
    elif kind == "CLIP" and settings.clip is None:
        return "Pick a solved movie clip"
    return None


def reference_from_settings(scene) -> ReferenceMotion:
    settings = scene.parascale
    depth_size = (settings.depth_width, settings.depth_height)
    kind = settings.reference_kind
    if kind == "OBJECT":
        return reference_from_object(settings.reference_object, scene, estimator=settings.estimator,
                                     depth=settings.depth_source, depth_size=depth_size)
    if kind == "BLEND":
        return reference_from_blend(absolute_path(settings.blend_path, "reference .blend"), settings.blend_camera,
                                    estimator=settings.estimator, depth=settings.depth_source,
                                    depth_size=depth_size)
    if kind == "CLIP":
        return reference_from_movieclip(settings.clip, scene, estimator=settings.estimator)
    video = absolute_path(settings.video_path, "video") if settings.video_path else None
    return reference_from_track_file(absolute_path(settings.track_path, "track"), video=video,
                                     estimator=settings.estimator)


def absolute_path(path: str, what: str = "file") -> str:
    """A path from a file field: Blender's //relative paths resolved against the saved
    .blend, refused with the reason in a file that was never saved."""
    if path.startswith("//") and not bpy.data.filepath:
        raise TransferError(f"the {what} path {path!r} is relative to the .blend file, which has not been "
                            "saved yet: save the file first, or give an absolute path")
    return bpy.path.abspath(path)


def use_as_reference(scene, obj, estimator: Optional[str] = None) -> None:
    """Point the panel at a reference camera (after an import), with the estimator its
    Pi was read with, so the target is measured the same way."""
    settings = getattr(scene, "parascale", None)
    if settings is None:
        return
    settings.reference_kind = "OBJECT"
    settings.reference_object = obj
    if estimator:
        settings.estimator = estimator


def use_imported_reference(scene, imported) -> None:
    """Point the panel at an imported reference (reference.ImportResult), with the estimator
    that matches how its Pi was read (exact for a video)."""
    source = imported.reference.source if imported.reference else None
    use_as_reference(scene, imported.obj, default_estimator_for(source) if source else None)


def reference_summary(obj, scene) -> Optional[str]:
    """One line about an imported or keyed reference camera: frames, duration, median Pi, source."""
    if obj is None:
        return None
    keyed = animation.property_keys(obj, PI_PROPERTY)
    fps = animation.scene_fps(scene)
    if keyed is None:
        span = animation.animated_frame_range(obj, scene)
        if span is None:
            return "does not move"
        n = span[1] - span[0] + 1
        return f"{n} frames, {(n - 1) / fps:.2f} s, Pi from the scene's depth"
    frames, pi = keyed
    return (f"{len(frames)} frames, {(frames[-1] - frames[0]) / fps:.2f} s, median Pi "
            f"{np.median(pi[1:]):.3g}, from {obj.get('parascale_pi_source', '?')}")


def reference_pixels_summary(obj) -> Optional[str]:
    """One line for a reference whose Pi was read from its video: the share of the video's
    pixels that counted (static geometry), its lowest step, and the share at infinity (sky)
    when known; None for other references."""
    if obj is None:
        return None
    keyed = animation.property_keys(obj, COUNTED_PROPERTY)
    if keyed is None or len(keyed[1]) < 2:
        return None
    counted = np.asarray(keyed[1][1:], float)
    worst = int(np.argmin(counted))
    return (f"Pixels counted {100 * np.mean(counted):.0f}% (lowest {100 * counted[worst]:.0f}% at frame "
            f"{keyed[0][worst + 1]:g}); movers filled, sky left out")


def options_from_settings(scene) -> TransferOptions:
    settings = scene.parascale
    return TransferOptions(
        method=settings.estimator, depth=settings.depth_source,
        frame_start=None if settings.use_scene_range else settings.frame_start,
        frame_end=None if settings.use_scene_range else settings.frame_end,
        depth_size=(settings.depth_width, settings.depth_height), follow_zoom=settings.follow_zoom,
        result_name=settings.result_name.strip() or None)


def transfer_from_settings(scene) -> Transfer:
    problem = settings_problem(scene)
    if problem:
        raise TransferError(problem)
    settings = scene.parascale
    return Transfer(scene, settings.target_camera, reference_from_settings(scene), options_from_settings(scene))


def store_result(scene, result: TransferResult) -> None:
    settings = scene.parascale
    settings.result_camera = result.camera
    settings.has_calibration = True
    settings.calib_residual = result.pce["mean"]
    settings.has_evaluation = False


def store_evaluation(scene, out: dict) -> None:
    """Show an evaluation in the panel: the depth figure and, when there is one, the render
    figure beside it, each with its one line on what it measures and how much of the frame
    it used; key the depth's realised Pi per step on the result as the curve `pi_realised`
    beside `pi_ref` (Graph Editor). `out`: {"depth": ..., "render": ...} (Evaluations) or
    one evaluation's dict."""
    if "depth" not in out and "render" not in out:
        out = {"render": out} if out.get("measured_by") == "optical_flow" else {"depth": out}
    settings = scene.parascale
    depth, render = out.get("depth"), out.get("render")
    settings.has_evaluation = depth is not None
    if depth is not None:
        settings.eval_measured_by = depth["measured_by"]
        settings.eval_pce = _finite_or_nan(depth["pce"])
        settings.eval_pce_p90 = _finite_or_nan(depth["pce_p90"])
        settings.eval_trans_err = depth.get("trans_err", float("nan"))
        settings.eval_rot_err = depth.get("rot_err", float("nan"))
        settings.eval_depth_summary = depth.get("summary", "")
        obj = settings.result_camera
        keyed = animation.property_keys(obj, "pi_ref") if obj is not None and obj.get(RESULT_TAG) else None
        # Only a per-frame measurement is comparable to the result's per-frame pi_ref curve.
        if keyed is not None and np.array_equal(np.asarray(depth["frames"], float), keyed[0]):
            realised = np.nan_to_num(np.asarray(depth["pi_realised"], float), nan=0.0)
            animation.write_property_curve(obj, "pi_realised", depth["frames"], np.concatenate([[0.0], realised]))
    settings.has_render_evaluation = render is not None
    if render is not None:
        settings.eval_render_measurable = bool(render["measurable"])
        settings.eval_render_pce = _finite_or_nan(render["pce"])
        settings.eval_render_pce_p90 = _finite_or_nan(render["pce_p90"])
        settings.eval_render_trusted = float(render["trusted_median"])
        settings.eval_render_summary = render["summary"]
        settings.eval_render_advice = render.get("render_advice") or ""
        if render.get("preview"):
            settings.eval_preview_written = render["preview"]["path"]


def _finite_or_nan(value) -> float:
    return float(value) if value is not None and np.isfinite(value) else float("nan")


def reference_source(scene) -> Optional[str]:
    """How the panel's reference has (or will have) its Pi read: video | points | depth | scene."""
    settings = getattr(scene, "parascale", None)
    if settings is None:
        return None
    kind = settings.reference_kind
    if kind == "OBJECT":
        obj = settings.reference_object
        if obj is None:
            return None
        if animation.property_keys(obj, PI_PROPERTY) is not None:
            return str(obj.get("parascale_pi_source", "points"))
        return "scene"
    if kind == "FILE":
        return "video" if settings.video_path else ("points" if settings.track_path else None)
    if kind == "BLEND":
        return "scene"
    return "points"  # a Movie Clip solve: its bundles


def advice_lines(scene, width: int = 44) -> list:
    """The estimator advice for the panel's reference, wrapped for the sidebar: the very
    sentence `parascale transfer` and `parascale evaluate` print (core.parallax)."""
    import textwrap

    source = reference_source(scene)
    if source is None:
        return []
    return textwrap.wrap(estimator_advice(source), width)


def estimator_problem(scene, width: int = 44) -> list:
    """Wrapped lines saying why the panel's estimator does not read Pi the way the
    reference was read (core.parallax.estimator_mismatch, as the transfer warns), or []."""
    import textwrap

    settings = getattr(scene, "parascale", None)
    source = reference_source(scene)
    if settings is None or source is None:
        return []
    ref_estimator = settings.estimator
    obj = settings.reference_object if settings.reference_kind == "OBJECT" else None
    if obj is not None and obj.get("parascale_estimator"):
        ref_estimator = str(obj["parascale_estimator"])
    problem = estimator_mismatch(ref_estimator, source, settings.estimator)
    return textwrap.wrap(problem, width) if problem else []


def evaluation_from_settings(scene):
    """The Evaluate operator's job (evaluate.Evaluations): depth always, render when the
    panel's Render and Measure is on (with its samples, denoising and Save Preview)."""
    from . import evaluate
    from .evaluate_depth import DepthEvaluation

    settings = scene.parascale
    reference = reference_from_settings(scene) if not settings_problem(scene) else None
    depth = DepthEvaluation(scene, settings.result_camera, reference)
    render = None
    if settings.eval_render:
        preview = None
        if settings.eval_save_preview:
            if not settings.eval_preview_path:
                raise TransferError("Save Preview is on but no preview file is set")
            preview = absolute_path(settings.eval_preview_path, "preview")
            if not preview.lower().endswith((".mp4", ".mov", ".avi", ".mkv")):
                raise TransferError(f"the preview file {preview!r} must end in .mp4, .mov, .avi or .mkv")
        try:
            render = evaluate.closed_loop_for(scene, settings.result_camera, reference,
                                              samples=settings.eval_samples, denoise=settings.eval_denoise,
                                              preview=preview)
        except BaseException:
            depth.cancel()
            raise
    return evaluate.Evaluations(depth, render)


def store_export(scene, result, camera_obj=None) -> None:
    """Where the exported move sits in its generator's training range, for the panel; the
    scene depth scale it measured is kept for the panel's range indicator."""
    settings = getattr(scene, "parascale", None)
    if settings is None:
        return
    g = result.gauge or {}
    if camera_obj is not None and g.get("scene_depth_scale") and result.image_size and result.steps:
        key = _range_key(camera_obj.name, g.get("depth_frame", 0), result.image_size, len(result.steps) + 1)
        _cache_move(settings, key, g["scene_depth_scale"], result.steps, result.frame_labels)
        refresh_range(scene, camera_obj, render=False)
    rng = result.range or {}
    name = (result.gauge or {}).get("generator")
    if not name or rng.get("position") is None:
        settings.export_summary = f"Exported in scene units ({len(result.warnings)} warning(s))"
        return
    where = "faster than" if rng.get("too_fast") else "slower than" if rng.get("too_slow") else "within"
    settings.export_summary = (f"{name}: {where} its training range (at {100 * rng['position']:.0f}% of its "
                               f"path lengths, log scale)")


DISAGREE = 0.1  # PCE gap between the residual and an independent figure worth explaining


def figures_disagree(settings) -> list:
    """Why the calibration residual and an independent evaluation differ, when they do."""
    if not (settings.has_calibration and settings.has_evaluation):
        return []
    if not settings.eval_pce - settings.calib_residual > DISAGREE:
        return []
    return ["Independent depth disagrees with the calibration:",
            "different depth source, size or clip range?"]


# -- the panel's Generator, Speed and training-range indicator ---------------------------

RANGE_UNCHECKED = "Check Range to see where the move sits"
RANGE_CACHE_SIZE = 16


def _range_key(camera: str, frame, size, frames) -> str:
    return f"{camera}|{int(round(frame))}|{int(size[0])}x{int(size[1])}|{int(frames)}"


def _cache_move(settings, key: str, depth: float, steps, labels) -> None:
    """Keep what a range check needs without Blender: the scene depth scale (one Z pass)
    and the move's step lengths in scene units, per camera, start frame, size and frames."""
    try:
        cache = json.loads(settings.range_cache or "{}")
    except ValueError:
        cache = {}
    cache.pop(key, None)
    cache[key] = {"depth": float(depth), "steps": [float(v) for v in steps], "labels": list(labels)}
    settings.range_cache = json.dumps(dict(list(cache.items())[-RANGE_CACHE_SIZE:]))


def _cached_move(settings, key: str) -> Optional[dict]:
    try:
        return json.loads(settings.range_cache or "{}").get(key)
    except ValueError:
        return None


def refresh_range(scene, camera_obj, *, render: bool = False) -> Optional[dict]:
    """Where camera_obj's move sits in the training range of the panel's Generator at its
    Speed, at the preset's frames and size, shown by the panel's indicator (range_state,
    range_position, range_text). What it needs (the scene depth scale and the move's step
    lengths) is kept per camera, start frame, size and frame count, from Check Range
    (render=True: export.gauge_preview, one Z pass) or an export; with it kept, a change of
    Generator or Speed is arithmetic (core.gauge.steps_in_range), without it the indicator
    says to check. Returns the range dictionary or None."""
    from ..core import gauge
    from .export import camera_problem, gauge_preview

    settings = getattr(scene, "parascale", None)
    if settings is None:
        return None
    preset = presets.BY_KEY.get(settings.export_preset)
    problem = camera_problem(camera_obj, scene) if preset is not None else "pick a Generator"
    if problem:
        settings.range_state, settings.range_text, settings.range_position = "none", problem, 0.0
        return None
    size = (preset.width, preset.height)
    key = _range_key(camera_obj.name, animation.animated_frame_range(camera_obj, scene)[0], size, preset.frames)
    kept = _cached_move(settings, key)
    name, speed = preset.range_of, settings.export_speed
    try:
        if kept is not None:
            factor = gauge.gauge_factor(name, kept["depth"], speed)
            out = gauge.steps_in_range(name, np.asarray(kept["steps"]) * factor, kept["labels"])
        elif render:
            out = gauge_preview(scene, camera_obj, name, speed=speed, frames=preset.frames, size=size)
            _cache_move(settings, key, out["gauge"]["scene_depth_scale"], out["steps"], out["frame_labels"])
        else:
            settings.range_state, settings.range_text, settings.range_position = "none", RANGE_UNCHECKED, 0.0
            return None
    except ValueError as exc:  # GaugeError too
        settings.range_state, settings.range_text, settings.range_position = "error", str(exc), 0.0
        return None
    position = out["position"]
    settings.range_position = 0.0 if position is None else float(position)
    if out["too_fast"]:
        settings.range_state = "fast"
        settings.range_text = f"{name}: {len(out['too_fast'])} frame(s) faster than its training data"
    elif out["too_slow"]:
        settings.range_state = "slow"
        settings.range_text = f"{name}: {len(out['too_slow'])} frame(s) slower than its training data"
    elif position is None:
        settings.range_state, settings.range_text = "none", f"{name}: the move has no translation"
    elif not 0.0 <= position <= 1.0:
        settings.range_state = "fast" if position > 1 else "slow"
        settings.range_text = f"{name}: the path is {'longer' if position > 1 else 'shorter'} than its training paths"
    else:
        settings.range_state = "inside"
        settings.range_text = f"{name}: within its training range ({100 * position:.0f}% of its path range)"
    return out
