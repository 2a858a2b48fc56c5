"""Foot contacts for any skeleton: which joints carry the character, and where the ground is.

One rule for every skeleton (no per-clip tuning): the contact joints are the
leaf joints whose mean height above the ground is within 5% of the character
size of the lowest leaf's (toes of a humanoid, feet of a quadruped, leg tips
of a crab); each one's ground level is the 2nd percentile of its height.
Used by the ``foot-skate`` metric and by the ``graph`` prior's foot locking.
"""
from __future__ import annotations

import numpy as np

from .skeleton import Skeleton

LEAF_BAND = 0.05  # of the character size, above the lowest leaf's mean height


def contact_joints(skeleton: Skeleton, positions: np.ndarray, up: np.ndarray, size: float) -> np.ndarray:
    """Indices of the leaf joints that carry the character (lowest on average along ``up``)."""
    children = np.bincount(skeleton.parents[skeleton.parents >= 0], minlength=skeleton.num_joints)
    leaves = np.flatnonzero(children == 0)
    if len(leaves) == 0:
        return np.zeros(0, dtype=np.int64)
    mean_h = (positions[:, leaves] @ up).mean(axis=0)
    return leaves[mean_h <= mean_h.min() + LEAF_BAND * size]


def ground_levels(positions: np.ndarray, joints: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Per contact joint, the height it rests at (2nd percentile over the frames)."""
    if len(joints) == 0:
        return np.zeros(0)
    return np.percentile(positions[:, joints] @ up, 2.0, axis=0)
