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
    """c2w (N, 4, 4), OpenCV axes, of an object at the given frames.

    An object moved by its own action alone (no parent, constraint, driver or NLA) is
    read in one pass over its F-curves' keys (keyed_poses): linear in the number of
    frames, whatever the number of keys. Anything else is read from the evaluated
    depsgraph frame by frame (parents, constraints, drivers, NLA; also for a scene
    linked from another file when called under a context override for it); the scene's
    current frame is then restored. Both give the same matrices."""
    frames = list(frames)
    fast = keyed_poses(obj, frames, scene)
    if fast is not None:
        return fast
    return baked_poses(obj, scene, frames)


def baked_poses(obj, scene, frames: Sequence[float], depsgraph_fn=None) -> np.ndarray:
    """evaluated_poses through the depsgraph: scene.frame_set per frame (every kind of
    animation; costs what evaluating the whole scene costs, per frame)."""
    depsgraph_fn = depsgraph_fn or bpy.context.evaluated_depsgraph_get
    current = (scene.frame_current, scene.frame_subframe)
    out = np.empty((len(frames), 4, 4))
    try:
        for i, f in enumerate(frames):
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            matrix = obj.evaluated_get(depsgraph_fn()).matrix_world
            check_unit_scale(obj, f, matrix)
            out[i] = matrix_to_numpy(matrix)
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return blender_to_cv(out)


# ---------------------------------------------------------------------------
# Poses and values from F-curves in bulk (issue 23: long tracks in linear time)

_TRANSFORM_PATHS = ("location", "rotation_euler", "rotation_quaternion", "rotation_axis_angle", "scale",
                    "delta_location", "delta_rotation_euler", "delta_rotation_quaternion", "delta_scale")
_BINARYSEARCH_THRESH = np.float32(0.0001)  # Blender's fcurve_eval_keyframes_interpolate
_KEY_EPS = np.float32(1e-8)


def _own_action_curves(holder, paths=None) -> Optional[list]:
    """The F-curves of an ID's own action when that action alone animates it (no
    drivers, NLA, tweak mode, partial influence or blending, cyclic action; no muted
    curve or group), else None. An ID without animation has no curves ([])."""
    ad = getattr(holder, "animation_data", None)
    if ad is None:
        return []
    if len(ad.drivers) or len(ad.nla_tracks) or ad.use_tweak_mode:
        return None
    if ad.action is None:
        return []
    if ad.action_influence != 1.0 or ad.action_blend_type != "REPLACE" or ad.action.use_cyclic:
        return None
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    bag = action_get_channelbag_for_slot(ad.action, ad.action_slot)
    if bag is None:
        return []
    curves = [fc for fc in bag.fcurves if paths is None or fc.data_path in paths]
    for fc in curves:
        if fc.mute or (fc.group is not None and fc.group.mute) or not fc.is_valid:
            return None
    return curves


def _time_remapped(scene) -> bool:
    """Time stretching (Frame Map Old/New) changes the time animation is evaluated at."""
    return scene is not None and scene.render.frame_map_old != scene.render.frame_map_new


def scene_times(frames) -> np.ndarray:
    """The single-precision time Blender evaluates animation at for scene.frame_set(whole,
    subframe=f - whole): float(whole) + float(subframe), summed in single precision."""
    f = np.asarray(frames, float).reshape(-1)
    whole = np.floor(f)
    return whole.astype(np.float32) + (f - whole).astype(np.float32)


def fcurve_values(fc, frames) -> np.ndarray:
    """fc.evaluate(f) for every f in frames, in one pass over the keys.

    Samples on a key, between constant or linear keys, or before/after the keys with
    constant extrapolation are computed from the key arrays as Blender computes them (in
    single precision, with its binary search's threshold), so the values are the same;
    any other sample (Bezier and easing segments, linear extrapolation, curves with
    modifiers or baked samples) is asked of fc.evaluate, which costs log(keys) each."""
    t = scene_times(frames)
    out = np.empty(len(t), float)
    n = len(fc.keyframe_points)
    if n == 0 or len(fc.modifiers):
        return np.array([fc.evaluate(float(f)) for f in t], float)
    co = np.empty(2 * n, np.float32)
    fc.keyframe_points.foreach_get("co", co)
    x, y = co[0::2], co[1::2]
    ipo = np.empty(n, np.int32)
    fc.keyframe_points.foreach_get("interpolation", ipo)
    done = np.zeros(len(t), bool)
    constant_ends = fc.extrapolation == "CONSTANT"
    # before and after the keys (fcurve_eval_keyframes_extrapolate)
    first, last = t <= x[0], t >= x[-1]
    for mask, k in ((first, 0), (last & ~first, n - 1)):
        if constant_ends or ipo[k] == CONSTANT or n == 1:
            out[mask] = y[k]
            done |= mask
    inner = ~(first | last)
    if inner.any():
        ti = t[inner]
        # Blender's binary search (BKE_fcurve_bezt_binarysearch_index_ex), all samples at once
        start = np.zeros(len(ti), np.int64)
        end = np.full(len(ti), n - 1, np.int64)
        exact = np.zeros(len(ti), bool)
        found = np.zeros(len(ti), np.int64)
        for j, val in ((0, x[0]), (n - 1, x[-1])):
            hit = ~exact & (np.abs(ti - val) <= _BINARYSEARCH_THRESH)
            found[hit], exact[hit] = j, True
        active = ~exact
        while active.any():
            mid = start + (end - start) // 2
            midfra = x[np.minimum(mid, n - 1)]
            hit = active & (np.abs(ti - midfra) <= _BINARYSEARCH_THRESH)
            found[hit], exact[hit] = mid[hit], True
            go_right = active & ~hit & (ti > midfra)
            go_left = active & ~hit & (ti < midfra)
            start = np.where(go_right, mid + 1, start)
            end = np.where(go_left, mid - 1, end)
            active = active & ~hit & (start <= end) & (go_right | go_left)
        a = np.where(exact, found, start)
        a = np.clip(a, 0, n - 1)
        prev = np.maximum(a - 1, 0)
        value = np.full(len(ti), np.nan)
        ok = np.zeros(len(ti), bool)
        on_key = exact | (np.abs(x[a] - ti) < _KEY_EPS)
        value[on_key] = y[a[on_key]]
        ok |= on_key
        begin, change = y[prev], y[a] - y[prev]
        duration, elapsed = x[a] - x[prev], ti - x[prev]
        const = ~ok & ((ipo[prev] == CONSTANT) | (duration == 0))
        value[const] = y[prev][const]
        ok |= const
        lin = ~ok & (ipo[prev] == LINEAR)
        with np.errstate(divide="ignore", invalid="ignore"):
            ease = change * elapsed / duration + begin  # BLI_easing_linear_ease, single precision
        value[lin] = ease[lin]
        ok |= lin
        idx = np.flatnonzero(inner)
        out[idx[ok]] = value[ok]
        done[idx[ok]] = True
    for i in np.flatnonzero(~done):
        out[i] = fc.evaluate(float(t[i]))
    return out


def keyed_poses(obj, frames: Sequence[float], scene=None) -> Optional[np.ndarray]:
    """c2w (N, 4, 4), OpenCV axes, of an object its own action alone moves (no parent,
    constraint, driver or NLA), from its F-curves in one pass; None when anything else
    takes part (then the depsgraph must be asked: baked_poses).

    The curves' values come from fcurve_values; the matrix from Blender's own
    loc/rot/scale composition (Object.matrix_basis of a temporary empty carrying the
    object's rotation mode and delta transforms), so it equals the evaluated matrix_world."""
    if obj.parent is not None or len(obj.constraints) or _time_remapped(scene):
        return None
    curves = _own_action_curves(obj, _TRANSFORM_PATHS)
    if curves is None:
        return None
    frames = np.asarray(list(frames), float)
    n = len(frames)
    channels = {}
    for fc in curves:
        channels.setdefault(fc.data_path, {})[fc.array_index] = fcurve_values(fc, frames)
    proxy = bpy.data.objects.new("ParaScale.pose", None)
    try:
        proxy.rotation_mode = obj.rotation_mode
        for path in _TRANSFORM_PATHS:
            setattr(proxy, path, getattr(obj, path))
        # per property: (name, static values, {index: per-frame values})
        animated = []
        for path, by_index in channels.items():
            base = np.array(getattr(obj, path), float)
            values = np.repeat(base[None], n, axis=0)
            for i, v in by_index.items():
                if i < len(base):
                    values[:, i] = v
            animated.append((path, values.tolist()))
        out = np.empty((n, 4, 4))
        for k in range(n):
            for path, values in animated:
                setattr(proxy, path, values[k])
            out[k] = proxy.matrix_basis
    finally:
        bpy.data.objects.remove(proxy)
    scale = np.linalg.norm(out[:, :3, :3], axis=1)
    bad = np.flatnonzero(np.abs(scale - 1.0).max(axis=1) > 1e-4)
    if bad.size:
        f = frames[bad[0]]
        raise ValueError(f"camera {obj.name!r} has world scale {np.round(scale[bad[0]], 4).tolist()} at frame "
                         f"{int(f) if float(f).is_integer() else f}; expected 1 (apply the scale, or scale its "
                         "parent back to 1)")
    return blender_to_cv(out)


# Camera data settings that change K, and the BlenderCamera field each one sets.
_INTRINSIC_PATHS = {"lens": "lens", "sensor_width": "sensor_width", "sensor_height": "sensor_height",
                    "shift_x": "shift_x", "shift_y": "shift_y"}
_INTRINSIC_OTHER = {"angle", "angle_x", "angle_y", "sensor_fit", "type", "lens_unit", "ortho_scale"}


def camera_intrinsics_at(obj, scene, frames: Sequence[float]) -> tuple[np.ndarray, int, int]:
    """Per-frame pixel K (N, 3, 3), W, H of a camera object as the scene renders it.

    A camera whose data is still, or animated by its own action alone on lens, sensor or
    shift, is read from its F-curves in one pass (fcurve_values); anything else (drivers,
    NLA, an animated scene) frame by frame through scene.frame_set. The same values."""
    frames = list(frames)
    fields = _intrinsic_curves(obj.data, scene)
    if fields is not None:
        base = camera_params(obj, scene)
        if not fields:
            K, W, H = intrinsics_from_blender(base)
            return np.repeat(K[None], len(frames), axis=0), W, H
        values = {name: fcurve_values(fc, frames) for name, fc in fields.items()}
        Ks = []
        for k in range(len(frames)):
            for name, v in values.items():
                setattr(base, name, float(v[k]))
            K, W, H = intrinsics_from_blender(base)
            Ks.append(K)
        return np.array(Ks), W, H
    current = (scene.frame_current, scene.frame_subframe)
    Ks = []
    try:
        for f in frames:
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            K, W, H = camera_intrinsics(obj, scene)
            Ks.append(K)
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return np.array(Ks), W, H


def _intrinsic_curves(data, scene) -> Optional[dict]:
    """{BlenderCamera field: F-curve} of a camera's data when its own action alone
    animates it (and the scene's render settings are not animated), else None."""
    if getattr(scene, "animation_data", None) is not None or _time_remapped(scene):
        return None
    curves = _own_action_curves(data)
    if curves is None:
        return None
    fields = {}
    for fc in curves:
        if fc.data_path in _INTRINSIC_OTHER:
            return None
        if fc.data_path in _INTRINSIC_PATHS:
            fields[_INTRINSIC_PATHS[fc.data_path]] = fc
    return fields


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
