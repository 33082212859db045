"""The panel's Evaluate as a user runs it (issue 18): depth and render figures side by side,
each with its line, and Save Preview on the render evaluation writing a side-by-side video
on the evaluation's clock."""
import pytest

pytest.importorskip("bpy")

from analytic_scenes import reference_move  # noqa: E402
from blender_scenes import add_camera, build_tabletop  # noqa: E402

CLIP = "0bf152ef84195293"


@pytest.fixture
def addon(fresh_blender):
    import parascale

    parascale.register()
    yield fresh_blender
    parascale.unregister()


@pytest.mark.slow  # renders (tests/README.md)
def test_evaluate_shows_both_figures_and_saves_a_preview(addon, data_dir, tmp_path):
    import cv2

    bpy = addon
    root = data_dir / "cameractrl_realestate10k" / "assets"
    track, video = root / "pose_files" / f"{CLIP}.txt", root / "reference_videos" / f"{CLIP}.mp4"
    build_tabletop(bpy, 10.0)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 8, 1.0
    scene.world = bpy.data.worlds.new("Grey")
    scene.world.color = (0.8, 0.8, 0.8)
    target = add_camera(bpy, "Target", reference_move(8, 10.0)[0])
    s = scene.parascale
    s.target_camera = target
    s.depth_width, s.depth_height = 48, 27
    assert bpy.ops.parascale.import_track(filepath=str(track), video=str(video)) == {"FINISHED"}
    assert bpy.ops.parascale.calibrate() == {"FINISHED"}
    s.eval_render, s.eval_samples, s.eval_save_preview = True, 1, True
    s.eval_preview_path = str(tmp_path / "preview.mp4")
    assert bpy.ops.parascale.evaluate() == {"FINISHED"}

    assert s.has_evaluation and s.has_render_evaluation
    assert s.eval_depth_summary.startswith("geometry by ray cast, covered pixels: ")
    assert s.eval_render_summary.startswith("optical flow on renders")
    if s.eval_render_measurable:
        assert s.eval_render_pce == s.eval_render_pce  # a number
    else:
        assert "not measurable by optical flow here" in s.eval_render_summary
    assert s.eval_render_advice == ""  # exact: the render reads it the way it was calibrated
    # the preview: one frame per sample of the evaluation (the clip's own times), on that clock
    assert s.eval_preview_written == str(tmp_path / "preview.mp4")
    cap = cv2.VideoCapture(s.eval_preview_written)
    try:
        count, fps = 0, cap.get(cv2.CAP_PROP_FPS)
        while True:
            ok, image = cap.read()
            if not ok:
                break
            count += 1
            width = image.shape[1]
    finally:
        cap.release()
    # the imported reference's video (384x256, fitted to the 216 px renders) beside the render (384)
    assert width == pytest.approx(384 + 384 * 216 / 256, abs=2)
    import numpy as np

    from parascale.parascale_blender.animation import property_keys

    frames = property_keys(s.reference_object, "pi_ref")[0]  # the clip's own times, in scene frames
    assert len(frames) - 1 <= count <= len(frames)  # its samples inside the keyed span
    assert fps == pytest.approx(8.0 / float(np.median(np.diff(frames))), rel=2e-3)
    # nothing of the renders is left in the file
    assert not [sc for sc in bpy.data.scenes if sc.name.startswith("ParaScale")]
