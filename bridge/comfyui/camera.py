"""The numbers behind the ParaScale ComfyUI nodes: a ParaScale export read and written in a
generator's gauge, ComfyUI's Wan camera conditioning, CameraCtrl pose rows. numpy only.

Every conversion reuses the standalone bridge (../parascale_bridge.py): the same loader
and checks, the same gauge, resampling, intrinsics fit and Plucker embedding, so a node
and `parascale_bridge.py` given the same options write the same move.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .. import parascale_bridge as B

# The pose-file size VideoX-Fun's and CameraCtrl's readers assume (and AnimateDiff-Evolved
# writes into columns 5 and 6 of every pose it loads): their focal-length correction.
ASSUMED_POSE_WH = (1280, 720)
# RealEstate10K's first line names the clip; AnimateDiff-Evolved skips it.
RE10K_SOURCE_LINE = "https://parascale.invalid/comfyui"
MAX_SIDE = 8192


class NodeInputError(ValueError):
    """A node input that cannot be used, named with what was expected."""


def read_export(path) -> dict:
    """The ParaScale export at `path`: its .json (or a RealEstate10K .txt, read as the
    bridge reads it: world-to-camera rows, already in the RealEstate10K gauge); the
    manifest `<path>.manifest.json` next to it is read when present. Returns the
    bridge's track plus `path`, `manifest` (dict or None), `frame_labels` (scene frame
    of each pose) and `export_warnings`. Raises B.BridgeError naming the file."""
    path = Path(str(path).strip().strip('"')).expanduser()
    if path.suffix.lower() not in (".json", ".txt"):
        raise NodeInputError(f"pose_file {str(path)!r}: give a ParaScale export (.json, written by File > Export "
                             "> Camera Poses (ParaScale) or `parascale export --format parascale`) or a "
                             "RealEstate10K .txt")
    track = B.load_poses(path)
    manifest, warnings = None, []
    mpath = path.with_name(path.name + ".manifest.json")
    if mpath.is_file():
        try:
            manifest = B._load_json(mpath, mpath.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise B.BridgeError(f"{mpath}: cannot read ({exc})")
        if not isinstance(manifest, dict):
            raise B.BridgeError(f"{mpath}: not a ParaScale manifest (expected a JSON object)")
        frames = manifest.get("frames")
        if frames is not None and frames != len(track["c2w"]):
            raise B.BridgeError(f"{mpath}: the manifest lists {frames} frames, {path.name} holds "
                                f"{len(track['c2w'])}; it belongs to another export")
        warnings = [str(w) for w in manifest.get("warnings") or [] if isinstance(w, str)]
    fps = _fps(path)
    labels = [_label(t * fps) for t in track["times"]] if fps else list(range(len(track["times"])))
    if manifest and isinstance(manifest.get("frame_labels"), list) and \
            len(manifest["frame_labels"]) == len(track["times"]):
        labels = manifest["frame_labels"]
    return dict(track, path=str(path), manifest=manifest, frame_labels=labels, export_warnings=warnings,
                fps=fps)


def _fps(path):
    try:
        fps = json.loads(Path(path).read_text(encoding="utf-8")).get("fps")
    except (OSError, ValueError, AttributeError):
        return None
    return float(fps) if isinstance(fps, (int, float)) and not isinstance(fps, bool) and fps > 0 \
        and math.isfinite(fps) else None


def _label(x):
    r = round(x)
    return int(r) if abs(x - r) < 1e-6 else round(float(x), 2)


def check_options(generator: str, frames: int, width: int, height: int, speed: float, *, rule="4n+1"):
    if generator not in B.GAUGES:
        raise NodeInputError(f"generator gauge {generator!r}: choose one of {', '.join(B.GAUGES)}")
    if rule == "4n+1" and not (isinstance(frames, int) and frames >= 5 and (frames - 1) % 4 == 0):
        raise NodeInputError(f"length {frames}: Wan takes 4n+1 frames (5, 9, ..., 81, ...); its VAE "
                             "compresses time by 4")
    if not (isinstance(frames, int) and frames >= 2):
        raise NodeInputError(f"frames {frames}: a camera move needs at least 2")
    for name, v in (("width", width), ("height", height)):
        if not (isinstance(v, int) and 16 <= v <= MAX_SIDE and v % 16 == 0):
            raise NodeInputError(f"{name} {v}: a multiple of 16 from 16 to {MAX_SIDE} (Wan's latent is 1/8 of "
                                 "the image and its patches are 2 latent pixels)")
    if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
        raise NodeInputError(f"speed {speed}: a positive number (1 = the calibrated move)")
    if not B.MIN_SPEED <= speed <= B.MAX_SPEED:  # the bridge's limits: beyond, the move overflows or vanishes
        raise NodeInputError(f"speed {speed:g}: outside {B.MIN_SPEED:g} to {B.MAX_SPEED:g} (a multiplier on the "
                             "calibrated move)")


def move(track: dict, generator: str, frames: int, width: int, height: int, speed: float = 1.0) -> dict:
    """The move as `generator` reads it: `frames` evenly spaced poses (the track as it is
    when it has that many), translation in the generator's gauge x speed, K fitted to
    width x height (scale to cover, crop the centre). Absolute c2w, OpenCV axes."""
    n_src = len(track["c2w"])
    if frames == n_src:
        c2w, K, times = track["c2w"].copy(), track["K"].copy(), track["times"].copy()
    else:
        c2w, K, times = B.resample(track["c2w"], track["K"], track["times"], frames)
    factor, record = B.gauge_factor(generator, track, speed)
    B.check_translation(track.get("path", "the export"), generator, track, factor)  # finite, not vanishing
    c2w[:, :3, 3] *= factor
    K = B.fit_intrinsics(K, track["width"], track["height"], height, width)
    fps = track.get("fps")
    if frames == n_src and track.get("frame_labels"):
        labels = list(track["frame_labels"])
    elif fps:
        labels = [_label(t * fps) for t in times]
    else:
        labels = list(range(frames))
    check = B.range_check(generator, c2w)
    warnings = B.range_warnings(generator, c2w)
    if track["depth_scale"] is None:
        warnings.append(f"{track.get('path', 'the export')} records no scene depth scale: translation is in "
                        f"metres 1:1, not in {generator}'s gauge; export again with ParaScale to record it")
    return {"c2w": c2w, "K": K, "times": times, "width": width, "height": height, "generator": generator,
            "speed": speed, "gauge": record, "range": check, "warnings": warnings, "frame_labels": labels,
            "source": track.get("path"), "kind": track["kind"]}


def plucker_frames(m: dict) -> "np.ndarray":
    """(frames, 6, H, W) float32: CameraCtrl's ray_condition of the move made relative
    to its first pose, channels [o x d, d] (the bridge's plucker)."""
    rel = B.relative_to_first(m["c2w"])
    return B.plucker(rel, m["K"], m["height"], m["width"], "cameractrl")


def wan_camera_embedding(m: dict) -> np.ndarray:
    """ComfyUI's WAN_CAMERA_EMBEDDING for the move: (1, 24, (frames + 3) // 4, H, W)
    float32, the layout WanCameraEmbedding hands to WanCameraImageToVideo. The first
    frame's embedding is repeated 4 times in front (frames + 3 in all), the sequence is
    cut into groups of 4 and each group's 4 x 6 channels are stacked, channel = 4 x
    Plucker channel + position in the group. Written frame by frame into the output
    (no full-size intermediate)."""
    n = len(m["c2w"])
    if n < 5 or (n - 1) % 4:
        raise NodeInputError(f"{n} frames: Wan's camera embedding takes 4n+1")
    H, W = m["height"], m["width"]
    rel = B.relative_to_first(m["c2w"])
    out = np.empty((1, 24, (n + 3) // 4, H, W), np.float32)
    for f in range(n):
        p = B.plucker(rel[f:f + 1], m["K"][f:f + 1], H, W, "cameractrl")[0]  # (6, H, W)
        for j in ((0, 1, 2, 3) if f == 0 else (f + 3,)):  # padded position(s) of frame f
            g, k = divmod(j, 4)
            out[0, k::4, g] = p
    return out


def re10k_rows(m: dict) -> list:
    """RealEstate10K rows of the move, pre-corrected for the 1280x720 pose size
    CameraCtrl's and VideoX-Fun's readers assume: [timestamp_us, fx/W, fy/H, cx/W, cy/H,
    0, 0, w2c row-major 3x4] with poses relative to the first (world-to-camera)."""
    text = B.re10k_text(B.relative_to_first(m["c2w"]), m["K"], m["width"], m["height"], m["times"],
                        assumed_wh=ASSUMED_POSE_WH)
    return [[float(x) for x in line.split(" ")] for line in text.splitlines()[1:]]


def re10k_file_text(rows: list) -> str:
    """The file: a source line, then one row per line, numbers separated by single spaces
    (AnimateDiff-Evolved splits on ' '), no blank line at the end."""
    lines = [RE10K_SOURCE_LINE]
    for r in rows:
        lines.append(" ".join([str(int(r[0]))] + [repr(float(x)) for x in r[1:]]))
    return "\n".join(lines) + "\n"


def cameractrl_poses(rows: list) -> list:
    """CAMERACTRL_POSES as AnimateDiff-Evolved's pose loaders return them: the file's rows
    with columns 5 and 6 set to the pose size they assume (1280, 720)."""
    out = []
    for r in rows:
        r = list(r)
        r[5], r[6] = float(ASSUMED_POSE_WH[0]), float(ASSUMED_POSE_WH[1])
        out.append(r)
    return out


def report(m: dict, export_warnings=()) -> str:
    """Plain text: gauge, size, frames, where the move sits in the training range, warnings."""
    g, r = m["gauge"], m["range"]
    (lo, hi), (plo, phi) = r["pi_step_range"], r["path_range"]
    lines = [f"ParaScale move for {m['generator']}: {len(m['c2w'])} frames at {m['width']}x{m['height']}",
             f"gauge: translation x {g['factor']:.6g} ({g['units']}; speed {m['speed']:g})",
             f"path {r['path']:.3g} depths (training {plo:.3g}..{phi:.3g}); Pi per step "
             f"{float(np.min(r['pi_step'])):.3g}..{float(np.max(r['pi_step'])):.3g} "
             f"(training {lo:.3g}..{hi:.3g})"]
    lines += [f"warning: {w}" for w in list(export_warnings) + list(m["warnings"])]
    return "\n".join(lines)
