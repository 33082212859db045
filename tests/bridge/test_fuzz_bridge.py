"""Property-based fuzzing of the whole bridge run (hypothesis): its arguments, its pose
.json and the manifest.json of the folder it writes into, at the readers' bar of 0 crashes.

Each example runs `parascale_bridge.main(argv)` in this process on a drawn input:

- arguments: --generator, --size, --frames and --speed drawn from valid values and edge
  cases (0, negative, 1e308, 1e-308, nan, inf, 60000x60000, 2^64, words, unicode digits,
  empty), and --force now and then;
- the pose .json: a ParaScale file whose numbers (translations, K, image size,
  unit_scale, the recorded scene_depth_scale, times) are replaced by edge values;
- the output folder: absent, empty, an earlier bridge output, the user's files, or the
  user's files under a mutated manifest.json (a string, integers, deep nesting, names
  outside the folder or of the user's files, wrong sizes and hashes, other schemas).

Per example: the run returns 0 or 2 (argparse's own refusals exit 2), a refusal is one
line on stderr; the user's files (in the folder and beside it) are byte-identical
afterwards unless --force was given (then only the folder's own); a run that succeeds
leaves a folder whose manifest lists, by size and SHA-256, exactly the files it wrote
(next to the user's files it kept), every .npy finite, no temporary beside it; and its
peak traced memory stays under 64 MiB (sizes are refused against memory before any work).

Examples: 200 per suite in `make test` (a tenth of PARASCALE_FUZZ_EXAMPLES: `make fuzz`
gives 2,000). Derandomized; a failure prints its seed.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parascale.core.cameras import Track
from parascale.core.formats import writers

BRIDGE = Path(__file__).resolve().parents[2] / "bridge" / "parascale_bridge.py"
sys.path.insert(0, str(BRIDGE.parent))
import parascale_bridge as bridge  # noqa: E402

from analytic_scenes import reference_move  # noqa: E402
from manifest_mutations import USER_FILES, _entry, mutate_manifest  # noqa: E402

EXAMPLES = max(20, int(os.environ.get("PARASCALE_FUZZ_EXAMPLES", "2000")) // 10)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)
SEEDS = st.integers(0, 2 ** 64 - 1)
MEMORY_LIMIT = 64 << 20
STATS: dict = {}

GENERATORS = list(bridge.GENERATORS) + ["sora", "", "CAMERACTRL", "uni3c "]
SIZES = ["8x12", "16x16", "9x7", "1x1", "0x0", "-1x5", "8x-3", "60000x60000", "65536x1", "65537x8",
         "1x65536", "100000x100000", "8x", "x", "8x12x3", "1e3x5", "big", "", "08x012", "\uff18x\uff18",
         str(2 ** 64) + "x8", "8X12", " 8x12 "]
FRAMES = [None, "16", "14", "25", "81", "121", "241", "5", "4", "0", "-1", "2", "1000001", "4000001",
          str(2 ** 64), "1.5", "x", "1e3"]
SPEEDS = [None, "1", "2", "0.5", "1e6", "1e-6", "1e6.1", "1.000001e6", "1e308", "1e-308", "-1", "0", "-0",
          "nan", "inf", "-inf", "1e400", "abc", "", "0x10", "1_0", "5e-324"]
EDGE_NUMBERS = [0, -0.0, 1, -1, 0.5, 2, 1e-300, 1e-308, 5e-324, 1e-9, 1e9, 1e9 + 1, 1e12, 1e300, 1e308, -1e308,
                65536, 65537, 2 ** 31, 2 ** 53 + 1, 2 ** 64, 10 ** 400, float("nan"), float("inf"), "1", None, True,
                [], {}]


# ---------------------------------------------------------------------------
# inputs

def pose_doc(n=16):
    t = Track(c2w=reference_move(n), K=np.array([[300.0, 0, 160], [0, 300, 90], [0, 0, 1]]), width=320,
              height=180, times=np.arange(n) / 24, meta={"gauge": {"scene_depth_scale": 2.0}})
    return writers.parascale_document(t)


BASE_DOC = pose_doc()


def mutate_doc(r: random.Random, doc: dict) -> dict:
    """Numbers of the pose file replaced by edge values where a limit applies."""
    doc = json.loads(json.dumps(doc))
    for _ in range(r.choice([0, 1, 1, 2, 3])):
        if not doc["frames"]:
            break
        v = r.choice(EDGE_NUMBERS)
        where = r.choice(["translation", "K", "size", "unit", "depth", "time", "scale-all", "fov", "frames"])
        f = r.choice(doc["frames"])
        if where == "translation":
            f["c2w"][r.randrange(3)][3] = v
        elif where == "K":
            f["K"][r.randrange(2)][r.randrange(3)] = v
        elif where == "size":
            doc["image_size"][r.choice(["width", "height"])] = v
        elif where == "unit":
            doc["unit_scale"] = v
        elif where == "depth":
            doc["meta"]["gauge"] = {"scene_depth_scale": v}
        elif where == "time":
            f["time"] = v
        elif where == "scale-all" and isinstance(v, (int, float)) and not isinstance(v, bool):
            for g in doc["frames"]:
                for row in g["c2w"][:3]:
                    numeric = isinstance(row[3], (int, float)) and not isinstance(row[3], bool)
                    row[3] = row[3] * v if numeric and abs(v) < 1e300 else v
        elif where == "fov" and isinstance(v, (int, float)) and not isinstance(v, bool):
            for g in doc["frames"]:
                g["K"][0][0] = g["K"][1][1] = v
        elif where == "frames":
            doc["frames"] = doc["frames"][:r.choice([0, 1, 2, 5, 14])]
    return doc


def prepare_out(r: random.Random, work: Path, poses: Path) -> Path:
    """The output folder in one of its states; the user's files in it, and a victim beside it."""
    out = work / "out"
    state = r.choice(["absent", "empty", "ours", "ours", "users", "users+ours", "hostile", "hostile+ours", "file"])
    (work / "victim.txt").write_bytes(b"beside the folder")
    if state == "absent":
        return out
    if state == "file":
        out.write_bytes(b"a file where the folder goes")
        return out
    out.mkdir()
    if "ours" in state:
        gen = r.choice(["cameractrl", "motionctrl"])
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert bridge.main([str(poses), "--generator", gen, "--size", "8x8", "--out", str(out)]) == 0
    if "users" in state or "hostile" in state:
        for name, data in USER_FILES.items():
            if r.random() < 0.7:
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(data)
    if "hostile" in state:
        base = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else \
            {"schema": "parascale.outputs", "version": 1, "files": [_entry("poses.txt")]}
        (out / "manifest.json").write_text(mutate_manifest(r, base), encoding="utf-8", errors="surrogateescape")
    return out


def user_snapshot(out: Path) -> dict:
    """The user's files: everything in the folder not listed (as it is) by a valid manifest."""
    if not out.is_dir():
        return {"<file>": out.read_bytes()} if out.exists() else {}
    listed = {}
    try:
        doc = json.loads((out / "manifest.json").read_text())
        if doc.get("schema") == "parascale.outputs":
            listed = {e["name"]: e["sha256"] for e in doc["files"]}
    except Exception:
        listed = {}
    snap = {}
    for p in out.rglob("*"):
        if p.is_file():
            rel = str(p.relative_to(out))
            data = p.read_bytes()
            if rel == "manifest.json" or listed.get(rel) == hashlib.sha256(data).hexdigest():
                continue
            snap[rel] = data
    return snap


def check_result(code, err, out: Path, before: dict, work: Path, forced: bool):
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
    assert (work / "victim.txt").read_bytes() == b"beside the folder"
    now = user_snapshot(out) if out.exists() else {}
    if not forced or code == 2:
        for name, data in before.items():
            if name == "<file>":
                assert out.read_bytes() == data
            else:
                assert now.get(name) == data, f"user file {name} changed or removed"
    if code == 0:
        man = json.loads((out / "manifest.json").read_text())
        listed = {e["name"]: e for e in man["files"]}
        for name, e in listed.items():
            data = (out / name).read_bytes()
            assert e["size"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest(), name
            if name.endswith(".npy"):
                assert np.isfinite(np.load(out / name)).all(), name
        present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
        assert present - set(listed) == set(now) - set(listed), "files neither written nor kept"
    assert [p.name for p in work.iterdir() if ".parascale-tmp-" in p.name] == []


def run_main(argv):
    err = io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = bridge.main(argv)
            except SystemExit as exc:  # argparse's refusals
                code = exc.code
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"peak traced memory {peak / 2 ** 20:.1f} MiB for {argv}"
    return code, err.getvalue(), peak


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_bridge")


def _fresh(work: Path) -> Path:
    d = work / "ex"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    return d


def _count(name, code, peak):
    s = STATS.setdefault(name, {"inputs": 0, "written": 0, "refused": 0, "peak": 0})
    s["inputs"] += 1
    s["written" if code == 0 else "refused"] += 1
    s["peak"] = max(s["peak"], peak)


@FUZZ
@given(seed=SEEDS)
def _bridge_args(work, seed):
    r = random.Random(seed)
    d = _fresh(work)
    poses = d / "poses.json"
    poses.write_text(json.dumps(BASE_DOC))
    out = prepare_out(r, d, poses)
    argv = [str(poses), "--out", str(out)]
    # each argument an edge case one time in four, so that runs also get through
    gen = r.choice(GENERATORS) if r.random() < 0.25 else r.choice(list(bridge.GENERATORS))
    argv += ["--generator", gen]
    size = r.choice(SIZES) if r.random() < 0.25 else r.choice(["8x12", "9x7", "16x16"])
    if r.random() < 0.9:
        argv += ["--size", size]
    elif gen in ("gen3c", "wan-fun-camera", "uni3c", "recammaster"):
        argv += ["--size", "8x12"]  # their default sizes make the run slow, not wrong
    frames = r.choice(FRAMES) if r.random() < 0.25 else None
    if frames is not None:
        argv += ["--frames", frames]
    speed = r.choice(SPEEDS) if r.random() < 0.25 else r.choice([None, "1", "2.5"])
    if speed is not None:
        argv += ["--speed", speed]
    if r.random() < 0.5:
        argv.append("--plucker")
    forced = r.random() < 0.1
    if forced:
        argv.append("--force")
    before = user_snapshot(out)
    code, err, peak = run_main(argv)
    check_result(code, err, out, before, d, forced)
    _count("bridge arguments", code, peak)


def test_fuzz_bridge_arguments(work):
    _bridge_args(work)


@FUZZ
@given(seed=SEEDS)
def _bridge_poses(work, seed):
    r = random.Random(seed)
    d = _fresh(work)
    poses = d / "poses.json"
    text = json.dumps(mutate_doc(r, BASE_DOC))
    poses.write_text(text)
    out = d / "out"
    (d / "victim.txt").write_bytes(b"beside the folder")
    gen = r.choice(["cameractrl", "motionctrl", "uni3c", "gen3c", "recammaster"])
    argv = [str(poses), "--generator", gen, "--size", r.choice(["8x12", "9x7"]), "--out", str(out)]
    if r.random() < 0.5:
        argv.append("--plucker")
    if r.random() < 0.3:
        argv += ["--speed", r.choice(SPEEDS[1:])]
    code, err, peak = run_main(argv)
    check_result(code, err, out, {}, d, False)
    if code == 2:
        assert str(poses) in err or "--" in err, err
    _count("bridge pose json", code, peak)


def test_fuzz_bridge_pose_json(work):
    _bridge_poses(work)


@FUZZ
@given(seed=SEEDS)
def _bridge_manifest(work, seed):
    r = random.Random(seed)
    d = _fresh(work)
    poses = d / "poses.json"
    poses.write_text(json.dumps(BASE_DOC))
    out = d / "out"
    out.mkdir()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert bridge.main([str(poses), "--generator", "cameractrl", "--size", "8x8", "--out", str(out)]) == 0
    for name, data in USER_FILES.items():
        if r.random() < 0.8:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
    (d / "victim.txt").write_bytes(b"beside the folder")
    base = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(mutate_manifest(r, base), encoding="utf-8", errors="surrogateescape")
    before = user_snapshot(out)
    gen = r.choice(["cameractrl", "motionctrl"])
    code, err, peak = run_main([str(poses), "--generator", gen, "--size", "8x8", "--out", str(out)])
    check_result(code, err, out, before, d, False)
    _count("bridge manifest.json", code, peak)


def test_fuzz_bridge_manifest(work):
    _bridge_manifest(work)


def test_print_figures():
    """With -s: inputs, written, refused and the largest traced peak per suite."""
    for name, s in STATS.items():
        print(f"{name}: {s['inputs']} inputs, {s['written']} written, {s['refused']} refused, 0 crashes, "
              f"peak {s['peak'] / 2 ** 20:.1f} MiB")
