"""Depth of a Blender scene seen from a pose: the Cycles Z pass, or ray casting.

Both return core.calibrate.DepthView (planar Z on a small pixel grid, +inf where
nothing is hit) so the calibration does not care where depth comes from. The Z
pass renders in a temporary scene that links the user's collections (render.py), so
the user's render settings, active camera and compositor are never touched, and
reuses one compositor setup, one temporary camera and Cycles' persistent data
across calls. Everything it creates is removed on exit, error or cancel.
"""
from __future__ import annotations

import os
import shutil
from typing import Optional

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..core.calibrate import DepthView
from ..core.cameras import cv_to_blender
from ..core.parallax import normalized_grid, scale_intrinsics
from . import compat
from ..core.formats.writers import scratch_dir
from .animation import apply_intrinsics
from .quiet import quiet_stdout
from .render import new_camera, remove_camera, set_fast_cycles, temporary_scene

BACKGROUND_Z = 1e9  # Cycles writes 1e10 where a ray hits nothing


def scene_bounds(scene) -> Optional[np.ndarray]:
    """(8, 3) world corners of the box around every visible object with geometry.
    Visibility is asked of the scene's own view layer: without one, Blender answers for
    the window's scene, and every object of another scene reads as hidden."""
    corners = []
    view_layer = bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0]
    for obj in scene.objects:
        if obj.type in {"MESH", "CURVE", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD", "CURVES"} \
                and obj.visible_get(view_layer=view_layer):
            box = np.array([list(c) for c in obj.bound_box])
            mw = np.array([list(r) for r in obj.matrix_world])
            corners.append(box @ mw[:3, :3].T + mw[:3, 3])
    if not corners:
        return None
    pts = np.concatenate(corners)
    lo, hi = pts.min(0), pts.max(0)
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


def far_distance(bounds: Optional[np.ndarray], center: np.ndarray) -> float:
    """Distance from a camera centre to the farthest corner of the scene box."""
    if bounds is None:
        return 1.0
    return float(np.linalg.norm(bounds - center, axis=1).max())


class ZPassDepth:
    """Render planar depth with Cycles on the CPU at a small resolution.

    with ZPassDepth(scene, width=96, height=54) as zp:
        view = zp.depth(c2w_cv, K, W, H)   # K at the full W x H image

    reuse=False rebuilds the compositor and drops persistent data on every call
    (the baseline the benchmark compares against).
    """

    def __init__(self, scene, width: int = 96, height: int = 54, *, clip_start: float = 1e-3,
                 samples: int = 1, reuse: bool = True):
        self.scene = scene
        self.width, self.height = int(width), int(height)
        self.clip_start = float(clip_start)
        self.samples = int(samples)
        self.reuse = reuse
        self._temp = self._tmp_scene = None
        self._image = None
        self._camera = None
        self._group = None
        self._tmp = None
        self._bounds = None

    # -- setup in a temporary scene (the user's scene is never touched) ---
    def _build(self):
        self._temp = temporary_scene(self.scene)
        s = self._tmp_scene = self._temp.__enter__()
        r = s.render
        set_fast_cycles(s, self.samples)
        s.cycles.filter_width = 0.01  # sample pixel centres: depth is not blended across edges
        r.resolution_x, r.resolution_y, r.resolution_percentage = self.width, self.height, 100
        r.use_persistent_data = self.reuse
        r.use_compositing = True
        self._view_layer = s.view_layers[0]
        self._view_layer.use_pass_z = True
        self._tmp = scratch_dir("parascale_depth_")  # a killed run's folder is removed by the next
        r.filepath = os.path.join(self._tmp, "render_")
        self._camera = new_camera(s, "ParaScale.depth")
        s.camera = self._camera
        self._make_compositor()
        self._bounds = scene_bounds(self.scene)

    def _make_compositor(self):
        compat.remove_depth_output(self._tmp_scene, self._group)
        self._group = compat.add_depth_output(self._tmp_scene, self._view_layer, self._tmp, "depth_####")

    def _read_image(self, path: str):
        """One image datablock for the whole pass, reloaded per frame: removing an
        image makes Cycles throw away its persistent scene data (measured: 40x
        slower per keyframe at 1M triangles)."""
        if self._image is None:
            self._image = bpy.data.images.load(path, check_existing=False)
        else:
            if bpy.path.abspath(self._image.filepath) != path:
                self._image.filepath = path
            self._image.reload()
        return self._image

    def _drop_image(self):
        if self._image is not None:
            bpy.data.images.remove(self._image)
            self._image = None

    def _teardown(self):
        self._drop_image()
        if self._camera is not None:
            remove_camera(self._camera)
            self._camera = None
        if self._group is not None:
            compat.remove_depth_output(self._tmp_scene, self._group)
            self._group = None
        if self._temp is not None:
            temp, self._temp = self._temp, None
            temp.__exit__(None, None, None)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        self._teardown()

    def __exit__(self, *exc):
        self.close()
        return False

    # -- rendering -------------------------------------------------------
    def grid_intrinsics(self, K: np.ndarray, width: int, height: int) -> np.ndarray:
        return scale_intrinsics(K, width, height, self.width, self.height)

    def _place_camera(self, c2w_cv: np.ndarray, K_grid: np.ndarray):
        cam = self._camera
        cam.matrix_world = Matrix(cv_to_blender(c2w_cv).tolist())
        apply_intrinsics(cam.data, K_grid, self.width, self.height, scene=self._tmp_scene)
        cam.data.clip_start = self.clip_start
        # The depth pass must see the whole scene, wherever the move takes the camera.
        cam.data.clip_end = max(1e3 * self.clip_start, 1.01 * far_distance(self._bounds, c2w_cv[:3, 3]))

    def depth(self, c2w_cv: np.ndarray, K: np.ndarray, width: int, height: int) -> DepthView:
        """Planar depth at pose c2w_cv (OpenCV axes) for a camera with intrinsics K at
        width x height, sampled on this renderer's grid."""
        K_grid = self.grid_intrinsics(K, width, height)
        self._place_camera(np.asarray(c2w_cv, float), K_grid)
        if not self.reuse:
            self._make_compositor()
        for name in os.listdir(self._tmp):
            os.remove(os.path.join(self._tmp, name))
        with quiet_stdout():
            bpy.ops.render.render(write_still=False, scene=self._tmp_scene.name)
        files = [f for f in os.listdir(self._tmp) if f.startswith("depth_") and f.endswith(".exr")]
        if not files:
            raise RuntimeError("the Z pass render wrote no depth file (is the compositor disabled?)")
        image = self._read_image(os.path.join(self._tmp, files[0]))
        w, h = image.size
        channels = image.channels
        px = np.empty(w * h * channels, np.float32)
        image.pixels.foreach_get(px)
        if not self.reuse:
            self._drop_image()
        # Blender images start at the bottom row; ours start at the top.
        Z = px.reshape(h, w, channels)[::-1, :, 0].astype(float)
        Z[Z >= BACKGROUND_Z] = np.inf
        return DepthView(Z, K_grid)


class RayCastDepth:
    """Planar depth by Scene.ray_cast through the same pixel-centre grid."""

    def __init__(self, scene, width: int = 96, height: int = 54, *, clip_start: float = 1e-3):
        self.scene = scene
        self.width, self.height = int(width), int(height)
        self.clip_start = float(clip_start)

    def __enter__(self):
        self._depsgraph = bpy.context.evaluated_depsgraph_get()
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass

    def depth(self, c2w_cv: np.ndarray, K: np.ndarray, width: int, height: int) -> DepthView:
        K_grid = scale_intrinsics(K, width, height, self.width, self.height)
        c2w_cv = np.asarray(c2w_cv, float)
        xy = normalized_grid(K_grid, self.width, self.height).reshape(-1, 2)
        rays = np.c_[xy, np.ones(len(xy))] @ c2w_cv[:3, :3].T  # camera z = 1: t is planar depth
        lengths = np.linalg.norm(rays, axis=1)
        unit = rays / lengths[:, None]
        origin = Vector(c2w_cv[:3, 3].tolist())
        ray_cast = self.scene.ray_cast
        depsgraph = self._depsgraph
        forward = c2w_cv[:3, 2]
        Z = np.full(len(unit), np.inf)
        for i, direction in enumerate(unit.tolist()):
            hit, location, *_ = ray_cast(depsgraph, origin, Vector(direction))
            if hit:
                Z[i] = (np.array(location) - c2w_cv[:3, 3]) @ forward
        Z = Z.reshape(self.height, self.width)
        Z[Z < self.clip_start] = np.inf  # behind the near plane: the camera would not see it
        return DepthView(Z, K_grid)


def depth_source(kind: str, scene, width: int = 96, height: int = 54, **kwargs):
    """'zpass' (default) or 'raycast'."""
    if kind == "zpass":
        return ZPassDepth(scene, width, height, **kwargs)
    if kind == "raycast":
        return RayCastDepth(scene, width, height, clip_start=kwargs.get("clip_start", 1e-3))
    raise ValueError(f"unknown depth source {kind!r}; expected 'zpass' or 'raycast'")
