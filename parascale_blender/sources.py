"""Ways to build a ReferenceMotion: a track file, a camera object in this file, a camera in
another .blend, a Movie Clip solve; and the Pi of a camera move read from its own scene's depth."""
from __future__ import annotations

from typing import Callable, Optional

import bpy
import numpy as np

from ..core.cameras import steps
from ..core.parallax import default_estimator_for, parallax_of_depth_map
from . import animation
from .depth import depth_source
from .motion import COUNTED_PROPERTY, PI_PROPERTY, ReferenceMotion, TransferError


def reference_from_track_file(path, *, video=None, format=None, estimator="harmonic",
                              offset: Optional[int] = None) -> ReferenceMotion:
    """A track file (COLMAP, transforms.json, RealEstate10K, LLFF, MegaSaM), with its
    Pi read from its points or depth, or from the video when one is given (image
    motion, read on the target with `exact`)."""
    from ..core.formats.readers import read_track
    from ..core.reference import measure_reference

    track = read_track(path, format=format)
    measured = measure_reference(track, video=video, estimator=None if video else estimator, offset=offset)
    # A video's Pi is image motion (read by optical flow); the estimator the move carries is
    # the one the target reads it with (exact), as the imported reference camera stores it.
    used = default_estimator_for("video") if measured.source == "video" else measured.estimator
    return ReferenceMotion(track.c2w, track.times, measured.pi, used, measured.source,
                           str(path), track.K, timed=bool(track.meta.get("timed", True)),
                           video=None if video is None else str(video), video_offset=int(offset or 0),
                           counted=measured.counted())


def reference_from_object(obj, scene, *, estimator="harmonic", frame_range=None, depth="zpass",
                          depth_size=(96, 54)) -> ReferenceMotion:
    """A camera object in this file as a timed reference.

    An imported reference carries its Pi as the animated property "pi_ref", keyed once
    per track frame (possibly at sub-frames): those keys are its time base, exactly as
    the track file's own timestamps are, so both routes give the same move. Any other
    camera (keyed, parented, constrained, NLA- or driver-animated) is read from the
    evaluated depsgraph per frame and its Pi measured in its own scene's depth."""
    if obj is None or obj.type != "CAMERA":
        raise TransferError("the reference must be a camera object")
    fps = animation.scene_fps(scene)
    keyed = animation.property_keys(obj, PI_PROPERTY)
    if keyed is not None and frame_range is None:
        frames, pi_at_keys = keyed
        if len(frames) < 2:
            raise TransferError(f"reference camera {obj.name!r} has one {PI_PROPERTY} key; a move needs two")
        c2w = animation.evaluated_poses(obj, scene, frames)
        K = _intrinsics_at(obj, scene, frames)
        est = str(obj.get("parascale_estimator") or estimator)
        source = str(obj.get("parascale_pi_source", "points"))
        if source == "video":
            est = default_estimator_for(source)  # references imported before the estimator stored was 'exact'
        video = obj.get("parascale_video")
        counted = animation.property_keys(obj, COUNTED_PROPERTY)
        counted = counted[1][1:] if counted is not None and len(counted[1]) == len(frames) else None
        return ReferenceMotion(c2w, (frames - frames[0]) / fps, pi_at_keys[1:], est, source, obj.name, K,
                               video=str(video) if video else None,
                               video_offset=int(obj.get("parascale_video_offset", 0)), counted=counted)
    if obj.get("parascale_reference") and keyed is None:
        raise TransferError(
            f"reference camera {obj.name!r} was imported without a video, points or depth, so it has no "
            "Parallax Number; re-import its track with the video (or a track with points)")
    if frame_range is None:
        frame_range = animation.animated_frame_range(obj, scene)
        if frame_range is None:
            raise TransferError(f"reference camera {obj.name!r} does not move: key it, parent it to an animated "
                                "object, or drive it with a constraint or the NLA")
    frames = np.arange(frame_range[0], frame_range[1] + 1)
    c2w = animation.evaluated_poses(obj, scene, frames)
    K, W, H = animation.camera_intrinsics(obj, scene)
    if keyed is not None:  # an explicit range on an imported reference: Pi by its cumulative curve
        cumulative = np.concatenate([[0.0], np.cumsum(keyed[1][1:])])
        pi = np.diff(np.interp(frames, keyed[0], cumulative))
        return ReferenceMotion(c2w, (frames - frames[0]) / fps, np.maximum(pi, 0.0),
                               str(obj.get("parascale_estimator") or estimator),
                               str(obj.get("parascale_pi_source", "points")), obj.name)
    home = obj.users_scene[0] if obj.users_scene else scene
    pi = scene_pi(home, c2w, K, W, H, estimator, depth=depth, depth_size=depth_size,
                  clip_start=obj.data.clip_start)
    return ReferenceMotion(c2w, (frames - frames[0]) / fps, pi, estimator, "scene", obj.name)


def _intrinsics_at(obj, scene, frames) -> Optional[np.ndarray]:
    """Per-frame K when the camera's lens is animated (zoom), else None."""
    if obj.data.animation_data is None:
        return None
    return animation.camera_intrinsics_at(obj, scene, frames)[0]


def scene_pi(scene, c2w, K, W, H, estimator, *, depth="zpass", depth_size=(96, 54), clip_start=1e-3,
             progress: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """Pi of a camera move in a Blender scene, from that scene's depth (clip_start:
    the camera's near clip, below which nothing is seen)."""
    d, _ = steps(c2w)
    pi = np.zeros(len(d))
    with depth_source(depth, scene, *depth_size, clip_start=clip_start) as src:
        for t in range(len(d)):
            view = src.depth(c2w[t], K, W, H)
            pi[t] = parallax_of_depth_map(view.depth, view.K, d[t], estimator)
            if progress:
                progress(t + 1, len(d))
    return pi


def reference_from_blend(filepath, camera: str, scene_name: Optional[str] = None, *, estimator="harmonic",
                         depth="zpass", depth_size=(96, 54)) -> ReferenceMotion:
    """A camera animated in another .blend file: its scenes are linked in, the camera is
    read like any camera in this file (Pi from its own scene's depth), and everything
    linked is removed again. The open file is unchanged."""
    from pathlib import Path

    from .reference import all_ids, remove_new_ids

    path = Path(filepath)
    if not path.is_file():
        raise TransferError(f"{filepath}: no such .blend file")
    before = all_ids()
    try:
        with bpy.data.libraries.load(str(path.resolve()), link=True) as (src, dst):
            names = list(src.scenes)
            if scene_name:
                if scene_name not in names:
                    raise TransferError(f"{filepath}: no scene {scene_name!r} (scenes: {', '.join(names)})")
                names = [scene_name]
            dst.scenes = names
        hits = [sc for sc in dst.scenes if sc is not None and camera in sc.objects]
        if not hits:
            raise TransferError(f"{filepath}: no object {camera!r} in its scene(s)")
        home = hits[0]
        obj = home.objects[camera]
        with bpy.context.temp_override(scene=home, view_layer=home.view_layers[0]):
            ref = reference_from_object(obj, home, estimator=estimator, depth=depth, depth_size=depth_size)
        # Its own frame rate timed the move; the scene it lands in may run at another.
        ref.label = f"{camera} in {path.name}"
        return ref
    finally:
        remove_new_ids(before)


def reference_from_movieclip(clip, scene, *, estimator="harmonic", tracking_object=None) -> ReferenceMotion:
    """Blender's own camera solve of a movie clip: its reconstructed cameras on the
    scene frames the clip plays at, Pi from the solve's bundles (points)."""
    from ..core.reference import measure_reference
    from .reference import track_from_movieclip

    try:
        track = track_from_movieclip(clip, tracking_object)
    except ValueError as exc:
        raise TransferError(str(exc)) from None
    frames = np.asarray(track.meta["frames"], float)
    fps = animation.scene_fps(scene)
    times = (frames - frames[0]) / fps  # a clip plays one frame per scene frame
    if track.points is None:
        raise TransferError(f"movie clip {clip.name!r}: the solve has no bundles to read Pi from")
    measured = measure_reference(track, estimator=estimator)
    return ReferenceMotion(track.c2w, times, measured.pi, measured.estimator, measured.source,
                           f"solve of {clip.name}", track.K)
