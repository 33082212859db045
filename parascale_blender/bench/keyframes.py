"""Bench section 4: camera keyframes written in bulk (foreach_set) vs keyframe_insert."""
from __future__ import annotations

import math
import time

import numpy as np

from ...core.cameras import look_at
from .common import (Config, Results, _log, row)


# 4. bulk keyframes vs keyframe_insert

def bench_keyframes(cfg: Config, res: Results) -> None:
    import bpy
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    from ...core.cameras import cv_to_blender
    from ...core.rotations import continuous_quats, quat_from_matrix
    from ..animation import write_camera_animation

    n = cfg.key_frames
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    th = np.linspace(0.0, 6.0, n)
    c2w = np.stack([look_at((3 * np.cos(t), 3 * np.sin(t), 1 + 0.2 * np.sin(5 * t)), (0, 0, 0)) for t in th])
    frames = np.arange(1, n + 1)
    cam = bpy.data.cameras.new("bench")

    def new_obj(name):
        obj = bpy.data.objects.new(name, cam)
        scene.collection.objects.link(obj)
        return obj

    _log(f"keyframes: {n:,} frames in bulk (write_camera_animation), best of {cfg.bulk_repeats} ...")
    bulk = math.inf
    for k in range(cfg.bulk_repeats):
        obj = new_obj(f"bulk{k}")
        t0 = time.perf_counter()
        write_camera_animation(obj, c2w, frames, f"bulk{k}")
        bulk = min(bulk, time.perf_counter() - t0)
    _log(f"keyframes: bulk: {bulk:.3f} s")

    _log(f"keyframes: {n:,} frames with keyframe_insert (once) ...")
    mw = cv_to_blender(c2w)
    q = continuous_quats(quat_from_matrix(mw[:, :3, :3]))
    loc = mw[:, :3, 3]
    obj2 = new_obj("insert")
    obj2.rotation_mode = "QUATERNION"
    edit = bpy.context.preferences.edit
    saved = edit.keyframe_new_interpolation_type
    edit.keyframe_new_interpolation_type = "LINEAR"  # the same keys as the bulk writer
    try:
        t0 = time.perf_counter()
        for i in range(n):
            obj2.location = loc[i]
            obj2.rotation_quaternion = q[i]
            obj2.keyframe_insert("location", frame=float(frames[i]))
            obj2.keyframe_insert("rotation_quaternion", frame=float(frames[i]))
        insert = time.perf_counter() - t0
    finally:
        edit.keyframe_new_interpolation_type = saved
    _log(f"keyframes: keyframe_insert: {insert:.2f} s")

    # The two wrote the same keys: same curves, counts and values.
    def curves(o):
        bag = action_get_channelbag_for_slot(o.animation_data.action, o.animation_data.action_slot)
        out = {}
        for fc in bag.fcurves:
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            out[(fc.data_path, fc.array_index)] = co
        return out

    a, b = curves(bpy.data.objects["bulk0"]), curves(obj2)
    same = a.keys() == b.keys() and all(len(a[k]) == len(b[k]) and np.allclose(a[k], b[k], atol=1e-5) for k in a)
    rows = [row(f"keyframe_insert per frame ({n:,} frames)", insert / n, "frame",
                f"keyframe_insert per frame ({n:,} frames)", insert / n, total_s=insert),
            row(f"bulk foreach_set ({n:,} frames)", bulk / n, "frame",
                f"keyframe_insert per frame ({n:,} frames)", insert / n, total_s=bulk)]
    res.sections["keyframes"] = {"frames": n, "channels": len(a), "same_keys": bool(same), "rows": rows}
    bpy.ops.wm.read_factory_settings(use_empty=True)
