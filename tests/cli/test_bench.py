"""`parascale bench --quick --json`: every section present, every figure positive and
finite, every ratio = baseline time / time. Not a timed test: no assertion on speed."""
import json
import math

import pytest


def test_bench_quick_json(tmp_path, capsys):
    pytest.importorskip("bpy")
    pytest.importorskip("cv2")
    from parascale.parascale_blender.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())

    m = data["machine"]
    assert m["cpu"] and m["cores"] >= 1 and m["python"].startswith("3.") and m["bpy"]
    import bpy

    assert m["bpy"] == bpy.app.version_string and f"Blender {bpy.app.version_string}" in printed
    assert data["config"]["quick"] is True
    assert set(data["sections"]) == {"depth", "calibration", "video", "keyframes"}

    for name, section in data["sections"].items():
        rows = section["rows"]
        assert rows, name
        seconds = {r["label"]: r["seconds"] for r in rows}
        for r in rows:
            for key in ("seconds", "per_second", "baseline_seconds", "ratio"):
                assert math.isfinite(r[key]) and r[key] > 0, (name, r["label"], key, r[key])
            # the baseline is a row measured in this same run
            assert r["baseline"] in seconds, (name, r["label"], r["baseline"])
            assert r["baseline_seconds"] == pytest.approx(seconds[r["baseline"]], rel=1e-12)
            assert r["ratio"] == pytest.approx(r["baseline_seconds"] / r["seconds"], rel=1e-9)
            assert r["per_second"] == pytest.approx(1.0 / r["seconds"], rel=1e-9)
            assert r["label"] in printed, r["label"]
        baselines = [r for r in rows if r["baseline"] == r["label"]]
        assert baselines and all(r["ratio"] == pytest.approx(1.0) for r in baselines), name

    depth = data["sections"]["depth"]
    assert len(depth["scenes"]) == 3
    tris = [s["triangles"] for s in depth["scenes"]]
    assert tris == sorted(tris) and tris[0] > 1000
    for s in depth["scenes"]:
        assert {"Z pass rebuilt per frame", "Z pass with reuse", "ray cast"} <= set(s["methods"])
        for m in s["methods"].values():
            assert m["coverage"] > 0.2  # the camera looks at the terrain, not at the sky

    calib = data["sections"]["calibration"]
    for r in calib["rows"]:
        assert r["keyframes"] == calib["keyframes"]
        assert r["total_s"] == pytest.approx(r["seconds"] * r["keyframes"], rel=1e-9)
        if r["label"].startswith("transfer"):
            assert math.isfinite(r["pce"])
    # issue 23: every transfer against the Z pass alone on the default transfer's poses
    assert calib["rows"][0]["label"].startswith("Z pass alone") and calib["z_pass_alone_s"] > 0
    assert all(r["baseline"] == calib["rows"][0]["label"] for r in calib["rows"])
    for m in calib["runs"].values():
        assert m["x_z_pass"] == pytest.approx(m["total_s"] / calib["z_pass_alone_s"], rel=1e-9)
    goal = [t for t in data["targets"] if "the Z pass alone" in t["name"]]
    assert len(goal) == 1 and goal[0]["limit_ratio"] == 1.25 and goal[0]["applies"] is False  # quick
    assert f"{goal[0]['value_ratio']:.2f}x (limit 1.25x)" in printed

    video = data["sections"]["video"]
    assert video["size"] == [960, 540]
    for r in video["rows"]:
        assert r["fps"] == pytest.approx(1.0 / r["seconds"], rel=1e-9)
        assert math.isfinite(r["pi_error"]) and r["pi_error"] >= 0

    keys = data["sections"]["keyframes"]
    assert keys["same_keys"] is True and keys["channels"] == 7

    assert data["targets"]
    for t in data["targets"]:
        assert isinstance(t["met"], bool)
        assert "Targets" in printed
