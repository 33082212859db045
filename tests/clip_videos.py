"""Small real videos for the tracking tests: the 16 frames of a RealEstate10K clip (384x256)
written as an mp4 at any frame rate (OpenCV's mp4v), so a test can give a video its own clock."""
from pathlib import Path

CLIP = "0bf152ef84195293"
CLIP_SIZE = (384, 256)
# the clip's own pose file: fx/W, fy/H (non-square pixels, fy/fx = 1.185)
CLIP_FOCAL = (0.474812461 * 384, 0.844111024 * 256)


def clip_frames(data_dir, name=CLIP) -> list:
    """The clip's frames (BGR)."""
    import cv2

    cap = cv2.VideoCapture(str(Path(data_dir) / "cameractrl_realestate10k" / "assets" / "reference_videos"
                               / f"{name}.mp4"))
    frames = []
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(img)
    finally:
        cap.release()
    return frames


def write_video(path, frames, fps) -> Path:
    """frames as an mp4 at `fps` (a float: 30000 / 1001 gives a 29.97 file)."""
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    assert writer.isOpened(), f"cannot write {path}"
    for img in frames:
        writer.write(img)
    writer.release()
    return Path(path)
