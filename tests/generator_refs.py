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


# Independent numpy re-implementation of ComfyUI's Wan camera path, written from its documented
# behaviour (comfy_extras/nodes_camera_trajectory.py: Camera, process_pose_params, ray_condition
# and the grouping in WanCameraEmbedding.execute), float32 where ComfyUI computes in float32.
# A pose entry is [timestamp, fx, fy, cx, cy, _, _, pose...], fx..cy normalised by the image size.
# Two readers of `pose`:
#   "c2w4x4"  ComfyUI's Camera: 16 numbers, a 4x4 camera-to-world matrix (WanCameraEmbedding
#             builds its presets that way);
#   "w2c3x4"  VideoX-Fun's, CameraCtrl's and AnimateDiff-Evolved's Camera: 12 numbers, a 3x4
#             world-to-camera matrix (a RealEstate10K line).
# A RealEstate10K line given to the first reader is the trap the node-pack tests measure.

def comfy_camera_matrices(entries, reader):
    e = np.asarray(entries, np.float64)
    if reader == "c2w4x4":
        c2w = e[:, 7:23].reshape(-1, 4, 4)
        return c2w, np.linalg.inv(c2w)
    if reader == "w2c3x4":
        w2c = np.tile(np.eye(4), (len(e), 1, 1))
        w2c[:, :3, :] = e[:, 7:19].reshape(-1, 3, 4)
        return np.linalg.inv(w2c), w2c
    raise ValueError(reader)


def comfy_process_pose_params(entries, width, height, reader, original_pose_width=1280, original_pose_height=720):
    """(frames, H, W, 6) float32: Plucker [o x d, d] of the poses made relative to the first,
    after the focal-length correction for a pose file made at 1280x720."""
    e = np.asarray(entries, np.float64)
    fx, fy, cx, cy = (e[:, k].copy() for k in (1, 2, 3, 4))
    c2w, w2c = comfy_camera_matrices(entries, reader)
    pose_ratio = original_pose_width / original_pose_height
    if pose_ratio > width / height:
        fx = height * pose_ratio * fx / width
    else:
        fy = width / pose_ratio * fy / height
    K = np.stack([fx * width, fy * height, cx * width, cy * height], -1).astype(np.float32)
    rel = np.concatenate([np.eye(4)[None], w2c[0][None] @ c2w[1:]]).astype(np.float32)
    i = np.arange(width, dtype=np.float32) + np.float32(0.5)
    j = np.arange(height, dtype=np.float32) + np.float32(0.5)
    out = np.empty((len(e), height, width, 6), np.float32)
    for f in range(len(e)):
        x = np.broadcast_to((i[None, :] - K[f, 2]) / K[f, 0], (height, width))
        y = np.broadcast_to((j[:, None] - K[f, 3]) / K[f, 1], (height, width))
        d = np.stack([x, y, np.ones((height, width), np.float32)], -1)
        d = d / np.linalg.norm(d, axis=-1, keepdims=True)
        d = d @ rel[f, :3, :3].T
        o = np.broadcast_to(rel[f, :3, 3], d.shape)
        out[f] = np.concatenate([np.cross(o, d), d], -1)
    return out


def comfy_wan_grouping(plucker_fhwc):
    """WanCameraEmbedding.execute after process_pose_params: channels first, the first frame
    repeated 4 times in front, groups of 4 frames stacked into 24 channels:
    (1, 24, (frames + 3) // 4, H, W)."""
    x = np.transpose(plucker_fhwc, (3, 0, 1, 2))[None]  # (1, 6, F, H, W)
    x = np.concatenate([np.repeat(x[:, :, :1], 4, axis=2), x[:, :, 1:]], axis=2)
    x = np.swapaxes(x, 1, 2)  # (1, F + 3, 6, H, W)
    b, f, c, h, w = x.shape
    x = np.swapaxes(x.reshape(b, f // 4, 4, c, h, w), 2, 3).reshape(b, f // 4, c * 4, h, w)
    return np.swapaxes(x, 1, 2)
