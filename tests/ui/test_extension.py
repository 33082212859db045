"""The extension as Blender sees it: validator, built zip, install, register, uninstall.
Also every panel's draw() against a recording stand-in for the layout."""
import ast
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
    """Build this platform's zip with Blender's own tool from a copy of the repository
    whose manifest names this platform only, so only its OpenCV wheel is fetched
    (`make zip` fetches all four and builds every platform).
    PARASCALE_TEST_ZIP=dist/...zip tests a zip built elsewhere instead, e.g. `make zip`'s
    from another Blender version (one build serves them all)."""
    from packaging.utils import parse_wheel_filename

    given = os.environ.get("PARASCALE_TEST_ZIP")
    if given:
        path = Path(given).resolve()
        assert path.is_file(), f"PARASCALE_TEST_ZIP={given}: no such file"
        names = zipfile.ZipFile(path).namelist()
        return path, [n.split("/", 1)[1] for n in names if n.startswith("wheels/") and n.endswith(".whl")]

    wheels = wheels_for_this_machine()
    for wheel in wheels:
        if not (WHEELS / wheel).is_file():
            name, version = parse_wheel_filename(wheel)[:2]
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                            "--dest", str(WHEELS), f"{name}=={version}"], check=True)
            assert (WHEELS / wheel).is_file(), f"pip download {name}=={version} did not fetch {wheel}"
    src = tmp_path_factory.mktemp("src") / "parascale"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "wheels", "dist", "out", "build", "tests", "__pycache__", "*.egg-info",
        ".pytest_cache", ".hypothesis", "*.zip"))
    (src / "wheels").mkdir()
    for wheel in wheels:
        shutil.copy(WHEELS / wheel, src / "wheels" / wheel)
    tags = parse_wheel_filename(wheels[0])[3]
    platform = next(p for p, fits in PLATFORMS.items() if any(fits(t.platform) for t in tags))
    text = (src / "blender_manifest.toml").read_text()
    text = re.sub(r"(?m)^platforms = \[.*\]$", f'platforms = ["{platform}"]', text)
    listed = ", ".join(f'"./wheels/{w}"' for w in wheels)
    text, n = re.subn(r"(?ms)^wheels = \[.*?^\]", f"wheels = [{listed}]", text)
    assert n == 1, "blender_manifest.toml: no wheels = [...] block"
    (src / "blender_manifest.toml").write_text(text)
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, str(blender_ext()), "build", "--split-platforms",
                          "--source-dir", str(src), "--output-dir", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    zips = sorted(out.glob("*.zip"))
    assert [z.name.rsplit("-", 1)[1] for z in zips] == [platform.replace("-", "_") + ".zip"]
    return zips[0], wheels


def test_zip_holds_the_add_on_without_tests_or_caches(built_zip):
    built_zip, wheels = built_zip
    names = zipfile.ZipFile(built_zip).namelist()
    assert "__init__.py" in names and "blender_manifest.toml" in names
    assert "bridge/parascale_bridge.py" in names
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
        assert ops[-3:] == ["parascale.calibrate", "parascale.evaluate", "parascale.export_poses"]
        props = {n for k, n in log if k == "prop"}
        assert {"target_camera", "estimator", "depth_source", "frame_start", "frame_end"} <= props
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
