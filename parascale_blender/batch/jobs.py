"""The job list of `parascale batch` and the hash that identifies each job's inputs.

JOBS.csv has a header row naming the columns id,kind,video,track,target,camera (in any
order; other columns are ignored), then one job per row. A cell a kind needs no value
for stays empty. Relative paths are read from the CSV's own folder.

    kind      needs                               may have
    measure   track                               video (Pi from its optical flow)
    track     video (tracked, then measured)      -
    transfer  target (.blend), track or video     camera (default: the scene camera)

Every structural problem (a missing column, an unknown kind, a duplicate id, a cell a
kind does not take) is refused before any work, naming the file and line. A missing or
unreadable input file is not: that job alone fails, with its reason, and the rest run.

A job's key is the SHA-256 of its kind, camera and the contents of its input files
(a folder: every file in it, by relative name), plus the ParaScale version: a rerun
skips a job whose recorded key is the same. Paths are not part of the key (a dataset
moved elsewhere is still done). The worker that runs a job hashes its inputs (on its
node, in parallel with the others). Its fingerprint (each input's path, size and
modification time) lets a rerun skip a finished job after a stat alone; only a job
whose fingerprint changed is hashed again by the driver, to tell a touched file from a
changed one. bpy-free, ray-free.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

COLUMNS = ("id", "kind", "video", "track", "target", "camera")
PATH_COLUMNS = ("video", "track", "target")
KINDS = ("measure", "track", "transfer")
# Which cells each kind needs (all of), needs one of, and may have; the rest stay empty.
NEEDS = {"measure": ("track",), "track": ("video",), "transfer": ("target",)}
NEEDS_ONE_OF = {"transfer": ("track", "video")}
MAY_HAVE = {"measure": ("video",), "track": (), "transfer": ("track", "video", "camera")}
# Names the batch itself writes at the top of DIR: no job may be called so.
RESERVED = ("summary.csv", "summary.png", "batch.json", "re10k_gauge")
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
KEY_VERSION = 1  # bump when a job kind's outputs change meaning: every job is redone
_CHUNK = 1 << 20


class JobListError(ValueError):
    """A job list that cannot be run as written (file and line in the message)."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    video: Optional[str] = None
    track: Optional[str] = None
    target: Optional[str] = None
    camera: Optional[str] = None
    line: int = 0

    def inputs(self) -> dict:
        """{column: absolute path} of the input files the job reads."""
        return {c: getattr(self, c) for c in PATH_COLUMNS if getattr(self, c)}

    def as_dict(self) -> dict:
        return asdict(self)


def _cell(row: dict, column: str) -> Optional[str]:
    value = row.get(column)
    value = value.strip() if isinstance(value, str) else ""
    return value or None


def read_jobs(path) -> list:
    """The jobs of a JOBS.csv, checked (JobListError names the file and line)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in COLUMNS if c not in header]
            if not header:
                raise JobListError(f"{path}: empty; expected a header row {','.join(COLUMNS)}")
            if missing:
                raise JobListError(f"{path}:1: the header has no column {', '.join(missing)} "
                                   f"(expected {','.join(COLUMNS)}; other columns are ignored)")
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as exc:
        raise JobListError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise JobListError(f"{path}: not a readable CSV ({exc})") from None
    base = path.resolve().parent
    jobs, errors, seen = [], [], {}
    for line, row in rows:
        if not any(_cell(row, c) for c in header):
            continue  # a blank line
        try:
            job = _job(row, line, base)
        except JobListError as exc:
            errors.append(f"{path}:{line}: {exc}")
            continue
        key = job.id.lower()  # one folder per id, on case-insensitive file systems too
        if key in seen:
            errors.append(f"{path}:{line}: id {job.id!r} is already the id of line {seen[key]}")
            continue
        seen[key] = line
        jobs.append(job)
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise JobListError("; ".join(errors[:3]) + more)
    if not jobs:
        raise JobListError(f"{path}: no jobs (only a header row)")
    return jobs


def _job(row: dict, line: int, base: Path) -> Job:
    cells = {c: _cell(row, c) for c in COLUMNS}
    jid, kind = cells["id"], cells["kind"]
    if not jid:
        raise JobListError("the id is empty")
    if not ID_PATTERN.fullmatch(jid) or jid.lower() in RESERVED:
        raise JobListError(f"id {jid!r} cannot name its output folder (letters, digits, '.', '_' and '-', "
                           f"starting with a letter or digit, at most 128; not {', '.join(RESERVED)})")
    if kind not in KINDS:
        raise JobListError(f"job {jid}: kind {kind!r} is not one of {', '.join(KINDS)}")
    for c in NEEDS[kind]:
        if not cells[c]:
            raise JobListError(f"job {jid}: kind {kind} needs a {c}")
    one_of = NEEDS_ONE_OF.get(kind)
    if one_of and not any(cells[c] for c in one_of):
        raise JobListError(f"job {jid}: kind {kind} needs a {' or a '.join(one_of)} (the reference)")
    for c in COLUMNS[2:]:
        if cells[c] and c not in NEEDS[kind] and c not in MAY_HAVE[kind]:
            hint = " (a video alone is kind track)" if (kind, c) == ("track", "track") else ""
            raise JobListError(f"job {jid}: kind {kind} takes no {c}; leave that cell empty{hint}")
    for c in PATH_COLUMNS:
        if cells[c]:
            cells[c] = os.path.normpath(os.path.join(base, os.path.expanduser(cells[c])))
    return Job(jid, kind, cells["video"], cells["track"], cells["target"], cells["camera"], line)


# ---------------------------------------------------------------------------
# input hashes

def parascale_version() -> str:
    try:
        from importlib.metadata import version

        return version("parascale")
    except Exception:  # a source checkout: the extension manifest says it
        text = (Path(__file__).resolve().parents[2] / "blender_manifest.toml").read_text()
        m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
        return m.group(1) if m else "unknown"


def file_digest(path, memo: Optional[dict] = None) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (relative name and digest of
    each, sorted); memo caches by (real path, size, mtime)."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file or folder") from None
    key = (os.path.realpath(p), st.st_size, st.st_mtime_ns, p.is_dir())
    if memo is not None and key in memo:
        return memo[key]
    h = hashlib.sha256()
    if p.is_dir():
        h.update(b"folder\0")
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(f.relative_to(p).as_posix().encode() + b"\0" + file_digest(f).encode() + b"\0")
    else:
        with open(p, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    out = h.hexdigest()
    if memo is not None:
        memo[key] = out
    return out


def inputs_key(job: Job, memo: Optional[dict] = None, version: Optional[str] = None) -> str:
    """The job's key: what its result depends on (see the module doc)."""
    doc = {"key_version": KEY_VERSION, "parascale": version or parascale_version(), "kind": job.kind,
           "camera": job.camera, "inputs": {c: file_digest(p, memo) for c, p in job.inputs().items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _stat_entries(path: Path) -> list:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file or folder") from None
    if not p.is_dir():
        if not os.access(p, os.R_OK):
            raise PermissionError(f"{path}: not readable")
        return [["", st.st_size, st.st_mtime_ns]]
    out = []
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        s = f.stat()
        out.append([f.relative_to(p).as_posix(), s.st_size, s.st_mtime_ns])
    return out


def inputs_fingerprint(job: Job, version: Optional[str] = None) -> str:
    """What a stat says of the job's inputs (path, size, modification time of every
    file), with the kind, camera and version: equal fingerprints, the same key (OSError
    when an input is missing or unreadable)."""
    doc = {"key_version": KEY_VERSION, "parascale": version or parascale_version(), "kind": job.kind,
           "camera": job.camera, "inputs": {c: [os.path.abspath(p), _stat_entries(p)]
                                            for c, p in job.inputs().items()}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
