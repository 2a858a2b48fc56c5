"""Builders for small test shots from the real CesiumMan walk (CC-BY 4.0, Cesium).

Each builder writes the same sparse animation (context + keys) but puts the
samples in a different place: the root layer, a sublayer, or a referenced file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pxr import Sdf, Usd, UsdGeom, UsdSkel

SRC_SKEL = "/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3/Skeleton"
SRC_ANIM = "/CesiumMan/Animations/skelAnim_0"
CONTEXT = list(range(1, 25))
KEYS = [36, 48]


_STAGES: dict = {}


def _source(data_dir: Path):
    # Keep the source stage alive: prims of a collected stage expire.
    stage = _STAGES.setdefault(str(data_dir), Usd.Stage.Open(str(data_dir / "usd" / "CesiumMan.usdz")))
    return UsdSkel.Skeleton(stage.GetPrimAtPath(SRC_SKEL)), UsdSkel.Animation(stage.GetPrimAtPath(SRC_ANIM))


def _stage_meta(layer) -> None:
    layer.timeCodesPerSecond = 24
    layer.framesPerSecond = 24
    layer.startTimeCode, layer.endTimeCode = 1, 48
    layer.pseudoRoot.SetInfo("upAxis", "Y")
    layer.pseudoRoot.SetInfo("metersPerUnit", 1.0)


def author_character(stage, data_dir: Path, root: str = "/Char", times=None, bind: bool = True):
    """SkelRoot + Skeleton + SkelAnimation with samples at ``times`` (default context + keys)."""
    skel_src, anim_src = _source(data_dir)
    UsdGeom.Xform.Define(stage, root)
    skel_root = UsdSkel.Root.Define(stage, f"{root}/Rig")
    skel = UsdSkel.Skeleton.Define(stage, f"{root}/Rig/Skel")
    for name in ("joints", "bindTransforms", "restTransforms"):
        skel.GetPrim().CreateAttribute(name, skel_src.GetPrim().GetAttribute(name).GetTypeName()).Set(
            skel_src.GetPrim().GetAttribute(name).Get())
    anim = UsdSkel.Animation.Define(stage, f"{root}/Rig/Anim")
    anim.GetJointsAttr().Set(anim_src.GetJointsAttr().Get())
    for t in times if times is not None else CONTEXT + KEYS:
        anim.GetTranslationsAttr().Set(anim_src.GetTranslationsAttr().Get(t), t)
        anim.GetRotationsAttr().Set(anim_src.GetRotationsAttr().Get(t), t)
        anim.GetScalesAttr().Set(anim_src.GetScalesAttr().Get(t), t)
    if bind:
        UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])
    return skel_root, skel, anim


def shot_root(tmp: Path, data_dir: Path, times=None) -> Path:
    """Samples and binding authored in the shot's root layer."""
    path = tmp / "shot.usda"
    layer = Sdf.Layer.CreateNew(str(path))
    _stage_meta(layer)
    stage = Usd.Stage.Open(layer)
    author_character(stage, data_dir, times=times)
    layer.Save()
    return path


def shot_sublayer(tmp: Path, data_dir: Path) -> tuple[Path, Path]:
    """Samples in anim.usda, sublayered by an otherwise empty shot.usda."""
    anim_path = tmp / "anim.usda"
    layer = Sdf.Layer.CreateNew(str(anim_path))
    _stage_meta(layer)
    author_character(Usd.Stage.Open(layer), data_dir)
    layer.Save()
    shot = tmp / "shot.usda"
    root = Sdf.Layer.CreateNew(str(shot))
    _stage_meta(root)
    root.subLayerPaths.append("./anim.usda")
    root.Save()
    return shot, anim_path


def shot_reference(tmp: Path, data_dir: Path) -> tuple[Path, Path]:
    """Samples in char.usda, referenced into /Shot/Hero of shot.usda."""
    char_path = tmp / "char.usda"
    layer = Sdf.Layer.CreateNew(str(char_path))
    _stage_meta(layer)
    stage = Usd.Stage.Open(layer)
    author_character(stage, data_dir, root="/Char")
    layer.defaultPrim = "Char"
    layer.Save()
    shot = tmp / "shot.usda"
    root = Sdf.Layer.CreateNew(str(shot))
    _stage_meta(root)
    stage = Usd.Stage.Open(root)
    hero = stage.DefinePrim("/Shot/Hero")
    hero.GetReferences().AddReference("./char.usda")
    root.Save()
    return shot, char_path


def composed_samples(path: Path, prim_hint: str = "Skel") -> dict[float, np.ndarray]:
    """Skel-space joint transforms composed by UsdSkel at every integer time 1..48."""
    stage = Usd.Stage.Open(str(path))
    cache = UsdSkel.Cache()
    out = {}
    for prim in stage.Traverse():
        if prim.IsA(UsdSkel.Root):
            cache.Populate(UsdSkel.Root(prim), Usd.TraverseInstanceProxies())
    for prim in stage.Traverse():
        if prim.IsA(UsdSkel.Skeleton) and prim.GetName() == prim_hint:
            query = cache.GetSkelQuery(UsdSkel.Skeleton(prim))
            for t in range(1, 49):
                out[float(t)] = np.asarray(query.ComputeJointLocalTransforms(t))
    return out
