"""Motion -> result layer: authoring new animation with the strategy layering.py describes.

Any command that composes animation over a user's shot (``inbetween``,
``retarget``) hands :func:`write_result` a list of :class:`ResultAnimation`
and the open :class:`transaction.Transaction`; nothing here writes a file
directly: the transaction commits every file at once, keeping the exact
bytes it replaces.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np

from . import layering
from .animation_specs import copy_attribute, read_channels, to_animation_order, write_channels
from .errors import InputError
from .motion import Motion
from .reading import SkelBinding
from .schema import Provenance, author_provenance


@dataclass
class ResultAnimation:
    """One animation to compose over the shot.

    ``anim_path`` is the SkelAnimation whose samples the result replaces (it is
    overridden, or a new ``<name><suffix>`` animation is defined beside it), or
    None to define a new animation for ``binding``'s Skeleton. ``result`` holds
    every output sample, skeleton joint order, in the stage's time codes.
    ``generated_times`` are the samples that are new (recorded so an in-place
    edit can be taken out again).
    """

    binding: SkelBinding
    anim_path: str | None
    result: Motion
    provenance: Provenance
    name_suffix: str = "_inbetween"
    generated_times: np.ndarray | None = None


@dataclass
class WriteOptions:
    output: str | None = None
    in_place: bool = False
    force: bool = False


def _channels(stage, anim: ResultAnimation, joints_of_prim: str | None) -> dict:
    """Per-channel arrays in the joint order of the prim that will carry them."""
    from pxr import UsdSkel

    skeleton = anim.binding.skeleton
    if joints_of_prim is None:  # a new animation over every skeleton joint
        return to_animation_order(anim.result, np.arange(skeleton.num_joints))
    a2s = anim.binding.anim_to_skel
    if a2s is None:
        a2s = np.arange(skeleton.num_joints)
    original = None
    if np.any(a2s < 0):  # joints the skeleton lacks: keep their composed values
        prim = UsdSkel.Animation(stage.GetPrimAtPath(joints_of_prim))
        getters = {"translations": prim.GetTranslationsAttr(), "rotations": prim.GetRotationsAttr(),
                   "scales": prim.GetScalesAttr()}
        original = read_channels(getters, anim.result.times)
    return to_animation_order(anim.result, a2s, original)


def _bound_skeletons(stage, anim: ResultAnimation) -> list[str]:
    from .reading import find_bindings

    if anim.anim_path is None:
        return [anim.binding.skeleton_path]
    return [b.skeleton_path for b in find_bindings(stage) if b.animation_path == anim.anim_path]


def _define_animation(stage, layer, anim: ResultAnimation) -> str:
    """A new SkelAnimation beside the original (or beside the Skeleton) carrying every sample."""
    from pxr import Sdf, Vt

    beside = anim.anim_path or anim.binding.skeleton_path
    target = layering.fresh_sibling(stage, beside, anim.name_suffix)
    times = anim.result.times
    if anim.anim_path is not None:
        write_channels(layer, target, times, _channels(stage, anim, anim.anim_path), define=True)
        src = stage.GetPrimAtPath(anim.anim_path)
        for name in ("joints", "blendShapes", "blendShapeWeights"):
            copy_attribute(src.GetAttribute(name), layer.GetPrimAtPath(target))
    else:
        write_channels(layer, target, times, _channels(stage, anim, None), define=True)
        spec = layer.GetPrimAtPath(target)
        joints = Sdf.AttributeSpec(spec, "joints", Sdf.ValueTypeNames.TokenArray, Sdf.VariabilityUniform)
        joints.default = Vt.TokenArray(list(anim.binding.skeleton.joints))
    return target


def _bind(root, layer, skel_path: str, target: str, edits: layering.LayerEdits) -> None:
    from pxr import Sdf

    rel = layering.root_binding_spec(root, skel_path)
    if rel is not None:
        # The root layer binds this skeleton itself: the one unavoidable edit of the user's file.
        old = [str(p) for p in rel.targetPathList.GetAddedOrExplicitItems()]
        rel.targetPathList.explicitItems = [Sdf.Path(target)]
        edits.relationships[skel_path] = {"old": old, "new": [target]}
        return
    skel_spec = Sdf.CreatePrimInLayer(layer, skel_path)
    ops = Sdf.TokenListOp()
    ops.prependedItems = ["SkelBindingAPI"]
    skel_spec.SetInfo("apiSchemas", ops)
    rel_spec = Sdf.RelationshipSpec(skel_spec, "skel:animationSource", custom=False)
    rel_spec.targetPathList.explicitItems = [Sdf.Path(target)]


# How a result was written, in words (the tokens are stored in provenance and --json; "retarget"
# predates the `retarget` command and means the skeleton's binding was moved to a new animation).
MODE_WORDS = {
    "override": "over the authored samples",
    "retarget": "new animation bound in place of the old",
    "new": "new animation",
    "wrapper": "in a wrapper layer",
    "inPlace": "in place, in the layer holding the samples",
}


def describe_mode(mode: str) -> str:
    """A result's writing mode for people (:data:`MODE_WORDS`); unknown tokens as they are."""
    return MODE_WORDS.get(mode, mode)


def _author_layered(stage, root, layer, anim: ResultAnimation, wrapper: bool, edits: layering.LayerEdits) -> dict:
    overridable = anim.anim_path is not None and (wrapper or not layering.root_has_channel_opinion(root, anim.anim_path))
    retargeted: list[str] = []
    if overridable:
        mode = "wrapper" if wrapper else "override"
        write_channels(layer, anim.anim_path, anim.result.times, _channels(stage, anim, anim.anim_path))
        target = anim.anim_path
    else:
        mode = "wrapper" if wrapper else ("retarget" if anim.anim_path else "new")
        target = _define_animation(stage, layer, anim)
        for skel_path in _bound_skeletons(stage, anim):
            _bind(root if not wrapper else layer, layer, skel_path, target, edits)
            retargeted.append(skel_path)
    anim.provenance.mode = mode
    anim.provenance.retargeted_bindings = retargeted
    author_provenance(layer.GetPrimAtPath(target), anim.provenance)
    return {"mode": mode, "result_prim": target, "retargeted_bindings": retargeted}


def _in_place_holder(stage, anim_path: str, shot: str):
    """(spec, offset) of the strongest layer holding the animation's samples, which --in-place writes."""
    from pxr import Usd

    prim = stage.GetPrimAtPath(anim_path)
    holders = []
    for name in layering.CHANNEL_NAMES:
        for spec, offset in prim.GetAttribute(name).GetPropertyStackWithLayerOffsets(Usd.TimeCode.EarliestTime()):
            if spec.HasInfo("timeSamples"):
                holders.append((spec, offset))
                break
    if not holders:
        raise InputError("no layer holds time samples for this animation", file=shot, prim=anim_path)
    spec, offset = holders[0]  # the strongest holder wins value resolution, so all channels go there
    path = spec.layer.realPath
    if not path or not layering.is_writable_layer(path):
        raise InputError(f"--in-place needs a writable layer, but the samples live in {spec.layer.identifier}",
                         file=shot, prim=anim_path)
    return spec, offset


def preflight(shot: str, stage, anim_paths: list[str], options, tx) -> None:
    """Make the checks :func:`write_result` makes on where it writes, before the prior runs.

    A refused ``-o`` (an existing file, a read-only folder, the shot itself) or an in-place layer that
    cannot be written is exit 2 at once instead of after minutes (or hours) of computation.
    """
    shot = os.path.abspath(shot)
    if _has_control(os.path.basename(shot)):  # provenance names the shot by an asset path
        raise InputError("the file name holds a control character (a line break?), which USD cannot store as an "
                         "asset path: rename the file", file=shot)
    if options.in_place:
        for anim_path in anim_paths:
            spec, _ = _in_place_holder(stage, anim_path, shot)
            _refuse_link(spec.layer.realPath, shot)
            tx.check_edit(spec.layer.realPath)
        return
    output = os.path.abspath(options.output or layering.default_output(shot, tx.command))
    _check_output(shot, stage, output, tx)
    tx.check_create(output, force=getattr(options, "force", False))


def _refuse_link(path: str, shot: str) -> None:
    """A layer we would edit through a symbolic link must name a file in the shot's folder (the link is kept)."""
    real, folder = os.path.realpath(path), os.path.realpath(os.path.dirname(shot))
    if os.path.islink(path) and os.path.dirname(real) != folder and not real.startswith(folder + os.sep):
        raise InputError(f"{path} is a symbolic link to {real}, outside the shot's folder: anymole-usd writes only "
                         "inside it; run it where that file lives", file=shot)


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _check_output(shot: str, stage, output: str, tx) -> None:
    if output == shot:
        raise InputError("--output must differ from the shot itself (use --in-place for that)", file=shot)
    wrapper = not layering.is_writable_layer(shot)
    for entry in [layering.sublayer_entry(output, shot) if wrapper else layering.sublayer_entry(shot, output)]:
        if _has_control(entry):  # USD refuses such an asset path (was exit 1)
            raise InputError(f"{entry!r} cannot be a USD sublayer path (control character); rename the file or "
                             "pass -o with a plain name", file=shot)
    used = {os.path.abspath(l.realPath.split("[", 1)[0]) for l in stage.GetUsedLayers() if l.realPath}
    if output in used and not tx.owns(output):
        raise InputError("is a layer the shot itself uses; choose another -o", file=output)


def _author_in_place(stage, anim: ResultAnimation, shot: str, tx, layers: dict) -> dict:
    spec, offset = _in_place_holder(stage, anim.anim_path, shot)
    layer = spec.layer
    path = layer.realPath
    prim_path = str(spec.path.GetPrimPath())
    write_channels(layer, prim_path, anim.result.times, _channels(stage, anim, anim.anim_path),
                   time_scale=offset.scale, time_offset=offset.offset)
    anim.provenance.mode = "inPlace"
    anim.provenance.source_layer = os.path.basename(path)
    author_provenance(layer.GetPrimAtPath(prim_path), anim.provenance)
    generated = anim.generated_times if anim.generated_times is not None else anim.result.times
    local = (np.asarray(generated, dtype=float) - offset.offset) / offset.scale
    entry = layers.setdefault(path, (layer, {"in_place": {}}))
    entry[1]["in_place"][prim_path] = {"times": [float(t) for t in local]}
    return {"mode": "inPlace", "result_prim": anim.anim_path, "layer": path}


def write_result(shot: str, stage, animations: list[ResultAnimation], options, tx) -> dict:
    """Author every animation and hand the files to ``tx`` (a begun Transaction), then commit."""
    from pxr import Sdf

    from . import __version__

    shot = os.path.abspath(shot)
    # Edit a copy of the root layer: the stage must not compose a result layer that is not written yet.
    root = Sdf.Layer.CreateAnonymous(".usda")
    root.TransferContent(stage.GetRootLayer())
    report: dict = {"shot": shot, "animations": [], "output": None, "edits": None}
    if options.in_place:
        layers: dict = {}
        for anim in animations:
            report["animations"].append(_author_in_place(stage, anim, shot, tx, layers))
        for path, (layer, edits) in layers.items():
            tx.edit_layer(path, layer, edits, minimal=False)
        tx.commit()
        report["output"] = sorted(layers)
        return report

    wrapper = not layering.is_writable_layer(shot)
    output = os.path.abspath(options.output or layering.default_output(shot, tx.command))
    _check_output(shot, stage, output, tx)
    layer = Sdf.Layer.CreateAnonymous(".usda")
    layering.copy_stage_metadata(stage, layer)
    entry = layering.sublayer_entry(shot, output)
    edits = layering.LayerEdits(sublayer=None if wrapper else entry)
    if wrapper:
        layer.subLayerPaths.append(layering.sublayer_entry(output, shot))
    with Sdf.ChangeBlock():
        for anim in animations:
            report["animations"].append(_author_layered(stage, root, layer, anim, wrapper, edits))
    marker = {"version": __version__, "shot": layering.sublayer_entry(output, shot), "tool": tx.command}
    if wrapper:
        marker["wrapperOf"] = os.path.basename(shot)
    data = dict(layer.customLayerData)
    data[layering.MARKER] = marker
    layer.customLayerData = data
    tx.create_layer(output, layer, force=getattr(options, "force", False))
    if not wrapper:
        if entry not in list(root.subLayerPaths):
            root.subLayerPaths.insert(0, entry)
        tx.edit_layer(shot, root, {"sublayer": entry, "relationships": edits.relationships})
    tx.commit()
    report["output"] = output
    report["edits"] = edits.to_dict()
    report["wrapper"] = wrapper
    return report


@contextlib.contextmanager
def session(shot: str, command: str, output: str | None = None):
    """Open ``shot`` for a run that writes a result over it: yields ``(transaction, stage)``.

    The transaction is begun (locks, crash recovery) and the stage shows the
    user's own files, without earlier results of this shot, so a re-run
    replaces instead of stacking.
    """
    from .reading import open_stage
    from .transaction import Transaction

    shot = os.path.abspath(shot)
    writable = layering.is_writable_layer(shot)
    if writable:
        _refuse_link(shot, shot)
    home = None
    if not writable:
        # usdz or read-only: nothing is written beside the shot, its record goes with the wrapper output.
        target = os.path.abspath(output or layering.default_output(shot, command))
        home = os.path.dirname(target)
        if not layering.writable(layering.nearest_folder(target)):
            raise InputError("the shot is read-only and so is its folder: pass -o to write the result elsewhere",
                             file=shot)
    with Transaction(shot, command, home) as tx:
        tx.begin(lock_shot=writable)
        tx.load_bases()
        stage = open_stage(shot)
        yield tx, stage
