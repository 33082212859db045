"""Property-based fuzzing of the ownership manifest (hypothesis) through the folder
writers (core.formats.writers.write_colmap, atomic_folder): an earlier export's folder,
the user's files added to it, then its manifest.json mutated (tests/manifest_mutations.py).

Per example: the write ends cleanly or in one ValueError of one line naming the folder
(never another exception: no AttributeError on {"files": [1, 2]}, no RecursionError on
deep nesting); every file of the user's is byte-identical afterwards and nothing beside
the folder changes; a clean export's manifest lists exactly what it wrote, by size and
SHA-256. Examples: 200 in `make test` (a tenth of PARASCALE_FUZZ_EXAMPLES).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parascale.core.cameras import Track
from parascale.core.formats import manifest as M
from parascale.core.formats import writers

from manifest_mutations import USER_FILES, mutate_manifest

EXAMPLES = max(20, int(os.environ.get("PARASCALE_FUZZ_EXAMPLES", "2000")) // 10)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)


def track(n):
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, 0, 3] = np.arange(n) * 0.1
    return Track(c2w=c2w, K=np.array([[50.0, 0, 32], [0, 50, 32], [0, 0, 1]]), width=64, height=64,
                 times=np.arange(n) / 24)


def files_of(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_manifest")


@FUZZ
@given(seed=st.integers(0, 2 ** 64 - 1))
def _manifest(work, seed):
    r = random.Random(seed)
    d = work / "ex"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    out = d / "model"
    writers.write_colmap(track(3), out, extra_files={"parascale_bridge.py": b"# bridge\n"})
    users = {}
    for name, data in USER_FILES.items():
        if r.random() < 0.8:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(data)
            users[name] = data
    if r.random() < 0.2:  # a file of ours the user changed
        (out / "images.txt").write_bytes(b"# my edit\n")
        users["images.txt"] = b"# my edit\n"
    (d / "victim.txt").write_bytes(b"beside")
    base = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(mutate_manifest(r, base), encoding="utf-8", errors="surrogateescape")
    try:
        writers.write_colmap(track(r.choice([2, 4])), out)
        ok = True
    except ValueError as exc:
        msg = str(exc)
        assert "\n" not in msg and str(out) in msg, msg
        ok = False
    now = files_of(out)
    for name, data in users.items():
        assert now.get(name) == data, f"user file {name} changed or removed"
    assert (d / "victim.txt").read_bytes() == b"beside"
    assert sorted(os.listdir(d)) == ["model", "victim.txt"]
    if ok:
        listed = M.read_manifest(out / "manifest.json")
        for name, e in listed.items():
            data = now[name]
            assert e.size == len(data) and e.sha256 == hashlib.sha256(data).hexdigest()
        assert set(now) - set(listed) - {"manifest.json"} == set(users)


def test_fuzz_manifest_through_the_folder_writer(work):
    _manifest(work)
