"""bridge/parascale_bridge.py: the standalone generator bridge.

- its Plucker embedding equals an independent, loop-based numpy re-implementation of
  CameraCtrl's inference path (Camera entry parsing, 1280x720 aspect correction,
  get_relative_pose, ray_condition) on the published RealEstate10K example files, to
  1e-5 relative, both from the original file and from the pose file the bridge writes;
- it runs in a fresh virtual environment holding only numpy;
- bad inputs give one clear error naming the file, exit status 2, and write nothing.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from parascale.core.formats import writers
from parascale.core.cameras import Track, make_c2w
from parascale.core.rotations import matrix_from_quat

BRIDGE = Path(__file__).resolve().parents[2] / "bridge" / "parascale_bridge.py"
EX = "generator_poses/cameractrl_poses"


from generator_refs import cameractrl_reference  # noqa: E402


def run_bridge(*args, python=sys.executable):
    return subprocess.run([python, str(BRIDGE), *map(str, args)], capture_output=True, text=True, timeout=300)


def close(a, b, rel=1e-5):
    scale = np.abs(b).max()
    np.testing.assert_allclose(a, b, rtol=rel, atol=rel * scale)


@pytest.mark.parametrize("name,frames,size", [
    ("main_0bf152ef84195293.txt", 16, "32x48"),
    ("main_0f47577ab3441480.txt", 16, "40x40"),
    ("svdbranch_0c9b371cc6225682_svd.txt", 14, "24x40"),
    ("svdbranch_2c80f9eb0d3b2bb4_svdxt.txt", 25, "20x36"),
])
def test_plucker_matches_cameractrl_ray_condition(data_dir, tmp_path, name, frames, size):
    src = data_dir / EX / name
    out = tmp_path / "out"
    r = run_bridge(src, "--generator", "cameractrl", "--out", out, "--size", size, "--plucker")
    assert r.returncode == 0, r.stderr
    H, W = (int(x) for x in size.split("x"))
    emb = np.load(out / "plucker.npy")
    assert emb.shape == (frames, 6, H, W) and emb.dtype == np.float32
    # the original example as CameraCtrl reads it at this sample size
    close(emb, cameractrl_reference(src, H, W))
    # and the pose file the bridge wrote, as CameraCtrl would read it
    close(emb, cameractrl_reference(out / "poses.txt", H, W))
    cmd = (out / "command.txt").read_text()
    assert "inference.py" in cmd and str(out / "poses.txt") in cmd
    man = json.loads((out / "manifest.json").read_text())
    assert man["frames"] == frames and man["size"] == [H, W]


def test_uni3c_order_and_wan_compensation(data_dir, tmp_path):
    src = data_dir / EX / "main_0bf152ef84195293.txt"
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_bridge(src, "--generator", "cameractrl", "--out", a, "--size", "16x24", "--plucker").returncode == 0
    assert run_bridge(src, "--generator", "uni3c", "--out", b, "--size", "16x24", "--frames", "17",
                      "--plucker").returncode == 0
    # uni3c at 17 frames resamples the 16-frame move: first and last frame coincide; the
    # RealEstate10K file is in the RealEstate10K gauge (3.568), uni3c's is 1 depth, so its
    # translation, and with it the moment o x d, is 1 / 3.568 of CameraCtrl's
    pa, pb = np.load(a / "plucker.npy"), np.load(b / "plucker.npy")
    assert pa.dtype == np.float32 and pb.dtype == np.float16  # Uni3C runs Wan in half precision
    k = 1.0 / 3.568
    np.testing.assert_allclose(pb[0], np.concatenate([pa[0, 3:], pa[0, :3] * k]), atol=1e-3)
    np.testing.assert_allclose(pb[-1], np.concatenate([pa[-1, 3:], pa[-1, :3] * k]), atol=1e-3)
    assert json.loads((b / "manifest.json").read_text())["gauge"]["factor"] == pytest.approx(k)
    # wan-fun-camera: VideoX-Fun's process_pose_file (1280x720 assumed, same code path
    # as CameraCtrl) on the written file gives the embedding the bridge saved
    c = tmp_path / "c"
    assert run_bridge(src, "--generator", "wan-fun-camera", "--out", c, "--size", "12x20",
                      "--frames", "5", "--plucker").returncode == 0
    wan = np.load(c / "plucker.npy")
    assert wan.dtype == np.float16
    close(wan.astype(np.float32), cameractrl_reference(c / "poses.txt", 12, 20), rel=1e-3)  # float16: 2^-11


def _parascale_json(tmp_path, n=20, unit_scale=0.01):
    rng = np.random.default_rng(3)
    R = matrix_from_quat(np.array([1, 0, 0, 0]) + 0.05 * rng.normal(size=(n, 4)))
    c = np.cumsum(rng.normal(size=(n, 3)), 0) * 10
    t = Track(c2w=make_c2w(R, c), K=np.array([[800.0, 0, 480], [0, 800, 270], [0, 0, 1]]),
              width=960, height=540, times=np.arange(n) / 24.0,
              meta={"unit_scale": unit_scale, "fps": 24.0})
    return t, writers.write_parascale(t, tmp_path / "poses.json")


def test_all_generators_and_units(tmp_path):
    t, p = _parascale_json(tmp_path)
    for gen in ("cameractrl", "motionctrl", "wan-fun-camera", "recammaster", "gen3c", "uni3c"):
        out = tmp_path / gen
        r = run_bridge(p, "--generator", gen, "--out", out, "--size", "8x12", "--speed", "2")
        assert r.returncode == 0, (gen, r.stderr)
        assert (out / "command.txt").read_text().strip()
        # no depth scale recorded in this file: metres 1:1, said on stderr and in the manifest
        assert "records no scene depth scale" in r.stderr
        assert json.loads((out / "manifest.json").read_text())["gauge"]["scene_depth_scale"] is None
    # recammaster: 81 frames, centimetres; ReCamMaster's reading gives metres x speed
    data = json.loads((tmp_path / "recammaster" / "camera_extrinsics.json").read_text())
    assert len(data) == 81
    first = writers.parse_ue_matrix(data["frame0"]["cam01"])[3, :3]
    last = writers.parse_ue_matrix(data["frame80"]["cam01"])[3, :3]
    dist_m = np.linalg.norm(last - first) / 100
    np.testing.assert_allclose(dist_m, np.linalg.norm(t.centers[-1] - t.centers[0]) * 0.01 * 2, rtol=1e-4)
    # gen3c: absolute w2c in metres, 121 frames
    cam = np.load(tmp_path / "gen3c" / "camera.npz")
    assert cam["w2c"].shape == (121, 4, 4)
    np.testing.assert_allclose(np.linalg.inv(cam["w2c"][-1])[:3, 3], t.centers[-1] * 0.01 * 2, atol=1e-9)
    # motionctrl: relative w2c, identity first, one file per name its scripts read
    rows = json.loads((tmp_path / "motionctrl" / "camera_poses" / "test_camera_parascale.json").read_text())
    np.testing.assert_allclose(np.array(rows[0]).reshape(3, 4), np.eye(4)[:3], atol=1e-12)
    assert (tmp_path / "motionctrl" / "camera_poses" / "test_camera_L.json").exists()


def test_bad_inputs_write_nothing(tmp_path):
    t, good = _parascale_json(tmp_path)
    bad_json = tmp_path / "broken.json"
    bad_json.write_text('{"schema": "parascale.poses", "version": 1, "frames": [')
    one = tmp_path / "one.json"
    doc = json.loads(good.read_text())
    doc["frames"] = doc["frames"][:1]
    one.write_text(json.dumps(doc))
    cases = [
        ((good, "--generator", "sora"), "unknown generator 'sora'", good.name),
        ((good, "--generator", "recammaster", "--frames", "49"), "does not support 49 frames", good.name),
        ((good, "--generator", "cameractrl", "--frames", "81"), "does not support 81 frames", good.name),
        ((bad_json, "--generator", "cameractrl"), "malformed JSON", bad_json.name),
        ((one, "--generator", "cameractrl"), "at least 2", one.name),
        ((tmp_path / "missing.json", "--generator", "cameractrl"), "cannot read", "missing.json"),
        ((good, "--generator", "cameractrl", "--size", "big"), "--size", "--size"),
    ]
    before = sorted(os.listdir(tmp_path))
    for args, message, named in cases:
        r = run_bridge(*args, "--out", tmp_path / "out")
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert message in r.stderr and named in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
        assert sorted(os.listdir(tmp_path)) == before  # nothing written, no temporaries


def test_run_reports_what_is_missing(tmp_path):
    _, p = _parascale_json(tmp_path)
    repo = tmp_path / "ReCamMaster"
    repo.mkdir()
    (repo / "inference_recammaster.py").write_text("raise SystemExit('must not run')\n")
    r = run_bridge(p, "--generator", "recammaster", "--out", tmp_path / "o", "--size", "8x12", "--run", repo)
    assert r.returncode == 3
    assert "models/ReCamMaster/checkpoints/step20000.ckpt" in r.stderr
    assert "example_test_data/cameras" in r.stderr
    assert "<VIDEO_FOLDER_WITH_METADATA_CSV>" in r.stderr
    assert (tmp_path / "o" / "camera_extrinsics.json").exists()  # files are still written
    r = run_bridge(p, "--generator", "gen3c", "--out", tmp_path / "g", "--size", "8x12", "--run", tmp_path / "nope")
    assert r.returncode == 3 and "clone https://github.com/nv-tlabs/GEN3C" in r.stderr


def test_bridge_runs_in_fresh_numpy_only_venv(tmp_path):
    """The bridge needs numpy only: a fresh python3.11 venv with numpy==1.26.4."""
    venv = tmp_path / "venv"
    py311 = "python3.11"
    r = subprocess.run([py311, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot create a python3.11 venv here: {r.stderr.strip()[:200]}")
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "numpy==1.26.4"], capture_output=True, text=True,
                       timeout=600)
    if r.returncode != 0:
        pytest.skip(f"pip could not install numpy (offline?): {r.stderr.strip()[-300:]}")
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True).stdout
    pkgs = {l.split("==")[0].lower() for l in listed.split()}
    assert "numpy" in pkgs and not pkgs & {"bpy", "parascale", "torch", "opencv-python-headless"}
    _, p = _parascale_json(tmp_path)
    out = tmp_path / "out"
    r = run_bridge(p, "--generator", "cameractrl", "--out", out, "--size", "8x12", "--plucker", python=py)
    assert r.returncode == 0, r.stderr
    assert np.load(out / "plucker.npy").shape == (16, 6, 8, 12)
    r = run_bridge(p, "--generator", "cameractrl", "--out", out, "--size", "8x12", "--run", tmp_path, python=py)
    assert r.returncode == 3 and "PyTorch" in r.stderr


def test_wan_default_output_is_small_and_the_tensor_only_when_asked(tmp_path):
    """Wan at its defaults (81 frames, 480x832): the pose file and the runner, well under
    10 MB, no plucker.npy (it would be 776 MB as float32), and the output says so; --plucker
    writes it, in float16 for Wan (its models run in half precision), float32 for CameraCtrl."""
    _, p = _parascale_json(tmp_path)
    out = tmp_path / "wan"
    r = run_bridge(p, "--generator", "wan-fun-camera", "--out", out)
    assert r.returncode == 0, r.stderr
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert size < 10e6, size
    assert not (out / "plucker.npy").exists()
    man = json.loads((out / "manifest.json").read_text())
    assert man["frames"] == 81 and man["size"] == [480, 832]
    rec = man["plucker"]
    assert rec["written"] is False and rec["shape"] == [81, 6, 480, 832] and rec["dtype"] == "float16"
    assert "--plucker" in rec["note"] and "plucker.npy: not written" in r.stdout
    # asked for: written, float16 for Wan, equal to the float32 embedding to half precision
    small = tmp_path / "wan_small"
    r = run_bridge(p, "--generator", "wan-fun-camera", "--out", small, "--size", "16x24", "--frames", "9",
                   "--plucker")
    assert r.returncode == 0, r.stderr
    wan = np.load(small / "plucker.npy")
    assert wan.dtype == np.float16 and wan.shape == (9, 6, 16, 24)
    assert "plucker.npy: written, float16 9x6x16x24" in r.stdout
    assert json.loads((small / "manifest.json").read_text())["plucker"]["written"] is True
    bridge = _load_bridge()
    track = bridge.load_poses(p)
    factor = bridge.gauge_factor("wan-fun-camera", track, 1.0)[0]
    K = bridge.resample(track["c2w"], track["K"], track["times"], 9)[1]
    full = bridge.plucker(bridge.relative_to_first(bridge.build_poses(track, 9, factor)),
                          bridge.fit_intrinsics(K, track["width"], track["height"], 16, 24), 16, 24)
    assert np.abs(wan.astype(np.float32) - full).max() <= 1e-3 * np.abs(full).max()
    cc = tmp_path / "cc"
    r = run_bridge(p, "--generator", "cameractrl", "--out", cc, "--size", "16x24", "--plucker")
    assert r.returncode == 0, r.stderr
    assert np.load(cc / "plucker.npy").dtype == np.float32


def _load_bridge():
    import importlib.util

    spec = importlib.util.spec_from_file_location("parascale_bridge_under_test", BRIDGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
