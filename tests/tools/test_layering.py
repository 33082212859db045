"""The house keeps its layering: read every module's imports (ast, no execution) and check
the rules the rooms state in their first lines.

    core (and core/formats, core/tracking)  never bpy, mathutils, bmesh, bpy_extras; never the Blender side
    operators, panels                       core only for types (classes); the work goes through parascale_blender
    bridge (and bridge/comfyui)             stands alone: only its own modules, never the rest of the package
    parascale_blender's adapter modules     never cli/, bench/, demo/ or batch/ (those rooms are built on the adapter)
    cli, bench, demo, batch                 never operators or panels
    batch                                   bpy only inside functions (a job's worker), never at module level
    every room                              opens with two lines: what it is, what it may import
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PKG = "parascale"
BLENDER_MODULES = {"bpy", "mathutils", "bmesh", "bpy_extras", "gpu", "blf"}
ROOMS = ["core", "core/formats", "parascale_blender", "parascale_blender/cli", "parascale_blender/bench",
         "parascale_blender/demo", "parascale_blender/batch", "operators", "panels", "bridge", "bridge/comfyui"]


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = [PKG, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path):
    """(line, absolute module, imported names) for every import in the file, nested ones too."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            if not node.module:  # from . import x: each name is a module
                for n in names:
                    yield node.lineno, f"{target}.{n}", []
            else:
                yield node.lineno, target, names


def files(room: str, recursive: bool = True):
    folder = REPO / room
    return sorted(folder.rglob("*.py") if recursive else folder.glob("*.py"))


def violations(rooms, rule):
    out = []
    for room, recursive in rooms:
        for path in files(room, recursive):
            for line, target, names in imports(path):
                why = rule(target, names)
                if why:
                    out.append(f"{path.relative_to(REPO)}:{line}: {target} {names or ''} ({why})")
    return out


def test_core_never_imports_blender():
    def rule(target, names):
        if target.split(".")[0] in BLENDER_MODULES:
            return "core never imports bpy"
        if target.startswith((f"{PKG}.parascale_blender", f"{PKG}.operators", f"{PKG}.panels")):
            return "core never imports the Blender side"
    assert violations([("core", True)], rule) == []


def _classes_of(module: str) -> set:
    rel = Path(*module.split(".")[1:])
    path = REPO / rel.with_suffix(".py")
    if not path.is_file():
        path = REPO / rel / "__init__.py"
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)}


def test_ui_imports_core_only_for_types():
    def rule(target, names):
        if not target.startswith(f"{PKG}.core"):
            return None
        if not names:
            return "a whole core module in the UI; go through parascale_blender"
        others = [n for n in names if n not in _classes_of(target)]
        if others:
            return f"core used for {others}, not types; go through parascale_blender"
    assert violations([("operators", True), ("panels", True)], rule) == []


def test_bridge_stands_alone():
    """The bridge folder (parascale_bridge.py and the ComfyUI node pack) imports only itself,
    numpy and the standard library (torch lazily in the nodes): never the rest of the package."""
    def rule(target, names):
        if target == f"{PKG}.bridge" or target.startswith(f"{PKG}.bridge."):
            return None  # its own modules (the node pack's relative imports)
        if target.split(".")[0] == PKG or target.startswith(f"{PKG}."):
            return "the bridge runs with numpy only, never the package"
        if target.split(".")[0] in BLENDER_MODULES:
            return "the bridge never imports bpy"
    assert violations([("bridge", True)], rule) == []


def test_adapter_never_imports_the_rooms_built_on_it():
    def rule(target, names):
        for room in ("cli", "bench", "demo", "batch"):
            if target == f"{PKG}.parascale_blender.{room}" or target.startswith(f"{PKG}.parascale_blender.{room}."):
                return f"the adapter never imports {room}/"
    assert violations([("parascale_blender", False)], rule) == []


def test_tools_never_import_the_ui():
    def rule(target, names):
        if target.startswith((f"{PKG}.operators", f"{PKG}.panels")):
            return "command line, bench and demo run without the UI"
    rooms = [("parascale_blender/cli", True), ("parascale_blender/bench", True), ("parascale_blender/demo", True),
             ("parascale_blender/batch", True)]
    assert violations(rooms, rule) == []


def test_batch_imports_blender_and_ray_only_inside_functions():
    """The driver never loads bpy (it runs no scene), and the engine loads without Ray
    until a batch runs (`parascale --help` and the extension never need the extra)."""
    bad = []
    for path in files("parascale_blender/batch"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for n in names:
                    if n.split(".")[0] in BLENDER_MODULES | {"ray", "matplotlib"}:
                        bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {n} at module level")
    assert bad == []


def test_commands_live_in_cli():
    """No argparse parser and no command module outside parascale_blender/cli."""
    bad = []
    for path in files("parascale_blender"):
        if "cli" in path.relative_to(REPO / "parascale_blender").parts:
            continue
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "ArgumentParser":
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: an argparse parser")
            if isinstance(node, ast.FunctionDef) and node.name.startswith("cmd_"):
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.name}")
    assert bad == []


@pytest.mark.parametrize("room", ROOMS)
def test_every_room_says_what_it_is_and_may_import(room):
    init = REPO / room / "__init__.py"
    assert init.is_file(), f"{room}/ has no __init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text()), clean=False) or ""
    lines = [ln for ln in doc.strip().splitlines() if ln.strip()]
    assert len(lines) >= 2, f"{room}/__init__.py: its docstring must open with what the room is and what it may import"
    assert lines[1].startswith("May import"), f"{room}/__init__.py: the second line says 'May import: ...', got {lines[1]!r}"


def test_the_rule_catches_what_it_should(tmp_path):
    """The reader resolves relative imports as Python does (a check that cannot fail is no check)."""
    fake = REPO / "core" / "formats" / "readers.py"
    found = {t for _, t, _ in imports(fake)}
    assert f"{PKG}.core.cameras" in found and f"{PKG}.core.formats.validate" in found
    ui = REPO / "operators" / "calibrate.py"
    assert any(t.startswith(f"{PKG}.parascale_blender") for _, t, _ in imports(ui))
