"""What an export writes beside its pose file, and what it may replace there: the bridge
script copied next to every export, and the ownership check (core.formats.manifest) the
command line runs before it opens a scene and the export runs again before it writes.
No bpy: the command line calls it before Blender starts work."""
from __future__ import annotations

from pathlib import Path

from ..core.formats import writers

BRIDGE_SOURCE = Path(__file__).resolve().parents[1] / "bridge" / "parascale_bridge.py"
BRIDGE_NAME = "parascale_bridge.py"

# The file extension each format is written with ("" for the folder formats).
EXTENSIONS = {"re10k": ".txt", "motionctrl": ".json", "recammaster": ".json", "nerf": ".json",
              "colmap": "", "gen3c": "", "parascale": ".json"}


def output_path(fmt: str, path) -> Path:
    """The path a format is written to: a file gets its format's extension (added, or
    replacing a wrong one); a folder format keeps the name, without a file extension."""
    path = Path(path)
    ext = EXTENSIONS.get(fmt, "")
    if not path.name or path.name in (".", ".."):
        raise ValueError(f"{path}: give a file name for the {fmt} export")
    if ext and path.suffix.lower() != ext:
        return path.with_name(path.stem + ext if path.suffix.lower() in (".txt", ".json") else path.name + ext)
    if not ext and path.suffix.lower() in (".txt", ".json"):
        return path.with_suffix("")
    return path


def check_replaceable(fmt: str, output, force: bool = False, force_hint: str = "--force"):
    """What an export in `fmt` at `output` (its final path) may replace, before any work:
    plan.kept are the user's files that stay. Raises ValueError naming the user's files
    and the way out (another name or folder, or force_hint)."""
    output = Path(output)
    if fmt in writers.FOLDER_FORMATS:
        names = writers.COLMAP_FILES if fmt == "colmap" else writers.GEN3C_FILES
        return writers.check_replaceable_folder(output, names, force, force_hint)
    return writers.check_replaceable_files(output, {BRIDGE_NAME: BRIDGE_SOURCE.read_bytes()}, force, force_hint)
