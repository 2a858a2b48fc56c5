"""What a render command draws: one character and its composed motion, read from a file.

USD files are read with the core reader (composition included, so an
in-between result layer shows up); other formats (BVH, glTF) go through the
registered importers. Everything after this module works on arrays.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.timeline import TIME_TOLERANCE

from .character import Character, read_character


@dataclass
class Scene:
    character: Character
    motion: Motion  # at the frames to render
    authored_times: np.ndarray  # the animation's authored sample times
    file: str
    skeleton_path: str
    animation_path: str | None
    stage: object | None = None  # the open Usd.Stage (for USD cameras), None for other formats


def frame_times(authored: np.ndarray, frames: tuple[float, float] | None, file: str, prim: str | None) -> np.ndarray:
    """Every whole timecode step from the first authored sample to the last (or within ``frames``)."""
    lo, hi = float(authored[0]), float(authored[-1])
    if frames is None:
        a, b = lo, hi
    else:
        a, b = float(frames[0]), float(frames[1])
        if b < a:
            raise InputError(f"frame range {a:g}:{b:g} ends before it starts", file=file, prim=prim)
        if a < lo - TIME_TOLERANCE or b > hi + TIME_TOLERANCE:
            raise InputError(f"frame range {a:g}:{b:g} lies outside the animation ({lo:g}:{hi:g})",
                             file=file, prim=prim)
    n = int(np.floor(b - a + TIME_TOLERANCE)) + 1
    times = a + np.arange(n, dtype=np.float64)
    # Keep authored off-grid samples (near-integer or fractional times) inside the range.
    extra = authored[(authored >= a - TIME_TOLERANCE) & (authored <= b + TIME_TOLERANCE)]
    times = np.union1d(times, extra)
    keep = np.concatenate([[True], np.diff(times) > TIME_TOLERANCE])
    return times[keep]


def parse_frames(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        a, b = text.split(":")
        return float(a), float(b)
    except ValueError:
        raise InputError(f"--frames must be A:B (timecodes), got {text!r}") from None


def load_scene(path: str | os.PathLike, *, skeleton: str | None = None, frames: tuple[float, float] | None = None,
               proxies: str = "auto", times: np.ndarray | None = None) -> Scene:
    """Read the character and its motion sampled at every frame of the animation (or ``frames``).

    ``times`` samples the motion at exactly those timecodes instead (USD holds
    the first/last sample outside the authored range).
    """
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    file = os.fspath(path)
    ext = os.path.splitext(file)[1].lower()
    if ext not in (".usd", ".usda", ".usdc", ".usdz"):
        return _load_imported(file, frames, proxies, times)
    stage = open_stage(file)
    bindings = find_bindings(stage, file=file)
    if not bindings:
        raise InputError("no UsdSkel Skeleton in the stage", file=file)
    if skeleton is not None:
        chosen = [b for b in bindings if b.skeleton_path == skeleton]
        if not chosen:
            raise InputError(f"no Skeleton at {skeleton} (skeletons: {', '.join(b.skeleton_path for b in bindings)})",
                             file=file, prim=skeleton)
        binding = chosen[0]
    else:
        animated = [b for b in bindings if b.animation_path]
        binding = (animated or bindings)[0]
    character = read_character(stage, binding, file=file, proxies=proxies)
    if binding.animation_path is None:
        motion = _rest_motion(binding.skeleton, float(stage.GetStartTimeCode()), binding.fps)
        authored = motion.times
        if frames is not None:
            frame_times(authored, frames, file, binding.skeleton_path)
        return Scene(character, motion, authored, file, binding.skeleton_path, None, stage)
    from anymole_usd.reading import authored_times

    authored = authored_times(stage.GetPrimAtPath(binding.animation_path))
    if len(authored) == 0:
        raise InputError("SkelAnimation has no time samples", file=file, prim=binding.animation_path)
    if times is None:
        times = frame_times(authored, frames, file, binding.animation_path)
    motion = read_motion(stage, binding, times=times, file=file)
    return Scene(character, motion, authored, file, binding.skeleton_path, binding.animation_path, stage)


def _rest_motion(skel, time: float, fps: float) -> Motion:
    from anymole_usd.kinematics import decompose_matrices

    r, t, s = decompose_matrices(skel.rest_transforms)
    return Motion(times=np.array([time]), rotations=r[None], translations=t[None], scales=s[None], fps=fps,
                  joints=list(skel.joints))


def _load_imported(file: str, frames, proxies: str, times=None) -> Scene:
    """BVH/glTF through the registered importers; mesh-less skeletons get bone proxies."""
    try:
        from anymole_usd.plugins.io.convert import read_file
    except ImportError:  # pragma: no cover - io plugin absent
        raise InputError("not a USD file and no importer is installed for it", file=file) from None
    imported, _ = read_file(file)
    motion = imported.motion
    if motion is None:
        raise InputError("the file holds no animation", file=file)
    mpu = float(imported.meters_per_unit)
    s2w = np.diag([mpu, mpu, mpu, 1.0])
    meshes = [] if proxies == "always" else list(imported.meshes)
    if meshes:
        character = character_from_meshes(imported.skeleton, meshes, s2w, imported.up_axis, mpu)
    else:
        from .proxies import proxy_character

        character = proxy_character(imported.skeleton, skel_to_world=s2w, up_axis=imported.up_axis,
                                    meters_per_unit=mpu, name=imported.skeleton.name)
    authored = motion.times
    if times is None and frames is not None:
        times = frame_times(authored, frames, file, None)
    if times is not None:  # imported clips are sampled on their own frames: keep those asked for
        idx = motion.index_of(np.asarray(times, dtype=np.float64))
        motion = motion.select(idx[idx >= 0])
    return Scene(character, motion, authored, file, imported.skeleton.name, imported.bound, None)


def character_from_meshes(skeleton, meshes, skel_to_world, up_axis: str, mpu: float) -> Character:
    """A Character from importer meshes (``anymole_usd.authoring.SkinnedMesh``: skeleton joint order)."""
    from .character import triangulate
    from .proxies import bind_pose

    pts, faces, idx, w = [], [], [], []
    offset = 0
    kmax = max(np.asarray(m.joint_indices).reshape(len(m.points), -1).shape[1] for m in meshes)
    for m in meshes:  # a few meshes per character
        p = np.asarray(m.points, dtype=np.float64)
        g = np.eye(4) if m.geom_bind_transform is None else np.asarray(m.geom_bind_transform, dtype=np.float64)
        pts.append(p @ g[:3, :3] + g[3, :3])
        faces.append(triangulate(m.face_vertex_counts, m.face_vertex_indices) + offset)
        ji = np.asarray(m.joint_indices).reshape(len(p), -1)
        jw = np.asarray(m.joint_weights, dtype=np.float64).reshape(len(p), -1)
        idx.append(np.pad(ji, ((0, 0), (0, kmax - ji.shape[1]))))
        w.append(np.pad(jw, ((0, 0), (0, kmax - jw.shape[1]))))
        offset += len(p)
    weights = np.concatenate(w)
    total = weights.sum(1, keepdims=True)
    weights = np.where(total > 0, weights / np.where(total > 0, total, 1.0), 0.0)
    return Character(skeleton=skeleton, bind_transforms=bind_pose(skeleton), points=np.concatenate(pts),
                     faces=np.concatenate(faces), joint_indices=np.concatenate(idx), joint_weights=weights,
                     skel_to_world=skel_to_world, up_axis=up_axis, meters_per_unit=mpu,
                     mesh_paths=[m.name for m in meshes], mesh_sizes=[len(m.points) for m in meshes],
                     name=skeleton.name)
