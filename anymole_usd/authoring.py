"""Writing a new UsdSkel stage from a Skeleton, Motions and optional skinned meshes.

Layout of the written stage (default prim ``/<root_name>``)::

    /Character                     SkelRoot
        Skeleton                   Skeleton, skel:animationSource -> the bound animation
        Animations/<name>          SkelAnimation, one per motion
        <mesh name>                Mesh with SkelBindingAPI (skel:skeleton -> Skeleton)

Structure is authored with the Usd API on an in-memory stage; the bulk time
samples go through the Sdf API inside one ``Sdf.ChangeBlock`` with
``Vt.*Array.FromNumpy`` (USD's per-sample API is the only per-frame loop).
Attributes that do not change over time (scales of ones, the translations of
a clip without root motion) are authored once as a default value. The file is
exported to a temporary file in the destination folder and moved into place,
so a failure never leaves a partial file.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .errors import InputError
from .motion import Motion
from .skeleton import Skeleton

USD_EXTENSIONS = (".usda", ".usdc", ".usd")


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[str]:
    """Yield a staging path beside ``path``; move it onto ``path`` only if the block succeeds.

    Staged by :class:`atomic_files.Staged`: umask-honouring, and a killed run's
    leftovers are recognised and cleaned by the next run.
    """
    from .atomic_files import Staged

    dest = os.path.abspath(os.fspath(path))
    if not os.path.isdir(os.path.dirname(dest)):
        raise InputError("output folder does not exist", file=os.fspath(path))
    try:
        staged = Staged(dest)
    except OSError as exc:
        raise InputError(f"cannot write the output folder ({exc.strerror})", file=os.fspath(path)) from None
    try:
        yield staged.path
        staged.install()
    finally:
        staged.discard()


@dataclass
class SkinnedMesh:
    """A mesh skinned to the skeleton; joint indices are in skeleton joint order."""

    name: str
    points: np.ndarray  # (V, 3)
    face_vertex_counts: np.ndarray  # (F,)
    face_vertex_indices: np.ndarray  # (sum counts,)
    joint_indices: np.ndarray  # (V, k) int
    joint_weights: np.ndarray  # (V, k)
    normals: np.ndarray | None = None  # (V, 3), vertex interpolation
    uvs: np.ndarray | None = None  # (V, 2), vertex interpolation, USD convention (v up)
    geom_bind_transform: np.ndarray | None = None  # (4, 4) row-vector; identity when None


def prim_name(name: str, fallback: str = "Anim") -> str:
    """A valid USD prim name for an arbitrary label."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name or "")
    if not ident:
        ident = fallback
    return "_" + ident if ident[0].isdigit() else ident


def unique_prim_names(labels: list[str], fallback: str = "Anim") -> list[str]:
    out: list[str] = []
    for label in labels:
        base = prim_name(label, fallback)
        name, k = base, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out.append(name)
    return out


def write_skel_stage(
    path: str | os.PathLike,
    skeleton: Skeleton,
    animations: dict[str, Motion],
    bound: str | None = None,
    fps: float | None = None,
    up_axis: str = "Y",
    meters_per_unit: float = 0.01,
    meshes: list[SkinnedMesh] | None = None,
    *,
    root_name: str = "Character",
    skeleton_name: str = "Skeleton",
    skeleton_custom_data: dict | None = None,
    layer_custom_data: dict | None = None,
    comment: str = "",
) -> dict[str, str]:
    """Author a new stage at ``path`` (.usda/.usdc/.usd) and return the prim paths written.

    ``animations`` maps a label to a Motion in skeleton joint order; each becomes
    a SkelAnimation under ``/<root>/Animations`` (label made a valid prim name,
    the original kept in customData ``anymole:sourceName``). ``bound`` picks the
    label bound through ``skel:animationSource`` (default: the first).
    ``fps`` is timeCodesPerSecond/framesPerSecond (default: the bound motion's);
    start/endTimeCode span the bound motion's times. Returns
    ``{"skel_root", "skeleton", "animation", "animations": {label: path}, "meshes": [...]}``.
    """
    from pxr import Sdf, Usd, UsdGeom, UsdSkel, Vt

    out_path = os.fspath(path)
    if os.path.splitext(out_path)[1].lower() not in USD_EXTENSIONS:
        raise InputError(f"output must end in {', '.join(USD_EXTENSIONS)}", file=out_path)
    if up_axis not in ("Y", "Z"):
        raise InputError(f"up axis must be Y or Z, got {up_axis!r}", file=out_path)
    labels = list(animations)
    if bound is None and labels:
        bound = labels[0]
    if bound is not None and bound not in animations:
        raise InputError(f"no animation named {bound!r} (available: {', '.join(labels) or 'none'})", file=out_path)
    for label, motion in animations.items():
        if motion.num_joints != skeleton.num_joints:
            raise ValueError(f"animation {label!r} has {motion.num_joints} joints, skeleton {skeleton.num_joints}")
    bound_motion = animations[bound] if bound is not None else None
    if fps is None:
        fps = bound_motion.fps if bound_motion is not None else 24.0

    stage = Usd.Stage.CreateInMemory()
    layer = stage.GetRootLayer()
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    if bound_motion is not None and bound_motion.num_frames:
        stage.SetStartTimeCode(float(bound_motion.times.min()))
        stage.SetEndTimeCode(float(bound_motion.times.max()))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y if up_axis == "Y" else UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, float(meters_per_unit))
    if comment:
        layer.comment = comment
    if layer_custom_data:
        layer.customLayerData = dict(layer_custom_data)

    root_path = Sdf.Path("/" + prim_name(root_name, "Character"))
    skel_root = UsdSkel.Root.Define(stage, root_path)
    stage.SetDefaultPrim(skel_root.GetPrim())
    skel_path = root_path.AppendChild(prim_name(skeleton_name, "Skeleton"))
    skel = UsdSkel.Skeleton.Define(stage, skel_path)
    skel.CreateJointsAttr(Vt.TokenArray(list(skeleton.joints)))
    skel.CreateJointNamesAttr(Vt.TokenArray(list(skeleton.short_names)))
    skel.CreateRestTransformsAttr(Vt.Matrix4dArray.FromNumpy(np.ascontiguousarray(skeleton.rest_transforms)))
    bind = skeleton.bind_transforms
    if bind is None:
        from .kinematics import compose_local_matrices

        bind = compose_local_matrices(skeleton.rest_transforms[None], skeleton.parents)[0]
    skel.CreateBindTransformsAttr(Vt.Matrix4dArray.FromNumpy(np.ascontiguousarray(bind)))
    for key, value in (skeleton_custom_data or {}).items():
        skel.GetPrim().SetCustomDataByKey(key, _to_vt(value))

    result: dict = {"skel_root": str(root_path), "skeleton": str(skel_path), "animation": None,
                    "animations": {}, "meshes": []}
    anim_scope = root_path.AppendChild("Animations")
    if labels:
        UsdGeom.Scope.Define(stage, anim_scope)
    sample_jobs = []
    for label, name in zip(labels, unique_prim_names(labels)):
        anim_path = anim_scope.AppendChild(name)
        anim = UsdSkel.Animation.Define(stage, anim_path)
        anim.CreateJointsAttr(Vt.TokenArray(list(skeleton.joints)))
        attrs = (anim.CreateTranslationsAttr(), anim.CreateRotationsAttr(), anim.CreateScalesAttr())
        anim.GetPrim().SetCustomDataByKey("anymole:sourceName", str(label))
        motion = animations[label]
        anim.GetPrim().SetCustomDataByKey("anymole:timeCodesPerSecond", float(motion.fps))
        sample_jobs.append((attrs, motion))
        result["animations"][label] = str(anim_path)
    if bound is not None:
        binding = UsdSkel.BindingAPI.Apply(skel.GetPrim())
        binding.CreateAnimationSourceRel().SetTargets([Sdf.Path(result["animations"][bound])])
        result["animation"] = result["animations"][bound]

    for mesh, name in zip(meshes or [], unique_prim_names([m.name for m in meshes or []], "Mesh")):
        result["meshes"].append(_define_mesh(stage, root_path.AppendChild(name), mesh, skel_path, skeleton))

    with Sdf.ChangeBlock():
        for (t_attr, r_attr, s_attr), motion in sample_jobs:
            _write_samples(layer, t_attr.GetPath(), motion.times,
                           motion.translations.astype(np.float32), Vt.Vec3fArray)
            _write_samples(layer, r_attr.GetPath(), motion.times,
                           motion.normalized().rotations.astype(np.float32), Vt.QuatfArray)
            _write_samples(layer, s_attr.GetPath(), motion.times, motion.scales.astype(np.float16), Vt.Vec3hArray)

    with atomic_output(out_path) as tmp:
        if not layer.Export(tmp):
            raise OSError(f"could not write {out_path}")
    return result


def _to_vt(value):
    """Plain Python/numpy custom data -> values USD can store (string/int/double arrays, dicts)."""
    from pxr import Vt

    if isinstance(value, dict):
        return {str(k): _to_vt(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return Vt.StringArray(list(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "iub" and arr.ndim == 1:
            return Vt.IntArray.FromNumpy(arr.astype(np.int32))
        if arr.ndim == 2 and arr.shape[1] == 3:
            return Vt.Vec3dArray.FromNumpy(np.ascontiguousarray(arr, dtype=np.float64))
        return Vt.DoubleArray.FromNumpy(np.ascontiguousarray(arr, dtype=np.float64).reshape(-1))
    return value


def _write_samples(layer, attr_path, times: np.ndarray, values: np.ndarray, array_type) -> None:
    """Time samples for one attribute; a default value alone when nothing changes over time."""
    spec = layer.GetAttributeAtPath(attr_path)
    if len(values) == 0:
        return
    if np.all(values == values[:1]):
        spec.default = array_type.FromNumpy(np.ascontiguousarray(values[0]))
        return
    for t, v in zip(times, values):  # USD stores one sample per call: this loop is USD's, not ours
        layer.SetTimeSample(attr_path, float(t), array_type.FromNumpy(np.ascontiguousarray(v)))


def _define_mesh(stage, path, mesh: SkinnedMesh, skel_path, skeleton: Skeleton) -> str:
    from pxr import Gf, Sdf, UsdGeom, UsdSkel, Vt

    geom = UsdGeom.Mesh.Define(stage, path)
    points = np.ascontiguousarray(mesh.points, dtype=np.float32)
    geom.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(points))
    geom.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(mesh.face_vertex_counts, np.int32)))
    geom.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(np.ascontiguousarray(mesh.face_vertex_indices, np.int32)))
    geom.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)  # game meshes are final polygons
    if len(points):
        geom.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([points.min(0), points.max(0)])))
    if mesh.normals is not None:
        geom.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(mesh.normals, np.float32)))
        geom.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
    if mesh.uvs is not None:
        st = UsdGeom.PrimvarsAPI(geom).CreatePrimvar("st", Sdf.ValueTypeNames.TexCoord2fArray,
                                                     UsdGeom.Tokens.vertex)
        st.Set(Vt.Vec2fArray.FromNumpy(np.ascontiguousarray(mesh.uvs, np.float32)))
    binding = UsdSkel.BindingAPI.Apply(geom.GetPrim())
    k = int(mesh.joint_indices.shape[1])
    binding.CreateJointIndicesPrimvar(False, k).Set(
        Vt.IntArray.FromNumpy(np.ascontiguousarray(mesh.joint_indices.reshape(-1), np.int32)))
    binding.CreateJointWeightsPrimvar(False, k).Set(
        Vt.FloatArray.FromNumpy(np.ascontiguousarray(mesh.joint_weights.reshape(-1), np.float32)))
    gbt = np.eye(4) if mesh.geom_bind_transform is None else np.asarray(mesh.geom_bind_transform, np.float64)
    binding.CreateGeomBindTransformAttr(Gf.Matrix4d(gbt.tolist()))
    binding.CreateSkeletonRel().SetTargets([skel_path])
    return str(path)
