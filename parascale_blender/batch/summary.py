"""The dataset summary of a `parascale batch` run, rebuilt from every job's job.json at
the end of each run (a rerun's summary covers the skipped jobs too):

DIR/summary.csv     one row per job in list order: status and reason, Pi statistics per
                    step, path (sum of Pi), the clip's gauge D (median |d_t| / Pi_t, in its
                    track's units) with its p10..p90 over steps, coverage (fraction of each
                    frame Pi was averaged over; for transfer, of the target's view that sees
                    geometry), realised PCE (transfer), warnings, wall and CPU seconds, peak
                    memory.
DIR/summary.png     histograms of Pi per step (every step of every clip) and of the clips'
                    gauge D (log scale).
DIR/re10k_gauge/    measured clips (measure, track) as RealEstate10K pose files in ONE gauge for
                    the whole set: G = the median over clips of D_clip (the statistic of
                    core.gauge), each clip's translation scaled by G / D_clip, so every clip
                    shows its parallax at the same depth G. manifest.json records G and every
                    clip's D_clip and factor. Poses stay absolute (as the clip's track).
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from pathlib import Path

from .tasks import RESULT, read_record

COLUMNS = ("id", "kind", "status", "reason", "frames", "steps", "pi_mean", "pi_median", "pi_p10", "pi_p90",
           "pi_min", "pi_max", "path", "gauge_depth", "gauge_depth_p10", "gauge_depth_p90", "coverage_min",
           "coverage_mean", "pce", "warnings", "seconds", "cpu_seconds", "peak_rss_mb", "key")
GAUGE_FOLDER = "re10k_gauge"
MANIFEST = "manifest.json"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


def rows(out: Path, jobs: list) -> list:
    """(row dict, record or None) per job, in list order."""
    table = []
    for job in jobs:
        rec = read_record(out, job.id)
        if rec is None:
            table.append(({"id": job.id, "kind": job.kind, "status": "not run",
                           "reason": "no result yet (run the batch again)"}, None))
            continue
        s = rec.get("summary") or {}
        row = {"id": job.id, "kind": job.kind, "status": rec.get("status"), "reason": rec.get("reason"),
               **{c: s.get(c) for c in COLUMNS if c in s},
               "seconds": rec.get("seconds"), "cpu_seconds": rec.get("cpu_seconds"),
               "peak_rss_mb": rec.get("peak_rss_mb"), "key": rec.get("key")}
        table.append((row, rec))
    return table


def write_csv(path: Path, table: list) -> None:
    from ...core.formats.writers import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row, _ in table:
        w.writerow([_fmt(row.get(c)) for c in COLUMNS])
    atomic_write_text(path, buf.getvalue())


def step_pis(out: Path, rec: dict) -> list:
    """Pi per step of a finished job, from its result.json."""
    try:
        data = json.loads((out / rec["id"] / RESULT).read_text())
    except (OSError, ValueError):
        return []
    if "steps" in data:
        return [s["pi"] for s in data["steps"]]
    return list(data.get("pi_ref") or [])


def write_plot(path: Path, out: Path, table: list):
    """Histograms of Pi per step and of gauge D per clip; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import numpy as np

    from ...core.formats.writers import atomic_write_bytes

    ok = [(row, rec) for row, rec in table if rec is not None and rec.get("status") == "ok"]
    pis = np.array([p for _, rec in ok for p in step_pis(out, rec) if p is not None and math.isfinite(p)])
    gauges = np.array([row["gauge_depth"] for row, _ in ok
                       if row.get("gauge_depth") is not None and row["gauge_depth"] > 0])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    if len(pis):
        a.hist(pis, bins=min(60, max(10, len(pis) // 10)), color="#3b6ea5")
        a.axvline(np.median(pis), color="k", lw=1, ls="--", label=f"median {np.median(pis):.4g}")
        a.legend(fontsize=8)
    a.set_title(f"Parallax Number per step ({len(pis)} steps, {len(ok)} jobs)", fontsize=10)
    a.set_xlabel("Pi (image motion / focal length)")
    a.set_ylabel("steps")
    if len(gauges):
        lo, hi = gauges.min(), gauges.max()
        bins = np.geomspace(lo / 1.05, hi * 1.05, min(40, max(6, len(gauges) // 3))) if hi > lo else 10
        b.hist(gauges, bins=bins, color="#a5633b")
        if hi > lo:
            from matplotlib.ticker import NullFormatter, ScalarFormatter

            b.set_xscale("log")
            b.xaxis.set_major_formatter(ScalarFormatter())
            b.xaxis.set_minor_formatter(NullFormatter())
        b.axvline(np.median(gauges), color="k", lw=1, ls="--", label=f"median {np.median(gauges):.4g}")
        b.legend(fontsize=8)
    b.set_title(f"gauge D per clip ({len(gauges)} clips)", fontsize=10)
    b.set_xlabel("D = median |d_t| / Pi_t (track units)")
    b.set_ylabel("clips")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _track_of(out: Path, rec: dict):
    from ...core.formats.readers import read_track

    source = out / rec["id"] / "track" if rec["kind"] == "track" else Path(rec["inputs"]["track"])
    return read_track(source), source


def write_gauge_poses(out: Path, table: list):
    """DIR/re10k_gauge/<id>.txt and manifest.json (see the module doc); None when no
    clip has a gauge. A folder there that a batch did not write is left alone."""
    import numpy as np

    from ...core.formats.writers import atomic_folder, write_re10k
    from ...core.gauge import scale_translation

    clips = [(row, rec) for row, rec in table if rec is not None and rec.get("status") == "ok"
             and rec["kind"] in ("measure", "track") and (row.get("gauge_depth") or 0) > 0]
    if not clips:
        return None
    folder = out / GAUGE_FOLDER
    if folder.exists():
        try:
            if json.loads((folder / MANIFEST).read_text()).get("tool") != "parascale batch":
                raise ValueError
        except (OSError, ValueError, AttributeError):
            raise ValueError(f"{folder}: exists and was not written by parascale batch; left as it is")
    G = float(np.median([row["gauge_depth"] for row, _ in clips]))
    entries = []
    record = {}  # the folder's manifest.json: ownership (atomic_folder) plus the set's gauge
    with atomic_folder(folder, manifest=record) as tmp:
        for row, rec in clips:
            track, source = _track_of(out, rec)
            factor = G / row["gauge_depth"]
            write_re10k(replace(track, c2w=scale_translation(track.c2w, factor)), tmp / f"{rec['id']}.txt")
            entries.append({"id": rec["id"], "file": f"{rec['id']}.txt", "track": str(source),
                            "clip_depth": row["gauge_depth"], "factor": factor, "key": rec.get("key")})
        record.update({"tool": "parascale batch", "format": "re10k",
                    "gauge": G, "units": "the set's gauge: every clip's median |d_t| / Pi_t equals it",
                    "statistic": "median over clips of each clip's median |d_t| / Pi_t (core.gauge.clip_depth)",
                    "rule": "translation x gauge / clip_depth (camera centres scaled about the origin; "
                            "rotations and intrinsics unchanged; poses absolute, as in each clip's track)",
                    "clips": entries})
    return folder


def write_summary(out: Path, jobs: list, stream=None) -> dict:
    """summary.csv, summary.png and re10k_gauge/ of DIR; returns their paths."""
    import sys

    table = rows(out, jobs)
    paths = {"csv": out / "summary.csv"}
    write_csv(paths["csv"], table)
    try:
        paths["png"] = write_plot(out / "summary.png", out, table)
    except Exception as exc:  # a plot never costs the results
        print(f"parascale batch: warning: no summary.png ({type(exc).__name__}: {exc})", file=stream or sys.stderr)
    try:
        paths["gauge"] = write_gauge_poses(out, table)
    except (OSError, ValueError) as exc:
        print(f"parascale batch: warning: no gauge-normalised poses: {exc}", file=stream or sys.stderr)
    return paths
