"""The `parascale` command line: the parser (parser.py), the argument checks (checks.py) and one module per command.
May import: the adapter (parascale_blender), core, the standard library; bpy only inside a command's run()."""
from .parser import CommandError, build_parser, main

__all__ = ["CommandError", "build_parser", "main"]
