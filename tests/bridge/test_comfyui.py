"""The ComfyUI node pack (the bridge/ folder; docs/comfyui.md), loaded as ComfyUI loads a
custom-node folder and run on ParaScale exports made by Blender:

- its conditioning has the type, shape and frame grouping of ComfyUI's WanCameraEmbedding and
  equals an independent re-implementation of ComfyUI's process_pose_params, ray_condition and
  WanCameraEmbedding's grouping (tests/generator_refs.py) to 1e-5, fed the camera-to-world
  entries WanCameraEmbedding builds and the RealEstate10K file the Save node writes (read
  world-to-camera, as VideoX-Fun and AnimateDiff-Evolved read it);
- the c2w/w2c trap: those RealEstate10K rows given to ComfyUI's camera-to-world reader differ;
- a scene and its x100 copy give the same conditioning;
- the CameraCtrl file, the preview, bad inputs and the example workflow's links.
Without torch (this venv) the nodes return numpy arrays: the seam documented in nodes.py.
"""
import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator_refs import comfy_process_pose_params, comfy_wan_grouping

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "bridge"
RE10K_GAUGE = 3.568
FRAMES = 25  # 4n+1: the export is used as it is at length 25
RENDER = (320, 180)


def load_pack(folder: Path):
    """ComfyUI's load_custom_node: the module is named after the folder's path (dots as _x_),
    registered in sys.modules before it runs, and only its own relative imports can resolve
    (the folder and the repository are taken off sys.path while it loads)."""
    name = str(folder).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    sys.modules[name] = module
    try:
        away = {folder.resolve(), REPO.resolve(), REPO.parent.resolve()}
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in away]
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    """The bridge/ folder copied into a ComfyUI-like custom_nodes folder, then loaded."""
    dest = tmp_path_factory.mktemp("ComfyUI") / "custom_nodes" / "parascale"
    shutil.copytree(PACK, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return load_pack(dest)


def node(pack, name):
    return pack.NODE_CLASS_MAPPINGS[name]()


def call(pack, name, **kwargs):
    cls = pack.NODE_CLASS_MAPPINGS[name]
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    return out["result"] if isinstance(out, dict) else out


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """ParaScale exports (.json + manifest) of one keyed camera move in the demo's space scene
    at x1 and at an exact x100 copy, written by Blender's export (Z pass depth scale)."""
    bpy = pytest.importorskip("bpy")
    from mathutils import Matrix

    from parascale.core.cameras import cv_to_blender
    from parascale.parascale_blender.demo import run as demo
    from parascale.parascale_blender.export import export_with_gauge

    bpy.ops.wm.read_factory_settings(use_empty=True)
    root = tmp_path_factory.mktemp("comfy_exports")
    move = demo.reference_move(FRAMES)
    out = {}
    try:
        for ratio in (1.0, 100.0):
            scene = demo.build_space(ratio)
            if bpy.context.window is not None:
                bpy.context.window.scene = scene  # poses are read from the context's depsgraph
            scene.render.resolution_x, scene.render.resolution_y = RENDER
            scene.frame_start, scene.frame_end = 1, FRAMES
            cam = demo._camera(scene, f"Shot x{ratio:g}", None, ratio)
            for f, c2w in enumerate(move, 1):
                c2w = c2w.copy()
                c2w[:3, 3] *= ratio
                cam.matrix_world = Matrix(cv_to_blender(c2w).tolist())
                cam.keyframe_insert("location", frame=f)
                cam.keyframe_insert("rotation_euler", frame=f)
            path = root / f"x{ratio:g}" / "shot.json"
            export_with_gauge(scene, cam, "parascale", path)
            doc = json.loads(path.read_text())
            centres = np.array([f["c2w"] for f in doc["frames"]])[:, :3, 3]
            assert np.linalg.norm(centres[-1] - centres[0]) > 0.5 * ratio, "the export did not see the move"
            out[ratio] = path
    finally:
        bpy.ops.wm.read_factory_settings(use_empty=True)
    return out


def test_pack_registers_as_comfyui_loads_it_without_bpy_torch_or_parascale(tmp_path):
    """In a fresh Python: the copied folder loads the ComfyUI way, registers three nodes with
    display names and a category, and imports neither bpy, torch nor the parascale package."""
    dest = tmp_path / "custom_nodes" / "parascale"
    shutil.copytree(PACK, dest, ignore=shutil.ignore_patterns("__pycache__"))
    script = f"""
import importlib.util, json, sys
folder = {str(dest)!r}
name = folder.replace(".", "_x_")
spec = importlib.util.spec_from_file_location(name, folder + "/__init__.py")
m = importlib.util.module_from_spec(spec)
sys.modules[name] = m
spec.loader.exec_module(m)
info = {{}}
for key, cls in m.NODE_CLASS_MAPPINGS.items():
    types = cls.INPUT_TYPES()
    info[key] = {{"display": m.NODE_DISPLAY_NAME_MAPPINGS[key], "category": cls.CATEGORY,
                 "function": cls.FUNCTION, "has_function": callable(getattr(cls, cls.FUNCTION)),
                 "returns": list(cls.RETURN_TYPES), "names": list(getattr(cls, "RETURN_NAMES", [])),
                 "inputs": sorted(types["required"])}}
loaded = sorted(k for k in sys.modules if k.split(".")[0] in ("bpy", "torch", "parascale", "mathutils"))
print(json.dumps({{"nodes": info, "loaded": loaded}}))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["loaded"] == []
    nodes = got["nodes"]
    assert {k: v["display"] for k, v in nodes.items()} == {
        "ParaScaleLoadPoses": "Load ParaScale Poses", "ParaScaleSaveCameraCtrlPoses": "Save CameraCtrl Pose File",
        "ParaScalePreviewPath": "Preview ParaScale Path"}
    assert all(v["category"] == "ParaScale" and v["has_function"] for v in nodes.values())
    load = nodes["ParaScaleLoadPoses"]
    # WanCameraEmbedding's outputs, in its order, then ParaScale's
    assert load["returns"][:4] == ["WAN_CAMERA_EMBEDDING", "INT", "INT", "INT"]
    assert load["names"][:4] == ["camera_embedding", "width", "height", "length"]
    assert load["inputs"] == ["generator", "height", "length", "pose_file", "speed", "width"]
    assert nodes["ParaScaleSaveCameraCtrlPoses"]["returns"][0] == "CAMERACTRL_POSES"
    assert nodes["ParaScalePreviewPath"]["returns"][0] == "IMAGE"


def _export_entries(path, width, height, speed=1.0):
    """WanCameraEmbedding-style entries (camera-to-world 4x4) straight from the export's json:
    absolute poses in the RealEstate10K gauge (translation x 3.568 / the recorded scene depth
    scale x speed), intrinsics normalised by the export's image size (the node size has the
    same aspect, so the 1280x720 correction and the centre crop do nothing)."""
    doc = json.loads(Path(path).read_text())
    W, H = doc["image_size"]["width"], doc["image_size"]["height"]
    assert abs(W / H - width / height) < 1e-9 and abs(W / H - 16 / 9) < 1e-9
    factor = RE10K_GAUGE / doc["meta"]["gauge"]["scene_depth_scale"] * speed
    rows = []
    for f in doc["frames"]:
        K, c2w = np.array(f["K"]), np.array(f["c2w"])
        c2w[:3, 3] *= factor
        rows.append([0.0, K[0, 0] / W, K[1, 1] / H, K[0, 2] / W, K[1, 2] / H, 0.0, 0.0] + list(c2w.ravel()))
    return rows


def test_conditioning_equals_comfyui_wan_camera_path(pack, exports, tmp_path):
    path = exports[1.0]
    W, H = 256, 144  # 16:9 like the export, multiples of 16
    emb, w, h, n, move, report = call(pack, "ParaScaleLoadPoses", pose_file=str(path), generator="wan-fun-camera",
                                      width=W, height=H, length=FRAMES, speed=1.0)
    assert (w, h, n) == (W, H, FRAMES)
    try:
        import torch  # noqa: F401
    except ImportError:
        assert type(emb) is np.ndarray  # the numpy seam
    emb = np.asarray(emb)
    # WanCameraEmbedding's type, shape and grouping: (1, 24, (length + 3) / 4, H, W) float32
    assert emb.shape == (1, 24, (FRAMES + 3) // 4, H, W) and emb.dtype == np.float32
    ref = comfy_wan_grouping(comfy_process_pose_params(_export_entries(path, W, H), W, H, "c2w4x4"))
    assert ref.shape == emb.shape
    np.testing.assert_allclose(emb, ref, rtol=0, atol=1e-5)
    assert np.abs(ref).max() > 0.5  # a real move, not zeros
    assert "wan-fun-camera" in report and "gauge" in report


@pytest.mark.parametrize("W,H,n", [(64, 48, 21), (48, 80, 9)])
def test_cameractrl_file_read_world_to_camera_gives_the_conditioning_and_the_trap_does_not(pack, exports, W, H, n):
    """Another aspect and frame count (centre crop, 1280x720 pre-correction, resampling): the
    RealEstate10K file the Save node writes for the same move, parsed as AnimateDiff-Evolved
    parses it and read world-to-camera (VideoX-Fun, CameraCtrl), gives the loader's tensor;
    the same rows read as ComfyUI's Camera reads (camera-to-world) give something else."""
    emb, *_, move, _ = call(pack, "ParaScaleLoadPoses", pose_file=str(exports[1.0]), generator="wan-fun-camera",
                            width=W, height=H, length=n, speed=1.0)
    poses, pose_file, frames = call(pack, "ParaScaleSaveCameraCtrlPoses", move=move, frames=n, width=W, height=H,
                                    filename_prefix=str(Path(exports[1.0]).parent / f"cc_{W}x{H}"))
    lines = Path(pose_file).read_text().splitlines()
    rows = [[float(x) for x in line.strip().split(" ")] for line in lines[1:]]
    assert frames == n and len(rows) == n and all(len(r) == 19 for r in rows)
    emb = np.asarray(emb)
    ref = comfy_wan_grouping(comfy_process_pose_params(rows, W, H, "w2c3x4"))
    np.testing.assert_allclose(emb, ref, rtol=0, atol=1e-5)
    trap_rows = [r + [0.0, 0.0, 0.0, 1.0] for r in rows]  # 3x4 world-to-camera padded to 4x4
    trap = comfy_wan_grouping(comfy_process_pose_params(trap_rows, W, H, "c2w4x4"))
    assert np.abs(trap - emb).max() > 0.1, np.abs(trap - emb).max()


def test_a_scene_and_its_x100_copy_give_the_same_conditioning(pack, exports):
    kw = dict(generator="wan-fun-camera", width=64, height=48, length=17, speed=1.5)
    a = np.asarray(call(pack, "ParaScaleLoadPoses", pose_file=str(exports[1.0]), **kw)[0])
    b = np.asarray(call(pack, "ParaScaleLoadPoses", pose_file=str(exports[100.0]), **kw)[0])
    ja, jb = (json.loads(Path(exports[r]).read_text()) for r in (1.0, 100.0))
    ratio = jb["meta"]["gauge"]["scene_depth_scale"] / ja["meta"]["gauge"]["scene_depth_scale"]
    assert ratio == pytest.approx(100.0, rel=1e-4)  # the scenes' depth scales differ 100x ...
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)  # ... the conditioning does not


def test_realestate10k_file_loads_back_world_to_camera(pack, exports):
    """The loader reads a RealEstate10K .txt as world-to-camera: the Save node's file (16:9,
    RealEstate10K gauge) loaded back gives the json's conditioning."""
    kw = dict(generator="wan-fun-camera", width=256, height=144, length=FRAMES, speed=1.0)
    emb, *_, move, _ = call(pack, "ParaScaleLoadPoses", pose_file=str(exports[1.0]), **kw)
    _, pose_file, _ = call(pack, "ParaScaleSaveCameraCtrlPoses", move=move, frames=FRAMES, width=256, height=144,
                           filename_prefix=str(Path(exports[1.0]).parent / "roundtrip"))
    back = call(pack, "ParaScaleLoadPoses", pose_file=pose_file, **kw)[0]
    np.testing.assert_allclose(np.asarray(back), np.asarray(emb), rtol=0, atol=1e-5)


def test_save_cameractrl_matches_animatediff_evolved_reading_and_never_replaces(pack, exports, tmp_path):
    move = call(pack, "ParaScaleLoadPoses", pose_file=str(exports[1.0]), generator="wan-fun-camera", width=64,
                height=48, length=21, speed=1.0)[4]
    prefix = tmp_path / "poses" / "shot"
    poses, first, frames = call(pack, "ParaScaleSaveCameraCtrlPoses", move=move, frames=16, width=384, height=256,
                                filename_prefix=str(prefix))
    assert Path(first).name == "shot_00001.txt" and frames == 16
    # AnimateDiff-Evolved's Load CameraCtrl Poses: skip the first line, split on single
    # spaces, floats, then columns 5 and 6 set to the 1280x720 pose size it assumes
    lines = Path(first).read_text().splitlines()
    parsed = [[float(x) for x in line.strip().split(" ")] for line in lines[1:]]
    for row in parsed:
        row[5], row[6] = 1280.0, 720.0
    assert parsed == poses and len(poses) == 16
    # the 1280x720 correction at 384x256 (3:2 < 16:9 widens fy) gives square pixels back
    fx, fy = poses[0][1] * 384, poses[0][2] * 256 * (384 / (1280 / 720)) / 256
    assert fx == pytest.approx(fy, rel=1e-9)
    before = Path(first).read_bytes()
    second = call(pack, "ParaScaleSaveCameraCtrlPoses", move=move, frames=16, width=384, height=256,
                  filename_prefix=str(prefix))[1]
    assert Path(second).name == "shot_00002.txt" and Path(first).read_bytes() == before
    with pytest.raises(ValueError, match=r"\.\."):
        call(pack, "ParaScaleSaveCameraCtrlPoses", move=move, frames=16, width=384, height=256,
             filename_prefix="../outside")


def test_preview_marks_the_frames_leaving_the_training_range(pack, exports):
    kw = dict(pose_file=str(exports[1.0]), generator="wan-fun-camera", width=64, height=48, length=21)
    calm = call(pack, "ParaScaleLoadPoses", speed=1.0, **kw)[4]
    fast = call(pack, "ParaScaleLoadPoses", speed=8.0, **kw)[4]
    assert not calm["range"]["too_fast"] and fast["range"]["too_fast"]
    images = {}
    for label, move in (("calm", calm), ("fast", fast)):
        image, report = call(pack, "ParaScalePreviewPath", move=move, size=256)
        image = np.asarray(image)
        assert image.shape == (1, 256, 256, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        images[label] = (image[0], report)
    red = np.array([0.95, 0.25, 0.20], np.float32)
    green = np.array([0.30, 0.80, 0.40], np.float32)

    def count(img, colour):
        return int(np.all(np.abs(img - colour) < 1e-6, axis=-1).sum())

    assert count(images["calm"][0], green) > 100 and count(images["calm"][0], red) == 0
    assert count(images["fast"][0], red) > 100
    fast_frames = fast["range"]["too_fast"]
    assert f"frames {', '.join(map(str, fast_frames))} move faster" in images["fast"][1]


def test_bad_inputs_are_named(pack, exports, tmp_path):
    kw = dict(pose_file=str(exports[1.0]), generator="wan-fun-camera", width=64, height=48, length=21, speed=1.0)
    with pytest.raises(ValueError, match="4n\\+1"):
        call(pack, "ParaScaleLoadPoses", **dict(kw, length=20))
    with pytest.raises(ValueError, match="width 50: a multiple of 16"):
        call(pack, "ParaScaleLoadPoses", **dict(kw, width=50))
    with pytest.raises(ValueError, match="speed"):
        call(pack, "ParaScaleLoadPoses", **dict(kw, speed=float("nan")))
    missing = tmp_path / "nope.json"
    with pytest.raises(Exception, match=str(missing).replace(".", r"\.")):
        call(pack, "ParaScaleLoadPoses", **dict(kw, pose_file=str(missing)))
    with pytest.raises(ValueError, match="ParaScale export"):
        call(pack, "ParaScaleLoadPoses", **dict(kw, pose_file=str(tmp_path / "shot.blend")))
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema": "parascale.poses", "version": 1, "frames": [')
    with pytest.raises(Exception, match="broken.json: malformed JSON"):
        call(pack, "ParaScaleLoadPoses", **dict(kw, pose_file=str(broken)))


# Types of the ComfyUI core nodes the example workflow uses, as their INPUT_TYPES and
# RETURN_TYPES declare them (nodes.py, comfy_extras/nodes_wan.py, nodes_model_advanced.py,
# nodes_images.py): {class: ({input: type}, [output types])}.
CORE_NODES = {
    "UNETLoader": ({}, ["MODEL"]),
    "CLIPLoader": ({}, ["CLIP"]),
    "VAELoader": ({}, ["VAE"]),
    "CLIPVisionLoader": ({}, ["CLIP_VISION"]),
    "LoadImage": ({}, ["IMAGE", "MASK"]),
    "CLIPVisionEncode": ({"clip_vision": "CLIP_VISION", "image": "IMAGE"}, ["CLIP_VISION_OUTPUT"]),
    "CLIPTextEncode": ({"clip": "CLIP"}, ["CONDITIONING"]),
    "WanCameraImageToVideo": ({"positive": "CONDITIONING", "negative": "CONDITIONING", "vae": "VAE",
                               "width": "INT", "height": "INT", "length": "INT",
                               "clip_vision_output": "CLIP_VISION_OUTPUT", "start_image": "IMAGE",
                               "camera_conditions": "WAN_CAMERA_EMBEDDING"},
                              ["CONDITIONING", "CONDITIONING", "LATENT"]),
    "ModelSamplingSD3": ({"model": "MODEL"}, ["MODEL"]),
    "KSampler": ({"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                  "latent_image": "LATENT"}, ["LATENT"]),
    "VAEDecode": ({"samples": "LATENT", "vae": "VAE"}, ["IMAGE"]),
    "SaveAnimatedWEBP": ({"images": "IMAGE"}, []),
    "PreviewImage": ({"images": "IMAGE"}, []),
}


def test_example_workflow_links_join_outputs_and_inputs_of_one_type(pack):
    wf = json.loads((PACK / "comfyui" / "workflows" / "parascale_wan_fun_camera.api.json").read_text())

    def signature(cls_name):
        if cls_name in pack.NODE_CLASS_MAPPINGS:
            cls = pack.NODE_CLASS_MAPPINGS[cls_name]
            spec = cls.INPUT_TYPES()["required"]
            inputs = {k: v[0] for k, v in spec.items() if isinstance(v[0], str)}
            return inputs, list(cls.RETURN_TYPES), spec
        inputs, outputs = CORE_NODES[cls_name]
        return inputs, outputs, None

    used = set()
    for node_id, n in wf.items():
        inputs, _, spec = signature(n["class_type"])
        for name, value in n["inputs"].items():
            if isinstance(value, list):
                src = wf[value[0]]
                out_type = signature(src["class_type"])[1][value[1]]
                assert inputs[name] == out_type, (node_id, name, out_type)
                used |= {n["class_type"], src["class_type"]}
        if spec is not None:  # our nodes: every required input given, widgets within range
            assert set(spec) == set(n["inputs"]), node_id
            for name, value in n["inputs"].items():
                kind, opts = spec[name][0], spec[name][1] if len(spec[name]) > 1 else {}
                if isinstance(kind, list):
                    assert value in kind
                elif kind in ("INT", "FLOAT") and not isinstance(value, list):
                    assert opts.get("min", -math.inf) <= value <= opts.get("max", math.inf)
    assert {"ParaScaleLoadPoses", "WanCameraImageToVideo", "ParaScalePreviewPath"} <= used
    cam = wf["10"]["inputs"]
    assert cam["camera_conditions"] == ["9", 0] and [cam[k] for k in ("width", "height", "length")] == [
        ["9", 1], ["9", 2], ["9", 3]]
