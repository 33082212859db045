"""Export an animated camera to the pose files of video generators (core.writers),
with the standalone bridge script copied next to what was written. One function,
used by the File > Export operator and by `parascale export`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..core import writers
from ..core.writers import atomic_write_bytes
from ..core.cameras import Track
from . import animation

BRIDGE_SOURCE = Path(__file__).resolve().parents[1] / "bridge" / "parascale_bridge.py"
BRIDGE_NAME = "parascale_bridge.py"
CURVES = ("pi_ref", "pi_target", "scale")


def camera_track(scene, camera_obj, frame_range: Optional[Sequence[int]] = None) -> Track:
    """The camera's evaluated poses (OpenCV c2w), per-frame intrinsics, frame times
    (frame / fps), ParaScale curves and provenance as a Track."""
    if camera_obj is None or camera_obj.type != "CAMERA":
        raise ValueError(f"{getattr(camera_obj, 'name', camera_obj)!r} is not a camera object")
    animated = animation.animated_frame_range(camera_obj)
    if animated is None:
        raise ValueError(f"camera {camera_obj.name!r} has no animation: key its motion (or run a "
                         "ParaScale transfer) before exporting")
    a, b = (int(frame_range[0]), int(frame_range[1])) if frame_range else animated
    if b <= a:
        raise ValueError(f"frame range {a}..{b} of camera {camera_obj.name!r} needs at least 2 frames")
    frames = list(range(a, b + 1))
    c2w = animation.evaluated_poses(camera_obj, scene, frames)
    current = (scene.frame_current, scene.frame_subframe)
    Ks = []
    try:
        for f in frames:
            scene.frame_set(f)
            K, W, H = animation.camera_intrinsics(camera_obj, scene)
            Ks.append(K)
    finally:
        scene.frame_set(current[0], subframe=current[1])
    fps = scene.render.fps / scene.render.fps_base
    curves = {}
    for name in CURVES:
        values = animation.property_curve(camera_obj, name, frames)
        if values is not None:
            curves[name] = values
    props = {k: camera_obj[k] for k in camera_obj.keys()
             if k.startswith("parascale_") and isinstance(camera_obj[k], (int, float, str))}
    reference = {"blend": bpy_filepath(), "scene": scene.name, "camera": camera_obj.name,
                 "frames": [a, b], **props}
    meta = {"fps": fps, "unit_scale": float(scene.unit_settings.scale_length or 1.0),
            "estimator": props.get("parascale_estimator"), "reference": reference,
            "curves": curves, "source_frames": frames}
    return Track(c2w=c2w, K=np.array(Ks), width=W, height=H, times=np.array(frames, float) / fps,
                 names=[f"frame_{f:05d}" for f in frames], source=f"{camera_obj.name} in {scene.name}",
                 meta=meta)


def bpy_filepath() -> str:
    import bpy

    return bpy.data.filepath or ""


def _gen3c_depths(scene, track: Track, depth_size) -> tuple[np.ndarray, np.ndarray]:
    try:
        from .depth import ZPassDepth
    except ImportError as exc:  # pragma: no cover - depends on the lead's module
        raise ValueError(f"GEN3C export needs the Z-pass depth renderer (parascale_blender.depth): {exc}")
    w, h = int(depth_size[0]), int(depth_size[1])
    depths, Ks = [], []
    with ZPassDepth(scene, width=w, height=h) as zp:
        for c2w, K in zip(track.c2w, track.K):
            view = zp.depth(c2w, K, track.width, track.height)
            depths.append(np.asarray(view.depth, np.float32))
            Ks.append(np.asarray(view.K, float))
    return np.stack(depths), np.stack(Ks)


def copy_bridge(folder) -> Path:
    """Copy the bridge script into folder (atomically)."""
    dest = Path(folder) / BRIDGE_NAME
    atomic_write_bytes(dest, BRIDGE_SOURCE.read_bytes())
    return dest


def export_camera(scene, camera_obj, fmt: str, output, frames: Optional[int] = None,
                  frame_range: Optional[Sequence[int]] = None, depth_size=(96, 54)) -> list:
    """Write camera_obj's animation over frame_range (default: its keyed range) in
    format fmt (core.writers.FORMATS) to output, resampled to `frames` evenly spaced
    frames when given (None: every frame; recammaster: 81). GEN3C also renders the
    scene's Z-pass depth (depth_size W x H) at every exported frame, in the same units
    as the translation. Copies parascale_bridge.py next to the output.
    Returns the written paths (output first, then the bridge). Raises ValueError."""
    if fmt not in writers.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(writers.FORMATS)}")
    if not BRIDGE_SOURCE.is_file():
        raise ValueError(f"the bridge script is missing from the extension ({BRIDGE_SOURCE})")
    output = Path(output)
    track = camera_track(scene, camera_obj, frame_range)
    if frames is None:
        frames = writers.DEFAULT_FRAMES.get(fmt)
    track = writers.prepare(track, frames)
    kwargs = {}
    if fmt == "gen3c":
        depths, depth_K = _gen3c_depths(scene, track, depth_size)
        kwargs.update(depths=depths, depth_K=depth_K)
    if fmt == "recammaster":
        kwargs.update(unit_scale=track.meta.get("unit_scale", 1.0))
    if fmt in writers.FOLDER_FORMATS:  # the bridge goes in with the folder, which appears as a whole
        kwargs["extra_files"] = {BRIDGE_NAME: BRIDGE_SOURCE.read_bytes()}
        written = writers.write_track(track, fmt, output, frames=None, **kwargs)
        return [str(written), str(written / BRIDGE_NAME)]
    written = writers.write_track(track, fmt, output, frames=None, **kwargs)
    return [str(written), str(copy_bridge(written.parent))]
