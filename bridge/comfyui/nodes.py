"""The ParaScale node classes (ComfyUI's custom-node convention: INPUT_TYPES, RETURN_TYPES,
FUNCTION, CATEGORY). Thin: the numbers are in camera.py and preview.py.

Torch seam: every array is computed in numpy and converted only at a node's output by
`to_output`. Inside ComfyUI (which always has torch) that is a torch tensor on the CPU,
as ComfyUI's own WanCameraEmbedding returns; in a Python without torch (the tests) the
numpy array itself, with the same shape, dtype and values.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import parascale_bridge as B
from . import camera, preview

CATEGORY = "ParaScale"
MOVE = "PARASCALE_MOVE"  # camera.move() plus the export it came from ("track")
MAX_LENGTH = 4097


def to_output(array: np.ndarray):
    """numpy -> what ComfyUI passes between nodes: a CPU torch tensor (torch imported here,
    lazily), or the numpy array when torch is absent (tests; see the module doc)."""
    try:
        import torch
    except ImportError:
        return array
    return torch.from_numpy(np.ascontiguousarray(array))


def _generators():
    return list(B.GAUGES)


def _file_stamp(path) -> str:
    """What changes when the export (or its manifest) is rewritten: ComfyUI re-runs the node."""
    p = Path(str(path).strip().strip('"')).expanduser()
    parts = []
    for q in (p, p.with_name(p.name + ".manifest.json")):
        try:
            st = q.stat()
            parts.append(f"{q}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append(f"{q}:missing")
    return "|".join(parts)


class ParaScaleLoadPoses:
    """Load a ParaScale export and make Wan's camera conditioning from it."""

    DESCRIPTION = ("Reads a ParaScale export (.json and its .manifest.json) and writes its camera move in the "
                   "generator's gauge as the camera_embedding ComfyUI's WanCameraEmbedding makes: plug it into "
                   "WanCameraImageToVideo's camera_conditions, with width, height and length.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pose_file": ("STRING", {"default": "", "tooltip": "Path of the ParaScale export (.json) written by "
                                     "Blender's File > Export > Camera Poses (ParaScale) or `parascale export "
                                     "--format parascale`; its .manifest.json next to it is read too"}),
            "generator": (_generators(), {"default": "wan-fun-camera", "tooltip": "Whose gauge the translation "
                          "is written in: the depth scale that generator's training poses assume "
                          "(wan-fun-camera: VideoX-Fun's Wan camera models, RealEstate10K units)"}),
            "width": ("INT", {"default": 832, "min": 16, "max": camera.MAX_SIDE, "step": 16,
                              "tooltip": "Video width in pixels (the export's view is scaled to cover it and "
                                         "cropped at the centre)"}),
            "height": ("INT", {"default": 480, "min": 16, "max": camera.MAX_SIDE, "step": 16,
                               "tooltip": "Video height in pixels"}),
            "length": ("INT", {"default": 81, "min": 1, "max": MAX_LENGTH, "step": 4,
                               "tooltip": "Frames, 4n+1 (81 for Wan 2.1): the move is resampled to this many "
                                          "evenly spaced poses (kept as is when it has that many)"}),
            "speed": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 10.0, "step": 0.01,
                                "tooltip": "Multiplies the translation on top of the gauge (1 = the move as "
                                           "calibrated)"}),
        }}

    RETURN_TYPES = ("WAN_CAMERA_EMBEDDING", "INT", "INT", "INT", MOVE, "STRING")
    RETURN_NAMES = ("camera_embedding", "width", "height", "length", "move", "report")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    @classmethod
    def IS_CHANGED(cls, pose_file, **_):
        return _file_stamp(pose_file)

    def load(self, pose_file, generator, width, height, length, speed):
        camera.check_options(generator, length, width, height, speed)
        track = camera.read_export(pose_file)
        m = camera.move(track, generator, length, width, height, speed)
        m["track"] = track
        emb = camera.wan_camera_embedding(m)
        return (to_output(emb), width, height, length, m, camera.report(m, track["export_warnings"]))


class ParaScaleSaveCameraCtrlPoses:
    """Write the move as a RealEstate10K pose file for AnimateDiff-Evolved's CameraCtrl."""

    DESCRIPTION = ("Writes the move (from Load ParaScale Poses) as a RealEstate10K .txt in CameraCtrl's gauge, "
                   "pre-corrected for the 1280x720 pose size AnimateDiff-Evolved's loaders assume, and returns "
                   "the same poses as CAMERACTRL_POSES for 'Apply AnimateDiff+CameraCtrl Model'.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "move": (MOVE, {"tooltip": "The move output of Load ParaScale Poses (its export and speed are used)"}),
            "frames": ("INT", {"default": 16, "min": 2, "max": MAX_LENGTH,
                               "tooltip": "Poses to write: 16 for AnimateDiff's CameraCtrl, 14 or 25 for SVD"}),
            "width": ("INT", {"default": 384, "min": 16, "max": camera.MAX_SIDE, "step": 16,
                              "tooltip": "Width of the AnimateDiff video (the intrinsics are fitted to it)"}),
            "height": ("INT", {"default": 256, "min": 16, "max": camera.MAX_SIDE, "step": 16,
                               "tooltip": "Height of the AnimateDiff video"}),
            "filename_prefix": ("STRING", {"default": "parascale/cameractrl",
                                           "tooltip": "Relative to ComfyUI's output folder (or an absolute "
                                                      "path); _00001.txt etc. is added, nothing is overwritten"}),
        }}

    RETURN_TYPES = ("CAMERACTRL_POSES", "STRING", "INT")
    RETURN_NAMES = ("cameractrl_poses", "pose_file", "frames")
    FUNCTION = "save"
    CATEGORY = CATEGORY
    OUTPUT_NODE = True

    def save(self, move, frames, width, height, filename_prefix):
        track = move["track"]
        camera.check_options("cameractrl", frames, width, height, move["speed"], rule=None)
        m = camera.move(track, "cameractrl", frames, width, height, move["speed"])
        rows = camera.re10k_rows(m)
        path = write_new_text(output_path(filename_prefix), camera.re10k_file_text(rows))
        return {"ui": {"text": [str(path)]},
                "result": (camera.cameractrl_poses(rows), str(path), frames)}


class ParaScalePreviewPath:
    """The move seen from above, with the frames leaving the training range marked."""

    DESCRIPTION = ("Draws the camera path from above (north up, equal scale): green steps are inside the "
                   "generator's training range, red too fast, blue too slow, grey without translation; white "
                   "ticks show the view direction, the ring is the start. Connect the image to Preview Image.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "move": (MOVE, {"tooltip": "The move output of Load ParaScale Poses"}),
            "size": ("INT", {"default": 512, "min": 64, "max": 4096, "step": 8, "tooltip": "Image side in pixels"}),
        }}

    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("image", "report")
    FUNCTION = "draw"
    CATEGORY = CATEGORY

    def draw(self, move, size):
        img = preview.top_view(move, size)
        return (to_output(img[None]), camera.report(move, move.get("track", {}).get("export_warnings", ())))


def output_path(prefix: str) -> Path:
    """An absolute prefix as given; a relative one under ComfyUI's output folder (the
    current folder outside ComfyUI)."""
    p = Path(str(prefix).strip() or "parascale/cameractrl").expanduser()
    if p.is_absolute():
        return p
    try:
        import folder_paths  # ComfyUI's module
        base = Path(folder_paths.get_output_directory())
    except ImportError:
        base = Path.cwd()
    if ".." in p.parts:
        raise camera.NodeInputError(f"filename_prefix {prefix!r}: stays inside the output folder (no '..')")
    return base / p


def write_new_text(prefix: Path, text: str) -> Path:
    """Write text to the first free <prefix>_NNNNN.txt, never replacing a file: the name is
    claimed by an exclusive create, the content written to a hidden temporary first."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for i in range(1, 100000):
        path = prefix.with_name(f"{prefix.name}_{i:05d}.txt")
        if os.path.lexists(path):
            continue
        tmp = path.with_name(f".{path.name}.parascale-tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        try:
            os.link(tmp, path)  # fails if the name was taken meanwhile
        except FileExistsError:
            continue
        except OSError:  # no hard links on this file system: exclusive create instead
            try:
                with open(path, "x", encoding="utf-8") as fh:
                    fh.write(text)
            except FileExistsError:
                continue
        finally:
            tmp.unlink(missing_ok=True)
        return path
    raise camera.NodeInputError(f"{prefix}: no free file name (_00001 .. _99999 all taken)")


NODE_CLASS_MAPPINGS = {
    "ParaScaleLoadPoses": ParaScaleLoadPoses,
    "ParaScaleSaveCameraCtrlPoses": ParaScaleSaveCameraCtrlPoses,
    "ParaScalePreviewPath": ParaScalePreviewPath,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ParaScaleLoadPoses": "Load ParaScale Poses",
    "ParaScaleSaveCameraCtrlPoses": "Save CameraCtrl Pose File",
    "ParaScalePreviewPath": "Preview ParaScale Path",
}
