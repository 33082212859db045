"""Shared test fixtures. Real data lives under $PARASCALE_DATA (../shared/data in CI);
tests that need it skip, saying so, when it is absent.

Sharing expensive work (issue 23; see tests/README.md):

- Within a run: build a scene, a render or a model once in a fixture of
  scope="module" (or "session") and hand it to every test that only reads it.
  `make test` runs on two workers (pytest-xdist, --dist loadfile): a module's tests stay
  in one worker, so a module fixture still runs once; a session fixture runs once per
  worker.
- Across tests, workers and runs: cached_folder(kind, parts, build) keys a folder by the
  content of everything that makes it (files, folders, arguments, the project's code and
  the versions of bpy, pycolmap, OpenCV, numpy) and builds it once. A later request
  with the same key gets the same folder (read it, never write into it); any change
  to an input or to the code makes a new key. PARASCALE_TEST_CACHE=off builds afresh
  every time (a cold run); PARASCALE_TEST_CACHE=<folder> moves the cache.
"""
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path | None:
    value = os.environ.get("PARASCALE_DATA")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


@pytest.fixture
def data_dir() -> Path:
    root = data_root()
    if root is None:
        pytest.skip("real data not available: set PARASCALE_DATA to the shared data folder "
                    "(.ci/run sets ../shared/data)")
    return root


@pytest.fixture
def fresh_blender():
    """bpy with an empty factory scene (and back to it afterwards)."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy
    bpy.ops.wm.read_factory_settings(use_empty=True)


# ---------------------------------------------------------------------------
# Slow tests and the two workers (issue 23; tests/README.md)

# Minutes of work each (COLMAP tracking, the demo, kill tests that start many processes,
# fuzzing, benches, venv and zip builds): marked `slow` here, so `make test-quick`
# (-m "not slow") is the inner loop. A test may also mark itself @pytest.mark.slow.
SLOW_MODULES = ("tests/tracking/test_track.py", "tests/formats/test_fuzz.py", "tests/cli/test_demo.py",
                "tests/cli/test_kill.py", "tests/cli/test_length.py", "tests/cli/test_bench.py",
                "tests/bridge/test_fuzz_bridge.py", "tests/formats/test_fuzz_manifest.py")
SLOW_TESTS = ("test_bridge_runs_in_fresh_numpy_only_venv", "test_zip_installs_registers_calibrates_and_uninstalls",
              "test_zip_holds_the_add_on_without_tests_or_caches", "test_photo_tracks_go_import_calibrate_evaluate_export_bridge",
              "test_cli_export_equals_evaluated_poses")
# `make test` spreads tests over two workers with --dist loadgroup: every module is one
# group (its module fixtures run once, in one worker), except these, whose tests are
# independent and long: they go one by one to whichever worker is free (a test in them
# that shares a costly module fixture names its group: @pytest.mark.xdist_group(name)).
SPREAD_MODULES = ("tests/tracking/test_track.py", "tests/formats/test_fuzz.py", "tests/bridge/test_fuzz_bridge.py")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes of work; `make test-quick` leaves it out")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        module = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        name = getattr(item, "originalname", None) or item.name
        if module in SLOW_MODULES or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if module not in SPREAD_MODULES and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(module))


# Let tests import the helper modules that sit beside them (analytic_scenes).
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))


# ---------------------------------------------------------------------------
# Content-keyed cache (see the module docstring and tests/README.md)

CACHE_ENV = "PARASCALE_TEST_CACHE"
CODE_ROOTS = ("core", "parascale_blender", "bridge", "operators", "panels")


def cache_root() -> Path | None:
    value = os.environ.get(CACHE_ENV, "")
    if value.lower() in ("off", "0", "no"):
        return None
    return Path(value) if value else Path(tempfile.gettempdir()) / "parascale-test-cache"


def _hash_path(h, path: Path) -> None:
    path = Path(path)
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(child.relative_to(path)).encode() + b"\0")
            _hash_file(h, child)
    elif path.is_file():
        _hash_file(h, path)
    else:
        h.update(b"missing:" + str(path).encode())


def _hash_file(h, path: Path) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)


_CODE_KEY = None


def code_key() -> str:
    """Hash of the project's code and the versions of the libraries results depend on."""
    global _CODE_KEY
    if _CODE_KEY is None:
        from importlib import metadata

        h = hashlib.sha256()
        for root in CODE_ROOTS:
            for f in sorted((REPO / root).rglob("*.py")):
                h.update(str(f.relative_to(REPO)).encode() + b"\0")
                _hash_file(h, f)
        for dist in ("bpy", "pycolmap", "opencv-python-headless", "numpy"):
            with contextlib.suppress(metadata.PackageNotFoundError):
                h.update(f"{dist}=={metadata.version(dist)}".encode())
        _CODE_KEY = h.hexdigest()
    return _CODE_KEY


def content_key(parts: Iterable) -> str:
    """Hash of the parts: Paths by their content (folders by every file in them), other
    values by their repr; always with code_key()."""
    h = hashlib.sha256(code_key().encode())
    for part in parts:
        if isinstance(part, Path):
            _hash_path(h, part)
        elif isinstance(part, bytes):
            h.update(part)
        else:
            h.update(repr(part).encode())
        h.update(b"\1")
    return h.hexdigest()[:24]


class CachedError(Exception):
    """Raised for an error a cached build recorded (keep_errors), with its message."""


def cached_folder(kind: str, parts: Iterable, build: Callable[[Path], None], *,
                  keep_errors: tuple = ()) -> Path:
    """The folder `build(folder)` makes from `parts`, built once per content key.

    kind: a short name (the cache's subfolder). build must write only into the folder it
    is given. An exception of a type in keep_errors is recorded too (a refusal is a
    result): later requests raise it again, as the same type when it takes a message.
    Readers must not modify the folder. With the cache off the folder is built in a
    fresh temporary folder each time."""
    parts = list(parts)
    root = cache_root()
    if root is None:
        folder = Path(tempfile.mkdtemp(prefix=f"parascale-{kind}-"))
        build(folder)
        return folder
    final = root / kind / content_key(parts)
    if not final.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
        work = tmp / "folder"
        work.mkdir()
        try:
            build(work)
        except keep_errors as exc:
            (tmp / "error.json").write_text(json.dumps({"type": type(exc).__name__, "message": str(exc)}))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            os.rename(tmp, final)    # atomic; another worker may have won the race
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    error = final / "error.json"
    if error.is_file():
        doc = json.loads(error.read_text())
        kind_of = next((e for e in keep_errors if e.__name__ == doc["type"]), CachedError)
        try:
            raise kind_of(doc["message"])
        except TypeError:
            raise CachedError(doc["message"]) from None
    return final / "folder"
