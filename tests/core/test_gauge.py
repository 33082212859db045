"""Poses in each generator's own gauge (core.gauge, export, the bridge).

- the RealEstate10K gauge in the table equals a fresh measurement on the real clips,
  and the bridge's copy of the table equals core.gauge's;
- the demo's calibrated moves into its x0.01 and x10^4 scenes export the same
  CameraCtrl, MotionCtrl, Wan and ReCamMaster files (real bpy, Cycles Z pass);
- a RealEstate10K clip's own track, measured and exported for CameraCtrl, keeps its
  translation scale within the spread of the measured gauge;
- the Plucker embedding CameraCtrl's own logic computes from an exported file equals
  the bridge's tensor;
- range warnings fire on a move 10x faster than the training range, not on the
  training clips themselves;
- CamI2V's RotErr, TransErr and CamMC on analytic cases.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from parascale.core import gauge, metrics
from parascale.core.formats import readers, writers
from parascale.core.cameras import Track, make_c2w
from parascale.core.rotations import matrix_from_quat

REPO = Path(__file__).resolve().parents[2]
RE10K = "cameractrl_realestate10k"


def load_bridge():
    spec = importlib.util.spec_from_file_location("parascale_bridge_under_test", REPO / "bridge" / "parascale_bridge.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rel_close(a, b, rel=1e-6):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    scale = np.abs(b).max()
    assert np.abs(a - b).max() <= rel * scale, (np.abs(a - b).max() / scale)


# ---------------------------------------------------------------------------
# The table

@pytest.fixture(scope="module")
def re10k_measured():
    from conftest import data_root

    root = data_root()
    if root is None or not (root / RE10K).is_dir():
        pytest.skip("real data not available: set PARASCALE_DATA to the shared data folder")
    return gauge.measure_re10k(root / RE10K)


def test_table_equals_a_fresh_measurement_of_the_realestate10k_clips(re10k_measured):
    m = re10k_measured
    assert m["n_clips"] == 10 and m["n_steps"] == 150
    assert m["gauge"] == pytest.approx(gauge.RE10K_DEPTH, rel=1e-3)
    for name in ("cameractrl", "wan-fun-camera", "motionctrl", "cami2v", "ac3d"):
        g = gauge.GAUGES[name]
        assert g.depth == gauge.RE10K_DEPTH and g.kind == "measured"
    # the ranges cover every measured step and clip, and not much more (rounded outwards)
    lo, hi = m["pi_step_range"]
    assert gauge.RE10K_PI_STEP[0] <= lo < 1.02 * gauge.RE10K_PI_STEP[0]
    assert 0.99 * gauge.RE10K_PI_STEP[1] < hi <= gauge.RE10K_PI_STEP[1]
    plo, phi = m["path_range"]
    assert gauge.RE10K_PATH[0] <= plo < 1.02 * gauge.RE10K_PATH[0]
    assert 0.99 * gauge.RE10K_PATH[1] < phi <= gauge.RE10K_PATH[1]
    # the spread the docs report
    assert m["clip_medians"]["p0"] == pytest.approx(1.922, abs=2e-3)
    assert m["clip_medians"]["p100"] == pytest.approx(4.247, abs=2e-3)


def test_bridge_table_is_a_copy_of_core_gauge():
    bridge = load_bridge()
    assert set(bridge.GAUGES) <= set(gauge.GAUGES)
    for name, b in bridge.GAUGES.items():
        g = gauge.GAUGES[name]
        assert b["depth"] == pytest.approx(g.depth, rel=1e-12), name
        assert b["pi_step"] == pytest.approx(g.pi_step, rel=1e-12), name
        assert b["path"] == pytest.approx(g.path, rel=1e-12), name
        assert b["frames"] == g.frames, name


# ---------------------------------------------------------------------------
# Range check on the real training clips

def test_range_warnings_fire_on_a_10x_move_and_not_on_training_clips(re10k_measured, tmp_path):
    from conftest import data_root

    root = data_root() / RE10K / "assets" / "pose_files"
    fastest = None
    for clip in re10k_measured["clips"]:
        track = readers.read_track(root / f"{clip['clip']}.txt", size=(384, 256))
        c2w = gauge.scale_translation(track.c2w, gauge.gauge_factor("cameractrl", clip["depth_median"]))
        for name in ("cameractrl", "motionctrl", "wan-fun-camera", "cami2v"):
            check = gauge.move_in_range(name, c2w)
            assert check["warnings"] == [], (clip["clip"], check["warnings"])
            assert 0.0 <= check["position"] <= 1.0
        if fastest is None or max(clip["pi_gauge"]) > max(fastest[1]["pi_gauge"]):
            fastest = (c2w, clip)
    c2w, clip = fastest
    hi = gauge.RE10K_PI_STEP[1]
    k = 10 * hi / max(clip["pi_gauge"])          # its fastest step 10x the training maximum
    check = gauge.move_in_range("cameractrl", gauge.scale_translation(c2w, k), list(range(101, 117)))
    fast_step = int(np.argmax(clip["pi_gauge"])) + 1
    assert 101 + fast_step in check["too_fast"]
    assert any("faster than its training data" in w for w in check["warnings"])
    named = gauge._frames_text(check["too_fast"])  # e.g. "102-116": names the frames
    assert named.startswith(str(check["too_fast"][0])) and any(f"frames {named} " in w for w in check["warnings"])
    assert check["position"] > 1.0
    # the bridge says it too, on stderr and in its manifest
    bridge = load_bridge()
    t = Track(c2w=c2w, K=np.array([[300.0, 0, 192], [0, 300, 128], [0, 0, 1]]), width=384, height=256,
              times=np.arange(16) / 8.0, meta={"gauge": {"scene_depth_scale": gauge.RE10K_DEPTH}})
    p = writers.write_parascale(t, tmp_path / "clip.json")
    for speed, warned in ((1.0, False), (k, True)):
        out = tmp_path / f"out{speed:g}"
        assert bridge.main([str(p), "--generator", "cameractrl", "--out", str(out), "--size", "8x12",
                            "--speed", str(speed)]) == 0
        man = json.loads((out / "manifest.json").read_text())
        assert bool(man["range_warnings"]) == warned
        assert man["gauge"]["factor"] == pytest.approx(speed)


def test_a_realestate10k_clip_keeps_its_scale_through_measure_and_export(data_dir, tmp_path, re10k_measured):
    """The clip's own track, its depth scale measured from its video, written as a ParaScale
    json and exported by the bridge for CameraCtrl: the written translation is the
    original's times gauge / D_clip, inside the spread of the measured gauge."""
    bridge = load_bridge()
    lo = gauge.RE10K_DEPTH / re10k_measured["clip_medians"]["p100"]
    hi = gauge.RE10K_DEPTH / re10k_measured["clip_medians"]["p0"]
    for clip_id in ("0bf152ef84195293", "4a2d6753676df096"):  # the farthest and the nearest clip
        pose = data_dir / RE10K / "assets" / "pose_files" / f"{clip_id}.txt"
        clip = gauge.measure_clip(pose, data_dir / RE10K / "assets" / "reference_videos" / f"{clip_id}.mp4")
        track = readers.read_track(pose, size=(384, 256))
        meta = dict(track.meta)
        meta["gauge"] = {"scene_depth_scale": clip["depth_median"]}
        p = writers.write_parascale(Track(c2w=track.c2w, K=track.K, width=384, height=256, times=track.times,
                                          meta=meta), tmp_path / f"{clip_id}.json")
        out = tmp_path / clip_id
        assert bridge.main([str(p), "--generator", "cameractrl", "--out", str(out), "--size", "8x12"]) == 0
        written = readers.read_track(out / "poses.txt", "re10k", size=(12, 8))
        ratio = (np.linalg.norm(np.diff(written.c2w[:, :3, 3], axis=0), axis=1).sum()
                 / np.linalg.norm(np.diff(track.c2w[:, :3, 3], axis=0), axis=1).sum())
        assert ratio == pytest.approx(gauge.RE10K_DEPTH / clip["depth_median"], rel=1e-6)
        assert lo * (1 - 1e-6) <= ratio <= hi * (1 + 1e-6)  # the two clips are the spread's ends


# ---------------------------------------------------------------------------
# Scale invariance through Blender (the demo's scenes, small)

@pytest.fixture(scope="module")
def demo_exports(tmp_path_factory):
    bpy = pytest.importorskip("bpy")
    from parascale.core.cameras import look_at, steps
    from parascale.parascale_blender import export, pipeline
    from parascale.parascale_blender.demo import run as demo
    from parascale.parascale_blender.export import export_with_gauge

    bpy.ops.wm.read_factory_settings(use_empty=True)
    root = tmp_path_factory.mktemp("gauge_demo")
    ref = demo.reference_move(8)
    d, _ = steps(ref)
    out = {}
    try:
        for ratio in (1e-2, 1e4):
            scene = demo.build_space(ratio)
            if bpy.context.window is not None:
                bpy.context.window.scene = scene
            start = look_at(np.array([-0.4, -1.3, 0.35]) * ratio, np.array([0.0, 0.3, 0.25]) * ratio)
            target = demo._camera(scene, f"Target x{ratio:g}", start, ratio)
            scene.camera = target
            reference = pipeline.ReferenceMotion(ref, np.arange(8) / 24.0, np.linalg.norm(d, axis=1) / 1.2,
                                                 "harmonic", "scene", "Reference")
            result = pipeline.transfer(scene, target, reference, pipeline.TransferOptions(
                method="harmonic", result_name=f"Target x{ratio:g}.harmonic"))
            folder = root / f"x{ratio:g}"
            folder.mkdir()
            files = {}
            for fmt, name, n in (("re10k", "cameractrl.txt", 16), ("motionctrl", "motionctrl.json", 16),
                                 ("recammaster", "recammaster.json", None), ("parascale", "poses.json", None)):
                files[fmt] = export_with_gauge(scene, result.camera, fmt, folder / name, frames=n)
            files["scene_units"] = export_with_gauge(scene, result.camera, "re10k", folder / "scene.txt",
                                                     generator="scene")
            files["fast"] = export_with_gauge(scene, result.camera, "re10k", folder / "fast.txt", frames=16,
                                              speed=40.0)
            files["preview"] = export.gauge_preview(scene, result.camera, "cameractrl", frames=16)
            out[ratio] = (folder, files)
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    return out


def test_calibrated_moves_export_the_same_files_from_scenes_1e6_apart(demo_exports):
    (fa, ea), (fb, eb) = demo_exports[1e-2], demo_exports[1e4]
    # before the gauge: scene units, 10^6 apart
    sa = readers.read_track(fa / "scene.txt", "re10k", size=(320, 180)).c2w[:, :3, 3]
    sb = readers.read_track(fb / "scene.txt", "re10k", size=(320, 180)).c2w[:, :3, 3]
    assert np.linalg.norm(sb[-1] - sb[0]) / np.linalg.norm(sa[-1] - sa[0]) == pytest.approx(1e6, rel=1e-5)
    # the scene depth scales are 10^6 apart too; the gauge records both scales
    ga, gb = ea["re10k"].gauge, eb["re10k"].gauge
    assert gb["scene_depth_scale"] / ga["scene_depth_scale"] == pytest.approx(1e6, rel=1e-6)
    assert ga["generator"] == "cameractrl" and ga["generator_depth_scale"] == gauge.RE10K_DEPTH
    assert ga["depth_frame"] == 1 and ga["depth_estimator"] == "flow"
    # after: the same files
    ra = readers.read_track(fa / "cameractrl.txt", "re10k", size=(320, 180))
    rb = readers.read_track(fb / "cameractrl.txt", "re10k", size=(320, 180))
    rel_close(ra.c2w, rb.c2w)
    rel_close(writers.read_motionctrl(fa / "motionctrl.json").c2w, writers.read_motionctrl(fb / "motionctrl.json").c2w)
    # ReCamMaster's file prints 6 significant digits (as published): equal to that precision
    ma, mb = (np.stack([writers.parse_ue_matrix(v["cam01"]) for v in json.loads((f / "recammaster.json")
              .read_text()).values()]) for f in (fa, fb))
    np.testing.assert_allclose(ma, mb, rtol=1e-5, atol=1e-5 * np.abs(mb).max())
    assert len(ma) == 81
    # in the RealEstate10K gauge: the move's first step has the Pi it shows in the scene
    man = json.loads(Path(ea["re10k"].paths[2]).read_text())
    assert man["gauge"]["factor"] == pytest.approx(gauge.RE10K_DEPTH / ga["scene_depth_scale"])
    assert man["warnings"] == [] and ea["re10k"].warnings == []
    # the ParaScale json keeps scene units and records the depth scale
    pa = json.loads((fa / "poses.json").read_text())
    assert pa["meta"]["gauge"]["scene_depth_scale"] == pytest.approx(ga["scene_depth_scale"])
    # --speed is an explicit multiplier on top, and a 40x move warns naming frames
    fast = readers.read_track(fa / "fast.txt", "re10k", size=(320, 180)).c2w[:, :3, 3]
    rel_close(fast, ra.c2w[:, :3, 3] * 40.0)
    assert ea["fast"].warnings and "frames" in ea["fast"].warnings[0]
    # the panel's view of the same move: inside the training range, same numbers at both scales
    pv_a, pv_b = ea["preview"], eb["preview"]
    assert pv_a["warnings"] == [] and 0.0 <= pv_a["position"] <= 1.0
    assert pv_a["position"] == pytest.approx(pv_b["position"], rel=1e-6)
    assert pv_a["gauge"]["factor"] == pytest.approx(ga["factor"], rel=1e-9)
    # a move with a frame count the generator does not take is flagged
    sa8 = readers.read_track(fa / "scene.txt", "re10k", size=(320, 180))
    assert len(sa8) == 8 and gauge.frame_count_problem("cameractrl", 8)


def test_bridge_files_from_both_scales_are_the_same_and_plucker_matches_cameractrl(demo_exports, tmp_path):
    from generator_refs import cameractrl_reference

    bridge = load_bridge()
    outs = {}
    for ratio, (folder, _) in demo_exports.items():
        for gen, frames in (("cameractrl", 16), ("wan-fun-camera", 17), ("motionctrl", 16), ("recammaster", 81)):
            out = tmp_path / f"{gen}_{ratio:g}"
            assert bridge.main([str(folder / "poses.json"), "--generator", gen, "--out", str(out),
                                "--size", "12x20", "--frames", str(frames), "--plucker"]) == 0
            outs[(gen, ratio)] = out
    for gen in ("cameractrl", "wan-fun-camera"):
        a, b = outs[(gen, 1e-2)], outs[(gen, 1e4)]
        rel_close(readers.read_track(a / "poses.txt", "re10k", size=(20, 12)).c2w,
                  readers.read_track(b / "poses.txt", "re10k", size=(20, 12)).c2w)
        pa = np.load(a / "plucker.npy").astype(np.float64)
        tol = 1e-5 if gen == "cameractrl" else 1e-3  # float32 for CameraCtrl, float16 for Wan
        rel_close(pa, np.load(b / "plucker.npy"), rel=tol)
        # CameraCtrl's ray_condition path (1280x720 aspect correction) on the written file
        np.testing.assert_allclose(pa, cameractrl_reference(a / "poses.txt", 12, 20), rtol=tol, atol=tol)
        assert json.loads((a / "manifest.json").read_text())["gauge"]["generator_depth_scale"] == gauge.RE10K_DEPTH
    # the file `parascale export --format re10k` wrote (16 frames, in CameraCtrl's gauge), read by
    # CameraCtrl's own logic, gives the bridge's tensor for the same camera
    for ratio, (folder, _) in demo_exports.items():
        np.testing.assert_allclose(cameractrl_reference(folder / "cameractrl.txt", 12, 20),
                                   np.load(outs[("cameractrl", ratio)] / "plucker.npy"), rtol=1e-5, atol=1e-5)
    a, b = outs[("motionctrl", 1e-2)], outs[("motionctrl", 1e4)]
    rel_close(np.array(json.loads((a / "camera_poses" / "test_camera_parascale.json").read_text())),
              np.array(json.loads((b / "camera_poses" / "test_camera_parascale.json").read_text())))
    a, b = outs[("recammaster", 1e-2)], outs[("recammaster", 1e4)]
    rel_close(np.load(a / "camera_embedding.npy"), np.load(b / "camera_embedding.npy"), rel=1e-5)
    man = json.loads((a / "manifest.json").read_text())
    assert man["gauge"]["generator_depth_scale"] == pytest.approx(1050.0 ** 0.25)


# ---------------------------------------------------------------------------
# CamI2V's metrics

def _traj(n=12, seed=0):
    rng = np.random.default_rng(seed)
    R = matrix_from_quat(np.array([1.0, 0, 0, 0]) + 0.1 * rng.normal(size=(n, 4)))
    return make_c2w(R, np.cumsum(rng.normal(size=(n, 3)), 0))


def test_cami2v_metrics_on_analytic_cases():
    a = _traj()
    zero = metrics.cami2v_errors(a, a)
    assert zero == pytest.approx({"cami2v_rot_err": 0.0, "cami2v_trans_err": 0.0, "cami2v_cammc": 0.0}, abs=1e-6)
    # a scaled copy in another world frame: relative and normalised, so scale free
    W = make_c2w(matrix_from_quat(np.array([0.9, 0.1, -0.3, 0.2])), np.array([5.0, -2, 1]))
    b = W[None] @ a
    s = a.copy()
    s[:, :3, 3] *= 1000.0
    assert metrics.cami2v_errors(s, a)["cami2v_trans_err"] == pytest.approx(0.0, abs=1e-9)
    assert metrics.cami2v_errors(b, a)["cami2v_rot_err"] == pytest.approx(0.0, abs=1e-6)
    # each relative pose turned by 2 degrees about its own z: RotErr = (n-1) * 2 degrees in radians
    from analytic_scenes import rot

    turned = a.copy()
    rel = np.linalg.inv(a[0])[None] @ a
    rel[1:, :3, :3] = rel[1:, :3, :3] @ rot(2, 2.0)
    turned = a[0][None] @ rel
    e = metrics.cami2v_errors(turned, a)
    assert e["cami2v_rot_err"] == pytest.approx(11 * np.radians(2.0), rel=1e-6)
    assert e["cami2v_trans_err"] == pytest.approx(0.0, abs=1e-9)
    # CamMC of a pure rotation error: Frobenius norm of R(I - Rz)
    assert e["cami2v_cammc"] == pytest.approx(11 * np.linalg.norm(np.eye(3) - rot(2, 2.0)), rel=1e-6)


# ---------------------------------------------------------------------------
# The depth-scale rule and the range check on analytic cases

def test_depth_scale_of_a_fronto_parallel_wall_is_its_distance_and_scales_with_the_scene():
    K = np.array([[50.0, 0, 32], [0, 50, 18], [0, 0, 1]])
    Z = np.full((36, 64), 7.0)
    # trucking sideways: every pixel moves |d| / Z, so the depth scale is the wall's distance
    assert gauge.depth_scale(Z, K, np.array([1.0, 0, 0])) == pytest.approx(7.0, rel=1e-12)
    # half the view empty (background moves by zero): twice the depth scale
    Zh = Z.copy()
    Zh[:, :32] = np.inf
    assert gauge.depth_scale(Zh, K, np.array([0.0, 1, 0])) == pytest.approx(14.0, rel=1e-12)
    # gauge invariant: scene x s -> depth scale x s, hence the same factor for the same move x s
    for s in (1e-2, 1e4):
        assert gauge.depth_scale(Z * s, K, np.array([0.3, 0.1, 1.0])) == pytest.approx(
            s * gauge.depth_scale(Z, K, np.array([0.3, 0.1, 1.0])), rel=1e-12)
    with pytest.raises(gauge.GaugeError, match="only background"):
        gauge.depth_scale(np.full((4, 4), np.inf), K, np.array([1.0, 0, 0]))


def test_range_check_of_a_move_without_translation_and_frame_counts():
    R = matrix_from_quat(np.array([[1.0, 0, 0.01 * i, 0] for i in range(16)]))
    still = make_c2w(R, np.zeros((16, 3)))
    check = gauge.move_in_range("cameractrl", still)
    assert check["warnings"] == [] and check["position"] is None and check["path"] == 0.0
    json.dumps(check, allow_nan=False)  # goes into the manifest as is
    assert gauge.move_direction(still) is None
    assert gauge.frame_count_problem("wan-fun-camera", 81) is None
    assert "4n+1" in gauge.frame_count_problem("wan-fun-camera", 80)
    assert gauge.frame_count_problem("recammaster", 81) is None and gauge.frame_count_problem("recammaster", 21)
    with pytest.raises(gauge.GaugeError, match="unknown generator"):
        gauge.gauge_factor("sora", 1.0)


def test_evaluate_scores_carry_cami2v_metrics_beside_pce():
    pytest.importorskip("bpy")
    from parascale.parascale_blender.evaluate import score

    a = _traj()
    b = a.copy()
    b[:, :3, 3] *= 3.0  # 3x too fast: PCE sees it, CamI2V's scale-free TransErr does not
    out = score(np.full(11, 0.03), np.full(11, 0.01), b, a)
    assert out["pce"] == pytest.approx(np.log(3.0))
    assert out["cami2v_trans_err"] == pytest.approx(0.0, abs=1e-9)
    assert out["cami2v_rot_err"] == pytest.approx(0.0, abs=1e-6)
    assert {"trans_err", "rot_err", "cami2v_cammc"} <= set(out)
