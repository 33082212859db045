"""Independent re-implementations of the generators' published input conventions, shared
by the bridge, gauge and node-pack tests (torch-free, loop-based: slow but obviously right)."""
from pathlib import Path

import numpy as np

# Independent re-implementation of CameraCtrl's inference path (hehao13/CameraCtrl
# inference.py: Camera, the original_pose_width/height correction, get_relative_pose
# with zero_first_frame_scale=True, ray_condition), torch-free and loop-based.

def cameractrl_reference(pose_file, H, W, original_pose_width=1280, original_pose_height=720):
    lines = Path(pose_file).read_text().splitlines()[1:]
    entries = [[float(x) for x in l.strip().split(" ")] for l in lines if l.strip()]
    cams = []
    for e in entries:
        fx, fy, cx, cy = e[1:5]
        w2c = np.eye(4)
        w2c[:3, :] = np.array(e[7:]).reshape(3, 4)
        cams.append({"fx": fx, "fy": fy, "cx": cx, "cy": cy, "w2c": w2c, "c2w": np.linalg.inv(w2c)})
    sample_ratio = W / H
    pose_ratio = original_pose_width / original_pose_height
    if pose_ratio > sample_ratio:
        resized_w = H * pose_ratio
        for c in cams:
            c["fx"] = resized_w * c["fx"] / W
    else:
        resized_h = W / pose_ratio
        for c in cams:
            c["fy"] = resized_h * c["fy"] / H
    intr = [(c["fx"] * W, c["fy"] * H, c["cx"] * W, c["cy"] * H) for c in cams]
    abs2rel = np.eye(4) @ cams[0]["w2c"]
    poses = [np.eye(4)] + [abs2rel @ c["c2w"] for c in cams[1:]]
    out = np.zeros((len(cams), 6, H, W))
    for f, (c2w, (fx, fy, cx, cy)) in enumerate(zip(poses, intr)):
        R, o = c2w[:3, :3], c2w[:3, 3]
        for j in range(H):
            for i in range(W):
                x = (i + 0.5 - cx) / fx
                y = (j + 0.5 - cy) / fy
                d = np.array([x, y, 1.0])
                d = d / np.sqrt(d @ d)
                d = R @ d
                m = np.array([o[1] * d[2] - o[2] * d[1], o[2] * d[0] - o[0] * d[2], o[0] * d[1] - o[1] * d[0]])
                out[f, :3, j, i] = m
                out[f, 3:, j, i] = d
    return out
