"""The `parascale` command line (also `python -m parascale`): the parser and main().

Each subcommand lives in its own module `cli/<name>.py` exposing `add_arguments(parser)`
and `run(args) -> int`. Those modules import bpy only inside `run`, so `--help` and the
bpy-free commands start fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> one-line help; the module is parascale_blender.cli.<name>.
COMMANDS = {
    "measure": "read a reference track and measure its Parallax Number per step",
    "transfer": "calibrate a reference move into a target .blend scene",
    "export": "export a camera's poses for video generators",
    "evaluate": "render a calibrated camera and measure its realised Parallax Number",
    "demo": "run the embedded end-to-end demo (tabletop to galaxy)",
    "bench": "benchmark the hot paths against their baselines",
    "track": "recover the camera track of a video with COLMAP (pycolmap)",
    "batch": "run a job list (measure, track, transfer) on Ray, on this machine or a cluster",
}


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line naming the option, exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _load(name: str):
    return importlib.import_module(f"{__package__}.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="parascale",
        description="ParaScale: transfer camera moves between scenes of any scale by "
                    "matching their Parallax Number (translation over depth, per frame).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, help_text in COMMANDS.items():
        try:
            module = _load(name)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue  # not built yet
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def blender_tempdir() -> None:
    """Give Blender a temporary folder of this process's own, before bpy starts.

    bpy makes its session folder $TMPDIR/blender_XXXXXX when it starts and removes it at
    exit; a killed run leaves it behind, and its name does not say whose it was. So the
    command line points TMPDIR (TEMP, TMP) at $TMPDIR/parascale_blender_<pid>_<random>/
    first: Blender's folder goes inside it, it is removed at exit, and one a killed run
    left (its process gone) is removed by the next run (core.formats.writers.scratch_dir,
    like the depth scratch folders). Only for the process's own command line: inside
    Blender, or once bpy is imported, nothing changes."""
    if "bpy" in sys.modules:
        return
    import atexit
    import os
    import shutil

    from ...core.formats.writers import scratch_dir

    folder = scratch_dir("parascale_blender_")  # also fixes tempfile's own folder at the real one
    for var in ("TMPDIR", "TEMP", "TMP"):
        os.environ[var] = folder
    atexit.register(shutil.rmtree, folder, True)


def command_args(name: str, argv) -> argparse.Namespace:
    """The arguments of one command parsed exactly as `parascale NAME ARGV...` parses them
    (`parascale batch` runs each job through its command's own code). A bad argument
    exits like the command line does (SystemExit, the reason on stderr)."""
    module = _load(name)
    parser = _Parser(prog=f"parascale {name}", description=COMMANDS[name])
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run, command=name)
    return parser.parse_args([str(a) for a in argv])


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:  # the process's own command line (parascale, python -m parascale)
        blender_tempdir()
    try:
        return int(args._run(args) or 0)
    except CommandError as exc:
        print(f"parascale {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        # Readers and the pipeline raise these with file, line or frame in the message.
        print(f"parascale {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
