"""Shared pieces of the benchmark: configuration, result rows, machine info, the
procedural terrain scenes and the reference move."""
from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field

import numpy as np

from ...core.cameras import look_at


# Issue 23's goals. A 240-key transfer on the 1M-triangle scene costs at most this
# many times the Z pass alone on the same poses (same run); a 100k-frame track costs
# at most this many times per frame what a 10k one does, in measure, transfer and export.
TARGET_CALIBRATION_RATIO = 1.25
TARGET_LENGTH_RATIO = 1.5
TARGET_VIDEO_FPS = 30.0       # reference Pi from video at 960x540
LENGTH_FRAMES = 100_000       # the length section's track
VIDEO_SIZE = (960, 540)
DEPTH_SIZE = (96, 54)         # TransferOptions' default depth grid
FPS = 24


@dataclass
class Config:
    quick: bool = False
    triangles: tuple = (10_000, 100_000, 1_000_000)
    depth_frames: int = 8          # depth calls per method and scene
    calib_frames: int = 240
    video_frames: int = 40
    video_repeats: int = 2
    key_frames: int = 10_000
    bulk_repeats: int = 3
    length_frames: int = LENGTH_FRAMES
    track_frames: int = 240        # video tracking (full bench only): a rendered clip ...
    track_size: tuple = (640, 360) # ... of this size
    batch_jobs: int = 40           # parascale batch, 1 worker vs every core (full bench only)

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if not quick:
            return cls()
        return cls(quick=True, triangles=(10_000, 30_000, 100_000), depth_frames=4, calib_frames=48,
                   video_frames=12, video_repeats=1, key_frames=1_000, bulk_repeats=3,
                   length_frames=2_000)


@dataclass
class Results:
    machine: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"machine": self.machine, "config": self.config, "sections": self.sections,
                "targets": self.targets, "notes": self.notes}


def _log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def row(label: str, seconds: float, unit: str, baseline: str, baseline_seconds: float, **extra) -> dict:
    out = {"label": label, "seconds": float(seconds), "unit": unit, "per_second": 1.0 / float(seconds),
           "baseline": baseline, "baseline_seconds": float(baseline_seconds),
           "ratio": float(baseline_seconds) / float(seconds)}
    out.update(extra)
    return out


# ---------------------------------------------------------------------------
# machine

def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "numpy": np.__version__}
    try:
        info["cores_available"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import bpy
        info["bpy"] = bpy.app.version_string
    except ImportError:
        info["bpy"] = None
    try:
        import cv2
        info["opencv"] = cv2.__version__
        info["opencv_threads"] = cv2.getNumThreads()
    except ImportError:
        info["opencv"] = None
    return info


# ---------------------------------------------------------------------------
# scenes

def reference_move(n: int) -> np.ndarray:
    """Dolly, truck and pan together over a terrain 20 units across, c2w (n, 4, 4)."""
    out = []
    for i in range(n):
        s = i / max(n - 1, 1)
        eye = np.array([-1.5 + 3.0 * s, -12.0 + 4.0 * s, 5.0 - 1.0 * s])
        target = np.array([1.0 * s - 0.5, 0.0, 0.0])
        out.append(look_at(eye, target))
    return np.stack(out)


def grid_cells(triangles: int) -> int:
    """Cells per side of a square grid of two triangles per cell."""
    return max(2, int(round(math.sqrt(triangles / 2.0))))


def build_terrain_scene(triangles: int, name: str = "bench"):
    """An empty scene holding one rolling terrain mesh of about `triangles`
    triangles (a triangulated grid, built with foreach_set), 20 units across.
    Returns (scene, mesh object, exact triangle count)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    n = grid_cells(triangles)
    xs = np.linspace(-10.0, 10.0, n + 1)
    X, Y = np.meshgrid(xs, xs)
    Z = 0.6 * np.sin(0.9 * X) * np.cos(0.7 * Y) + 0.25 * np.sin(3.1 * X + 1.3 * Y) + 0.05 * np.sin(17 * X) * np.sin(13 * Y)
    co = np.c_[X.ravel(), Y.ravel(), Z.ravel()].astype(np.float32)
    i = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]).ravel()
    a, b, c, d = i, i + 1, i + n + 2, i + n + 1
    tris = np.concatenate([np.c_[a, b, c], np.c_[a, c, d]]).astype(np.int32)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(co))
    mesh.vertices.foreach_set("co", co.ravel())
    mesh.loops.add(tris.size)
    mesh.loops.foreach_set("vertex_index", tris.ravel())
    mesh.polygons.add(len(tris))
    mesh.polygons.foreach_set("loop_start", np.arange(0, tris.size, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    obj = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(obj)
    scene.render.resolution_x, scene.render.resolution_y = VIDEO_SIZE
    scene.render.resolution_percentage = 100
    scene.render.fps, scene.render.fps_base = FPS, 1.0
    return scene, obj, len(mesh.polygons)


def add_camera(scene, name: str, c2w_cv: np.ndarray):
    import bpy
    from mathutils import Matrix

    from ...core.cameras import cv_to_blender

    data = bpy.data.cameras.new(name)
    data.lens, data.sensor_width = 30.0, 36.0
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    obj.matrix_world = Matrix(cv_to_blender(c2w_cv).tolist())
    scene.camera = obj
    return obj
