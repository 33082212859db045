"""Export an animated camera to the pose files of video generators (core.formats.writers),
with the standalone bridge script copied next to what was written. One function,
used by the File > Export operator and by `parascale export`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..core import gauge
from ..core.gauge import GAUGES  # noqa: F401  (the Export dialog lists them through the adapter)
from ..core.formats import manifest as manifest_lib
from ..core.formats import writers
from ..core.cameras import Track, fit_to_size
from . import animation
from .outputs import BRIDGE_NAME, BRIDGE_SOURCE, EXTENSIONS, check_replaceable, output_path  # noqa: F401

CURVES = ("pi_ref", "pi_target", "scale")
# How a message names an option where the user sets it: the command line's flags, or the
# fields of Blender's Export dialog and panel.
OPTION_NAMES = {
    "cli": {"frames": "--frames", "generator": "--generator", "speed": "--speed", "size": "--size",
            "force": "--force"},
    "blender": {"frames": "Frames", "generator": "Gauge", "speed": "Speed", "size": "Width and Height",
                "force": "'Replace Anyway'"},
}
# RealEstate10K readers that correct the focal length for a 1280x720 pose file (CameraCtrl's
# inference and VideoX-Fun's process_pose_file): their files are written pre-corrected.
PRECORRECTED_RE10K = ("cameractrl", "wan-fun-camera")
def camera_problem(obj, scene) -> Optional[str]:
    """Why obj cannot be exported (None: it can)."""
    if obj is None:
        return "no animated camera in this scene: calibrate, or key a camera's motion"
    if obj.type != "CAMERA":
        return f"{obj.name!r} is not a camera"
    if animation.animated_frame_range(obj, scene) is None:
        return f"camera {obj.name!r} has no animation to export"
    return None


def default_camera(scene, active_object=None):
    """The camera an export writes unless told otherwise: the ParaScale result, else the
    active object if it is an animated camera, else the scene camera, else any animated camera."""
    settings = getattr(scene, "parascale", None)
    candidates = [settings.result_camera if settings else None, active_object, scene.camera]
    for obj in candidates:
        if obj is not None and camera_problem(obj, scene) is None:
            return obj
    return next((o for o in scene.objects if camera_problem(o, scene) is None), None)


def camera_track(scene, camera_obj, frame_range: Optional[Sequence[int]] = None) -> Track:
    """The camera's evaluated poses (OpenCV c2w), per-frame intrinsics, frame times
    (frame / fps), ParaScale curves and provenance as a Track."""
    if camera_obj is None or camera_obj.type != "CAMERA":
        raise ValueError(f"{getattr(camera_obj, 'name', camera_obj)!r} is not a camera object")
    animated = animation.animated_frame_range(camera_obj, scene)
    if animated is None:
        raise ValueError(f"camera {camera_obj.name!r} has no animation: key its motion (or run a "
                         "ParaScale transfer) before exporting")
    a, b = (int(frame_range[0]), int(frame_range[1])) if frame_range else animated
    if b <= a:
        raise ValueError(f"frame range {a}..{b} of camera {camera_obj.name!r} needs at least 2 frames")
    frames = list(range(a, b + 1))
    c2w = animation.evaluated_poses(camera_obj, scene, frames)
    Ks, W, H = animation.camera_intrinsics_at(camera_obj, scene, frames)
    fps = animation.scene_fps(scene)
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
    return Track(c2w=c2w, K=Ks, width=W, height=H, times=np.array(frames, float) / fps,
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


@dataclass
class ExportResult:
    """What export_with_gauge wrote: paths (output first, then the bridge, then the
    manifest), the gauge record (also in the manifest and the ParaScale json) and the
    range warnings (each names the frames)."""

    paths: list
    gauge: dict
    warnings: list = field(default_factory=list)
    range: Optional[dict] = None
    image_size: Optional[tuple] = None
    steps: Optional[list] = None   # |step| of the exported move in scene units, before the gauge
    frame_labels: Optional[list] = None


def scene_depth_scale(scene, camera_obj, track: Track, *, depth: str = "zpass",
                      depth_size=(96, 54)) -> float:
    """The scene's depth scale at the track's first frame, in scene units: 1 / (Pi per
    unit translation) of the Z pass at that pose along the move's first direction
    (core.gauge.depth_scale), clipped at the camera's clip_start like the calibration."""
    from .depth import depth_source

    clip = float(camera_obj.data.clip_start) if camera_obj is not None else 1e-3
    with depth_source(depth, scene, int(depth_size[0]), int(depth_size[1]), clip_start=clip) as src:
        view = src.depth(track.c2w[0], track.K[0], track.width, track.height)
    try:
        return gauge.depth_scale(view.depth, view.K, gauge.move_direction(track.c2w))
    except gauge.GaugeError as exc:
        raise ValueError(f"camera {track.source}, frame {track.meta.get('source_frames', [0])[0]}: {exc}") from None


def default_generator(fmt: str) -> Optional[str]:
    """The generator whose gauge a format is written in (None: scene units)."""
    return gauge.FORMAT_GENERATOR.get(fmt)


def check_depth_memory(frames: int, depth_size, what: str = "GEN3C depth") -> None:
    """The depth maps a GEN3C export holds (float32, twice while they are stacked) fit in
    the memory available. Raises ValueError naming the need."""
    need = 2 * 4 * int(frames) * int(depth_size[0]) * int(depth_size[1])
    avail = writers.available_memory()
    if avail is not None and need > avail:
        raise ValueError(f"{what}: {frames} frames of {depth_size[0]}x{depth_size[1]} float32 need "
                         f"{need / 2 ** 30:.3g} GiB of memory; {avail / 2 ** 30:.3g} GiB is available (fewer "
                         "--frames or a smaller --depth-size)")


def export_with_gauge(scene, camera_obj, fmt: str, output, frames: Optional[int] = None,
                      frame_range: Optional[Sequence[int]] = None, depth_size=None, *,
                      generator: Optional[str] = "auto", speed: float = 1.0,
                      gauge_depth_size=(96, 54), size: Optional[Sequence[int]] = None,
                      ui: str = "cli", force: bool = False) -> ExportResult:
    """Write camera_obj's animation over frame_range (default: its keyed range) in
    format fmt (core.formats.writers.FORMATS) to output, resampled to `frames` evenly spaced
    frames when given (None: every frame; recammaster: 81), with the translation in
    `generator`'s gauge ("auto": the format's generator, core.gauge.FORMAT_GENERATOR;
    None or "scene": scene units): scene translation / the scene's depth scale at the
    start frame x the generator's depth scale x speed. size (W, H): the image the
    generator makes (None: the scene's render size); the camera's view is scaled to
    cover it and cropped at the centre (core.cameras.fit_to_size), as the generators
    treat an aspect mismatch. GEN3C also renders the Z-pass depth at every exported
    frame, at that size (depth_size W x H overrides it), in the same units as the
    translation. RealEstate10K files for CameraCtrl and VideoX-Fun's Wan are written
    pre-corrected for the 1280x720 pose size their readers assume. The ParaScale json
    keeps scene units and records the depth scale (the bridge converts). Copies
    parascale_bridge.py next to the output and writes a manifest
    (<output>.manifest.json; manifest.json inside folder formats). ui ("cli" or
    "blender") names options in messages as the user sets them (OPTION_NAMES).
    The output gets the format's extension (output_path) and missing folders are
    created.

    Ownership (core.formats.manifest): what is at the output is replaced only as far as
    ParaScale's manifest says it wrote it; the user's files stay (and the warnings say
    so); anything else is refused before any work unless force (named as the user sets
    it: OPTION_NAMES). Raises ValueError."""
    if fmt not in writers.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(writers.FORMATS)}")
    names = OPTION_NAMES[ui]
    if size is not None:
        size = tuple(int(v) for v in size)
        if len(size) != 2 or min(size) < 1 or max(size) > 65536:
            raise ValueError(f"{names['size']} {size}: the image size in pixels, 1 to 65536 per side")
    if not BRIDGE_SOURCE.is_file():
        raise ValueError(f"the bridge script is missing from the extension ({BRIDGE_SOURCE})")
    problem = gauge.speed_problem(speed)
    if problem:
        raise ValueError(f"{names['speed']} {problem}")
    try:
        generator = gauge.export_generator(fmt, generator, speed)
    except gauge.GaugeError as exc:
        if "scene units" in str(exc):
            raise ValueError(f"{names['speed']} multiplies the translation in a generator's gauge; this export "
                             f"writes scene units (pick a generator in {names['generator']}, or use the bridge's "
                             "--speed)") from None
        raise ValueError(str(exc)) from None
    output = output_path(fmt, output)
    plan = check_replaceable(fmt, output, force, names["force"])
    if fmt == "gen3c" and frames is not None and (depth_size or size):
        check_depth_memory(frames, depth_size or size)
    track = camera_track(scene, camera_obj, frame_range)
    if size is not None:
        track = fit_to_size(track, *size)
    if frames is None:
        frames = writers.DEFAULT_FRAMES.get(fmt)
    track = writers.prepare(track, frames)
    if fmt == "gen3c":
        check_depth_memory(len(track), depth_size or (track.width, track.height))
    start_frame = int(track.meta["source_frames"][0])
    scene_depth = None
    early = []
    if generator is not None:
        scene_depth = scene_depth_scale(scene, camera_obj, track, depth_size=gauge_depth_size)
    elif fmt == "parascale":  # recorded for the bridge; a camera seeing no geometry still exports
        try:
            scene_depth = scene_depth_scale(scene, camera_obj, track, depth_size=gauge_depth_size)
        except ValueError as exc:
            early.append(f"no scene depth scale recorded ({exc}); the bridge will write metres 1:1")
    factor = gauge.gauge_factor(generator, scene_depth, speed) if generator is not None else 1.0
    fps = track.meta.get("fps") or 1.0
    labels = [_frame_label(t * fps) for t in track.times]
    record = gauge.record(generator, scene_depth, factor, speed, depth_frame=start_frame, depth_source="zpass",
                          depth_size=list(gauge_depth_size), scene_unit_scale=track.meta.get("unit_scale", 1.0),
                          scene_units="scene units (metres = value x scene_unit_scale)")
    written_track = track
    check = None
    warnings = list(early)
    if generator is not None:
        written_track = replace(track, c2w=gauge.scale_translation(track.c2w, factor))
        check = gauge.move_in_range(generator, written_track.c2w, labels)
        warnings += check["warnings"]
        problem = gauge.frame_count_problem(generator, len(track), names["frames"])
        if problem:
            warnings.append(problem)
    precorrected = fmt == "re10k" and generator in PRECORRECTED_RE10K
    if fmt == "re10k" and not precorrected and abs(track.width / track.height - 16 / 9) > 1e-3:
        # CameraCtrl's and VideoX-Fun's loaders correct the focal length assuming a 1280x720 pose file
        warnings.append(f"camera {camera_obj.name!r} renders {track.width}x{track.height}, not 16:9: CameraCtrl and "
                        "VideoX-Fun read RealEstate10K files as made at 1280x720 and will stretch its field of "
                        "view; the bridge (parascale_bridge.py) writes files pre-corrected for that")
    meta = dict(written_track.meta)
    meta["gauge"] = record
    written_track = replace(written_track, meta=meta)
    writers.check_output(output, written_track)  # finite, bounded, plausible: before the depth renders
    if plan.message():
        warnings.append(plan.message())
    output.parent.mkdir(parents=True, exist_ok=True)  # a new folder for the export is fine
    kwargs = {}
    if precorrected:
        kwargs.update(pose_size=writers.ASSUMED_POSE_SIZE)
    if fmt == "gen3c":
        depth_size = (track.width, track.height) if depth_size is None else depth_size
        depths, depth_K = _gen3c_depths(scene, track, depth_size)
        kwargs.update(depths=(depths * factor).astype(np.float32), depth_K=depth_K)
    if fmt == "recammaster":
        # in a gauge the translation is already metres; in scene units convert with the scene's scale
        kwargs.update(unit_scale=1.0 if generator is not None else track.meta.get("unit_scale", 1.0))
    manifest = {"format": fmt, "output": str(output), "frames": len(track), "frame_labels": labels,
                "image_size": [int(track.width), int(track.height)], "gauge": record, "range": check,
                "warnings": warnings}
    if precorrected:
        manifest["intrinsics"] = ("fx/W or fy/H pre-corrected for the 1280x720 pose size CameraCtrl and "
                                  "VideoX-Fun assume: their aspect correction gives back K at image_size")
    if fmt == "gen3c":
        manifest["depth"] = {"file": "depth.npz", "size": [int(depth_size[0]), int(depth_size[1])],
                             "source": "Cycles Z pass at that size, one per exported frame",
                             "units": "the translation's (start-frame depth scales in GEN3C's gauge)"}
    json.dumps(manifest, allow_nan=False)  # JSON-safe before anything is written
    if fmt in writers.FOLDER_FORMATS:  # the bridge and manifest go in with the folder, which appears whole
        kwargs["extra_files"] = {BRIDGE_NAME: BRIDGE_SOURCE.read_bytes()}
        written = Path(writers.write_track(written_track, fmt, output, frames=None, manifest=manifest,
                                           force=force, **kwargs))
        paths = [written, written / BRIDGE_NAME, written / manifest_lib.MANIFEST_NAME]
    else:
        written, paths = _write_file_set(written_track, fmt, output, manifest, force, names["force"], kwargs)
    return ExportResult([str(p) for p in paths], record, warnings, check, (int(track.width), int(track.height)),
                        _step_lengths(track.c2w), labels)


def _step_lengths(c2w) -> list:
    return np.linalg.norm(np.diff(np.asarray(c2w, float)[:, :3, 3], axis=0), axis=1).tolist()


def _write_file_set(track: Track, fmt: str, output: Path, manifest: dict, force: bool, force_hint: str,
                    kwargs: dict):
    """The output file, the bridge beside it and the manifest <output>.manifest.json (the
    commit record, listing the two by size and SHA-256) as one set (writers.AtomicSet): a
    kill leaves the old set or the new one, or a journal the next run finishes."""
    bridge = BRIDGE_SOURCE.read_bytes()
    plan = check_replaceable(fmt, output, force, force_hint)  # again, just before writing
    sidecar = manifest_lib.sidecar_of(output)
    bridge_path = output.parent / BRIDGE_NAME
    write_bridge = BRIDGE_NAME not in plan.kept and not (
        bridge_path.is_file() and bridge_path.stat().st_size == len(bridge) and bridge_path.read_bytes() == bridge)
    paths = [output] + ([bridge_path] if write_bridge else []) + [sidecar]  # the record last
    with writers.AtomicSet(paths) as s:
        writers.write_track(track, fmt, s.tmp(output), frames=None, **kwargs)
        entries = [s.entry(output)]
        if write_bridge:
            writers.atomic_write_bytes(s.tmp(bridge_path), bridge)
            entries.append(s.entry(bridge_path))
        elif BRIDGE_NAME not in plan.kept:
            entries.append(manifest_lib.entry_of(output.parent, BRIDGE_NAME))
        doc = manifest_lib.manifest_document(manifest, entries)
        writers.atomic_write_json(s.tmp(sidecar), doc, indent=1, end="\n")
        s.commit()
    return output, [output, bridge_path, sidecar]


def gauge_preview(scene, camera_obj, generator: str, *, speed: float = 1.0, frames: Optional[int] = None,
                  frame_range: Optional[Sequence[int]] = None, depth_size=(96, 54),
                  size: Optional[Sequence[int]] = None, scene_depth: Optional[float] = None) -> dict:
    """Where camera_obj's move sits in `generator`'s training range, for the panel:
    core.gauge.move_in_range of the move as export would write it (one Z pass at the
    start frame, unless its scene_depth is given), plus the gauge record. Keys: pi_step,
    pi_step_range, path, path_range, position (0 slowest .. 1 fastest training path,
    log scale), too_fast, too_slow, warnings, gauge, image_size. Raises ValueError."""
    gauge.gauge_of(generator)
    track = camera_track(scene, camera_obj, frame_range)
    if size is not None:
        track = fit_to_size(track, *size)
    if frames is not None:
        track = writers.prepare(track, frames)
    if scene_depth is None:
        scene_depth = scene_depth_scale(scene, camera_obj, track, depth_size=depth_size)
    factor = gauge.gauge_factor(generator, scene_depth, speed)
    fps = track.meta.get("fps") or 1.0
    out = gauge.move_in_range(generator, gauge.scale_translation(track.c2w, factor),
                              [_frame_label(t * fps) for t in track.times])
    out["gauge"] = gauge.record(generator, scene_depth, factor, speed,
                                depth_frame=int(track.meta["source_frames"][0]))
    out["image_size"] = [int(track.width), int(track.height)]
    out["steps"] = _step_lengths(track.c2w)
    out["frame_labels"] = [_frame_label(t * fps) for t in track.times]
    return out


def _frame_label(x: float):
    """Scene frame number of an exported frame (int when whole, else 2 decimals)."""
    r = round(x)
    return int(r) if abs(x - r) < 1e-6 else round(float(x), 2)


def export_camera(scene, camera_obj, fmt: str, output, frames: Optional[int] = None,
                  frame_range: Optional[Sequence[int]] = None, depth_size=None, **gauge_options) -> list:
    """export_with_gauge, returning only the written paths (output first, then the
    bridge, then the manifest). Raises ValueError."""
    return export_with_gauge(scene, camera_obj, fmt, output, frames, frame_range, depth_size,
                             **gauge_options).paths
