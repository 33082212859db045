"""Writers from a Track to the pose files of camera-conditioned video generators
(docs/formats.md), the ParaScale .json (with its reader), and readers for the two
generator formats nobody else reads (MotionCtrl, ReCamMaster).

numpy only: never bpy or mathutils.

Every writer takes a Track (c2w in OpenCV axes, pixel K) and:

- ``frames=N`` resamples the track to N evenly spaced times over its span
  (rotations slerped, centres linear: core.cameras.resample_track); None keeps it.
- ``relative=True`` makes poses relative to the first written frame (frame 0 becomes
  the identity). Defaults per format, documented on each writer: the formats whose
  consumers relativise themselves (CameraCtrl, VideoX-Fun, ReCamMaster, MotionCtrl SVD)
  default to absolute poses so the file stays faithful to the scene.
- writes atomically: a temporary file in the destination folder, then os.replace;
  folder formats are built in a temporary sibling folder and renamed at the end. A
  failure leaves nothing behind (and an existing destination untouched).

Per-format conventions
----------------------
re10k       RealEstate10K .txt. Line 1: URL (may be empty). Then per frame 19 numbers:
            timestamp (integer microseconds), fx/W fy/H cx/W cy/H, 0 0, world-to-camera
            3x4 row-major. OpenCV axes. Absolute by default (CameraCtrl and VideoX-Fun
            make them relative to frame 0 themselves).
motionctrl  JSON list, one list of 12 floats per frame: world-to-camera 3x4 row-major,
            OpenCV axes. Absolute by default (the shipped examples mix both; the SVD
            branch relativises itself).
recammaster JSON {"frame0": {"cam01": "[r r r 0] [r r r 0] [r r r 0] [x y z 1] "}, ...}.
            Unreal Engine row-vector 4x4 (rows 0-2 the camera's X forward, Y right, Z up
            axes; row 3 its position), centimetres, numbers printed like C++ streams
            (%g, 6 significant digits). World mapping: our world (Blender: X right,
            Y forward, Z up) -> Unreal (X forward, Y right, Z up) swaps x and y, so
            the rotation block is proper in Unreal's left-handed world. ReCamMaster
            reads it as c2w[:, [1, 2, 0, 3]], flips column 1 and divides by 100 and
            uses poses relative to frame 0; 81 frames, every 4th used.
nerf        transforms.json: camera-to-world in OpenGL/Blender camera axes (x right,
            y up, z back), fl_x fl_y cx cy w h, camera_angle_x/y. Absolute.
colmap      a folder with cameras.txt (PINHOLE, one camera per distinct K),
            images.txt (world-to-camera, QW QX QY QZ TX TY TZ), points3D.txt (the
            track's points, empty tracks; empty file when it has none). Absolute.
gen3c       a folder with camera.npz (``w2c`` (N,4,4) absolute world-to-camera,
            ``intrinsics`` (N,3,3) pixel K, ``image_size`` [W,H]) and depth.npz
            (``depth`` (N,h,w) planar Z in the same units as the translation, +inf
            background, ``intrinsics`` of that depth grid).
parascale   the ParaScale .json below (SCHEMA_VERSION).
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from . import manifest as M
from . import validate as V
from ..cameras import Track, invert_poses, relative_poses, resample_track
from ..rotations import quat_from_matrix

FORMATS = ("re10k", "motionctrl", "recammaster", "nerf", "colmap", "gen3c", "parascale")
FOLDER_FORMATS = ("colmap", "gen3c")
# What a folder export writes (the bridge script the exporter adds, and the manifest
# every output folder carries, included): checked against the user's files before any work.
COLMAP_FILES = ("cameras.txt", "images.txt", "points3D.txt", "parascale_bridge.py", "manifest.json")
GEN3C_FILES = ("camera.npz", "depth.npz", "parascale_bridge.py", "manifest.json")
# Frame counts the formats' main consumers expect when the caller gives none.
DEFAULT_FRAMES = {"recammaster": 81}
EXTENSIONS = {"re10k": ".txt", "motionctrl": ".json", "recammaster": ".json", "nerf": ".json",
              "colmap": "", "gen3c": "", "parascale": ".json"}

SCHEMA = "parascale.poses"
SCHEMA_VERSION = 1

# OpenCV camera axes <-> OpenGL/Blender camera axes (flip y and z); its own inverse.
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
# Our world (Blender: X right, Y forward, Z up) -> Unreal world (X forward, Y right, Z up).
WORLD_TO_UE = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


available_memory = V.available_memory


class ExportError(ValueError):
    """A track or request that cannot be written (named in the message)."""


# ---------------------------------------------------------------------------
# Atomic writes
#
# Every temporary is a hidden sibling of its destination, named
# ".<name>.parascale-tmp-<pid>-<random>", so a run killed at any point leaves
# only names that the next run recognises (the pid no longer alive) and removes.
# Files get the user's umask, like any tool (mkstemp alone would make them 0600).

TMP_TAG = ".parascale-tmp-"
_LEGACY_TAG = ".tmp-"  # temporaries of earlier versions (".<name>.tmp-<pid>-...")


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}{TMP_TAG}{os.getpid()}-"


def temp_sibling(path, suffix: str = "") -> Path:
    """A fresh temporary name beside `path` (not created), recognised by clean_stale."""
    path = Path(path)
    return path.parent / f"{_tmp_prefix(path)}{os.urandom(4).hex()}{suffix}"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_umask(path, mode: int = 0o666) -> None:
    os.chmod(path, mode & ~_umask())


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def _stale_pid(name: str, dest: str) -> Optional[int]:
    """The pid in a temporary name of `dest` whose process is gone, else None."""
    for tag in (TMP_TAG, _LEGACY_TAG):
        prefix = f".{dest}{tag}"
        if name.startswith(prefix):
            pid = name[len(prefix):].split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                return int(pid)
    return None


def stale_pids(path) -> list:
    """The pids of dead processes whose temporaries of `path` are still beside it (runs
    cut off before they finished), sorted; clean_stale removes them."""
    path = Path(path)
    try:
        names = os.listdir(path.parent if str(path.parent) else ".")
    except OSError:
        return []
    return sorted({pid for pid in (_stale_pid(n, path.name) for n in names) if pid is not None})


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _roll_forward(journal: Path) -> None:
    """Finish the commit a killed run recorded: every temporary still present is moved
    onto its destination, then the journals are removed (the set becomes the new one)."""
    try:
        plan = json.loads(journal.read_text())
        moves, journals = plan["moves"], plan["journals"]
    except (OSError, ValueError, KeyError, TypeError):
        # A journal is written before any move; one that cannot be read was cut short
        # while writing, so no move happened: the temporaries are discarded.
        _remove(journal)
        return
    for tmp, dest in moves:
        if os.path.lexists(tmp):
            os.replace(tmp, dest)
    for j in journals:
        _remove(Path(j))


def clean_stale(path) -> None:
    """Recover and remove what killed runs left beside `path`: a recorded commit is
    finished (rolled forward), an interrupted folder swap is undone (the old folder
    restored), every other temporary of a dead process is deleted."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    stale = [(n, _stale_pid(n, path.name)) for n in names]
    stale = [(folder / n, pid) for n, pid in stale if pid is not None]
    for p, _ in stale:
        if p.name.endswith("-commit.json") and p.exists():
            _roll_forward(p)
    for p, _ in stale:
        if p.name.endswith("-old") and p.is_dir() and not os.path.lexists(path):
            os.rename(p, path)  # killed between the two renames of a swap: the old folder back
    for p, _ in stale:
        if os.path.lexists(p):
            _remove(p)


def scratch_dir(prefix: str) -> str:
    """A private scratch folder in the system temp folder, "<prefix><pid>_<random>";
    those a killed process left (its pid gone) are removed first."""
    root = tempfile.gettempdir()
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            rest = name[len(prefix):] if name.startswith(prefix) else ""
            pid = rest.split("_", 1)[0]
            if pid.isdigit() and "_" in rest and not _pid_alive(int(pid)):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}_", dir=root)


def atomic_write_text(path, text: str) -> Path:
    """Write text to path via a temporary file in the same folder, then os.replace."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj):
    """obj with every non-finite float (NaN, +-inf: not JSON) replaced by null, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def atomic_write_json(path, obj, end: str = "", **kwargs) -> Path:
    """json.dump streamed into the temporary file: the text of a long track is never one
    string (json.dumps with indent keeps every piece of the document until it joins
    them: about 2.5 KB a frame)."""
    def write(fh):
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n", write_through=False)
        json.dump(obj, text, **{"allow_nan": False, **kwargs})  # NaN and Infinity are not JSON
        text.write(end)
        text.flush()
        text.detach()
    return _atomic_write(path, write)


def atomic_write_bytes(path, data: bytes) -> Path:
    return _atomic_write(path, lambda fh: fh.write(data))


def _atomic_write(path, write) -> Path:
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"{path}: folder {folder} does not exist")
    if path.is_dir():
        raise ExportError(f"{path}: is a folder, expected a file name")
    clean_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        _chmod_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the
    system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_in_folder(tmp: Path, path: Path) -> None:
    """Make the complete folder `tmp` appear at `path`, replacing any folder there in one
    step (an exchange), or else in two renames that clean_stale can undo."""
    if not os.path.lexists(path):
        os.rename(tmp, path)
        return
    if not _no_exchange() and _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # now holds the old folder
        return
    old = path.parent / f"{_tmp_prefix(path)}{os.urandom(4).hex()}-old"
    os.rename(path, old)
    os.rename(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def check_replaceable_folder(path, allowed: Optional[Sequence[str]] = None, force: bool = False,
                             force_hint: str = M.FORCE_HINT) -> M.Plan:
    """Refuse, before any work, an existing folder at `path` that ParaScale's manifest
    does not say it wrote (core.formats.manifest.folder_plan); allowed: the names the
    new output writes (the user's files may not clash with them). Returns the plan:
    plan.kept are the user's files that will stay. What killed runs left beside it is
    recovered first (clean_stale), so what is judged is what the user has."""
    clean_stale(path)
    try:
        return M.folder_plan(path, allowed, force=force, force_hint=force_hint)
    except M.OwnershipError as exc:
        raise ExportError(str(exc)) from None


def check_replaceable_files(output, shared: Optional[Mapping[str, bytes]] = None, force: bool = False,
                            force_hint: str = M.FORCE_HINT) -> M.Plan:
    """Refuse, before any work, an existing output file that its manifest beside it
    (<output>.manifest.json) does not say ParaScale wrote as it is
    (core.formats.manifest.file_set_plan). shared: files written beside it that several
    outputs share (the bridge script): plan.kept names those that stay as they are."""
    output = Path(output)
    for p in [output, M.sidecar_of(output)] + [output.parent / n for n in (shared or {})]:
        clean_stale(p)
    try:
        return M.file_set_plan(output, force=force, force_hint=force_hint, shared=shared)
    except M.OwnershipError as exc:
        raise ExportError(str(exc)) from None


def check_replaceable_pair(output, report, force: bool = False, force_hint: str = M.FORCE_HINT) -> M.Plan:
    """Refuse, before any work, an existing `output` its existing `report` (the commit
    record: core.formats.manifest.read_record) does not record as it is, or a report that
    is not ParaScale's. A killed run's commit is finished first (clean_stale)."""
    for p in (output, report):
        clean_stale(p)
    try:
        return M.record_pair_plan(output, report, force, force_hint)
    except M.OwnershipError as exc:
        raise ExportError(str(exc)) from None


def _no_exchange() -> bool:
    """PARASCALE_NO_RENAME_EXCHANGE=1 makes folder swaps take the two-rename path, as on
    systems without renameat2 (macOS, Windows, some file systems): the tests force it."""
    return os.environ.get("PARASCALE_NO_RENAME_EXCHANGE", "") not in ("", "0")


def _carry_over(old: Path, new: Path, names: Sequence[str]) -> None:
    """The user's files (and empty folders, links) in the old folder appear in the new one
    too: hard links (the data is never copied or moved, so a kill at any point loses
    nothing), or copies where the file system has no hard links."""
    for name in names:
        src, dst = old / name, new / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir() and not src.is_symlink():
            dst.mkdir(exist_ok=True)
            continue
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError:
            if src.is_symlink():
                os.symlink(os.readlink(src), dst)
            elif src.is_file():
                shutil.copy2(src, dst)
            else:
                raise ExportError(f"{old / name}: cannot keep this special file in the new output; move it "
                                  "away, or choose another folder") from None


@contextlib.contextmanager
def atomic_folder(path, allowed: Optional[Sequence[str]] = None, *, manifest: Optional[Mapping] = None,
                  force: bool = False, force_hint: str = M.FORCE_HINT):
    """Yield a temporary sibling folder to fill; on success it replaces `path` (swapped in
    whole: an exchange, or two renames that clean_stale undoes); on failure it is removed.

    Ownership (core.formats.manifest): an existing folder is replaced only as far as its
    manifest.json says ParaScale wrote it. ParaScale's files there go; the user's files
    (added, or changed since) stay, hard-linked into the new folder, and are recorded as
    "kept" in its manifest; a folder without a valid manifest that holds anything is
    refused (force=True replaces it whole). allowed: the names the output writes, for the
    refusal before any work (the names actually written are checked again at the end).
    The new folder's manifest.json is `manifest` (what the export records) plus schema,
    version and the size and SHA-256 of every file written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"{path}: folder {parent} does not exist")
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path}: exists and is not a folder")
    clean_stale(path)  # a killed run's swap undone first, so what is judged is what the user has
    check_replaceable_folder(path, allowed, force, force_hint)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), dir=parent))
    try:
        _chmod_umask(tmp, 0o777)
        yield tmp
        written = M.entries_of_folder(tmp)
        plan = check_replaceable_folder(path, [e.name for e in written] + [M.MANIFEST_NAME], force, force_hint)
        doc = M.manifest_document(manifest, written)
        if plan.kept:
            doc["kept"] = [M.printable(n) for n in plan.kept]
        (tmp / M.MANIFEST_NAME).write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        for p in tmp.rglob("*"):
            if p.is_file():
                _chmod_umask(p)
        _carry_over(path, tmp, plan.kept)  # after the chmod: the user's files keep their modes
        swap_in_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class AtomicSet:
    """Several files made to appear together: each is written to its own temporary
    (`tmp(path)`), then `commit()` records the moves in a journal beside every
    destination before making them, so a run killed during the moves is finished by
    the next one (clean_stale rolls it forward): readers after recovery see the old
    set or the new set, never a mix. Until commit nothing at the destinations changes;
    on error (or without commit) the temporaries are removed.

    The moves are made in the order of `paths`: the last is the commit record (a
    manifest or a report holding the others' size and SHA-256, `entry(path)`), so a
    record always describes files already in place; a reader that finds the record
    not matching (the window of the moves) knows a commit is under way or was cut
    short, and the next run finishes it.

        with AtomicSet([blend, report]) as s:
            save(s.tmp(blend)); write(s.tmp(report)); s.commit()
    """

    def __init__(self, paths, suffixes: Optional[Mapping] = None):
        self.paths = [Path(os.path.abspath(p)) for p in paths]
        if len(set(self.paths)) != len(self.paths):
            raise ExportError(f"the outputs must be different files: {', '.join(map(str, paths))}")
        suffixes = {Path(os.path.abspath(k)): v for k, v in (suffixes or {}).items()}
        self._tmp = {p: temp_sibling(p, suffixes.get(p, p.suffix)) for p in self.paths}
        self._done = False

    def __enter__(self):
        for p in self.paths:
            if not p.parent.is_dir():
                raise ExportError(f"{p}: folder {p.parent} does not exist")
            if p.is_dir():
                raise ExportError(f"{p}: is a folder, expected a file name")
            clean_stale(p)
        return self

    def tmp(self, path) -> Path:
        return self._tmp[Path(os.path.abspath(path))]

    def entry(self, path) -> M.Entry:
        """Size and SHA-256 of what was written for `path` (under its final name): for a
        commit record (transfer's report records its .blend)."""
        p = Path(os.path.abspath(path))
        t = self._tmp[p]
        return M.Entry(p.name, t.stat().st_size, M.sha256_of(t))

    def commit(self) -> None:
        for p, t in self._tmp.items():
            if not t.is_file():
                raise ExportError(f"{p}: nothing was written for it")
            _chmod_umask(t)
        journals = [temp_sibling(p, "-commit.json") for p in self.paths]
        plan = json.dumps({"moves": [[str(self._tmp[p]), str(p)] for p in self.paths],
                           "journals": [str(j) for j in journals]})
        for j in journals:
            with open(j, "w") as fh:
                fh.write(plan)
                fh.flush()
                os.fsync(fh.fileno())
        for p in self.paths:
            os.replace(self._tmp[p], p)
        for j in journals:
            _remove(j)
        self._done = True

    def __exit__(self, *exc):
        if not self._done:
            for t in self._tmp.values():
                for name in os.listdir(t.parent):
                    if name.startswith(t.name):  # Blender's own "<tmp>@" too
                        _remove(t.parent / name)
        return False


def _save_npz(path: Path, **arrays) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


# ---------------------------------------------------------------------------
# Resampling and relative poses

def even_times(track: Track, n: int) -> np.ndarray:
    """n evenly spaced times over the track's span."""
    return np.linspace(track.times[0], track.times[-1], int(n))


def prepare(track: Track, frames: Optional[int] = None, relative: bool = False) -> Track:
    """The track resampled to `frames` evenly spaced times (None: as is), with poses
    made relative to its first frame when `relative`. Curves in meta["curves"] are
    resampled linearly with it."""
    if not isinstance(track, Track):
        raise ExportError(f"expected a Track, got {type(track).__name__}")
    where = f" ({track.source})" if track.source else ""
    if len(track) < 2:
        raise ExportError(f"track{where} has {len(track)} frame(s); exporting a move needs at least 2")
    out = track
    if frames is not None:
        frames = int(frames)
        if frames < 2:
            raise ExportError(f"frame count must be at least 2, got {frames}")
        if frames != len(track) or not np.allclose(even_times(track, frames), track.times):
            new_times = even_times(track, frames)
            out = resample_track(track, new_times)
            curves = track.meta.get("curves") or {}
            if curves:
                meta = dict(out.meta)
                meta["curves"] = {k: (None if v is None else
                                      np.interp(new_times, track.times, np.asarray(v, float)).tolist())
                                  for k, v in curves.items()}
                out = replace(out, meta=meta)
    if relative:
        out = replace(out, c2w=relative_poses(out.c2w, 0))
    return out


def check_output(path, track: Track, label: str = "") -> Track:
    """What a writer is about to write is what the readers accept: camera-to-world and
    world-to-camera poses finite and within +-MAX_MAGNITUDE, K valid with a field of view
    of 1 to 179 degrees, sides 1..MAX_IMAGE_SIDE, points finite and bounded. Else
    ExportError naming the file and the frame; nothing is written."""
    where = [f"{label}frame {i}" for i in range(len(track))]
    try:
        V.check_image_size(path, track.width, track.height, f"{label}image size")
        V.check_poses(path, track.c2w, where, "the camera-to-world pose to write")
        V.check_finite(path, invert_poses(track.c2w)[:, :3, 3], where, "the world-to-camera translation to write")
        K = V.check_intrinsics(path, track.K, where)
        V.check_fov(path, K, track.width, track.height, where)
        if track.points is not None and len(track.points):
            V.check_points(path, track.points, lambda i: f"{label}point {i}", "the 3D points to write")
    except V.TrackFormatError as exc:
        raise ExportError(f"{exc}; nothing written") from None
    return track


def check_depths(path, depths: np.ndarray) -> None:
    """Depth to write: planar Z, positive, finite within MAX_MAGNITUDE or +inf (no geometry)."""
    d = np.asarray(depths)
    bad = np.isnan(d) | (d <= 0) | (np.isfinite(d) & (d > V.MAX_MAGNITUDE)) | np.isneginf(d)
    if bad.any():
        i = int(np.argmax(bad.reshape(len(d), -1).any(axis=1)))
        v = d[i][bad[i]].ravel()[0]
        raise ExportError(f"{path}: depth of frame {i} holds {v:g}; depth must be positive, at most "
                          f"{V.MAX_MAGNITUDE:g} or +inf (no geometry); nothing written")


def _w2c(track: Track) -> np.ndarray:
    return invert_poses(track.c2w)


def _f(x: float) -> str:
    """Shortest repr that reads back exactly; integral values without '.0' noise kept."""
    x = float(x)
    if x == 0.0:
        return "0.0"
    return repr(x)


# ---------------------------------------------------------------------------
# RealEstate10K

# The pose-file size CameraCtrl's and VideoX-Fun's readers assume (original_pose_width/height):
# they correct the focal length for the sample's aspect as if the file were made at 16:9.
ASSUMED_POSE_SIZE = (1280, 720)


def write_re10k(track: Track, path, *, frames: Optional[int] = None, relative: bool = False,
                url: Optional[str] = None, timestamps_us: Optional[Sequence[int]] = None,
                pose_size: Optional[Sequence[int]] = None) -> Path:
    """RealEstate10K .txt (see module doc). Timestamps are the frame times in integer
    microseconds unless `timestamps_us` is given (some published files repeat one).
    pose_size (W, H): the size the reader assumes the file was made at (ASSUMED_POSE_SIZE
    for CameraCtrl and VideoX-Fun); fx/W (or fy/H) is written pre-divided so that the
    reader's aspect correction at the track's size gives back K exactly (at the same
    aspect nothing changes)."""
    t = check_output(path, prepare(track, frames, relative))
    n = len(t)
    kept = track.meta.get("timestamps_us")
    if (timestamps_us is None and kept is not None and len(kept) == n == len(track)
            and np.array_equal(t.times, track.times)):
        timestamps_us = kept  # the file's own stamps, as read (readers.read_re10k keeps them)
    if timestamps_us is None:
        ts = [int(round(x * 1e6)) for x in t.times]
    else:
        ts = [int(x) for x in timestamps_us]
        if len(ts) != n:
            raise ExportError(f"{path}: {len(ts)} timestamps for {n} frames")
    if url is None:
        url = str(t.meta.get("url") or "")
    w2c = _w2c(t)
    W, H = float(t.width), float(t.height)
    fx_div, fy_div = W, H
    if pose_size is not None:
        pose_ratio = float(pose_size[0]) / float(pose_size[1])
        if pose_ratio > W / H:  # the reader widens fx by (H * pose_ratio) / W
            fx_div = H * pose_ratio
        else:  # the reader widens fy by (W / pose_ratio) / H
            fy_div = W / pose_ratio
    lines = [url.strip()]
    for i in range(n):
        K = t.K[i]
        nums = [K[0, 0] / fx_div, K[1, 1] / fy_div, K[0, 2] / W, K[1, 2] / H]
        row = [str(ts[i])] + [_f(v) for v in nums] + ["0", "0"] + [_f(v) for v in w2c[i, :3, :4].ravel()]
        lines.append(" ".join(row))
    return atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------
# MotionCtrl

def motionctrl_matrix(track: Track) -> np.ndarray:
    """(N, 12): world-to-camera 3x4, row-major, per frame."""
    return _w2c(track)[:, :3, :4].reshape(len(track), 12)


def write_motionctrl(track: Track, path, *, frames: Optional[int] = None, relative: bool = False) -> Path:
    """MotionCtrl camera-pose .json (see module doc)."""
    t = check_output(path, prepare(track, frames, relative))
    rows = [[float(v) for v in r] for r in motionctrl_matrix(t)]
    return atomic_write_json(path, rows, indent=4, end="\n")


def read_motionctrl(path, *, K=None, width: int = 256, height: int = 256, fps: float = 8.0) -> Track:
    """A MotionCtrl pose .json as a Track. The file holds no intrinsics or times: K
    defaults to a 60 degree horizontal field of view at width x height, times to
    index / fps. Bad input raises TrackFormatError naming the file and frame."""
    path = Path(path)
    expected = "a MotionCtrl pose list: one list of 12 numbers (world-to-camera 3x4) per frame"
    with V.guard(path, "a MotionCtrl pose .json"):
        data = V.load_json(path, expected)
        if not isinstance(data, list) or not data:
            raise V.TrackFormatError(f"{path}: expected {expected}, got {V._short(data)}")
        n = V.check_frame_count(path, len(data))
        where = [f"frame {i}" for i in range(n)]
        arr = np.stack([V.json_matrix(path, where[i], row, (12,), "the pose").reshape(12)
                        for i, row in enumerate(data)])
        w2c = V.check_poses(path, arr.reshape(-1, 3, 4), where, "the world-to-camera pose")
        width, height = V.check_image_size(path, width, height, "(image size given)")
        if not (math.isfinite(fps) and fps > 0):
            raise V.TrackFormatError(f"{path}: fps must be positive, got {fps}")
        if K is None:
            f = width / 2 / math.tan(math.radians(30))
            K = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
        K = V.check_intrinsics(path, K, "(K given)", n=n)
        V.check_fov(path, K, width, height, "(K given)")
        c2w = np.linalg.inv(w2c)  # general inverse: the files carry float32 rounding
        try:
            return Track(c2w=c2w, K=K, width=width, height=height, times=np.arange(n) / fps,
                         source=str(path), meta={"format": "motionctrl"})
        except ValueError as exc:
            raise V.TrackFormatError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------
# ReCamMaster (Unreal Engine)

def _ue_rows(c2w_cv: np.ndarray, unit_scale: float) -> np.ndarray:
    """Unreal row-vector 4x4 (N,4,4) from OpenCV c2w in our world."""
    R = c2w_cv[:, :3, :3]
    c = c2w_cv[:, :3, 3]
    fwd = R[:, :, 2] @ WORLD_TO_UE.T
    right = R[:, :, 0] @ WORLD_TO_UE.T
    up = -R[:, :, 1] @ WORLD_TO_UE.T
    pos = (c @ WORLD_TO_UE.T) * (100.0 * unit_scale)
    M = np.zeros((len(c2w_cv), 4, 4))
    M[:, 0, :3], M[:, 1, :3], M[:, 2, :3], M[:, 3, :3] = fwd, right, up, pos
    M[:, 3, 3] = 1.0
    return M


def _ue_string(M: np.ndarray, precision: int) -> str:
    return "".join("[" + " ".join(f"{v:.{precision}g}" for v in row) + "] " for row in M)


def write_recammaster(track: Union[Track, Mapping[str, Track]], path, *, frames: Optional[int] = None,
                      relative: bool = False, unit_scale: float = 1.0, precision: int = 6) -> Path:
    """ReCamMaster camera_extrinsics.json (see module doc). `track` is one Track
    (written as "cam01") or a mapping camera key -> Track of equal length.
    unit_scale: metres per track unit (the file is in centimetres). precision:
    significant digits (6 as in the published files; 17 for a lossless file)."""
    tracks = {"cam01": track} if isinstance(track, Track) else dict(track)
    if not tracks:
        raise ExportError(f"{path}: no cameras to write")
    prepared = {k: check_output(path, prepare(t, frames, relative), f"{k} ") for k, t in tracks.items()}
    lengths = {len(t) for t in prepared.values()}
    if len(lengths) != 1:
        raise ExportError(f"{path}: cameras have different frame counts {sorted(lengths)}")
    n = lengths.pop()
    mats = {k: _ue_rows(t.c2w, unit_scale) for k, t in prepared.items()}
    out = {f"frame{i}": {k: _ue_string(M[i], precision) for k, M in mats.items()} for i in range(n)}
    return atomic_write_json(path, out, indent=4)


def _json_kind(v) -> str:
    return {list: "list", dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number")


def parse_ue_matrix(text: str) -> np.ndarray:
    """'[a b c d] [..] [..] [..] ' -> (4, 4) as printed (row vectors)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string '[a b c d] [...] [...] [...]', got {type(text).__name__}")
    rows = [r.replace("[", " ").split() for r in text.strip().split("]") if r.strip()]
    if len(rows) != 4 or any(len(r) != 4 for r in rows):
        raise ValueError(f"expected 4 rows of 4 numbers, got rows of {[len(r) for r in rows]}")
    try:
        return np.array([[float(v) for v in r] for r in rows])
    except ValueError:
        raise ValueError("expected 4 rows of 4 numbers, found a word that is not a number") from None


def read_recammaster(path, cam: str = "cam01", *, unit_scale: float = 1.0, fps: float = 15.0,
                     width: int = 1280, height: int = 1280, lens_mm: float = 24.0,
                     sensor_mm: float = 23.76) -> Track:
    """One camera of a ReCamMaster camera_extrinsics.json as a Track (our world,
    OpenCV axes, track units = centimetres / 100 / unit_scale). The file holds no
    intrinsics: K comes from lens_mm on the MultiCamVideo 23.76 mm square sensor at
    width x height; times are index / fps (the dataset renders at 15 fps)."""
    path = Path(path)
    if not isinstance(cam, str):  # the file's keys are strings: 1 would never match "1"
        raise TypeError(f"the ReCamMaster camera key must be a string like 'cam01', got {cam!r}")
    expected = 'a ReCamMaster camera_extrinsics.json: {"frame0": {"cam01": "[..] [..] [..] [..]"}, ...}'
    with V.guard(path, "a ReCamMaster camera_extrinsics.json"):
        data = V.load_json(path, expected)
        if not isinstance(data, dict):
            raise V.TrackFormatError(f"{path}: expected {expected}, got {V._short(data)}")
        numbered = {}
        for k in data:
            m = re.fullmatch(r"frame(\d{1,9})", k)
            if m:
                if int(m.group(1)) in numbered:
                    raise V.TrackFormatError(f"{path}: {k} and {numbered[int(m.group(1))]} are the same frame")
                numbered[int(m.group(1))] = k
        keys = [numbered[i] for i in sorted(numbered)]
        if not keys:
            raise V.TrackFormatError(f"{path}: no 'frameN' keys (expected {expected})")
        n = V.check_frame_count(path, len(keys))
        Ms = []
        for k in keys:
            entry = data[k]
            if not isinstance(entry, dict):
                raise V.TrackFormatError(f"{path} {k}: expected an object camera -> matrix "
                                         f"({{\"{cam}\": \"[..] [..] [..] [..]\"}}), got a {_json_kind(entry)} "
                                         f"{V._short(entry)}")
            if cam not in entry:
                raise V.TrackFormatError(f"{path} {k}: no camera {cam!r} (has {sorted(entry)[:10]})")
            try:
                Ms.append(parse_ue_matrix(entry[cam]))
            except ValueError as exc:
                raise V.TrackFormatError(f"{path} {k}/{cam}: {exc}") from None
        M = np.stack(Ms)
        V.check_finite(path, M, [f"{k}/{cam}" for k in keys], "the matrix")
        for label, v in (("unit_scale", unit_scale), ("lens_mm", lens_mm), ("sensor_mm", sensor_mm),
                         ("fps", fps)):
            if not (math.isfinite(v) and v > 0):
                raise V.TrackFormatError(f"{path}: {label} must be a positive number, got {v}")
        width, height = V.check_image_size(path, width, height, "(image size given)")
        fwd, right, up, pos = M[:, 0, :3], M[:, 1, :3], M[:, 2, :3], M[:, 3, :3]
        back = WORLD_TO_UE.T  # inverse of the swap
        R = np.stack([right @ back.T, -up @ back.T, fwd @ back.T], axis=-1)
        V.check_rotations(path, R, [f"{k}/{cam}" for k in keys])
        c = (pos @ back.T) / (100.0 * unit_scale)
        # Orthonormalise the 6-digit rotations (polar decomposition) so the Track holds.
        U, _, Vt = np.linalg.svd(R)
        R = U @ Vt
        c2w = np.tile(np.eye(4), (n, 1, 1))
        c2w[:, :3, :3], c2w[:, :3, 3] = R, c
        c2w = V.check_poses(path, c2w, [f"{k}/{cam}" for k in keys], "the camera pose")
        f = lens_mm / sensor_mm * width
        K = V.check_intrinsics(path, [[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]], "(lens)", n=n)
        V.check_fov(path, K, width, height, "(lens_mm, sensor_mm)")
        try:
            return Track(c2w=c2w, K=K, width=width, height=height, times=np.arange(n) / fps,
                         names=keys, source=f"{path}:{cam}", meta={"format": "recammaster", "cam": cam})
        except ValueError as exc:
            raise V.TrackFormatError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------
# NeRF transforms.json

def write_nerf(track: Track, path, *, frames: Optional[int] = None, relative: bool = False) -> Path:
    """NeRF / instant-ngp transforms.json (see module doc)."""
    t = check_output(path, prepare(track, frames, relative))
    K0 = t.K[0]
    W, H = int(t.width), int(t.height)
    varying = not np.allclose(t.K, K0[None])
    out = {
        "camera_angle_x": 2 * math.atan(W / (2 * K0[0, 0])),
        "camera_angle_y": 2 * math.atan(H / (2 * K0[1, 1])),
        "fl_x": float(K0[0, 0]), "fl_y": float(K0[1, 1]),
        "cx": float(K0[0, 2]), "cy": float(K0[1, 2]),
        "w": W, "h": H,
        "frames": [],
    }
    c2w_gl = t.c2w @ CV_TO_GL
    for i in range(len(t)):
        fr = {"file_path": str(t.names[i]), "time": float(t.times[i]),
              "transform_matrix": c2w_gl[i].tolist()}
        if varying:
            fr.update(fl_x=float(t.K[i, 0, 0]), fl_y=float(t.K[i, 1, 1]),
                      cx=float(t.K[i, 0, 2]), cy=float(t.K[i, 1, 2]), w=W, h=H)
        out["frames"].append(fr)
    return atomic_write_json(path, out, indent=2)


# ---------------------------------------------------------------------------
# COLMAP text model

def write_colmap(track: Track, path, *, frames: Optional[int] = None, relative: bool = False,
                 extra_files: Optional[Mapping[str, bytes]] = None, manifest: Optional[Mapping] = None,
                 force: bool = False) -> Path:
    """COLMAP text model folder (see module doc). extra_files: name -> bytes written
    into the folder with the model (it appears as a whole); manifest: what the export
    records in its manifest.json. An existing folder is replaced only as far as its
    manifest says ParaScale wrote it (atomic_folder); force: replace it whole."""
    t = check_output(path, prepare(track, frames, relative))
    cams, cam_of = _distinct_intrinsics(t.K)
    w2c = _w2c(t)
    q = quat_from_matrix(w2c[:, :3, :3])
    cameras = ["# Camera list with one line of data per camera:",
               "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
               f"# Number of cameras: {len(cams)}"]
    for j, (fx, fy, cx, cy) in enumerate(cams):
        cameras.append(f"{j + 1} PINHOLE {int(t.width)} {int(t.height)} {_f(fx)} {_f(fy)} {_f(cx)} {_f(cy)}")
    images = ["# Image list with two lines of data per image:",
              "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
              "#   POINTS2D[] as (X, Y, POINT3D_ID)",
              f"# Number of images: {len(t)}"]
    for i in range(len(t)):
        name = str(t.names[i]).replace(" ", "_") or f"frame_{i:05d}"
        nums = " ".join(_f(v) for v in list(q[i]) + list(w2c[i, :3, 3]))
        images.append(f"{i + 1} {nums} {cam_of[i]} {name}")
        images.append("")
    points = ["# 3D point list with one line of data per point:",
              "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)"]
    if t.points is not None and len(t.points):
        pts = np.asarray(t.points, float)
        if relative:
            pts = pts @ invert_poses(track.c2w[0])[:3, :3].T + invert_poses(track.c2w[0])[:3, 3]
        points.append(f"# Number of points: {len(pts)}")
        for j, p in enumerate(pts):
            points.append(f"{j + 1} {_f(p[0])} {_f(p[1])} {_f(p[2])} 128 128 128 0")
    with atomic_folder(path, COLMAP_FILES + tuple(extra_files or ()), manifest=manifest, force=force) as tmp:
        (tmp / "cameras.txt").write_text("\n".join(cameras) + "\n")
        (tmp / "images.txt").write_text("\n".join(images) + "\n")
        (tmp / "points3D.txt").write_text("\n".join(points) + "\n")
        _write_extra(tmp, extra_files)
    return Path(path)


def _distinct_intrinsics(K: np.ndarray) -> tuple[list, list]:
    """COLMAP cameras: the distinct (fx, fy, cx, cy) in order of first use, and the
    1-based camera of every frame. One hash lookup per frame (a zoom has one camera
    per frame: comparing against every earlier camera was quadratic)."""
    keys = np.stack([K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2]], axis=1)
    # equal within 1e-12 (pixels) counts as one camera: the values rounded to that grid
    rounded = np.round(keys, 12)
    cams, index, cam_of = [], {}, []
    for row, key in zip(keys, map(tuple, rounded.tolist())):
        j = index.get(key)
        if j is None:
            cams.append(tuple(row.tolist()))
            j = index[key] = len(cams)
        cam_of.append(j)
    return cams, cam_of


def _write_extra(folder: Path, extra_files) -> None:
    for name, data in (extra_files or {}).items():
        (folder / name).write_bytes(data)


# ---------------------------------------------------------------------------
# GEN3C-style folder

def write_gen3c(track: Track, path, *, frames: Optional[int] = None, relative: bool = False,
                depths: Optional[np.ndarray] = None, depth_K: Optional[np.ndarray] = None,
                extra_files: Optional[Mapping[str, bytes]] = None, manifest: Optional[Mapping] = None,
                force: bool = False) -> Path:
    """GEN3C-style folder (see module doc); extra_files, manifest, force as write_colmap. Depth comes from `depths` (N, h, w) for
    the written frames, or else track.depths; one of them is required. depth_K: the
    pixel K of the depth grid, (3,3) or (N,3,3); by default track K scaled to h x w."""
    t = check_output(path, prepare(track, frames, relative))
    n = len(t)
    if depths is None:
        depths = t.depths
    if depths is None:
        raise ExportError(f"{path}: GEN3C export needs the target's depth at every exported frame "
                          "(track has none)")
    depths = np.asarray(depths, np.float32)
    if depths.ndim != 3 or len(depths) != n:
        raise ExportError(f"{path}: need depth maps (N={n}, h, w), got {depths.shape}")
    check_depths(path, depths)
    h, w = depths.shape[1:]
    if depth_K is None:
        S = np.diag([w / t.width, h / t.height, 1.0])
        depth_K = S[None] @ t.K
    depth_K = np.broadcast_to(np.asarray(depth_K, float), (n, 3, 3))
    with atomic_folder(path, GEN3C_FILES + tuple(extra_files or ()), manifest=manifest, force=force) as tmp:
        _save_npz(tmp / "camera.npz", w2c=_w2c(t), intrinsics=t.K,
                  image_size=np.array([t.width, t.height]), times=t.times)
        _save_npz(tmp / "depth.npz", depth=depths, intrinsics=np.array(depth_K))
        _write_extra(tmp, extra_files)
    return Path(path)


# ---------------------------------------------------------------------------
# ParaScale .json

CURVE_NAMES = ("pi_ref", "pi_target", "scale")


def _clean(values) -> Optional[list]:
    if values is None:
        return None
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, float).ravel()]


def parascale_document(track: Track) -> dict:
    """The ParaScale .json document (schema "parascale.poses", version 1) of a track.

    {
      "schema": "parascale.poses", "version": 1,
      "convention": {...},                 # fixed strings, for humans
      "image_size": {"width": W, "height": H},
      "fps": float | null,                 # frames per second of the source scene
      "unit_scale": float,                 # metres per translation unit (Blender scale_length)
      "estimator": str | null,             # Pi estimator: mean | harmonic | flow | null
      "reference": {...} | null,           # provenance: {"source": path, "format": ..., ...}
      "curves": {"pi_ref": [N]|null, "pi_target": [N]|null, "scale": [N]|null},
                                           # per frame (value at frame t = step t-1 -> t;
                                           # frame 0 is 0 or null); null entries = not finite
      "frames": [{"index": i, "time": s, "name": str,
                  "c2w": 4x4 row-major camera-to-world, OpenCV axes,
                  "K": 3x3 pixel intrinsics}, ...],
      "meta": {...}                        # anything else (JSON-safe)
    }
    """
    meta = dict(track.meta or {})
    curves = meta.pop("curves", None) or {}
    doc = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "convention": {
            "pose": "camera-to-world 4x4, row-major",
            "axes": "OpenCV camera axes: x right, y down, z forward",
            "intrinsics": "pixels at image_size; pixel (0,0) is the top-left corner, centres at +0.5",
            "translation": "scene units; metres = value * unit_scale",
        },
        "image_size": {"width": int(track.width), "height": int(track.height)},
        "fps": None if meta.get("fps") is None else float(meta.pop("fps")),
        "unit_scale": float(meta.pop("unit_scale", 1.0)),
        "estimator": meta.pop("estimator", None),
        "reference": meta.pop("reference", None),
        "curves": {k: _clean(curves.get(k)) for k in CURVE_NAMES},
        "frames": [
            {"index": i, "time": float(track.times[i]), "name": str(track.names[i]),
             "c2w": track.c2w[i].tolist(), "K": track.K[i].tolist()}
            for i in range(len(track))
        ],
    }
    meta.pop("fps", None)
    for k, v in curves.items():
        if k not in CURVE_NAMES:
            doc["curves"][k] = _clean(v)
    for k, v in doc["curves"].items():
        if v is not None and len(v) != len(track):
            raise ExportError(f"curve {k!r} has {len(v)} values for {len(track)} frames")
    safe = {}
    for k, v in meta.items():
        try:
            json.dumps(v)
            safe[k] = v
        except TypeError:
            continue
    doc["meta"] = safe
    return doc


def write_parascale(track: Track, path, *, frames: Optional[int] = None, relative: bool = False) -> Path:
    """The ParaScale .json (see parascale_document). Absolute poses by default."""
    t = check_output(path, prepare(track, frames, relative))
    return atomic_write_json(path, parascale_document(t), indent=1, allow_nan=False, end="\n")


def read_parascale(path) -> Track:
    """A ParaScale .json back into a Track. meta holds fps, unit_scale, estimator,
    reference, curves (name -> np.ndarray with NaN for null, or None) and the rest."""
    path = Path(path)
    TFE = V.TrackFormatError
    with V.guard(path, "a ParaScale .json"):
        doc = V.load_json(path, f"a ParaScale pose file (schema {SCHEMA!r})")
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise TFE(f"{path}: not a ParaScale pose file (schema {SCHEMA!r} missing)")
        version = doc.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
            raise TFE(f"{path}: unsupported ParaScale schema version {V._short(version)} "
                      f"(this reader knows 1 to {SCHEMA_VERSION})")
        frames = doc.get("frames")
        if not isinstance(frames, list) or not frames:
            raise TFE(f"{path}: malformed ParaScale pose file (\"frames\" must be a non-empty list)")
        n = V.check_frame_count(path, len(frames))
        where = [f"frames[{i}]" for i in range(n)]
        for i, f in enumerate(frames):
            if not isinstance(f, dict) or not {"c2w", "K", "time"} <= set(f):
                raise TFE(f"{path} {where[i]}: malformed ParaScale pose file (expected an object with "
                          "\"c2w\", \"K\", \"time\")")
        c2w = V.check_poses(path, np.stack([V.json_matrix(path, where[i], f["c2w"], (4, 4), "c2w")
                                            for i, f in enumerate(frames)]), where, "c2w")
        K = V.check_intrinsics(path, np.stack([V.json_matrix(path, where[i], f["K"], (3, 3), "K")
                                               for i, f in enumerate(frames)]), where)
        times = V.check_times(path, [V.json_number(path, where[i], f["time"], "time")
                                     for i, f in enumerate(frames)], where)
        names = [str(f.get("name", i))[:1000] for i, f in enumerate(frames)]
        size = doc.get("image_size")
        if not isinstance(size, dict) or not {"width", "height"} <= set(size):
            raise TFE(f"{path}: malformed ParaScale pose file (\"image_size\" must be "
                      "{\"width\": W, \"height\": H})")
        W, H = V.check_image_size(path, size["width"], size["height"], "image_size")
        V.check_fov(path, K, W, H, where)
        unit = doc.get("unit_scale", 1.0)
        if unit is not None and not (V.json_number(path, "unit_scale", unit, "unit_scale") > 0):
            raise TFE(f"{path} unit_scale: must be positive (metres per scene unit), got {unit}")
        fps = doc.get("fps")
        if fps is not None and not V.json_number(path, "fps", fps, "fps") > 0:
            raise TFE(f"{path} fps: must be positive, got {fps}")
        raw_curves = doc.get("curves") or {}
        if not isinstance(raw_curves, dict):
            raise TFE(f"{path} curves: expected an object name -> list or null, got {V._short(raw_curves)}")
        curves = {}
        for k, v in raw_curves.items():
            if v is not None and (not isinstance(v, list) or len(v) != n or not all(
                    x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in v)):
                raise TFE(f"{path} curves.{k}: expected null or {n} numbers (null where not finite)")
            curves[k] = None if v is None else np.array([np.nan if x is None else float(x) for x in v], float)
        if not isinstance(doc.get("meta") or {}, dict):
            raise TFE(f"{path} meta: expected an object, got {V._short(doc.get('meta'))}")
    meta = dict(doc.get("meta") or {})
    meta.update(fps=doc.get("fps"), unit_scale=doc.get("unit_scale", 1.0),
                estimator=doc.get("estimator"), reference=doc.get("reference"), curves=curves,
                format="parascale", schema_version=version)
    try:
        return Track(c2w=c2w, K=K, width=W, height=H, times=times, names=names,
                     source=str(path), meta=meta)
    except ValueError as exc:
        raise V.TrackFormatError(f"{path}: {exc}") from None


# ---------------------------------------------------------------------------
# Dispatcher

WRITERS = {"re10k": write_re10k, "motionctrl": write_motionctrl, "recammaster": write_recammaster,
           "nerf": write_nerf, "colmap": write_colmap, "gen3c": write_gen3c,
           "parascale": write_parascale}


def write_track(track: Track, fmt: str, path, *, frames: Optional[int] = None, **kwargs) -> Path:
    """Write a track in one of FORMATS. frames=None uses the format's default frame
    count (DEFAULT_FRAMES, e.g. 81 for recammaster) or else keeps every frame."""
    if fmt not in WRITERS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if frames is None:
        frames = DEFAULT_FRAMES.get(fmt)
    return WRITERS[fmt](track, path, frames=frames, **kwargs)
