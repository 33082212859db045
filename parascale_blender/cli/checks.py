"""Argument checks shared by the `parascale` subcommands: every value a user types is
checked here, before any work (no scene opened, nothing rendered, nothing written).

Each check raises CommandError with one line naming the option, the value and what
was expected; cli.main prints it and exits with status 2. bpy-free.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from .parser import CommandError

# Blender's own limits: scene frames run 0..MAXFRAME; a render is at most 65536 px a side.
MAX_FRAME = 1_048_574
MAX_RENDER_SIDE = 65_536
MAX_DEPTH_SIDE = 4_096      # depth grids are read back per frame: keep them sane
MAX_SAMPLES = 1 << 24       # Cycles' own maximum sample count
MAX_EXPORT_FRAMES = 1_000_000
MAX_OFFSET = 10_000_000

BLEND_MAGIC = (b"BLENDER", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")  # plain, gzip, zstd (compressed .blend)


def check_int(option: str, value: Optional[int], lo: int, hi: int, what: str = "") -> Optional[int]:
    """value within lo..hi (None passes: the option was not given)."""
    if value is None:
        return None
    if not lo <= value <= hi:
        extra = f" ({what})" if what else ""
        bound = f"at least {lo}" if value < lo else f"at most {hi}"
        raise CommandError(f"{option} {value}: must be {bound}{extra}")
    return value


def check_frame(option: str, value: Optional[int]) -> Optional[int]:
    return check_int(option, value, 0, MAX_FRAME, "a Blender scene frame")


def check_frame_range(option: str, start: Optional[int], end: Optional[int]) -> None:
    if start is not None and end is not None and end <= start:
        raise CommandError(f"{option}: frames {start}..{end} have no step; the end must be after the start")


def parse_size(option: str, text: str, lo: int = 2, hi: int = MAX_DEPTH_SIDE) -> tuple[int, int]:
    """'WxH' -> (W, H), both sides within lo..hi."""
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise CommandError(f"{option} {text!r}: expected WIDTHxHEIGHT, for example 96x54") from None
    if not (lo <= w <= hi and lo <= h <= hi):
        raise CommandError(f"{option} {text!r}: both sides must be {lo}..{hi}")
    return w, h


# Memory a measurement render holds per pixel: Blender's float RGBA render result and its
# combined pass (32 B), the 8-bit image written and read back, two grey frames and the
# optical flow between them in float (about 32 B more). Checked for a square frame (the
# aspect is known only once the scene is open): at worst twice what a 16:9 frame needs.
RENDER_BYTES_PER_PIXEL = 64


def check_render_memory(option: str, long_side: int) -> None:
    """A render of long_side x long_side must fit in the memory available."""
    from ...core.formats.validate import available_memory

    need = RENDER_BYTES_PER_PIXEL * int(long_side) ** 2
    avail = available_memory()
    if avail is not None and need > avail:
        raise CommandError(f"{option} {long_side}: a {long_side}x{long_side} measurement render needs about "
                           f"{need / 2 ** 30:.3g} GiB of memory ({RENDER_BYTES_PER_PIXEL} bytes a pixel); "
                           f"{avail / 2 ** 30:.3g} GiB is available")


def check_number(option: str, value: Optional[float], lo: float, hi: float) -> Optional[float]:
    if value is None:
        return None
    if not (value == value and lo <= value <= hi):  # NaN fails
        raise CommandError(f"{option} {value}: expected a number in {lo:g}..{hi:g}")
    return value


def check_track_format(option: str, value: Optional[str]) -> Optional[str]:
    from ...core.formats.readers import FORMATS

    if value is not None and value not in ("auto",) + tuple(FORMATS):
        raise CommandError(f"{option} {value!r}: expected one of auto, {', '.join(FORMATS)}")
    return value


# ---------------------------------------------------------------------------
# input files

def check_input(option: str, path: Optional[str], kind: str = "file or folder") -> Optional[Path]:
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise CommandError(f"{option} {path}: no such {kind}")
    if kind == "file" and not p.is_file():
        raise CommandError(f"{option} {path}: is not a file")
    if not os.access(p, os.R_OK):
        raise CommandError(f"{option} {path}: not readable")
    return p


def check_blend(option: str, path: Optional[str]) -> Optional[Path]:
    """An existing, readable .blend file: checked by its first bytes, not its name."""
    p = check_input(option, path, "file")
    if p is None:
        return None
    with open(p, "rb") as fh:
        head = fh.read(16)
    if not any(head.startswith(m) for m in BLEND_MAGIC):
        raise CommandError(f"{option} {path}: not a .blend file (it starts with {head[:8]!r}; a .blend "
                           "starts with 'BLENDER', or a gzip/zstd header when compressed)")
    return p


def check_video(option: str, path: Optional[str]) -> Optional[Path]:
    """A video file (by its container's signature) or an image folder."""
    if path is None:
        return None
    p = check_input(option, path)
    if p.is_dir():
        from ...core.formats.readers import list_images
        from ...core.formats.validate import check_image_header

        try:  # each image's declared size, from its header (nothing decoded)
            for image in list_images(p):
                check_image_header(image)
        except (ValueError, OSError) as exc:
            raise CommandError(f"{option} {exc}") from None
        return p
    from ...core.reference import check_video_file

    try:
        check_video_file(p)
    except ValueError as exc:
        raise CommandError(f"{option} {exc}") from None
    return p


# ---------------------------------------------------------------------------
# outputs: checked writable before any work, nothing created

def _read_only(st) -> bool:
    # The permission bits, not os.access: root may write anywhere, but a file or
    # folder marked read-only is the user's wish to keep it.
    return not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def _writable_folder(option: str, path: str, folder: Path) -> None:
    """The nearest existing folder at or above `folder` can take new files (the
    missing ones are created at the end)."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise CommandError(f"{option} {path}: {existing} is not a folder")
    if _read_only(existing.stat()) or not os.access(existing, os.W_OK | os.X_OK):
        raise CommandError(f"{option} {path}: folder {existing} is read-only")
    # Probe: a read-only file system passes the checks above (as root).
    probe = existing / f".parascale-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CommandError(f"{option} {path}: cannot write in {existing} ({exc.strerror})") from None


def check_output_file(option: str, path: Optional[str]) -> Optional[Path]:
    """A file that can be (re)written: not a folder, not read-only, its folder writable."""
    if path is None:
        return None
    if str(path).endswith(os.sep) or (os.altsep and str(path).endswith(os.altsep)):
        raise CommandError(f"{option} {path}: is a folder name; give a file name")
    p = Path(os.path.abspath(path))
    if p.is_dir():
        raise CommandError(f"{option} {path}: is a folder; give a file name")
    if p.exists():
        if not p.is_file():
            raise CommandError(f"{option} {path}: exists and is not a regular file")
        if _read_only(p.stat()):
            raise CommandError(f"{option} {path}: the file is read-only")
    _writable_folder(option, path, p.parent)
    return p


def check_output_folder(option: str, path: Optional[str]) -> Optional[Path]:
    """A folder output (replaced as a whole): not an existing file, not read-only."""
    if path is None:
        return None
    p = Path(os.path.abspath(path))
    if p.exists():
        if not p.is_dir():
            raise CommandError(f"{option} {path}: exists and is not a folder")
        if _read_only(p.stat()):
            raise CommandError(f"{option} {path}: the folder is read-only")
    _writable_folder(option, path, p.parent)
    return p


def check_distinct(paths: dict) -> None:
    """Outputs and inputs that must not be the same file ({option: path}; None skipped)."""
    seen = {}
    for option, path in paths.items():
        if path is None:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise CommandError(f"{option} {path}: the same file as {seen[key]}; choose another")
        seen[key] = option
