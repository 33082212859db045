"""The benchmark's sections in order, run_all, and the printed table."""
from __future__ import annotations

import time
from typing import Callable

from .common import (Config, Results, _log, machine_info)
from .depth import bench_depth
from .calibration import bench_calibration
from .video import bench_video
from .tracking import bench_tracking
from .keyframes import bench_keyframes
from .length import bench_length
from .batch import bench_batch


# driver and table

SECTIONS = (("depth", bench_depth), ("calibration", bench_calibration), ("video", bench_video),
            ("keyframes", bench_keyframes), ("length", bench_length), ("tracking", bench_tracking),
            ("batch", bench_batch))


def run_all(quick: bool = False, sections=None, log: Callable[[str], None] = _log) -> Results:
    cfg = Config.make(quick)
    res = Results(machine=machine_info(), config={k: (list(v) if isinstance(v, tuple) else v)
                                                  for k, v in cfg.__dict__.items()})
    start = time.perf_counter()
    for name, fn in SECTIONS:
        if sections and name not in sections:
            continue
        if quick and not sections and name == "length":
            continue  # minutes even when quick: run it with --only length
        t0 = time.perf_counter()
        fn(cfg, res)
        log(f"{name}: done in {time.perf_counter() - t0:.1f} s")
    res.machine["bench_seconds"] = time.perf_counter() - start
    if quick:
        res.notes.append("--quick: smaller scenes and shots; the targets are stated for the full run")
        if not sections:
            res.notes.append("--quick leaves out the length section (--only length --quick: 2,000 frames)")
    return res


def _fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} us"


TITLES = {
    "depth": "Depth per keyframe ({w}x{h} grid, steady state), ratio = rebuilt-per-frame time / time",
    "calibration": "Calibration, {n}-frame shot, ratio = default transfer time / time",
    "video": "Reference Pi from video at {w}x{h}, ratio = full-resolution time / time",
    "keyframes": "Camera keyframes, ratio = keyframe_insert time / time",
    "length": "Length: a {n}-frame track, video {w}x{h} streamed; ratio = per-frame time at 1/10 the length / "
              "per-frame time (1 = linear)",
    "tracking": "Video tracking (COLMAP), {n} frames at {w}x{h} of {scene} with {movers} boxes crossing, lens given; "
                "ratio = every-frame full-resolution time / time",
    "batch": "parascale batch, {n} measure jobs (16-frame {w}x{h} clips) on Ray here, ratio = 1-worker time / time",
}


def format_table(res: Results) -> str:
    lines = []
    m = res.machine
    lines.append(f"ParaScale benchmark{' (--quick)' if res.config.get('quick') else ''}: {m.get('cpu')}, "
                 f"{m.get('cores')} cores, Blender {m.get('bpy')} (bpy module), Python {m.get('python')}, "
                 f"numpy {m.get('numpy')}, OpenCV {m.get('opencv')}")
    for name, sec in res.sections.items():
        size = sec.get("depth_size", sec.get("size", sec.get("video_size", sec.get("clip", [0, 0]))))
        title = TITLES[name].format(w=size[0], h=size[1], n=f"{sec.get('keyframes', sec.get('frames', 0)):,}",
                                    scene=sec.get("scene", ""), movers=sec.get("movers", 0))
        lines.append("")
        lines.append(title)
        width = max(len(r["label"]) for r in sec["rows"]) + 2
        head = f"  {'':<{width}}{'per unit':>11}{'per second':>13}{'ratio':>9}"
        extra = {"video": "  Pi error", "calibration": "     total  steps vs default",
                 "depth": "  first call", "length": "     total  peak memory",
                 "tracking": "  rot err (deg)  centre err  posed  keyframes",
                 "batch": "  CPU/job  cores got  Ray start  load before"}.get(name, "")
        lines.append(head + extra)
        for r in sec["rows"]:
            line = f"  {r['label']:<{width}}{_fmt_time(r['seconds']):>11}{r['per_second']:>13.1f}{r['ratio']:>8.2f}x"
            if name == "video":
                line += f"{r['pi_error']:>10.3f}"
            elif name == "calibration":
                line += f"{r['total_s']:>9.1f} s{r['step_diff']:>17.1e}"
            elif name == "depth":
                line += f"{_fmt_time(r['first_s']):>12}"
            elif name == "length":
                line += f"{r['total_s']:>9.1f} s{r['peak_mb']:>10.0f} MB"
            elif name == "tracking":
                line += (f"{r['rot_error_deg']:>15.3f}{100 * r['centre_error']:>11.3f}%"
                         f"{r['registered']:>7d}{r['keyframes']:>11d}")
            elif name == "batch":
                line += (f"{r['cpu_s']:>7.2f} s{r['cores_used']:>11.2f}{r['ray_start_s']:>9.1f} s"
                         f"{r['load_before']:>13.1f}")
            lines.append(line)
        if name == "keyframes":
            lines.append(f"  same keys written by both: {'yes' if sec['same_keys'] else 'NO'} "
                         f"({sec['channels']} curves x {sec['frames']:,} keys)")
        if name == "video":
            lines.append(f"  Pi error: {sec['pi_error']}")
            b = sec["full_res_breakdown"]
            lines.append(f"  full-resolution path per frame: DIS flow {_fmt_time(b['flow_s'])}, reading (derotation, "
                         f"checks against the track, fill) {_fmt_time(b['reading_s'])} (medians)")
        if name == "calibration":
            lines.append(f"  steps vs default: {sec['step_diff']}")
            lines.append("  x Z pass alone (same poses): " + ", ".join(
                f"{label.split(', ', 1)[1]} {m['x_z_pass']:.2f}x" for label, m in sec["runs"].items()))
            lines.append("  the same in CPU time of this process (steadier on a loaded machine): " + ", ".join(
                f"{label.split(', ', 1)[1]} {m['x_z_pass_cpu']:.2f}x" for label, m in sec["runs"].items()))
            lines.append("  x its own depth pass (time in the transfer's depth source): " + ", ".join(
                f"{label.split(', ', 1)[1]} {m['x_own_depth']:.2f}x" for label, m in sec["runs"].items()))
            if "x_z_pass_steady" in sec:
                lines.append(f"  default transfer per key / steady Z pass with reuse per key (depth section): "
                             f"{sec['x_z_pass_steady']:.2f}x")
        if name == "length":
            lines.append(f"  peak resident memory {sec['peak_mb']:.0f} MB for {sec['frames']:,} frames "
                         f"({sec['peak_mb_small']:.0f} MB at {sec['frames'] // 10:,}; "
                         f"{sec['import_peak_mb']:.0f} MB after importing bpy)")
        if name == "tracking":
            lines.append(f"  errors against the true path: {sec['rot_error']}")
    if res.targets:
        lines.append("")
        lines.append("Targets")
        for t in res.targets:
            if "text" in t:
                fig = t["text"]
            elif "value_ratio" in t and "load" not in t:
                fig = f"{t['value_ratio']:.2f}x (limit {t['limit_ratio']:g}x)"
            elif "value_s" in t:
                fig = f"{t['value_s']:.1f} s (limit {t['limit_s']:g} s)"
            elif "value_ratio" in t:
                fig = f"{t['value_ratio']:.2f}x (at least {t['limit_ratio']:g}x; load average {t['load'][-1]:.1f})"
            else:
                fig = f"{t['value_fps']:.1f} fps (limit {t['limit_fps']:g} fps)"
                if "pi_error" in t:
                    fig += f", Pi error {t['pi_error']:.3f}"
            status = "met" if t["met"] else "MISSED"
            lines.append(f"  [{status:>6}] {t['name']}: {fig}")
    for note in res.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines)
