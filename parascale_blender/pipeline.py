"""The whole transfer as one pipeline, shared by the operators and the command line.

reference (track file, imported reference camera, or a camera in a source scene)
  -> ReferenceMotion: poses, frame times and reference Pi per step
  -> Transfer: per-frame calibration against the target scene's depth
  -> a NEW camera "<target>.ParaScale" with one key per frame and Pi curves.
The target camera and its animation are never modified.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional

import bpy
import numpy as np

from ..core.calibrate import ESTIMATORS, METHODS, CalibrationWarning, Calibrator, DepthView
from ..core.cameras import resample_poses, steps
from ..core.metrics import pce, trajectory_errors
from ..core.parallax import default_estimator_for, estimator_mismatch, parallax_of_depth_map
from . import animation
from .depth import depth_source

RESULT_SUFFIX = ".ParaScale"
RESULT_TAG = "parascale_result"
PI_PROPERTY = "pi_ref"  # the imported reference's Pi curve (reference.PI_PROPERTY)


class TransferError(ValueError):
    """A transfer that cannot run: says which input and why. Nothing was changed."""


@dataclass
class ReferenceMotion:
    """A reference move: c2w (N, 4, 4) OpenCV axes, times (N,) seconds, and the
    reference Parallax Number of each step (N-1,) with the estimator it was read with."""

    c2w: np.ndarray
    times: np.ndarray
    pi: np.ndarray
    estimator: str
    source: str            # points | depth | video | scene
    label: str = ""
    K: Optional[np.ndarray] = None  # (N, 3, 3) for zoom following, if known
    # Untimed tracks (COLMAP, LLFF, transforms.json) have one image per scene frame.
    timed: bool = True

    def __post_init__(self):
        self.c2w = np.asarray(self.c2w, float)
        self.times = np.asarray(self.times, float)
        self.pi = np.asarray(self.pi, float)
        if len(self.c2w) < 2:
            raise TransferError(f"reference {self.label!r} has {len(self.c2w)} frame(s); a move needs at least 2")
        if len(self.pi) != len(self.c2w) - 1:
            raise TransferError(f"reference {self.label!r}: {len(self.pi)} Pi values for {len(self.c2w)} frames")
        bad = np.flatnonzero(~np.isfinite(self.pi))
        if bad.size:
            raise TransferError(f"reference {self.label!r}: Pi is not a number at step(s) "
                                f"{', '.join(map(str, bad[:10] + 1))}; the track or its measurement is broken there")
        bad = np.flatnonzero(~np.isfinite(self.c2w).all(axis=(1, 2)))
        if bad.size:
            raise TransferError(f"reference {self.label!r}: frame(s) {', '.join(map(str, bad[:10]))} have "
                                "non-finite poses")
        if not np.any(self.pi > 0):
            raise TransferError(f"reference {self.label!r}: Pi is zero at every step, so the move has no "
                                "translation to transfer (a pure pan or a still camera); copy its rotation "
                                "directly instead")

    def at_fps(self, fps: float) -> "ReferenceMotion":
        """Untimed tracks put one frame on each frame of a scene at `fps`."""
        if self.timed:
            return self
        return replace(self, times=np.arange(len(self.c2w)) / fps, timed=True)

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0])

    def on_times(self, new_times: np.ndarray) -> "ReferenceMotion":
        """The move at other frame times (seconds from its start): poses resampled
        (slerp), Pi by interpolating its cumulative sum (docs/estimators.md). Pi crosses
        time bases only this way, whatever route carried the reference, so every route agrees."""
        t = self.times - self.times[0]
        new_times = np.asarray(new_times, float)
        if len(new_times) <= len(t) and np.allclose(new_times, t[:len(new_times)], atol=1e-9):
            n = len(new_times)
            return ReferenceMotion(self.c2w[:n], new_times, self.pi[:n - 1], self.estimator, self.source,
                                   self.label, None if self.K is None else self.K[:n])
        cumulative = np.concatenate([[0.0], np.cumsum(self.pi)])
        pi = np.diff(np.interp(new_times, t, cumulative))
        c2w = resample_poses(self.c2w, t, new_times)
        K = None
        if self.K is not None:  # zoom: focal length interpolated, the rest of K kept
            zoom = np.interp(new_times, t, self.K[:, 0, 0]) / self.K[0, 0, 0]
            K = np.repeat(self.K[:1], len(new_times), axis=0)
            K[:, :2, :2] *= zoom[:, None, None]
        return ReferenceMotion(c2w, new_times, np.maximum(pi, 0.0), self.estimator, self.source, self.label, K)


# ---------------------------------------------------------------------------
# Making a reference

def reference_from_track_file(path, *, video=None, format=None, estimator="harmonic",
                              offset: Optional[int] = None) -> ReferenceMotion:
    """A track file (COLMAP, transforms.json, RealEstate10K, LLFF, MegaSaM), with its
    Pi read from its points or depth, or from the video when one is given (image
    motion, read on the target with `exact`)."""
    from ..core.readers import read_track
    from ..core.reference import measure_reference

    track = read_track(path, format=format)
    measured = measure_reference(track, video=video, estimator=None if video else estimator, offset=offset)
    return ReferenceMotion(track.c2w, track.times, measured.pi, measured.estimator, measured.source,
                           str(path), track.K, timed=bool(track.meta.get("timed", True)))


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
    fps = scene.render.fps / scene.render.fps_base
    keyed = animation.property_keys(obj, PI_PROPERTY)
    if keyed is not None and frame_range is None:
        frames, pi_at_keys = keyed
        if len(frames) < 2:
            raise TransferError(f"reference camera {obj.name!r} has one {PI_PROPERTY} key; a move needs two")
        c2w = animation.evaluated_poses(obj, scene, frames)
        K = _intrinsics_at(obj, scene, frames)
        est = str(obj.get("parascale_estimator") or estimator)
        source = str(obj.get("parascale_pi_source", "points"))
        return ReferenceMotion(c2w, (frames - frames[0]) / fps, pi_at_keys[1:], est, source, obj.name, K)
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
    current = (scene.frame_current, scene.frame_subframe)
    Ks = []
    try:
        for f in frames:
            whole = int(np.floor(f))
            scene.frame_set(whole, subframe=float(f - whole))
            Ks.append(animation.camera_intrinsics(obj, scene)[0])
    finally:
        scene.frame_set(current[0], subframe=current[1])
    return np.array(Ks)


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


# ---------------------------------------------------------------------------
# The transfer

@dataclass
class TransferOptions:
    method: Optional[str] = None      # raw | global | mean | harmonic | flow | exact; None: matches the reference
    depth: str = "zpass"              # zpass | raycast
    frame_start: Optional[int] = None  # default: scene.frame_start
    frame_end: Optional[int] = None    # default: as long as the reference lasts, within the scene range
    depth_size: tuple = (96, 54)
    follow_zoom: bool = False
    result_name: Optional[str] = None  # default "<target>.ParaScale"
    estimator: Optional[str] = None    # sets `global`'s scale; None: the one matching the reference
    stop_short: bool = False           # shorten steps that would pass through geometry
    safety: bool = True                # ray-cast checks of the result (near clip, collisions, inside)
    realised_grid: Optional[tuple] = None  # ray-cast grid for the independent realised Pi (None: skip)


@dataclass
class TransferResult:
    camera: object
    frames: list
    pi_ref: np.ndarray
    pi_target: np.ndarray
    scale: np.ndarray
    pce: dict
    errors: dict
    warnings: list = field(default_factory=list)
    method: str = ""
    estimator: str = ""
    realised: Optional[dict] = None

    def report(self) -> dict:
        out = {
            "camera": self.camera.name, "frames": [int(f) for f in self.frames],
            "pi_ref": self.pi_ref.tolist(), "pi_target": self.pi_target.tolist(), "scale": self.scale.tolist(),
            "pce": self.pce["mean"], "pce_p90": self.pce["p90"],
            "trans_err": self.errors["trans_err"], "rot_err": self.errors["rot_err"],
            "method": self.method, "estimator": self.estimator,
            "warnings": [w.as_dict() for w in self.warnings],
            # "pce" above is the calibration's residual (target Pi read on its own depth);
            # "realised" is measured independently (ray cast and reprojection of the keys).
            "calibration_residual": {"pce": self.pce["mean"], "pce_p90": self.pce["p90"]},
        }
        if self.realised is not None:
            out["realised"] = self.realised
        return out


def _check_camera(obj, role: str, scene=None):
    if obj is None:
        raise TransferError(f"no {role} camera: pick a camera object")
    if obj.type != "CAMERA":
        raise TransferError(f"{role} {obj.name!r} is a {obj.type.lower()}, not a camera")
    if scene is not None and scene.objects.get(obj.name) != obj:
        raise TransferError(f"{role} camera {obj.name!r} is not in scene {scene.name!r}; the depth it "
                            "calibrates against is this scene's: link the camera into it, or switch scenes")
    if obj.data.type != "PERSP":
        raise TransferError(f"{role} camera {obj.name!r} is {obj.data.type.lower()}; only perspective "
                            "cameras have parallax")


class Transfer:
    """Calibrate `reference` into `scene` starting from `target`'s pose, step by step.

    Nothing is written until finish(); cancel() (or an error) restores the scene
    and leaves no trace.
    """

    def __init__(self, scene, target, reference: ReferenceMotion, options: TransferOptions = TransferOptions()):
        _check_camera(target, "target", scene)
        if options.method is None:  # the estimator that reads Pi the way the reference was read
            options = replace(options, method=default_estimator_for(reference.source))
        if options.method not in METHODS:
            raise TransferError(f"unknown method {options.method!r}; expected one of {', '.join(METHODS)}")
        check_result_name(target, options.result_name)
        self.scene, self.target, self.options = scene, target, options
        self.warnings: list = []
        fps = scene.render.fps / scene.render.fps_base
        reference = reference.at_fps(fps)
        start = scene.frame_start if options.frame_start is None else int(options.frame_start)
        if options.frame_end is None:
            end = min(scene.frame_end, start + int(np.floor(reference.duration * fps + 1e-6)))
        else:
            end = int(options.frame_end)
        if end <= start:
            raise TransferError(f"frame range {start}..{end} has no step; the end must be after the start")
        needed = (end - start) / fps
        if needed > reference.duration + 1e-6:
            raise TransferError(
                f"the reference {reference.label!r} lasts {reference.duration:.3f} s ({len(reference.c2w)} frames) "
                f"but frames {start}..{end} need {needed:.3f} s at {fps:g} fps; shorten the range to "
                f"{start}..{start + int(np.floor(reference.duration * fps + 1e-6))}")
        self.frames = list(range(start, end + 1))
        self.reference = reference.on_times((np.array(self.frames) - start) / fps)

        estimator = options.method if options.method in ESTIMATORS else (
            options.estimator or default_estimator_for(reference.source))
        mismatch = estimator_mismatch(reference.estimator, reference.source, estimator)
        if options.method != "raw" and mismatch:
            self.warnings.append(CalibrationWarning("estimator_mismatch", [], mismatch))
        start_pose = animation.evaluated_poses(target, scene, [start])[0]
        self.K, self.W, self.H = animation.camera_intrinsics(target, scene)
        self.clip = (target.data.clip_start, target.data.clip_end)
        self._clip_frames: list = []
        self.lens = None
        if options.follow_zoom and self.reference.K is not None:
            zoom = self.reference.K[:, 0, 0] / self.reference.K[0, 0, 0]
            self.lens = target.data.lens * zoom
        d, dR = steps(self.reference.c2w)
        # Every method measures the Pi it realises on the target, so all need depth.
        self._depth = depth_source(options.depth, scene, *options.depth_size, clip_start=self.clip[0])
        self._depth.__enter__()
        try:
            max_step = None
            if options.stop_short:
                from .safety import collision_limit
                max_step = collision_limit(scene, self.clip[0])
            self.calibrator = Calibrator(d, dR, self.reference.pi, start_pose, self._depth_at, options.method,
                                         frames=self.frames, global_estimator=estimator, z_min=self.clip[0],
                                         max_step=max_step)
        except BaseException:
            self.cancel()
            raise

    def _depth_at(self, i: int, c2w: np.ndarray) -> DepthView:
        K = self.K
        if self.lens is not None:
            K = K.copy()
            K[:2, :2] *= self.lens[i] / self.lens[0]
        view = self._depth.depth(c2w, K, self.W, self.H)
        Z = view.depth[np.isfinite(view.depth)]
        if Z.size and (Z.max() > self.clip[1] or Z.min() < self.clip[0]):
            self._clip_frames.append(self.frames[min(i, len(self.frames) - 1)])
        return view

    @property
    def n_steps(self) -> int:
        return self.calibrator.n_steps

    @property
    def steps_done(self) -> int:
        return self.calibrator.t

    def step(self) -> bool:
        try:
            return self.calibrator.step()
        except BaseException:
            self.cancel()
            raise

    def cancel(self):
        if self._depth is not None:
            self._depth.__exit__(None, None, None)
            self._depth = None

    def run(self, progress: Optional[Callable[[int, int], None]] = None) -> TransferResult:
        while not self.step():
            if progress:
                progress(self.steps_done, self.n_steps)
        return self.finish()

    def finish(self) -> TransferResult:
        self.cancel()  # depth pass done: restore the scene before writing anything
        result = self.calibrator.result()
        warnings = self.warnings + result.warnings
        if self._clip_frames:
            f = sorted(set(self._clip_frames))
            warnings.append(CalibrationWarning(
                "clip_range", f,
                f"frames {', '.join(map(str, f[:10]))}{' ...' if len(f) > 10 else ''}: the camera's clip range "
                f"{self.clip[0]:g}..{self.clip[1]:g} cuts geometry it looks at; the depth pass saw all of it, "
                "but renders will not"))
        realised = None
        if self.options.safety or self.options.realised_grid:
            from . import safety
            if self.options.safety:
                warnings += safety.check_path(self.scene, result.c2w, self.frames, self.K, self.W, self.H,
                                              self.clip[0])
            if self.options.realised_grid:
                realised = safety.realised_summary(result.pi_ref, safety.realised_by_geometry(
                    self.scene, result.c2w, self.K, self.W, self.H, grid=tuple(self.options.realised_grid)))
        camera = write_result_camera(self.scene, self.target, result, self.frames,
                                     self.options.result_name, self.lens)
        return TransferResult(
            camera=camera, frames=self.frames, pi_ref=result.pi_ref, pi_target=result.pi_target,
            scale=result.scale, pce=pce(result.pi_target, result.pi_ref),
            errors=trajectory_errors(result.c2w, self.reference.c2w), warnings=warnings,
            method=result.method, estimator=result.estimator, realised=realised)


def result_name(target, name=None) -> str:
    return name or target.name + RESULT_SUFFIX


def check_result_name(target, name=None) -> None:
    """Refuse, before any work, a result name held by something that is not a ParaScale result."""
    name = result_name(target, name)
    old = bpy.data.objects.get(name)
    if old is not None and not (old.get(RESULT_TAG) and old.type == "CAMERA"):
        raise TransferError(f"an object named {name!r} exists and is not a ParaScale result; rename it "
                            "or choose another result name")


def _own_camera_data(target, name, lens):
    """A copy of the target's camera data that shares nothing with it: its lens
    animation, if any, is copied into an action of its own (or replaced by follow-zoom)."""
    data = target.data.copy()
    data.name = name
    ad = data.animation_data
    if ad is not None:
        if lens is not None or ad.action is None:
            data.animation_data_clear()
        else:
            identifier = ad.action_slot.identifier if ad.action_slot else None
            ad.action = ad.action.copy()
            slots = [s for s in ad.action.slots if s.identifier == identifier]
            if slots and ad.action_slot != slots[0]:
                ad.action_slot = slots[0]
    return data


def write_result_camera(scene, target, result, frames, name=None, lens=None):
    """The result camera "<target>.ParaScale", keyed with the result.

    A previous result of that name is updated in place: the same object keeps its
    identity, so scene.camera, markers bound to it and links from other objects stay;
    its animation and camera data are replaced. A new result goes in the target's
    collection. The result never shares data or actions with the target. If keying
    fails, nothing is left behind and a previous result is as it was."""
    from .reference import all_ids, remove_new_ids

    name = result_name(target, name)
    check_result_name(target, name)
    before = all_ids()
    obj = bpy.data.objects.get(name)
    previous = None
    if obj is not None:
        ad = obj.animation_data
        previous = (obj.data, ad.action if ad else None, ad.action_slot if ad else None)
    try:
        data = _own_camera_data(target, name, lens)
        if obj is None:
            obj = bpy.data.objects.new(name, data)
            collection = target.users_collection[0] if target.users_collection else scene.collection
            if collection.library is not None or collection.override_library is not None:
                collection = scene.collection
            collection.objects.link(obj)
        else:
            obj.data = data
        obj.parent = None
        obj.constraints.clear()
        step_curve = lambda v: np.concatenate([[0.0], np.asarray(v, float)])  # noqa: E731
        animation.write_camera_animation(
            obj, result.c2w, frames, name + ".action",
            curves={"pi_ref": step_curve(result.pi_ref), "pi_target": step_curve(result.pi_target),
                    "scale": step_curve(result.scale)},
            lens=lens)
    except BaseException:
        if previous is not None:
            obj.data = previous[0]
            if previous[1] is not None:
                obj.animation_data.action, obj.animation_data.action_slot = previous[1], previous[2]
        remove_new_ids(before)
        raise
    if previous is not None:  # the old data and action, unless someone else uses them
        old_data, old_action = previous[0], previous[1]
        if old_data.users == 0:
            old_action_lens = old_data.animation_data.action if old_data.animation_data else None
            bpy.data.cameras.remove(old_data)
            if old_action_lens is not None and old_action_lens.users == 0:
                bpy.data.actions.remove(old_action_lens)
        if old_action is not None and old_action.users == 0:
            bpy.data.actions.remove(old_action)
    obj[RESULT_TAG] = 1
    obj["parascale_method"] = result.method
    obj["parascale_estimator"] = result.estimator
    obj["parascale_target"] = target.name
    return obj


def transfer(scene, target, reference: ReferenceMotion, options: TransferOptions = TransferOptions(),
             progress=None) -> TransferResult:
    """Run a whole transfer (see Transfer)."""
    return Transfer(scene, target, reference, options).run(progress)


# ---------------------------------------------------------------------------
# From the panel's settings (scene.parascale)

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
    fps = scene.render.fps / scene.render.fps_base
    times = (frames - frames[0]) / fps  # a clip plays one frame per scene frame
    if track.points is None:
        raise TransferError(f"movie clip {clip.name!r}: the solve has no bundles to read Pi from")
    measured = measure_reference(track, estimator=estimator)
    return ReferenceMotion(track.c2w, times, measured.pi, measured.estimator, measured.source,
                           f"solve of {clip.name}", track.K)


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


def reference_summary(obj, scene) -> Optional[str]:
    """One line about an imported or keyed reference camera: frames, duration, median Pi, source."""
    if obj is None:
        return None
    keyed = animation.property_keys(obj, PI_PROPERTY)
    fps = scene.render.fps / scene.render.fps_base
    if keyed is None:
        span = animation.animated_frame_range(obj, scene)
        if span is None:
            return "does not move"
        n = span[1] - span[0] + 1
        return f"{n} frames, {(n - 1) / fps:.2f} s, Pi from the scene's depth"
    frames, pi = keyed
    return (f"{len(frames)} frames, {(frames[-1] - frames[0]) / fps:.2f} s, median Pi "
            f"{np.median(pi[1:]):.3g}, from {obj.get('parascale_pi_source', '?')}")


def options_from_settings(scene) -> TransferOptions:
    settings = scene.parascale
    return TransferOptions(
        method=settings.estimator, depth=settings.depth_source,
        frame_start=None if settings.use_scene_range else settings.frame_start,
        frame_end=None if settings.use_scene_range else settings.frame_end,
        depth_size=(settings.depth_width, settings.depth_height), follow_zoom=settings.follow_zoom)


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
    """Show an evaluation in the panel, and key the realised Pi per step on the result
    as the curve `pi_realised` beside `pi_ref` (Graph Editor)."""
    settings = scene.parascale
    settings.has_evaluation = True
    settings.eval_measured_by = out["measured_by"]
    settings.eval_pce = out["pce"]
    settings.eval_pce_p90 = out["pce_p90"]
    settings.eval_trans_err = out.get("trans_err", float("nan"))
    settings.eval_rot_err = out.get("rot_err", float("nan"))
    obj = settings.result_camera
    keyed = animation.property_keys(obj, "pi_ref") if obj is not None and obj.get(RESULT_TAG) else None
    # Only a per-frame measurement is comparable to the result's per-frame pi_ref curve.
    if keyed is not None and np.array_equal(np.asarray(out["frames"], float), keyed[0]):
        realised = np.nan_to_num(np.asarray(out["pi_realised"], float), nan=0.0)
        animation.write_property_curve(obj, "pi_realised", out["frames"], np.concatenate([[0.0], realised]))


def store_export(scene, result) -> None:
    """Where the exported move sits in its generator's training range, for the panel."""
    settings = getattr(scene, "parascale", None)
    if settings is None:
        return
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
    if settings.eval_measured_by.startswith("optical"):
        return ["Residual is on the calibration's own depth;",
                "rendered flow adds flow error (sky, low texture,",
                "occlusions) and the estimator's own bias"]
    return ["Independent depth disagrees with the calibration:",
            "different depth source, size or clip range?"]


# ---------------------------------------------------------------------------
# Evaluation of a result camera

def result_curves(obj, frames) -> dict:
    """The per-step curves a ParaScale result carries (value at frame t = step t-1 -> t)."""
    out = {}
    for name in ("pi_ref", "pi_target", "scale"):
        values = animation.property_curve(obj, name, frames)
        if values is not None:
            out[name] = values[1:]
    return out


class DepthEvaluation:
    """Re-measure the Pi a result camera realises, independently of the calibration: its
    keyed poses are read back, the scene is ray cast on a grid of its own (not the Z pass
    that drove the calibration), and each step's Pi is the reprojection of those points
    into the next keyed pose (`exact`, over the pixels that see geometry) or, for the
    depth-only estimators, their own formula on the ray-cast depth. One step per step();
    PCE against the result's reference Pi curve; TransErr / RotErr against the reference move."""

    GRID = (64, 36)

    def __init__(self, scene, result_obj, reference: Optional[ReferenceMotion] = None, *, depth_size=GRID):
        from .safety import RayCaster

        frame_range = animation.animated_frame_range(result_obj, scene)
        if frame_range is None:
            raise TransferError(f"camera {result_obj.name!r} has no animation to evaluate")
        self.frames = np.arange(frame_range[0], frame_range[1] + 1)
        curves = result_curves(result_obj, self.frames)
        if "pi_ref" not in curves:
            raise TransferError(f"camera {result_obj.name!r} has no pi_ref curve; is it a ParaScale result?")
        self.scene, self.obj, self.reference = scene, result_obj, reference
        self.grid = tuple(int(v) for v in depth_size)
        self.pi_ref = curves["pi_ref"]
        self.estimator = str(result_obj.get("parascale_estimator", "harmonic"))
        self.c2w = animation.evaluated_poses(result_obj, scene, self.frames)
        self.K, self.W, self.H = animation.camera_intrinsics(result_obj, scene)
        self.d, _ = steps(self.c2w)
        self.realised = np.zeros(len(self.d))
        self.steps_done = 0
        self._caster = RayCaster(scene)

    @property
    def n_steps(self) -> int:
        return len(self.d)

    def step(self) -> bool:
        from ..core.parallax import realised_parallax

        t = self.steps_done
        Z, Kg, _ = self._caster.depth(self.c2w[t], self.K, self.W, self.H, self.grid)
        Z = np.where(Z < self.obj.data.clip_start, np.inf, Z)
        if self.estimator == "exact":
            self.realised[t] = realised_parallax(Z, Kg, self.c2w[t], self.c2w[t + 1], "covered")
        else:
            self.realised[t] = parallax_of_depth_map(Z, Kg, self.d[t], self.estimator)
        self.steps_done += 1
        return self.steps_done == self.n_steps

    def cancel(self):
        self._caster = None

    def finish(self) -> dict:
        while self.steps_done < self.n_steps:
            self.step()
        self.cancel()
        how = "reprojection of" if self.estimator == "exact" else f"{self.estimator} on"
        out = {"camera": self.obj.name, "frames": self.frames.tolist(), "estimator": self.estimator,
               "measured_by": f"depth: {how} ray cast {self.grid[0]}x{self.grid[1]}",
               "pi_ref": self.pi_ref.tolist(), "pi_realised": self.realised.tolist()}
        score = pce(self.realised, self.pi_ref)
        out.update(pce=score["mean"], pce_p90=score["p90"])
        if self.reference is not None:
            fps = self.scene.render.fps / self.scene.render.fps_base
            ref = self.reference.at_fps(fps).on_times((self.frames - self.frames[0]) / fps)
            out.update(trajectory_errors(self.c2w, ref.c2w))
        return out


def evaluate_depth(scene, result_obj, reference: Optional[ReferenceMotion] = None, *,
                   depth_size=DepthEvaluation.GRID) -> dict:
    """DepthEvaluation run to the end."""
    return DepthEvaluation(scene, result_obj, reference, depth_size=depth_size).finish()
