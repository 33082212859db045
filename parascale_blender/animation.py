"""Camera animation in and out of Blender: poses, intrinsics, bulk keyframes.

Poses cross this boundary as numpy arrays in OpenCV axes (core's convention);
Blender's matrix_world is converted with core.cameras.{blender_to_cv,cv_to_blender}.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import bpy
import numpy as np

from ..core.cameras import BlenderCamera, blender_from_intrinsics, blender_to_cv, cv_to_blender, intrinsics_from_blender
from ..core.clock import scene_rate
from ..core.rotations import continuous_quats, quat_from_matrix
from . import compat

CONSTANT, LINEAR = 0, 1  # enum indices of 'LINEAR' in Keyframe.interpolation (CONSTANT, LINEAR, BEZIER, ...)


def scene_fps(scene) -> float:
    """The scene's frame rate as it is meant (core.clock.scene_rate): 30 / 1.001 is
    30000/1001 exactly, though Blender stores fps_base as float32."""
    return float(scene_rate(scene.render.fps, scene.render.fps_base))


def camera_params(obj, scene) -> BlenderCamera:
    """The projection-relevant settings of a camera object in a scene."""
    cam, r = obj.data, scene.render
    return BlenderCamera(
        lens=cam.lens, sensor_width=cam.sensor_width, sensor_height=cam.sensor_height,
        sensor_fit=cam.sensor_fit, shift_x=cam.shift_x, shift_y=cam.shift_y,
        resolution_x=r.resolution_x, resolution_y=r.resolution_y,
        resolution_percentage=r.resolution_percentage,
        pixel_aspect_x=r.pixel_aspect_x, pixel_aspect_y=r.pixel_aspect_y)


def camera_intrinsics(obj, scene) -> tuple[np.ndarray, int, int]:
    """Pixel K, W, H of a camera object as the scene renders it."""
    return intrinsics_from_blender(camera_params(obj, scene))


def apply_intrinsics(cam_data, K: np.ndarray, width: int, height: int, scene=None) -> BlenderCamera:
    """Set lens, sensor and shift of camera data so it renders K at width x height.
    With a scene, also its resolution and pixel aspect (otherwise they must already match)."""
    params = blender_from_intrinsics(K, width, height, sensor_fit="HORIZONTAL",
                                     sensor_width=cam_data.sensor_width)
    cam_data.sensor_fit = params.sensor_fit
    cam_data.sensor_height = params.sensor_height
    cam_data.lens = params.lens
    cam_data.shift_x = params.shift_x
    cam_data.shift_y = params.shift_y
    if scene is not None:
        r = scene.render
        r.resolution_x, r.resolution_y = params.resolution_x, params.resolution_y
        r.resolution_percentage = params.resolution_percentage
        r.pixel_aspect_x, r.pixel_aspect_y = params.pixel_aspect_x, params.pixel_aspect_y
    return params


def matrix_to_numpy(matrix) -> np.ndarray:
    return np.array([list(row) for row in matrix], dtype=float)


def check_unit_scale(obj, frame=None, matrix=None) -> None:
    """Cameras must have scale 1: the pose math assumes rigid transforms."""
    m = matrix_to_numpy(obj.matrix_world if matrix is None else matrix)[:3, :3]
    scale = np.linalg.norm(m, axis=0)
    if np.abs(scale - 1.0).max() > 1e-4:
        at = f" at frame {frame}" if frame is not None else ""
        raise ValueError(f"camera {obj.name!r} has world scale {np.round(scale, 4).tolist()}{at}; "
                         "expected 1 (apply the scale, or scale its parent back to 1)")


def evaluated_poses(obj, scene, frames: Iterable[int]) -> np.ndarray:
    """c2w (N, 4, 4), OpenCV axes, of an object at the given frames, read from the
    evaluated depsgraph (parents, constraints, drivers, NLA; also for a scene linked
    from another file when called under a context override for it). The scene's
    current frame is restored."""
    frames = list(frames)
    current = (scene.frame_current, scene.frame_subframe)
    out = np.empty((len(frames), 4, 4))
    try:
        for i, f in enumerate(frames):
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            matrix = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).matrix_world
            check_unit_scale(obj, f, matrix)
            out[i] = matrix_to_numpy(matrix)
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return blender_to_cv(out)


def _own_frame_range(holder) -> Optional[tuple[float, float]]:
    """Frames spanned by an ID's own animation: active action and unmuted NLA strips."""
    ad = getattr(holder, "animation_data", None)
    if ad is None:
        return None
    spans = []
    if ad.action is not None:
        spans.append(tuple(ad.action.frame_range))
    for track in ad.nla_tracks:
        if not track.mute:
            spans += [(s.frame_start, s.frame_end) for s in track.strips if not s.mute]
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def _solver_clip_range(constraint, scene) -> Optional[tuple[float, float]]:
    clip = constraint.clip if not getattr(constraint, "use_active_clip", False) else None
    clip = clip or (scene.active_clip if scene is not None else None)
    if clip is None:
        return None
    return float(clip.frame_start), float(clip.frame_start + clip.frame_duration - 1)


def animated_frame_range(obj, scene=None) -> Optional[tuple[int, int]]:
    """First and last frame over which an object's world pose is animated, or None.

    Looks where animators put motion: the object's action and NLA strips, its parents',
    the objects its constraints follow, a Camera Solver constraint's movie clip, and
    drivers (which can depend on anything: the scene's frame range then)."""
    spans, seen, todo = [], set(), [obj]
    while todo:
        o = todo.pop()
        if o is None or o.name_full in seen:
            continue
        seen.add(o.name_full)
        span = _own_frame_range(o)
        if span is not None:
            spans.append(span)
        ad = o.animation_data
        if ad is not None and len(ad.drivers) and scene is not None:
            spans.append((scene.frame_start, scene.frame_end))
        todo.append(o.parent)
        for c in getattr(o, "constraints", ()):
            if c.mute or c.influence == 0:
                continue
            if c.type in {"CAMERA_SOLVER", "OBJECT_SOLVER", "FOLLOW_TRACK"}:
                span = _solver_clip_range(c, scene)
                if span is not None:
                    spans.append(span)
            todo.append(getattr(c, "target", None))
            for t in getattr(c, "targets", ()):  # Armature / Child Of style multi-targets
                todo.append(getattr(t, "target", None))
    if not spans:
        return None
    lo, hi = min(a for a, _ in spans), max(b for _, b in spans)
    return int(np.floor(lo + 1e-6)), int(np.ceil(hi - 1e-6))


def _fcurve(obj, data_path: str, index: int = 0):
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return None
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot)
    return bag.fcurves.find(data_path, index=index) if bag is not None else None


def property_curve(obj, name: str, frames) -> Optional[np.ndarray]:
    """Values at `frames` of the animated custom property obj["name"], or None."""
    fc = _fcurve(obj, f'["{name}"]')
    if fc is None:
        return None
    return np.array([fc.evaluate(f) for f in frames], float)


def property_keys(obj, name: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(frames, values) of the keys of the animated custom property obj["name"], or None."""
    fc = _fcurve(obj, f'["{name}"]')
    if fc is None or len(fc.keyframe_points) == 0:
        return None
    co = np.empty(2 * len(fc.keyframe_points))
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2].astype(float), co[1::2].astype(float)


def _channelbag(obj):
    ad = obj.animation_data
    return compat.ensure_channelbag(ad.action, ad.action_slot)


def new_action(obj, name: str):
    """A fresh action with one slot, assigned to obj (never reuses the user's action)."""
    action = bpy.data.actions.new(name)
    slot = action.slots.new(id_type="OBJECT", name=obj.name)
    ad = obj.animation_data or obj.animation_data_create()
    ad.action = action
    ad.action_slot = slot
    return action


def write_fcurve(channelbag, data_path: str, index: int, frames: np.ndarray, values: np.ndarray,
                 interpolation: int = LINEAR):
    """One F-curve keyed at every frame in bulk (foreach_set), linear interpolation."""
    fc = compat.ensure_fcurve(channelbag, data_path, index)
    n = len(frames)
    fc.keyframe_points.clear()
    fc.keyframe_points.add(n)
    co = np.empty(2 * n)
    co[0::2] = frames
    co[1::2] = values
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("interpolation", np.full(n, interpolation, dtype=np.int32))
    fc.update()
    return fc


def write_camera_animation(obj, c2w_cv: np.ndarray, frames: Sequence[float], action_name: str,
                           curves: Optional[dict] = None, lens: Optional[np.ndarray] = None):
    """Key obj (unparented) with the poses, one key per frame, in a new action.

    Rotation goes in as quaternions made continuous (no sign flips between keys).
    curves: name -> values per frame, keyed as animated custom properties (Graph
    Editor curves). lens: optional per-frame focal length in mm, keyed on the data.
    """
    frames = np.asarray(frames, float)
    mw = cv_to_blender(np.asarray(c2w_cv, float))
    if len(mw) != len(frames):
        raise ValueError(f"{len(mw)} poses for {len(frames)} frames")
    obj.rotation_mode = "QUATERNION"
    q = continuous_quats(quat_from_matrix(mw[:, :3, :3]))
    loc = mw[:, :3, 3]
    obj.location = loc[0]
    obj.rotation_quaternion = q[0]
    obj.scale = (1.0, 1.0, 1.0)
    action = new_action(obj, action_name)
    bag = _channelbag(obj)
    for i in range(3):
        write_fcurve(bag, "location", i, frames, loc[:, i])
    for i in range(4):
        write_fcurve(bag, "rotation_quaternion", i, frames, q[:, i])
    for name, values in (curves or {}).items():
        values = np.asarray(values, float)
        obj[name] = float(values[0])
        write_fcurve(bag, f'["{name}"]', 0, frames, values)
    if lens is not None:
        data = obj.data
        lens_action = bpy.data.actions.new(action_name + ".lens")
        slot = lens_action.slots.new(id_type="CAMERA", name=data.name)
        ad = data.animation_data or data.animation_data_create()
        ad.action, ad.action_slot = lens_action, slot
        write_fcurve(compat.ensure_channelbag(lens_action, slot), "lens", 0, frames,
                     np.asarray(lens, float))
    return action


def write_property_curve(obj, name: str, frames, values) -> None:
    """Key (or re-key) the custom property obj[name] on the object's own action."""
    values = np.asarray(values, float)
    obj[name] = float(values[0])
    write_fcurve(_channelbag(obj), f'["{name}"]', 0, np.asarray(frames, float), values)


def write_stepped_curve(id_data, id_type: str, data_path: str, frames, values, action_name: str):
    """Key one property of any ID (a movie clip, camera data) with constant
    interpolation: it holds each value until the next key, in a new action."""
    action = bpy.data.actions.new(action_name)
    slot = action.slots.new(id_type=id_type, name=id_data.name)
    ad = id_data.animation_data or id_data.animation_data_create()
    ad.action, ad.action_slot = action, slot
    write_fcurve(compat.ensure_channelbag(action, slot), data_path, 0, np.asarray(frames, float),
                 np.asarray(values, float), interpolation=CONSTANT)
    return action


def remove_object(obj) -> None:
    """Delete an object with its camera data and actions, if no one else uses them."""
    data = obj.data
    actions = []
    for holder in (obj, data):
        ad = getattr(holder, "animation_data", None)
        if ad is not None and ad.action is not None:
            actions.append(ad.action)
    bpy.data.objects.remove(obj, do_unlink=True)
    if data is not None and data.users == 0:
        if isinstance(data, bpy.types.Camera):
            bpy.data.cameras.remove(data)
    for action in actions:
        if action.users == 0:
            bpy.data.actions.remove(action)
