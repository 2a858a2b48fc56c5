"""Rebuild shot.usda: CesiumMan's walk blocked out as 1 s of context and two keyframes.

    python examples/cesiumman/make_shot.py [--source ../shared/data/usd/CesiumMan.usdz]

The shot sublayers the untouched CesiumMan.usdz (CC-BY 4.0, Cesium) and
authors, in its own root layer, a new SkelAnimation holding only frames
1-24 (context) and 36, 48 (keyframes) of the original walk, bound to the
Skeleton. `anymole-usd inbetween shot.usda` then fills frames 25-35 and 37-47.
"""
from __future__ import annotations

import argparse
import os

from pxr import Sdf, Usd, UsdSkel

HERE = os.path.dirname(os.path.abspath(__file__))
SKELETON = "/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3/Skeleton"
SOURCE_ANIM = "/CesiumMan/Animations/skelAnim_0"
BLOCKING = "/CesiumMan/Animations/blocking"
CONTEXT = range(1, 25)
KEYS = (36, 48)


def build(source: str, out: str) -> None:
    src = Usd.Stage.Open(source)
    anim = UsdSkel.Animation(src.GetPrimAtPath(SOURCE_ANIM))
    layer = Sdf.Layer.CreateNew(out)
    layer.subLayerPaths.append("./" + os.path.relpath(source, os.path.dirname(out)))
    layer.timeCodesPerSecond = layer.framesPerSecond = src.GetTimeCodesPerSecond()
    layer.startTimeCode, layer.endTimeCode = 1, 48
    layer.pseudoRoot.SetInfo("upAxis", "Y")
    layer.pseudoRoot.SetInfo("metersPerUnit", 1.0)
    layer.defaultPrim = "CesiumMan"
    stage = Usd.Stage.Open(layer)
    blocking = UsdSkel.Animation.Define(stage, BLOCKING)
    blocking.GetJointsAttr().Set(anim.GetJointsAttr().Get())
    for t in [*CONTEXT, *KEYS]:
        blocking.GetTranslationsAttr().Set(anim.GetTranslationsAttr().Get(t), t)
        blocking.GetRotationsAttr().Set(anim.GetRotationsAttr().Get(t), t)
        blocking.GetScalesAttr().Set(anim.GetScalesAttr().Get(t), t)
    binding = UsdSkel.BindingAPI.Apply(stage.OverridePrim(SKELETON))
    binding.CreateAnimationSourceRel().SetTargets([BLOCKING])
    layer.Save()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=os.path.join(HERE, "CesiumMan.usdz"))
    parser.add_argument("--out", default=os.path.join(HERE, "shot.usda"))
    args = parser.parse_args()
    if os.path.exists(args.out):
        os.remove(args.out)
    build(os.path.abspath(args.source), os.path.abspath(args.out))
    print(f"wrote {args.out}")
