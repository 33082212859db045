"""Export presets per generator: format, frames, image size, gauge and speed, as Blender
operator presets of the Export dialog (File > Export > Camera Poses for Video Generators,
the preset menu in its sidebar) and as the panel's Generator choice.

One table (PRESETS) is the source: the preset files in
operators/presets/operator/parascale.export_poses/ hold exactly preset_text() of each row
(tests/ui checks it), and Blender lists that folder through compat.register_preset_path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

# Blender's folder for the presets of one operator (AddPresetOperator.operator_path).
PRESET_SUBDIR = "operator/parascale.export_poses"
# The folder holding presets/ (registered with Blender), and the preset files themselves.
PRESET_ROOT = Path(__file__).resolve().parents[1] / "operators"
PRESET_FOLDER = PRESET_ROOT / "presets" / PRESET_SUBDIR


@dataclass(frozen=True)
class ExportPreset:
    """One generator's export: `format` (core.formats.writers), gauge `generator` ("auto":
    the format's), `frames` evenly spaced, `width` x `height` pixels (the view scaled to
    cover it and cropped at the centre), `speed`. `range_generator`: whose training range
    the panel's indicator shows (the gauge's, or the consumer of a ParaScale json)."""

    key: str          # the preset file's name (Blender shows it with spaces for underscores)
    label: str
    format: str
    generator: str
    frames: int
    width: int
    height: int
    speed: float = 1.0
    range_generator: Optional[str] = None
    note: str = ""

    @property
    def range_of(self) -> str:
        return self.range_generator or self.generator

    @property
    def path(self) -> Path:
        return PRESET_FOLDER / f"{self.key}.py"


# Sizes and frame counts are each generator's defaults (docs/gauge.md, docs/blender.md).
PRESETS = (
    ExportPreset("CameraCtrl_AnimateDiff", "CameraCtrl (AnimateDiff)", "re10k", "cameractrl", 16, 384, 256,
                 note="RealEstate10K .txt, pre-corrected for CameraCtrl's 1280x720 assumption"),
    ExportPreset("Wan_Fun_Camera_VideoX-Fun", "Wan Fun Camera (VideoX-Fun)", "re10k", "wan-fun-camera", 81, 832, 480,
                 note="RealEstate10K .txt for predict_v2v_control_camera.py, pre-corrected for 1280x720"),
    ExportPreset("ComfyUI_Wan_Camera", "ComfyUI Wan Camera (ParaScale json)", "parascale", "auto", 81, 832, 480,
                 range_generator="wan-fun-camera",
                 note="for the Load ParaScale Poses node (docs/comfyui.md); the json keeps scene units"),
    ExportPreset("MotionCtrl_VideoCrafter", "MotionCtrl (VideoCrafter)", "motionctrl", "motionctrl", 16, 256, 256),
    ExportPreset("CamI2V", "CamI2V", "re10k", "cami2v", 16, 256, 256),
    ExportPreset("AC3D_CogVideoX", "AC3D (CogVideoX)", "re10k", "ac3d", 49, 720, 480),
    ExportPreset("ReCamMaster", "ReCamMaster", "recammaster", "recammaster", 81, 832, 480),
    ExportPreset("GEN3C", "GEN3C", "gen3c", "gen3c", 121, 1280, 704,
                 note="depth.npz at 1280x704, one Z pass per frame"),
    ExportPreset("Uni3C_ParaScale_json", "Uni3C (ParaScale json, bridge)", "parascale", "auto", 81, 832, 480,
                 range_generator="uni3c", note="run parascale_bridge.py --generator uni3c on it"),
)
BY_KEY = {p.key: p for p in PRESETS}
DEFAULT = "ComfyUI_Wan_Camera"

# The Export operator's properties a preset sets, in the order the file sets them.
FIELDS = (("format", "format"), ("generator", "generator"), ("frame_count", "frames"), ("width", "width"),
          ("height", "height"), ("speed", "speed"))


def operator_values(preset: ExportPreset, speed: Optional[float] = None) -> dict:
    """The Export operator's property values for a preset (speed overridden when given)."""
    values = {prop: getattr(preset, attr) for prop, attr in FIELDS}
    if speed is not None:
        values["speed"] = float(speed)
    return values


def preset_text(preset: ExportPreset) -> str:
    """The preset file, as Blender's own operator presets are written: it sets the
    properties of the operator the file browser shows (context.active_operator)."""
    lines = ["import bpy", "op = bpy.context.active_operator", "",
             f"# ParaScale export preset: {preset.label}" + (f"; {preset.note}" if preset.note else "")]
    for prop, value in operator_values(preset).items():
        lines.append(f"op.{prop} = {value!r}")
    return "\n".join(lines) + "\n"


def _gauge_text(preset: ExportPreset) -> str:
    if preset.generator == "auto":
        return "scene units with the depth scale recorded (the node or the bridge converts)"
    return f"{preset.generator}'s gauge"


def enum_items():
    """(identifier, name, description) for the panel's Generator setting."""
    return [(p.key, p.label, f"{p.format} export, {p.frames} frames at {p.width}x{p.height}, translation in "
             f"{_gauge_text(p)}" + (f"; {p.note}" if p.note else "")) for p in PRESETS]
