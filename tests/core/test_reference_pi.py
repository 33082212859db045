"""Reference Pi (docs/estimators.md): analytic synthetic checks, real data, the measure CLI."""
import json

import numpy as np
import pytest

from parascale.core.cameras import Track, make_c2w
from parascale.core.formats.readers import read_track
from parascale.core.reference import (ReferencePi, measure_reference, pi_from_depths, pi_from_points,
                                      pi_from_video, resample_reference)
from parascale.parascale_blender.cli import main as cli_main
from analytic_scenes import rot  # noqa: E402

cv2 = pytest.importorskip("cv2")

FERN = "llff_fern/data/nerf_llff_data/fern"
CLIPS = "cameractrl_realestate10k/assets"


# ---------------------------------------------------------------------------
# synthetic frames: a textured plane at world z = Z0, rendered by ray casting in numpy

@pytest.fixture(scope="module")
def texture():
    rng = np.random.default_rng(3)
    tex = rng.random((2048, 2048)).astype(np.float32)
    return cv2.GaussianBlur(tex, (0, 0), 1.5)


def render_plane(texture, K, c2w, W, H, Z0, texels_per_unit=150.0):
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    dirs = rays @ c2w[:3, :3].T
    c = c2w[:3, 3]
    s = (Z0 - c[2]) / dirs[..., 2]
    X = c + s[..., None] * dirs
    mx = (X[..., 0] * texels_per_unit + 1024).astype(np.float32)
    my = (X[..., 1] * texels_per_unit + 1024).astype(np.float32)
    img = cv2.remap(texture, mx, my, cv2.INTER_LINEAR)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).astype(np.uint8)


def synthetic(texture, c2w, W=384, H=256, f=300.0, Z0=2.0, track_size=None):
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    frames = [render_plane(texture, K, m, W, H, Z0) for m in c2w]
    tw, th = track_size or (W, H)
    Kt = K.copy()
    Kt[0] *= tw / W
    Kt[1] *= th / H
    Kt[2] = [0, 0, 1]
    track = Track(c2w=np.array(c2w), K=Kt, width=tw, height=th, times=np.arange(len(c2w)) / 8.0)
    return track, frames


def test_video_pi_pure_translation_is_d_over_Z(texture):
    Z0, dx = 2.0, 0.05
    c2w = [make_c2w(np.eye(3), [0, 0, 0]), make_c2w(np.eye(3), [dx, 0, 0]),
           make_c2w(np.eye(3), [dx, dx / 2, 0])]
    track, frames = synthetic(texture, c2w, Z0=Z0)
    ref = pi_from_video(track, "synthetic", frames=frames)
    expected = np.array([dx, dx / 2]) / Z0  # lateral motion: |d| / Z at every pixel
    np.testing.assert_allclose(ref.pi, expected, rtol=0.03)
    assert ref.source == "video" and ref.estimator == "flow"


def test_video_pi_pure_rotation_is_zero(texture):
    R1 = rot(1, 2.0) @ rot(0, 1.0)
    R2 = R1 @ rot(2, 3.0)
    c2w = [make_c2w(np.eye(3), [0, 0, 0]), make_c2w(R1, [0, 0, 0]), make_c2w(R2, [0, 0, 0])]
    track, frames = synthetic(texture, c2w)
    ref = pi_from_video(track, "synthetic", frames=frames)
    # 2 degrees is ~10 px of image motion; all of it must be explained by the rotation
    assert ref.pi.max() < 2e-3
    # with the rotation taken the wrong way round, a large residual would remain
    wrong = Track(c2w=np.array([make_c2w(np.eye(3), [0, 0, 0]), make_c2w(R1.T, [0, 0, 0]),
                                make_c2w(R2.T, [0, 0, 0])]), K=track.K, width=track.width,
                  height=track.height, times=track.times)
    assert pi_from_video(wrong, "synthetic", frames=frames).pi.min() > 0.03


def test_video_pi_rotation_plus_translation_other_track_size(texture):
    Z0 = 2.5
    R1 = rot(1, -2.0)
    c2w = [make_c2w(np.eye(3), [0, 0, 0]), make_c2w(R1, [0.06, -0.02, 0.0])]
    # the track says 768x512; the video is 384x256: K must be rescaled
    track, frames = synthetic(texture, c2w, Z0=Z0, track_size=(768, 512))
    ref = pi_from_video(track, "synthetic", frames=frames)
    d = np.hypot(0.06, 0.02)
    assert ref.pi[0] == pytest.approx(d / Z0, rel=0.05)
    assert ref.translation[0] == pytest.approx(d)


def test_frame_count_mismatch_and_offset(texture):
    c2w = [make_c2w(np.eye(3), [0.02 * i, 0, 0]) for i in range(4)]
    track, frames = synthetic(texture, c2w)
    with pytest.raises(ValueError, match="5 video frames for a track of 4 frames.*offset"):
        pi_from_video(track, "clip.mp4", frames=[frames[0]] + frames)
    ref = pi_from_video(track, "clip.mp4", frames=[frames[0]] + frames, offset=1)
    np.testing.assert_allclose(ref.pi, 0.02 / 2.0, rtol=0.03)
    with pytest.raises(ValueError, match="offset 3 needs video frames 3..6"):
        pi_from_video(track, "clip.mp4", frames=frames, offset=3)


def test_video_file_and_folder(texture, tmp_path):
    c2w = [make_c2w(np.eye(3), [0.03 * i, 0, 0]) for i in range(3)]
    track, frames = synthetic(texture, c2w)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), f)
    a = pi_from_video(track, folder)
    np.testing.assert_allclose(a.pi, 0.03 / 2.0, rtol=0.03)
    path = tmp_path / "clip.avi"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8, (384, 256), False)
    for f in frames:
        vw.write(f)
    vw.release()
    b = pi_from_video(track, path)
    np.testing.assert_allclose(b.pi, 0.03 / 2.0, rtol=0.05)


# ---------------------------------------------------------------------------
# analytic depth and points

def test_depth_and_points_analytic():
    Z0 = 4.0
    c2w = np.array([make_c2w(np.eye(3), [0, 0, 0]), make_c2w(np.eye(3), [0.2, 0, 0]),
                    make_c2w(np.eye(3), [0.2, 0, 0.4])])
    K = np.array([[100.0, 0, 64], [0, 100, 48], [0, 0, 1]])
    depths = np.full((3, 48, 64), Z0)  # half resolution of the track's 128x96
    depths[:, :12] = np.inf           # a quarter of sky
    t = Track(c2w=c2w, K=K, width=128, height=96, times=np.arange(3.0), depths=depths)
    h = pi_from_depths(t, "harmonic")
    np.testing.assert_allclose(h.pi, np.array([0.2, 0.4]) / Z0 * 0.75)
    m = pi_from_depths(t, "mean")
    np.testing.assert_allclose(m.pi, np.array([0.2, 0.4]) / Z0)
    f = pi_from_depths(t, "flow")
    assert f.pi[0] == pytest.approx(0.75 * 0.2 / Z0)
    # dolly: flow is |x| d_z / Z, averaged over the image: less than |d| / Z
    assert 0 < f.pi[1] < 0.5 * h.pi[1]
    # points on the same plane, seen by every frame
    g = np.stack(np.meshgrid(np.linspace(-1, 1, 20), np.linspace(-1, 1, 20)), -1).reshape(-1, 2)
    pts = np.column_stack([g, np.full(len(g), Z0)])
    tp = Track(c2w=c2w, K=K, width=128, height=96, times=np.arange(3.0), points=pts,
               visibility=[np.arange(len(pts))] * 3)
    np.testing.assert_allclose(pi_from_points(tp, "harmonic").pi, [0.2 / Z0, 0.4 / Z0])
    assert measure_reference(tp).source == "points"
    assert measure_reference(t).source == "depth"
    with pytest.raises(ValueError, match="no 3D points and no depth maps.*--video"):
        measure_reference(Track(c2w=c2w, K=K, width=128, height=96, times=np.arange(3.0)))


def test_resample_video_pi_conserves_total_motion():
    times = np.arange(5) / 8.0
    c2w = np.array([make_c2w(np.eye(3), [0.1 * i, 0, 0]) for i in range(5)])
    t = Track(c2w=c2w, K=np.eye(3) * [100, 100, 1], width=100, height=100, times=times)
    ref = ReferencePi("video", "flow", [0.01, 0.02, 0.03, 0.04], [0.1] * 4, times)
    new_times = np.arange(9) / 16.0  # twice the frame rate
    out, nt = resample_reference(ref, t, new_times)
    assert len(out.pi) == 8 and len(nt) == 9
    assert out.pi.sum() == pytest.approx(ref.pi.sum())
    np.testing.assert_allclose(out.pi[0::2] + out.pi[1::2], ref.pi)
    np.testing.assert_allclose(out.translation, 0.05)


# ---------------------------------------------------------------------------
# real data

def test_fern_points_vs_photos(data_dir):
    fern = data_dir / FERN
    track = read_track(fern / "colmap_text", images=fern / "images_8")
    harmonic = pi_from_points(track, "harmonic")
    mean = pi_from_points(track, "mean")
    video = pi_from_video(track, fern / "images_8")
    rel = np.abs(video.pi / harmonic.pi - 1)
    assert np.median(rel) < 0.05, rel
    assert np.all(mean.pi < harmonic.pi)  # Jensen: |d|/mean(Z) < |d| mean(1/Z)
    assert len(harmonic) == 19
    np.testing.assert_allclose(harmonic.translation, np.linalg.norm(np.diff(track.centers, axis=0), axis=1))


def test_all_cameractrl_clips_from_video(data_dir):
    folder = data_dir / CLIPS
    ids = sorted(p.stem for p in (folder / "pose_files").glob("*.txt"))
    assert len(ids) == 10
    for cid in ids:
        track = read_track(folder / "pose_files" / f"{cid}.txt", size=(384, 256))
        ref = pi_from_video(track, folder / "reference_videos" / f"{cid}.mp4", preset="fast")
        assert len(ref) == 15
        assert np.all(np.isfinite(ref.pi)) and np.all(ref.pi > 0), (cid, ref.pi)


def test_measure_cli_json(data_dir, tmp_path, capsys):
    fern = data_dir / FERN
    out = tmp_path / "sub" / "pi.json"
    assert cli_main(["measure", "--track", str(fern / "colmap_text"), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"source", "estimator", "steps", "timed", "fps"}
    assert data["timed"] is False and data["fps"] is None   # photos: no clock, no "time" per step
    assert data["source"] == "points" and data["estimator"] == "harmonic"
    assert [s["frame"] for s in data["steps"]] == list(range(1, 20))
    assert all(set(s) == {"frame", "pi", "translation"} and s["pi"] > 0 for s in data["steps"])
    assert "frame" in capsys.readouterr().out
    assert not list(out.parent.glob(".*.tmp"))  # atomic write leaves no temp file

    out2 = tmp_path / "video.json"
    clip = data_dir / CLIPS
    assert cli_main(["measure", "--track", str(clip / "pose_files/0bf152ef84195293.txt"),
                     "--video", str(clip / "reference_videos/0bf152ef84195293.mp4"),
                     "--preset", "fast", "--json", str(out2)]) == 0
    v = json.loads(out2.read_text())
    assert v["source"] == "video" and v["estimator"] == "flow" and len(v["steps"]) == 15
    # RealEstate10K timestamps (microseconds): the steps keep their times
    assert v["timed"] is True and v["steps"][-1]["time"] == pytest.approx((162929596 - 158692025) * 1e-6, abs=1e-9)

    # nothing gives depth and no video: a clear error, exit 2, no file
    out3 = tmp_path / "none.json"
    assert cli_main(["measure", "--track", str(clip / "pose_files/0bf152ef84195293.txt"),
                     "--json", str(out3)]) == 2
    assert "--video" in capsys.readouterr().err and not out3.exists()
    # a malformed track: one-line error naming the file and line
    bad = tmp_path / "bad.txt"
    bad.write_text("\n0 1 2 3\n")
    assert cli_main(["measure", "--track", str(bad), "--json", str(out3)]) == 2
    assert "bad.txt line 2: expected 19 numbers" in capsys.readouterr().err


def test_measure_cli_depth_npz(tmp_path):
    c2w = np.array([make_c2w(np.eye(3), [0.1 * i, 0, 0]) for i in range(3)])
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    np.savez(tmp_path / "m.npz", cam_c2w=c2w, intrinsic=K, depths=np.full((3, 48, 64), 2.0))
    out = tmp_path / "m.json"
    assert cli_main(["measure", "--track", str(tmp_path / "m.npz"), "--estimator", "mean",
                     "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["source"] == "depth" and data["estimator"] == "mean"
    assert [s["pi"] for s in data["steps"]] == pytest.approx([0.05, 0.05])
