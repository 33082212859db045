"""Bench section: `parascale batch` throughput, N workers against 1 (Ray, this machine)."""
from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Config, Results, _log, row
from .video import synthetic_video

BATCH_CLIP = (384, 256, 16)  # a RealEstate10K training clip: 384x256, 16 frames
SPEEDUP_TARGET = 1.6


def _clip(folder: Path):
    """One synthetic clip (the textured plane of the video section) as an mp4 and its
    RealEstate10K pose file."""
    import cv2

    from ...core.cameras import Track
    from ...core.formats.writers import write_re10k

    W, H, n = BATCH_CLIP
    frames, c2w, K, _ = synthetic_video(n, (W, H))
    video, track = folder / "clip.mp4", folder / "clip.txt"
    vw = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 8, (W, H))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f)
    vw.release()
    write_re10k(Track(c2w=c2w, K=np.repeat(K[None], n, 0), width=W, height=H, times=np.arange(n) / 8.0), track)
    return video, track


def bench_batch(cfg: Config, res: Results) -> None:
    """The same job list (measure jobs on one 16-frame 384x256 clip, each its own id) run
    with 1 worker (baseline) and with every core: seconds per job from the first job sent
    to the last one back (Ray's start apart), CPU seconds per job as the workers counted
    them, the cores the workers got (their CPU seconds over that time) and the load average
    (the machine may be shared: then the cores got, not the workers, set the pace)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        res.notes.append("batch section skipped: Ray is not installed (pip install 'parascale[batch]')")
        _log("batch: skipped (no Ray)")
        return
    if cfg.quick:
        res.notes.append("batch section skipped: --quick (Ray starts twice; run it with --only batch)")
        _log("batch: skipped (--quick)")
        return
    from ..batch.engine import run_batch

    cores = os.cpu_count() or 1
    counts = [1] + ([cores] if cores > 1 else [])
    tmp = Path(tempfile.mkdtemp(prefix="parascale-bench-batch-"))
    measured = {}
    try:
        video, track = _clip(tmp)
        n = cfg.batch_jobs
        (tmp / "jobs.csv").write_text("id,kind,video,track,target,camera\n" + "".join(
            f"j{i:04d},measure,{video.name},{track.name},,\n" for i in range(n)))
        for workers in counts:
            label = "baseline: 1 worker" if workers == 1 else f"{workers} workers"
            _log(f"batch: {n} measure jobs, {label} ...")
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            run = run_batch(tmp / "jobs.csv", tmp / f"out{workers}", workers=workers, stream=io.StringIO())
            total = time.perf_counter() - t0
            if run.code != 0 or run.computed != n:
                raise RuntimeError(f"batch bench: {run.failed} of {n} jobs failed (see {tmp / f'out{workers}'})")
            cpu = [json.loads((tmp / f"out{workers}" / f"j{i:04d}" / "job.json").read_text())["cpu_seconds"]
                   for i in range(n)]
            # cores the workers got: their CPU seconds over the job phase. On a shared machine this,
            # not the worker count, says how much CPU the run had (Linux gives each session an
            # equal share under contention, however many processes it runs)
            measured[label] = (run.seconds / n, total, run.ray_start_s, float(np.mean(cpu)), workers, load0,
                               os.getloadavg()[0], float(np.sum(cpu)) / run.seconds)
            _log(f"batch: {label}: {n / run.seconds * 60:.1f} jobs/min ({run.seconds:.1f} s for {n} jobs, "
                 f"{np.mean(cpu):.2f} CPU s per job; Ray start {run.ray_start_s:.1f} s; load {load0:.1f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base_label = next(iter(measured))
    base = measured[base_label][0]
    rows = [row(label, sec, "job", base_label, base, total_s=total, ray_start_s=start, cpu_s=cpu, workers=w,
                load_before=l0, load_after=l1, jobs_per_min=60.0 / sec, cores_used=used)
            for label, (sec, total, start, cpu, w, l0, l1, used) in measured.items()]
    res.sections["batch"] = {"rows": rows, "jobs": cfg.batch_jobs, "clip": list(BATCH_CLIP), "cores": cores,
                             "frames": cfg.batch_jobs}
    if len(rows) > 1:
        res.targets.append({"name": f"batch: {rows[-1]['workers']} workers vs 1 (idle machine)",
                            "value_ratio": rows[-1]["ratio"], "limit_ratio": SPEEDUP_TARGET,
                            "met": rows[-1]["ratio"] >= SPEEDUP_TARGET,
                            "load": [r["load_before"] for r in rows]})
