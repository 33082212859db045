"""The result camera "<target>.ParaScale": named, keyed with the calibrated move and its Pi
curves, updated in place on recalibration, never sharing data or actions with the target."""
from __future__ import annotations


import bpy
import numpy as np

from . import animation
from .motion import TransferError

RESULT_SUFFIX = ".ParaScale"
RESULT_TAG = "parascale_result"


def result_name(target, name=None) -> str:
    return name or target.name + RESULT_SUFFIX


def check_result_name(target, name=None) -> None:
    """Refuse, before any work, a result name held by something that is not a ParaScale result."""
    name = result_name(target, name)
    old = bpy.data.objects.get(name)
    if old is not None and not (old.get(RESULT_TAG) and old.type == "CAMERA"):
        raise TransferError(f"an object named {name!r} exists and is not a ParaScale result; rename that "
                            "object, or give the result another name (Result Name in the ParaScale panel, "
                            "--result-name for parascale transfer)")


def _own_camera_data(target, name, lens):
    """A copy of the target's camera data that shares nothing with it: its lens
    animation, if any, is copied into an action of its own (or replaced by follow-zoom)."""
    data = target.data.copy()
    data.name = name
    ad = data.animation_data
    if ad is not None:
        if lens is not None or ad.action is None:
            data.animation_data_clear()
        else:
            identifier = ad.action_slot.identifier if ad.action_slot else None
            ad.action = ad.action.copy()
            slots = [s for s in ad.action.slots if s.identifier == identifier]
            if slots and ad.action_slot != slots[0]:
                ad.action_slot = slots[0]
    return data


def write_result_camera(scene, target, result, frames, name=None, lens=None):
    """The result camera "<target>.ParaScale", keyed with the result.

    A previous result of that name is updated in place: the same object keeps its
    identity, so scene.camera, markers bound to it and links from other objects stay;
    its animation and camera data are replaced. A new result goes in the target's
    collection. The result never shares data or actions with the target. If keying
    fails, nothing is left behind and a previous result is as it was."""
    from .reference import all_ids, remove_new_ids

    name = result_name(target, name)
    check_result_name(target, name)
    before = all_ids()
    obj = bpy.data.objects.get(name)
    previous = None
    if obj is not None:
        ad = obj.animation_data
        previous = (obj.data, ad.action if ad else None, ad.action_slot if ad else None)
    try:
        data = _own_camera_data(target, name, lens)
        if obj is None:
            obj = bpy.data.objects.new(name, data)
            collection = target.users_collection[0] if target.users_collection else scene.collection
            if collection.library is not None or collection.override_library is not None:
                collection = scene.collection
            collection.objects.link(obj)
        else:
            obj.data = data
        obj.parent = None
        obj.constraints.clear()
        step_curve = lambda v: np.concatenate([[0.0], np.asarray(v, float)])  # noqa: E731
        animation.write_camera_animation(
            obj, result.c2w, frames, name + ".action",
            curves={"pi_ref": step_curve(result.pi_ref), "pi_target": step_curve(result.pi_target),
                    "scale": step_curve(result.scale)},
            lens=lens)
    except BaseException:
        if previous is not None:
            obj.data = previous[0]
            if previous[1] is not None:
                obj.animation_data.action, obj.animation_data.action_slot = previous[1], previous[2]
        remove_new_ids(before)
        raise
    if previous is not None:  # the old data and action, unless someone else uses them
        old_data, old_action = previous[0], previous[1]
        if old_data.users == 0:
            old_action_lens = old_data.animation_data.action if old_data.animation_data else None
            bpy.data.cameras.remove(old_data)
            if old_action_lens is not None and old_action_lens.users == 0:
                bpy.data.actions.remove(old_action_lens)
        if old_action is not None and old_action.users == 0:
            bpy.data.actions.remove(old_action)
    obj[RESULT_TAG] = 1
    obj["parascale_method"] = result.method
    obj["parascale_estimator"] = result.estimator
    obj["parascale_target"] = target.name
    return obj
