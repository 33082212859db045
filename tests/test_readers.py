"""Track readers on the real data ($PARASCALE_DATA, docs/README.md) and on malformed variants of it."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from parascale.core import colmap

from parascale.core.readers import TrackFormatError, detect_format, read_track

FERN = "llff_fern/data/nerf_llff_data/fern"
FOX = "instant_ngp_fox/data/nerf/fox"
RE10K = "cameractrl_realestate10k/assets/pose_files"


@pytest.fixture
def fern(data_dir):
    return data_dir / FERN


def _copy_text_model(fern, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(fern / "colmap_text", dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    dst.chmod(0o755)
    return dst


def _line_of(path, startswith):
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if line.startswith(startswith):
            return n
    raise AssertionError(startswith)


def _rewrite_line(path, n, fn):
    lines = Path(path).read_text().splitlines()
    lines[n - 1] = fn(lines[n - 1])
    Path(path).write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------
# real files

def test_fern_colmap_text_matches_llff_poses(fern):
    track = read_track(fern / "colmap_text", images=fern / "images_8")
    assert detect_format(fern / "colmap_text") == "colmap"
    assert len(track) == 20 and (track.width, track.height) == (504, 378)
    assert track.names == sorted(track.names) and track.names[0] == "image000.png"
    assert track.points.shape == (10091, 3)
    assert track.distortion["model"] == "SIMPLE_RADIAL"
    # poses_bounds.npy is an independent file (LLFF axes, c2w): same cameras.
    llff = read_track(fern / "poses_bounds.npy", size=(504, 378))
    assert detect_format(fern / "poses_bounds.npy") == "llff"
    np.testing.assert_allclose(llff.c2w, track.c2w, atol=1e-6)
    np.testing.assert_allclose(llff.K, track.K, rtol=1e-6)
    assert np.shape(llff.meta["bounds"]) == (20, 2)
    # visible points lie in front of their camera, and the LLFF near bound (0.1 percentile
    # of visible-point depth) is reproduced from our visibility.
    for i in (0, 7, 19):
        idx = track.visibility[i]
        Xc = (track.points[idx] - track.c2w[i, :3, 3]) @ track.c2w[i, :3, :3]
        assert len(idx) > 100 and (Xc[:, 2] > 0).all()
        near = np.percentile(Xc[:, 2], 0.1)
        assert abs(near - llff.meta["bounds"][i][0]) < 0.05 * near


def test_fern_real_binary_files(fern):
    cams = colmap.read_cameras_binary(fern / "sparse/0/cameras.bin")
    (cam,) = cams.values()
    assert cam.model == "SIMPLE_RADIAL" and (cam.width, cam.height) == (4032, 3024)
    assert abs(cam.params[0] - 3260.53) < 0.01
    ids, xyz, tracks = colmap.read_points3d_binary(fern / "sparse/0/points3D.bin")
    tids, txyz, ttracks = colmap.read_points3d_text(fern / "colmap_text/points3D.txt")
    assert len(ids) == 10091
    order = np.argsort(ids)
    torder = np.argsort(tids)
    np.testing.assert_allclose(xyz[order], txyz[torder], atol=1e-6)
    assert all(np.array_equal(np.sort(tracks[a]), np.sort(ttracks[b])) for a, b in zip(order[:50], torder[:50]))


def test_colmap_binary_round_trip(fern, tmp_path):
    text = colmap.read_model(fern / "colmap_text")
    colmap.write_binary_model(tmp_path / "bin", text.cameras, text.images, text.point_ids, text.xyz, text.tracks)
    a = read_track(fern / "colmap_text")
    b = read_track(tmp_path / "bin")
    assert detect_format(tmp_path / "bin" / "images.bin") == "colmap"
    assert a.names == b.names
    np.testing.assert_allclose(a.c2w, b.c2w, atol=1e-12)
    np.testing.assert_allclose(a.K, b.K)
    assert all(np.array_equal(x, y) for x, y in zip(a.visibility, b.visibility))


@pytest.mark.parametrize("model,params,K", [
    ("SIMPLE_PINHOLE", "100 50 40", [100, 100, 50, 40]),
    ("PINHOLE", "100 110 50 40", [100, 110, 50, 40]),
    ("SIMPLE_RADIAL", "100 50 40 0.01", [100, 100, 50, 40]),
    ("RADIAL", "100 50 40 0.01 0.002", [100, 100, 50, 40]),
    ("OPENCV", "100 110 50 40 0.01 0.002 0.001 0.0005", [100, 110, 50, 40]),
])
def test_colmap_camera_models(tmp_path, model, params, K):
    (tmp_path / "cameras.txt").write_text(f"# c\n7 {model} 100 80 {params}\n")
    (tmp_path / "images.txt").write_text(
        "1 1 0 0 0 0 0 0 7 b.png\n\n2 0.7071067811865476 0 0.7071067811865476 0 1 2 3 7 a.png\n\n")
    t = read_track(tmp_path)
    assert t.names == ["a.png", "b.png"]
    fx, fy, cx, cy = K
    np.testing.assert_allclose(t.K[0], [[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    assert t.distortion["model"] == model
    # a.png: w2c rotation 90 deg about y, t = (1, 2, 3): centre = -R^T t
    R = np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], float)
    np.testing.assert_allclose(t.c2w[0, :3, 3], -R.T @ [1, 2, 3], atol=1e-12)
    np.testing.assert_allclose(t.c2w[0, :3, :3], R.T, atol=1e-12)


def test_fox_transforms_in_file_name_order(data_dir):
    path = data_dir / FOX / "transforms.json"
    track = read_track(path)
    assert detect_format(path) == "transforms"
    raw = json.loads(path.read_text())
    assert len(track) == 67
    assert track.names == sorted(f["file_path"] for f in raw["frames"])
    assert (track.width, track.height) == (1080, 1920)
    np.testing.assert_allclose(track.K[0, :2], [[1375.52, 0, 554.558], [0, 1374.49, 965.268]])
    assert track.distortion["k1"] == pytest.approx(0.0578421)
    # the cameras orbit the fox near the origin: after OpenGL -> OpenCV the +z axis
    # (forward) of every camera points at it
    c = track.centers
    fwd = track.rotations[:, :, 2]
    cos = np.einsum("ij,ij->i", fwd, -c / np.linalg.norm(c, axis=1, keepdims=True))
    assert cos.min() > 0.9


def test_camera_angle_x_only(tmp_path):
    M = np.eye(4).tolist()
    (tmp_path / "transforms.json").write_text(json.dumps(
        {"camera_angle_x": 0.6911112, "frames": [{"file_path": "./r_1", "transform_matrix": M},
                                                  {"file_path": "./r_0", "transform_matrix": M}]}))
    with pytest.raises(TrackFormatError, match="no image size"):
        read_track(tmp_path / "transforms.json")
    t = read_track(tmp_path / "transforms.json", size=(800, 800))
    assert t.names == ["./r_0", "./r_1"]
    assert t.K[0, 0, 0] == pytest.approx(400 / np.tan(0.6911112 / 2))
    np.testing.assert_allclose(t.rotations[0], np.diag([1, -1, -1]))  # OpenGL -> OpenCV


def test_all_cameractrl_tracks(data_dir):
    files = sorted((data_dir / RE10K).glob("*.txt"))
    assert len(files) == 10
    for f in files:
        t = read_track(f, size=(384, 256))
        assert len(t) == 16 and detect_format(f) == "re10k"
        rows = [line.split() for line in f.read_text().splitlines()[1:] if line.strip()]
        a = np.array(rows, float)
        np.testing.assert_allclose(t.times, (a[:, 0] - a[0, 0]) / 1e6)
        assert t.K[0, 0, 0] == pytest.approx(a[0, 1] * 384) and t.K[0, 1, 1] == pytest.approx(a[0, 2] * 256)
        w2c = a[:, 7:].reshape(-1, 3, 4)
        centre = -np.einsum("nji,nj->ni", w2c[:, :, :3], w2c[:, :, 3])
        np.testing.assert_allclose(t.centers, centre, atol=1e-6)
        assert t.meta["url"].startswith("https://")
    # default size: square pixels at height 576 (16:9 originals -> 1024x576)
    t = read_track(files[0])
    assert (t.width, t.height) == (1024, 576) and t.meta["size_assumed"]
    assert t.K[0, 0, 0] == pytest.approx(t.K[0, 1, 1], rel=2e-3)


def test_generator_poses_realestate10k_files(data_dir):
    folder = data_dir / "generator_poses"
    re10k = [p for p in sorted(folder.rglob("*.txt")) if detect_format(p) == "re10k"]
    # every .txt there is RealEstate10K-style; the JSON files are other generators' formats
    assert len(re10k) == len(list(folder.rglob("*.txt"))) == 10
    for p in folder.rglob("*.json"):
        with pytest.raises(TrackFormatError, match="frames"):
            read_track(p)
    for p in re10k:
        if p.name == "orbit_left.txt":
            continue
        t = read_track(p)
        n = sum(1 for line in p.read_text().splitlines()[1:] if line.strip())
        assert len(t) == n and np.all(np.diff(t.times) > 0)
    # CamI2V's orbit writes a left-handed 3x3 block: rejected, naming the line, unless asked
    orbit = folder / "cami2v_poses/orbit_left.txt"
    with pytest.raises(TrackFormatError, match=r"orbit_left.txt line 2: .*determinant -1"):
        read_track(orbit)
    t = read_track(orbit, fix_reflection=True)
    r = np.linalg.norm(t.centers[:, :2], axis=1)
    np.testing.assert_allclose(r, 3.0, atol=1e-5)  # an orbit of radius 3 about the z axis
    assert len(t.meta["fixed_reflection"]) == len(t)


def test_megasam_npz(tmp_path):
    from parascale.core.cameras import make_c2w
    c2w = make_c2w(np.repeat(np.eye(3)[None], 3, 0), [[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]])
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    depths = np.full((3, 48, 64), 2.0)
    depths[:, :5] = 0  # sky
    np.savez(tmp_path / "m.npz", cam_c2w=c2w, intrinsic=K, depths=depths)
    t = read_track(tmp_path / "m.npz")
    assert detect_format(tmp_path / "m.npz") == "megasam"
    assert (t.width, t.height) == (64, 48) and np.isinf(t.depths[0, 0, 0]) and t.depths[0, 10, 0] == 2.0


# ---------------------------------------------------------------------------
# malformed variants: each names the file and the line / record

def _expect(path, pattern, **kw):
    with pytest.raises(TrackFormatError) as info:
        read_track(path, **kw)
    msg = str(info.value)
    assert Path(path).name in msg or str(path) in msg, msg
    import re
    assert re.search(pattern, msg), msg
    assert isinstance(info.value, ValueError)
    return msg


def test_colmap_text_malformed(fern, tmp_path):
    m = _copy_text_model(fern, tmp_path / "a")
    n = _line_of(m / "cameras.txt", "1 ")
    _rewrite_line(m / "cameras.txt", n, lambda s: s.replace("SIMPLE_RADIAL", "FANCY_FISHEYE"))
    _expect(m, rf"cameras.txt line {n}: unknown or unsupported camera model 'FANCY_FISHEYE'")

    m = _copy_text_model(fern, tmp_path / "b")
    n = _line_of(m / "images.txt", "3 ")
    _rewrite_line(m / "images.txt", n, lambda s: " ".join(s.split()[:4] + s.split()[5:]))
    _expect(m, rf"images.txt line {n}: expected IMAGE_ID .* \(10 columns\), got 9")

    m = _copy_text_model(fern, tmp_path / "c")
    n = _line_of(m / "images.txt", "5 ")
    _rewrite_line(m / "images.txt", n, lambda s: " ".join(s.split()[:5] + ["nan"] + s.split()[6:]))
    _expect(m, rf"images.txt line {n}: non-finite")

    m = _copy_text_model(fern, tmp_path / "d")
    n = _line_of(m / "images.txt", "2 ")
    _rewrite_line(m / "images.txt", n, lambda s: " ".join(s.split()[:1] + ["2", "0", "0", "0"] + s.split()[5:]))
    _expect(m, rf"images.txt line {n}: quaternion .* norm 2")

    m = _copy_text_model(fern, tmp_path / "e")
    (m / "images.txt").write_text("")
    _expect(m, r"images.txt: empty file")

    m = _copy_text_model(fern, tmp_path / "f")
    n = _line_of(m / "points3D.txt", "5 ")
    _rewrite_line(m / "points3D.txt", n, lambda s: " ".join(s.split()[:-1]))
    _expect(m, rf"points3D.txt line {n}: expected POINT3D_ID")

    # a track naming an image that is not in the image folder
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((fern / "images_8").iterdir())[:-1]:
        (imgs / p.name).symlink_to(p)
    _expect(fern / "colmap_text", r"images.txt line \d+: image 'image019.png' does not exist", images=imgs)


def test_colmap_binary_malformed(fern, tmp_path):
    text = colmap.read_model(fern / "colmap_text")
    good = tmp_path / "good"
    colmap.write_binary_model(good, text.cameras, text.images, text.point_ids, text.xyz, text.tracks)

    def variant(name, fn):
        d = tmp_path / name
        shutil.copytree(good, d)
        fn(d)
        return d

    d = variant("trunc_pts", lambda d: (d / "points3D.bin").write_bytes((d / "points3D.bin").read_bytes()[:50000]))
    _expect(d, r"points3D.bin: truncated at byte \d+ .* record \d+ \(point")
    d = variant("trunc_img", lambda d: (d / "images.bin").write_bytes((d / "images.bin").read_bytes()[:-7]))
    _expect(d, r"images.bin: truncated at byte \d+ .* record 19 \(image\)")
    # the real (unmodified) points3D.bin, cut short
    real = tmp_path / "real_points3D.bin"
    real.write_bytes((fern / "sparse/0/points3D.bin").read_bytes()[:123457])
    with pytest.raises(TrackFormatError, match=r"real_points3D.bin: truncated .* record \d+"):
        colmap.read_points3d_binary(real)

    def bad_model(d):
        b = bytearray((d / "cameras.bin").read_bytes())
        b[12:16] = (5).to_bytes(4, "little")  # OPENCV_FISHEYE
        (d / "cameras.bin").write_bytes(bytes(b))
    _expect(variant("model", bad_model), r"cameras.bin record 0 \(camera\): unknown or unsupported camera "
                                         r"model OPENCV_FISHEYE")

    def nan_pose(d):
        import struct
        b = bytearray((d / "images.bin").read_bytes())
        b[8 + 4 + 8:8 + 4 + 16] = struct.pack("<d", float("nan"))  # QX of record 0
        (d / "images.bin").write_bytes(bytes(b))
    _expect(variant("nan", nan_pose), r"images.bin record 0 \(image\) \(image\d+.png\): non-finite")
    _expect(variant("empty", lambda d: (d / "cameras.bin").write_bytes(b"")), r"cameras.bin: empty file")


def test_transforms_malformed(data_dir, tmp_path):
    src = data_dir / FOX
    raw = json.loads((src / "transforms.json").read_text())
    (tmp_path / "images").mkdir()
    for p in (src / "images").iterdir():
        (tmp_path / "images" / p.name).symlink_to(p)

    def variant(name, fn, missing=None):
        d = json.loads(json.dumps(raw))
        fn(d)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(d, indent=2))
        return path

    def nan(d):
        d["frames"][3]["transform_matrix"][1][2] = float("nan")
    _expect(variant("nan", nan), r"nan.json frames\[3\] \(images/0004.jpg\): non-finite")

    def scaled(d):
        for row in d["frames"][5]["transform_matrix"][:3]:
            row[0] *= 2
    _expect(variant("scaled", scaled), r"frames\[5\] \(images/0006.jpg\): the 3x3 rotation block is not a rotation")

    def shape(d):
        d["frames"][2]["transform_matrix"] = d["frames"][2]["transform_matrix"][:2]
    _expect(variant("shape", shape), r"frames\[2\] .* must be 4x4 \(or 3x4\), got shape \(2, 4\)")

    def missing(d):
        d["frames"][10]["file_path"] = "images/9999.jpg"
    _expect(variant("missing", missing), r"frames\[10\] \(images/9999.jpg\): image 'images/9999.jpg' does not exist")

    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    _expect(empty, "empty file", format="transforms")
    broken = tmp_path / "broken.json"
    broken.write_text((src / "transforms.json").read_text()[:3000])
    _expect(broken, r"broken.json line \d+: invalid JSON", format="transforms")


def test_re10k_malformed(data_dir, tmp_path):
    src = data_dir / RE10K / "0bf152ef84195293.txt"
    lines = src.read_text().splitlines()

    def variant(name, n, fn):
        new = list(lines)
        new[n - 1] = fn(new[n - 1])
        path = tmp_path / f"{name}.txt"
        path.write_text("\n".join(new) + "\n")
        return path

    _expect(variant("cols", 5, lambda s: " ".join(s.split()[:-1])), r"cols.txt line 5: expected 19 numbers .* got 18")
    _expect(variant("nan", 7, lambda s: s.replace(s.split()[9], "nan", 1)), r"nan.txt line 7: non-finite")
    _expect(variant("inf", 3, lambda s: s.replace(s.split()[12], "inf", 1)), r"inf.txt line 3: non-finite")

    def skew(s):
        v = s.split()
        v[7] = str(float(v[7]) * 1.5)
        return " ".join(v)
    _expect(variant("rot", 9, skew), r"rot.txt line 9: the 3x3 rotation block is not a rotation")
    _expect(variant("word", 4, lambda s: s.replace(s.split()[2], "abc", 1)), r"word.txt line 4: 'abc' is not a number")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _expect(empty, "empty file")
    url_only = tmp_path / "url.txt"
    url_only.write_text(lines[0] + "\n")
    _expect(url_only, "no pose lines")


def test_llff_malformed(fern, tmp_path):
    arr = np.load(fern / "poses_bounds.npy")
    p = tmp_path / "trunc.npy"
    p.write_bytes((fern / "poses_bounds.npy").read_bytes()[:1000])
    _expect(p, r"trunc.npy: cannot read")
    p = tmp_path / "cols.npy"
    np.save(p, arr[:, :16])
    _expect(p, r"cols.npy: expected shape \(N, 17\)")
    bad = arr.copy()
    bad[3, 6] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    _expect(tmp_path / "nan.npy", r"nan.npy row 3: non-finite")
    bad = arr.copy()
    bad[11, [0, 5, 10]] *= 3  # first rotation column stretched
    np.save(tmp_path / "rot.npy", bad)
    _expect(tmp_path / "rot.npy", r"rot.npy row 11: the 3x3 rotation block is not a rotation")
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _expect(tmp_path / "obj.npy", r"obj.npy: cannot read .*pickles are never loaded")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for q in sorted((fern / "images_8").iterdir())[:19]:
        (imgs / q.name).symlink_to(q)
    _expect(fern / "poses_bounds.npy", r"20 poses but 19 images", images=imgs)
    ok = read_track(fern / "poses_bounds.npy", images=fern / "images_8")
    assert ok.names[0] == "image000.png"


def test_megasam_malformed(tmp_path):
    from parascale.core.cameras import make_c2w
    c2w = make_c2w(np.repeat(np.eye(3)[None], 4, 0), np.zeros((4, 3)))
    K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])
    depths = np.ones((4, 48, 64))
    bad = c2w.copy()
    bad[2, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", cam_c2w=bad, intrinsic=K, depths=depths)
    _expect(tmp_path / "nan.npz", r"nan.npz cam_c2w\[2\]: non-finite")
    bad = c2w.copy()
    bad[1, :3, :3] = np.diag([1, 1, -1])
    np.savez(tmp_path / "refl.npz", cam_c2w=bad, intrinsic=K, depths=depths)
    _expect(tmp_path / "refl.npz", r"refl.npz cam_c2w\[1\]: .*determinant -1")
    np.savez(tmp_path / "nokey.npz", poses=c2w)
    _expect(tmp_path / "nokey.npz", r"nokey.npz: missing array\(s\) cam_c2w, intrinsic")
    np.savez(tmp_path / "full.npz", cam_c2w=c2w, intrinsic=K, depths=depths)
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:3000])
    _expect(tmp_path / "trunc.npz", r"trunc.npz: .*(cannot read|cannot be read)")
    np.savez(tmp_path / "obj.npz", cam_c2w=np.array([c2w], dtype=object), intrinsic=K)
    _expect(tmp_path / "obj.npz", r"obj.npz: .*pickles are never loaded")
    np.savez(tmp_path / "depth.npz", cam_c2w=c2w, intrinsic=K, depths=depths[:3])
    _expect(tmp_path / "depth.npz", r"depth.npz: depths must be \(4, h, w\)")


def test_detection_errors(tmp_path):
    p = tmp_path / "empty.bin"
    p.write_bytes(b"")
    _expect(p, "empty file")
    p = tmp_path / "list.json"
    p.write_text("[[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]")
    _expect(p, r"only NeRF-style transforms.json")
    with pytest.raises(FileNotFoundError):
        read_track(tmp_path / "nope.txt")
    with pytest.raises(TrackFormatError, match="no COLMAP model"):
        read_track(tmp_path)
