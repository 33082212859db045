"""The whole transfer as one pipeline, shared by the operators and the command line: the
public names of the modules that build it, in one place.

reference (track file, imported reference camera, a camera in another .blend, a Movie Clip)
  -> ReferenceMotion (motion.py, built by sources.py): poses, frame times, reference Pi per step
  -> Transfer (transfer.py): per-frame calibration against the target scene's depth
  -> a NEW camera "<target>.ParaScale" (result_camera.py) with one key per frame and Pi curves.
The panel's settings map onto it in settings.py; a result is re-measured from depth in
evaluate_depth.py (by rendered flow in evaluate.py). The target camera is never modified.
"""
from .evaluate_depth import DepthEvaluation, evaluate_depth, result_curves
from .motion import COUNTED_PROPERTY, PI_PROPERTY, ReferenceMotion, TransferError
from .result_camera import RESULT_SUFFIX, RESULT_TAG, check_result_name, result_name, write_result_camera
from .settings import (DISAGREE, absolute_path, advice_lines, estimator_problem, evaluation_from_settings,
                       figures_disagree, options_from_settings, reference_from_settings, reference_source,
                       reference_pixels_summary,
                       reference_summary, refresh_range, settings_problem, store_evaluation, store_export,
                       store_result, transfer_from_settings, use_as_reference, use_imported_reference)
from .sources import (reference_from_blend, reference_from_movieclip, reference_from_object,
                      reference_from_track_file, scene_pi)
from .transfer import Transfer, TransferOptions, TransferResult, transfer

__all__ = [
    "DepthEvaluation", "evaluate_depth", "result_curves",
    "COUNTED_PROPERTY", "PI_PROPERTY", "ReferenceMotion", "TransferError",
    "RESULT_SUFFIX", "RESULT_TAG", "check_result_name", "result_name", "write_result_camera",
    "DISAGREE", "absolute_path", "advice_lines", "estimator_problem", "evaluation_from_settings", "figures_disagree",
    "options_from_settings", "reference_from_settings", "reference_source", "reference_pixels_summary", "reference_summary", "refresh_range",
    "settings_problem", "store_evaluation", "store_export", "store_result",
    "transfer_from_settings", "use_as_reference", "use_imported_reference",
    "reference_from_blend", "reference_from_movieclip", "reference_from_object", "reference_from_track_file",
    "scene_pi",
    "Transfer", "TransferOptions", "TransferResult", "transfer",
]
