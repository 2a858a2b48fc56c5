"""Linear blend skinning as UsdSkel does it, in a Warp kernel (cpu and cuda) with a numpy reference.

UsdSkel LBS: ``p' = sum_k w_k * (p_bind @ inverse(bind_j) @ skel_j)`` with
``p_bind = p @ geomBindTransform`` (row vectors); the result is in skeleton
space and is placed in the world by the skeleton's local-to-world. We fold
that placement (and metersPerUnit) into the per-joint matrices so the kernel
writes world-space metres directly, for all frames in one launch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd.kinematics import forward_kinematics


def default_device() -> str:
    from anymole_usd.kernels.runtime import resolve_device

    return resolve_device(None)


def skel_transforms(character, motion) -> np.ndarray:
    """(F, J, 4, 4) skel-space joint transforms of ``motion`` (skeleton joint order)."""
    if motion.num_joints != character.num_joints:
        raise ValueError(f"motion has {motion.num_joints} joints but the character has {character.num_joints}")
    return forward_kinematics(character.skeleton.parents, motion.rotations, motion.translations, motion.scales)


def skinning_matrices(character, skel: np.ndarray) -> np.ndarray:
    """(F, J, 4, 4) row-vector matrices taking bind-pose skel-space points to world metres."""
    inv_bind = np.linalg.inv(character.bind_transforms)
    return inv_bind[None] @ skel @ character.skel_to_world[None, None]


def skin_numpy(points: np.ndarray, indices: np.ndarray, weights: np.ndarray, mats: np.ndarray) -> np.ndarray:
    """Reference LBS: (P,3), (P,K), (P,K), (F,J,4,4) row-vector -> (F,P,3) float64."""
    ph = np.concatenate([points, np.ones((len(points), 1))], 1)
    out = np.zeros((mats.shape[0], len(points), 3))
    for k in range(indices.shape[1]):  # K is small (<= 8): loop over influences, not points
        m = mats[:, indices[:, k]]  # (F, P, 4, 4)
        out += weights[None, :, k, None] * np.einsum("pi,fpij->fpj", ph, m)[..., :3]
    return out


class Skinner:
    """Holds a character's bind-pose arrays on a Warp device and skins batches of frames."""

    def __init__(self, character, device: str | None = None) -> None:
        import warp as wp

        from . import kernels  # noqa: F401  (compiles with the ray-cast kernel as one module)

        self.device = device or default_device()
        self.character = character
        self.points = wp.array(character.points.astype(np.float32), dtype=wp.vec3, device=self.device)
        self.indices = wp.array(np.ascontiguousarray(character.joint_indices), dtype=wp.int32, device=self.device)
        self.weights = wp.array(np.ascontiguousarray(character.joint_weights), dtype=wp.float32, device=self.device)

    def skin(self, mats: np.ndarray):
        """(F, J, 4, 4) row-vector skinning matrices -> Warp array (F, P) of world points."""
        import warp as wp

        from .kernels import lbs

        # Warp's transform_point is column-vector: hand it the transposes.
        col = np.ascontiguousarray(np.swapaxes(mats, -1, -2).astype(np.float32))
        m = wp.array(col, dtype=wp.mat44, device=self.device)
        out = wp.empty((mats.shape[0], len(self.character.points)), dtype=wp.vec3, device=self.device)
        if out.size:
            wp.launch(lbs, dim=out.shape, inputs=[self.points, self.indices, self.weights, m, out],
                      device=self.device)
        return out


@dataclass
class Pose:
    """A character posed over a clip, world metres."""

    vertices: np.ndarray  # (F, P, 3) float32
    joints: np.ndarray  # (F, J, 3) float64
    skel: np.ndarray  # (F, J, 4, 4) skel-space joint transforms


def pose_character(character, motion, device: str | None = None, skinner: Skinner | None = None) -> Pose:
    """Forward kinematics + Warp LBS for every frame of ``motion``."""
    skel = skel_transforms(character, motion)
    s2w = character.skel_to_world
    joints = skel[..., 3, :3] @ s2w[:3, :3] + s2w[3, :3]
    skinner = skinner or Skinner(character, device)
    verts = skinner.skin(skinning_matrices(character, skel)).numpy()
    return Pose(vertices=verts, joints=joints, skel=skel)
