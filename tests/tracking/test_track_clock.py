"""`parascale track` keeps the video's clock (issue 17): frame_times.json beside the model, so
`measure` and `transfer --track MODEL --video VIDEO` time the move as the video does.

Before: a tracked model was untimed (one frame per scene frame): a 30 fps video measured
and transferred into a 24 fps scene ran 25% slow (16 frames over 15/24 s instead of 15/30 s)."""
import json

import numpy as np
import pytest

from parascale.core import tracking as T
from parascale.parascale_blender.cli import main as cli_main

cv2 = pytest.importorskip("cv2")
AVAILABLE, WHY = T.tracking_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY)

from clip_videos import CLIP_FOCAL, clip_frames, write_video  # noqa: E402

N = 16


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A 30 fps video of the clip, tracked by the command line with the clip's lens."""
    from conftest import data_root

    root = data_root()
    if root is None:
        pytest.skip("real data not available: set PARASCALE_DATA to the shared data folder")
    tmp = tmp_path_factory.mktemp("clock")
    video = write_video(tmp / "walk30.mp4", clip_frames(root), 30.0)
    out = tmp / "walk30_track"
    assert cli_main(["track", str(video), "--focal", repr(CLIP_FOCAL[0]), "--focal-y", repr(CLIP_FOCAL[1]),
                     "--out", str(out)]) == 0
    return video, out


def test_track_writes_the_video_clock(tracked, capsys):
    from parascale.core.formats.readers import read_track

    video, out = tracked
    doc = json.loads((out / "frame_times.json").read_text())
    assert doc["format"] == "parascale frame times" and doc["rate"] == "30" and doc["source"] == "container"
    assert doc["names"] == sorted(p.name for p in (out / "images").iterdir())
    assert doc["times"] == [i / 30 for i in range(N)]
    track = read_track(out)
    assert track.meta["timed"] and track.meta["fps"] == 30.0
    assert track.times[-1] - track.times[0] == pytest.approx((N - 1) / 30, abs=1e-12)


def test_measure_keeps_the_clock(tracked, tmp_path):
    video, out = tracked
    assert cli_main(["measure", "--track", str(out), "--video", str(video), "--json", str(tmp_path / "pi.json"),
                     "--preset", "ultrafast"]) == 0
    doc = json.loads((tmp_path / "pi.json").read_text())
    assert doc["timed"] is True and doc["fps"] == 30.0
    assert [s["time"] for s in doc["steps"]] == pytest.approx([t / 30 for t in range(1, N)], abs=1e-12)


def test_transfer_keeps_the_clock_in_a_24_fps_scene(tracked, tmp_path):
    """16 frames at 30 fps last 0.5 s: 13 frames of a 24 fps target (it was 16: 25% slow)."""
    bpy = pytest.importorskip("bpy")
    from analytic_scenes import reference_move
    from blender_scenes import add_camera, build_tabletop

    video, out = tracked
    bpy.ops.wm.read_factory_settings(use_empty=True)
    build_tabletop(bpy, 10.0)
    scene = bpy.context.scene
    scene.render.fps, scene.frame_start, scene.frame_end = 24, 1, 100
    scene.camera = add_camera(bpy, "Target", reference_move(8, 10.0)[0])
    target = tmp_path / "target.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(target))
    try:
        assert cli_main(["transfer", "--track", str(out), "--video", str(video), "--target", str(target),
                         "--depth", "raycast", "--depth-size", "32x18", "--realised-grid", "none",
                         "--output", str(tmp_path / "out.blend"), "--report", str(tmp_path / "report.json")]) == 0
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames"] == list(range(1, 14))


def test_a_folder_of_frames_is_timed_by_fps_and_a_bad_rate_is_refused(data_dir, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, img in enumerate(clip_frames(data_dir)[:6]):
        cv2.imwrite(str(folder / f"f{i:03d}.png"), img)
    for bad in ("0", "fast", "-24", "30/0", "5000"):
        assert cli_main(["track", str(folder), "--fps", bad, "--out", str(tmp_path / "bad")]) == 2
        assert "--fps" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "m"
    assert cli_main(["track", str(folder), "--fps", "30000/1001", "--focal", repr(CLIP_FOCAL[0]),
                     "--focal-y", repr(CLIP_FOCAL[1]), "--out", str(out)]) == 0
    assert "clock: 29.97 fps (given)" in capsys.readouterr().out
    doc = json.loads((out / "frame_times.json").read_text())
    assert doc["rate"] == "30000/1001" and doc["source"] == "given"
    assert np.allclose(doc["times"], np.arange(6) * 1001 / 30000, atol=1e-15)
