"""The job list of `parascale batch` (parascale_blender/batch/jobs.py), without Ray: what
a JOBS.csv may hold, each structural problem refused with its file and line, paths read
from the CSV's folder, and the input key (same contents: same key; any byte changed:
another key; a moved copy: the same key)."""
import json
import os
from pathlib import Path

import pytest

from parascale.parascale_blender.batch import jobs as J

HEAD = "id,kind,video,track,target,camera\n"


def write(tmp_path: Path, text: str, name: str = "jobs.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_kinds_columns_and_paths(tmp_path):
    (tmp_path / "clips").mkdir()
    p = write(tmp_path, "notes,camera,target,track,video,kind,id\n"  # any order, extra column ignored
              "first,,,clips/a.txt,clips/a.mp4,measure,a\n"
              ",,,,clips/b.mp4,track,b\n"
              ",Cam,shots/s1.blend,clips/a.txt,,transfer,s1\n"
              ",,shots/s2.blend,,clips/b.mp4,transfer,s2\n"
              ",,,,,,\n")  # a blank row
    jobs = J.read_jobs(p)
    assert [(j.id, j.kind, j.line) for j in jobs] == [("a", "measure", 2), ("b", "track", 3),
                                                      ("s1", "transfer", 4), ("s2", "transfer", 5)]
    assert jobs[0].video == str(tmp_path / "clips" / "a.mp4") and jobs[0].track == str(tmp_path / "clips" / "a.txt")
    assert jobs[0].target is None and jobs[0].camera is None
    assert jobs[2].camera == "Cam" and jobs[2].target == str(tmp_path / "shots" / "s1.blend")
    assert jobs[3].inputs() == {"video": str(tmp_path / "clips" / "b.mp4"),
                                "target": str(tmp_path / "shots" / "s2.blend")}
    # absolute paths stay as they are; a run from another folder reads the same files
    cwd = os.getcwd()
    try:
        os.chdir("/")
        assert J.read_jobs(p) == jobs
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("text, expect", [
    ("", "empty"),
    ("id,kind,video,track,target\n", "no column camera"),
    (HEAD, "no jobs"),
    (HEAD + "a,mesure,,t.txt,,\n", "jobs.csv:2: job a: kind 'mesure' is not one of measure, track, transfer"),
    (HEAD + "a,measure,v.mp4,,,\n", "jobs.csv:2: job a: kind measure needs a track"),
    (HEAD + "a,measure,,t.txt,s.blend,\n", "kind measure takes no target"),
    (HEAD + "a,track,v.mp4,t.txt,,\n", "kind track takes no track; leave that cell empty (a video alone is kind track)"),
    (HEAD + "a,track,,,,\n", "kind track needs a video"),
    (HEAD + "a,transfer,,,s.blend,Cam\n", "kind transfer needs a track or a video"),
    (HEAD + "a,transfer,v.mp4,,,\n", "kind transfer needs a target"),
    (HEAD + ",measure,,t.txt,,\n", "jobs.csv:2: the id is empty"),
    (HEAD + "../up,measure,,t.txt,,\n", "id '../up' cannot name its output folder"),
    (HEAD + ".hidden,measure,,t.txt,,\n", "cannot name its output folder"),
    (HEAD + "summary.csv,measure,,t.txt,,\n", "cannot name its output folder"),
    (HEAD + "a,measure,,t.txt,,\nA,measure,,u.txt,,\n", "jobs.csv:3: id 'A' is already the id of line 2"),
    (HEAD + "a,x,,,,\nb,y,,,,\nc,z,,,,\nd,w,,,,\n", "(and 1 more)"),
])
def test_bad_job_lists_are_refused_with_file_and_line(tmp_path, text, expect):
    p = write(tmp_path, text)
    with pytest.raises(J.JobListError) as e:
        J.read_jobs(p)
    assert expect in str(e.value), str(e.value)


def test_not_text(tmp_path):
    p = tmp_path / "jobs.csv"
    p.write_bytes(b"\xff\xfe\x00\x01 binary")
    with pytest.raises(J.JobListError, match="not UTF-8"):
        J.read_jobs(p)


def test_input_key(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"video bytes" * 1000)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "cameras.bin").write_bytes(b"cams")
    (tmp_path / "model" / "images.bin").write_bytes(b"images")
    job = J.Job("a", "measure", video=str(tmp_path / "clip.mp4"), track=str(tmp_path / "model"))
    key = J.inputs_key(job, {}, "1.0")
    assert key == J.inputs_key(job, {}, "1.0") and len(key) == 64
    # the same contents elsewhere: the same key (a moved dataset is still done)
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "clip.mp4").write_bytes((tmp_path / "clip.mp4").read_bytes())
    (moved / "model").mkdir()
    for f in ("cameras.bin", "images.bin"):
        (moved / "model" / f).write_bytes((tmp_path / "model" / f).read_bytes())
    assert J.inputs_key(J.Job("b", "measure", video=str(moved / "clip.mp4"), track=str(moved / "model")),
                        {}, "1.0") == key
    # one byte of one file in the model folder, a file added to it, the kind, the camera,
    # the ParaScale version: each gives another key
    (moved / "model" / "images.bin").write_bytes(b"imageS")
    changed = J.Job("a", "measure", video=str(moved / "clip.mp4"), track=str(moved / "model"))
    keys = {key, J.inputs_key(changed, {}, "1.0")}
    (tmp_path / "model" / "points3D.bin").write_bytes(b"")
    keys.add(J.inputs_key(job, {}, "1.0"))
    keys.add(J.inputs_key(J.Job("a", "track", video=str(tmp_path / "clip.mp4")), {}, "1.0"))
    keys.add(J.inputs_key(J.Job("a", "transfer", video=str(tmp_path / "clip.mp4"),
                                target=str(tmp_path / "clip.mp4"), camera="A"), {}, "1.0"))
    keys.add(J.inputs_key(J.Job("a", "transfer", video=str(tmp_path / "clip.mp4"),
                                target=str(tmp_path / "clip.mp4"), camera="B"), {}, "1.0"))
    keys.add(J.inputs_key(job, {}, "1.1"))
    assert len(keys) == 7
    with pytest.raises(FileNotFoundError, match="nope.mp4: no such file or folder"):
        J.inputs_key(J.Job("c", "track", video=str(tmp_path / "nope.mp4")), {}, "1.0")


def test_rerun_decision(tmp_path):
    """What a rerun does with each job, before any Ray (engine.sort_jobs): a finished job
    with the same fingerprint is skipped after a stat; a touched input (same bytes) is
    hashed again and skipped; changed bytes, a failed record, no record: run; a missing
    input: that job alone fails with the reason."""
    from parascale.parascale_blender.batch.engine import sort_jobs
    from parascale.parascale_blender.batch.tasks import RECORD

    out = tmp_path / "out"
    out.mkdir()
    names = ("same", "touched", "changed", "failed", "new", "gone")
    for n in names:
        (tmp_path / f"{n}.txt").write_text(f"track {n}\n")
    jobs = [J.Job(n, "measure", track=str(tmp_path / f"{n}.txt")) for n in names]
    for job in jobs[:4]:
        (out / job.id).mkdir()
        rec = {"id": job.id, "status": "failed" if job.id == "failed" else "ok",
               "key": J.inputs_key(job), "fingerprint": J.inputs_fingerprint(job)}
        (out / job.id / RECORD).write_text(json.dumps(rec))
    st = os.stat(tmp_path / "touched.txt")
    os.utime(tmp_path / "touched.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    (tmp_path / "changed.txt").write_text("track changed, other bytes\n")
    (tmp_path / "gone.txt").unlink()
    todo, skipped, missing = sort_jobs(jobs, out)
    assert sorted(j.id for j in todo) == ["changed", "failed", "new"]
    assert skipped == 2
    assert list(missing) == ["gone"] and missing["gone"].endswith("gone.txt: no such file or folder")


def test_fingerprint_follows_stat(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    job = J.Job("a", "measure", track=str(tmp_path / "a.txt"))
    fp, key = J.inputs_fingerprint(job, "1"), J.inputs_key(job, {}, "1")
    assert J.inputs_fingerprint(job, "1") == fp
    st = os.stat(tmp_path / "a.txt")
    os.utime(tmp_path / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert J.inputs_fingerprint(job, "1") != fp and J.inputs_key(job, {}, "1") == key


def test_memory_per_kind():
    from parascale.parascale_blender.batch.engine import KIND_MEMORY_MB, BatchError, memory_per_kind

    assert memory_per_kind("") == KIND_MEMORY_MB
    m = memory_per_kind("transfer=4096, track=0")
    assert m["transfer"] == 4096 and m["track"] is None and m["measure"] == KIND_MEMORY_MB["measure"]
    for bad in ("render=10", "transfer=lots", "transfer"):
        with pytest.raises(BatchError, match="PARASCALE_BATCH_MEMORY_MB"):
            memory_per_kind(bad)
