"""The benchmark behind `parascale bench` (one module per section; report.py runs and prints them).
May import: core, the adapter (parascale_blender), the batch engine (batch section), numpy, OpenCV; bpy and ray only inside functions.


Seven sections, each measured in one run on this machine so that the ratios are
comparable even when absolute timings are noisy (a shared machine):

1. depth per keyframe: the Z pass rebuilt per frame (compositor rebuilt, no
   persistent data) vs the Z pass with reuse vs ray casting, on procedurally
   built target scenes of about 10k, 100k and 1M triangles;
2. calibration: keyframes per second for a 240-frame shot on the 1M-triangle
   scene through pipeline.transfer with default options (target: under 30 s);
3. reference Pi from video: frames per second at 960x540 for the full per-frame
   work (DIS flow, rotation homography, residual): full resolution (baseline), the
   default path (flow on downscaled frames) and faster DIS presets, each with its
   Pi error against the analytic truth (target: 30 fps);
4. camera keyframes: 10,000 frames written in bulk (foreach_set) vs
   Object.keyframe_insert per frame, the same keys;
5. length: a 100,000-frame track (its 64x36 video written to a file and streamed
   back) through measure, transfer (ray-cast depth) and every export format, in a
   fresh process: seconds and peak resident memory per stage, against the same run
   at a tenth of the length (equal per-frame times: linear cost);
6. video tracking (full bench, pycolmap): `track_video` with the lens given on a rendered
   240-frame 640x360 clip of a 3-D scene along a known path, three boxes crossing (the
   glTF town with PARASCALE_DATA, else a procedural block town; footage.py, cached):
   every frame mapped at full resolution (baseline) vs the default keyframe tracking and a
   faster setting, frames per second with the rotation and centre errors against the
   path (targets: 4 fps, 0.5 deg, 2% of the path).
7. batch (full bench only, needs parascale[batch]): `parascale batch` throughput, the
   same 40 measure jobs with 1 worker (baseline) and with every core, Ray on this
   machine (target on an idle 2-core machine: 1.6x).

Every timed figure is a row {label, seconds (per unit), unit, baseline,
baseline_seconds, ratio = baseline_seconds / seconds}.

bpy is imported by the functions that need it: importing this module is cheap.
"""
