"""Benchmark clips and the in-betweening protocols that cut them into windows.

A :class:`Clip` is one dense ground-truth animation (a BVH file, a bound
SkelAnimation, or one animation of a glTF/GLB file) at a common frame rate,
with its length unit: USD's metersPerUnit, glTF's metres, and for BVH (which
has no unit) the unit guessed from the character's size as ``anymole-usd
import`` guesses it (centimetres for Bandai Namco, CMU's 1/0.45 inch, metres
for Truebones), so lengths in metres (``l2p``) are comparable across clips. A protocol turns a clip into
:class:`Window` s, each a context range and keyframes; every prior is then run
on identical windows (:mod:`anymole_usd.evaluation`).

- ``anymole`` (AnyMoLe, Yun et al. 2025): the first 2 s are context, keyframes
  every 1 s after it, up to 8 s. Long clips give one window per 8 s; a clip
  that ends less than 1 s after its last whole-second key gets its last frame
  as a final key (when at least 5 frames after it), so 2.4-2.8 s clips count.
- ``lafan1`` (Harvey et al. 2020): 10 context frames, one target keyframe after
  a transition of 5, 15, 30 or 45 frames; windows of 65 frames every 40 frames
  (LaFAN1's test windows); a clip shorter than 65 frames gives one window
  holding the lengths that fit.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from . import kinematics
from .metric import character_size, up_vector
from .reading import skel_space_up
from .motion import Motion
from .skeleton import Skeleton

USD_SUFFIXES = (".usd", ".usda", ".usdc", ".usdz")
GLTF_SUFFIXES = (".glb", ".gltf")
# The locomotion set: walks, runs, dashes, and CMU 01_01 (which it names).
LOCOMOTION = re.compile(r"walk|run|dash|jog|01_01", re.IGNORECASE)
NON_HUMANOID = re.compile(r"nonhumanoid|elephant|elefant|crabnew|crab|fox|dog|horse|cat|animals?|monkey|spider|"
                          r"snake|bird|dragon|shark", re.IGNORECASE)
MIN_JOINTS = 4  # fewer is a prop (a 2-joint monochord, a bending cylinder), not a character
MIN_FRAMES = 16  # at 30 fps: room for LaFAN1's shortest window (10 + 5 + 1)


@dataclass
class Clip:
    """One dense ground-truth animation, times are frame indices 0..F-1 at ``motion.fps``."""

    name: str
    path: str
    skeleton: Skeleton
    motion: Motion
    up_axis: str = "Y"  # in skel space, may be signed ("-Z")
    meters_per_unit: float = 1.0
    group: str = "humanoid"
    tags: set = field(default_factory=set)

    @cached_property
    def positions(self) -> np.ndarray:
        m = self.motion
        return kinematics.global_positions(self.skeleton.parents, m.rotations, m.translations, m.scales)

    @cached_property
    def size(self) -> float:
        return character_size(self.positions, self.skeleton.parents)

    @cached_property
    def contacts(self) -> tuple[np.ndarray, np.ndarray]:
        """Foot joints and their ground levels, from the whole ground-truth clip."""
        from .contacts import contact_joints, ground_levels

        up = up_vector(self.up_axis)
        joints = contact_joints(self.skeleton, self.positions, up, self.size)
        return joints, ground_levels(self.positions, joints, up)


@dataclass
class Window:
    """Frames ``start..end`` (inclusive) of a clip: context range and keyframes, in clip frames."""

    clip: Clip
    context: tuple[int, int]
    keys: list[int]
    setting: str = ""  # e.g. "anymole", "lafan1-30"

    @property
    def start(self) -> int:
        return self.context[0]

    @property
    def end(self) -> int:
        return max(self.keys)


def resample(motion: Motion, fps: float) -> Motion:
    """Keep every k-th frame when ``fps`` divides the motion's rate; otherwise leave it as it is."""
    ratio = motion.fps / fps
    k = int(round(ratio))
    if k <= 1 or abs(ratio - k) > 1e-6:
        out = motion.copy()
    else:
        out = motion.select(np.arange(0, motion.num_frames, k))
        out.fps = fps
    out.times = np.arange(out.num_frames, dtype=np.float64)
    return out.normalized()


def clip_group(path: str, skeleton: Skeleton) -> str:
    """non-humanoid when a folder of the path or the file or skeleton name says so (a creature word as a
    whole word or name part: "cmu_3dsmax_zombiehorse" holds CMU humans, "horse-animations" a horse)."""
    parts = [*Path(path).parent.parts, Path(path).stem, skeleton.name]
    words = [w for part in parts for w in re.split(r"[^A-Za-z]+", part) if w]
    return "non-humanoid" if any(NON_HUMANOID.fullmatch(w) for w in words) else "humanoid"


def clip_files(paths: list[str | os.PathLike]) -> list[Path]:
    """The BVH, USD and glTF/GLB files named by ``paths`` (folders searched recursively, sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in (".bvh",) + USD_SUFFIXES + GLTF_SUFFIXES)
        else:
            files.append(p)
    return files


def load_clips(paths: list[str | os.PathLike], fps: float = 30.0) -> list[Clip]:
    """Every BVH file, every dense bound SkelAnimation and every glTF/GLB animation (of ``MIN_FRAMES``
    samples or more) under ``paths`` (files or folders)."""
    clips: list[Clip] = []
    for f in clip_files(paths):
        suffix = f.suffix.lower()
        if suffix == ".bvh":
            clips += _load_bvh(f, fps)
        elif suffix in GLTF_SUFFIXES:
            clips += _load_gltf(f, fps)
        else:
            clips += _load_usd(f, fps)
    return clips


def _load_bvh(path: Path, fps: float) -> list[Clip]:
    from anymole_usd.plugins.io.bvh import read_bvh
    from anymole_usd.plugins.io.units import guess_meters_per_unit, posed_extent

    clip = read_bvh(path)
    # BVH carries no unit: the one `anymole-usd import` would guess from the character's size.
    mpu = guess_meters_per_unit(posed_extent(clip.skeleton.parents, clip.motion))
    return [_make_clip(path.stem, str(path), clip.skeleton, clip.motion, "Y", mpu)]


def _load_gltf(path: Path, fps: float) -> list[Clip]:
    from anymole_usd.plugins.io.gltf import read_gltf

    scene = read_gltf(str(path))  # glTF axes: Y-up, metres
    return [_make_clip(f"{path.stem}:{label}", str(path), scene.skeleton, motion, "Y", scene.meters_per_unit)
            for label, motion in scene.animations.items()
            if motion.num_frames >= MIN_FRAMES and scene.skeleton.num_joints >= MIN_JOINTS]


def _load_usd(path: Path, fps: float) -> list[Clip]:
    from pxr import UsdGeom

    from .reading import authored_times, find_bindings, open_stage, read_motion

    stage = open_stage(path)
    out = []
    for b in find_bindings(stage, str(path)):
        if not b.animation_path or b.skeleton.num_joints < MIN_JOINTS:
            continue
        times = authored_times(stage.GetPrimAtPath(b.animation_path))
        if len(times) < MIN_FRAMES or np.any(np.abs(np.diff(times) - 1.0) > 1e-3):
            continue  # only densely sampled animation is ground truth
        motion = read_motion(stage, b, times=times, file=str(path))
        up = skel_space_up(stage, b.skeleton_path)
        name = f"{path.stem}:{b.skeleton_path.rsplit('/', 2)[-2]}"
        out.append(_make_clip(name, str(path), b.skeleton, motion, up, UsdGeom.GetStageMetersPerUnit(stage)))
    return out


def _make_clip(name, path, skeleton, motion, up, mpu) -> Clip:
    tags = {"locomotion"} if LOCOMOTION.search(name) else set()
    return Clip(name=name, path=path, skeleton=skeleton, motion=resample(motion, 30.0),
                up_axis=up, meters_per_unit=float(mpu), group=clip_group(path, skeleton), tags=tags)


# --------------------------------------------------------------------------- protocols


def anymole_windows(clip: Clip, context_s: float = 2.0, every_s: float = 1.0, horizon_s: float = 8.0,
                    min_last: int = 5) -> list[Window]:
    fps = clip.motion.fps
    n = clip.motion.num_frames
    c, k, h = int(round(context_s * fps)), int(round(every_s * fps)), int(round(horizon_s * fps))
    out = []
    for start in range(0, n, h):
        last = min(start + h, n - 1)
        keys = list(range(start + c + k, last + 1, k))
        tail = keys[-1] if keys else start + c
        if last - tail >= min_last:
            keys.append(last)
        if keys:
            out.append(Window(clip, (start, start + c), keys, "anymole"))
    return out


def lafan1_windows(clip: Clip, lengths=(5, 15, 30, 45), n_past: int = 10, window: int = 65,
                   offset: int = 40) -> list[Window]:
    n = clip.motion.num_frames
    starts = list(range(0, n - window + 1, offset)) or [0]
    out = []
    for s in starts:
        for length in lengths:
            key = s + n_past + length
            if key < n:
                out.append(Window(clip, (s, s + n_past - 1), [key], f"lafan1-{length}"))
    return out


PROTOCOLS = {"anymole": anymole_windows, "lafan1": lafan1_windows}


def windows_for(protocol: str, clip: Clip) -> list[Window]:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r} (known: {', '.join(PROTOCOLS)})")
    return PROTOCOLS[protocol](clip)
