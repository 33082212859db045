"""Reference tracks in Blender (needs bpy): read camera moves out of Blender, and import
recovered tracks as a new reference camera with its Parallax Number as a curve.

- ``track_from_camera(obj, scene, frames=None)``: a camera animation in the open file,
  evaluated with parents, constraints and drivers, scene fps -> times.
- ``read_blend_camera(filepath, camera, frames=None, scene=None)``: the same for a camera
  in another .blend; its scene is linked in, evaluated, and removed again.
- ``track_from_movieclip(clip, tracking_object=None)``: Blender's own motion-tracking solve
  (reconstructed cameras, Blender camera axes) with the track bundles as points.
- ``import_reference(context, path, ...)``: the whole import. Creates a NEW camera object
  keyed in bulk, intrinsics applied, Pi per frame as the animated custom property
  ``pi_ref``; a failure leaves bpy.data as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import bpy
import numpy as np

from ..core.cameras import Track, blender_to_cv
from ..core.clock import SNAP, blender_rate, frames_of_times, track_rate
from ..core.formats.readers import list_images, read_track
from ..core.reference import ReferencePi, measure_reference, pi_from_video, video_size
from ..core.parallax import default_estimator_for
from .animation import (apply_intrinsics, camera_intrinsics, matrix_to_numpy, scene_fps,
                        write_camera_animation, write_stepped_curve)

PI_PROPERTY = "pi_ref"
COUNTED_PROPERTY = "pi_counted"  # motion.COUNTED_PROPERTY


# ---------------------------------------------------------------------------
# ID bookkeeping: whatever an operation created can be removed again

def all_ids() -> set:
    return set(bpy.data.user_map().keys())


def remove_new_ids(before: set) -> None:
    """Remove every ID that did not exist in `before` (a snapshot from all_ids)."""
    new = [i for i in all_ids() - before]
    if new:
        bpy.data.batch_remove(new)
    libs = [lib for lib in bpy.data.libraries if lib not in before]
    for lib in libs:
        bpy.data.libraries.remove(lib)


# ---------------------------------------------------------------------------
# camera animation -> Track

def _evaluated_c2w(obj, scene, frames, depsgraph_fn) -> np.ndarray:
    from .animation import keyed_poses

    fast = keyed_poses(obj, frames, scene)  # its own action alone: one pass over its F-curves
    if fast is not None:
        return fast
    out = np.empty((len(frames), 4, 4))
    current = (scene.frame_current, scene.frame_subframe)
    try:
        for i, f in enumerate(frames):
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            dg = depsgraph_fn()
            m = matrix_to_numpy(obj.evaluated_get(dg).matrix_world)
            scale = np.linalg.norm(m[:3, :3], axis=0)
            if np.abs(scale - 1).max() > 1e-4:
                raise ValueError(f"camera {obj.name!r} has world scale {np.round(scale, 4).tolist()} at frame "
                                 f"{f}; expected 1 (apply the scale, or scale its parent back to 1)")
            out[i] = m
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return blender_to_cv(out)


def track_from_camera(obj, scene, frames: Optional[Sequence[float]] = None, depsgraph_fn=None) -> Track:
    """The camera's evaluated move over `frames` (default: the scene's frame range)."""
    if obj.type != "CAMERA":
        raise ValueError(f"{obj.name!r} is a {obj.type.lower()}, not a camera")
    if frames is None:
        frames = range(scene.frame_start, scene.frame_end + 1)
    frames = np.asarray(list(frames), float)
    if len(frames) == 0:
        raise ValueError(f"no frames to read from camera {obj.name!r}")
    if depsgraph_fn is None:
        depsgraph_fn = bpy.context.evaluated_depsgraph_get
    c2w = _evaluated_c2w(obj, scene, frames, depsgraph_fn)
    K, W, H = camera_intrinsics(obj, scene)
    fps = scene_fps(scene)
    return Track(c2w=c2w, K=K, width=W, height=H, times=(frames - frames[0]) / fps,
                 names=[f"{obj.name}@{f:g}" for f in frames], source=f"blender camera {obj.name!r}",
                 meta={"timed": True, "fps": fps, "frames": frames.tolist(), "scene": scene.name})


def read_blend_camera(filepath, camera: str, frames: Optional[Sequence[float]] = None,
                      scene: Optional[str] = None) -> Track:
    """A camera animation in another .blend file as a Track. The file's scenes are linked
    in for the evaluation and removed afterwards; the open file is not changed."""
    filepath = str(Path(filepath).resolve())
    if not Path(filepath).is_file():
        raise FileNotFoundError(f"{filepath}: no such .blend file")
    before = all_ids()
    try:
        with bpy.data.libraries.load(filepath, link=True) as (src, dst):
            names = list(src.scenes)
            if scene is not None:
                if scene not in names:
                    raise ValueError(f"{filepath}: no scene {scene!r} (scenes: {', '.join(names)})")
                names = [scene]
            dst.scenes = names
        lib_scenes = [s for s in dst.scenes if s is not None]
        hit = [s for s in lib_scenes if camera in s.objects]
        if not hit:
            raise ValueError(f"{filepath}: no object {camera!r} in scene(s) {', '.join(s.name for s in lib_scenes)}")
        sc = hit[0]
        obj = sc.objects[camera]
        with bpy.context.temp_override(scene=sc, view_layer=sc.view_layers[0]):
            track = track_from_camera(obj, sc, frames, depsgraph_fn=bpy.context.evaluated_depsgraph_get)
        track.source = f"blender camera {camera!r} in {filepath}"
        track.meta["blend"] = filepath
        return track
    finally:
        remove_new_ids(before)


def track_from_movieclip(clip, tracking_object: Optional[str] = None) -> Track:
    """Blender's camera solve of a movie clip: reconstructed cameras (one per solved
    frame) and the bundles of its tracks as points, visibility from unmuted markers."""
    tracking = clip.tracking
    if tracking_object is None:
        objs = [o for o in tracking.objects if o.is_camera]
        if not objs:
            raise ValueError(f"movie clip {clip.name!r} has no camera tracking object")
        tobj = objs[0]
    else:
        if tracking_object not in tracking.objects:
            raise ValueError(f"movie clip {clip.name!r} has no tracking object {tracking_object!r}")
        tobj = tracking.objects[tracking_object]
    rec = tobj.reconstruction
    cams = sorted(rec.cameras, key=lambda c: c.frame)
    if not rec.is_valid or len(cams) < 1:
        raise ValueError(f"movie clip {clip.name!r} has no camera solve: track it and press Solve Camera "
                         "in the Movie Clip editor first")
    frames = np.array([c.frame for c in cams], float)
    mats = np.stack([matrix_to_numpy(c.matrix) for c in cams])
    mats[:, :3, :3] /= np.linalg.norm(mats[:, :3, :3], axis=1, keepdims=True)
    c2w = blender_to_cv(mats)
    W, H = int(clip.size[0]), int(clip.size[1])
    cam = tracking.camera
    fx = float(cam.focal_length_pixels)
    cx, cy = (float(v) for v in cam.principal_point_pixels)
    # Blender's principal point is measured from the bottom-left corner; ours from the top-left.
    K = np.array([[fx, 0, cx], [0, fx * float(cam.pixel_aspect), H - cy], [0, 0, 1.0]])
    points = visibility = None
    tracks = [t for t in tobj.tracks if t.has_bundle]
    if tracks:
        points = np.array([tuple(t.bundle) for t in tracks], float)
        frame_index = {int(f): i for i, f in enumerate(frames)}
        vis = [[] for _ in frames]
        for pi, t in enumerate(tracks):
            for m in t.markers:
                i = frame_index.get(int(m.frame))
                if i is not None and not m.mute:
                    vis[i].append(pi)
        visibility = [np.array(v, int) for v in vis]
    fps = float(clip.fps) if clip.fps else 24.0
    return Track(c2w=c2w, K=K, width=W, height=H, times=(frames - frames[0]) / fps,
                 names=[f"{clip.name}@{int(f)}" for f in frames], points=points, visibility=visibility,
                 distortion={"model": cam.distortion_model, "k1": float(cam.k1), "k2": float(cam.k2),
                             "k3": float(cam.k3)},
                 source=f"movie clip solve {clip.name!r}",
                 meta={"timed": True, "fps": fps, "frames": frames.tolist()})


def clip_rate(clip, scene) -> float:
    """The frame rate of a Movie Clip: a movie's own (its file's), an image sequence's the
    scene's (Blender plays one image per scene frame)."""
    fps = float(getattr(clip, "fps", 0.0) or 0.0)
    return fps if clip.source == "MOVIE" and fps > 0 else scene_fps(scene)


# ---------------------------------------------------------------------------
# import

@dataclass
class ImportResult:
    obj: object
    track: Track
    reference: Optional[ReferencePi]
    frames: np.ndarray
    warnings: list = field(default_factory=list)

    @property
    def clock(self) -> str:
        """How the keys are timed, in words (for the operators' reports)."""
        meta = self.track.meta
        if not meta.get("timed", False):
            return "untimed: one frame per scene frame"
        rate = track_fps(self.track)
        span = f"{self.frames[-1] - self.frames[0]:g} scene frames"
        return f"keyed on the track's clock, {float(rate):.6g} fps over {span}" if rate else f"keyed over {span}"


def track_fps(track: Track) -> Optional[Fraction]:
    """The frame rate of a timed track, exact, or None when untimed (core.clock.track_rate)."""
    return track_rate(track)


def scene_frames(track: Track, scene, fps=None) -> np.ndarray:
    """Scene frames of the track's frames: untimed tracks one frame per image from
    scene.frame_start; timed ones at their times on the scene's frame rate (`fps`, default
    the scene's), so keys may fall on sub-frames. Frames within 1e-3 of a whole frame are
    on it (core.clock.frames_of_times: no frame is lost to rounded timestamps)."""
    if not track.meta.get("timed", False):
        return scene.frame_start + np.arange(len(track), dtype=float)
    return frames_of_times(track.times, float(fps or scene_fps(scene)), start=scene.frame_start)


def set_scene_to_track(scene, track: Track, frames: np.ndarray, fps) -> None:
    """Like Blender's Setup Tracking Scene: the scene's frame rate to the track's rate
    exactly (29.97 as 30 / 1.001, Blender's own preset; core.clock.blender_rate), one
    scene frame per track frame, and its frame range to the keys (the resolution follows
    with apply_intrinsics)."""
    if fps is not None:
        scene.render.fps, scene.render.fps_base = blender_rate(fps)
    scene.frame_end = int(np.ceil(frames[-1] - SNAP))


def import_reference(context, path, format: Optional[str] = None, video=None, estimator: Optional[str] = None,
                     apply_render_size: bool = False, size=None, name: Optional[str] = None,
                     offset: Optional[int] = None, background: bool = True, preset: str = "medium",
                     images=None, set_scene: bool = False, progress=None) -> ImportResult:
    """Import a recovered track as a NEW reference camera in context.scene.

    Reads the track (read_track; `size` for normalised intrinsics, default the video's
    frame size), measures Pi (video -> flow; else points or depth with `estimator`),
    creates the camera keyed in bulk at scene frames (scene_frames), applies the
    intrinsics (and the render size when apply_render_size), keys Pi as the custom
    property "pi_ref" (frame of step t = Pi of step t, first frame 0), records the
    source in custom properties, and optionally shows the video as background, in step
    with the keys. set_scene: set the scene to the track first (set_scene_to_track).
    progress(done, total): per step of the Pi measurement from the video.
    On any error nothing it created remains and the scene is unchanged."""
    scene = context.scene
    path = Path(path)
    warnings = []
    if video is not None and not Path(video).exists():
        raise FileNotFoundError(f"{video}: no such video file or image folder")
    if video is not None and size is None:
        size = video_size(video)  # the video itself is streamed by pi_from_video
    track = read_track(path, None if format in (None, "auto") else format, size=size, images=images)
    fmt = track.meta.get("format", format or "")
    ref = None
    if video is not None:
        if estimator not in (None, "flow"):
            raise ValueError(f"Pi from a video is measured as image motion (estimator flow), not {estimator!r}")
        ref = pi_from_video(track, video, offset=offset, preset=preset, progress=progress)
    elif track.points is not None or track.depths is not None:
        ref = measure_reference(track, estimator=estimator)
    else:
        warnings.append(f"{path.name}: no points, depth or video, so no Pi was measured; "
                        "give the video to read Pi from its optical flow")
    fps = track_fps(track) if set_scene else None
    frames = scene_frames(track, scene, fps)

    before = all_ids()
    try:
        label = name or f"Reference {path.stem}"
        cam_data = bpy.data.cameras.new(label)
        obj = bpy.data.objects.new(label, cam_data)
        (context.collection or scene.collection).objects.link(obj)
        curves = {PI_PROPERTY: ref.per_frame()} if ref is not None else None
        counted = ref.counted() if ref is not None else None
        if counted is not None:  # a video reading: the share of its pixels that counted, per step
            curves[COUNTED_PROPERTY] = np.concatenate([counted[:1], counted])
        K0 = track.K[0]
        fx = track.K[:, 0, 0]
        lens = None
        apply_intrinsics(cam_data, K0, track.width, track.height)
        if np.ptp(fx) > 1e-6 * fx.mean():
            lens = fx * cam_data.sensor_width / track.width  # HORIZONTAL fit, set by apply_intrinsics
        write_camera_animation(obj, track.c2w, frames, action_name=f"{label} track", curves=curves, lens=lens)
        # The estimator stored is the one the target uses with this reference (exact for a
        # video, whose Pi is image motion read by optical flow), the same the panel shows.
        used = default_estimator_for(ref.source) if ref is not None and ref.source == "video" else (
            ref.estimator if ref is not None else "")
        if counted is not None:
            obj.id_properties_ui(COUNTED_PROPERTY).update(
                min=0.0, max=1.0, description="share of the video's pixels whose motion counted in pi_ref "
                                              "(static geometry; movers filled from around them, sky left out)")
        if ref is not None:
            read = "image motion by optical flow" if ref.source == "video" else ref.estimator
            obj.id_properties_ui(PI_PROPERTY).update(
                min=0.0, soft_min=0.0, description=f"reference Parallax Number per step ({ref.source}, {read}; "
                                                   f"the target reads it with {used}); frame of step t holds "
                                                   "Pi of t-1 -> t")
        obj["parascale_reference"] = True
        obj["parascale_source_path"] = str(path)
        obj["parascale_format"] = str(fmt)
        obj["parascale_pi_source"] = ref.source if ref is not None else "none"
        obj["parascale_estimator"] = used
        obj["parascale_width"], obj["parascale_height"] = int(track.width), int(track.height)
        if video is not None:
            obj["parascale_video"] = str(video)
            obj["parascale_video_offset"] = int(offset or 0)
            if background:
                _add_background(cam_data, video, frames, int(offset or 0))
        # The scene last: nothing can fail after it is changed.
        if set_scene:
            set_scene_to_track(scene, track, frames, fps)
        if set_scene or apply_render_size:
            apply_intrinsics(cam_data, K0, track.width, track.height, scene)
        else:
            r = scene.render
            if (r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100) \
                    != (track.width, track.height):
                warnings.append(f"render size is not the track's {track.width}x{track.height}; "
                                "the framing is right only at that aspect ratio")
        return ImportResult(obj, track, ref, frames, warnings)
    except BaseException:
        remove_new_ids(before)
        raise


def background_sync(frames: np.ndarray, video_offset: int = 0) -> tuple[int, np.ndarray, np.ndarray]:
    """Which video frame to show at each integer scene frame so the background stays on
    the keys: at scene frame f, the frame of the last track key at or before f.
    Returns (first scene frame F0, scene frames, 0-based video frame per scene frame)."""
    frames = np.asarray(frames, float)
    first = int(np.floor(frames[0] + 1e-6))
    scene_f = np.arange(first, int(np.ceil(frames[-1] - 1e-6)) + 1)
    index = np.clip(np.searchsorted(frames - 1e-6, scene_f, side="right") - 1, 0, len(frames) - 1)
    return first, scene_f, index + int(video_offset)


def _add_background(cam_data, video, frames: np.ndarray, video_offset: int = 0) -> None:
    """The video as the camera's background, in step with the keys: one video frame per
    track frame, held until the next one (keys at sub-frames or a scene fps other than
    the video's would otherwise let the clip run ahead of the camera)."""
    video = Path(video)
    first, scene_f, shown = background_sync(frames, video_offset)
    # A clip plays frame (f - start) at scene frame f; a start keyed per frame remaps time.
    start = scene_f - shown
    bg = cam_data.background_images.new()
    if video.is_dir():
        files = list_images(video)
        img = bpy.data.images.load(str(files[0]), check_existing=False)
        img.source = "SEQUENCE"
        bg.source = "IMAGE"
        bg.image = img
        bg.image_user.frame_start = first
        bg.image_user.frame_duration = len(files)
        offsets = shown - (scene_f - first)
        bg.image_user.frame_offset = int(offsets[0])
        if np.ptp(offsets):
            write_stepped_curve(cam_data, "CAMERA", "background_images[0].image_user.frame_offset",
                                scene_f, offsets, f"{cam_data.name} background sync")
    else:
        clip = bpy.data.movieclips.load(str(video))
        clip.frame_start = int(start[0])
        if np.ptp(start):
            write_stepped_curve(clip, "MOVIECLIP", "frame_start", scene_f, start, f"{clip.name} sync")
        bg.source = "MOVIE_CLIP"
        bg.clip = clip
    cam_data.show_background_images = True
