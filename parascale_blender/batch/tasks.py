"""One job of `parascale batch`, run inside a Ray worker process: the job's command code
(the same functions as `parascale measure`, `transfer` and `export`) writing into a
temporary sibling of DIR/<id>/, which then replaces DIR/<id>/ whole
(core.formats.writers.atomic_folder). A job killed at any point leaves only a hidden
temporary that the next attempt removes; DIR/<id>/ holds a complete result or none.

DIR/<id>/ after a job:
    job.json          the record: status ok|failed, reason, the inputs' key and fingerprint (jobs.py),
                      wall and CPU seconds, peak memory, the summary row's figures
    log.txt           everything the job printed (its command's output, tracebacks)
    result.json       measure, track: the `parascale measure --json` document;
                      transfer: the `parascale transfer --report` document
    track/            track: the recovered COLMAP model (transfer with a video alone too)
    result.blend      transfer: the target scene with the calibrated camera
    camera_re10k.txt  transfer: the calibrated camera as a RealEstate10K pose file (CameraCtrl gauge)
    camera.json       transfer: the calibrated camera as a ParaScale .json (scene units)
    parascale_bridge.py  transfer: the bridge script the exports carry

A failed job keeps only job.json and log.txt. bpy is imported only by the transfer
kind, in a worker that Ray starts for that one job (engine: max_calls=1).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import resource
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from ...core.parallax import COVERAGE_WARN
from .jobs import Job, inputs_fingerprint, inputs_key, parascale_version

RECORD = "job.json"
LOG = "log.txt"
RESULT = "result.json"
EXPORTS = (("re10k", "camera_re10k.txt"), ("parascale", "camera.json"))
JOB_FILES = (RECORD, LOG, RESULT, "track", "result.blend", "parascale_bridge.py",
             *(name for _, name in EXPORTS), *(f"{name}.manifest.json" for _, name in EXPORTS))
KEEP_ON_FAILURE = (RECORD, LOG)


def one_line(exc: BaseException) -> str:
    """An error as one line: the message (file, line or frame in it), the type when the
    message alone would not say what happened."""
    text = " ".join(str(exc).split())
    from ..cli.parser import CommandError

    if isinstance(exc, (CommandError, ValueError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def captured_output(path: Path):
    """stdout and stderr, Python's and the C libraries' (Blender, COLMAP), into `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    text = io.TextIOWrapper(io.FileIO(os.dup(1), "w"), encoding="utf-8", errors="replace", line_buffering=True)
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield text
    finally:
        text.flush()
        text.close()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in saved:
            os.close(f)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


def _limit_threads(num_cpus: int) -> None:
    """OpenCV's threads to the CPUs the task declared (DIS flow gives the same numbers
    on any thread count; Ray sets OMP_NUM_THREADS itself)."""
    try:
        import cv2

        cv2.setNumThreads(max(1, int(num_cpus)))
    except ImportError:
        pass


# ---------------------------------------------------------------------------
# the kinds: each runs its command's own code and returns the summary row's figures

def _stats(values, prefix: str) -> dict:
    import numpy as np

    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {}
    return {f"{prefix}_mean": float(v.mean()), f"{prefix}_median": float(np.median(v)),
            f"{prefix}_p10": float(np.percentile(v, 10)), f"{prefix}_p90": float(np.percentile(v, 90)),
            f"{prefix}_min": float(v.min()), f"{prefix}_max": float(v.max())}


def _frames_text(steps) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    parts, run = [], []
    for s in steps:
        if run and s == run[-1] + 1:
            run.append(s)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}")
        run = [s]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}")
    return ", ".join(parts)


def measure_figures(ref, track) -> dict:
    """The summary figures of a measured reference: Pi per step, the clip's gauge
    D = median |d_t| / Pi_t (core.gauge.clip_depth, in the track's units), the fraction
    of each frame Pi was averaged over, and warnings."""
    import numpy as np

    from ...core.gauge import clip_depth

    pi = np.asarray(ref.pi, float)
    D_t, D = clip_depth(pi, ref.translation)
    out = {"frames": len(track), "steps": len(pi), "pi_source": ref.source, "estimator": ref.estimator,
           **_stats(pi, "pi"), "path": float(pi.sum()), "gauge_depth": D}
    if len(D_t):
        out["gauge_depth_p10"] = float(np.percentile(D_t, 10))
        out["gauge_depth_p90"] = float(np.percentile(D_t, 90))
    warnings = []
    cover = ref.meta.get("coverage")
    if cover is not None and len(cover):
        cover = np.asarray(cover, float)
        out["coverage_min"], out["coverage_mean"] = float(cover.min()), float(cover.mean())
        low = [t + 1 for t in np.flatnonzero(cover < COVERAGE_WARN)]
        if low:
            warnings.append(f"Pi of steps {_frames_text(low)} rests on less than {100 * COVERAGE_WARN:g}% "
                            "of the frame")
    still = [t + 1 for t in np.flatnonzero(~(pi > 0))]
    if still:
        warnings.append(f"no parallax at steps {_frames_text(still)} (still, or pure rotation)")
    if not np.isfinite(D):
        warnings.append("no step both moves and shows parallax: the clip has no gauge")
    out["warnings"] = warnings
    return out


def run_measure(job: Job, tmp: Path, track_out=None) -> dict:
    from ..cli import measure as cmd
    from ..cli.parser import command_args

    argv = ["--json", tmp / RESULT]
    if job.track:
        argv += ["--track", job.track]
    if job.video:
        argv += ["--video", job.video]
    if track_out is not None:
        argv += ["--track-out", track_out]
    args = command_args("measure", argv)
    ref, track = cmd.measure_command(args)
    cmd.write_json(args.json, ref, track)
    print(f"{track.source}: {len(track)} frames, Pi from {ref.source} ({ref.estimator}); wrote {RESULT}")
    return measure_figures(ref, track)


def run_track(job: Job, tmp: Path) -> dict:
    """A video alone: tracked (kept in track/), then measured, as `parascale measure
    --video V --track-out DIR/<id>/track` does."""
    out = run_measure(job, tmp, track_out=tmp / "track")
    report = tmp / "track" / "track_report.json"
    if report.is_file():
        rep = json.loads(report.read_text())
        out["warnings"] = [f"tracking: {w}" for w in rep.get("warnings", [])] + out["warnings"]
        for k in ("registered", "reprojection_error_px"):
            if k in rep:
                out[f"track_{k}"] = rep[k]
    return out


def run_transfer(job: Job, tmp: Path) -> dict:
    """`parascale transfer` into result.blend + result.json, then `parascale export` of
    the calibrated camera (RealEstate10K in the CameraCtrl gauge, ParaScale .json)."""
    from ..cli import export as export_cmd
    from ..cli import transfer as cmd
    from ..cli.parser import command_args

    argv = ["--target", job.target, "--output", tmp / "result.blend", "--report", tmp / RESULT]
    if job.track:
        argv += ["--track", job.track]
    if job.video:
        argv += ["--video", job.video]
        if not job.track:
            argv += ["--track-out", tmp / "track"]
    if job.camera:
        argv += ["--camera", job.camera]
    cmd.run(command_args("transfer", argv))
    report = json.loads((tmp / RESULT).read_text())
    for fmt, name in EXPORTS:
        export_cmd.run(command_args("export", ["--blend", tmp / "result.blend", "--camera", report["camera"],
                                               "--format", fmt, "--output", tmp / name]))
    out = {"frames": len(report["frames"]), "steps": len(report["pi_ref"]), "camera": report["camera"],
           "method": report["method"], "estimator": report["estimator"], **_stats(report["pi_ref"], "pi"),
           "path": float(sum(report["pi_ref"]))}
    realised = report.get("realised") or {}
    if realised.get("coverage"):
        cover = realised["coverage"]
        out["coverage_min"], out["coverage_mean"] = float(min(cover)), float(sum(cover) / len(cover))
    if "pce" in realised:
        out["pce"] = realised["pce"]
    out["warnings"] = [w.get("message", str(w)) if isinstance(w, dict) else str(w) for w in report["warnings"]]
    return out


KIND_RUNNERS = {"measure": run_measure, "track": run_track, "transfer": run_transfer}


def retarget_paths(tmp: Path, final: Path) -> None:
    """The commands record where they wrote (export manifests, the ParaScale json's
    source, the tracking report): inside the temporary folder, whose name dies with the
    swap. Every json under tmp is rewritten to name the final folder instead."""
    from ...core.formats.writers import atomic_write_text

    old, new = json.dumps(str(tmp))[1:-1], json.dumps(str(final))[1:-1]
    for p in tmp.rglob("*.json"):
        if p.is_file() and not p.is_symlink():
            text = p.read_text(encoding="utf-8")
            if old in text:
                atomic_write_text(p, text.replace(old, new))


# ---------------------------------------------------------------------------
# the task

def run_job(job: dict, out_dir: str, num_cpus: int = 1) -> dict:
    """Run one job into out_dir/<id>/ and return its record (also written as job.json).
    A failure of the job itself is a record with status 'failed' and its reason; only a
    dead worker (a crash, the OOM killer, a kill) makes Ray run the task again."""
    from ...core.formats.writers import atomic_folder, atomic_write_json, json_safe, stale_pids

    job = Job(**job)
    final = Path(out_dir) / job.id
    cut_off = stale_pids(final)  # earlier attempts of this job that died mid-way
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0, c0 = time.perf_counter(), time.process_time()
    with atomic_folder(final, allowed=JOB_FILES) as tmp:
        status, reason, figures = "ok", None, {}
        with captured_output(tmp / LOG) as log:
            print(f"job {job.id} ({job.kind}, line {job.line}) on {platform.node()} pid {os.getpid()}, "
                  f"started {started}" + (f"; earlier attempts cut off: pid {cut_off}" if cut_off else ""))
            key = fingerprint = None
            try:
                # stat before reading: a file changed while it is hashed gives a stale fingerprint, never a
                # fingerprint that vouches for contents it did not hash
                fingerprint = inputs_fingerprint(job)
                key = inputs_key(job)
                _limit_threads(num_cpus)
                figures = KIND_RUNNERS[job.kind](job, tmp)
                retarget_paths(tmp, final)
            except (Exception, SystemExit) as exc:
                status, reason = "failed", one_line(exc)
                if isinstance(exc, SystemExit):
                    reason = f"bad arguments for parascale {job.kind} (exit {exc.code}; see {LOG})"
                traceback.print_exc(file=log)
                print(f"failed: {reason}", file=log)
        if status != "ok":
            import shutil

            for p in tmp.iterdir():
                if p.name not in KEEP_ON_FAILURE:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        record = {"id": job.id, "kind": job.kind, "line": job.line, "status": status, "reason": reason,
                  "key": key, "fingerprint": fingerprint, "parascale": parascale_version(), "inputs": job.inputs(),
                  "camera": job.camera, "started": started, "seconds": round(time.perf_counter() - t0, 3),
                  "cpu_seconds": round(time.process_time() - c0, 3), "peak_rss_mb": peak_rss_mb(),
                  "num_cpus": num_cpus, "host": platform.node(), "pid": os.getpid(), "cut_off_attempts": cut_off,
                  "outputs": sorted(p.name for p in tmp.iterdir()) + [RECORD], "summary": json_safe(figures)}
        atomic_write_json(tmp / RECORD, record, end="\n", indent=1, allow_nan=False, default=_json_default)
    return record


def _json_default(x):
    import numpy as np

    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"{type(x).__name__} is not JSON")


def failure_record(job: Job, reason: str, **extra) -> dict:
    """The record of a job that failed outside a worker (a missing input, a dead worker)."""
    return {"id": job.id, "kind": job.kind, "line": job.line, "status": "failed", "reason": reason, "key": None,
            "parascale": parascale_version(), "inputs": job.inputs(), "camera": job.camera,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "summary": {}, **extra}


def write_failure(out_dir, record: dict) -> None:
    """job.json of a job that failed outside a worker, written like the workers write."""
    from ...core.formats.writers import atomic_folder, atomic_write_json, json_safe

    with atomic_folder(Path(out_dir) / record["id"], allowed=JOB_FILES) as tmp:
        atomic_write_json(tmp / RECORD, json_safe(record), end="\n", indent=1, allow_nan=False, default=_json_default)


def read_record(out_dir, job_id: str):
    """DIR/<id>/job.json, or None when absent or unreadable."""
    try:
        return json.loads((Path(out_dir) / job_id / RECORD).read_text())
    except (OSError, ValueError):
        return None
