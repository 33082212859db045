"""One story about estimators (issue 18): `parascale transfer`, `parascale evaluate` and the
panel say the same sentence, word for word (core.parallax.ADVICE_*), and the evaluation's
render advice reaches the panel unchanged. Before, evaluate said a video reference is
matched best by `flow` while transfer and the panel chose `exact`."""
import json

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


class Labels:
    """A stand-in UILayout that keeps the text of every label a panel draws."""

    def __init__(self, log):
        self.log, self.enabled, self.scale_y, self.active = log, True, 1.0, True
        self.use_property_split = self.use_property_decorate = False

    def _child(self, *args, **kwargs):
        return Labels(self.log)

    row = column = box = split = _child

    def label(self, text="", **kwargs):
        self.log.append(text)

    def prop(self, *args, **kwargs):
        pass

    def operator(self, *args, **kwargs):
        pass

    def separator(self, **kwargs):
        pass


def panel_text(bpy, panel):
    log = []
    panel.draw(type("PanelSelf", (), {"layout": Labels(log)})(), bpy.context)
    return log


@pytest.mark.slow  # renders (tests/README.md)
def test_transfer_evaluate_and_panel_give_the_same_estimator_advice(addon, data_dir, tmp_path, capsys):
    bpy = addon
    from parascale.core.parallax import ADVICE_RENDER, ADVICE_VIDEO, estimator_advice
    from parascale.parascale_blender import pipeline
    from parascale.parascale_blender.cli import main

    root = data_dir / "cameractrl_realestate10k" / "assets"
    track, video = root / "pose_files" / f"{CLIP}.txt", root / "reference_videos" / f"{CLIP}.mp4"
    build_tabletop(bpy, 10.0)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 15, 4.0  # the clip's own rate: one clip frame per scene frame
    scene.render.resolution_x, scene.render.resolution_y = 96, 54
    scene.frame_start, scene.frame_end = 1, 40
    scene.camera = add_camera(bpy, "Target", reference_move(8, 10.0)[0])
    scene.world = bpy.data.worlds.new("Grey")  # lit, so the renders are not blank (measurable or not)
    scene.world.color = (0.8, 0.8, 0.8)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "target.blend"))
    assert estimator_advice("video") == ADVICE_VIDEO

    # transfer: printed, and in its report
    capsys.readouterr()
    assert main(["transfer", "--track", str(track), "--video", str(video), "--target", str(tmp_path / "target.blend"),
                 "--depth-size", "48x27", "--output", str(tmp_path / "out.blend"),
                 "--report", str(tmp_path / "t.json")]) == 0
    printed = capsys.readouterr().out
    assert f"estimators: {ADVICE_VIDEO}" in printed
    assert json.loads((tmp_path / "t.json").read_text())["advice"] == ADVICE_VIDEO

    # evaluate: printed, and in its report; nothing recommends `flow` for a video any more
    assert main(["evaluate", "--blend", str(tmp_path / "out.blend"), "--camera", "Target.ParaScale",
                 "--render-size", "64", "--samples", "1", "--json", str(tmp_path / "e.json")]) == 0
    printed = capsys.readouterr().out
    evaluated = json.loads((tmp_path / "e.json").read_text())
    assert evaluated["advice"] == ADVICE_VIDEO and f"estimators: {ADVICE_VIDEO}" in printed
    assert evaluated["render_advice"] is None  # an exact result: rendering reads it as it was calibrated
    assert "matches best" not in printed

    # the panel: the imported reference fills it with exact, and its Results say the same sentence
    assert bpy.ops.parascale.import_track(filepath=str(track), video=str(video)) == {"FINISHED"}
    settings = scene_settings = bpy.context.scene.parascale
    assert scene_settings.estimator == "exact"
    assert settings.reference_object["parascale_estimator"] == "exact"  # the one used, as the panel shows
    lines = pipeline.advice_lines(bpy.context.scene)
    assert " ".join(lines) == ADVICE_VIDEO
    settings.result_camera = bpy.data.objects["Target.ParaScale"]
    drawn = panel_text(bpy, bpy.types.PARASCALE_PT_results)
    assert all(line in drawn for line in lines)

    # a result calibrated with another estimator: evaluate's render advice, and the panel's, are one sentence
    assert main(["transfer", "--track", str(track), "--video", str(video), "--target", str(tmp_path / "target.blend"),
                 "--estimator", "flow", "--depth-size", "48x27", "--output", str(tmp_path / "flow.blend"),
                 "--report", str(tmp_path / "tf.json")]) == 0
    assert main(["evaluate", "--blend", str(tmp_path / "flow.blend"), "--camera", "Target.ParaScale",
                 "--render-size", "64", "--samples", "1", "--json", str(tmp_path / "ef.json")]) == 0
    printed = capsys.readouterr().out
    flow_eval = json.loads((tmp_path / "ef.json").read_text())
    expected = ADVICE_RENDER.format(estimator="flow")
    assert flow_eval["render_advice"] == expected and f"warning: {expected}" in printed
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "flow.blend"))
    pipeline.store_evaluation(bpy.context.scene, {"depth": flow_eval["depth"], "render": flow_eval})
    settings = bpy.context.scene.parascale
    settings.result_camera = bpy.data.objects["Target.ParaScale"]
    settings.has_calibration = True
    assert settings.eval_render_advice == expected
    assert expected in panel_text(bpy, bpy.types.PARASCALE_PT_results)
