"""Shared test fixtures. Real data lives under $PARASCALE_DATA (../shared/data in CI);
tests that need it skip, saying so, when it is absent."""
import os
from pathlib import Path

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


# Let tests import the helper modules that sit beside them (analytic_scenes).
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
