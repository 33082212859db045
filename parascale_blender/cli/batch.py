"""`parascale batch`: run a job list on Ray, on this machine or a cluster.

    parascale batch JOBS.csv --out DIR [--workers N] [--address RAY_ADDRESS]

JOBS.csv: a header row with the columns id,kind,video,track,target,camera, then one job
per row (kind measure, track or transfer; empty cells where a kind needs none; other
columns ignored). Each job writes DIR/<id>/result.json (for measure, the same json as
`parascale measure --json`), and the run writes DIR/summary.csv. A rerun skips the jobs
already done for the same inputs. The engine is parascale_blender/batch (docs/batch.md);
it needs the extra: pip install "parascale[batch]".
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("jobs", metavar="JOBS.csv",
                        help="job list: header id,kind,video,track,target,camera; paths relative to its folder")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: DIR/<id>/result.json per job, DIR/summary.csv (new, or a batch's own)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="jobs at once (default: every core here; with --address, the cluster's CPUs)")
    parser.add_argument("--address", metavar="RAY_ADDRESS",
                        help="a running Ray cluster (host:6379, ray://host:10001 or auto); default: Ray on this "
                             "machine")


def run(args) -> int:
    from . import checks as chk
    from .parser import CommandError

    chk.check_input("JOBS.csv", args.jobs, "file")
    chk.check_int("--workers", args.workers, 1, 100_000, "jobs at once")
    chk.check_output_folder("--out", args.out)
    chk.check_distinct({"JOBS.csv": args.jobs, "--out": args.out})
    from ..batch.engine import BatchError, parse_address, run_batch
    from ..batch.jobs import JobListError

    try:
        if args.address is not None:
            parse_address(args.address)
        return run_batch(args.jobs, args.out, workers=args.workers, address=args.address).code
    except (BatchError, JobListError) as exc:
        raise CommandError(str(exc)) from None
