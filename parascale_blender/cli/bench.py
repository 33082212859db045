"""`parascale bench`: benchmark the hot paths against their baselines.

    parascale bench [--quick] [--json OUT] [--only SECTION ...]

Prints progress while it runs, then one table of figures measured in this run
(ratios against the baselines measured beside them), and the targets met or
missed. --json writes every figure plus the machine it ran on.
"""
from __future__ import annotations

import json
import os

from ...core.formats.writers import atomic_write_text

SECTION_NAMES = ("depth", "calibration", "video", "keyframes", "length", "tracking", "batch")


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="smaller scenes and shots (about a minute), without the length section unless "
                             "--only names it; the targets apply to the full run")
    parser.add_argument("--json", metavar="OUT", help="write all figures and the machine info to this JSON file")
    parser.add_argument("--only", nargs="+", choices=SECTION_NAMES, metavar="SECTION",
                        help=f"run only these sections ({', '.join(SECTION_NAMES)})")


def run(args) -> int:
    from . import checks as chk
    from ..bench.report import format_table, run_all

    chk.check_output_file("--json", args.json)
    if args.json:
        folder = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(folder, exist_ok=True)
    res = run_all(quick=args.quick, sections=args.only)
    print()
    print(format_table(res), flush=True)
    if args.json:
        atomic_write_text(args.json, json.dumps(res.as_dict(), indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0
