"""Property-based fuzzing of every reader and the bridge loader (hypothesis).

Structure-aware mutations of real files from $PARASCALE_DATA (trimmed to a few frames
so one read takes about a millisecond; taking a subset of real records is itself one
of the mutations) and of files these tests write. Per example the properties are:

- only the project's error escapes: TrackFormatError (a ValueError) from the readers,
  BridgeError from the bridge loader; its message names the file (or the COLMAP folder);
- what is accepted is a valid track (finite, bounded, rotations, fx, fy > 0, K's last
  row 0 0 1, sides within 1..65536), so nonsense cannot be "read";
- peak memory of the call stays under 20 x the input's size + 2 MiB. Measured with
  tracemalloc: every Python object plus numpy's array buffers (numpy reports its data
  allocations to tracemalloc), i.e. the heap the reader grows, not the process RSS.

Examples per reader: 2,000 in `make test`; PARASCALE_FUZZ_EXAMPLES=N (`make fuzz`
sets 20,000) for more. Derandomized (the same inputs every run) and no example
database, so a failure reproduces exactly. Figures are printed with `-s`.
"""
from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import struct
import sys
import contextlib
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parascale.core.formats import colmap, writers
from parascale.core.cameras import Track, make_c2w
from parascale.core.formats.readers import read_track
from parascale.core.rotations import is_rotation, matrix_from_quat
from parascale.core.formats.validate import MAX_IMAGE_SIDE, MAX_MAGNITUDE, TrackFormatError, fov_degrees

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bridge"))
import parascale_bridge as bridge  # noqa: E402

EXAMPLES = int(os.environ.get("PARASCALE_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)
# Each example draws one 64-bit seed; the structure-aware mutators below make their
# choices from random.Random(seed) (hypothesis-controlled draws per choice cost ~10x
# more). Derandomized, so the same seeds run every time; a failure prints its seed.
SEEDS = st.integers(0, 2 ** 64 - 1)
MEMORY_FACTOR = 20
MEMORY_SLACK = 2 << 20
STATS: dict = {}


# ---------------------------------------------------------------------------
# seeds

def synthetic_track(n=4, seed=0, width=64, height=48, points=0):
    rng = np.random.default_rng(seed)
    R = matrix_from_quat(rng.normal(size=(n, 4)))
    c = rng.normal(size=(n, 3))
    K = np.array([[50.0, 0, 32.5], [0, 51.0, 24.2], [0, 0, 1]])
    kw = {}
    if points:
        kw["points"] = rng.normal(size=(points, 3)) * 3
        kw["visibility"] = [np.arange(points) for _ in range(n)]
    return Track(c2w=make_c2w(R, c), K=K, width=width, height=height, times=np.arange(n) / 24.0,
                 names=[f"f{i:03d}.png" for i in range(n)], **kw)


def data_root():
    v = os.environ.get("PARASCALE_DATA")
    return Path(v) if v and Path(v).is_dir() else None


def real(rel):
    root = data_root()
    p = root / rel if root else None
    return p if p is not None and p.exists() else None


def head_lines(path, keep):
    """The first lines of a real text file (comments kept), as bytes."""
    lines = Path(path).read_text().splitlines()
    return ("\n".join(lines[:keep]) + "\n").encode()


def colmap_text_seeds(tmp):
    seeds = []
    fern = real("llff_fern/data/nerf_llff_data/fern/colmap_text")
    if fern is not None:
        # three images with their POINTS2D lines, and a few points whose tracks name them
        imgs = fern / "images.txt"
        lines = imgs.read_text().splitlines()
        body = [" ".join(l.split()[:30]) for l in lines if not l.startswith("#")][:6]  # 10 POINTS2D each
        pts = [l for l in (fern / "points3D.txt").read_text().splitlines() if not l.startswith("#")][:12]
        seeds.append({"cameras.txt": (fern / "cameras.txt").read_bytes(),
                      "images.txt": ("\n".join(lines[:4] + body) + "\n").encode(),
                      "points3D.txt": ("\n".join(pts) + "\n").encode()})
    t = synthetic_track(3, points=6)
    d = writers.write_colmap(t, tmp / "written_colmap")
    seeds.append({k: (Path(d) / k).read_bytes() for k in ("cameras.txt", "images.txt", "points3D.txt")})
    return seeds


def colmap_binary_seeds(tmp):
    seeds = []
    fern = real("llff_fern/data/nerf_llff_data/fern/colmap_text")
    if fern is not None:
        m = colmap.read_model(fern)
        keep = sorted(m.images)[:3]
        images = {k: m.images[k] for k in keep}
        for im in images.values():
            im.point3d_ids = im.point3d_ids[:8]
        d = tmp / "fern_bin"
        colmap.write_binary_model(d, m.cameras, images, m.point_ids[:10], m.xyz[:10], [t[:4] for t in m.tracks[:10]])
        files = {k: (d / k).read_bytes() for k in ("cameras.bin", "images.bin", "points3D.bin")}
        real_cams = real("llff_fern/data/nerf_llff_data/fern/sparse/0/cameras.bin")
        files["cameras.bin"] = real_cams.read_bytes()  # the real file, as is
        seeds.append(files)
    t = synthetic_track(3, points=5)
    cams = {1: colmap.ColmapCamera(1, "PINHOLE", 64, 48, np.array([50.0, 51.0, 32.5, 24.2]))}
    from parascale.core.rotations import quat_from_matrix
    w2c = np.linalg.inv(t.c2w)
    images = {i + 1: colmap.ColmapImage(i + 1, quat_from_matrix(w2c[i, :3, :3]), w2c[i, :3, 3], 1,
                                        t.names[i], np.array([-1, 0, 1], np.int64)) for i in range(3)}
    d = tmp / "written_bin"
    colmap.write_binary_model(d, cams, images, np.arange(5), t.points, [np.array([1, 2, 3])] * 5)
    seeds.append({k: (d / k).read_bytes() for k in ("cameras.bin", "images.bin", "points3D.bin")})
    return seeds


def json_seed_transforms():
    seeds = []
    fox = real("instant_ngp_fox/data/nerf/fox/transforms.json")
    if fox is not None:
        doc = json.loads(fox.read_text())
        doc["frames"] = doc["frames"][:3]
        seeds.append(doc)
    t = synthetic_track(3)
    seeds.append({"w": 64, "h": 48, "camera_angle_x": 1.1, "fl_y": 51.0, "frames": [
        {"file_path": f"./img/{n}", "transform_matrix": (c @ np.diag([1.0, -1, -1, 1])).tolist()}
        for n, c in zip(t.names, t.c2w)]})
    return seeds


def re10k_seeds():
    seeds = []
    for rel in ("cameractrl_realestate10k/assets/pose_files/0bf152ef84195293.txt",
                "generator_poses/cami2v_poses/zoom_in.txt",
                "generator_poses/videoxfun_poses/Pan_Left.txt"):
        p = real(rel)
        if p is not None:
            seeds.append(head_lines(p, 6))
    return seeds


def parascale_doc(n=3):
    return writers.parascale_document(synthetic_track(n))


def motionctrl_seeds():
    seeds = []
    for name in ("test_camera_L.json", "test_camera_018f7907401f2fef.json"):
        p = real(f"generator_poses/motionctrl_poses/{name}")
        if p is not None:
            seeds.append(json.loads(p.read_text())[:4])
    seeds.append(writers.motionctrl_matrix(synthetic_track(3)).tolist())
    return seeds


def recammaster_seeds(tmp):
    seeds = []
    p = real("generator_poses/recammaster_poses/camera_extrinsics.json")
    if p is not None:
        doc = json.loads(p.read_text())
        seeds.append({f"frame{i}": {"cam01": doc[f"frame{i}"]["cam01"], "cam02": doc[f"frame{i}"]["cam02"]}
                      for i in range(4)})
    out = writers.write_recammaster(synthetic_track(3), tmp / "r.json")
    seeds.append(json.loads(out.read_text()))
    return seeds


# ---------------------------------------------------------------------------
# mutations

INTERESTING_NUMBERS = ["0", "-0", "1", "-1", "2", "0.5", "1e-320", "1e300", "-1e300", "1e400", "nan", "NaN", "inf",
                       "-inf", "Infinity", "1e12", "65537", "4294967295", "4294967296", "-2147483649",
                       "9223372036854775807", "9223372036854775808", "18446744073709551615",
                       "18446744073709551616", "1" * 400, "0x10", "1_0", "", "abc", "1e", "--1", "3.0.0"]
INTERESTING_INTS = [0, 1, 2, 3, 4, 5, 11, 12, 255, 256, 65535, 65536, 65537, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1,
                    2 ** 32, 2 ** 40, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1]
INTERESTING_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-320, 1e300, -1e300, float("nan"), float("inf"),
                      float("-inf"), 1e12, 2.0, 1e9 + 1]
def any_float(r):
    """Any double, NaN and infinities included, from 8 random bytes."""
    return struct.unpack("<d", r.randbytes(8))[0]


NUM_RE = re.compile(rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def byte_mutations(r, data: bytes, structured=True):
    """1-4 edits of a text/binary file: numbers replaced by edge cases, lines dropped,
    duplicated or swapped, tokens dropped, bytes flipped or inserted (invalid UTF-8,
    NUL), truncation."""
    data = bytearray(data)
    for _ in range(r.randint(1, 4)):
        op = r.choice(["number", "number", "number", "line_del", "line_dup", "line_swap",
                                   "token_del", "flip", "insert", "truncate", "append_line"])
        if op == "number" and structured:
            spans = [m.span() for m in NUM_RE.finditer(bytes(data))]
            if spans:
                a, b = spans[r.randint(0, len(spans) - 1)]
                new = r.choice([lambda: r.choice(INTERESTING_NUMBERS), lambda: repr(any_float(r)),
                                lambda: str(r.randint(-2 ** 70, 2 ** 70))])()
                data[a:b] = new.encode()
        elif op in ("line_del", "line_dup", "line_swap", "append_line"):
            lines = bytes(data).split(b"\n")
            i = r.randint(0, len(lines) - 1)
            if op == "line_del":
                del lines[i]
            elif op == "line_dup":
                lines.insert(i, lines[i])
            elif op == "line_swap":
                j = r.randint(0, len(lines) - 1)
                lines[i], lines[j] = lines[j], lines[i]
            else:
                lines.append(b" ".join(r.choice(INTERESTING_NUMBERS).encode()
                                       for _ in range(r.randint(0, 24))))
            data = bytearray(b"\n".join(lines))
        elif op == "token_del":
            spans = [m.span() for m in re.finditer(rb"\S+", bytes(data))]
            if spans:
                a, b = spans[r.randint(0, len(spans) - 1)]
                del data[a:b]
        elif op == "flip" and data:
            i = r.randint(0, len(data) - 1)
            data[i] = r.randint(0, 255)
        elif op == "insert":
            i = r.randint(0, len(data))
            data[i:i] = r.choice([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80", b"[", b"{", b"]",
                                              b"\n", b" ", b"#", b"-", b"e999"])
        elif op == "truncate" and data:
            del data[r.randint(0, len(data) - 1):]
    return bytes(data)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


_PATHS: dict = {}


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def json_mutations(r, doc):
    """1-3 edits of a JSON tree (a node replaced by an edge-case number, string, null,
    list where an object belongs and back, deep nesting, a ragged row, a dropped or
    added key), serialised, then sometimes a byte-level edit on top."""
    paths = _PATHS.get(id(doc))
    if paths is None:
        paths = _PATHS[id(doc)] = list(_paths(doc))
    doc = json.loads(json.dumps(doc))
    for k in range(r.randint(1, 3)):
        if k:  # the tree changed: enumerate it again
            paths = list(_paths(doc))
        path = paths[r.randint(0, len(paths) - 1)]
        node = _get(doc, path)
        op = r.choice(["number", "number", "value", "wrap", "unwrap", "deep", "ragged", "drop",
                                   "dup", "dict_to_list", "add_key"])
        new = node
        if op == "number":
            new = r.choice([lambda: r.choice(INTERESTING_FLOATS), lambda: r.choice(INTERESTING_INTS),
                            lambda: -r.choice(INTERESTING_INTS), lambda: 10 ** 400, lambda: any_float(r)])()
        elif op == "value":
            new = r.choice([None, True, False, "", "x", "1.0", [], {}, [[]], "a" * 5000,
                                        "frame1", "\ud800"])
        elif op == "wrap":
            new = [node]
        elif op == "unwrap" and isinstance(node, list) and node:
            new = node[0]
        elif op == "deep":  # spliced in as text below: json.dumps itself would recurse
            new = f"__DEEP_{r.choice([50, 65, 200, 3000, 100000])}__"
        elif op == "ragged" and isinstance(node, list) and node:
            new = node[:-1] if (r.random() < 0.5) else node + [node[-1]]
        elif op == "dup" and isinstance(node, list) and node:
            new = node + node
        elif op == "dict_to_list" and isinstance(node, dict):
            new = list(node.values())
        elif op == "add_key" and isinstance(node, dict):
            new = dict(node)
            new[r.choice(["frame99999999999", "frame-1", "frame01", "frame1", "w", "h", "fl_x",
                          "camera_angle_x", "unit_scale", "k1"])] = r.choice(
                [0, -1, 1e300, float("nan"), "[1 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1] ", None])
        elif op == "drop" and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
            continue
        if path:
            _get(doc, path[:-1])[path[-1]] = new
        else:
            doc = new
    text = json.dumps(doc, indent=r.choice([None, 1]), ensure_ascii=(r.random() < 0.5))
    text = re.sub(r'"__DEEP_(\d+)__"', lambda m: "[" * int(m.group(1)) + "0" + "]" * int(m.group(1)), text)
    raw = text.encode("utf-8", "surrogatepass")
    if r.randint(0, 3) == 0:
        raw = byte_mutations(r, raw)
    return raw


# npy / npz

def npy_bytes(arr, header_override=None, version=1):
    buf = io.BytesIO()
    np.save(buf, arr)
    raw = buf.getvalue()
    if header_override is None:
        return raw
    hlen = struct.unpack("<H", raw[8:10])[0]
    header = header_override.encode("latin1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + raw[10 + hlen:]
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + raw[10 + hlen:]


def npy_mutations(r, arr):
    """An .npy of arr whose header's shape, dtype or order is replaced by edge cases
    (shapes asking for terabytes, object and structured dtypes, unterminated or
    non-literal headers), or whose data is cut, extended or flipped."""
    op = r.choice(["shape", "shape", "descr", "order", "header_text", "data", "bytes", "version"])
    shape, descr, order = list(arr.shape), arr.dtype.str, "False"
    if op == "shape":
        dims = [r.choice([0, 1, 2, 3, 4, 15, 16, 17, 20, 10 ** 9, 2 ** 31, 2 ** 40, 2 ** 63,
                                              2 ** 64, -1]) for _ in range(r.randint(0, 4))]
        shape = dims
    elif op == "descr":
        descr = r.choice(["<f8", "<f4", ">f8", "<f2", "|O", "<i8", "|u1", "|b1", "<c16", "<U3", "|V8",
                                      "|S0", "<M8[s]", "x", "", "<f16"])
    elif op == "order":
        order = r.choice(["True", "1", "None", "'no'"])
    shape_text = "(" + "".join(f"{d}, " for d in shape) + ")"
    header = f"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape_text}, }}"
    if op == "header_text":
        header = r.choice([
            "{'descr': '<f8', 'fortran_order': False, 'shape': (20, 17", "{'descr': '<f8'", "{(((((((((",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (20, 17), 'x': __import__('os')}",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (20, 17), }" + "\x00" * 5,
            "[1, 2]", "'''", "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }"])
    raw = npy_bytes(arr, header.ljust(len(header) + (-len(header) - 11) % 64) + "\n")
    if op == "data":
        body = r.choice(["cut", "extend", "empty"])
        raw = raw[:len(raw) - r.randint(1, 64)] if body == "cut" else (
            raw + b"\0" * r.randint(1, 64) if body == "extend" else raw[:10])
    elif op == "bytes":
        raw = byte_mutations(r, npy_bytes(arr), structured=False)
    elif op == "version":
        raw = raw[:6] + bytes([r.choice([0, 2, 3, 4, 255])]) + raw[7:]
    return raw


_BOMB = {}


def bomb_member(declared_mb=64):
    """A deflated npy of zeros: (N, 4, 4) float64 of declared_mb MiB, compressed ~1000x."""
    if declared_mb not in _BOMB:
        n = declared_mb * (1 << 20) // 128
        header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, 4, 4), }}"
        header += " " * ((-(len(header) + 11)) % 64) + "\n"
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        out = [comp.compress(head)]
        chunk = b"\0" * (1 << 20)
        for _ in range(declared_mb):
            out.append(comp.compress(chunk))
        out.append(comp.flush())
        _BOMB[declared_mb] = (b"".join(out), len(head) + n * 128, 0)
    return _BOMB[declared_mb]


def make_npz(members: dict, compressed=False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as zf:
        for name, raw in members.items():
            zf.writestr(name + ".npy", raw)
    return buf.getvalue()


def megasam_arrays(n=3):
    t = synthetic_track(n)
    depths = np.full((n, 6, 8), 2.0, np.float32)
    depths[:, 0] = 0
    return {"cam_c2w": t.c2w, "intrinsic": t.K[0], "depths": depths,
            "images": np.zeros((n, 6, 8, 3), np.uint8)}


def npz_mutations(r):
    """An npz whose members are mutated npy files (as above), dropped, renamed, deflated
    or stored, with zip header sizes patched (declared sizes, compression method), a
    deflate bomb member, or byte-level damage."""
    arrays = megasam_arrays(r.randint(1, 3))
    members = {k: npy_bytes(v) for k, v in arrays.items()}
    op = r.choice(["member", "member", "drop", "zip_bytes", "declared", "bomb", "method", "extra"])
    if op == "member":
        k = r.choice(sorted(members))
        members[k] = npy_mutations(r, arrays[k])
    elif op == "drop":
        del members[r.choice(sorted(members))]
    elif op == "extra":
        members[r.choice(["cam_c2w.npy", "x/../cam_c2w", "depths"])] = npy_bytes(np.zeros(3))
    raw = make_npz(members, compressed=(r.random() < 0.5))
    if op == "zip_bytes":
        raw = byte_mutations(r, raw, structured=False)
    elif op in ("declared", "method"):
        b = bytearray(raw)
        sigs = [m.start() for m in re.finditer(rb"PK\x03\x04|PK\x01\x02", raw)]
        if sigs:
            at = sigs[r.randint(0, len(sigs) - 1)]
            central = raw[at:at + 4] == b"PK\x01\x02"
            if op == "declared":
                off = at + (24 if central else 22)  # uncompressed size
                if (r.random() < 0.5):
                    off -= 4  # compressed size
                b[off:off + 4] = struct.pack("<I", r.choice([0, 1, 2 ** 31, 2 ** 32 - 1, 10 ** 9]))
            else:
                off = at + (10 if central else 8)
                b[off:off + 2] = struct.pack("<H", r.choice([1, 9, 12, 14, 93, 99]))
        raw = bytes(b)
    elif op == "bomb":
        comp, size, _ = bomb_member(r.choice([8, 64]))
        key = r.choice(["depths", "cam_c2w", "images"])
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for name, m in members.items():
                if name != key:
                    zf.writestr(name + ".npy", m)
        # append the bomb member by hand: deflated bytes with their true declared size
        raw = _append_raw_member(buf.getvalue(), key + ".npy", comp, size)
    return raw


def _append_raw_member(zip_bytes: bytes, name: str, comp: bytes, size: int) -> bytes:
    """Rebuild a zip with one more deflated member given as raw compressed bytes (the
    CRC is left 0: the reader must refuse on the declared size before any CRC check)."""
    src = zipfile.ZipFile(io.BytesIO(zip_bytes))
    out = io.BytesIO()
    central = []
    for info in src.infolist():
        data = src.read(info.filename)
        off = out.tell()
        nm = info.filename.encode()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data), len(data),
                              len(data), len(nm), 0) + nm + data)
        central.append((nm, 0, zlib.crc32(data), len(data), len(data), off))
    off = out.tell()
    nm = name.encode()
    out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(comp), size, len(nm), 0) + nm + comp)
    central.append((nm, 8, 0, len(comp), size, off))
    cd_start = out.tell()
    for nm, method, crc, csize, usize, off in central:
        out.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, csize, usize,
                              len(nm), 0, 0, 0, 0, 0, off) + nm)
    cd_size = out.tell() - cd_start
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central), cd_size, cd_start, 0))
    return out.getvalue()


# binary COLMAP, field-aware

def colmap_fields(name: str, raw: bytes):
    """(offset, struct format) of each header/record field of a COLMAP .bin file."""
    fields = [(0, "<Q")]
    pos = 8
    try:
        (n,) = struct.unpack_from("<Q", raw, 0)
        for _ in range(min(n, 50)):
            if name == "cameras.bin":
                fields += [(pos, "<i"), (pos + 4, "<i"), (pos + 8, "<Q"), (pos + 16, "<Q")]
                mid = struct.unpack_from("<i", raw, pos + 4)[0]
                npar = colmap.MODELS[mid][1]
                fields += [(pos + 24 + 8 * k, "<d") for k in range(npar)]
                pos += 24 + 8 * npar
            elif name == "images.bin":
                fields += [(pos, "<I")] + [(pos + 4 + 8 * k, "<d") for k in range(7)] + [(pos + 60, "<I")]
                end = raw.index(b"\0", pos + 64)
                fields.append((end + 1, "<Q"))
                (npts,) = struct.unpack_from("<Q", raw, end + 1)
                base = end + 9
                fields += [(base + 24 * k + 16, "<q") for k in range(npts)]
                pos = base + 24 * npts
            else:
                fields += [(pos, "<Q"), (pos + 8, "<d"), (pos + 16, "<d"), (pos + 24, "<d"), (pos + 43, "<Q")]
                (tl,) = struct.unpack_from("<Q", raw, pos + 43)
                fields += [(pos + 51 + 8 * k, "<I") for k in range(tl)]
                pos += 51 + 8 * tl
    except (struct.error, KeyError, ValueError):
        pass
    return fields


def colmap_binary_mutation(r, name, raw):
    fields = colmap_fields(name, raw)
    b = bytearray(raw)
    for _ in range(r.randint(1, 3)):
        op = r.choice(["field", "field", "field", "bytes"])
        if op == "field":
            off, fmt = fields[r.randint(0, len(fields) - 1)]
            if fmt == "<d":
                v = struct.pack(fmt, r.choice(INTERESTING_FLOATS))
            else:
                bits = struct.calcsize(fmt) * 8
                x = r.choice(INTERESTING_INTS + [-1, -2])
                v = (x % (1 << bits)).to_bytes(bits // 8, "little")
            b[off:off + len(v)] = v
        else:
            b = bytearray(byte_mutations(r, bytes(b), structured=False))
    return bytes(b)


# ---------------------------------------------------------------------------
# the property

NET_RE = re.compile(r"cannot read as [^(]*\((\w+): ")


def accepted_is_valid(track):
    n = len(track)
    assert 1 <= n
    assert np.isfinite(track.c2w).all() and np.abs(track.c2w).max() <= MAX_MAGNITUDE
    assert is_rotation(track.c2w[:, :3, :3]).all()
    assert np.isfinite(track.K).all() and (track.K[:, 0, 0] > 0).all() and (track.K[:, 1, 1] > 0).all()
    np.testing.assert_array_equal(track.K[:, 2], np.tile([0.0, 0, 1], (n, 1)))
    assert 1 <= track.width <= MAX_IMAGE_SIDE and 1 <= track.height <= MAX_IMAGE_SIDE
    fov = fov_degrees(track.K[:, [0, 1], [0, 1]], [track.width, track.height])
    assert ((fov >= 1) & (fov <= 179)).all(), f"field of view {fov.min():.4g}..{fov.max():.4g} degrees accepted"
    assert np.isfinite(track.times).all() and (n == 1 or (np.diff(track.times) > 0).all())
    if track.points is not None:
        assert np.isfinite(track.points).all()


def check(name, call, path, size, error=TrackFormatError, validate=accepted_is_valid):
    """Run one reader call; only `error` may escape, naming the file; peak traced
    memory under 20 x size + 2 MiB."""
    s = STATS.setdefault(name, {"inputs": 0, "read": 0, "refused": 0, "crashes": 0, "peak_bytes": 0,
                                "peak_ratio_over_slack": 0.0, "max_input_bytes": 0,
                                "worst_ratio_64k": 0.0})
    if s["inputs"] == 0:
        # A reader's first call may import what it imports lazily (modules, numpy's
        # machinery): a one-off cost of the process, not of the input. Pay it untraced.
        with contextlib.suppress(Exception):
            call()
    s["inputs"] += 1
    s["max_input_bytes"] = max(s["max_input_bytes"], size)
    tracemalloc.start()  # only around the call: hypothesis itself is not slowed or counted
    try:
        out = call()
    except error as exc:
        msg = str(exc)
        assert str(path) in msg or Path(path).name in msg, msg
        s["refused"] += 1
        net = NET_RE.search(msg)  # caught by the guard under the readers' own checks
        if net:
            s.setdefault("net", {}).setdefault(net.group(1), msg[-160:])
    except BaseException:
        s["crashes"] += 1
        raise
    else:
        s["read"] += 1
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if validate is not None and "out" in locals():
        validate(out)
    if peak > MEMORY_FACTOR * size + MEMORY_SLACK:
        # Once per process something outside the reader may allocate inside the traced call
        # (a lazy import, the source lookup of a warning's first showing); which call that
        # is depends on what ran before in the process (two workers: not the same order).
        # The reader's own peak is the same on a second call.
        tracemalloc.start()
        try:
            call()
        except Exception:  # the same refusal as the first call
            pass
        finally:
            peak = min(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    s["peak_bytes"] = max(s["peak_bytes"], peak)
    s["peak_ratio_over_slack"] = max(s["peak_ratio_over_slack"], max(0, peak - MEMORY_SLACK) / max(size, 1))
    if size >= 1 << 16:  # where the constant no longer hides the ratio
        s["worst_ratio_64k"] = max(s["worst_ratio_64k"], peak / size)
    assert peak <= MEMORY_FACTOR * size + MEMORY_SLACK, f"{name}: peak {peak} bytes for a {size}-byte input"


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    if STATS:
        print("\nfuzz figures: inputs, read, refused, crashes, peak traced bytes, largest input (bytes), "
              "worst peak/size over inputs >= 64 KiB")
        for k, s in sorted(STATS.items()):
            print(f"  {k:16s} {s['inputs']:7d} {s['read']:6d} {s['refused']:7d} {s['crashes']:3d} "
                  f"{s['peak_bytes']:11d} {s['max_input_bytes']:9d} {s['worst_ratio_64k']:6.2f}")
            for kind, msg in s.get("net", {}).items():
                print(f"      via the guard: {kind}: ...{msg}")
        out = os.environ.get("PARASCALE_FUZZ_REPORT")
        if out:
            Path(out).write_text(json.dumps(STATS, indent=1))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A scratch folder in memory (/dev/shm) when there is one: thousands of small writes."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        import tempfile
        d = Path(tempfile.mkdtemp(prefix="parascale-fuzz-", dir=shm))
        yield d
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("fuzz")


def _warm(fn):
    """Run once before measuring, so one-time imports and caches are not counted."""
    try:
        fn()
    except Exception:
        pass


def write(path, raw):
    path.write_bytes(raw)
    return len(raw)


# ---------------------------------------------------------------------------
# one test per reader

def test_fuzz_colmap_text(work):
    seeds = colmap_text_seeds(work)
    folder = work / "colmap_text"
    folder.mkdir()

    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        seed = seeds[r.randint(0, len(seeds) - 1)]
        target = r.choice(["cameras.txt", "images.txt", "points3D.txt"])
        size = 0
        for k, raw in seed.items():
            size += write(folder / k, byte_mutations(r, raw) if k == target else raw)
        check("colmap_text", lambda: read_track(folder, format="colmap"), folder, size)

    for k, raw in seeds[0].items():
        write(folder / k, raw)
    _warm(lambda: read_track(folder, format="colmap"))
    run()


def test_fuzz_colmap_binary(work):
    seeds = colmap_binary_seeds(work)
    folder = work / "colmap_bin"
    folder.mkdir()

    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        seed = seeds[r.randint(0, len(seeds) - 1)]
        target = r.choice(["cameras.bin", "images.bin", "points3D.bin"])
        size = 0
        for k, raw in seed.items():
            size += write(folder / k, colmap_binary_mutation(r, k, raw) if k == target else raw)
        check("colmap_binary", lambda: read_track(folder, format="colmap"), folder, size)

    for k, raw in seeds[0].items():
        write(folder / k, raw)
    _warm(lambda: read_track(folder, format="colmap"))
    run()


def _json_reader_test(name, seeds, path, call, error=TrackFormatError, validate=accepted_is_valid):
    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        doc = seeds[r.randint(0, len(seeds) - 1)]
        size = write(path, json_mutations(r, doc))
        check(name, call, path, size, error, validate)

    write(path, json.dumps(seeds[0]).encode())
    _warm(call)
    run()


def test_fuzz_transforms(work):
    p = work / "transforms.json"
    _json_reader_test("transforms", json_seed_transforms(), p, lambda: read_track(p, format="transforms"))


def test_fuzz_parascale_json(work):
    p = work / "poses.json"
    _json_reader_test("parascale_json", [parascale_doc(3)], p, lambda: writers.read_parascale(p))


def test_fuzz_motionctrl(work):
    p = work / "motionctrl.json"
    _json_reader_test("motionctrl_json", motionctrl_seeds(), p, lambda: writers.read_motionctrl(p))


def test_fuzz_recammaster(work):
    p = work / "camera_extrinsics.json"
    _json_reader_test("recammaster_json", recammaster_seeds(work), p, lambda: writers.read_recammaster(p))


def test_fuzz_re10k(work):
    seeds = re10k_seeds() or [writers.write_re10k(synthetic_track(4), work / "w.txt").read_bytes()]
    p = work / "poses.txt"

    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        raw = seeds[r.randint(0, len(seeds) - 1)]
        size = write(p, byte_mutations(r, raw))
        check("re10k", lambda: read_track(p, format="re10k"), p, size)

    write(p, seeds[0])
    _warm(lambda: read_track(p, format="re10k"))
    run()


def _bridge_valid(out):
    assert np.isfinite(out["c2w"]).all() and is_rotation(out["c2w"][:, :3, :3]).all()
    assert (out["K"][:, 0, 0] > 0).all() and (out["K"][:, 1, 1] > 0).all()
    assert 1 <= out["width"] <= MAX_IMAGE_SIDE and 1 <= out["height"] <= MAX_IMAGE_SIDE
    assert np.isfinite(out["unit_scale"]) and out["unit_scale"] > 0
    fov = fov_degrees(out["K"][:, [0, 1], [0, 1]], [out["width"], out["height"]])
    assert ((fov >= 1) & (fov <= 179)).all(), f"field of view {fov.min():.4g}..{fov.max():.4g} degrees accepted"


def test_fuzz_bridge_loader(work):
    doc = parascale_doc(3)
    doc["unit_scale"] = 0.01
    pj = work / "bridge.json"
    pt = work / "bridge.txt"
    re_seeds = re10k_seeds() or [writers.write_re10k(synthetic_track(4), work / "w2.txt").read_bytes()]

    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        if (r.random() < 0.5):
            size = write(pj, json_mutations(r, doc))
            p = pj
        else:
            size = write(pt, byte_mutations(r, re_seeds[r.randint(0, len(re_seeds) - 1)]))
            p = pt
        check("bridge_loader", lambda: bridge.load_poses(p), p, size, bridge.BridgeError, _bridge_valid)

    write(pj, json.dumps(doc).encode())
    _warm(lambda: bridge.load_poses(pj))
    run()


def test_fuzz_llff(work):
    seeds = []
    fern = real("llff_fern/data/nerf_llff_data/fern/poses_bounds.npy")
    if fern is not None:
        seeds.append(np.load(fern))
    t = synthetic_track(3)
    rows = np.concatenate([np.concatenate([t.c2w[:, :3, [1, 0]], -t.c2w[:, :3, 2:3], t.c2w[:, :3, 3:4],
                                           np.tile([[48.0], [64.0], [50.0]], (3, 1, 1))], 2).reshape(3, 15),
                           np.tile([[0.5, 20.0]], (3, 1))], 1)
    seeds.append(rows)
    p = work / "poses_bounds.npy"

    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        arr = seeds[r.randint(0, len(seeds) - 1)]
        if r.randint(0, 4) == 0:  # structured values in a well-formed file
            arr = arr.copy()
            arr.flat[r.randint(0, arr.size - 1)] = r.choice(INTERESTING_FLOATS)
            raw = npy_bytes(arr)
        else:
            raw = npy_mutations(r, arr)
        size = write(p, raw)
        check("llff_npy", lambda: read_track(p, format="llff"), p, size)

    np.save(p, seeds[0])
    _warm(lambda: read_track(p, format="llff"))
    run()


def test_fuzz_megasam(work):
    p = work / "megasam.npz"

    @FUZZ
    @given(SEEDS)
    def run(seed):
        r = random.Random(seed)
        size = write(p, npz_mutations(r))
        check("megasam_npz", lambda: read_track(p, format="megasam"), p, size)

    p.write_bytes(make_npz({k: npy_bytes(v) for k, v in megasam_arrays().items()}))
    _warm(lambda: read_track(p, format="megasam"))
    run()
