"""Rendering a camera's frames for closed-loop measurement, with the scene's own
render settings snapshotted and restored exactly (shared with the depth pass)."""
from __future__ import annotations

import contextlib

from pathlib import Path

import bpy

from .compat import COMPOSITOR_SETTINGS
from .quiet import quiet_stdout

# (owner path, attribute) pairs a measurement render may change.
RENDER_SETTINGS = (
    ("render", "engine"), ("render", "resolution_x"), ("render", "resolution_y"),
    ("render", "resolution_percentage"), ("render", "pixel_aspect_x"), ("render", "pixel_aspect_y"),
    ("render", "use_border"), ("render", "filepath"), ("render", "use_persistent_data"),
    ("render", "use_compositing"), ("render", "film_transparent"),
    ("render.image_settings", "file_format"), ("render.image_settings", "color_mode"),
    ("cycles", "samples"), ("cycles", "device"), ("cycles", "use_adaptive_sampling"),
    ("cycles", "use_denoising"), ("cycles", "filter_width"),
    ("", "camera"),
) + COMPOSITOR_SETTINGS


def _owner(scene, path):
    obj = scene
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part)
    return obj


@contextlib.contextmanager
def saved_render_state(scene, view_layer=None):
    """Snapshot every render setting a ParaScale render touches (plus the view layer's
    Z pass and the current frame) and restore them on exit, also after errors."""
    view_layer = view_layer or (bpy.context.view_layer if bpy.context.scene == scene else scene.view_layers[0])
    saved = [(path, attr, getattr(_owner(scene, path), attr)) for path, attr in RENDER_SETTINGS]
    pass_z = view_layer.use_pass_z
    frame = (scene.frame_current, scene.frame_subframe)
    try:
        yield view_layer
    finally:
        for path, attr, value in saved:
            setattr(_owner(scene, path), attr, value)
        view_layer.use_pass_z = pass_z
        if (scene.frame_current, scene.frame_subframe) != frame:
            scene.frame_set(frame[0], subframe=frame[1])


def set_fast_cycles(scene, samples: int):
    """Cycles on the CPU, fixed sample count, no denoiser: fast and deterministic."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = False


def render_frames(scene, camera, frames, folder, width: int, height: int, *, samples: int = 4,
                  progress=None) -> list:
    """Render `camera` at each frame into folder/frame_#####.png (8-bit RGB).
    Returns the file paths in frame order. Scene settings are restored afterwards."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with saved_render_state(scene):
        set_fast_cycles(scene, samples)
        r = scene.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = int(width), int(height), 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.use_border = False
        r.use_compositing = False
        r.film_transparent = False
        r.use_persistent_data = True
        r.image_settings.file_format = "PNG"
        r.image_settings.color_mode = "RGB"
        scene.camera = camera
        for i, f in enumerate(frames):
            scene.frame_set(int(f))
            path = folder / f"frame_{int(f):05d}.png"
            r.filepath = str(path)
            with quiet_stdout():
                bpy.ops.render.render(write_still=True, scene=scene.name)
            if not path.is_file():
                raise RuntimeError(f"frame {f}: the render wrote no image at {path}")
            paths.append(path)
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
