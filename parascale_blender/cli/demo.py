"""`parascale demo`: the embedded end-to-end run (tabletop to galaxy)."""


def add_arguments(p):
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    p.add_argument("--quick", action="store_true", help="two scales and three methods, for a smoke run")


def run(args) -> int:
    from . import checks as chk
    from ..demo import run as demo

    chk.check_output_folder("--out", args.out)

    if args.quick:
        report = demo.run_demo(args.out, scales=(1e-2, 1e4), methods=("raw", "harmonic", "flow"))
    else:
        report = demo.run_demo(args.out)
    print(open(f"{args.out}/report.md").read())
    return 0 if report["methods"] else 1
