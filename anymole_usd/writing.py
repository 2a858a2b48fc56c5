"""Motion -> result layer: authoring the filled animation with the strategy layering.py describes."""
from __future__ import annotations

import os

import numpy as np

from . import layering
from .animation_specs import copy_attribute, read_channels, to_animation_order, write_channels
from .errors import InputError
from .schema import Provenance, author_provenance


def _channels(stage, job) -> tuple[np.ndarray, dict]:
    from pxr import UsdSkel

    anim = UsdSkel.Animation(stage.GetPrimAtPath(job.anim_path))
    a2s = job.binding.anim_to_skel
    if a2s is None:
        a2s = np.arange(job.binding.skeleton.num_joints)
    original = None
    if np.any(a2s < 0):  # joints the skeleton lacks: keep their composed values
        getters = {"translations": anim.GetTranslationsAttr(), "rotations": anim.GetRotationsAttr(),
                   "scales": anim.GetScalesAttr()}
        original = read_channels(getters, job.result.times)
    return job.result.times, to_animation_order(job.result, a2s, original)


def _provenance(job, shot: str, mode: str, source_layer: str, options, retargeted=()) -> Provenance:
    from . import __version__

    tl = job.timeline
    return Provenance(
        prior=job.prior, parameters=job.parameters, tool_version=__version__, source_layer=source_layer,
        source_prim=job.anim_path, mode=mode, context_range=tl.context, keyframes=[float(k) for k in tl.keys],
        generated_times=[float(t) for t in tl.generated_times], seed=options.seed,
        retargeted_bindings=list(retargeted),
    )


def _bound_skeletons(stage, anim_path: str) -> list[str]:
    from .reading import find_bindings

    return [b.skeleton_path for b in find_bindings(stage) if b.animation_path == anim_path]


def _author_layered(stage, root, layer, job, shot, options, wrapper: bool, edits: layering.LayerEdits) -> dict:
    from pxr import Sdf

    times, channels = _channels(stage, job)
    source_layer = os.path.basename(shot)
    if wrapper or not layering.root_has_channel_opinion(root, job.anim_path):
        mode = "wrapper" if wrapper else "override"
        write_channels(layer, job.anim_path, times, channels)
        target = job.anim_path
        retargeted: list[str] = []
    else:
        mode = "retarget"
        target = layering.retarget_path(stage, job.anim_path)
        write_channels(layer, target, times, channels, define=True)
        spec = layer.GetPrimAtPath(target)
        src = stage.GetPrimAtPath(job.anim_path)
        for name in ("joints", "blendShapes", "blendShapeWeights"):
            copy_attribute(src.GetAttribute(name), spec)
        retargeted = []
        for skel_path in _bound_skeletons(stage, job.anim_path):
            rel = layering.root_binding_spec(root, skel_path)
            if rel is not None:
                # The root layer binds this skeleton itself: the one unavoidable in-place edit.
                edits.relationships[skel_path] = [str(p) for p in rel.targetPathList.GetAddedOrExplicitItems()]
                rel.targetPathList.explicitItems = [Sdf.Path(target)]
            else:
                skel_spec = Sdf.CreatePrimInLayer(layer, skel_path)
                ops = Sdf.TokenListOp()
                ops.prependedItems = ["SkelBindingAPI"]
                skel_spec.SetInfo("apiSchemas", ops)
                rel_spec = Sdf.RelationshipSpec(skel_spec, "skel:animationSource", custom=False)
                rel_spec.targetPathList.explicitItems = [Sdf.Path(target)]
            retargeted.append(skel_path)
    author_provenance(layer.GetPrimAtPath(target), _provenance(job, shot, mode, source_layer, options, retargeted))
    return {"mode": mode, "result_prim": target, "retargeted_bindings": retargeted}


def _author_in_place(stage, job, shot, options, touched: dict) -> dict:
    from pxr import Usd

    prim = stage.GetPrimAtPath(job.anim_path)
    holders = []
    for name in layering.CHANNEL_NAMES:
        for spec, offset in prim.GetAttribute(name).GetPropertyStackWithLayerOffsets(Usd.TimeCode.EarliestTime()):
            if spec.HasInfo("timeSamples"):
                holders.append((spec, offset))
                break
    if not holders:
        raise InputError("no layer holds time samples for this animation", file=shot, prim=job.anim_path)
    # The strongest holder wins value resolution, so all channels go there.
    spec, offset = holders[0]
    layer = spec.layer
    path = layer.realPath
    if not path or not layering.is_writable_layer(path):
        raise InputError(f"--in-place needs a writable layer, but the samples live in {layer.identifier}",
                         file=shot, prim=job.anim_path)
    if path not in touched:
        touched[path] = (layer, layering.make_backup(path))
    times, channels = _channels(stage, job)
    write_channels(layer, spec.path.GetPrimPath(), times, channels, time_scale=offset.scale,
                   time_offset=offset.offset)
    author_provenance(layer.GetPrimAtPath(spec.path.GetPrimPath()),
                      _provenance(job, shot, "inPlace", os.path.basename(path), options))
    return {"mode": "inPlace", "result_prim": job.anim_path, "layer": path, "backup": touched[path][1]}


def write_result(shot: str, stage, jobs: list, options, stale: list[str]) -> dict:
    """Author every filled job and compose it; all file writes are atomic."""
    from pxr import Sdf

    from . import __version__

    root = stage.GetRootLayer()
    report = {"shot": shot, "animations": [], "output": None, "edits": None}
    if options.in_place:
        touched: dict = {}
        for job in jobs:
            report["animations"].append(_author_in_place(stage, job, shot, options, touched))
        for path, (layer, _) in touched.items():
            layering.atomic_export(layer, path)
        report["output"] = sorted(touched)
        return report

    wrapper = not layering.is_writable_layer(shot)
    output = os.path.abspath(options.output or layering.default_output(shot))
    if os.path.abspath(output) == os.path.abspath(shot):
        raise InputError("--output must differ from the shot itself (use --in-place for that)", file=shot)
    layer = Sdf.Layer.CreateAnonymous(".usda")
    layering.copy_stage_metadata(stage, layer)
    entry = layering.sublayer_entry(shot, output)
    edits = layering.LayerEdits(sublayer=None if wrapper else entry)
    if wrapper:
        layer.subLayerPaths.append(layering.sublayer_entry(output, shot))
    with Sdf.ChangeBlock():
        for job in jobs:
            report["animations"].append(_author_layered(stage, root, layer, job, shot, options, wrapper, edits))
    marker = {"version": __version__, "rootEdits": edits.to_layer_data(), "source": os.path.basename(shot)}
    if wrapper:
        marker["wrapperOf"] = os.path.basename(shot)
    data = dict(layer.customLayerData)
    data[layering.MARKER] = marker
    layer.customLayerData = data
    layering.atomic_export(layer, output)
    if not wrapper:
        if entry not in list(root.subLayerPaths):
            root.subLayerPaths.insert(0, entry)
        layering.atomic_export(root, shot)
        root.Reload(force=True)
    for path in stale:
        if os.path.abspath(path) != output and os.path.exists(path):
            os.remove(path)
    report["output"] = output
    report["edits"] = edits.to_dict()
    report["wrapper"] = wrapper
    return report
