"""The footage renderer (parascale_blender.footage): the truth it returns is the truth of
its pixels, and renders are cached by content.

The render pair (with and without movers, same camera) differs only where the returned
mover boxes project with the returned camera: a wrong pose, intrinsics or mover path
would put the difference outside the mask. Renders are tiny and cached (PARASCALE_CACHE,
else the system temporary folder)."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bpy")
cv2 = pytest.importorskip("cv2")

from parascale.parascale_blender import footage  # noqa: E402

SIZE = dict(width=128, height=72)


@pytest.fixture(scope="module")
def cache() -> Path:
    root = os.environ.get("PARASCALE_CACHE")
    return Path(root) / "footage" if root else Path(tempfile.gettempdir()) / "parascale-cache" / "footage"


def test_truth_video_and_cache(cache):
    calls = []
    fp = footage.render_footage("procedural", frames=6, fps=24, video=True, png=True, cache=cache, **SIZE,
                                progress=lambda i, n: calls.append(i))
    assert len(fp) == 6 and fp.c2w.shape == (6, 4, 4)
    R = fp.c2w[:, :3, :3]
    assert np.allclose(R @ np.swapaxes(R, 1, 2), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(R), 1.0)
    assert fp.K[0, 0] == pytest.approx(0.5 * 128 / np.tan(np.radians(30)))
    assert (fp.K[0, 2], fp.K[1, 2]) == (64.0, 36.0)
    cap = cv2.VideoCapture(str(fp.video))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(24, abs=0.01)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 6 and frames[0].shape == (72, 128, 3)
    png = cv2.imread(str(fp.frame_paths[3]))
    assert np.abs(png.astype(int) - frames[3].astype(int)).mean() < 6  # mp4 is lossy, same picture
    track = fp.track()
    assert track.names == [str(i) for i in range(6)] and np.allclose(np.diff(track.times), 1 / 24)
    again = footage.render_footage("procedural", frames=6, fps=24, video=True, png=True, cache=cache, **SIZE,
                                   progress=lambda i, n: calls.append(-i))
    assert again.folder == fp.folder and min(calls) > 0, "the second call must come from the cache"


def test_movers_differ_only_inside_their_projected_boxes(cache):
    kw = dict(frames=5, video=False, png=True, cache=cache, **SIZE)
    plain = footage.render_footage("procedural", movers=0, **kw)
    moving = footage.render_footage("procedural", movers=2, **kw)
    assert np.array_equal(plain.c2w, moving.c2w)
    assert moving.movers.shape == (2, 5, 4, 4) and moving.mover_sizes.shape == (2, 3)
    seen = 0
    for i in range(5):
        a = cv2.imread(str(plain.frame_paths[i])).astype(int)
        b = cv2.imread(str(moving.frame_paths[i])).astype(int)
        diff = np.abs(a - b).max(axis=2) > 12
        mask = cv2.dilate(moving.mover_mask(i).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert not (diff & ~mask).any(), f"frame {i}: {int((diff & ~mask).sum())} changed pixels outside the boxes"
        seen += int(diff.sum())
    assert seen > 100, "the movers must be in view"


def test_sky_or_enclosed(cache):
    kw = dict(frames=2, video=False, png=True, cache=cache, **SIZE)
    open_sky = footage.render_footage("procedural", sky=True, **kw)
    dome = footage.render_footage("procedural", sky=False, **kw)
    assert 0.05 < open_sky.meta["sky_fraction_mean"] < 0.6
    assert dome.meta["sky_fraction_mean"] == 0.0


def test_bad_requests_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="shading"):
        footage.render_footage("procedural", shading="eevee", cache=tmp_path)
    with pytest.raises(ValueError, match="path must be"):
        footage.render_footage("procedural", path=np.zeros((1, 4, 4)), cache=tmp_path)
    with pytest.raises(FileNotFoundError, match="no such scene"):
        footage.render_footage(str(tmp_path / "missing.gltf"), cache=tmp_path)
    with pytest.raises(ValueError, match="unknown path"):
        footage.make_spec("procedural", path="orbit", frames=3, width=64, height=64, fps=24, focal=None,
                          movers=0, sky=True, shading="flat", samples=0, video=True, png=False, seed=0,
                          data_dir=None)
