"""frame_times.json beside a COLMAP model: the video's clock kept with the track (issue 17).

`parascale track` writes it; read_colmap times the model with it (in the model folder or one
or two folders up); malformed files are refused naming the file, the entry and what was expected."""
import json
from fractions import Fraction

import numpy as np
import pytest

from parascale.core.cameras import Track, look_at
from parascale.core.formats.frame_times import (NAME, clock_of_video, find_frame_times, frame_times_for,
                                                read_frame_times, write_frame_times)
from parascale.core.formats.readers import TrackFormatError, read_track
from parascale.core.formats.writers import write_colmap


def model(tmp_path, n=12, names=None):
    """DIR/sparse: a COLMAP text model of n frames named like a tracked video's."""
    c2w = np.stack([look_at([0.1 * i, 0.0, 0.0], [0.1 * i, 0.0, 5.0], up=(0, -1, 0)) for i in range(n)])
    K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    names = names or [f"frame_{i:06d}.png" for i in range(n)]
    track = Track(c2w=c2w, K=K, width=320, height=240, times=np.arange(n) / 24.0, names=names)
    out = tmp_path / "track"
    out.mkdir()
    write_colmap(track, out / "sparse")
    return out, names


@pytest.mark.parametrize("rate, text", [(30, "30"), (29.97, "30000/1001"), (12.5, "25/2")])
def test_model_is_timed_by_its_frame_times(tmp_path, rate, text):
    out, names = model(tmp_path)
    write_frame_times(out, frame_times_for(names, rate, "container", "clip.mp4"))
    doc = json.loads((out / NAME).read_text())
    assert doc["rate"] == text and doc["source"] == "container" and doc["names"] == names
    track = read_track(out / "sparse")
    r = Fraction(text)
    assert track.meta["timed"] and track.meta["rate"] == text and track.meta["fps"] == float(r)
    assert np.array_equal(track.times, [float(i / r) for i in range(len(names))])


def test_untimed_without_frame_times_and_found_from_sparse_0(tmp_path):
    out, names = model(tmp_path)
    track = read_track(out / "sparse")
    assert not track.meta["timed"] and np.allclose(track.times, np.arange(len(names)) / 24.0)
    # COLMAP's own layout: DIR/sparse/0, the clock in DIR
    (out / "sparse").rename(out / "0")
    (out / "sparse").mkdir()
    (out / "0").rename(out / "sparse" / "0")
    write_frame_times(out, frame_times_for(names, 25, "given"))
    assert find_frame_times(out / "sparse" / "0") == out / NAME
    assert read_track(out / "sparse" / "0").meta["fps"] == 25.0


def test_model_with_a_frame_missing_keeps_the_others_times(tmp_path):
    """A frame the mapping could not register is absent from the model: the others keep their times."""
    names = [f"frame_{i:06d}.png" for i in range(12)]
    out, _ = model(tmp_path, n=11, names=names[:5] + names[6:])
    write_frame_times(out, frame_times_for(names, 30, "container"))
    track = read_track(out / "sparse")
    assert np.allclose(track.times * 30, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11])


def test_clock_of_a_video_file_and_of_a_folder(tmp_path):
    cv2 = pytest.importorskip("cv2")
    names = [f"frame_{i:06d}.png" for i in range(4)]
    for fps, expected in ((30.0, Fraction(30)), (30000 / 1001, Fraction(30000, 1001))):
        path = tmp_path / f"v{fps:.3f}.mp4"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
        for i in range(4):
            w.write(np.full((48, 64, 3), 60 * i, np.uint8))
        w.release()
        ft = clock_of_video(path, names)
        assert ft.rate == expected and ft.source == "container"
        assert clock_of_video(path, names, fps=24).rate == 24  # given wins (a Movie Clip's rate)
    folder = tmp_path / "frames"
    folder.mkdir()
    assert clock_of_video(folder, names) is None                 # a folder of frames: untimed
    assert clock_of_video(folder, names, fps="30000/1001").source == "given"


def _write(path, **changes):
    doc = {"format": "parascale frame times", "version": 1, "video": "v.mp4", "rate": "30", "fps": 30.0,
           "source": "container", "names": ["a.png", "b.png", "c.png"], "times": [0.0, 1 / 30, 2 / 30]}
    doc.update(changes)
    for k in [k for k, v in changes.items() if v is KeyError]:
        del doc[k]
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("changes, pattern", [
    (dict(format="something else"), "not a frame times file"),
    (dict(version=2), "version 2; this ParaScale reads version 1"),
    (dict(names="a.png"), '"names" and "times" must be lists'),
    (dict(times=[0.0, 0.1]), "3 names but 2 times"),
    (dict(names=["a.png", 7, "c.png"]), r"names\[1\]: expected an image name"),
    (dict(names=["a.png", "b.png", "a.png"]), "'a.png' named twice"),
    (dict(times=[0.0, "x", 0.2]), r"times\[1\]"),
    (dict(times=[0.0, float("nan"), 0.2]), r"times\[1\]: the frame time is not finite"),
    (dict(times=[0.0, 0.2, 0.1]), r"times\[2\] \(c.png\).*must increase"),
    (dict(rate="fast"), "rate: frame rate 'fast'"),
    (dict(rate="30/0"), "rate: frame rate"),
    (dict(rate=-30), "rate: frame rate"),
    (dict(rate=[30]), "rate: expected a frame rate"),
    (dict(source="guess"), "source: expected one of container, given"),
])
def test_malformed_frame_times_are_refused_naming_what_is_wrong(tmp_path, changes, pattern):
    path = _write(tmp_path / NAME, **changes)
    with pytest.raises(TrackFormatError, match=pattern) as err:
        read_frame_times(path)
    assert str(path) in str(err.value)


def test_a_model_image_without_a_time_is_refused(tmp_path):
    out, names = model(tmp_path)
    write_frame_times(out, frame_times_for(names[:-1], 30, "container"))
    with pytest.raises(TrackFormatError, match=f"no time for image '{names[-1]}'"):
        read_track(out / "sparse")


def test_not_json_and_empty_files_are_refused(tmp_path):
    for text, pattern in (("", "empty file"), ("{", "invalid JSON"), ("[1, 2]", "not a frame times file")):
        path = tmp_path / NAME
        path.write_text(text)
        with pytest.raises(TrackFormatError, match=pattern):
            read_frame_times(path)
