"""Vectorised numpy forward kinematics: the reference the Warp kernels are checked against.

UsdSkel's joint-local transform is ``scale * rotate * translate`` in row-vector
form, and skel-space transforms compose as ``local_child @ parent_skel``.
Joints are processed one hierarchy level at a time, so the Python loop runs
over depth (about 10 for a humanoid), never over frames or joints.
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot


def local_matrices(rotations: np.ndarray, translations: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
    """(F, J, 4) xyzw, (F, J, 3), (F, J, 3) -> (F, J, 4, 4) row-vector local matrices."""
    r = rot.to_matrix(rot.normalize(rotations))  # column-vector R
    shape = r.shape[:-2]
    m = np.zeros(shape + (4, 4))
    rt = np.swapaxes(r, -1, -2)  # row-vector form
    if scales is not None:
        rt = rt * np.asarray(scales, dtype=np.float64)[..., :, None]
    m[..., :3, :3] = rt
    m[..., 3, :3] = translations
    m[..., 3, 3] = 1.0
    return m


def joint_depths(parents: np.ndarray) -> np.ndarray:
    """Depth of every joint in the hierarchy (roots are 0); parents come before children."""
    parents = np.asarray(parents)
    depth = np.zeros(len(parents), dtype=np.int64)
    # Parent-first order makes one forward pass enough.
    for j, p in enumerate(parents):
        if p >= 0:
            depth[j] = depth[p] + 1
    return depth


def hierarchy_levels(parents: np.ndarray) -> list[np.ndarray]:
    """Joint indices grouped by depth, for level-by-level vectorised FK."""
    depth = joint_depths(parents)
    return [np.flatnonzero(depth == d) for d in range(int(depth.max(initial=0)) + 1)]


def compose_local_matrices(local: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """(F, J, 4, 4) local -> (F, J, 4, 4) skel-space, row-vector convention."""
    parents = np.asarray(parents, dtype=np.int64)
    out = np.array(local, dtype=np.float64, copy=True)
    for idx in hierarchy_levels(parents)[1:]:
        out[:, idx] = out[:, idx] @ out[:, parents[idx]]
    return out


def forward_kinematics(
    parents: np.ndarray,
    rotations: np.ndarray,
    translations: np.ndarray,
    scales: np.ndarray | None = None,
) -> np.ndarray:
    """Skel-space 4x4 transforms (F, J, 4, 4) from local components."""
    return compose_local_matrices(local_matrices(rotations, translations, scales), parents)


def global_positions(parents, rotations, translations, scales=None) -> np.ndarray:
    """Skel-space joint positions (F, J, 3)."""
    return forward_kinematics(parents, rotations, translations, scales)[..., 3, :3]


def global_rotations(parents: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Skel-space joint orientations (F, J, 4), ignoring scale, sign-continuous in time."""
    parents = np.asarray(parents, dtype=np.int64)
    out = rot.normalize(np.array(rotations, dtype=np.float64, copy=True))
    for idx in hierarchy_levels(parents)[1:]:
        # row-vector child-then-parent == column-vector parent * child
        out[:, idx] = rot.multiply(out[:, parents[idx]], out[:, idx])
    return rot.make_continuous(out, axis=0)


def decompose_matrices(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-vector (..., 4, 4) affine -> (rotation xyzw, translation, scale), no shear."""
    m = np.asarray(m, dtype=np.float64)
    lin = m[..., :3, :3]
    scale = np.linalg.norm(lin, axis=-1)
    safe = np.where(scale > 0, scale, 1.0)
    r_row = lin / safe[..., :, None]
    det = np.linalg.det(r_row)
    # A mirror has to live in the scale, not the rotation.
    flip = det < 0
    scale = np.where(flip[..., None], scale * np.array([-1.0, 1.0, 1.0]), scale)
    r_row = np.where(flip[..., None, None], r_row * np.array([-1.0, 1.0, 1.0])[:, None], r_row)
    q = rot.from_matrix(np.swapaxes(r_row, -1, -2))
    return q, m[..., 3, :3].copy(), scale
