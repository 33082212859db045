"""The driver of `parascale batch`: reads the job list, skips the jobs already done,
runs the rest on Ray, one task per job, and writes the dataset summary.

- Ray: `ray.init(address="local")` starts Ray on this machine with N CPUs (--workers,
  default all cores), or `--address` joins a running cluster (then --workers caps how many
  jobs run at once; default the cluster's CPUs). Every job and DIR must be at the same
  paths on every node (a shared file system), and ParaScale installed on every node.
- One task per job, declaring its CPUs (and, for Blender and tracking jobs, the memory
  they peak at). measure jobs run in reusable worker processes (no bpy); track and transfer
  jobs each get a worker process of their own that exits after the job (max_calls=1:
  bpy holds one scene per process, and a COLMAP crash takes only its own job down).
- max_retries: a worker that dies (crash, OOM killer, kill) has its job run again, up to
  MAX_RETRIES times; a job that fails by itself (bad input) is not retried.
- Each job writes DIR/<id>/ atomically as it finishes (tasks.py). A rerun skips every job
  whose job.json says ok for the same inputs (jobs.inputs_fingerprint, then inputs_key)
  and redoes the others: failed ones, ones whose inputs changed, ones a kill cut off.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from .jobs import inputs_fingerprint, inputs_key, parascale_version, read_jobs
from .progress import Progress, rate_text
from .tasks import failure_record, one_line, read_record, run_job, write_failure

# CPUs each kind's task declares; memory (MiB) the Blender and tracking kinds declare, so
# that Ray never starts more of them than a node's memory holds: about twice their peaks
# measured on the real test scenes (docs/batch.md; bigger scenes: PARASCALE_BATCH_MEMORY_MB).
# measure jobs peak far below a worker's own footprint.
KIND_CPUS = {"measure": 1, "track": 1, "transfer": 1}
KIND_MEMORY_MB = {"measure": None, "track": 512, "transfer": 1536}
FRESH_PROCESS = {"measure": False, "track": True, "transfer": True}
MAX_RETRIES = 2
LOCAL_OBJECT_STORE = 128 << 20  # results are a few KB: no need for Ray's default 30% of RAM
MARKER = "batch.json"


class BatchError(ValueError):
    """A batch that cannot start (named in the message)."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise BatchError("parascale batch runs on Ray, which is not installed here: "
                         "pip install 'parascale[batch]' (ray==2.60.0)") from None
    return ray


ADDRESS = re.compile(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")


def parse_address(address: str):
    """(host, port) of a cluster address (host:port of the head's GCS, or ray://host:port
    of its Ray Client server), None for 'auto' (the cluster this node belongs to)."""
    if address == "auto":
        return None
    m = ADDRESS.fullmatch(address or "")
    if not m or not 0 < int(m.group(3)) < 65536:
        raise BatchError(f"--address {address!r}: expected host:port (the head node's GCS, e.g. 10.0.0.5:6379), "
                         "ray://host:port (Ray Client, e.g. ray://head:10001) or auto")
    return m.group(2).strip("[]"), int(m.group(3))


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """A cluster address answers (ray.init would otherwise wait for it for minutes)."""
    hp = parse_address(address)
    if hp is None:
        return
    try:
        socket.create_connection(hp, timeout=timeout).close()
    except OSError as exc:
        raise BatchError(f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                         "start one (ray start --head, ray up, KubeRay) or leave --address out to run "
                         "on this machine") from None


def prepare_out(out) -> Path:
    """DIR: created when missing; an existing one must be empty or a batch's own."""
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise BatchError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and not (out / MARKER).is_file():
        foreign = sorted(os.listdir(out))
        if foreign:
            raise BatchError(f"--out {out}: holds files a batch did not write ({', '.join(foreign[:3])}"
                             f"{', ...' if len(foreign) > 3 else ''}); choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def sort_jobs(jobs: list, out: Path, threads: int = 8) -> tuple[list, int, dict]:
    """(to run, skipped count, {id: reason} of jobs whose inputs cannot be read). A job is
    skipped when its job.json says ok and its inputs are the same: the same fingerprint
    (a stat), or else the same key (the driver reads and hashes them again)."""
    version = parascale_version()

    def one(job):
        try:
            fingerprint = inputs_fingerprint(job, version)
        except OSError as exc:
            return "missing", one_line(exc)
        rec = read_record(out, job.id)
        if not rec or rec.get("status") != "ok":
            return "run", None
        if rec.get("fingerprint") == fingerprint:
            return "skip", None
        try:
            same = rec.get("key") == inputs_key(job, {}, version)
        except OSError as exc:
            return "missing", one_line(exc)
        return ("skip" if same else "run"), None

    todo, skipped, missing = [], 0, {}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for job, (what, reason) in zip(jobs, pool.map(one, jobs)):
            if what == "missing":
                missing[job.id] = reason
            elif what == "skip":
                skipped += 1
            else:
                todo.append(job)
    return todo, skipped, missing


def start_ray(ray, workers: Optional[int], address: Optional[str]) -> int:
    """Ray started here or joined; returns how many jobs may run at once."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    common = dict(log_to_driver=False, logging_level=logging.ERROR, ignore_reinit_error=True)
    if address:
        ray.init(address=address, **common)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(1, min(workers or cpus, cpus))
    workers = workers or os.cpu_count() or 1
    ray.init(address="local", num_cpus=workers, include_dashboard=False,
             object_store_memory=LOCAL_OBJECT_STORE, **common)
    return workers


def use_cluster_token() -> None:
    """Ray 2.60 clusters started with a token (ray start makes one when ~/.ray/auth_token
    exists) admit only drivers that say RAY_AUTH_MODE=token: said for the user when a token
    is at hand and the mode is not set (RAY_AUTH_MODE=disabled keeps it off)."""
    if os.environ.get("RAY_AUTH_MODE"):
        return
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(path):
        os.environ["RAY_AUTH_MODE"] = "token"


def _largest_node_memory_mb(ray) -> Optional[float]:
    try:
        sizes = [n["Resources"].get("memory", 0) for n in ray.nodes() if n.get("Alive")]
    except Exception:
        return None
    return max(sizes) / (1 << 20) if sizes and max(sizes) > 0 else None


def memory_per_kind(env: Optional[str] = None) -> dict:
    """KIND_MEMORY_MB with PARASCALE_BATCH_MEMORY_MB's changes ("transfer=4096,track=768":
    MiB a job of that kind is scheduled for; 0 declares none)."""
    out = dict(KIND_MEMORY_MB)
    env = os.environ.get("PARASCALE_BATCH_MEMORY_MB", "") if env is None else env
    for item in filter(None, (x.strip() for x in env.split(","))):
        kind, _, value = item.partition("=")
        if kind.strip() not in out or not value.strip().isdigit():
            raise BatchError(f"PARASCALE_BATCH_MEMORY_MB {env!r}: expected KIND=MIB[,KIND=MIB] with KIND one of "
                             f"{', '.join(out)}, for example transfer=4096")
        out[kind.strip()] = int(value) or None
    return out


def remote_functions(ray, workers: int) -> dict:
    """One Ray remote function per kind, with its resources and retry policy."""
    node_mb = _largest_node_memory_mb(ray)
    memory = memory_per_kind()
    out = {}
    for kind, cpus in KIND_CPUS.items():
        opts = {"num_cpus": min(cpus, workers), "max_retries": MAX_RETRIES}
        if FRESH_PROCESS[kind]:
            opts["max_calls"] = 1
        mb = memory[kind]
        if mb and node_mb:
            opts["memory"] = int(min(mb, 0.9 * node_mb)) << 20  # never more than a node has
        out[kind] = (ray.remote(**opts)(run_job), opts["num_cpus"])
    return out


def crash_reason(ray, exc) -> str:
    """One line for a task that ended in a Ray error rather than a record."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        return one_line(cause) if cause is not None else one_line(exc).splitlines()[0]
    if isinstance(exc, ray.exceptions.OutOfMemoryError):
        return f"the worker ran out of memory {MAX_RETRIES + 1} times (killed by Ray's memory monitor)"
    if isinstance(exc, ray.exceptions.WorkerCrashedError):
        return (f"the worker process died {MAX_RETRIES + 1} times (a crash, the OOM killer or a kill); "
                "see the node's Ray logs")
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def write_marker(out: Path, jobs_csv, workers, address) -> None:
    from ...core.formats.writers import atomic_write_json

    atomic_write_json(out / MARKER, {
        "tool": "parascale batch", "parascale": parascale_version(), "jobs": os.path.abspath(jobs_csv),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "address": address or "local",
        "workers": workers}, end="\n", indent=1)


@dataclass
class BatchRun:
    """What a run did. code: 0 every job done, 1 some failed (each reported in one line),
    130 interrupted. seconds: from the first job sent to the last one back (Ray's start
    and shutdown excluded); ray_start_s: ray.init's own time."""
    code: int
    jobs: int
    done: int
    skipped: int
    failed: int
    computed: int
    seconds: float
    ray_start_s: float
    workers: Optional[int]
    paths: dict


def run_batch(jobs_csv, out, workers: Optional[int] = None, address: Optional[str] = None,
              stream=None) -> BatchRun:
    """The whole `parascale batch` run (see BatchRun)."""
    stream = stream or sys.stderr
    jobs = read_jobs(jobs_csv)
    memory_per_kind()  # a bad PARASCALE_BATCH_MEMORY_MB is refused before any work
    if address:
        use_cluster_token()  # before Ray is imported: it reads its configuration then
    ray = import_ray()
    if address:
        check_reachable(address)
    out = prepare_out(out)
    write_marker(out, jobs_csv, workers, address)  # DIR is a batch's own from here on
    from ...core.formats.writers import clean_stale

    todo, skipped, missing = sort_jobs(jobs, out)
    running = {job.id for job in todo}
    for job in jobs:
        if job.id not in running and job.id not in missing:
            clean_stale(out / job.id)  # a later run of a done job, cut off: of no use now
    # (a job to run: its worker clears what a cut-off run of it left, and records it)
    progress = Progress(len(jobs), skipped=skipped, stream=stream)
    print(f"parascale batch: {len(jobs)} jobs, {skipped} already done, {len(todo)} to run"
          + (f", {len(missing)} with unreadable inputs" if missing else ""), file=stream, flush=True)
    for job in jobs:
        if job.id in missing:
            rec = failure_record(job, missing[job.id])
            _write_failure_safely(out, rec, progress)
            progress.finished(rec)
    interrupted = False
    ray_start = 0.0
    if todo:
        started = False
        try:
            t0 = time.perf_counter()
            workers = start_ray(ray, workers, address)
            ray_start = time.perf_counter() - t0
            started = True
            print(f"parascale batch: Ray {ray.__version__} "
                  f"({'cluster ' + address if address else 'this machine'}), {workers} jobs at once",
                  file=stream, flush=True)
            _run_jobs(ray, todo, out, workers, progress)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.stop()
            if started:
                ray.shutdown()
            progress.close()
    from .summary import write_summary

    paths = write_summary(out, jobs)
    computed = progress.ok + progress.failed
    el = progress.elapsed()
    print(f"parascale batch: {progress.done}/{len(jobs)} done ({skipped} skipped), {progress.failed} failed"
          + (f"; {computed} jobs in {el:.1f} s ({rate_text(computed, el)})" if computed else "")
          + f"; summary {paths['csv']}", file=stream, flush=True)
    if interrupted:
        print("parascale batch: interrupted; run the same command again to finish the rest "
              "(finished jobs are kept and skipped)", file=stream, flush=True)
    code = 130 if interrupted else 1 if progress.failed else 0
    return BatchRun(code, len(jobs), progress.done, skipped, progress.failed, computed, el, ray_start,
                    workers, paths)


def _write_failure_safely(out: Path, rec: dict, progress: Progress) -> None:
    try:
        write_failure(out, rec)
    except (OSError, ValueError) as exc:
        progress.say(f"parascale batch: job {rec['id']}: its failure could not be recorded: {one_line(exc)}")


def _run_jobs(ray, todo: list, out: Path, workers: int, progress: Progress) -> None:
    fns = remote_functions(ray, workers)
    queue = deque(todo)
    pending = {}
    window = 2 * workers  # the next job is already queued when one finishes
    progress.start()
    while queue or pending:
        while queue and len(pending) < window:
            job = queue.popleft()
            fn, cpus = fns[job.kind]
            ref = fn.options(name=f"parascale-{job.kind}:{job.id}").remote(job.as_dict(), str(out), cpus)
            pending[ref] = job
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            job = pending.pop(ref)
            try:
                rec = ray.get(ref)
            except ray.exceptions.RayError as exc:
                rec = failure_record(job, crash_reason(ray, exc))
                _write_failure_safely(out, rec, progress)
            progress.finished(rec)
        if not ready:
            progress.draw()
