"""Rendering without touching the user's scene: every ParaScale render (the depth pass,
closed-loop measurement renders) happens in a temporary scene that links the user's
scene's collections and world. The user's render settings, active camera, compositor
and frame are never changed, not even mid-run, and no temporary data is left behind."""
from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

import bpy
import numpy as np

from . import compat
from .quiet import quiet_stdout

TEMP_SCENE_NAME = "ParaScale.render"
_TEMP_SCENES = itertools.count(1)
RENDER_RESULT = "Render Result"


def _copy_layer_flags(src, dst) -> None:
    """Layer-collection flags (exclude, holdout, indirect only) of the user's view layer."""
    dst.exclude = src.exclude
    dst.holdout = src.holdout
    dst.indirect_only = src.indirect_only
    children = {c.collection.name_full: c for c in dst.children}
    for child in src.children:
        match = children.get(child.collection.name_full)
        if match is not None:
            _copy_layer_flags(child, match)


@contextlib.contextmanager
def temporary_scene(scene, view_layer=None, frame=None):
    """A new scene showing what `scene` shows (its collections, objects, world, colour
    management and the view layer's collection flags), at `frame` (default: the user's
    current frame), removed afterwards with everything created in it. Renders go there."""
    view_layer = view_layer or (bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0])
    had_render_result = RENDER_RESULT in bpy.data.images
    # A name never used before in this process: Blender keeps a render (and Cycles'
    # persistent data) per scene name, so a reused name would render the previous
    # temporary scene's contents. A counter, not a random name: runs are reproducible.
    tmp = bpy.data.scenes.new(f"{TEMP_SCENE_NAME}.{os.getpid()}.{next(_TEMP_SCENES)}")
    try:
        for child in scene.collection.children:
            tmp.collection.children.link(child)
        for obj in scene.collection.objects:
            tmp.collection.objects.link(obj)
        tmp.world = scene.world
        for attr in ("view_transform", "look", "exposure", "gamma"):
            setattr(tmp.view_settings, attr, getattr(scene.view_settings, attr))
        tmp.display_settings.display_device = scene.display_settings.display_device
        tmp.unit_settings.scale_length = scene.unit_settings.scale_length
        tmp.render.fps, tmp.render.fps_base = scene.render.fps, scene.render.fps_base
        tmp_layer = tmp.view_layers[0]
        tmp_layer.update()  # 5.2 builds a new view layer's collection tree lazily
        if view_layer.layer_collection is not None:
            _copy_layer_flags(view_layer.layer_collection, tmp_layer.layer_collection)
        if frame is None:
            frame = scene.frame_current + scene.frame_subframe
        tmp.frame_set(int(frame), subframe=float(frame - int(frame)))
        yield tmp
    finally:
        # Free Cycles' persistent data of this scene now (the property's update does), and
        # unlink the user's data, so removing the scene leaves nothing that points into it.
        tmp.render.use_persistent_data = False
        for obj in list(tmp.collection.objects):
            tmp.collection.objects.unlink(obj)
        for child in list(tmp.collection.children):
            tmp.collection.children.unlink(child)
        tmp.world = None
        bpy.data.scenes.remove(tmp)
        if not had_render_result and RENDER_RESULT in bpy.data.images:
            bpy.data.images.remove(bpy.data.images[RENDER_RESULT])


def new_camera(scene, name: str):
    """A camera object (with its own data) linked to `scene` only."""
    obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    scene.collection.objects.link(obj)
    return obj


def remove_camera(obj) -> None:
    data = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    if data.users == 0:
        bpy.data.cameras.remove(data)


def set_fast_cycles(scene, samples: int, denoise: bool = False):
    """Cycles on the CPU, fixed sample count; no denoiser unless asked (then
    OpenImageDenoise at its fast settings, compat.set_denoiser)."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False
    if denoise:
        compat.set_denoiser(scene)


class FrameRenderer:
    """Render a camera's views one at a time (so a modal operator can report progress and
    cancel between frames) into folder/frame_#####.png, 8-bit RGB, in a temporary scene.
    transparent=True: RGBA with the world's background transparent, so alpha says which
    pixels see geometry (the coverage rule); denoise=True: OpenImageDenoise.

    The views are placed explicitly: the camera's evaluated pose and intrinsics at each
    frame (sub-frames allowed) go to the renderer's own camera. (Rendering a scene that is
    not the window's renders at the window scene's current frame, so its animation cannot
    be trusted to move the camera.)

    with FrameRenderer(scene, camera, folder, width, height) as r:
        for f in frames: r.render(f)
    """

    def __init__(self, scene, camera, folder, width: int, height: int, *, samples: int = 4,
                 transparent: bool = False, denoise: bool = False):
        self.scene, self.camera = scene, camera
        self.folder = Path(folder)
        self.size = int(width), int(height)
        self.samples = int(samples)
        self.transparent, self.denoise = bool(transparent), bool(denoise)
        self._temp = None
        self._view = None
        self.tmp = None
        self._views = 0

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self._temp = temporary_scene(self.scene)
        tmp = self.tmp = self._temp.__enter__()
        try:
            self._view = new_camera(tmp, "ParaScale.view")
            source = self.camera.data
            self._view.data.clip_start, self._view.data.clip_end = source.clip_start, source.clip_end
            set_fast_cycles(tmp, self.samples, self.denoise)
            r = tmp.render
            r.film_transparent = self.transparent
            r.resolution_x, r.resolution_y = self.size
            r.resolution_percentage = 100
            r.use_compositing = False
            r.use_persistent_data = True
            r.image_settings.file_format = "PNG"
            r.image_settings.color_mode = "RGBA" if self.transparent else "RGB"
            tmp.camera = self._view
        except BaseException:
            self.close()
            raise
        return self

    def render_view(self, c2w_cv, K, width: int, height: int, path) -> Path:
        """Render the view from pose c2w_cv (OpenCV axes) with intrinsics K at width x height."""
        from mathutils import Matrix

        from ..core.cameras import cv_to_blender
        from ..core.parallax import scale_intrinsics
        from .animation import apply_intrinsics

        tmp = self.tmp
        self._view.matrix_world = Matrix(cv_to_blender(np.asarray(c2w_cv, float)).tolist())
        apply_intrinsics(self._view.data, scale_intrinsics(K, width, height, *self.size), *self.size, scene=tmp)
        tmp.render.filepath = str(path)
        # A new noise pattern per view, as a camera's sensor noise: Cycles' noise under a
        # fixed seed stays put on the screen while the image moves, and optical flow reads
        # it as stillness (measured on the town at 16 samples: Pi 11% low).
        self._views += 1
        tmp.cycles.seed = self._views
        with quiet_stdout():
            bpy.ops.render.render(write_still=True, scene=tmp.name)
        if not Path(path).is_file():
            raise RuntimeError(f"the render wrote no image at {path}")
        return Path(path)

    def render(self, frame, index=None) -> Path:
        """Render the camera as it is at `frame` (sub-frames allowed) into
        frame_<index or frame>.png."""
        from .animation import camera_intrinsics, evaluated_poses

        whole = int(np.floor(frame))
        c2w = evaluated_poses(self.camera, self.scene, [frame])[0]
        current = (self.scene.frame_current, self.scene.frame_subframe)
        try:
            self.scene.frame_set(whole, subframe=float(frame - whole))  # lens animation
            K, W, H = camera_intrinsics(self.camera, self.scene)
        finally:
            self.scene.frame_set(current[0], subframe=current[1])
        path = self.folder / f"frame_{int(whole if index is None else index):05d}.png"
        try:
            return self.render_view(c2w, K, W, H, path)
        except RuntimeError as exc:
            raise RuntimeError(f"frame {frame:g}: {exc}") from None

    def close(self):
        if self._view is not None:
            remove_camera(self._view)
            self._view = None
        if self._temp is not None:
            temp, self._temp = self._temp, None
            temp.__exit__(None, None, None)

    def __exit__(self, *exc):
        self.close()
        return False


def render_frames(scene, camera, frames, folder, width: int, height: int, *, samples: int = 4,
                  progress=None) -> list:
    """Render `camera` at each frame into folder/frame_#####.png (8-bit RGB).
    Returns the file paths in frame order. The user's scene is not touched."""
    paths = []
    with FrameRenderer(scene, camera, folder, width, height, samples=samples) as renderer:
        for i, f in enumerate(frames):
            paths.append(renderer.render(f))
            if progress:
                progress(i + 1, len(frames))
    return paths


def render_size_for(scene, long_side: int) -> tuple[int, int]:
    """A small render size with the scene's aspect (pixel aspect folded in)."""
    r = scene.render
    W = r.resolution_x * r.pixel_aspect_x
    H = r.resolution_y * r.pixel_aspect_y
    if W >= H:
        return long_side, max(2, int(round(long_side * H / W / 2)) * 2)
    return max(2, int(round(long_side * W / H / 2)) * 2), long_side
