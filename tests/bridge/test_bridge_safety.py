"""The bridge replaces only what it wrote, and refuses, before any work, values that would
overflow, underflow to zero or exceed memory, naming the limit.

- its output folder is owned by manifest (the same strict rule as core.formats.manifest):
  hostile manifests (a string, integers, deep nesting, names outside the folder, names
  of the user's files) keep every user file and end in a one-line refusal or a clean run;
- --speed 1e308 / 1e-308, a recorded scene_depth_scale of 1e308, --size 60000x60000 and a
  RealEstate10K fx of 1e-300 are refused in one line naming the limit, nothing written,
  and before any work (the in-process runs below fail if the conditioning is computed);
- every array and pose file it writes is finite.
"""
import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parascale.core.cameras import Track
from parascale.core.formats import writers

BRIDGE = Path(__file__).resolve().parents[2] / "bridge" / "parascale_bridge.py"
sys.path.insert(0, str(BRIDGE.parent))
import parascale_bridge as bridge  # noqa: E402

from analytic_scenes import reference_move  # noqa: E402


def run_bridge(*args):
    return subprocess.run([sys.executable, str(BRIDGE), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def poses(tmp_path, depth_scale=2.0, name="poses.json", n=16):
    meta = {} if depth_scale is None else {"gauge": {"scene_depth_scale": depth_scale}}
    t = Track(c2w=reference_move(n), K=np.array([[300.0, 0, 160], [0, 300, 90], [0, 0, 1]]), width=320,
              height=180, times=np.arange(n) / 24, meta=meta)
    p = tmp_path / name
    writers.write_parascale(t, p)
    return p


def snapshot(folder: Path) -> dict:
    out = {}
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = Path(root) / n
            st = os.lstat(p)
            out[str(p.relative_to(folder))] = (stat.S_IMODE(st.st_mode),
                                                p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


@pytest.fixture
def no_work(monkeypatch):
    """The conditioning (pose resampling, Plucker tensors) must not start."""
    def forbidden(*a, **k):
        raise AssertionError("the bridge started work before refusing")
    for name in ("build", "plucker", "build_poses", "resample"):
        monkeypatch.setattr(bridge, name, forbidden)


def refused_in_process(capsys, argv, *fragments):
    capsys.readouterr()
    code = bridge.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parascale_bridge: error: "), err
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"
    return lines[0]


def re10k_with_focal(tmp_path, fx, fy):
    src = tmp_path / "src.txt"
    t = Track(c2w=reference_move(16), K=np.array([[300.0, 0, 160], [0, 300, 90], [0, 0, 1]]), width=320,
              height=180, times=np.arange(16) / 24)
    writers.write_re10k(t, src)
    lines = src.read_text().splitlines()
    out = [lines[0]] + [" ".join([l.split()[0], repr(fx), repr(fy)] + l.split()[3:]) for l in lines[1:]]
    p = tmp_path / "focal.txt"
    p.write_text("\n".join(out) + "\n")
    src.unlink()
    return p


LIMITS = [
    ("speed-huge", lambda d: [poses(d), "--generator", "cameractrl", "--speed", "1e308"], ["--speed", "1e+06"]),
    ("speed-tiny", lambda d: [poses(d), "--generator", "cameractrl", "--speed", "1e-308"], ["--speed", "1e-06"]),
    ("depth-scale-huge", lambda d: [poses(d, 1e308), "--generator", "cameractrl"],
     ["scene_depth_scale", "1e+09"]),
    ("depth-scale-tiny", lambda d: [poses(d, 1e-300), "--generator", "cameractrl"],
     ["scene_depth_scale", "1e-09"]),
    ("size-huge", lambda d: [poses(d), "--generator", "uni3c", "--size", "60000x60000", "--plucker"],
     ["--size 60000x60000", "plucker.npy", "TiB"]),
    ("frames-huge", lambda d: [poses(d), "--generator", "wan-fun-camera", "--size", "8x12", "--frames", "4000001",
                               "--plucker"], ["4000001", "1000000"]),
    ("float16-overflow", lambda d: [poses(d, 1e-5), "--generator", "uni3c", "--size", "8x12", "--plucker"],
     ["float16", "65504"]),
    ("size-side", lambda d: [poses(d), "--generator", "motionctrl", "--size", "70000x64"],
     ["--size 70000x64", "65536"]),
    ("fx-tiny", lambda d: [re10k_with_focal(d, 1e-300, 1e-300), "--generator", "cameractrl"],
     ["field of view", "179"]),
    ("fx-huge", lambda d: [re10k_with_focal(d, 1e6, 1e6), "--generator", "cameractrl"],
     ["field of view", "1 "]),
]


@pytest.mark.parametrize("case", [c[0] for c in LIMITS])
def test_limits_are_refused_before_any_work(tmp_path, capsys, no_work, case):
    _, make, fragments = next(c for c in LIMITS if c[0] == case)
    argv = make(tmp_path) + ["--out", tmp_path / "out"]
    before = snapshot(tmp_path)
    refused_in_process(capsys, argv, *fragments)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("case", ["speed-huge", "size-huge", "fx-tiny"])
def test_limits_as_a_process(tmp_path, case):
    _, make, fragments = next(c for c in LIMITS if c[0] == case)
    argv = make(tmp_path) + ["--out", tmp_path / "out"]
    before = snapshot(tmp_path)
    r = run_bridge(*argv)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert all(f in r.stderr for f in fragments), r.stderr
    assert snapshot(tmp_path) == before


def test_everything_written_is_finite_at_the_extremes_it_accepts(tmp_path):
    """At the stated limits the output is finite and the move does not vanish."""
    for speed, depth in (("1e6", 1e-9 * 10), ("1e-6", 1e9 / 10)):
        p = poses(tmp_path, depth, name=f"p{speed}.json")
        out = tmp_path / f"out{speed}"
        r = run_bridge(p, "--generator", "cameractrl", "--speed", speed, "--out", out, "--size", "8x12", "--plucker")
        if r.returncode == 2:  # the written translation is refused by the range check: said so
            assert "1e+09" in r.stderr or "vanish" in r.stderr, r.stderr
            continue
        assert r.returncode == 0, r.stderr
        emb = np.load(out / "plucker.npy")
        assert np.isfinite(emb).all()
        rows = [l.split() for l in (out / "poses.txt").read_text().splitlines()[1:]]
        t = np.array([[float(v) for v in r[7:]] for r in rows]).reshape(-1, 3, 4)[:, :, 3]
        assert np.isfinite(t).all() and np.abs(np.diff(t, axis=0)).max() > 0


# ---------------------------------------------------------------------------
# ownership of the output folder

def _entry(name, size=1, digest="0" * 64):
    return {"name": name, "size": size, "sha256": digest}


HOSTILE = {
    "string": '{"schema": "parascale.outputs", "version": 1, "files": "poses.txt"}',
    "ints": '{"files": [1, 2]}',
    "ints-schema": '{"schema": "parascale.outputs", "version": 1, "files": [1, 2]}',
    "old-style": '{"files": ["p", "thesis.tex"]}',
    "deep": '{"files": ' + "[" * 100000 + "]" * 100000 + "}",
    "outside": json.dumps({"schema": "parascale.outputs", "version": 1,
                           "files": [_entry("../victim.txt"), _entry("/etc/passwd"), _entry("x/../../victim.txt")]}),
    "user-names": json.dumps({"schema": "parascale.outputs", "version": 1,
                              "files": [_entry("p"), _entry("thesis.tex", 13), _entry("poses.txt", 3)]}),
    "not-json": "\x00\xff",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_manifest_keeps_every_user_file(tmp_path, capsys, kind):
    p = poses(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p").write_text("the user's p")
    (out / "thesis.tex").write_text("years of work")
    (out / "manifest.json").write_text(HOSTILE[kind])
    (tmp_path / "victim.txt").write_text("outside")
    users = {k: v for k, v in snapshot(out).items() if k != "manifest.json"}
    capsys.readouterr()
    code = bridge.main([str(p), "--generator", "motionctrl", "--size", "8x8", "--out", str(out)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "--force" in lines[0], err
    now = snapshot(out)
    assert {k: now.get(k) for k in users} == users, "a user file was changed or removed"
    assert (tmp_path / "victim.txt").read_text() == "outside"


def test_the_bridge_keeps_the_users_files_beside_its_own(tmp_path, capsys):
    p = poses(tmp_path)
    out = tmp_path / "out"
    assert bridge.main([str(p), "--generator", "cameractrl", "--size", "8x12", "--out", str(out), "--plucker"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert man["schema"] == "parascale.outputs"
    for e in man["files"]:
        data = (out / e["name"]).read_bytes()
        assert e["size"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest()
    (out / "my_render.mp4").write_bytes(b"user video")
    # another generator: the old generator's files go, the user's file stays, and it is said
    capsys.readouterr()
    assert bridge.main([str(p), "--generator", "motionctrl", "--size", "8x8", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "my_render.mp4" in err
    assert (out / "my_render.mp4").read_bytes() == b"user video"
    assert not (out / "plucker.npy").exists() and (out / "camera_embedding.npy").exists()
    # a file of ours the user changed, which this run would write: refused, kept
    (out / "command.txt").write_text("my own command\n")
    before = snapshot(out)
    code = bridge.main([str(p), "--generator", "motionctrl", "--size", "8x8", "--out", str(out)])
    assert code == 2 and snapshot(out) == before
    # --force replaces the folder knowingly
    assert bridge.main([str(p), "--generator", "motionctrl", "--size", "8x8", "--out", str(out), "--force"]) == 0
    assert not (out / "my_render.mp4").exists()
    assert (out / "command.txt").read_text() != "my own command\n"


@pytest.mark.parametrize("plucker", [False, True])
@pytest.mark.parametrize("gen, frames", [("cameractrl", 16), ("wan-fun-camera", 81), ("motionctrl", 14),
                                         ("motionctrl", 16), ("recammaster", 81), ("gen3c", 121), ("uni3c", 81)])
def test_the_names_checked_before_work_are_the_names_written(tmp_path, capsys, gen, frames, plucker):
    """The user's files are checked against output_names() before any work: they must be
    exactly what the run writes."""
    out = tmp_path / "out"
    assert bridge.main([str(poses(tmp_path)), "--generator", gen, "--frames", str(frames), "--size", "8x12",
                        "--out", str(out)] + (["--plucker"] if plucker else [])) == 0
    man = json.loads((out / "manifest.json").read_text())
    assert [e["name"] for e in man["files"]] == bridge.output_names(gen, frames, plucker)
