"""The embedded demo end to end (quick form) and the closed-loop `evaluate` command."""
import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def demo_run():
    """`parascale demo --quick` once per content (conftest.cached_folder: the code, bpy,
    and the real scene it adds when the data is there); tests only read its outputs."""
    pytest.importorskip("bpy")
    from conftest import cached_folder, data_root

    from parascale.parascale_blender.cli import main

    def build(out):
        assert main(["demo", "--quick", "--out", str(out)]) == 0

    root = data_root()
    ship = root / "real_scenes" / "dutch_ship" if root is not None else None
    return cached_folder("demo", ["demo --quick", ship if ship is not None and ship.is_dir() else None], build)


def test_demo_writes_every_artifact_with_the_documented_report(demo_run):
    report = json.loads((demo_run / "report.json").read_text())
    assert report["measured_by"] == "optical_flow"
    assert report["scales"] == [0.01, 10000.0]
    assert set(report["methods"]) == {"raw", "harmonic", "flow"}
    for method, row in report["methods"].items():
        for key in ("trans_err", "rot_err"):
            assert len(row[key]) == 2 and all(np.isfinite(row[key]))
        # a PCE, or None where optical flow could not measure (raw at x0.01 flies 100x too far
        # and out of the scene: nothing left to trust), never a number made of untrusted flow
        assert len(row["pce"]) == 2 and all(v is None or np.isfinite(v) for v in row["pce"])
        assert method == "raw" or None not in row["pce"]
    md = (demo_run / "report.md").read_text()
    assert "| flow |" in md and "PCE x10000" in md
    png = (demo_run / "identity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # the reference went out as a COLMAP model and came back in
    assert (demo_run / "reference_colmap" / "images.txt").is_file()
    assert len(list((demo_run / "reference_video").glob("*.png"))) == 16


def test_demo_meets_the_targets_measured_by_flow_on_renders(demo_run):
    methods = json.loads((demo_run / "report.json").read_text())["methods"]
    assert max(methods["flow"]["pce"]) <= 0.10
    assert max(methods["harmonic"]["pce"]) <= 0.20
    for i in range(2):  # both scale ratios are 100 or more away from 1: raw 10x worse, or beyond measuring
        raw = methods["raw"]["pce"][i]
        assert raw is None or raw >= 10 * methods["flow"]["pce"][i]
    # Rotation is copied unchanged, so RotErr is tiny for every method.
    assert max(max(r["rot_err"]) for r in methods.values()) < 0.5


def test_demo_blend_holds_reference_raw_and_calibrated_cameras(demo_run, fresh_blender):
    bpy = fresh_blender
    bpy.ops.wm.open_mainfile(filepath=str(demo_run / "demo.blend"))
    names = set(bpy.data.objects.keys())
    assert "Reference" in names
    for ratio in ("0.01", "10000"):
        for method in ("raw", "harmonic", "flow"):
            obj = bpy.data.objects[f"Target x{ratio}.{method}"]
            assert obj.type == "CAMERA" and obj.animation_data.action is not None


def test_evaluate_command_reproduces_the_demo_figure(demo_run, tmp_path):
    from parascale.parascale_blender.cli import main

    report = json.loads((demo_run / "report.json").read_text())
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--blend", str(demo_run / "demo.blend"), "--camera", "Target x10000.flow",
                 "--reference", str(demo_run / "reference_colmap"), "--video", str(demo_run / "reference_video"),
                 "--render-size", "320", "--no-denoise", "--json", str(out)])  # as the demo renders
    assert code == 0
    got = json.loads(out.read_text())
    assert got["measured_by"] == "optical_flow"
    assert got["frames"] == list(range(1, 17))
    assert got["pce"] == pytest.approx(report["methods"]["flow"]["pce"][1], abs=2e-3)
    assert {"pce", "pce_p90", "trans_err", "rot_err", "pi_realised", "misses"} <= set(got)


def test_evaluate_refuses_a_camera_without_animation(demo_run, tmp_path, capsys):
    from parascale.parascale_blender.cli import main

    code = main(["evaluate", "--blend", str(demo_run / "demo.blend"), "--camera", "Target x10000",
                 "--json", str(tmp_path / "e.json")])
    assert code == 2
    assert "has no animation" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


def test_demo_adds_a_real_scene_when_the_data_is_there(demo_run):
    """With the real data set, the report and identity.png gain the glTF ship, calibrated
    with the default for a video reference and measured by geometry."""
    from conftest import data_root

    root = data_root()
    if root is None or not (root / "real_scenes" / "dutch_ship").is_dir():
        pytest.skip("real data not available: set PARASCALE_DATA to the shared data folder (real_scenes/)")
    report = json.loads((demo_run / "report.json").read_text())
    real = report["real_scene"]
    assert real["scene"] == "dutch_ship" and real["method"] == "exact"
    assert real["pce_geometry"] <= 0.10
    assert real["pce_flow_covered"] <= 0.10  # renders and flow, over the same pixels, agree
    assert min(real["coverage"]) > 0.01  # the ship stays in frame
    assert "A real scene: dutch_ship" in (demo_run / "report.md").read_text()
