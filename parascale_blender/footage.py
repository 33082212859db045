"""Rendered footage with a known camera path: test and bench videos for video tracking and
the reference Pi (bpy, Cycles CPU).

    fp = render_footage("town", frames=240, width=640, height=360, fps=30, movers=3, sky=True)
    fp.video          # mp4 (OpenCV 'mp4v'), or None when video=False
    fp.frames_dir     # folder of PNG frames frame_000000.png ... (png=True), else None
    fp.c2w, fp.K      # the true camera-to-world poses (N, 4, 4, OpenCV axes) and intrinsics
    fp.track()        # the same as a core Track (times i / fps)

Scenes: "town" (the glTF truck town of PARASCALE_DATA/real_scenes), "ship" (the glTF ship, an
isolated object),
"procedural" (a textured 3-D block town built here, no data needed), or a path to any
.gltf/.glb/.blend file. Paths: a named smooth path for the scene ("default"; the town
also has "street_up", looking up: about 30% sky; the default shows about 10%; other scenes
arc around their centre), or your own poses (N, 4, 4) c2w OpenCV.

Shading is flat-lit by default: every material becomes an emission of its base colour (its
texture when it has one, modulated by a fine world-space noise so that plain walls carry
features) times a fixed Lambert term. It has no sampling noise, so a few samples suffice
(antialiasing only) and renders are fast and repeatable. shading="cycles" path-traces
with a sun and the sky instead (slower, noisier).

Movers: N textured boxes that cross the view on their own straight paths (each crosses
the field of view during its part of the clip, at about half the depth of what the
camera looks at). Sky: True shows the world background at infinity (a gradient sky);
False encloses everything in a textured dome (no pixel sees infinity).

Renders are cached by content: the cache key hashes the scene files, the path, every
option and this module's FOOTAGE_VERSION. The default cache is $PARASCALE_CACHE or
~/.cache/parascale/footage. The render runs in a child process (this Python, a fresh
bpy): the caller's Blender data is never touched. render_here() is the in-process
renderer (it replaces the open file: for scripts only).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

FOOTAGE_VERSION = 1
SCENES = {"town": "real_scenes/truck_town/town_model.gltf",
          "ship": "real_scenes/dutch_ship/dutch_ship_medium_1k.gltf"}
LIGHT_DIR = (0.45, -0.35, 0.82)      # flat-lit shading: the light's direction (world, unnormalised)
SKY_HORIZON = (235, 228, 215)        # the sky's colour (BGR, 8-bit display values) at the horizon
SKY_ZENITH = (215, 150, 90)          # ... and straight up
META_NAME = "footage.json"
PATHS = {"town": ("default", "street_up")}   # named paths per scene; every scene has "default"


@dataclass
class Footage:
    """A rendered clip and its truth. c2w: (N, 4, 4) camera-to-world, OpenCV axes, in the
    scene's world units (Blender's world, z up). K: (3, 3) pixels at width x height."""

    folder: Path
    video: Optional[Path]
    frames_dir: Optional[Path]
    c2w: np.ndarray
    K: np.ndarray
    width: int
    height: int
    fps: float
    scene: str
    movers: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 4, 4)))  # (M, N, 4, 4) box-to-world
    mover_sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))   # (M, 3) box edge lengths
    sky: bool = True
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.c2w)

    @property
    def times(self) -> np.ndarray:
        return np.arange(len(self.c2w)) / float(self.fps)

    @property
    def frame_paths(self) -> list:
        if self.frames_dir is None:
            raise ValueError(f"{self.folder}: rendered without png=True: no frame files")
        return [self.frames_dir / frame_name(i) for i in range(len(self))]

    def track(self):
        """The true path as a core Track (times i / fps, names = frame numbers)."""
        from ..core.cameras import Track

        return Track(self.c2w, self.K, self.width, self.height, self.times,
                     names=[str(i) for i in range(len(self))], source=f"footage {self.scene}")

    def mover_mask(self, frame: int) -> np.ndarray:
        """(H, W) bool: pixels inside the projected hull of any mover box at `frame`
        (occlusion by the scene is ignored: a superset of the visible mover pixels)."""
        import cv2

        mask = np.zeros((self.height, self.width), np.uint8)
        w2c = np.linalg.inv(self.c2w[frame])
        for m in range(len(self.movers)):
            corners = _box_corners(self.movers[m, frame], self.mover_sizes[m])
            pc = (w2c[:3, :3] @ corners.T).T + w2c[:3, 3]
            if np.any(pc[:, 2] <= 1e-6):
                if np.all(pc[:, 2] <= 1e-6):
                    continue
                pc = pc[pc[:, 2] > 1e-6]
            uv = (self.K @ pc.T).T
            uv = uv[:, :2] / uv[:, 2:]
            hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
        return mask.astype(bool)


def frame_name(i: int) -> str:
    return f"frame_{i:06d}.png"


def _box_corners(T: np.ndarray, size: np.ndarray) -> np.ndarray:
    s = np.asarray(size, float) / 2
    c = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * s
    return (T[:3, :3] @ c.T).T + T[:3, 3]


# ---------------------------------------------------------------------------
# the public entry

def default_cache() -> Path:
    root = os.environ.get("PARASCALE_CACHE")
    return Path(root) / "footage" if root else Path.home() / ".cache" / "parascale" / "footage"


def render_footage(scene: str = "procedural", *, path="default", frames: int = 240, width: int = 640,
                   height: int = 360, fps: float = 30.0, focal: Optional[float] = None, movers: int = 0,
                   sky: bool = True, shading: str = "flat", samples: int = 0, video: bool = True,
                   png: bool = False, seed: int = 0, data_dir=None, cache=None, progress=None,
                   in_process: bool = False) -> Footage:
    """Render (or fetch from the cache) a clip of `scene` along a known path.

    scene: "town", "ship" (need data_dir or PARASCALE_DATA), "procedural", or a .gltf/.glb/.blend path.
    path: "default" (the scene's smooth path), another named path (see named_path), or c2w (frames, 4, 4)
        OpenCV axes; its length then sets the frame count.
    focal: pixels (fx = fy); default a 60 degree horizontal field of view.
    movers: number of boxes crossing the view. sky: background at infinity (True) or a dome (False).
    shading: "flat" (noise-free flat-lit emission, default) or "cycles" (sun + sky path tracing).
    samples: Cycles samples per pixel (0: 4 for flat, 32 + denoiser for cycles).
    video: write footage.mp4; png: keep the frames as PNG files (frames/frame_000000.png, ...).
    cache: the cache folder (default default_cache()). in_process: render in this process
        (replaces the open Blender file) instead of a child process.
    """
    spec = make_spec(scene, path=path, frames=frames, width=width, height=height, fps=fps, focal=focal,
                     movers=movers, sky=sky, shading=shading, samples=samples, video=video, png=png, seed=seed,
                     data_dir=data_dir)
    cache = Path(cache) if cache is not None else default_cache()
    folder = cache / spec["key"]
    if (folder / META_NAME).is_file():
        return load_footage(folder)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec['key']}.tmp-", dir=cache))
    try:
        if in_process:
            render_here(spec, work, progress)
        else:
            _render_child(spec, work, progress)
        try:
            os.replace(work, folder)
        except OSError:
            if not (folder / META_NAME).is_file():  # not a concurrent render of the same clip
                raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return load_footage(folder)


def load_footage(folder) -> Footage:
    folder = Path(folder)
    meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    arrays = np.load(folder / "truth.npz")
    return Footage(folder=folder, video=folder / meta["video"] if meta.get("video") else None,
                   frames_dir=folder / meta["frames_dir"] if meta.get("frames_dir") else None,
                   c2w=arrays["c2w"], K=arrays["K"], width=meta["width"], height=meta["height"], fps=meta["fps"],
                   scene=meta["scene"], movers=arrays["movers"], mover_sizes=arrays["mover_sizes"],
                   sky=meta["sky"], meta=meta)


# ---------------------------------------------------------------------------
# the spec and its cache key

def _scene_file(scene: str, data_dir) -> Optional[Path]:
    if scene == "procedural":
        return None
    if scene in SCENES:
        root = data_dir or os.environ.get("PARASCALE_DATA")
        if not root:
            raise FileNotFoundError(f"scene {scene!r} is in the shared data: set PARASCALE_DATA or pass data_dir "
                                    "(or use scene='procedural')")
        p = Path(root) / SCENES[scene]
    else:
        p = Path(scene)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such scene file (expected .gltf, .glb or .blend)")
    if p.suffix.lower() not in (".gltf", ".glb", ".blend"):
        raise ValueError(f"{p}: unsupported scene file (expected .gltf, .glb or .blend)")
    return p.resolve()


def _hash_scene(p: Optional[Path]) -> str:
    """Content hash of the scene file and the files beside it (buffers, textures)."""
    h = hashlib.sha256()
    if p is None:
        h.update(b"procedural")
        return h.hexdigest()
    files = [p] + sorted(f for f in p.parent.rglob("*") if f.is_file() and f != p)
    for f in files:
        h.update(str(f.relative_to(p.parent)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _bpy_version() -> str:
    try:
        from importlib.metadata import version
        return version("bpy")
    except Exception:
        return "unknown"


def make_spec(scene, *, path, frames, width, height, fps, focal, movers, sky, shading, samples, video, png,
              seed, data_dir) -> dict:
    if shading not in ("flat", "cycles"):
        raise ValueError(f"shading must be 'flat' or 'cycles', got {shading!r}")
    if not (int(width) >= 16 and int(height) >= 16):
        raise ValueError(f"size must be at least 16x16, got {width}x{height}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not (video or png):
        raise ValueError("nothing to write: video=False and png=False")
    if int(movers) < 0:
        raise ValueError(f"movers must be >= 0, got {movers}")
    file = _scene_file(scene, data_dir)
    name = scene if (scene in SCENES or scene == "procedural") else Path(scene).stem
    if isinstance(path, str):
        if int(frames) < 2:
            raise ValueError(f"frames must be at least 2, got {frames}")
        c2w = None
        path_name = path
        known = PATHS.get(name, ("default",))
        if path not in known:
            raise ValueError(f"unknown path {path!r} for {name} (one of {', '.join(known)}, or c2w poses)")
    else:
        c2w = np.asarray(path, float)
        if c2w.ndim != 3 or c2w.shape[1:] != (4, 4) or len(c2w) < 2 or not np.isfinite(c2w).all():
            raise ValueError(f"path must be a name or finite c2w poses (N>=2, 4, 4), got shape {c2w.shape}")
        frames = len(c2w)
        path_name = "custom"
    focal = float(focal) if focal is not None else 0.5 * width / math.tan(math.radians(30.0))
    if samples <= 0:
        samples = 4 if shading == "flat" else 32
    spec = {"version": FOOTAGE_VERSION, "scene": name, "scene_file": str(file) if file else None,
            "scene_hash": _hash_scene(file), "path": path_name,
            "c2w": c2w.round(12).tolist() if c2w is not None else None, "frames": int(frames),
            "width": int(width), "height": int(height), "fps": float(fps), "focal": focal, "movers": int(movers),
            "sky": bool(sky), "shading": shading, "samples": int(samples), "video": bool(video), "png": bool(png),
            "seed": int(seed), "bpy": _bpy_version()}
    keyed = {k: v for k, v in spec.items() if k != "scene_file"}  # the same content elsewhere: the same key
    spec["key"] = f"{name}-{hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:20]}"
    return spec


def _render_child(spec: dict, work: Path, progress) -> None:
    (work / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    code = ("import importlib, sys; m = importlib.import_module(sys.argv[1]); "
            "sys.exit(m.main(sys.argv[2:]))")
    cmd = [sys.executable, "-c", code, __name__, str(work / "spec.json"), str(work)]
    out_lines = []
    with open(work / "stderr.txt", "w+", encoding="utf-8", errors="replace") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
        for line in proc.stdout:
            if line.startswith("FOOTAGE-PROGRESS "):
                if progress:
                    _, i, n = line.split()
                    progress(int(i), int(n))
            else:
                out_lines = (out_lines + [line])[-20:]
        code = proc.wait()
        err.seek(0)
        tail = "".join(out_lines) + err.read()[-3000:]
    if code != 0:
        raise RuntimeError(f"footage render of {spec['scene']} failed (exit {code}): {tail[-3000:]}")
    (work / "spec.json").unlink()
    (work / "stderr.txt").unlink()


def main(argv) -> int:
    """The child process: main(SPEC.json, OUT_FOLDER)."""
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    render_here(spec, Path(argv[1]),
                lambda i, n: print(f"FOOTAGE-PROGRESS {i} {n}", flush=True))
    return 0


# ---------------------------------------------------------------------------
# paths

def _smooth(t):
    """0..1 -> 0..1 with zero velocity at neither end (a constant-speed move eased by a
    gentle sine so that the speed varies a little along the clip)."""
    return t + 0.04 * np.sin(2 * np.pi * t)


def named_path(scene: str, path: str, n: int, bounds) -> np.ndarray:
    """c2w (n, 4, 4) OpenCV axes for a named path."""
    from ..core.cameras import look_at

    t = _smooth(np.linspace(0.0, 1.0, n))
    if scene == "town":
        # Along the street at first-floor height, the view panning across the houses.
        start, end = np.array([-6.0, -16.0, 12.0]), np.array([6.0, -12.0, 13.0])
        look0, look1 = np.array([14.0, 8.0, 7.0]), np.array([24.0, 4.0, 7.5])
        if path == "street_up":
            look0, look1 = look0 + [0, 0, 3.0], look1 + [0, 0, 3.0]
        elif path != "default":
            raise ValueError(f"unknown path {path!r} for the town (default, street_up)")
    elif scene == "procedural":
        if path != "default":
            raise ValueError(f"unknown path {path!r} for the procedural scene (default)")
        start, end = np.array([-7.0, -22.0, 4.5]), np.array([7.0, -18.0, 5.2])
        look0, look1 = np.array([-2.0, 8.0, -1.5]), np.array([5.0, 8.0, -1.0])
    else:  # the ship, or any scene file: a slow arc around the scene, looking at its centre
        if path != "default":
            raise ValueError(f"unknown path {path!r} for {scene} (default, or give c2w poses)")
        lo, hi = np.asarray(bounds[0], float), np.asarray(bounds[1], float)
        centre, size = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
        a = np.radians(-110 + 40 * t)[:, None]
        eyes = centre + np.concatenate([0.9 * size * np.cos(a), 0.9 * size * np.sin(a),
                                        (0.25 + 0.05 * t[:, None]) * size], axis=1)
        return np.stack([look_at(e, centre) for e in eyes])
    wob = 0.15 * np.sin(2 * np.pi * 1.5 * t)[:, None] * np.array([0.0, 0.0, 1.0])
    eyes = start + (end - start) * t[:, None] + wob
    looks = look0 + (look1 - look0) * t[:, None]
    return np.stack([look_at(e, l) for e, l in zip(eyes, looks)])


# ---------------------------------------------------------------------------
# rendering (bpy)

def sky_image(c2w: np.ndarray, K: np.ndarray, W: int, H: int) -> np.ndarray:
    """(H, W, 3) float BGR: the sky seen by the camera, a gradient from the horizon colour
    to the zenith colour by the height of each pixel's ray (world z up)."""
    u = np.arange(W) + 0.5
    v = np.arange(H) + 0.5
    x = (u[None, :] - K[0, 2]) / K[0, 0]
    y = (v[:, None] - K[1, 2]) / K[1, 1]
    R = c2w[:3, :3]
    dz = R[2, 0] * x + R[2, 1] * y + R[2, 2]
    f = np.clip(dz / np.sqrt(x * x + y * y + 1.0), 0.0, 1.0)[..., None] ** 0.7
    return (np.asarray(SKY_HORIZON, np.float32) * (1 - f) + np.asarray(SKY_ZENITH, np.float32) * f).astype(np.float32)


def render_here(spec: dict, out: Path, progress=None) -> None:
    """Build the scene in a fresh empty Blender file and render the clip into `out`
    (footage.mp4 and/or frames/, truth.npz, footage.json)."""
    import bpy
    import cv2
    from mathutils import Matrix

    from ..core.cameras import cv_to_blender
    from .animation import apply_intrinsics
    from .quiet import quiet_stdout

    out = Path(out)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    W, H, n = spec["width"], spec["height"], spec["frames"]
    if spec["scene_file"]:
        _import_scene(bpy, Path(spec["scene_file"]))
    else:
        _build_procedural(bpy, scene, spec["seed"])
    bpy.context.view_layer.update()
    bounds = _bounds(bpy, scene)
    if spec["shading"] == "flat":
        _flat_materials(bpy, scene, bounds)
    c2w = (np.asarray(spec["c2w"], float) if spec["c2w"] is not None
           else named_path(spec["scene"], spec["path"], n, bounds))
    K = np.array([[spec["focal"], 0, W / 2], [0, spec["focal"], H / 2], [0, 0, 1.0]])

    reach = float(np.linalg.norm(bounds[1] - bounds[0])) + float(np.ptp(c2w[:, :3, 3], axis=0).max())
    depth_far = 4.0 * reach
    _world(bpy, scene, spec["sky"], spec["shading"], bounds, c2w[:, :3, 3])
    movers, mover_T, sizes = _add_movers(bpy, scene, spec, c2w, K, W, H, bounds)

    cam = bpy.data.objects.new("FootageCamera", bpy.data.cameras.new("FootageCamera"))
    scene.collection.objects.link(cam)
    cam.data.clip_start = 1e-6 * depth_far
    cam.data.clip_end = depth_far
    scene.camera = cam
    apply_intrinsics(cam.data, K, W, H, scene=scene)
    r = scene.render
    r.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = spec["samples"]
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = spec["seed"]
    scene.cycles.use_animated_seed = True
    if spec["shading"] == "flat":
        scene.cycles.max_bounces = 0
        scene.cycles.use_denoising = False
    else:
        scene.cycles.max_bounces = 4
        scene.cycles.use_denoising = True
    scene.view_settings.view_transform = "Standard"
    r.resolution_percentage = 100
    r.use_compositing = False
    r.use_persistent_data = True
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGB"
    r.image_settings.color_depth = "8"
    r.fps = max(1, int(round(spec["fps"])))
    r.fps_base = r.fps / spec["fps"]

    r.film_transparent = True           # the sky is composited below (and measured by the alpha)
    r.image_settings.color_mode = "RGBA"
    frames_dir = out / "frames"
    if spec["png"]:
        frames_dir.mkdir(parents=True, exist_ok=True)
    writer = None
    if spec["video"]:
        writer = cv2.VideoWriter(str(out / "footage.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), spec["fps"], (W, H))
        if not writer.isOpened():
            raise RuntimeError("OpenCV cannot write an mp4 ('mp4v') video here")
    raw = out / ".render.png"
    sky_fraction = []
    try:
        for i in range(n):
            scene.frame_set(i + 1)
            cam.matrix_world = Matrix(cv_to_blender(c2w[i]).tolist())
            for m, obj in enumerate(movers):
                obj.matrix_world = Matrix((mover_T[m, i] @ np.diag([*sizes[m], 1.0])).tolist())
            r.filepath = str(raw)
            with quiet_stdout():
                bpy.ops.render.render(write_still=True)
            rgba = cv2.imread(str(raw), cv2.IMREAD_UNCHANGED)
            if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
                raise RuntimeError(f"frame {i}: the render wrote no RGBA image at {raw}")
            alpha = rgba[..., 3:].astype(np.float32) / 255.0
            sky_fraction.append(float(1.0 - alpha.mean()))
            img = rgba[..., :3].astype(np.float32) * alpha + sky_image(c2w[i], K, W, H) * (1.0 - alpha)
            img = np.clip(np.round(img), 0, 255).astype(np.uint8)
            if spec["png"] and not cv2.imwrite(str(frames_dir / frame_name(i)), img):
                raise OSError(f"{frames_dir / frame_name(i)}: cannot write the frame")
            if writer is not None:
                writer.write(img)
            if progress:
                progress(i + 1, n)
    finally:
        if writer is not None:
            writer.release()
        raw.unlink(missing_ok=True)
    np.savez(out / "truth.npz", c2w=c2w, K=K, movers=mover_T, mover_sizes=sizes)
    meta = {k: v for k, v in spec.items() if k != "c2w"}
    meta.update({"video": "footage.mp4" if spec["video"] else None, "frames_dir": "frames" if spec["png"] else None,
                 "bounds": [list(map(float, bounds[0])), list(map(float, bounds[1]))],
                 "sky_fraction": [round(f, 5) for f in sky_fraction],
                 "sky_fraction_mean": float(np.mean(sky_fraction))})
    (out / META_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _import_scene(bpy, path: Path) -> None:
    from .quiet import quiet_stdout

    with quiet_stdout():
        if path.suffix.lower() == ".blend":
            with bpy.data.libraries.load(str(path), link=False) as (src, dst):
                dst.objects = list(src.objects)
            for obj in dst.objects:
                if obj is not None and obj.type != "CAMERA":
                    bpy.context.scene.collection.objects.link(obj)
        else:
            bpy.ops.import_scene.gltf(filepath=str(path))
    for obj in list(bpy.context.scene.objects):
        if obj.type in ("CAMERA", "LIGHT"):
            bpy.data.objects.remove(obj, do_unlink=True)


def _bounds(bpy, scene):
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for obj in scene.objects:
        if obj.type != "MESH":
            continue
        m = np.array(obj.matrix_world)
        v = np.array([m[:3, :3] @ np.array(c) + m[:3, 3] for c in obj.bound_box])
        lo, hi = np.minimum(lo, v.min(0)), np.maximum(hi, v.max(0))
    if not np.isfinite(lo).all():
        raise ValueError("the scene has no mesh to film")
    return lo, hi


def _object_sizes(bpy, scene) -> list:
    out = []
    for obj in scene.objects:
        if obj.type == "MESH":
            m = np.array(obj.matrix_world)
            v = np.array([m[:3, :3] @ np.array(c) + m[:3, 3] for c in obj.bound_box])
            out.append(float(np.linalg.norm(v.max(0) - v.min(0))))
    return out


def _light_dir() -> np.ndarray:
    v = np.asarray(LIGHT_DIR, float)
    return v / np.linalg.norm(v)


def _flat_shader(nt, color_socket, coords, noise_scale: float, noise_amount: float = 0.5):
    """Emission = colour x (0.75 + amount (noise - 0.5)) x (0.5 + 0.5 |n . l|); returns the
    emission node. coords: a vector socket for the noise (world position for static
    geometry, object coordinates for movers)."""
    geom = nt.nodes.new("ShaderNodeNewGeometry")
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = noise_scale
    noise.inputs["Detail"].default_value = 4.0
    nt.links.new(coords, noise.inputs["Vector"])
    vary = nt.nodes.new("ShaderNodeMath")
    vary.operation = "MULTIPLY_ADD"
    nt.links.new(noise.outputs["Fac"], vary.inputs[0])
    vary.inputs[1].default_value = noise_amount * 2.0
    vary.inputs[2].default_value = 1.0 - noise_amount
    dot = nt.nodes.new("ShaderNodeVectorMath")
    dot.operation = "DOT_PRODUCT"
    nt.links.new(geom.outputs["Normal"], dot.inputs[0])
    dot.inputs[1].default_value = tuple(_light_dir())
    absn = nt.nodes.new("ShaderNodeMath")
    absn.operation = "ABSOLUTE"
    nt.links.new(dot.outputs["Value"], absn.inputs[0])
    shade = nt.nodes.new("ShaderNodeMath")
    shade.operation = "MULTIPLY_ADD"
    nt.links.new(absn.outputs[0], shade.inputs[0])
    shade.inputs[1].default_value = 0.5
    shade.inputs[2].default_value = 0.5
    both = nt.nodes.new("ShaderNodeMath")
    both.operation = "MULTIPLY"
    nt.links.new(vary.outputs[0], both.inputs[0])
    nt.links.new(shade.outputs[0], both.inputs[1])
    scale = nt.nodes.new("ShaderNodeVectorMath")
    scale.operation = "SCALE"
    nt.links.new(color_socket, scale.inputs[0])
    nt.links.new(both.outputs[0], scale.inputs["Scale"])
    emit = nt.nodes.new("ShaderNodeEmission")
    emit.inputs["Strength"].default_value = 1.0
    nt.links.new(scale.outputs["Vector"], emit.inputs["Color"])
    return emit


def _output(nt):
    out = next((n for n in nt.nodes if n.type == "OUTPUT_MATERIAL"), None)
    return out or nt.nodes.new("ShaderNodeOutputMaterial")


def _flat_materials(bpy, scene, bounds) -> None:
    """Every material of the scene's meshes becomes flat-lit emission (see the module doc)."""
    from .compat import material_node_tree

    sizes = sorted(_object_sizes(bpy, scene))
    typical = sizes[len(sizes) // 2] if sizes else 1.0
    noise_scale = 12.0 / max(typical, 1e-6)
    default = None
    done = set()
    for obj in scene.objects:
        if obj.type != "MESH":
            continue
        if not obj.material_slots or all(s.material is None for s in obj.material_slots):
            if default is None:
                default = bpy.data.materials.new("FootageDefault")
                material_node_tree(default)
            if not obj.material_slots:
                obj.data.materials.append(default)
            else:
                for s in obj.material_slots:
                    s.material = s.material or default
        for slot in obj.material_slots:
            mat = slot.material
            if mat is None or mat.name in done:
                continue
            done.add(mat.name)
            nt = material_node_tree(mat)
            bsdf = next((n for n in nt.nodes if n.type == "BSDF_PRINCIPLED"), None)
            if bsdf is not None and bsdf.inputs["Base Color"].is_linked:
                color = bsdf.inputs["Base Color"].links[0].from_socket
            else:
                rgb = nt.nodes.new("ShaderNodeRGB")
                rgb.outputs[0].default_value = (tuple(bsdf.inputs["Base Color"].default_value) if bsdf is not None
                                                else tuple(mat.diffuse_color))
                color = rgb.outputs[0]
            geom = nt.nodes.new("ShaderNodeNewGeometry")
            emit = _flat_shader(nt, color, geom.outputs["Position"], noise_scale, noise_amount=0.7)
            nt.links.new(emit.outputs[0], _output(nt).inputs["Surface"])


def _world(bpy, scene, sky: bool, shading: str, bounds, centres) -> None:
    from .compat import material_node_tree

    world = bpy.data.worlds.new("FootageWorld")
    scene.world = world
    bg = next(n for n in material_node_tree(world).nodes if n.type == "BACKGROUND")
    bg.inputs["Color"].default_value = (0.6, 0.7, 0.85, 1.0)   # lights the "cycles" shading only
    bg.inputs["Strength"].default_value = 1.0
    if shading == "cycles":
        sun = bpy.data.objects.new("FootageSun", bpy.data.lights.new("FootageSun", "SUN"))
        sun.data.energy = 3.0
        sun.data.angle = math.radians(1.0)
        d = _light_dir()
        from mathutils import Vector
        sun.rotation_euler = Vector(tuple(d)).to_track_quat("Z", "Y").to_euler()
        scene.collection.objects.link(sun)
    if sky:
        return
    # Enclosed: a textured dome around everything (geometry at finite depth everywhere).
    lo, hi = bounds
    centre = (lo + hi) / 2
    radius = 1.1 * max(0.5 * float(np.linalg.norm(hi - lo)), float(np.linalg.norm(centres - centre, axis=1).max()))
    mesh = bpy.data.meshes.new("FootageDome")
    verts, faces = _uv_sphere(96, 48)
    mesh.from_pydata(verts.tolist(), [], faces)
    mesh.update()
    dome = bpy.data.objects.new("FootageDome", mesh)
    dome.location = tuple(centre)
    dome.scale = (radius, radius, radius)
    scene.collection.objects.link(dome)
    mat = bpy.data.materials.new("FootageDome")
    nt = material_node_tree(mat)
    coord = nt.nodes.new("ShaderNodeTexCoord")
    rgb = nt.nodes.new("ShaderNodeRGB")
    rgb.outputs[0].default_value = (0.55, 0.6, 0.62, 1.0)
    emit = _flat_shader(nt, rgb.outputs[0], coord.outputs["Object"], 24.0, noise_amount=0.8)
    nt.links.new(emit.outputs[0], _output(nt).inputs["Surface"])
    mesh.materials.append(mat)


def _uv_sphere(nu: int, nv: int):
    verts = [(0.0, 0.0, 1.0)]
    for j in range(1, nv):
        th = math.pi * j / nv
        for i in range(nu):
            ph = 2 * math.pi * i / nu
            verts.append((math.sin(th) * math.cos(ph), math.sin(th) * math.sin(ph), math.cos(th)))
    verts.append((0.0, 0.0, -1.0))
    faces = []
    for i in range(nu):
        faces.append((0, 1 + i, 1 + (i + 1) % nu))
    for j in range(nv - 2):
        a, b = 1 + j * nu, 1 + (j + 1) * nu
        for i in range(nu):
            faces.append((a + i, b + i, b + (i + 1) % nu, a + (i + 1) % nu))
    last = len(verts) - 1
    a = 1 + (nv - 2) * nu
    for i in range(nu):
        faces.append((a + i, last, a + (i + 1) % nu))
    return np.array(verts), faces


MOVER_COLOURS = ((0.85, 0.2, 0.15), (0.15, 0.45, 0.85), (0.95, 0.8, 0.15), (0.2, 0.7, 0.3), (0.7, 0.3, 0.8))


def _add_movers(bpy, scene, spec, c2w, K, W, H, bounds):
    """Boxes crossing the view: returns (objects, T (M, N, 4, 4) rigid box-to-world, sizes (M, 3))."""
    from .compat import material_node_tree

    M, n = spec["movers"], len(c2w)
    T = np.zeros((M, n, 4, 4))
    sizes = np.zeros((M, 3))
    objs = []
    if M == 0:
        return objs, T, sizes
    depsgraph = bpy.context.evaluated_depsgraph_get()
    from mathutils import Vector
    diag = float(np.linalg.norm(bounds[1] - bounds[0]))
    up = np.array([0.0, 0.0, 1.0])
    span = max(2, int(round(0.55 * n)))
    verts, faces = _box_mesh()
    for m in range(M):
        fc = (m + 1) / (M + 1) * (n - 1)
        ic = int(round(fc))
        R, c = c2w[ic, :3, :3], c2w[ic, :3, 3]
        fwd, right, down = R[:, 2], R[:, 0], R[:, 1]
        hit, loc, *_ = scene.ray_cast(depsgraph, Vector(tuple(c)), Vector(tuple(fwd)))
        dist = float(np.dot(np.array(loc) - c, fwd)) if hit else 0.3 * diag
        d = 0.45 * dist
        view_h = d * H / K[1, 1]
        half_w = d * (W / 2) / K[0, 0]
        h = 0.25 * view_h
        sizes[m] = (1.5 * h, 1.1 * h, h)
        centre = c + d * fwd + 0.12 * view_h * down
        lateral = right - np.dot(right, up) * up
        lateral /= np.linalg.norm(lateral)
        sign = 1.0 if m % 2 == 0 else -1.0
        speed = 2.6 * half_w / span
        for i in range(n):
            yaw = 0.4 + 1.3 * m + sign * 0.6 * (i - fc) / n
            cz, sz = math.cos(yaw), math.sin(yaw)
            Ti = np.eye(4)
            Ti[:3, :3] = [[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]
            Ti[:3, 3] = centre + sign * lateral * speed * (i - fc)
            T[m, i] = Ti
        mesh = bpy.data.meshes.new(f"FootageMover{m}")
        mesh.from_pydata(verts, [], faces)
        mesh.update()
        obj = bpy.data.objects.new(f"FootageMover{m}", mesh)
        scene.collection.objects.link(obj)
        mat = bpy.data.materials.new(f"FootageMover{m}")
        nt = material_node_tree(mat)
        coord = nt.nodes.new("ShaderNodeTexCoord")
        checker = nt.nodes.new("ShaderNodeTexChecker")
        checker.inputs["Scale"].default_value = 3.0
        checker.inputs["Color1"].default_value = (*MOVER_COLOURS[m % len(MOVER_COLOURS)], 1.0)
        checker.inputs["Color2"].default_value = (0.95, 0.95, 0.9, 1.0)
        nt.links.new(coord.outputs["Generated"], checker.inputs["Vector"])
        emit = _flat_shader(nt, checker.outputs["Color"], coord.outputs["Object"], 6.0)
        nt.links.new(emit.outputs[0], _output(nt).inputs["Surface"])
        mesh.materials.append(mat)
        objs.append(obj)
    return objs, T, sizes


def _box_mesh():
    v = [(x, y, z) for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]
    f = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return v, f


def _build_procedural(bpy, scene, seed: int) -> None:
    """A block town on a ground plane: about 40 boxes of 1-7 m on a 60 m ground, each with its
    own colour (the flat-lit noise gives them texture), seeded."""
    from .compat import material_node_tree

    rng = np.random.default_rng(seed + 12345)
    verts, faces = _box_mesh()

    def box(name, centre, size, colour):
        mesh = bpy.data.meshes.new(name)
        mesh.from_pydata(verts, [], faces)
        mesh.update()
        obj = bpy.data.objects.new(name, mesh)
        obj.location = tuple(centre)
        obj.scale = tuple(size)
        scene.collection.objects.link(obj)
        mat = bpy.data.materials.new(name)
        nt = material_node_tree(mat)
        bsdf = next(n for n in nt.nodes if n.type == "BSDF_PRINCIPLED")
        # Bricks in world coordinates (corners for the features), each block its own colours.
        geom = nt.nodes.new("ShaderNodeNewGeometry")
        brick = nt.nodes.new("ShaderNodeTexBrick")
        brick.inputs["Scale"].default_value = 0.8
        brick.inputs["Color1"].default_value = (*colour, 1.0)
        brick.inputs["Color2"].default_value = (*(0.6 * np.asarray(colour)), 1.0)
        brick.inputs["Mortar"].default_value = (*(0.35 + 0.3 * np.asarray(colour[::-1])), 1.0)
        brick.inputs["Mortar Size"].default_value = 0.04
        nt.links.new(geom.outputs["Position"], brick.inputs["Vector"])
        nt.links.new(brick.outputs["Color"], bsdf.inputs["Base Color"])
        mesh.materials.append(mat)
        return obj

    box("Ground", (0.0, 5.0, -0.05), (80.0, 80.0, 0.1), (0.42, 0.40, 0.36))
    k = 0
    for gx in range(-4, 5):
        for gy in range(-1, 6):
            if rng.random() < 0.3:
                continue
            x = gx * 5.0 + rng.uniform(-1.2, 1.2)
            y = gy * 5.0 + rng.uniform(-1.2, 1.2)
            sx, sy = rng.uniform(1.2, 3.5, 2)
            sz = rng.uniform(1.0, 7.0) * (0.6 if gy <= 0 else 1.0)
            colour = rng.uniform(0.25, 0.9, 3)
            box(f"Block{k}", (x, y, sz / 2), (sx, sy, sz), tuple(colour))
            k += 1
