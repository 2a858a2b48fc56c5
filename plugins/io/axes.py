"""Changing a Scene's up axis and length units without changing its motion.

A change of up axis is a rotation C applied on top of everything: roots'
rest transforms and animated root rotations/translations are rotated, every
bind transform is post-multiplied by C (row-vector), mesh points and normals
are rotated, and geomBindTransform is conjugated. Joint-local transforms
below the roots are untouched, so the animation is the same motion seen in
other axes.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.motion import Motion

from .base import Scene


def up_axis_rotation(src: str, dst: str) -> np.ndarray:
    """Column-vector 3x3 rotation taking ``src``-up coordinates to ``dst``-up (about X)."""
    src, dst = src.upper(), dst.upper()
    if src == dst:
        return np.eye(3)
    if (src, dst) == ("Y", "Z"):
        return np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # +90 deg about X: Y -> Z
    if (src, dst) == ("Z", "Y"):
        return np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # -90 deg about X: Z -> Y
    raise ValueError(f"up axis must be Y or Z, got {src!r} -> {dst!r}")


def transform_scene(scene: Scene, rotation: np.ndarray | None = None, scale: float = 1.0) -> Scene:
    """A copy of ``scene`` with lengths scaled by ``scale`` and then rotated by ``rotation``."""
    c = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64)
    if np.allclose(c, np.eye(3)) and scale == 1.0:
        return scene
    c_row = np.eye(4)
    c_row[:3, :3] = c.T
    q_c = rot.from_matrix(c)
    sk = scene.skeleton
    roots = sk.parents < 0

    rest = sk.rest_transforms.copy()
    rest[:, 3, :3] *= scale
    rest[roots] = rest[roots] @ c_row
    bind = None
    if sk.bind_transforms is not None:
        bind = sk.bind_transforms.copy()
        bind[:, 3, :3] *= scale
        bind = bind @ c_row
    skeleton = replace(sk, rest_transforms=rest, bind_transforms=bind, meta=dict(sk.meta))

    animations = {}
    for label, m in scene.animations.items():
        r, t = m.rotations.copy(), m.translations * scale
        r[:, roots] = rot.multiply(q_c, r[:, roots])
        t[:, roots] = t[:, roots] @ c.T
        animations[label] = Motion(times=m.times, rotations=r, translations=t, scales=m.scales,
                                   fps=m.fps, joints=list(m.joints))

    meshes = []
    for mesh in scene.meshes:
        gbt = np.eye(4) if mesh.geom_bind_transform is None else np.array(mesh.geom_bind_transform, float)
        gbt[3, :3] *= scale
        c_inv = np.eye(4)
        c_inv[:3, :3] = c  # inverse of c_row
        meshes.append(replace(
            mesh,
            points=(np.asarray(mesh.points, float) * scale) @ c.T,
            normals=None if mesh.normals is None else np.asarray(mesh.normals, float) @ c.T,
            geom_bind_transform=c_inv @ gbt @ c_row,
        ))
    return replace(scene, skeleton=skeleton, animations=animations, meshes=meshes)


def convert_scene(scene: Scene, up_axis: str, scale: float = 1.0) -> Scene:
    """``scene`` in ``up_axis`` with lengths multiplied by ``scale`` (meters_per_unit divided by it)."""
    out = transform_scene(scene, up_axis_rotation(scene.up_axis, up_axis), scale)
    return replace(out, up_axis=up_axis.upper(), meters_per_unit=scene.meters_per_unit / scale)
