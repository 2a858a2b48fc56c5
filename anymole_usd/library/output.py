"""Writing a composition as a new USD stage, atomically, with provenance.

The stage is what ``anymole-usd import`` writes (``authoring.write_skel_stage``:
SkelRoot, Skeleton, the skinned meshes of the character when its clip has
them, one bound SkelAnimation, timeCodesPerSecond, upAxis Y, metersPerUnit)
plus provenance: the ``AnyMoLeInbetweenAPI`` schema on the SkelAnimation
(tool ``compose``, the request and every segment in ``details["compose"]``) and
``customLayerData["anymole"]["compose"]``, the mark that lets a later compose
replace the file. Any other existing file is refused unless ``force``.
"""
from __future__ import annotations

import os
import tempfile

from anymole_usd.authoring import USD_EXTENSIONS, write_skel_stage
from anymole_usd.errors import InputError

ANIMATION = "Composed"


def is_composition(path: str) -> bool:
    """Whether ``path`` is a stage an earlier compose wrote."""
    from pxr import Sdf

    try:
        layer = Sdf.Layer.OpenAsAnonymous(path)
    except Exception:  # unreadable: not ours
        return False
    if layer is None:
        return False
    data = layer.customLayerData or {}
    nested = data.get("anymole")
    return isinstance(nested, dict) and "compose" in nested


def check_output(path: str, force: bool) -> None:
    if os.path.splitext(path)[1].lower() not in USD_EXTENSIONS:
        raise InputError(f"output must end in {', '.join(USD_EXTENSIONS)}", file=path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError("output folder does not exist", file=path)
    if os.path.exists(path) and not force and not is_composition(path):
        raise InputError("exists and is not an earlier compose output: refusing to overwrite (use --force)",
                         file=path)


def write_composition(comp, path: str, request, force: bool = False) -> dict:
    """Write ``comp`` (a :class:`~.compose.Composition`) to ``path``; returns the written prim paths."""
    from pxr import Sdf

    from anymole_usd import __version__
    from anymole_usd.schema import Provenance, author_provenance

    check_output(path, force)
    summary = {"library": os.path.abspath(request.library), "skeleton": comp.skeleton_name,
               "duration": request.duration, "fps": comp.fps, "seed": request.seed, "tags": request.tags or "",
               "keys": os.path.abspath(request.keys) if request.keys else "",
               "music": os.path.abspath(request.music) if request.music else "",
               "transition_prior": request.transition_prior or "", "tool_version": __version__}
    folder = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    try:
        paths = write_skel_stage(
            tmp, comp.skeleton, {ANIMATION: comp.motion}, ANIMATION, fps=comp.fps, up_axis="Y",
            meters_per_unit=comp.meters_per_unit, meshes=comp.meshes,
            layer_custom_data={"anymole": {"compose": dict(summary)}},
            comment=f"Composed by anymole-usd {__version__} from the motion library {summary['library']}")
        layer = Sdf.Layer.FindOrOpen(tmp)
        prov = Provenance(prior=request.transition_prior or "motion-graph", parameters={"seed": request.seed},
                          tool_version=__version__, source_layer=summary["library"], source_prim="",
                          mode="compose", keyframes=[float(x) for x in comp.key_times * comp.fps],
                          generated_times=[float(x) for x in comp.motion.times], seed=request.seed, tool="compose",
                          details={"compose": {**summary, "segments": comp.segments}})
        author_provenance(layer.GetPrimAtPath(paths["animation"]), prov)
        if not layer.Save():
            raise OSError(f"could not write {path}")
        from anymole_usd.atomic_files import mode_for

        os.chmod(tmp, mode_for(path))  # mkstemp made it 0600: the stage is shared like any file the user makes
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return paths
