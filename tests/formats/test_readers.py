"""Track readers on the real data ($PARASCALE_DATA, docs/README.md) and on malformed variants of it."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from parascale.core.formats import colmap

from parascale.core.formats.readers import TrackFormatError, detect_format, read_track

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


# ---------------------------------------------------------------------------
# Issue 12: one named regression test per class of hostile input. Each asserts the
# project's error (naming the file and, where known, the line or record), and for
# the memory classes that the peak traced allocation stays small.

import re  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tracemalloc  # noqa: E402
import zipfile  # noqa: E402
import zlib  # noqa: E402

from parascale.core.formats import validate, writers  # noqa: E402
from parascale.core.cameras import Track, make_c2w  # noqa: E402
from parascale.core.rotations import matrix_from_quat, quat_from_matrix  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bridge"))
import parascale_bridge as bridge  # noqa: E402

MIB = 1 << 20


def peak_of(fn):
    """(result or exception, peak bytes traced by tracemalloc during fn): Python
    objects and numpy array buffers allocated by the call."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as exc:  # returned, so the caller asserts on it
            out = exc
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def small_track(n=4, points=0, still=False):
    rng = np.random.default_rng(1)
    R = matrix_from_quat(rng.normal(size=(n, 4)))
    c = np.zeros((n, 3)) if still else rng.normal(size=(n, 3))
    kw = {}
    if points:
        kw["points"] = rng.normal(size=(points, 3)) * 0.3 + [0, 0, 0]
    return Track(c2w=make_c2w(R, c), K=np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]]), width=64, height=48,
                 times=np.arange(n) / 24.0, names=[f"f{i}.png" for i in range(n)], **kw)


def colmap_text(tmp_path, image_ids, tracks=None, point_ids=None, cam="1 PINHOLE 64 48 50 50 32 24", t=None):
    d = tmp_path / "model"
    d.mkdir(parents=True, exist_ok=True)
    (d / "cameras.txt").write_text(cam + "\n")
    tr = small_track(len(image_ids))
    lines = []
    for k, (iid, c2w) in enumerate(zip(image_ids, tr.c2w)):
        w2c = np.linalg.inv(c2w)
        q = quat_from_matrix(w2c[:3, :3])
        tv = w2c[:3, 3] if t is None or k != 1 else t
        lines += [f"{iid} {' '.join(map(str, q))} {' '.join(map(str, tv))} 1 im{k}.png", ""]
    (d / "images.txt").write_text("\n".join(lines) + "\n")
    pts = []
    for j, trk in enumerate(tracks or []):
        pid = point_ids[j] if point_ids else j + 1
        pts.append(f"{pid} 0.1 0.2 5.0 1 2 3 0.5 " + " ".join(f"{i} 0" for i in trk))
    (d / "points3D.txt").write_text("\n".join(pts) + "\n")
    return d


def test_colmap_image_id_4294967295_is_mapped_not_sized(tmp_path):
    d = colmap_text(tmp_path, [4294967295, 7], tracks=[[4294967295], [7, 4294967295]])
    t, peak = peak_of(lambda: read_track(d))
    assert isinstance(t, Track), t
    assert t.meta["image_ids"] == [4294967295, 7]
    assert [list(v) for v in t.visibility] == [[0, 1], [1]]
    assert peak < 2 * MIB  # the old lookup table asked for 32 GiB
    # the binary model holds image ids as uint32: the same id, the same answer
    m = colmap.read_model(d)
    colmap.write_binary_model(tmp_path / "bin", m.cameras, m.images, m.point_ids, m.xyz, m.tracks)
    tb, peak = peak_of(lambda: read_track(tmp_path / "bin"))
    assert isinstance(tb, Track) and [list(v) for v in tb.visibility] == [[0, 1], [1]]
    assert peak < 2 * MIB


def test_colmap_negative_image_ids(tmp_path):
    d = colmap_text(tmp_path, [-5, 3], tracks=[[-5, -1, 3], [-7]])
    t = read_track(d)
    assert [list(v) for v in t.visibility] == [[0], [0]]  # -1 and -7 name no image: ignored


def test_colmap_point_and_track_ids_beyond_int64(tmp_path):
    d = colmap_text(tmp_path, [1, 2], tracks=[[1, 2]], point_ids=[2 ** 64 - 1])
    t = read_track(d)  # a 64-bit unsigned point id is legal
    assert len(t.points) == 1
    m = colmap.read_model(d)
    assert m.point_ids.dtype == np.uint64 and int(m.point_ids[0]) == 2 ** 64 - 1
    colmap.write_binary_model(tmp_path / "bin", m.cameras, m.images, m.point_ids, m.xyz, m.tracks)
    ids, _, _ = colmap.read_points3d_binary(tmp_path / "bin" / "points3D.bin")
    assert int(ids[0]) == 2 ** 64 - 1
    d = colmap_text(tmp_path / "b", [1, 2], tracks=[[1]], point_ids=[2 ** 64])
    _expect(d, r"points3D.txt line 1: .*out of range")
    d = colmap_text(tmp_path / "c", [1, 2], tracks=[[2 ** 63, 1]])
    _expect(d, r"points3D.txt line 1: TRACK must be integer IMAGE_ID POINT2D_IDX pairs \(64-bit\)")


def npy_with_header(header: str, data: bytes) -> bytes:
    header = header + " " * ((-(len(header) + 11)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data


def test_npy_header_claiming_1e9_rows_is_refused_before_allocating(tmp_path):
    p = tmp_path / "poses_bounds.npy"
    p.write_bytes(npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 17), }",
                                  np.zeros(17).tobytes()))
    err, peak = peak_of(lambda: read_track(p))
    assert isinstance(err, TrackFormatError), err
    assert re.search(r"poses_bounds.npy: .*shape \(1000000000, 17\).* but the file holds 136 bytes", str(err))
    assert peak < MIB  # np.load allocated 7.45 GiB here


def test_npy_unterminated_header_is_a_format_error(tmp_path):
    # np.load raises tokenize.TokenError on this header (not a ValueError)
    p = tmp_path / "poses_bounds.npy"
    p.write_bytes(npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (20, 17", b"\0" * 64))
    _expect(p, r"poses_bounds.npy: cannot read as LLFF poses_bounds.npy \(npy header is not a literal dict")


def megasam_npz(path, compressed=False, **override):
    arrays = {"cam_c2w": small_track(3).c2w, "intrinsic": np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]]),
              "depths": np.full((3, 48, 64), 2.0, np.float32)}
    arrays.update(override)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_npz_member_claiming_2_40_frames_is_refused_before_allocating(tmp_path):
    p = tmp_path / "m.npz"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("cam_c2w.npy", npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 4, 4), }", b"\0" * 128))
        zf.writestr("intrinsic.npy", npy_with_header(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }", np.eye(3).tobytes()))
    err, peak = peak_of(lambda: read_track(p))
    assert isinstance(err, TrackFormatError), err
    assert re.search(r"m.npz: member 'cam_c2w': npy header says shape \(1099511627776, 4, 4\)", str(err))
    assert peak < MIB  # np.load asked for 128 TiB


def test_npz_deflate_bomb_is_refused_before_inflating(tmp_path):
    # a 64 MiB depth member of zeros deflates ~1000x: the file is ~70 KB
    n, h, w = 3, 2048, 2730
    p = tmp_path / "bomb.npz"
    depths = np.zeros((n, h, w), np.float32)
    megasam_npz(p, compressed=True, depths=depths)
    del depths
    size = p.stat().st_size
    assert size < 1 * MIB
    err, peak = peak_of(lambda: read_track(p))
    assert isinstance(err, TrackFormatError), err
    assert re.search(r"bomb.npz: member 'depths': declares \d+ bytes uncompressed, over the \d+-byte limit", str(err))
    assert peak < 20 * size + 2 * MIB
    # the same scene with real, incompressible depth reads, within 20x its size
    rng = np.random.default_rng(0)
    ok = megasam_npz(tmp_path / "ok.npz", compressed=True, depths=rng.uniform(1, 5, (3, 48, 64)).astype(np.float32))
    t, peak = peak_of(lambda: read_track(ok))
    assert isinstance(t, Track), t
    assert t.depths.dtype == np.float32 and peak < 20 * ok.stat().st_size + 2 * MIB


def test_transforms_camera_angle_x_zero(tmp_path):
    p = tmp_path / "transforms.json"
    p.write_text(json.dumps({"w": 64, "h": 48, "camera_angle_x": 0,
                             "frames": [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}]}))
    _expect(p, r"transforms.json frames\[0\] \(a.png\): camera_angle_x must be a field of view in radians "
               r"between 0 and pi, got 0")


def json_readers(tmp_path):
    """(name, reader, path) for every JSON reader; the bridge loader is checked beside them."""
    return [("transforms", lambda p: read_track(p, format="transforms"), tmp_path / "transforms.json"),
            ("parascale", writers.read_parascale, tmp_path / "poses.json"),
            ("motionctrl", writers.read_motionctrl, tmp_path / "motionctrl.json"),
            ("recammaster", writers.read_recammaster, tmp_path / "camera_extrinsics.json")]


def _refused(fn, path, pattern, error=TrackFormatError):
    with pytest.raises(error) as info:
        fn(path)
    assert str(path) in str(info.value), str(info.value)
    assert re.search(pattern, str(info.value)), str(info.value)


def test_deep_json_nesting(tmp_path):
    deep = '{"frames": ' + "[" * 100000 + "]" * 100000 + "}"
    for name, fn, p in json_readers(tmp_path):
        p.write_text(deep)
        _refused(fn, p, r"(nested deeper than 64 levels|too many nested lists)")
    p = tmp_path / "b.json"
    p.write_text('{"schema": "parascale.poses", "frames": ' + "[" * 5000 + "0" + "]" * 5000 + "}")
    _refused(bridge.load_poses, p, r"nested deeper than 64 levels", bridge.BridgeError)


def test_invalid_utf8(tmp_path):
    bad = b'{"frames": [], "x": "\xff\xfe"}\n'
    for name, fn, p in json_readers(tmp_path):
        p.write_bytes(bad)
        _refused(fn, p, r"line 1: not UTF-8 text at byte \d+")
    p = tmp_path / "poses.txt"
    p.write_bytes(b"https://x\n0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 \xc3\n")
    _expect(p, r"poses.txt line 2: not UTF-8", format="re10k")
    d = colmap_text(tmp_path, [1, 2])
    (d / "images.txt").write_bytes((d / "images.txt").read_bytes().replace(b"im0", b"im\xed\xa0\x80"))
    _expect(d, r"images.txt line 1: not UTF-8")
    _refused(bridge.load_poses, p, r"not UTF-8 text", bridge.BridgeError)


def test_lists_where_objects_belong(tmp_path):
    doc = writers.parascale_document(small_track(3))
    p = tmp_path / "poses.json"
    p.write_text(json.dumps({**doc, "frames": [list(f.values()) for f in doc["frames"]]}))
    _refused(writers.read_parascale, p, r"poses.json frames\[0\]: malformed ParaScale pose file \(expected an object")
    _refused(bridge.load_poses, p, r"\"frames\" must be a list of objects", bridge.BridgeError)
    p.write_text(json.dumps({**doc, "image_size": [64, 48]}))
    _refused(writers.read_parascale, p, r"\"image_size\" must be")
    r = tmp_path / "camera_extrinsics.json"
    r.write_text(json.dumps([{"cam01": "[1 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1]"}]))
    _refused(writers.read_recammaster, r, r"expected a ReCamMaster camera_extrinsics.json")
    r.write_text(json.dumps({"frame0": ["[1 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1]"]}))
    _refused(writers.read_recammaster, r, r"frame0: expected an object camera -> matrix")
    t = tmp_path / "transforms.json"
    t.write_text(json.dumps({"w": 64, "h": 48, "fl_x": 50, "frames": [["a.png", np.eye(4).tolist()]]}))
    _refused(lambda q: read_track(q, format="transforms"), t, r"frames\[0\]: expected an object with \"file_path\"")
    m = tmp_path / "motionctrl.json"
    m.write_text(json.dumps({"poses": [[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]}))
    _refused(writers.read_motionctrl, m, r"expected a MotionCtrl pose list")


def test_ragged_rows(tmp_path):
    m = tmp_path / "motionctrl.json"
    m.write_text(json.dumps([[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]]))
    _refused(writers.read_motionctrl, m, r"frame 1: the pose must be 12, got shape \(11,\)")
    doc = writers.parascale_document(small_track(3))
    doc["frames"][1]["c2w"][2] = doc["frames"][1]["c2w"][2][:3]
    p = tmp_path / "poses.json"
    p.write_text(json.dumps(doc))
    _refused(writers.read_parascale, p, r"frames\[1\]: c2w has rows of different lengths \[3, 4\]")
    _refused(bridge.load_poses, p, r"frame 1: malformed ParaScale pose file \(c2w must be a 4x4", bridge.BridgeError)
    r = tmp_path / "camera_extrinsics.json"
    r.write_text(json.dumps({"frame0": {"cam01": "[1 0 0 0] [0 1 0] [0 0 1 0] [0 0 0 1] "}}))
    _refused(writers.read_recammaster, r, r"frame0/cam01: expected 4 rows of 4 numbers")
    t = tmp_path / "transforms.json"
    t.write_text(json.dumps({"w": 64, "h": 48, "fl_x": 50,
                             "frames": [{"file_path": "a",
                                         "transform_matrix": [[1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 0]]}]}))
    _refused(lambda q: read_track(q, format="transforms"), t, r"frames\[0\] \(a\): transform_matrix has rows of "
                                                              r"different lengths")
    x = tmp_path / "poses.txt"
    x.write_text("url\n0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n1 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1\n")
    _expect(x, r"poses.txt line 3: expected 19 numbers .* got 18", format="re10k")


def test_singular_and_nan_matrices(tmp_path):
    m = tmp_path / "motionctrl.json"
    m.write_text(json.dumps([[0] * 12, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]))
    _refused(writers.read_motionctrl, m, r"frame 0: the world-to-camera pose is all zero")
    m.write_text(json.dumps([[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]]))
    _refused(writers.read_motionctrl, m, r"frame 1: the 3x3 rotation block is not a rotation")
    m.write_text("[[1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, NaN]]")
    _refused(writers.read_motionctrl, m, r"frame 0: non-finite value \(NaN or inf\)")
    r = tmp_path / "camera_extrinsics.json"
    r.write_text(json.dumps({"frame0": {"cam01": "[0 0 0 0] [0 0 0 0] [0 0 0 0] [0 0 0 1] "}}))
    _refused(writers.read_recammaster, r, r"frame0/cam01: the 3x3 rotation block is all zero")
    r.write_text(json.dumps({"frame0": {"cam01": "[nan 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1] "}}))
    _refused(writers.read_recammaster, r, r"frame0/cam01: non-finite value")
    doc = writers.parascale_document(small_track(3))
    doc["frames"][2]["c2w"] = [[1, 2, 3, 0], [2, 4, 6, 0], [0, 0, 0, 0], [0, 0, 0, 1]]
    p = tmp_path / "poses.json"
    p.write_text(json.dumps(doc))
    _refused(writers.read_parascale, p, r"frames\[2\]: the 3x3 rotation block is not a rotation")
    _refused(bridge.load_poses, p, r"a pose is not a rotation", bridge.BridgeError)


def test_focal_length_not_positive_is_refused(tmp_path):
    for fx in ("0", "-5"):
        d = colmap_text(tmp_path / fx, [1, 2], cam=f"1 PINHOLE 64 48 {fx} 50 32 24")
        _expect(d, rf"cameras.txt line 1: focal lengths must be positive, got fx={fx}")  # where the focal is
    p = megasam_npz(tmp_path / "m.npz", intrinsic=np.array([[0.0, 0, 32], [0, 50, 24], [0, 0, 1]]))
    _expect(p, r"m.npz intrinsic: focal lengths must be positive, got fx=0")
    doc = writers.parascale_document(small_track(3))
    doc["frames"][1]["K"][1][1] = -50.0
    j = tmp_path / "poses.json"
    j.write_text(json.dumps(doc))
    _refused(writers.read_parascale, j, r"frames\[1\]: focal lengths must be positive, got fx=50, fy=-50")
    _refused(bridge.load_poses, j, r"intrinsics need fx, fy > 0", bridge.BridgeError)


def test_K_last_row_must_be_0_0_1(tmp_path):
    doc = writers.parascale_document(small_track(3))
    doc["frames"][0]["K"][2] = [0, 0, 2]
    j = tmp_path / "poses.json"
    j.write_text(json.dumps(doc))
    _refused(writers.read_parascale, j, r"frames\[0\]: last row of K must be 0 0 1 .* got 0 0 2")
    _refused(bridge.load_poses, j, r"last row 0 0 1", bridge.BridgeError)
    p = megasam_npz(tmp_path / "m.npz", intrinsic=np.array([[50.0, 0, 32], [0, 50, 24], [1, 0, 1]]))
    _expect(p, r"m.npz intrinsic: last row of K must be 0 0 1")


def test_bridge_unit_scale_nan_negative_or_zero(tmp_path):
    doc = writers.parascale_document(small_track(3))
    j = tmp_path / "poses.json"
    for value, text in ((float("nan"), "NaN"), (-1.0, "-1"), (0.0, "0")):
        doc["unit_scale"] = value
        j.write_text(json.dumps(doc))
        if text == "NaN":
            _refused(bridge.load_poses, j, r"unit_scale: nan is not a finite number", bridge.BridgeError)
            _refused(writers.read_parascale, j, r"unit_scale: unit_scale is not finite")
        else:
            _refused(bridge.load_poses, j, rf"unit_scale: must be a positive number .* got {text}", bridge.BridgeError)
            _refused(writers.read_parascale, j, r"unit_scale: must be positive")


def test_translation_1e300_is_refused(tmp_path):
    x = tmp_path / "poses.txt"
    x.write_text("url\n0 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
                 "33366 0.5 0.9 0.5 0.5 0 0 1 0 0 1e300 0 1 0 0 0 0 1 0\n")
    _expect(x, r"poses.txt line 3: the world-to-camera matrix holds 1e\+300, beyond \+-1e\+09", format="re10k")
    d = colmap_text(tmp_path, [1, 2], t=[0, 0, 1e300])
    _expect(d, r"model/images.txt line 3: the pose holds [-0-9.e+]+, beyond")
    doc = writers.parascale_document(small_track(3))
    doc["frames"][1]["c2w"][0][3] = 1e300
    j = tmp_path / "poses.json"
    j.write_text(json.dumps(doc))
    _refused(writers.read_parascale, j, r"frames\[1\]: c2w holds 1e\+300")
    _refused(bridge.load_poses, j, r"frame 1: the pose is not finite or beyond", bridge.BridgeError)
    # so `parascale measure` never gets to write "pi": Infinity
    from parascale.parascale_blender.cli.measure import measure
    with pytest.raises(TrackFormatError, match=r"poses.txt line 3"):
        measure(x)


def test_width_1e12_is_refused(tmp_path):
    t = tmp_path / "transforms.json"
    t.write_text(json.dumps({"w": 1e12, "h": 48, "fl_x": 50,
                             "frames": [{"file_path": "a", "transform_matrix": np.eye(4).tolist()}]}))
    _expect(t, r"transforms.json frames\[0\] \(a\): image width must be a whole number of pixels from 1 to 65536, "
               r"got 1000000000000")
    doc = writers.parascale_document(small_track(3))
    doc["image_size"]["width"] = 1e12
    j = tmp_path / "poses.json"
    j.write_text(json.dumps(doc))
    _refused(writers.read_parascale, j, r"image_size: image width must be a whole number")
    _refused(bridge.load_poses, j, r"image width must be a whole number", bridge.BridgeError)
    j.write_text(json.dumps(doc).replace("1000000000000.0", "1" * 400))  # beyond float: OverflowError before
    _refused(writers.read_parascale, j, r"image_size: image width must be a number")
    _refused(bridge.load_poses, j, r"image width must be a whole number", bridge.BridgeError)
    d = colmap_text(tmp_path, [1, 2], cam="1 PINHOLE 1000000000000 48 50 50 32 24")
    _expect(d, r"cameras.txt line 1: image size must be 1 to 65536 pixels a side")


def test_bridge_first_re10k_row_fx_nan_or_zero(tmp_path):
    x = tmp_path / "poses.txt"
    for fx in ("nan", "0"):
        x.write_text(f"url\n0 {fx} 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
                     "33366 0.5 0.9 0.5 0.5 0 0 1 0 0 0.1 0 1 0 0 0 0 1 0\n")
        _refused(bridge.load_poses, x, r"line 2: ", bridge.BridgeError)
    r = subprocess.run([sys.executable, str(Path(bridge.__file__)), str(x), "--generator", "cameractrl",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "poses.txt line 2: normalised focal lengths" in r.stderr and not (tmp_path / "out").exists()


def test_all_zero_or_nan_reference_is_refused(tmp_path):
    x = tmp_path / "zeros.txt"
    x.write_text("url\n" + "0 " * 19 + "\n" + "0 " * 19 + "\n")
    _expect(x, r"zeros.txt line 2: normalised focal lengths fx/W, fy/H must be positive", format="re10k")
    x.write_text("url\n" + "0 0.5 0.9 0.5 0.5 0 0 " + "0 " * 12 + "\n")
    _expect(x, r"zeros.txt line 2: .*all zero", format="re10k")
    doc = writers.parascale_document(small_track(3))
    doc["frames"][0]["c2w"] = [[0] * 4] * 4
    j = tmp_path / "poses.json"
    j.write_text(json.dumps(doc))
    _refused(writers.read_parascale, j, r"frames\[0\]: c2w is all zero")
    j.write_text(json.dumps(doc).replace("[[0, 0, 0, 0]", "[[NaN, 0, 0, 0]", 1))
    _refused(writers.read_parascale, j, r"frames\[0\]: non-finite value")
    # measure: a camera that never moves has Pi 0 everywhere; refused with the reason
    still = megasam_npz(tmp_path / "still.npz", cam_c2w=np.repeat(np.eye(4)[None], 3, axis=0))
    assert len(read_track(still)) == 3  # a still camera is a valid track...
    from parascale.parascale_blender.cli.measure import measure
    with pytest.raises(TrackFormatError, match=r"still.npz: the reference camera never moves .*Parallax Number is 0"):
        measure(still)  # ...but there is no parallax to measure
    bad = validate.TrackFormatError
    from parascale.core.reference import ReferencePi
    with pytest.raises(bad, match=r"Pi of step 2 \(frame 1 -> 2\) is inf"):
        validate.check_reference_pi(ReferencePi("points", "harmonic", [0.1, np.inf], [1.0, 1.0]), "x")


def test_real_files_read_in_bounded_memory(data_dir):
    """The real files: peak traced memory of each reader under 20 x the file size."""
    fern = data_dir / FERN
    cases = [(fern / "colmap_text", sum(p.stat().st_size for p in (fern / "colmap_text").iterdir())),
             (fern / "poses_bounds.npy", (fern / "poses_bounds.npy").stat().st_size),
             (data_dir / FOX / "transforms.json", (data_dir / FOX / "transforms.json").stat().st_size),
             (data_dir / RE10K / "0bf152ef84195293.txt", (data_dir / RE10K / "0bf152ef84195293.txt").stat().st_size)]
    read_track(cases[2][0], check_images=False)  # warm imports
    for path, size in cases:
        t, peak = peak_of(lambda: read_track(path, check_images=False))
        assert isinstance(t, Track), t
        assert peak < 20 * size + 2 * MIB, (path, peak, size)
    p = fern / "sparse/0/points3D.bin"
    out, peak = peak_of(lambda: colmap.read_points3d_binary(p))
    assert len(out[0]) == 10091 and peak < 20 * p.stat().st_size, peak


def test_long_video_timestamps_still_read(tmp_path):
    """RealEstate10K timestamps are microseconds: past 1e9 after 17 minutes of video,
    and not bounded like coordinates (reader and bridge)."""
    x = tmp_path / "long.txt"
    x.write_text("url\n3600000000 0.5 0.9 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"
                 "3600033366 0.5 0.9 0.5 0.5 0 0 1 0 0 0.1 0 1 0 0 0 0 1 0\n")
    t = read_track(x)
    assert t.meta["timed"] and abs(t.times[1] - 0.033366) < 1e-9
    b = bridge.load_poses(x)
    assert abs(b["times"][1] - 0.033366) < 1e-9


# ---------------------------------------------------------------------------
# plausibility at the boundary: the field of view, and messages that name the right file

def test_a_camera_list_is_not_taken_for_a_camera_key(tmp_path):
    """A frame holding a list ["cam01"] said "no camera 'cam01' (has ['cam01'])"."""
    r = tmp_path / "camera_extrinsics.json"
    r.write_text(json.dumps({"frame0": ["cam01"]}))
    with pytest.raises(TrackFormatError) as info:
        writers.read_recammaster(r)
    assert "no camera" not in str(info.value) and "got a list" in str(info.value), str(info.value)
    r.write_text(json.dumps({"frame0": {"cam02": "[1 0 0 0] [0 1 0 0] [0 0 1 0] [0 0 0 1]"}}))
    _refused(writers.read_recammaster, r, r"frame0: no camera 'cam01' \(has \['cam02'\]\)")
    with pytest.raises(TypeError, match="camera key"):
        writers.read_recammaster(r, cam=1)


def test_a_focal_error_names_the_cameras_file(fern, tmp_path):
    d = _copy_text_model(fern, tmp_path)
    n = _line_of(d / "cameras.txt", "1 ")
    _rewrite_line(d / "cameras.txt", n, lambda s: " ".join(s.split()[:4] + ["1e-300"] + s.split()[5:]))
    msg = _expect(d, rf"cameras.txt line {n}: .*field of view")
    assert "images.txt" not in msg and "179" in msg
    text = colmap.read_model(fern / "colmap_text")
    text.cameras[1].params[0] = 2.3e-306
    colmap.write_binary_model(tmp_path / "bin", text.cameras, text.images, text.point_ids, text.xyz, text.tracks)
    msg = _expect(tmp_path / "bin", r"cameras.bin record 0 \(camera\): .*field of view")
    assert "images.bin" not in msg


@pytest.mark.parametrize("fx, fov", [(1e-300, "180"), (1e-3, "179.8"), (100.0, "0.573")])
def test_a_field_of_view_outside_1_to_179_degrees_is_refused(tmp_path, fx, fov):
    """RealEstate10K normalised fx 1e-300 was read (a field of view of 180 degrees)."""
    p = tmp_path / "poses.txt"
    row = "0 {fx} {fx} 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0"
    p.write_text("url\n" + row.format(fx=fx) + "\n" + row.format(fx=fx).replace("0 ", "33 ", 1) + "\n")
    msg = _expect(p, r"poses.txt line 2: .*field of view", format="re10k")
    assert fov in msg and "1 to 179 degrees" in msg, msg
    doc = writers.parascale_document(small_track(3))
    for f in doc["frames"]:
        f["K"][0][0] = fx * 64
    q = tmp_path / "poses.json"
    q.write_text(json.dumps(doc))
    _refused(writers.read_parascale, q, r"frames\[0\]: .*field of view")
    _refused(bridge.load_poses, q, r"field of view", bridge.BridgeError)
