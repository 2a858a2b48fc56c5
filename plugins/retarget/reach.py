"""An analytic first guess that puts every chain's end near its target before the solver polishes.

The rest-corrected transfer gets every bone's direction right but not where
the chains end: the target's proportions differ (a longer spine, shorter
arms), so its hands and head start centimetres away and a gradient method
needs hundreds of steps to carry the whole trunk there. Chain by chain from
the top (frames at once), each chain is swung about its first joint by the
shortest arc that points it at its target; the solver then bends it.
Two-bone IK here would reach limb ends exactly but flips the bend plane of
a limb that straightens (measured: knee jumps of 0.67 rad on a walk whose
largest is 0.43), a swing never does.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.skeleton import Skeleton

from .adapt import Adapted
from .mapping import Mapping


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(F, 4) shortest-arc rotations taking directions a to b (F, 3)."""
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1, keepdims=True)
    c = np.sum(a * b, axis=-1, keepdims=True)
    angle = np.arctan2(s, c)
    return rot.exp_map(np.where(s > 1e-9, axis / np.maximum(s, 1e-12) * angle, 0.0))


def reach(skeleton: Skeleton, adapted: Adapted, mapping: Mapping, hub: int, size: float) -> None:
    """Update ``adapted.rotations`` in place (see the module docstring)."""
    parents = skeleton.parents
    r, t, s = adapted.rotations, adapted.translations, adapted.scales
    anc = np.eye(len(parents), dtype=bool)
    for j in range(len(parents)):
        if parents[j] >= 0:
            anc[:, j] |= anc[:, parents[j]]
    for chain in mapping.chains:
        end, start = chain.target_end, chain.target_start
        if start < 0 or anc[end, hub] or not adapted.free_rotation[end]:
            continue
        mats = kinematics.forward_kinematics(parents, r, t, s)
        pos = mats[..., 3, :3]
        target = adapted.targets[:, end]
        miss = np.linalg.norm(target - pos[:, end], axis=-1) > 1e-6 * size
        if not miss.any():
            continue
        path = [j for j in _path(parents, start, end)[1:-1] if adapted.free_rotation[j]]
        if not path:
            continue
        j0 = path[0]
        swing = _swing(pos[:, end] - pos[:, j0], target - pos[:, j0])  # skel space
        g = kinematics.global_rotations(parents, r)
        g_par = g[:, parents[j0]] if parents[j0] >= 0 else np.tile([0.0, 0.0, 0.0, 1.0], (len(r), 1))
        # new global = swing * old global; back to local through the parent
        r[:, j0] = rot.multiply(rot.conjugate(g_par), rot.multiply(swing, g[:, j0]))
    adapted.rotations = rot.make_continuous(rot.normalize(r), axis=0)


def _path(parents: np.ndarray, top: int, bottom: int) -> list[int]:
    out = [bottom]
    while out[-1] != top and out[-1] >= 0:
        out.append(int(parents[out[-1]]))
    return out[::-1]
