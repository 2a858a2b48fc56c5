"""Rebuild the imported example shots from ../shared/data (AnyMoLe protocol: 2 s of context,
then keyframes every 1 s).

    python examples/make_examples.py [--data ../shared/data] [--only cmu|fox]

cmu_01_01/  CMU 01_01.bvh, source frames 120-840 (seconds 1-7) resampled 120 -> 30 fps,
            timecodes rebased to 0..180. shot.usda keeps frames 0-60 (context) and 90, 120, 150,
            180 (keys); reference.usdc holds all 181 frames (ground truth for `anymole-usd eval`).
fox/        Fox.glb "Walk" (a 17-frame in-place cycle at 24 fps) looped to 5 s = 121 frames, with
            the skinned mesh. shot.usda keeps frames 0-48 (context) and 72, 96, 120 (keys);
            reference.usdc holds all 121 frames.

Both go through the same library calls as `anymole-usd import` (read_file + write_skel_stage),
then keep only the shot's samples.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from anymole_usd.authoring import write_skel_stage
from anymole_usd.motion import Motion
from anymole_usd.plugins.io.base import ImportOptions, Scene
from anymole_usd.plugins.io.convert import read_file

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.environ.get("ANYMOLE_USD_DATA",
                              os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "data"))
CMU_METERS_PER_UNIT = 0.0254 / 0.45  # CMU's ASF: lengths are inches / 0.45


def protocol_times(fps: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(context timecodes 0..2 s, key timecodes every 1 s after the context up to ``seconds``)."""
    context = np.arange(0, round(2 * fps) + 1, dtype=np.float64)
    keys = np.arange(round(3 * fps), round(seconds * fps) + 1, round(fps), dtype=np.float64)
    return context, keys


def rebased(motion: Motion) -> Motion:
    out = motion.copy()
    out.times = out.times - out.times[0]
    return out


def write_pair(folder: str, scene: Scene, label: str, motion: Motion, meters_per_unit: float,
               source: str, seconds: float) -> None:
    os.makedirs(folder, exist_ok=True)
    context, keys = protocol_times(motion.fps, seconds)
    shot = motion.at_times(np.concatenate([context, keys]))
    common = dict(fps=motion.fps, up_axis=scene.up_axis, meters_per_unit=meters_per_unit, meshes=scene.meshes,
                  skeleton_custom_data=scene.skeleton_custom_data)
    note = f"Made by examples/make_examples.py from {source}"
    write_skel_stage(os.path.join(folder, "shot.usda"), scene.skeleton, {label: shot}, label, comment=note,
                     layer_custom_data={"anymole:source": source}, **common)
    write_skel_stage(os.path.join(folder, "reference.usdc"), scene.skeleton, {label: motion}, label,
                     comment=note + " (every frame: ground truth)", layer_custom_data={"anymole:source": source},
                     **common)
    print(f"wrote {folder}: context 0-{context[-1]:g}, keys {', '.join(f'{k:g}' for k in keys)} at {motion.fps:g} fps")


def make_cmu(data: str) -> None:
    src = os.path.join(data, "bvh", "humanoid", "cmu", "01_01.bvh")
    scene, _ = read_file(src, ImportOptions(frames=slice(120, 841), fps=30.0))
    label = "cmu_01_01"
    motion = rebased(scene.motion)
    write_pair(os.path.join(HERE, "cmu_01_01"), scene, label, motion, CMU_METERS_PER_UNIT, "CMU 01_01.bvh", 6.0)


def make_fox(data: str) -> None:
    src = os.path.join(data, "gltf", "Fox.glb")
    scene, _ = read_file(src, ImportOptions(fps=24.0, animation="Walk"))
    cycle = scene.animations["Walk"]
    period = len(cycle.times) - 1  # the last key repeats the first: one period is 17 frames
    n = 5 * 24 + 1
    idx = np.arange(n) % period
    looped = Motion(times=np.arange(n, dtype=np.float64), rotations=cycle.rotations[idx],
                    translations=cycle.translations[idx], scales=cycle.scales[idx], fps=24.0,
                    joints=list(cycle.joints))
    # Fox.glb is modelled in centimetres although glTF means metres: say so, the fox is 0.8 m tall.
    write_pair(os.path.join(HERE, "fox"), scene, "Walk", looped.normalized(), 0.01, "Fox.glb (Walk, looped)", 5.0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--only", choices=["cmu", "fox"])
    args = parser.parse_args()
    if args.only in (None, "cmu"):
        make_cmu(args.data)
    if args.only in (None, "fox"):
        make_fox(args.data)
