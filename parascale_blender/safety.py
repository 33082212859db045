"""Independent checks of a camera move against the scene's geometry, by ray casting.

- realised_by_geometry: the Pi a keyed move really shows, measured by ray casting a
  pixel grid at each pose and reprojecting the hit points into the next pose
  (core.parallax.realised_parallax), a path independent of the calibration's depth.
- check_path: geometry nearer than the camera's clip_start, each step's straight
  segment passing through geometry, a start pose inside a closed mesh; each reported
  with its frames as a CalibrationWarning.
- collision_limit: a callback for the calibration that stops a step short of the first
  surface on its segment.

check_path asks Blender only where geometry can be: the world boxes of everything the
depsgraph holds (GeometryBounds), and for a mesh whose box is near, its nearest surface
point (Object.closest_point_on_mesh), rule out poses, steps and the start point that no
ray could hit anything from. The grid of rays is cast only where they do not, so the
warnings are the same as casting everywhere, at a fraction of the cost (issue 23).

Ray casts see evaluated geometry (modifiers, instances); they do not see volumes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import bpy
import numpy as np
from mathutils import Vector

from ..core.calibrate import CalibrationWarning
from ..core.parallax import normalized_grid, realised_parallax, scale_intrinsics

# Directions probed to tell whether a point is enclosed: 14 spread over the sphere
# (a Fibonacci lattice, turned off the axes so no probe runs along a box's edges or faces).
def _probe_directions(n: int = 14) -> np.ndarray:
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r = np.sqrt(1 - z * z)
    phi = i * np.pi * (3 - np.sqrt(5)) + 0.3
    d = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    a, b = 0.37, 0.23  # a fixed tilt
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return d @ (Ry @ Rx).T


_INSIDE_PROBES = _probe_directions()
_MAX_CROSSINGS = 256  # per probe ray: enough for any real enclosure, bounded for a pathological mesh


def _frames_text(frames: Sequence) -> str:
    frames = list(frames)
    text = ", ".join(str(f) for f in frames[:10])
    return text + (f", ... ({len(frames)} in all)" if len(frames) > 10 else "")


def scene_depsgraph(scene):
    """The evaluated depsgraph of `scene` (not the context's: a ray cast with another
    scene's depsgraph hits nothing of this one)."""
    if bpy.context.scene == scene:
        return bpy.context.evaluated_depsgraph_get()
    with bpy.context.temp_override(scene=scene, view_layer=scene.view_layers[0]):
        return bpy.context.evaluated_depsgraph_get()


class RayCaster:
    """Scene.ray_cast with numpy in and out (one depsgraph for all calls)."""

    def __init__(self, scene):
        self.scene = scene
        self.depsgraph = scene_depsgraph(scene)

    def cast(self, origin, direction, distance: float = 1.70141e38):
        """(hit, distance, normal) of the first surface along a unit direction."""
        hit, location, normal, *_ = self.scene.ray_cast(self.depsgraph, Vector(list(map(float, origin))),
                                                        Vector(list(map(float, direction))),
                                                        distance=float(distance))
        if not hit:
            return False, np.inf, None
        return True, float(np.linalg.norm(np.array(location) - np.asarray(origin, float))), np.array(normal)

    def depth(self, c2w: np.ndarray, K: np.ndarray, width: int, height: int, grid: tuple) -> tuple:
        """Planar depth (h, w) through the pixel centres of a grid x grid sampling of the
        image (K at width x height), the grid's K, and the nearest hit distance."""
        gw, gh = grid
        Kg = scale_intrinsics(K, width, height, gw, gh)
        xy = normalized_grid(Kg, gw, gh).reshape(-1, 2)
        R, c = c2w[:3, :3], c2w[:3, 3]
        rays = np.c_[xy, np.ones(len(xy))] @ R.T
        norms = np.linalg.norm(rays, axis=1)
        Z = np.full(len(xy), np.inf)
        nearest = np.inf
        origin = Vector(c.tolist())
        ray_cast, dg = self.scene.ray_cast, self.depsgraph
        for i, direction in enumerate((rays / norms[:, None]).tolist()):
            hit, location, *_ = ray_cast(dg, origin, Vector(direction))
            if hit:
                dist = float(np.linalg.norm(np.array(location) - c))
                Z[i] = dist / norms[i]  # along the ray to planar depth
                nearest = min(nearest, dist)
        return Z.reshape(gh, gw), Kg, nearest


    def nearer_than(self, c2w: np.ndarray, K: np.ndarray, width: int, height: int, grid: tuple,
                    planar: float) -> float:
        """Nearest planar depth below `planar` through a grid of the image (inf if none):
        rays limited to that depth, so a large scene costs little."""
        gw, gh = grid
        xy = normalized_grid(scale_intrinsics(K, width, height, gw, gh), gw, gh).reshape(-1, 2)
        R, c = c2w[:3, :3], c2w[:3, 3]
        rays = np.c_[xy, np.ones(len(xy))] @ R.T
        norms = np.linalg.norm(rays, axis=1)
        origin = Vector(c.tolist())
        nearest = np.inf
        for direction, norm in zip((rays / norms[:, None]).tolist(), norms.tolist()):
            hit, location, *_ = self.scene.ray_cast(self.depsgraph, origin, Vector(direction),
                                                    distance=planar * norm)
            if hit:
                nearest = min(nearest, float(np.linalg.norm(np.array(location) - c)) / norm)
        return nearest


def realised_by_geometry(scene, c2w: np.ndarray, K: np.ndarray, width: int, height: int, *,
                         grid: tuple = (64, 36), rule: str = "covered") -> dict:
    """Pi each step of a keyed move shows, by ray-cast points reprojected into the next
    pose, and the fraction of the view that sees geometry at each frame."""
    caster = RayCaster(scene)
    pi = {r: np.zeros(len(c2w) - 1) for r in ("covered", "frame")}
    cover = np.zeros(len(c2w))
    Z_prev = Kg = None
    for t in range(len(c2w)):
        Z, Kg, _ = caster.depth(c2w[t], K, width, height, grid)
        cover[t] = float(np.isfinite(Z).mean())
        if t > 0:
            for r in pi:
                pi[r][t - 1] = realised_parallax(Z_prev, Kg, c2w[t - 1], c2w[t], r)
        Z_prev = Z
    return {"pi": pi[rule], "pi_covered": pi["covered"], "pi_frame": pi["frame"], "coverage": cover,
            "grid": list(grid), "rule": rule}


def covered_flow_pi(scene, folder, track, c2w, K, W, H, grid=(96, 54)):
    """Flow Pi per step over the pixels that see geometry (the coverage rule): DIS flow of
    the rendered frames minus the rotation-only flow, masked by a ray-cast coverage map
    (grid, upsampled to the flow's size; a border of 4% dropped as in the video path)."""
    import cv2

    from ..core.reference import dis_flow, read_frames, rotation_homography

    frames, _ = read_frames(folder)
    h, w = frames[0].shape
    Kf = np.stack([scale_intrinsics(k, track.width, track.height, w, h) for k in track.K])
    caster = RayCaster(scene)
    xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    out = np.zeros(len(frames) - 1)
    for t in range(1, len(frames)):
        Z, _, _ = caster.depth(c2w[t - 1], K, W, H, grid)
        mask = cv2.resize(np.isfinite(Z).astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        b = int(round(0.04 * min(h, w)))
        mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = False, False, False, False
        flow = dis_flow(frames[t - 1], frames[t])
        Hm = rotation_homography(Kf[t - 1], Kf[t], track.rotations[t - 1], track.rotations[t])
        q = np.stack([xs, ys, np.ones_like(xs)], -1) @ Hm.T
        rx = flow[..., 0] - (q[..., 0] / q[..., 2] - xs)
        ry = flow[..., 1] - (q[..., 1] / q[..., 2] - ys)
        mag = np.hypot(rx / Kf[t - 1][0, 0], ry / Kf[t - 1][1, 1])
        out[t - 1] = mag[mask].mean() if mask.any() else 0.0
    return out


# Objects whose evaluated geometry a ray cast can hit (the rest have no surface).
_SURFACE_FREE = {"CAMERA", "LIGHT", "EMPTY", "SPEAKER", "LIGHT_PROBE", "LATTICE", "ARMATURE"}


class GeometryBounds:
    """Where a ray cast of `depsgraph` can hit anything: the world-space box of every
    evaluated object and instance with geometry (padded a little for rounding), and, for
    a mesh object, its nearest surface point. Used to skip rays that cannot hit; every
    answer is conservative (True/"maybe" when in doubt)."""

    # Beyond this many objects and instances, reading their boxes would cost more than
    # the rays it saves: every pose, step and start point is then a "maybe".
    MAX_BOXES = 20_000

    def __init__(self, depsgraph):
        los, his, meshes = [], [], []
        self.everywhere = False
        for count, inst in enumerate(depsgraph.object_instances):
            if count >= self.MAX_BOXES:
                self.everywhere = True
                break
            ob = inst.object
            if ob.type in _SURFACE_FREE:
                continue
            M = np.array([list(r) for r in inst.matrix_world], float)
            box = np.array([list(c) for c in ob.bound_box], float) @ M[:3, :3].T + M[:3, 3]
            lo, hi = box.min(0), box.max(0)
            pad = 1e-6 * (1.0 + np.abs(box).max())
            los.append(lo - pad)
            his.append(hi + pad)
            # A mesh object itself (not an instance): its nearest point answers "is any
            # surface within r?" in one call. Others count as near whenever their box is.
            original = ob.original if ob.type == "MESH" and not inst.is_instance else None
            meshes.append((original, M))
        self.lo = np.array(los).reshape(-1, 3)
        self.hi = np.array(his).reshape(-1, 3)
        self._meshes = meshes
        self._depsgraph = depsgraph

    def box_distance(self, points: np.ndarray) -> np.ndarray:
        """(n, boxes) distance from each point to each box (0 inside)."""
        p = np.asarray(points, float).reshape(-1, 1, 3)
        gap = np.maximum(np.maximum(self.lo[None] - p, p - self.hi[None]), 0.0)
        return np.linalg.norm(gap, axis=2)

    def _surface_within(self, k: int, point: np.ndarray, radius: float) -> bool:
        original, M = self._meshes[k]
        if original is None:
            return True
        A = M[:3, :3]
        smallest = float(np.linalg.svd(A, compute_uv=False).min())
        if not smallest > 0:
            return True
        local = np.linalg.solve(A, np.asarray(point, float) - M[:3, 3])
        # a sphere of radius r in the world fits in one of r / smallest in the object's space
        found, *_ = original.closest_point_on_mesh(Vector(local.tolist()), distance=radius / smallest * (1 + 1e-6),
                                                   depsgraph=self._depsgraph)
        return bool(found)

    def anything_within(self, points: np.ndarray, radius: float) -> np.ndarray:
        """(n,) False where no surface lies within `radius` of the point (rays no longer
        than radius from there hit nothing), True where one may."""
        points = np.asarray(points, float).reshape(-1, 3)
        if self.everywhere:
            return np.ones(len(points), bool)
        out = np.zeros(len(points), bool)
        if not len(self.lo):
            return out
        near = self.box_distance(points) <= radius
        for i in np.flatnonzero(near.any(axis=1)):
            out[i] = any(self._surface_within(k, points[i], radius) for k in np.flatnonzero(near[i]))
        return out

    def segments_touch(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n,) False where the segment a[i] -> b[i] misses every box (slab test)."""
        a, b = np.asarray(a, float).reshape(-1, 3), np.asarray(b, float).reshape(-1, 3)
        if self.everywhere:
            return np.ones(len(a), bool)
        if not len(self.lo):
            return np.zeros(len(a), bool)
        d = (b - a)[:, None, :]
        o = a[:, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (self.lo[None] - o) / d
            t2 = (self.hi[None] - o) / d
        tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
        # an axis the segment does not move along: inside the slab or not at all
        flat = d == 0
        inside = (o >= self.lo[None]) & (o <= self.hi[None])
        tmin = np.where(flat, np.where(inside, -np.inf, np.inf), tmin)
        tmax = np.where(flat, np.where(inside, np.inf, -np.inf), tmax)
        enter, leave = tmin.max(axis=2), tmax.min(axis=2)
        return ((enter <= leave) & (leave >= 0.0) & (enter <= 1.0)).any(axis=1)

    def inside_any_box(self, point: np.ndarray) -> bool:
        if self.everywhere:
            return True
        return bool(len(self.lo)) and bool((self.box_distance(point) <= 0).any())


def crossings(caster: "RayCaster", point: np.ndarray, direction: np.ndarray) -> list:
    """Every surface a ray from `point` crosses, in order: (object name, distance, faces
    the ray). Each hit is stepped past by a distance relative to the scene's size there,
    so the count holds at any scale."""
    out = []
    origin = np.asarray(point, float)
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    start = origin.copy()
    dg = caster.depsgraph
    for _ in range(_MAX_CROSSINGS):
        hit, location, normal, _index, obj, _matrix = caster.scene.ray_cast(
            dg, Vector(start.tolist()), Vector(u.tolist()))
        if not hit:
            break
        loc = np.array(location, float)
        dist = float(np.linalg.norm(loc - origin))
        name = obj.original.name if getattr(obj, "original", None) is not None else obj.name
        out.append((name, dist, float(np.array(normal) @ u) < 0))
        step = 1e-6 * max(dist, float(np.abs(loc).max()), 1e-9)
        start = loc + u * step
    return out


def _closed_and_oriented(obj, depsgraph) -> tuple:
    """(closed, consistently oriented) of an object's evaluated mesh as modelled: closed when
    every edge is shared by exactly two faces, oriented when each edge is walked once in
    each direction (no merging of coincident vertices: unwelded pieces are open)."""
    if obj is None or obj.type != "MESH":
        return False, False
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        n_edges, n_loops = len(mesh.edges), len(mesh.loops)
        if n_edges == 0 or n_loops == 0:
            return False, False
        edge_of_loop = np.empty(n_loops, np.int64)
        mesh.loops.foreach_get("edge_index", edge_of_loop)
        closed = bool((np.bincount(edge_of_loop, minlength=n_edges) == 2).all())
        if not closed:
            return False, False
        vert = np.empty(n_loops, np.int64)
        mesh.loops.foreach_get("vertex_index", vert)
        starts = np.empty(len(mesh.polygons), np.int64)
        totals = np.empty(len(mesh.polygons), np.int64)
        mesh.polygons.foreach_get("loop_start", starts)
        mesh.polygons.foreach_get("loop_total", totals)
        nxt = np.arange(n_loops) + 1
        ends = starts + totals
        nxt[ends - 1] = starts  # the last loop of each face closes onto its first
        directed = vert * (int(vert.max()) + 1) + vert[nxt]
        oriented = len(np.unique(directed)) == n_loops
        return closed, oriented
    finally:
        evaluated.to_mesh_clear()


def enclosing_object(caster: "RayCaster", point: np.ndarray) -> Optional[str]:
    """The name of a solid object enclosing `point`, or None.

    Decided by containment, never by which way faces point alone: an object encloses the
    point when every probe ray crosses its surface an odd number of times (parity), and
    its mesh is closed as modelled (every edge shared by two faces: an open arena, a room
    with a wall missing, a level built of separate single-sided quads are not). A closed,
    consistently oriented mesh whose faces point at the point is a room modelled to be
    seen from inside, not a solid the camera is stuck in: not reported."""
    counts, facing = {}, {}
    for i, direction in enumerate(_INSIDE_PROBES):
        seen = crossings(caster, point, direction)
        names = {}
        for name, _dist, front in seen:
            names[name] = names.get(name, 0) + 1
            if names[name] == 1:
                facing.setdefault(name, []).append(front)
        for name, n in names.items():
            counts.setdefault(name, [0] * len(_INSIDE_PROBES))[i] = n
    for name, per_probe in counts.items():
        if not all(n % 2 == 1 for n in per_probe):
            continue
        obj = bpy.data.objects.get(name)
        closed, oriented = _closed_and_oriented(obj, caster.depsgraph)
        if not closed:
            continue
        if oriented and sum(facing[name]) * 2 > len(facing[name]):
            continue  # faces point at the camera: an interior seen from inside
        return name
    return None


def inside_closed_mesh(caster: "RayCaster", point: np.ndarray) -> bool:
    """True when a closed solid encloses `point` (enclosing_object)."""
    return enclosing_object(caster, point) is not None


def check_path(scene, c2w: np.ndarray, frames: Sequence, K: np.ndarray, width: int, height: int,
               clip_start: float, *, grid: tuple = (24, 14)) -> list:
    """Warnings (CalibrationWarning) for a keyed move: near-clip geometry, steps through
    geometry, a start inside a closed mesh. Frames are scene frame numbers."""
    caster = RayCaster(scene)
    bounds = GeometryBounds(caster.depsgraph)
    c2w = np.asarray(c2w, float)
    centres = c2w[:, :3, 3]
    warnings = []
    near, through = [], []
    closest = {}
    # The grid's rays reach planar depth clip_start: no farther from the centre than
    # clip_start times the longest ray's length per unit depth (a corner pixel).
    gw, gh = grid
    xy = normalized_grid(scale_intrinsics(K, width, height, gw, gh), gw, gh).reshape(-1, 2)
    reach = clip_start * float(np.sqrt(1.0 + (xy ** 2).sum(axis=1)).max())
    may_be_near = bounds.anything_within(centres, reach)
    may_cross = np.r_[False, bounds.segments_touch(centres[:-1], centres[1:])]
    for t in range(len(c2w)):
        if may_be_near[t]:
            nearest = caster.nearer_than(c2w[t], K, width, height, grid, clip_start)
            if nearest < clip_start:
                near.append(frames[t])
                closest[frames[t]] = nearest
        if t > 0 and may_cross[t]:
            a, b = centres[t - 1], centres[t]
            length = float(np.linalg.norm(b - a))
            if length > 0:
                hit, dist, _ = caster.cast(a, (b - a) / length, length)
                if hit:
                    through.append(frames[t])
    enclosing = enclosing_object(caster, centres[0]) if bounds.inside_any_box(centres[0]) else None
    if enclosing is not None:
        warnings.append(CalibrationWarning(
            "inside_mesh", [frames[0]],
            f"frame {frames[0]}: the start pose is inside the closed mesh {enclosing!r} (every probe ray crosses "
            "its surface an odd number of times, and its faces point away from the camera: a solid); the "
            "calibration measured parallax against the inside of that object. If it is a room you film "
            "inside, its normals point outward: flip them (Mesh > Normals > Flip) and this goes away"))
    if near:
        f0 = near[0]
        warnings.append(CalibrationWarning(
            "near_clip", near,
            f"frames {_frames_text(near)}: geometry nearer than the camera's clip_start {clip_start:g} "
            f"(frame {f0}: {closest[f0]:.4g} along the view axis); renders cut it away"))
    if through:
        warnings.append(CalibrationWarning(
            "collision", through,
            f"frames {_frames_text(through)}: the straight step into the frame passes through geometry "
            "(the camera flies through a surface); --stop-short stops such steps before the surface"))
    return warnings


def collision_limit(scene, margin: float):
    """max_step callback for core.calibrate.Calibrator: the distance to the first surface
    along the step, less `margin` (the camera's clip_start), never negative."""
    caster = RayCaster(scene)

    def limit(_i: int, c2w: np.ndarray, direction_world: np.ndarray) -> float:
        u = np.asarray(direction_world, float)
        norm = np.linalg.norm(u)
        if norm == 0:
            return np.inf
        hit, dist, _ = caster.cast(c2w[:3, 3], u / norm)
        return max(dist - margin, 0.0) if hit else np.inf

    return limit


def realised_summary(pi_ref: np.ndarray, realised: dict) -> dict:
    """PCE of a realised measurement against the reference (a figure that can fail)."""
    from ..core.metrics import pce

    score = pce(realised["pi"], pi_ref)
    return {"pce": score["mean"], "pce_p90": score["p90"], "pi_realised": realised["pi"].tolist(),
            "coverage": realised["coverage"].tolist(), "measured_by": f"ray cast {realised['grid'][0]}x"
            f"{realised['grid'][1]}, reprojection ({realised['rule']} pixels)"}


def min_coverage(realised: dict) -> Optional[float]:
    cover = realised.get("coverage")
    return None if cover is None or not len(cover) else float(np.min(cover))
