#!/usr/bin/env python3
"""Build the extension zip of one platform (this machine's by default), fetching only that
platform's wheels: `make zip-here` runs it, and so does the install test (tests/ui).

    python tools/zip_here.py [--output-dir dist] [--platform linux-x64|windows-x64|macos-arm64|macos-x64]

The wheels named in blender_manifest.toml that serve the platform (OpenCV's stable-ABI
wheel, pycolmap's for Python 3.11 and 3.13 where PyPI has them) are fetched into wheels/
with `pip download` unless already there; the repository is copied to a temporary folder
whose manifest names that platform and those wheels only, and Blender's own extension tool
builds dist/parascale-<version>-<platform>.zip from it. One zip serves Blender 4.5 to 5.2 on
that platform. `make zip` builds all four platforms (and fetches all ten wheels).
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import platform as platform_module
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "wheels"

# Blender platform -> does a wheel's platform tag serve it.
PLATFORMS = {
    "linux-x64": lambda tag: tag.startswith("manylinux") and tag.endswith("x86_64"),
    "windows-x64": lambda tag: tag == "win_amd64",
    "macos-arm64": lambda tag: tag.startswith("macosx") and tag.endswith(("arm64", "universal2")),
    "macos-x64": lambda tag: tag.startswith("macosx") and tag.endswith(("x86_64", "universal2")),
}
# What the repository copy leaves out (the manifest's [build] excludes the rest).
IGNORE = (".git", ".venv*", "wheels", "dist", "out", "build", "tests", "__pycache__", "*.egg-info",
          ".pytest_cache", ".hypothesis", "*.zip")


class ZipError(Exception):
    pass


def this_platform() -> str:
    machine = platform_module.machine().lower()
    arch = "arm64" if machine in ("arm64", "aarch64") else "x64" if machine in ("x86_64", "amd64") else machine
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    name = f"{system}-{arch}"
    if name not in PLATFORMS:
        raise ZipError(f"this machine ({sys.platform} {machine}) is not one of the extension's platforms: "
                       f"{', '.join(PLATFORMS)}; pass --platform")
    return name


def manifest() -> dict:
    return tomllib.loads((REPO / "blender_manifest.toml").read_text())


def wheels_for(platform: str, names) -> list:
    """The manifest's wheel file names that install on `platform` (any Python)."""
    from packaging.utils import parse_wheel_filename

    fits = PLATFORMS[platform]
    return [n for n in names if any(fits(t.platform) for t in parse_wheel_filename(n)[3])]


def fetch(wheel: str, platform: str) -> Path:
    """pip download of exactly this wheel file into wheels/ (kept for the next build)."""
    from packaging.utils import parse_wheel_filename

    dest = WHEELS / wheel
    if dest.is_file():
        return dest
    name, version, _, tags = parse_wheel_filename(wheel)
    tag = next(t for t in tags if PLATFORMS[platform](t.platform))
    interp = tag.interpreter  # cp311, cp313; cp37 for a stable-ABI wheel
    python = f"{interp[2]}.{interp[3:]}" if tag.abi != "abi3" else "3.11"
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--dest", str(WHEELS), "--python-version", python, "--platform", tag.platform, f"{name}=={version}"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not dest.is_file():
        raise ZipError(f"pip download of {wheel} failed:\n{r.stdout[-1000:]}{r.stderr[-2000:]}")
    return dest


def blender_ext() -> Path:
    spec = importlib.util.find_spec("bpy")
    if spec is None:
        raise ZipError("Blender's extension tool comes with the bpy module: run this with a venv's Python "
                       "(make setup), e.g. .venv-5.2/bin/python tools/zip_here.py")
    root = spec.submodule_search_locations[0]
    found = glob.glob(os.path.join(root, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py"))
    if not found:
        raise ZipError(f"no blender_ext.py under {root}")
    return Path(found[0])


def build(platform: str, output_dir: Path) -> tuple[Path, list]:
    """Fetch the platform's wheels and build its zip into output_dir; (zip, wheel names)."""
    m = manifest()
    if platform not in m.get("platforms", []):
        raise ZipError(f"--platform {platform}: the manifest lists {', '.join(m.get('platforms', []))}")
    wheels = wheels_for(platform, [Path(w).name for w in m.get("wheels", [])])
    WHEELS.mkdir(exist_ok=True)
    for wheel in wheels:
        fetch(wheel, platform)
    with tempfile.TemporaryDirectory(prefix="parascale-zip-") as tmp:
        src = Path(tmp) / "parascale"
        shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*IGNORE))
        (src / "wheels").mkdir()
        for wheel in wheels:
            shutil.copy(WHEELS / wheel, src / "wheels" / wheel)
        text = (src / "blender_manifest.toml").read_text()
        text, n = re.subn(r"(?m)^platforms = \[.*\]$", f'platforms = ["{platform}"]', text)
        listed = ", ".join(f'"./wheels/{w}"' for w in wheels)
        text, k = re.subn(r"(?ms)^wheels = \[.*?^\]", f"wheels = [{listed}]", text)
        if n != 1 or k != 1:
            raise ZipError("blender_manifest.toml: expected one platforms = [...] line and one wheels = [...] block")
        (src / "blender_manifest.toml").write_text(text)
        output_dir.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, str(blender_ext()), "build", "--split-platforms",
                            "--source-dir", str(src), "--output-dir", str(output_dir)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ZipError(f"blender_ext build failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    zip_path = output_dir / f"{m['id']}-{m['version']}-{platform.replace('-', '_')}.zip"
    if not zip_path.is_file():
        raise ZipError(f"the build did not write {zip_path}")
    return zip_path, wheels


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="zip_here.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--output-dir", default=str(REPO / "dist"), help="where the zip goes (default dist/)")
    ap.add_argument("--platform", choices=sorted(PLATFORMS), help="default: this machine's")
    args = ap.parse_args(argv)
    try:
        platform = args.platform or this_platform()
        zip_path, wheels = build(platform, Path(args.output_dir).resolve())
    except ZipError as exc:
        print(f"zip_here: error: {exc}", file=sys.stderr)
        return 2
    print(zip_path)
    print(f"{zip_path.stat().st_size / 1e6:.1f} MB, wheels: {', '.join(wheels) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
