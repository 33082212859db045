"""SIGKILL a transfer, an export and a bridge run at 20 points each, spread over the
run's measured duration (half over the whole run, half over its last quarter, where
the outputs are written). After every kill the final paths hold the old output set or
the new one, never a mix; a commit cut short between its moves is recorded in a
journal and finished by the next run (checked here by doing what the next run does
first). Consecutive runs differ (frame counts, generators), so every file tells which
run wrote it. Finally one run to completion leaves no temporary file in the output
folder and nothing of the killed runs in the temp folder: no scratch folder of ours and
no blender_XXXXXX folder of Blender's own.

Transfer's report is the commit record of the pair: it records the .blend's size and
SHA-256, so after every kill the report describes the .blend beside it, or a journal
says a commit was cut short (and the next run finishes it).

The bridge is killed with the folder exchange (renameat2) and with it forced off
(PARASCALE_NO_RENAME_EXCHANGE=1, the two-rename path of systems without it), and both
folder writers are killed exactly between the two renames.
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
BRIDGE = REPO / "bridge" / "parascale_bridge.py"
KILLS = 20
TMP_MARKS = (".parascale-tmp-", ".tmp-")


def kill_times(duration: float, seed: int) -> list:
    rng = random.Random(seed)
    half = KILLS // 2
    whole = [duration * (k + rng.random()) / half for k in range(half)]
    end = [duration * (0.75 + 0.3 * (k + rng.random()) / half) for k in range(KILLS - half)]
    return whole + end


def run_killed(argv, after: float, env) -> bool:
    """Start argv, SIGKILL it after `after` seconds; True when it finished first."""
    p = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        p.wait(timeout=after)
        assert p.returncode == 0, p.stderr.read().decode()
        return True
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
        return False
    finally:
        p.stderr.close()


def run_ok(argv, env) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t0


def journals(folder: Path) -> list:
    return [p for p in folder.iterdir() if p.name.endswith("-commit.json")]


def temporaries(folder: Path) -> list:
    return sorted(p.name for p in folder.rglob("*")
                  if any(m in p.name for m in TMP_MARKS) or p.name.endswith(("@", ".blend1")))


def temp_leftovers(scratch: Path) -> list:
    """What runs left in the temp folder: Blender's blender_XXXXXX session folders, our
    scratch folders (anything at all, in fact: the runs are the only users of it)."""
    return sorted(p.name for p in scratch.iterdir())


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Subprocess environment with a private temp folder (scratch folders are counted)."""
    scratch = tmp_path_factory.mktemp("scratch")
    e = dict(os.environ, TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
    return e, scratch


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    bpy = pytest.importorskip("bpy")
    from blender_scenes import save_reference_and_target

    d = tmp_path_factory.mktemp("scenes")
    save_reference_and_target(bpy, d)
    return d


def recover(paths):
    """What the next run does first: finish a recorded commit, drop dead temporaries."""
    from parascale.core.formats.writers import clean_stale

    for p in paths:
        clean_stale(p)


# ---------------------------------------------------------------------------
# transfer: the .blend and its report as one set

def transfer_state(blend: Path, report: Path):
    """End frame of the pair at the final paths (None: no pair yet); asserts they agree."""
    import bpy

    if not blend.exists() and not report.exists():
        return None
    assert blend.exists() and report.exists(), "one of the pair is missing"
    rep = json.loads(report.read_text())
    record = rep["output"]  # the commit record: the .blend the report describes
    data = blend.read_bytes()
    assert (record["size"], record["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), \
        "the report does not describe the .blend beside it"
    bpy.ops.wm.open_mainfile(filepath=str(blend), load_ui=False)
    obj = bpy.data.objects[rep["camera"]]
    lo, hi = obj.animation_data.action.frame_range
    assert (int(lo), int(hi)) == (rep["frames"][0], rep["frames"][-1]), "the .blend and report disagree"
    return rep["frames"][-1]


def test_kill_transfer(scenes, env, tmp_path):
    e, scratch = env
    out, rep = tmp_path / "out.blend", tmp_path / "report.json"

    def argv(end):
        return [sys.executable, "-m", "parascale", "transfer", "--source-blend", scenes / "ref.blend",
                "--source-camera", "Reference", "--target", scenes / "target.blend", "--camera", "Target",
                "--depth", "raycast",
                "--depth-size", "8x6", "--end-frame", str(end), "--output", out, "--report", rep]

    duration = run_ok(argv(12), e)
    state = transfer_state(out, rep)
    assert state == 12
    for k, t in enumerate(kill_times(duration, seed=1)):
        new = 6 + k % 6 if 6 + k % 6 != state else 12  # differs from the pair on disk
        finished = run_killed(argv(new), t, e)
        if journals(tmp_path):  # killed inside the commit: the next run rolls it forward
            recover([out, rep])
            assert transfer_state(out, rep) == new
        now = transfer_state(out, rep)
        assert now in (state, new), f"kill {k} at {t:.2f}s: end frame {now}, expected {state} or {new}"
        assert now == new or not finished
        state = now
    run_ok(argv(7 if state != 7 else 8), e)
    assert temporaries(tmp_path) == []
    assert temp_leftovers(scratch) == []


# ---------------------------------------------------------------------------
# export: a COLMAP folder with the bridge script inside, replaced whole

def colmap_state(folder: Path):
    if not folder.exists():
        return None
    assert sorted(os.listdir(folder)) == ["cameras.txt", "images.txt", "manifest.json", "parascale_bridge.py",
                                          "points3D.txt"]
    from parascale.core.formats import readers

    return len(readers.read_track(folder, "colmap"))


def test_kill_export(scenes, env, tmp_path):
    e, scratch = env
    model = tmp_path / "model"

    def argv(frames):
        return [sys.executable, "-m", "parascale", "export", "--blend", scenes / "ref.blend",
                "--camera", "Reference", "--format", "colmap", "--output", model, "--frames", str(frames)]

    duration = run_ok(argv(12), e)
    state = colmap_state(model)
    assert state == 12
    for k, t in enumerate(kill_times(duration, seed=2)):
        new = 5 + k % 7 if 5 + k % 7 != state else 12
        finished = run_killed(argv(new), t, e)
        now = colmap_state(model)
        assert now in (state, new), f"kill {k} at {t:.2f}s: {now} frames, expected {state} or {new}"
        assert now == new or not finished
        state = now
    run_ok(argv(9 if state != 9 else 10), e)
    assert temporaries(tmp_path) == []
    assert temp_leftovers(scratch) == []


# ---------------------------------------------------------------------------
# bridge: its output folder, generators alternating

def bridge_state(folder: Path):
    if not folder.exists():
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    listed = [e["name"] for e in manifest["files"]]
    assert names == sorted(listed + ["manifest.json"]), "files of another run in the folder"
    for name in listed:
        if name.endswith(".npy"):
            arr = np.load(folder / name)
            assert arr.shape[0] == manifest["frames"] and np.isfinite(arr).all()
    return manifest["generator"], manifest["frames"]


@pytest.mark.parametrize("exchange", ["renameat2", "two-renames"])
def test_kill_bridge(env, tmp_path, exchange):
    from parascale.core.formats import writers
    from parascale.core.cameras import Track

    from analytic_scenes import reference_move

    e, _ = env
    if exchange == "two-renames":
        e = dict(e, PARASCALE_NO_RENAME_EXCHANGE="1")
    c2w = reference_move(16)
    K = np.array([[300.0, 0, 160], [0, 300, 90], [0, 0, 1]])
    poses = tmp_path / "poses.json"
    writers.write_parascale(Track(c2w=c2w, K=K, width=320, height=180, times=np.arange(16) / 24), poses)
    out = tmp_path / "out"
    runs = [("cameractrl", "16"), ("motionctrl", "14"), ("cameractrl", "25"), ("motionctrl", "16")]

    def argv(gen, frames):
        return [sys.executable, BRIDGE, poses, "--generator", gen, "--frames", frames, "--out", out, "--plucker"]

    duration = run_ok(argv(*runs[0]), e)
    state = bridge_state(out)
    assert state == ("cameractrl", 16)
    for k, t in enumerate(kill_times(duration, seed=3)):
        gen, frames = runs[(k + 1) % len(runs)]
        new = (gen, int(frames))
        finished = run_killed(argv(gen, frames), t, e)
        if not out.exists():  # killed between the two renames: the next run puts the old folder back
            assert exchange == "two-renames", f"kill {k}: the output folder is missing"
            bridge_module().clean_stale(out)
        now = bridge_state(out)
        assert now in (state, new), f"kill {k} at {t:.2f}s: {now}, expected {state} or {new}"
        assert now == new or not finished
        state = now
    run_ok(argv(*runs[1] if state != ("motionctrl", 14) else runs[0]), e)
    assert temporaries(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["out", "poses.json"]


def bridge_module():
    sys.path.insert(0, str(BRIDGE.parent))
    import parascale_bridge

    return parascale_bridge


KILL_BETWEEN_RENAMES = """
import os, signal, sys
real = os.rename
def rename(a, b, *args, **kw):
    real(a, b, *args, **kw)
    if str(b).endswith("-old"):  # the old folder moved aside: die before the new one is moved in
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename
os.environ["PARASCALE_NO_RENAME_EXCHANGE"] = "1"
"""


def test_a_kill_between_the_two_renames_is_undone(tmp_path):
    """Without renameat2 a folder is swapped in two renames; a kill exactly between them
    leaves the output folder missing until the next run, which puts the old one back
    before writing (the core writer and the bridge alike)."""
    from parascale.core.formats import writers
    from parascale.core.cameras import Track

    track = Track(c2w=np.tile(np.eye(4), (3, 1, 1)) + np.diag([0, 0, 0, 0.0]), K=np.diag([50.0, 50.0, 1.0]),
                  width=64, height=64, times=np.arange(3) / 24)
    track.c2w[:, 0, 3] = [0, 1, 2]
    model = tmp_path / "model"
    writers.write_colmap(track, model)
    old = (model / "images.txt").read_bytes()
    code = KILL_BETWEEN_RENAMES + f"""
import numpy as np
from parascale.core.formats import writers
from parascale.core.cameras import Track
t = Track(c2w=np.tile(np.eye(4), (4, 1, 1)), K=np.diag([50.0, 50.0, 1.0]), width=64, height=64, times=np.arange(4) / 24)
t.c2w[:, 0, 3] = [0, 1, 2, 3]
writers.write_colmap(t, {str(model)!r})
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not model.exists()  # the window this test is about
    writers.write_colmap(track, tmp_path / "other")  # a run writing elsewhere leaves it alone
    assert not model.exists()
    writers.clean_stale(model)  # what the next run writing there does first
    assert (model / "images.txt").read_bytes() == old and temporaries(tmp_path) == []

    poses = tmp_path / "p.txt"
    writers.write_re10k(track, poses)
    out = tmp_path / "bridge"
    assert subprocess.run([sys.executable, BRIDGE, poses, "--generator", "motionctrl", "--size", "8x8",
                           "--out", out], capture_output=True).returncode == 0
    first = (out / "manifest.json").read_bytes()
    code = KILL_BETWEEN_RENAMES + f"""
sys.argv = ["parascale_bridge.py", {str(poses)!r}, "--generator", "cameractrl", "--size", "8x8", "--out", {str(out)!r}]
sys.path.insert(0, {str(BRIDGE.parent)!r})
import parascale_bridge
parascale_bridge.main()
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not out.exists()
    r = subprocess.run([sys.executable, BRIDGE, poses, "--generator", "cameractrl", "--size", "8x8", "--out", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr  # the next run: the old folder back, then replaced as ours
    assert json.loads((out / "manifest.json").read_text())["generator"] == "cameractrl"
    assert json.loads(first)["generator"] == "motionctrl" and temporaries(tmp_path) == []


# ---------------------------------------------------------------------------
# what a killed run leaves, and how the next run recovers it (no processes killed:
# the leftovers are made as a killed run leaves them, under the pid of a process
# that has exited)

@pytest.fixture(scope="module")
def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_next_run_removes_a_killed_runs_temporaries(tmp_path, dead_pid):
    from parascale.core.formats import writers

    dest = tmp_path / "poses.txt"
    dest.write_text("old")
    left = [tmp_path / f".poses.txt.parascale-tmp-{dead_pid}-abcd", tmp_path / f".poses.txt.tmp-{dead_pid}-x1"]
    for p in left:
        p.write_text("half")
    (tmp_path / f".poses.txt.parascale-tmp-{dead_pid}-dir").mkdir()
    mine = tmp_path / f".poses.txt.parascale-tmp-{os.getpid()}-live"  # a live process's: kept
    mine.write_text("in use")
    other = tmp_path / f".other.txt.parascale-tmp-{dead_pid}-zz"      # another output's: kept
    other.write_text("x")
    writers.atomic_write_text(dest, "new")
    assert sorted(os.listdir(tmp_path)) == sorted(["poses.txt", mine.name, other.name])
    assert dest.read_text() == "new"


def test_a_commit_cut_short_is_finished_by_the_next_run(tmp_path, dead_pid):
    from parascale.core.formats import writers

    a, b = tmp_path / "out.blend", tmp_path / "sub" / "report.json"
    b.parent.mkdir()
    a.write_text("old a")
    b.write_text("old b")
    ta, tb = (p.parent / f".{p.name}.parascale-tmp-{dead_pid}-0001" for p in (a, b))
    ja, jb = (p.parent / f".{p.name}.parascale-tmp-{dead_pid}-0002-commit.json" for p in (a, b))
    tb.write_text("new b")
    os.replace(tb, b)          # killed after the first move: b new, a old
    ta.write_text("new a")
    plan = json.dumps({"moves": [[str(tb), str(b)], [str(ta), str(a)]], "journals": [str(ja), str(jb)]})
    ja.write_text(plan)
    jb.write_text(plan)
    # the next run writing to b alone finishes the whole set
    writers.clean_stale(b)
    assert (a.read_text(), b.read_text()) == ("new a", "new b")
    assert sorted(os.listdir(tmp_path)) == ["out.blend", "sub"] and os.listdir(b.parent) == ["report.json"]
    # a journal cut short while being written: nothing was moved, the temporaries go
    ta.write_text("newer a")
    ja.write_text('{"moves": [[')
    writers.clean_stale(a)
    assert a.read_text() == "new a" and sorted(os.listdir(tmp_path)) == ["out.blend", "sub"]


def test_a_folder_swap_cut_short_is_undone(tmp_path, dead_pid):
    from parascale.core.formats import writers

    model = tmp_path / "model"
    old = tmp_path / f".model.parascale-tmp-{dead_pid}-0001-old"
    new = tmp_path / f".model.parascale-tmp-{dead_pid}-0002"
    for folder, text in ((old, "old"), (new, "new")):
        folder.mkdir()
        (folder / "images.txt").write_text(text)
    writers.clean_stale(model)  # killed between the two renames: the old folder comes back
    assert (model / "images.txt").read_text() == "old" and os.listdir(tmp_path) == ["model"]


def test_outputs_get_the_users_umask(tmp_path):
    from parascale.core.formats import writers
    from parascale.core.cameras import Track

    track = Track(c2w=np.tile(np.eye(4), (3, 1, 1)), K=np.diag([50.0, 50.0, 1.0]), width=64, height=64,
                  times=np.arange(3) / 24)
    old = os.umask(0o027)
    try:
        writers.write_re10k(track, tmp_path / "p.txt")
        writers.write_colmap(track, tmp_path / "model")
        with writers.AtomicSet([tmp_path / "a.json", tmp_path / "b.json"]) as s:
            s.tmp(tmp_path / "a.json").write_text("a")
            s.tmp(tmp_path / "b.json").write_text("b")
            s.commit()
        r = subprocess.run([sys.executable, BRIDGE, str(tmp_path / "p.txt"), "--generator", "motionctrl",
                            "--size", "32x32", "--out", str(tmp_path / "bridge")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        os.umask(old)
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in tmp_path.rglob("*")}
    for name, mode in modes.items():
        expected = "0o750" if (tmp_path / name).is_dir() else "0o640"
        assert mode == expected, (name, mode)


def test_folder_outputs_never_replace_the_users_files(tmp_path):
    from parascale.core.formats import writers
    from parascale.core.cameras import Track

    track = Track(c2w=np.tile(np.eye(4), (3, 1, 1)), K=np.diag([50.0, 50.0, 1.0]), width=64, height=64,
                  times=np.arange(3) / 24)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(ValueError, match="thesis.tex"):
        writers.write_colmap(track, mine)
    writers.write_re10k(track, tmp_path / "p.txt")
    r = subprocess.run([sys.executable, BRIDGE, str(tmp_path / "p.txt"), "--generator", "motionctrl",
                        "--size", "32x32", "--out", str(mine)], capture_output=True, text=True)
    assert r.returncode == 2 and "thesis.tex" in r.stderr and "Traceback" not in r.stderr
    assert os.listdir(mine) == ["thesis.tex"]
    assert sorted(os.listdir(tmp_path)) == ["mine", "p.txt"]


def test_scratch_folders_of_killed_runs_are_removed(tmp_path, dead_pid, monkeypatch):
    import tempfile

    from parascale.core.formats import writers

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = tmp_path / f"parascale_depth_{dead_pid}_abc"
    left.mkdir()
    (left / "depth_0001.exr").write_bytes(b"x" * 1000)
    live = tmp_path / f"parascale_depth_{os.getpid()}_def"
    live.mkdir()
    unrelated = tmp_path / "parascale_depth_notes"
    unrelated.mkdir()
    new = writers.scratch_dir("parascale_depth_")
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, unrelated.name, os.path.basename(new)])
    assert os.path.basename(new).startswith(f"parascale_depth_{os.getpid()}_")
