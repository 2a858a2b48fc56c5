"""Skeleton: joint topology and rest/bind transforms, independent of USD.

Conventions follow UsdSkel: joints are path tokens ("Hips/Spine"), parents come
before children, several roots are allowed, and 4x4 matrices are row-vector
(``skel = local_child @ parent_skel``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Skeleton:
    """Joint hierarchy of one UsdSkel Skeleton (or an imported rig).

    ``rest_transforms`` are joint-local 4x4 matrices, ``bind_transforms`` are
    skel-space (UsdSkel calls them world-space) 4x4 matrices; both row-vector.
    """

    joints: list[str]
    parents: np.ndarray  # (J,) int, -1 for roots; parents[j] < j
    rest_transforms: np.ndarray  # (J, 4, 4) local
    bind_transforms: np.ndarray | None = None  # (J, 4, 4) skel space
    name: str = ""
    joint_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parents = np.asarray(self.parents, dtype=np.int64)
        self.rest_transforms = np.asarray(self.rest_transforms, dtype=np.float64)
        if self.bind_transforms is not None:
            self.bind_transforms = np.asarray(self.bind_transforms, dtype=np.float64)
        n = len(self.joints)
        if self.parents.shape != (n,) or self.rest_transforms.shape != (n, 4, 4):
            raise ValueError(
                f"skeleton {self.name!r}: {n} joints but parents {self.parents.shape} "
                f"and rest transforms {self.rest_transforms.shape}"
            )
        if np.any(self.parents >= np.arange(n)):
            raise ValueError(f"skeleton {self.name!r}: joints are not in parent-first order")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def roots(self) -> np.ndarray:
        return np.flatnonzero(self.parents < 0)

    @property
    def short_names(self) -> list[str]:
        """Last path component of each joint (or the explicit jointNames)."""
        if self.joint_names and len(self.joint_names) == len(self.joints):
            return list(self.joint_names)
        return [j.rsplit("/", 1)[-1] for j in self.joints]

    def depths(self) -> np.ndarray:
        """Depth of every joint in the hierarchy (roots are 0)."""
        from .kinematics import joint_depths

        return joint_depths(self.parents)

    def levels(self) -> list[np.ndarray]:
        """Joint indices grouped by depth, for level-by-level vectorised FK."""
        from .kinematics import hierarchy_levels

        return hierarchy_levels(self.parents)

    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.num_joints)]
        for j, p in enumerate(self.parents):
            if p >= 0:
                out[p].append(j)
        return out

    def rest_pose_positions(self) -> np.ndarray:
        """Skel-space joint positions of the rest pose, (J, 3)."""
        from .kinematics import compose_local_matrices

        return compose_local_matrices(self.rest_transforms[None], self.parents)[0, :, 3, :3]

    def height(self) -> float:
        """Characteristic size: the largest extent of rest (or bind) joint positions."""
        pos = self.rest_pose_positions()
        if self.bind_transforms is not None:
            pos = np.concatenate([pos, self.bind_transforms[:, 3, :3]])
        ext = pos.max(0) - pos.min(0)
        size = float(ext.max()) if ext.size else 0.0
        return size if size > 0 else 1.0
