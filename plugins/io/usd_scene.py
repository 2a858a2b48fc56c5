"""Reading the COMPOSED animation of a USD stage as a Scene, for exporters.

The skeleton and its bound animation come from :mod:`anymole_usd.reading`
(UsdSkel queries resolve ``skel:animationSource`` wherever it is bound, so an
in-between result retargeted or layered over the shot is what gets exported).
Skinned meshes come from UsdSkel's skinning queries.
"""
from __future__ import annotations

import os

import numpy as np

from anymole_usd.authoring import SkinnedMesh
from anymole_usd.errors import InputError
from anymole_usd.reading import authored_times, find_bindings, open_stage, read_motion

from .base import Scene

def _select(bindings, prim: str | None, file: str):
    animated = [b for b in bindings if b.animation_path]
    if prim is not None:
        prim = prim.rstrip("/") or "/"
        hits = [b for b in bindings
                if prim in (b.skeleton_path, b.animation_path, b.skel_root_path)
                or b.skeleton_path.startswith(prim + "/")]
        if not hits:
            known = ", ".join(b.skeleton_path for b in bindings) or "none"
            raise InputError(f"no Skeleton at or under {prim} (skeletons: {known})", file=file)
        animated = [b for b in hits if b.animation_path]
        if not animated:
            raise InputError("the skeleton has no bound SkelAnimation: nothing to export", file=file,
                             prim=hits[0].skeleton_path)
    if not animated:
        if not bindings:
            raise InputError("no UsdSkel Skeleton in the stage: nothing to export", file=file)
        raise InputError("no Skeleton in the stage has a bound SkelAnimation: nothing to export", file=file,
                         prim=bindings[0].skeleton_path)
    return animated[0], [b.skeleton_path for b in animated[1:]]


def read_usd_scene(path: str | os.PathLike, prim: str | None = None, uniform: bool = False) -> Scene:
    """The composed skeleton animation (and skinned meshes) of one Skeleton in a stage.

    ``prim`` names the Skeleton, its SkelRoot (or an ancestor) or its animation;
    default: the first animated Skeleton. With ``uniform`` the animation is
    read on every integer timecode between its first and last authored sample
    (UsdSkel interpolation in between), otherwise at the authored times.
    """
    from pxr import UsdGeom

    file = os.fspath(path)
    stage = open_stage(file)
    binding, others = _select(find_bindings(stage, file=file), prim, file)
    anim_prim = stage.GetPrimAtPath(binding.animation_path)
    times = authored_times(anim_prim)
    if len(times) == 0:
        raise InputError("the bound SkelAnimation has no time samples: nothing to export", file=file,
                         prim=binding.animation_path)
    if uniform:
        times = np.arange(np.ceil(times[0] - 1e-3), np.floor(times[-1] + 1e-3) + 1.0) + 0.0  # no -0.0
    motion = read_motion(stage, binding, times=times, file=file)
    skel_prim = stage.GetPrimAtPath(binding.skeleton_path)
    # customData keys with ':' nest: "anymole:bvh" is {"anymole": {"bvh": {...}}}.
    custom = {f"anymole:{k}": _plain(v) for k, v in (skel_prim.GetCustomDataByKey("anymole") or {}).items()}
    notes = [f"exported {binding.skeleton_path}; other animated skeletons: {', '.join(others)}"] if others else []
    return Scene(
        skeleton=binding.skeleton,
        animations={anim_prim.GetName(): motion},
        bound=anim_prim.GetName(),
        up_axis=str(UsdGeom.GetStageUpAxis(stage)),
        meters_per_unit=float(UsdGeom.GetStageMetersPerUnit(stage)),
        meshes=_skinned_meshes(stage, binding),
        skeleton_custom_data=custom,
        notes=notes,
    )


def _plain(value):
    """customData values (VtArrays, nested dicts) -> lists/numpy, so exporters need no pxr types."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)):
        return value
    items = list(value) if hasattr(value, "__len__") else None
    if items is not None and all(isinstance(v, str) for v in items):
        return [str(v) for v in items]
    try:
        return np.asarray(value)
    except Exception:  # an unusual value type: keep it as is
        return value


def _skinned_meshes(stage, binding) -> list[SkinnedMesh]:
    from pxr import Usd, UsdGeom, UsdSkel

    if not binding.skel_root_path:
        return []
    cache = UsdSkel.Cache()
    root = UsdSkel.Root(stage.GetPrimAtPath(binding.skel_root_path))
    cache.Populate(root, Usd.PrimDefaultPredicate)
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath(binding.skeleton_path))
    skel_binding = cache.ComputeSkelBinding(root, skel, Usd.PrimDefaultPredicate)
    lookup = {j: i for i, j in enumerate(binding.skeleton.joints)}
    meshes = []
    for query in skel_binding.GetSkinningTargets():
        prim = query.GetPrim()
        if not prim.IsA(UsdGeom.Mesh):
            continue
        mesh = UsdGeom.Mesh(prim)
        points = np.asarray(mesh.GetPointsAttr().Get(Usd.TimeCode.Default()) or [], dtype=np.float64).reshape(-1, 3)
        if not len(points) or not query.HasJointInfluences():
            continue
        influences = query.ComputeVaryingJointInfluences(len(points), Usd.TimeCode.Default())
        if not influences:
            continue
        idx, wts = (np.asarray(a) for a in influences)
        k = query.GetNumInfluencesPerComponent()
        idx, wts = idx.reshape(len(points), k), wts.reshape(len(points), k)
        order = query.GetJointOrder()
        if order:  # mesh-level skel:joints: map onto the skeleton's order
            remap = np.array([lookup.get(str(j), 0) for j in order], dtype=np.int64)
            idx = remap[idx]
        normals = mesh.GetNormalsAttr().Get()
        normals = (np.asarray(normals, dtype=np.float64)
                   if normals is not None and mesh.GetNormalsInterpolation() in ("vertex", "varying")
                   and len(normals) == len(points) else None)
        st = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st")
        uvs = None
        if st and st.HasValue() and st.GetInterpolation() in ("vertex", "varying"):
            value = st.ComputeFlattened()
            if value is not None and len(value) == len(points):
                uvs = np.asarray(value, dtype=np.float64)
        meshes.append(SkinnedMesh(
            name=prim.GetName(), points=points,
            face_vertex_counts=np.asarray(mesh.GetFaceVertexCountsAttr().Get(), dtype=np.int64),
            face_vertex_indices=np.asarray(mesh.GetFaceVertexIndicesAttr().Get(), dtype=np.int64),
            joint_indices=idx, joint_weights=wts, normals=normals, uvs=uvs,
            geom_bind_transform=np.asarray(query.GetGeomBindTransform(), dtype=np.float64),
        ))
    return meshes
