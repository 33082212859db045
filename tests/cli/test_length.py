"""Length: memory bounded by a few frames, cost linear in frames.

- Measuring a video streams it: the allocations while Pi is measured from a 960x540
  video file peak at the same size for 8 and 40 frames (the per-step working set); the
  progress is reported per step, the known Pi read; `parascale measure` prints it.
- A text file passed as a video is refused by what it is, whatever its name.
- COLMAP export of a zooming camera (one camera per frame) writes every camera once,
  each image pointing at its own, with a hash lookup per frame (it was a scan of all
  earlier cameras: quadratic).
- A long synthetic track through measure (video file streamed), transfer and every
  export format, in a fresh process each: the peak memory grows by at most a small
  constant per frame between two lengths (the 100,000-frame figures are in
  `parascale bench`, section length).
"""
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from parascale.core.formats import writers
from parascale.core.cameras import Track

REPO = Path(__file__).resolve().parents[2]

# Runs the command line and prints its own peak resident memory (KiB) last.
PEAK_WRAPPER = ("import atexit, resource, sys\n"
                "atexit.register(lambda: print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
                " file=sys.stderr))\n"
                "from parascale.parascale_blender.cli import main\n"
                "sys.exit(main(sys.argv[1:]))\n")


def run_with_peak(*argv):
    r = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *map(str, argv)], capture_output=True, text=True,
                       timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr
    peak = int(next(l for l in r.stderr.splitlines() if l.startswith("PEAK_KB")).split()[1])
    return r, peak / 1024.0


def test_measure_streams_the_video(tmp_path):
    """Traced allocations (numpy reports every array to tracemalloc) while Pi is measured
    from a video file: the peak is the same for 8 and for 40 frames of 960x540, and under
    a few frames' worth."""
    pytest.importorskip("cv2")
    from parascale.core.formats.readers import read_track
    from parascale.core.reference import pi_from_video
    from parascale.parascale_blender.bench.length import write_clip

    size = (960, 540)
    frame = size[0] * size[1]  # bytes of one gray frame
    peaks = {}
    for n in (8, 40):
        video, track_path = write_clip(tmp_path, n, size=size)
        track = read_track(track_path, "re10k", size=size)
        seen = []
        tracemalloc.start()
        ref = pi_from_video(track, video, preset="ultrafast", progress=lambda d, t: seen.append((d, t)))
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert seen == [(i, n - 1) for i in range(1, n)]
        # the image moves W/200 px a frame at f = 0.9 W: Pi = 1/180 per step
        assert np.median(ref.pi) == pytest.approx(1 / 180, rel=0.1)
    assert abs(peaks[40] - peaks[8]) < frame / 2, peaks
    # the per-step working set (decoded frame, flow and residual at 540x304 in float64):
    # about 30 gray frames' worth, whatever the length
    assert peaks[40] < 32 * 2 ** 20, f"{peaks[40] / 2 ** 20:.1f} MB"


def test_measure_command_prints_progress(tmp_path):
    pytest.importorskip("cv2")
    from parascale.parascale_blender.bench.length import write_clip

    video, track = write_clip(tmp_path, 12, size=(320, 180))
    r, _ = run_with_peak("measure", "--track", track, "--video", video, "--json", tmp_path / "pi.json")
    assert "measuring video: step 11/11" in r.stdout
    assert len(json.loads((tmp_path / "pi.json").read_text())["steps"]) == 11


def test_a_file_that_is_not_a_video_is_refused_by_what_it_is(tmp_path):
    from parascale.core.reference import check_video_file, pi_from_video

    track = Track(c2w=np.tile(np.eye(4), (16, 1, 1)), K=np.diag([50.0, 50.0, 1.0]), width=64, height=64,
                  times=np.arange(16) / 24)
    for name, data in (("notes.txt", b"hello, this is text\n" * 100), ("clip.mp4", b"hello\n" * 100),
                       ("noise.mp4", bytes(range(256)) * 8), ("empty.avi", b"")):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ValueError, match=f"{name}: not a video file"):
            pi_from_video(track, path)
    assert "not a video file (text)" in str(pytest.raises(ValueError, check_video_file, tmp_path / "notes.txt").value)


def zooming_track(n: int) -> Track:
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.linspace(0, 1, n)
    K = np.tile(np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), (n, 1, 1))
    K[:, 0, 0] = K[:, 1, 1] = np.linspace(500, 900, n)
    return Track(c2w=c2w, K=K, width=640, height=480, times=np.arange(n) / 24,
                 names=[f"frame_{i:06d}" for i in range(n)])


def test_colmap_export_of_a_zoom_has_a_camera_per_frame(tmp_path):
    from parascale.core.formats import readers

    n = 5_000
    track = zooming_track(n)
    tracemalloc.start()
    writers.write_colmap(track, tmp_path / "model")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cams = (tmp_path / "model" / "cameras.txt").read_text().splitlines()
    assert f"# Number of cameras: {n}" in cams
    images = [l.split() for l in (tmp_path / "model" / "images.txt").read_text().splitlines()
              if l and not l.startswith("#")]
    assert [int(row[8]) for row in images] == list(range(1, n + 1))  # image i uses camera i
    back = readers.read_track(tmp_path / "model", "colmap")
    np.testing.assert_allclose(back.K[:, 0, 0], track.K[:, 0, 0])
    assert peak < 4096 * n, f"{peak / n:.0f} bytes per frame"  # linear, a few KB per frame
    # two frames with the same K share a camera
    same = zooming_track(4)
    same.K[2] = same.K[0]
    writers.write_colmap(same, tmp_path / "same")
    assert "# Number of cameras: 3" in (tmp_path / "same" / "cameras.txt").read_text()


def test_every_writer_holds_a_few_kb_per_frame(tmp_path):
    n = 2_000
    track = zooming_track(n)
    for fmt in writers.FORMATS:
        kwargs = {"depths": np.ones((n, 3, 4), np.float32)} if fmt == "gen3c" else {}
        tracemalloc.start()
        writers.write_track(track, fmt, tmp_path / f"out_{fmt}{writers.EXTENSIONS[fmt]}",
                            frames=n if fmt == "recammaster" else None, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 4096 * n, f"{fmt}: {peak / n:.0f} bytes per frame"  # JSON streamed, not joined


def test_long_track_through_measure_transfer_and_every_export(tmp_path):
    pytest.importorskip("bpy")
    from parascale.parascale_blender.bench.length import bench_length_subprocess

    small, big = bench_length_subprocess(250), bench_length_subprocess(1000)
    for res in (small, big):
        names = [s["stage"] for s in res["stages"]]
        assert [n for n in names if n.startswith("export ")] == [f"export {f}" for f in writers.FORMATS]
        measured = next(s for s in res["stages"] if s["stage"].startswith("measure"))
        assert measured["pi_median"] == pytest.approx(1 / 180, rel=0.15)
    per_frame_kb = (big["peak_mb"] - small["peak_mb"]) * 1024 / 750
    assert per_frame_kb < 40, f"{per_frame_kb:.1f} KB more peak memory per frame"
