"""The same transfer on every supported Blender gives the same keys.

Each version runs in its own venv (its own Python and PyPI bpy), so this test drives
them as subprocesses: each builds the same test scene, runs `parascale transfer` on a
real RealEstate10K track and its video, and exports the keyed result; the reports and
the keys must agree to 1e-6 relative. `make test-all` (and .ci/run) sets
PARASCALE_BLENDER_VENVS to every version's venv; a single-version `make test` skips it.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]

SCENE_SCRIPT = """
import sys
import bpy
sys.path.insert(0, {tests!r})
from analytic_scenes import reference_move
from blender_scenes import add_camera, build_tabletop

bpy.ops.wm.read_factory_settings(use_empty=True)
scale = 100.0  # a tabletop 100 times larger than the clip's room is deep
build_tabletop(bpy, scale)
target = add_camera(bpy, "Target", reference_move(12, scale)[0])
target.data.clip_start, target.data.clip_end = 0.01 * scale, 100 * scale
scene = bpy.context.scene
scene.camera = target
scene.frame_start, scene.frame_end = 1, 12
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[1])
print("BLENDER", bpy.app.version_string)
"""


def venvs():
    value = os.environ.get("PARASCALE_BLENDER_VENVS", "").split()
    if not value:
        pytest.skip("compares Blender versions: `make test-all` (or .ci/run) sets PARASCALE_BLENDER_VENVS "
                    "to every supported version's venv")
    found = {}
    for v in value:
        python = (REPO / v / "bin" / "python") if not Path(v).is_absolute() else Path(v) / "bin" / "python"
        assert python.is_file(), f"PARASCALE_BLENDER_VENVS names {v}, which has no bin/python (make setup BLENDER=...)"
        found[v] = python
    assert len(found) >= 2, f"PARASCALE_BLENDER_VENVS={value}: need at least two versions to compare"
    return found


def run(cmd, cwd):
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def test_same_transfer_same_keys_on_every_blender(data_dir, tmp_path):
    pythons = venvs()
    clip = data_dir / "cameractrl_realestate10k" / "assets"
    track, video = clip / "pose_files" / "0bf152ef84195293.txt", clip / "reference_videos" / "0bf152ef84195293.mp4"
    script = tmp_path / "scene.py"
    script.write_text(SCENE_SCRIPT.format(tests=str(TESTS)))
    results = {}
    for name, python in pythons.items():
        out = tmp_path / name.strip("/").replace("/", "_")
        out.mkdir()
        blender = run([python, script, out / "target.blend"], out).split("BLENDER ")[-1].strip()
        run([python, "-m", "parascale", "transfer", "--track", track, "--video", video,
             "--target", out / "target.blend", "--camera", "Target", "--estimator", "flow",
             "--output", out / "out.blend", "--report", out / "report.json"], out)
        run([python, "-m", "parascale", "export", "--blend", out / "out.blend", "--camera", "Target.ParaScale",
             "--format", "parascale", "--output", out / "poses.json"], out)
        report = json.loads((out / "report.json").read_text())
        poses = json.loads((out / "poses.json").read_text())
        results[name] = (blender, report, poses)
    names = list(results)
    print("compared:", {n: results[n][0] for n in names})
    base_blender, base, base_poses = results[names[0]]
    assert base["frames"] == list(range(1, 13)) and base["pce"] < 1e-6
    for name in names[1:]:
        blender, report, poses = results[name]
        label = f"Blender {blender} vs {base_blender}"
        assert report["frames"] == base["frames"], label
        for key in ("pi_ref", "pi_target", "scale"):
            np.testing.assert_allclose(report[key], base[key], rtol=1e-6, atol=0, err_msg=f"{label}: {key}")
        a, b = _keys(poses), _keys(base_poses)
        assert a.shape == b.shape, label
        # Keys to 1e-6 relative: translations against the size of the move, rotations as is.
        size = np.abs(b[:, :3, 3]).max()
        np.testing.assert_allclose(a[:, :3, 3], b[:, :3, 3], rtol=0, atol=1e-6 * size, err_msg=f"{label}: centres")
        np.testing.assert_allclose(a[:, :3, :3], b[:, :3, :3], rtol=0, atol=1e-6, err_msg=f"{label}: rotations")
        print(f"{label}: max |diff| centres {np.abs(a[:, :3, 3] - b[:, :3, 3]).max() / size:.1e} (relative), "
              f"rotations {np.abs(a[:, :3, :3] - b[:, :3, :3]).max():.1e}, "
              f"scale {np.abs(np.array(report['scale']) / base['scale'] - 1).max():.1e} (relative)")


def _keys(poses) -> np.ndarray:
    """c2w per frame from a ParaScale pose file."""
    frames = poses["frames"] if isinstance(poses, dict) else poses
    return np.array([f["c2w"] if isinstance(f, dict) else f for f in frames], float)
