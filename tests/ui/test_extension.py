"""The extension as Blender sees it: validator, built zip, install, register, uninstall.
Also every panel's draw() against a recording stand-in for the layout."""
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELS = REPO / "wheels"
MANIFEST = REPO / "blender_manifest.toml"


def manifest():
    import tomllib

    return tomllib.loads(MANIFEST.read_text())


def wheels_for_this_machine() -> list:
    """The manifest's wheels that install on the running interpreter (by their tags):
    one per bundled package."""
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename

    here = set(sys_tags())
    names = [Path(w).name for w in manifest()["wheels"]]
    fits = [n for n in names if parse_wheel_filename(n)[3] & here]
    packages = {parse_wheel_filename(n)[0] for n in names}
    assert {parse_wheel_filename(n)[0] for n in fits} == packages and len(fits) == len(packages), \
        f"blender_manifest.toml: expected one wheel per package for this machine, found {fits} in {names}"
    return fits


def blender_ext():
    import bpy

    path = Path(bpy.utils.resource_path("LOCAL")) / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    assert path.is_file(), path
    return path


def test_validator_accepts_the_manifest():
    out = subprocess.run([sys.executable, str(blender_ext()), "validate", str(REPO)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_never_imports_bpy():
    for path in (REPO / "core").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in {"bpy", "mathutils", "bpy_extras"}, f"{path.name} imports {name}"


# Blender platform -> does a wheel platform tag serve it; the Python of each supported Blender.
PLATFORMS = {
    "linux-x64": lambda p: p.startswith("manylinux") and p.endswith("x86_64"),
    "windows-x64": lambda p: p == "win_amd64",
    "macos-arm64": lambda p: p.startswith("macosx") and p.endswith(("arm64", "universal2")),
    "macos-x64": lambda p: p.startswith("macosx") and p.endswith(("x86_64", "universal2")),
}
PYTHONS = {"4.5": 11, "5.0": 11, "5.2": 13}  # Python 3.x minor of each Blender


def test_manifest_serves_every_supported_blender():
    """One zip per platform for 4.5 LTS to 5.2 LTS: every bundled package has a wheel
    for every platform and for Python 3.11 and 3.13 (OpenCV's stable-ABI cp37-abi3
    wheel serves both)."""
    from packaging.utils import parse_wheel_filename

    m = manifest()
    assert m["blender_version_min"] == "4.5.0"
    assert not m["website"].startswith("https://example"), m["website"]
    assert set(m["platforms"]) == set(PLATFORMS)
    wheels = {Path(w).name: parse_wheel_filename(Path(w).name) for w in m["wheels"]}

    def serves(tag, minor):
        if tag.abi == "abi3":
            return tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= minor
        return tag.interpreter == f"cp3{minor}" and tag.abi == f"cp3{minor}"

    # pycolmap publishes no Intel-macOS wheel; there the panel says tracking is unavailable
    # (core.tracking.tracking_available), and everything else works.
    unavailable = {("pycolmap", "macos-x64")}
    for package in {w[0] for w in wheels.values()}:
        for platform, fits in PLATFORMS.items():
            if (package, platform) in unavailable:
                continue
            for blender, minor in PYTHONS.items():
                found = [n for n, w in wheels.items() if w[0] == package
                         and any(fits(t.platform) and serves(t, minor) for t in w[3])]
                assert found, f"no {package} wheel for Blender {blender} (Python 3.{minor}) on {platform}"
    opencv = [n for n, w in wheels.items() if w[0] == "opencv-python-headless"]
    assert len(opencv) == 4 and all(t.abi == "abi3" for n in opencv for t in wheels[n][3]), opencv


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    """This platform's zip, built by the script `make zip-here` runs (tools/zip_here.py):
    only this platform's wheels are fetched (OpenCV's, pycolmap's for Python 3.11 and 3.13),
    and Blender's own tool builds from a copy of the repository whose manifest names this
    platform only (`make zip` fetches all ten wheels and builds every platform).
    PARASCALE_TEST_ZIP=dist/...zip tests a zip built elsewhere instead, e.g. `make zip`'s
    from another Blender version (one build serves them all)."""
    given = os.environ.get("PARASCALE_TEST_ZIP")
    if given:
        path = Path(given).resolve()
        assert path.is_file(), f"PARASCALE_TEST_ZIP={given}: no such file"
        names = zipfile.ZipFile(path).namelist()
        return path, [n.split("/", 1)[1] for n in names if n.startswith("wheels/") and n.endswith(".whl")]

    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, str(REPO / "tools" / "zip_here.py"), "--output-dir", str(out)],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stdout + res.stderr
    zips = sorted(out.glob("*.zip"))
    assert len(zips) == 1 and str(zips[0]) == res.stdout.splitlines()[0], (zips, res.stdout)
    from packaging.utils import parse_wheel_filename

    platform = zips[0].name.rsplit("-", 1)[1][:-len(".zip")].replace("_", "-")
    names = [Path(w).name for w in manifest()["wheels"]]
    wheels = [n for n in names if any(PLATFORMS[platform](t.platform) for t in parse_wheel_filename(n)[3])]
    # every wheel of this platform, and no other: both Pythons' pycolmap where PyPI has it
    assert set(wheels) >= set(wheels_for_this_machine())
    return zips[0], wheels


def test_zip_holds_the_add_on_without_tests_or_caches(built_zip):
    built_zip, wheels = built_zip
    names = zipfile.ZipFile(built_zip).namelist()
    assert "__init__.py" in names and "blender_manifest.toml" in names
    assert "bridge/parascale_bridge.py" in names
    assert {"bridge/__init__.py", "bridge/comfyui/nodes.py"} <= set(names)  # the ComfyUI node pack
    assert "operators/presets/operator/parascale.export_poses/GEN3C.py" in names
    assert {f"wheels/{w}" for w in wheels} <= set(names)
    assert "docs/README.md" in names  # the manifest's website
    assert not [n for n in names if n.startswith(("tests/", ".venv", ".git", "tools/", "constraints/"))
                or "__pycache__" in n]
    assert len([n for n in names if n.endswith(".whl")]) == len(wheels)  # this platform's only


def test_zip_installs_registers_calibrates_and_uninstalls(built_zip, tmp_path):
    """The built zip installed with Blender's own installer, then a calibration through
    the installed extension's operator (never this source tree): a reference move in a
    tabletop, transferred to a 100x copy of it, must come out 100x longer per step."""
    built_zip, _ = built_zip
    # A separate Blender process with its own user folders, so nothing leaks into this one.
    script = tmp_path / "install.py"
    script.write_text(f"""
import bpy, sys, addon_utils, math
import numpy as np
repo = bpy.context.preferences.extensions.repos.new(name="t", module="ptest", custom_directory={str(tmp_path / 'repo')!r}, source='USER')
bpy.ops.extensions.package_install_files(filepath={str(built_zip)!r}, repo='ptest', enable_on_install=True)
mod = "bl_ext.ptest.parascale"
assert mod in {{a.module for a in bpy.context.preferences.addons}}, "not enabled"
ops = sorted(n for n in dir(bpy.ops.parascale))
assert {{"calibrate", "evaluate", "import_track", "export_poses"}} <= set(ops), ops
panels = sorted(n for n in dir(bpy.types) if n.startswith("PARASCALE_PT_"))
assert "PARASCALE_PT_main" in panels, panels
assert hasattr(bpy.types.Scene, "parascale")
import cv2  # the bundled wheel
# the generator presets of the Export dialog, listed from the installed extension's folder
listed = bpy.utils.preset_paths("operator/parascale.export_poses")
from pathlib import Path
assert any(Path(p).parts[-5:] == ("parascale", "operators", "presets", "operator", "parascale.export_poses")
           for p in listed), listed
print("REGISTERED", ops, panels)

# A tabletop at the origin and a 100x copy far off to the side, out of each other's view.
def tabletop(scale, offset):
    ox = offset
    bpy.ops.mesh.primitive_plane_add(size=6 * scale, location=(ox, 0, 0))
    bpy.ops.mesh.primitive_plane_add(size=6 * scale, location=(ox, scale, 0), rotation=(math.pi / 2, 0, 0))
    for (x, y, z), r in [((0.0, 0.0, 0.15), 0.15), ((0.3, 0.2, 0.1), 0.1), ((-0.25, 0.3, 0.2), 0.2)]:
        bpy.ops.mesh.primitive_uv_sphere_add(radius=r * scale, location=(ox + x * scale, y * scale, z * scale))
def camera(name, location):
    obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    obj.location, obj.rotation_euler = location, (math.radians(80), 0, 0)
    bpy.context.scene.collection.objects.link(obj)
    return obj
scene = bpy.context.scene
for obj in list(bpy.data.objects):  # the startup cube, light and camera
    bpy.data.objects.remove(obj)
tabletop(1.0, 0.0)
tabletop(100.0, 1e5)
scene.render.resolution_x, scene.render.resolution_y = 320, 180
ref = camera("Reference", (0, -2, 0.4))
for f in range(1, 9):  # dolly in and truck right
    ref.location = (0.03 * f, -2 + 0.05 * f, 0.4)
    ref.keyframe_insert("location", frame=f)
target = camera("Target", (1e5 + 100 * 0.03, -200 + 100 * 0.05, 40))
scene.frame_start, scene.frame_end = 1, 8
s = scene.parascale
s.reference_kind, s.reference_object, s.target_camera = "OBJECT", ref, target
s.frame_start, s.frame_end = 1, 8
assert bpy.ops.parascale.calibrate() == {{"FINISHED"}}
op_module = bpy.types.PARASCALE_OT_calibrate.__module__
assert op_module.startswith(mod), op_module
source = sorted(m for m in sys.modules if m == "parascale" or m.startswith("parascale."))
assert not source, source  # the source tree was never imported
result = s.result_camera
assert result is not None and result.name == "Target.ParaScale"
def centres(obj):
    out = []
    for f in range(1, 9):
        scene.frame_set(f)
        out.append(np.array(obj.matrix_world.translation))
    return np.array(out)
ratio = np.linalg.norm(np.diff(centres(result), axis=0), axis=1) / np.linalg.norm(np.diff(centres(ref), axis=0), axis=1)
print("STEP RATIOS", ratio.round(3).tolist())
assert np.all(np.abs(ratio / 100 - 1) < 0.05), ratio
print("CALIBRATED", op_module)
bpy.ops.preferences.addon_disable(module=mod)
bpy.ops.extensions.package_uninstall(repo_directory={str(tmp_path / 'repo')!r}, pkg_id="parascale")
left_ops = [n for n in dir(bpy.ops.parascale)]
left_panels = [n for n in dir(bpy.types) if n.startswith("PARASCALE_")]
assert not left_ops and not left_panels and not hasattr(bpy.types.Scene, "parascale"), (left_ops, left_panels)
import os
assert not os.path.exists(os.path.join({str(tmp_path / 'repo')!r}, "parascale"))
print("UNINSTALLED")
""")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600,
                         cwd=tmp_path)
    assert "REGISTERED" in res.stdout and "CALIBRATED" in res.stdout and "UNINSTALLED" in res.stdout, \
        res.stdout[-3000:] + res.stderr[-3000:]


class OperatorProps:
    """Stands in for the properties a layout.operator() button carries: each one set must
    exist on the operator (an enum only with one of its items); the values are recorded."""

    def __init__(self, rna, log, idname):
        object.__setattr__(self, "_rna", rna)
        object.__setattr__(self, "_log", log)
        object.__setattr__(self, "_idname", idname)

    def __setattr__(self, name, value):
        props = self._rna.properties
        assert name in props, f"{self._idname} has no property {name!r}"
        prop = props[name]
        if prop.type == "ENUM" and not prop.enum_items:  # dynamic items: ask the operator's own function
            pass
        elif prop.type == "ENUM":
            assert value in {i.identifier for i in prop.enum_items}, (self._idname, name, value)
        self._log.append(("set", (self._idname, name, value)))


class RecordingLayout:
    """Stands in for UILayout: records every prop and operator a panel names and
    checks that the property exists on the data and the operator is registered."""

    def __init__(self, log):
        self.log = log
        self.enabled = True
        self.scale_y = 1.0
        self.active = True

    def _child(self, *args, **kwargs):
        return RecordingLayout(self.log)

    row = column = box = split = column_flow = grid_flow = _child

    def label(self, text="", **kwargs):
        self.log.append(("label", text))

    def separator(self, **kwargs):
        pass

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__} has no property {name!r}"
        self.log.append(("prop", name))

    def operator(self, idname, text=None, **kwargs):
        import bpy

        group, name = idname.split(".")
        op = getattr(getattr(bpy.ops, group), name)
        assert hasattr(getattr(bpy.ops, group), name) and op.get_rna_type(), idname
        label = text if text is not None else op.get_rna_type().name
        assert len(label) <= 24, f"button label {label!r} is not short"
        self.log.append(("operator", idname))
        return OperatorProps(op.get_rna_type(), self.log, idname)

    def menu(self, idname, **kwargs):
        self.log.append(("menu", idname))


def test_every_panel_draws_with_existing_properties_and_operators(fresh_blender):
    bpy = fresh_blender
    import parascale

    parascale.register()
    try:
        scene = bpy.context.scene
        panels = [getattr(bpy.types, n) for n in dir(bpy.types) if n.startswith("PARASCALE_PT_")]
        assert panels
        cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
        scene.collection.objects.link(cam)
        scene.parascale.result_camera = cam
        scene.parascale.has_calibration = scene.parascale.has_evaluation = True
        scene.parascale.eval_pce, scene.parascale.eval_measured_by = 1.0, "depth: reprojection of ray cast 64x36"
        # a render evaluation that could not measure: 30% of the covered pixels trusted
        scene.parascale.has_render_evaluation, scene.parascale.eval_render_measurable = True, False
        scene.parascale.eval_render_trusted = 0.3
        for kind in ("OBJECT", "FILE", "BLEND", "CLIP"):
            scene.parascale.reference_kind = kind
            for panel in panels:
                log = []
                # Panel instances cannot be made by hand; draw with a stand-in self.
                panel.draw(type("PanelSelf", (), {"layout": RecordingLayout(log)})(), bpy.context)
                assert log, panel.__name__
        # The main panel walks the whole flow.
        log = []
        bpy.types.PARASCALE_PT_main.draw(type("S", (), {"layout": RecordingLayout(log)})(), bpy.context)
        ops = [n for k, n in log if k == "operator"]
        assert ops[-4:] == ["parascale.calibrate", "parascale.evaluate", "parascale.check_range",
                            "parascale.export_poses"]
        props = {n for k, n in log if k == "prop"}
        assert {"target_camera", "estimator", "depth_source", "frame_start", "frame_end", "result_name",
                "export_preset", "export_speed"} <= props
        # Export carries the panel's Generator preset and Speed to the dialog
        from parascale.parascale_blender import presets

        scene.parascale.export_preset, scene.parascale.export_speed = "GEN3C", 1.5
        log = []
        bpy.types.PARASCALE_PT_main.draw(type("S", (), {"layout": RecordingLayout(log)})(), bpy.context)
        sent = {name: value for k, (op, name, value) in ((k, v) for k, v in log if k == "set")
                if op == "parascale.export_poses"}
        assert sent == presets.operator_values(presets.BY_KEY["GEN3C"], 1.5)
        # poll explains why calibrate cannot run yet
        assert not bpy.ops.parascale.calibrate.poll()
        # a video alone: the Camera reference offers tracking (or says why it cannot)
        scene.parascale.reference_kind = "OBJECT"
        log = []
        bpy.types.PARASCALE_PT_main.draw(type("S", (), {"layout": RecordingLayout(log)})(), bpy.context)
        assert ("operator", "parascale.track_video") in log
        # the results panel shows both figures side by side; the render one says it cannot measure
        # and points at the depth figure; the depth one explains its disagreement with the residual
        log = []
        bpy.types.PARASCALE_PT_results.draw(type("S", (), {"layout": RecordingLayout(log)})(), bpy.context)
        labels = [text for kind, text in log if kind == "label"]
        assert "Depth" in labels and "Render" in labels
        assert "not measurable" in labels and "30% trusted" in labels
        assert any("depth figure" in text for text in labels)
        assert any("Independent depth disagrees" in text for text in labels)
        assert ("operator", "parascale.view_result") in log
    finally:
        parascale.unregister()
    assert not hasattr(bpy.types.Scene, "parascale")


def test_every_setting_and_operator_option_has_a_tooltip(fresh_blender):
    bpy = fresh_blender
    import parascale

    parascale.register()
    try:
        groups = [bpy.types.Scene.bl_rna.properties["parascale"].fixed_type]
        groups += [getattr(bpy.ops.parascale, n).get_rna_type() for n in dir(bpy.ops.parascale)]
        missing = []
        for rna in groups:
            for prop in rna.properties:
                if prop.identifier in ("rna_type", "filepath", "filter_glob", "check_existing") or prop.is_hidden:
                    continue
                if not prop.description.strip():
                    missing.append(f"{rna.identifier}.{prop.identifier}")
        assert not missing, missing
    finally:
        parascale.unregister()


def _preset_assignments(path: Path) -> dict:
    """What a preset file sets: `op.<property> = <literal>` lines (Blender's own operator-preset
    form), parsed, not executed. (Background Blender has no file browser, so no
    context.active_operator for Blender to run the file against.)"""
    tree = ast.parse(path.read_text(), str(path))
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
            target = node.targets[0]
            assert isinstance(target.value, ast.Name) and target.value.id == "op", ast.dump(node)
            out[target.attr] = ast.literal_eval(node.value)
    return out


def _keyed_camera_scene(bpy):
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 64, 36
    scene.frame_start, scene.frame_end = 1, 20
    bpy.ops.mesh.primitive_plane_add(size=40, location=(0, 5, 0), rotation=(1.5708, 0, 0))  # a wall ahead
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    for f in range(1, 21):
        s = (f - 1) / 19
        cam.location = (4.0 * s, -5.0, 0.0)  # a truck of 0.4 depths: inside the training paths
        cam.rotation_euler = (1.5708, 0.0, 0.05 * s)
        cam.keyframe_insert("location", frame=f)
        cam.keyframe_insert("rotation_euler", frame=f)
    return scene, cam


def test_generator_presets_are_blenders_operator_presets_and_export_their_frames_size_and_gauge(
        fresh_blender, tmp_path):
    bpy = fresh_blender
    import parascale
    from parascale.parascale_blender import presets

    parascale.register()
    try:
        # Blender's preset system lists the folder for the Export operator (bl_options PRESET)
        assert str(presets.PRESET_FOLDER) in bpy.utils.preset_paths(presets.PRESET_SUBDIR)
        assert "PRESET" in bpy.types.PARASCALE_OT_export_poses.bl_options
        files = sorted(presets.PRESET_FOLDER.glob("*.py"))
        assert [f.stem for f in files] == sorted(p.key for p in presets.PRESETS)
        rna = bpy.ops.parascale.export_poses.get_rna_type()
        for p in presets.PRESETS:
            assert p.path.read_text() == presets.preset_text(p)  # one table, the files follow it
            values = _preset_assignments(p.path)
            assert values == presets.operator_values(p)
            assert set(values) <= set(rna.properties.keys())
        scene, cam = _keyed_camera_scene(bpy)
        for key, ext in (("CameraCtrl_AnimateDiff", ".txt"), ("ComfyUI_Wan_Camera", ".json")):
            p = presets.BY_KEY[key]
            out = tmp_path / key
            assert bpy.ops.parascale.export_poses(filepath=str(out), camera="Cam",
                                                  **_preset_assignments(p.path)) == {"FINISHED"}
            written = out.with_suffix(ext)
            man = json.loads(written.with_name(written.name + ".manifest.json").read_text())
            assert man["format"] == p.format and man["frames"] == p.frames
            assert man["image_size"] == [p.width, p.height]
            if p.generator == "auto":  # the ParaScale json keeps scene units and records the depth scale
                doc = json.loads(written.read_text())
                assert len(doc["frames"]) == p.frames
                assert doc["image_size"] == {"width": p.width, "height": p.height}
                assert doc["meta"]["gauge"]["scene_depth_scale"] > 0 and man["gauge"]["generator"] is None
            else:
                assert man["gauge"]["generator"] == p.generator
                assert man["gauge"]["factor"] == pytest.approx(
                    man["gauge"]["generator_depth_scale"] / man["gauge"]["scene_depth_scale"])
                assert len(written.read_text().splitlines()) == 1 + p.frames
        # the export kept its depth scale: the panel's indicator follows Generator and Speed without a render
        s = scene.parascale
        from parascale.parascale_blender import export as export_module

        real_track = export_module.camera_track

        def no_evaluation(*args, **kwargs):
            raise AssertionError("the indicator evaluated the camera on a change of Generator or Speed")

        export_module.camera_track = no_evaluation  # a slider drag must stay arithmetic
        try:
            s.export_preset = "ComfyUI_Wan_Camera"
            assert s.range_state == "inside", s.range_text
            calm = s.range_position
            s.export_speed = 30.0
            assert s.range_state == "fast" and "faster" in s.range_text
            s.export_speed = 1.0
            assert s.range_position == pytest.approx(calm)
        finally:
            export_module.camera_track = real_track
        s.export_preset = "GEN3C"  # another size: no depth scale kept for it yet
        assert s.range_state == "none" and "Check Range" in s.range_text
        assert bpy.ops.parascale.check_range() == {"FINISHED"}
        assert s.range_state in ("inside", "fast", "slow") and s.range_text.startswith("gen3c")
    finally:
        parascale.unregister()


def test_blend_relative_paths_are_accepted_without_warning(fresh_blender, tmp_path):
    """Export to a "//" path: no RuntimeWarning from Blender about the property, and the file
    lands next to the saved .blend; the panel's file fields take "//" too."""
    import warnings

    bpy = fresh_blender
    import parascale

    parascale.register()
    try:
        scene, _ = _keyed_camera_scene(bpy)
        bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
        scene = bpy.context.scene
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Blender's warning would raise here
            assert bpy.ops.parascale.export_poses(filepath="//poses.json", format="parascale",
                                                  camera="Cam") == {"FINISHED"}
            scene.parascale.track_path = "//track.txt"
            scene.parascale.video_path = "//clip.mp4"
            scene.parascale.blend_path = "//other.blend"
        assert (tmp_path / "poses.json").is_file()
    finally:
        parascale.unregister()


def test_result_name_setting_reaches_the_transfer_and_the_message_names_it(fresh_blender):
    bpy = fresh_blender
    import parascale
    from parascale.parascale_blender import pipeline

    parascale.register()
    try:
        scene = bpy.context.scene
        target = bpy.data.objects.new("Target", bpy.data.cameras.new("Target"))
        scene.collection.objects.link(target)
        assert pipeline.options_from_settings(scene).result_name is None  # "<target>.ParaScale"
        scene.parascale.result_name = "Target.Dolly"
        assert pipeline.options_from_settings(scene).result_name == "Target.Dolly"
        bpy.data.objects.new("Target.Dolly", None)  # the user's own object holds the name
        with pytest.raises(pipeline.TransferError, match="Result Name in the ParaScale panel"):
            pipeline.check_result_name(target, "Target.Dolly")
    finally:
        parascale.unregister()
