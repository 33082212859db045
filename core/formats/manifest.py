"""What ParaScale owns on disk: the ownership manifest of its outputs, validated strictly as
data, and the decision of what an export may replace.

Every output ParaScale writes carries a manifest: ``manifest.json`` inside an output folder
(COLMAP, GEN3C, the bridge's folder, a tracking folder), ``<name>.manifest.json`` beside an
output file (the set: the file, and the bridge script beside it). Besides what the export
records (format, gauge, ...) it holds

    "schema": "parascale.outputs", "version": 1,
    "files": [{"name": "cameras.txt", "size": 1234, "sha256": "<64 hex digits>"}, ...]

the files ParaScale wrote there, by relative name (folder) or plain name (beside a file).
The manifest never lists itself.

An existing output is replaced only as far as its manifest says ParaScale wrote it:

- a listed file whose size and SHA-256 still match is ParaScale's and may be replaced;
- anything else (a file the user added, a listed file the user changed, a symbolic link,
  an empty folder) is the user's: it stays, and the export says so; an export that would
  have to overwrite one of them is refused;
- a folder holding anything and no valid manifest of ours is refused, with the reason
  and the way out: another folder, or --force to replace it knowingly.

Validation is strict and never raises anything but ManifestError (bounded size, nesting and
entry count; every name relative, inside the folder, unique; sizes whole numbers; hashes
64 lowercase hex digits): a manifest of the wrong shape is no manifest, never a list of
names to delete. The bridge (bridge/parascale_bridge.py) carries a copy of these rules.
"""
from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from . import validate as V

SCHEMA = "parascale.outputs"
VERSION = 1
MANIFEST_NAME = "manifest.json"
SIDECAR_SUFFIX = ".manifest.json"
# A manifest lists files, not data: 16 MiB holds ~100,000 entries with room to spare.
MAX_MANIFEST_BYTES = 16 << 20
MAX_ENTRIES = 100_000
MAX_NAME_CHARS = 1024
MAX_SIZE = 1 << 53  # whole bytes that a JSON number holds exactly
# Entries an existing output folder may hold before it is refused without being read
# through (hashing a million files to decide is work nobody asked for).
MAX_FOLDER_ENTRIES = 100_000
_HEX64 = re.compile(r"[0-9a-f]{64}")
FORCE_HINT = "--force"


class ManifestError(ValueError):
    """A manifest that is not a valid ParaScale manifest (the reason in the message)."""


class OwnershipError(ValueError):
    """An existing output ParaScale would have to replace but did not (provably) write."""


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    sha256: str

    def as_dict(self) -> dict:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


# ---------------------------------------------------------------------------
# hashing

def sha256_of(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry_of(root, name: str) -> Entry:
    p = Path(root) / name
    return Entry(name, p.stat().st_size, sha256_of(p))


def entries_of_folder(folder, exclude: Iterable[str] = ()) -> list:
    """An Entry for every regular file under folder (relative POSIX names, sorted),
    except `exclude` and the manifest itself."""
    folder = Path(folder)
    skip = set(exclude) | {MANIFEST_NAME}
    out = []
    for name, kind in _walk(folder):
        if kind == "file" and name not in skip:
            out.append(entry_of(folder, name))
    return sorted(out, key=lambda e: e.name)


def manifest_document(meta: Optional[dict], entries: Iterable[Entry]) -> dict:
    """The manifest: `meta` (what the export records) with schema, version and files."""
    doc = {"schema": SCHEMA, "version": VERSION}
    doc.update({k: v for k, v in (meta or {}).items() if k not in ("schema", "version", "files")})
    doc["files"] = [e.as_dict() for e in entries]
    return doc


# ---------------------------------------------------------------------------
# strict validation

def _name_problem(name, flat: bool) -> Optional[str]:
    if not isinstance(name, str):
        return f"a name must be a string, got {V._short(name)}"
    if not name or len(name) > MAX_NAME_CHARS:
        return f"a name must have 1 to {MAX_NAME_CHARS} characters, got {len(name)}"
    if any(ord(c) < 32 or c in "\\:" for c in name):
        return f"name {name[:80]!r} holds a control character, a backslash or a colon"
    if name.startswith("/"):
        return f"name {name[:80]!r} is absolute (expected a name inside the folder)"
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return f"name {name[:80]!r} is not a plain relative name inside the folder"
    if flat and len(parts) > 1:
        return f"name {name[:80]!r} is not a file beside the manifest"
    return None


def validate_document(doc, flat: bool = False, itself: str = MANIFEST_NAME) -> dict:
    """The entries (name -> Entry) of a parsed manifest, or ManifestError saying what
    is wrong. flat: names of files beside the manifest (no folders)."""
    if not isinstance(doc, dict):
        raise ManifestError(f"expected a JSON object, got {V._short(doc)}")
    if doc.get("schema") != SCHEMA:
        raise ManifestError(f"no \"schema\": \"{SCHEMA}\" (written by an earlier version, or not by ParaScale)")
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise ManifestError(f"unsupported version {V._short(version)} (this version reads 1 to {VERSION})")
    files = doc.get("files")
    if not isinstance(files, list):
        raise ManifestError(f"\"files\" must be a list of {{name, size, sha256}}, got {V._short(files)}")
    if len(files) > MAX_ENTRIES:
        raise ManifestError(f"\"files\" lists {len(files)} entries, more than {MAX_ENTRIES}")
    out = {}
    for i, e in enumerate(files):
        if not isinstance(e, dict) or set(e) != {"name", "size", "sha256"}:
            raise ManifestError(f"files[{i}] must be an object with exactly name, size and sha256, got "
                                f"{V._short(e)}")
        problem = _name_problem(e["name"], flat)
        if problem:
            raise ManifestError(f"files[{i}]: {problem}")
        size, digest = e["size"], e["sha256"]
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
            raise ManifestError(f"files[{i}]: size must be a whole number of bytes, got {V._short(size)}")
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ManifestError(f"files[{i}]: sha256 must be 64 lowercase hex digits, got {V._short(digest)}")
        if e["name"] == itself:
            raise ManifestError(f"files[{i}]: a manifest does not list itself")
        if e["name"] in out:
            raise ManifestError(f"files[{i}]: {e['name'][:80]!r} is listed twice")
        out[e["name"]] = Entry(e["name"], size, digest)
    return out


def read_manifest(path, flat: bool = False) -> dict:
    """Entries of the manifest file at `path` (name -> Entry); ManifestError with the
    reason when it is missing, unreadable or not a valid ParaScale manifest."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ManifestError("no manifest") from None
    except OSError as exc:
        raise ManifestError(f"cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError("it is not a regular file")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{st.st_size} bytes, more than {MAX_MANIFEST_BYTES} for a list of files")
    try:
        with V.guard(path, "a ParaScale manifest", also=(OSError,)):
            doc = V.load_json(path, "a ParaScale manifest")
    except V.TrackFormatError as exc:
        raise ManifestError(str(exc).replace(f"{path}: ", "", 1).replace(f"{path} ", "", 1)) from None
    return validate_document(doc, flat=flat, itself=path.name)


# ---------------------------------------------------------------------------
# ownership

def _walk(folder: Path):
    """(relative POSIX name, kind) of everything under folder, never following links:
    kind is "file", "link", "other" (sockets, devices...), or "dir" for an empty folder.
    Stops with OwnershipError past MAX_FOLDER_ENTRIES."""
    count = 0
    stack = [("", folder)]
    while stack:
        rel, d = stack.pop()
        items = []
        with os.scandir(d) as it:
            for e in it:
                count += 1
                if count > MAX_FOLDER_ENTRIES:
                    raise OwnershipError(f"{folder}: holds more than {MAX_FOLDER_ENTRIES} files, too many for an "
                                         "output of ParaScale's; choose another folder")
                items.append(e)
        if not items and rel:
            yield rel, "dir"
        for e in sorted(items, key=lambda e: e.name):
            name = f"{rel}/{e.name}" if rel else e.name
            if e.is_symlink():
                yield name, "link"
            elif e.is_dir(follow_symlinks=False):
                stack.append((name, Path(e.path)))
            elif e.is_file(follow_symlinks=False):
                yield name, "file"
            else:
                yield name, "other"


@dataclass
class Plan:
    """What writing an output at `path` does to what is there: `ours` are ParaScale's
    files (replaced), `kept` the user's (they stay; names in the folder, or beside the
    file), `force` when everything there is replaced on the user's word."""

    path: Path
    ours: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    force: bool = False

    def message(self) -> Optional[str]:
        """What the export says about the user's files it kept (None: none)."""
        if not self.kept:
            return None
        shown = ", ".join(printable(n) for n in self.kept[:5]) + (f" and {len(self.kept) - 5} more" if len(self.kept) > 5 else "")
        return (f"{self.path}: kept {len(self.kept)} file(s) ParaScale did not write or that changed since "
                f"it wrote them: {shown}")


def printable(name: str) -> str:
    """A file name as text that prints anywhere (undecodable bytes escaped)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _shown(names) -> str:
    names = [printable(n) for n in names]
    return ", ".join(names[:5]) + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


def _clashes(kept: Iterable[str], writes: Iterable[str]) -> list:
    """Kept names the output would overwrite: the same name, or one inside the other."""
    writes = list(writes)
    return [k for k in kept if any(k == w or k.startswith(w + "/") or w.startswith(k + "/") for w in writes)]


def folder_plan(path, writes: Optional[Iterable[str]] = None, force: bool = False,
                force_hint: str = FORCE_HINT) -> Plan:
    """What an output folder at `path` may replace. writes: the names the new output
    writes (None: not known yet; clashes are then checked when they are). Raises
    OwnershipError, one line: the folder, the reason, the way out."""
    path = Path(path)
    plan = Plan(path, force=force)
    if not os.path.lexists(path):
        return plan
    if path.is_symlink() or not path.is_dir():
        raise OwnershipError(f"{path}: exists and is not a folder")
    if force:
        return plan
    found = list(_walk(path))
    if not found:
        return plan
    try:
        listed = read_manifest(path / MANIFEST_NAME)
    except ManifestError as exc:
        others = [n for n, _ in found if n != MANIFEST_NAME] or [MANIFEST_NAME]
        raise OwnershipError(f"{path}: holds files ParaScale did not write ({_shown(others)}) and no valid "
                             f"ParaScale {MANIFEST_NAME} ({exc}); choose another folder, or {force_hint} to "
                             "replace it with everything in it") from None
    for name, kind in found:
        if name == MANIFEST_NAME:
            continue
        e = listed.get(name)
        if kind == "file" and e is not None and _matches(path / name, e):
            plan.ours.append(name)
        else:
            plan.kept.append(name)
    plan.ours.sort()
    plan.kept.sort()
    if writes is not None:
        check_clashes(plan, writes, force_hint)
    return plan


def check_clashes(plan: Plan, writes: Iterable[str], force_hint: str = FORCE_HINT) -> None:
    clash = _clashes(plan.kept, writes)
    if clash:
        raise OwnershipError(f"{plan.path}: the export would overwrite {_shown(clash)}, which ParaScale did not "
                             f"write or which changed since it did; move it away, choose another folder, or "
                             f"{force_hint} to replace it")


def _matches(p: Path, e: Entry) -> bool:
    try:
        st = os.lstat(p)
        return stat.S_ISREG(st.st_mode) and st.st_size == e.size and sha256_of(p) == e.sha256
    except OSError:
        return False


def sidecar_of(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def file_set_plan(output, others: Iterable = (), force: bool = False, force_hint: str = FORCE_HINT,
                  shared: Optional[dict] = None) -> Plan:
    """What writing the file `output` (with its manifest beside it, <output>.manifest.json,
    and the `others` files beside it) may replace. The existing output and its manifest
    must be ParaScale's (the manifest valid and listing the output as it is); else
    OwnershipError. `shared` (name -> the bytes this export writes) are files several
    outputs share (the bridge script): one identical to the new bytes, or listed as it is
    in any manifest beside it, is replaced; any other stays and is reported in
    plan.kept."""
    output = Path(output)
    folder = output.parent
    plan = Plan(folder, force=force)  # the kept files are named in this folder
    side = sidecar_of(output)
    for p in (output, side):
        if os.path.lexists(p) and (p.is_symlink() or not p.is_file()):
            raise OwnershipError(f"{p}: exists and is not a file")
    if force:
        return plan
    listed = None
    if os.path.lexists(side):
        try:
            listed = read_manifest(side, flat=True)
        except ManifestError as exc:
            raise OwnershipError(f"{side}: not a valid ParaScale manifest ({exc}), so ParaScale cannot tell what "
                                 f"it wrote here; choose another name, or {force_hint} to replace "
                                 f"{output.name} and it") from None
    if os.path.lexists(output):
        e = (listed or {}).get(output.name)
        if e is None or not _matches(output, e):
            why = ("its manifest does not list it" if listed is not None and e is None else
                   "it changed since ParaScale wrote it" if listed is not None else
                   f"there is no {side.name} saying ParaScale wrote it")
            raise OwnershipError(f"{output}: exists and ParaScale did not write it as it is ({why}); choose "
                                 f"another name, or {force_hint} to replace it")
        plan.ours.append(output.name)
    for other in others:
        other = Path(other)
        if os.path.lexists(other):
            raise OwnershipError(f"{other}: exists; choose another name, or {force_hint} to replace it")
    for name, data in (shared or {}).items():
        p = folder / name
        if not os.path.lexists(p):
            continue
        if p.is_file() and not p.is_symlink():
            if p.stat().st_size == len(data) and p.read_bytes() == data:
                plan.ours.append(name)
                continue
            if _listed_beside(folder, p, listed):
                plan.ours.append(name)
                continue
        plan.kept.append(name)
    return plan


def _listed_beside(folder: Path, p: Path, listed: Optional[dict]) -> bool:
    """`p` is listed, as it is, in a valid manifest in `folder` (the output's own first)."""
    candidates = [listed] if listed is not None else []
    try:
        sidecars = sorted(n for n in os.listdir(folder) if n.endswith(SIDECAR_SUFFIX))[:200]
    except OSError:
        sidecars = []
    for n in sidecars:
        try:
            candidates.append(read_manifest(folder / n, flat=True))
        except ManifestError:
            continue
    return any(p.name in c and _matches(p, c[p.name]) for c in candidates)


# ---------------------------------------------------------------------------
# a file and its report: the report as the commit record

RECORD_KEY = "output"


def read_record(path) -> Entry:
    """The record a report holds of the file it describes ("output": {name, size, sha256,
    path}), strictly validated; ManifestError with the reason otherwise."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise ManifestError(f"cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise ManifestError("it is not a regular file")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{st.st_size} bytes, more than {MAX_MANIFEST_BYTES} for a report")
    try:
        with V.guard(path, "a ParaScale report", also=(OSError,)):
            doc = V.load_json(path, "a ParaScale report")
    except V.TrackFormatError as exc:
        raise ManifestError(str(exc).replace(f"{path}: ", "", 1).replace(f"{path} ", "", 1)) from None
    rec = doc.get(RECORD_KEY) if isinstance(doc, dict) else None
    if not isinstance(rec, dict) or not {"name", "size", "sha256"} <= set(rec) <= {"name", "size", "sha256", "path"}:
        raise ManifestError(f"no \"{RECORD_KEY}\" record of the file it describes (name, size, sha256)")
    problem = _name_problem(rec["name"], flat=True)
    if problem:
        raise ManifestError(f"{RECORD_KEY}: {problem}")
    size, digest = rec["size"], rec["sha256"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
        raise ManifestError(f"{RECORD_KEY}: size must be a whole number of bytes, got {V._short(size)}")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise ManifestError(f"{RECORD_KEY}: sha256 must be 64 lowercase hex digits, got {V._short(digest)}")
    return Entry(rec["name"], size, digest)


def record_pair_plan(output, report, force: bool = False, force_hint: str = FORCE_HINT) -> Plan:
    """What writing `output` with `report` (its commit record) may replace: an existing
    report must be ParaScale's (a valid record), an existing output the file it records,
    as it is. Else OwnershipError naming the file and the way out."""
    output, report = Path(output), Path(report)
    plan = Plan(output, force=force)
    for p in (output, report):
        if os.path.lexists(p) and (p.is_symlink() or not p.is_file()):
            raise OwnershipError(f"{p}: exists and is not a file")
    if force:
        return plan
    rec = None
    if os.path.lexists(report):
        try:
            rec = read_record(report)
        except ManifestError as exc:
            raise OwnershipError(f"{report}: exists and is not a report ParaScale can tell it wrote ({exc}); choose "
                                 f"another name, or {force_hint} to replace it") from None
        plan.ours.append(report.name)
    if os.path.lexists(output):
        if rec is None or rec.name != output.name or not _matches(output, rec):
            why = (f"no report at {report} records it" if rec is None else
                   f"{report.name} records {printable(rec.name)}" if rec.name != output.name else
                   "it changed since ParaScale wrote it")
            raise OwnershipError(f"{output}: exists and ParaScale did not write it as it is ({why}); choose another "
                                 f"name, or {force_hint} to replace it")
        plan.ours.append(output.name)
    return plan
