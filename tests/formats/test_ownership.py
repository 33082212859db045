"""Outputs replace only what ParaScale wrote (core.formats.manifest, writers.atomic_folder):
an existing output folder is replaced as far as its manifest.json says, by name, size and
SHA-256, that ParaScale wrote it; the user's files stay; a folder without a valid manifest
of ours that holds anything is refused with the reason and the way out (--force)."""
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from parascale.core.cameras import Track
from parascale.core.formats import writers

FERN_MODEL = "llff_fern/data/nerf_llff_data/fern/colmap_text"


def track(n=3):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) * 0.1
    return Track(c2w=c2w, K=np.diag([50.0, 50.0, 1.0]) + [[0, 0, 32], [0, 0, 32], [0, 0, 0]], width=64,
                 height=64, times=np.arange(n) / 24)


def snapshot(folder: Path) -> dict:
    """Every path under folder with its bytes (None for folders) and mode."""
    out = {}
    for root, dirs, names in os.walk(folder):
        for n in dirs + names:
            p = Path(root) / n
            st = os.lstat(p)
            out[str(p.relative_to(folder))] = (stat.S_IMODE(st.st_mode),
                                                p.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return out


def one_line(exc) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_colmap_export_into_the_users_fern_model_is_refused(data_dir, tmp_path):
    """The user's own COLMAP model (cameras/images/points3D.txt, the names an export
    writes) is not taken for an earlier export: no manifest says ParaScale wrote it."""
    model = tmp_path / "fern_model"
    shutil.copytree(data_dir / FERN_MODEL, model)
    before = snapshot(model)
    with pytest.raises(ValueError) as info:
        writers.write_colmap(track(), model)
    msg = one_line(info.value)
    assert "cameras.txt" in msg and "no valid ParaScale manifest.json" in msg and "--force" in msg, msg
    assert snapshot(model) == before
    assert sorted(os.listdir(tmp_path)) == ["fern_model"]  # no temporaries either


def test_an_export_owns_its_folder_by_manifest(tmp_path):
    out = tmp_path / "model"
    writers.write_colmap(track(3), out, extra_files={"parascale_bridge.py": b"# bridge\n"},
                         manifest={"format": "colmap"})
    man = json.loads((out / "manifest.json").read_text())
    assert man["schema"] == "parascale.outputs" and man["version"] == 1 and man["format"] == "colmap"
    listed = {e["name"]: e for e in man["files"]}
    assert sorted(listed) == ["cameras.txt", "images.txt", "parascale_bridge.py", "points3D.txt"]
    for name, e in listed.items():
        data = (out / name).read_bytes()
        assert e["size"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest()
    # an export over its own output replaces it
    writers.write_colmap(track(5), out)
    assert "5" in (out / "images.txt").read_text().splitlines()[3]


def test_the_users_added_files_stay_and_changed_ones_are_not_overwritten(tmp_path):
    out = tmp_path / "model"
    writers.write_colmap(track(3), out)
    (out / "notes.md").write_text("my notes")
    (out / "renders").mkdir()
    (out / "renders" / "a.png").write_bytes(b"\x89PNG user")
    (out / "empty").mkdir()
    os.symlink("notes.md", out / "link")
    plan = writers.check_replaceable_folder(out, writers.COLMAP_FILES)
    assert plan.kept == ["empty", "link", "notes.md", "renders/a.png"] and "kept 4" in plan.message()
    writers.write_colmap(track(4), out)
    assert (out / "notes.md").read_text() == "my notes" and (out / "renders" / "a.png").read_bytes() == b"\x89PNG user"
    assert (out / "empty").is_dir() and os.readlink(out / "link") == "notes.md"
    man = json.loads((out / "manifest.json").read_text())
    assert man["kept"] == ["empty", "link", "notes.md", "renders/a.png"]
    assert "notes.md" not in {e["name"] for e in man["files"]}
    # a file ParaScale wrote and the user then changed is the user's: never overwritten
    (out / "points3D.txt").write_text("# my edited points\n")
    before = snapshot(out)
    with pytest.raises(ValueError) as info:
        writers.write_colmap(track(5), out)
    msg = one_line(info.value)
    assert "points3D.txt" in msg and "--force" in msg
    assert snapshot(out) == before
    # --force: replaced knowingly, as a whole
    writers.write_colmap(track(5), out, force=True)
    assert sorted(os.listdir(out)) == ["cameras.txt", "images.txt", "manifest.json", "points3D.txt"]


HOSTILE = {
    "string": '{"schema": "parascale.outputs", "version": 1, "files": "poses.txt"}',
    "ints": '{"schema": "parascale.outputs", "version": 1, "files": [1, 2]}',
    "old-style names": '{"files": ["p", "thesis.tex", "cameras.txt"]}',
    "deep": '{"files": ' + "[" * 100000 + "]" * 100000 + "}",
    "deep object": '{"a": ' * 100000 + "1" + "}" * 100000,
    "outside": None,  # built below: names outside the folder
    "user names": None,  # the user's files listed with made-up hashes
    "itself": None,
    "not json": "\x00\xff garbage",
    "a list": "[]",
    "huge size": None,
    "bool size": None,
}


def _entry(name, size=1, digest="0" * 64):
    return {"name": name, "size": size, "sha256": digest}


def hostile_text(kind, tmp_path) -> str:
    text = HOSTILE[kind]
    if text is not None:
        return text
    doc = {"schema": "parascale.outputs", "version": 1}
    if kind == "outside":
        doc["files"] = [_entry("../victim.txt"), _entry(str(tmp_path / "victim.txt")), _entry("a/../../victim.txt")]
    elif kind == "user names":
        doc["files"] = [_entry("p"), _entry("thesis.tex", 13), _entry("cameras.txt", 14)]
    elif kind == "itself":
        doc["files"] = [_entry("manifest.json")]
    elif kind == "huge size":
        doc["files"] = [_entry("p", 10 ** 400)]
    elif kind == "bool size":
        doc["files"] = [_entry("p", True)]
    return json.dumps(doc)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_manifest_keeps_every_user_file(tmp_path, kind):
    out = tmp_path / "out"
    out.mkdir()
    (out / "p").write_text("the user's p")
    (out / "thesis.tex").write_text("years of work")
    (out / "cameras.txt").write_text("my cameras\n")
    (out / "manifest.json").write_text(hostile_text(kind, tmp_path))
    (tmp_path / "victim.txt").write_text("outside")
    users = {k: v for k, v in snapshot(out).items() if k != "manifest.json"}
    try:
        writers.write_colmap(track(), out)
    except ValueError as exc:
        msg = one_line(exc)
        assert str(out) in msg and "--force" in msg, msg
    now = snapshot(out)
    assert {k: now.get(k) for k in users} == users, "a user file was changed or removed"
    assert (tmp_path / "victim.txt").read_text() == "outside"


def test_a_listed_file_whose_hash_matches_is_ours(tmp_path):
    """Listed with its true size and hash: what ParaScale wrote, replaced; the same name
    with any other content stays."""
    out = tmp_path / "out"
    writers.write_colmap(track(3), out)
    man = json.loads((out / "manifest.json").read_text())
    data = b"written by a ParaScale run"
    (out / "extra.txt").write_bytes(data)
    man["files"].append(_entry("extra.txt", len(data), hashlib.sha256(data).hexdigest()))
    (out / "manifest.json").write_text(json.dumps(man))
    writers.write_colmap(track(4), out)
    assert not (out / "extra.txt").exists()


def test_an_empty_folder_or_a_new_one_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    writers.write_colmap(track(), tmp_path / "empty")
    writers.write_colmap(track(), tmp_path / "new")
    assert (tmp_path / "empty" / "cameras.txt").exists() and (tmp_path / "new" / "manifest.json").exists()


def test_the_refusal_comes_before_any_work(tmp_path):
    """The check the command line and the operator call before rendering anything."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ValueError, match=r"holiday\.jpg.*--force"):
        writers.check_replaceable_folder(mine, writers.GEN3C_FILES)
    assert writers.check_replaceable_folder(mine, writers.GEN3C_FILES, force=True).force
