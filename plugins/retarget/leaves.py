"""Leaf joints turned no faster than the source turns any joint.

A leaf of the target (a paw, a toe, a head end: nothing hangs from it, so its
rotation moves no position the solver matches) often stands for several
source joints: the Fox's front paw carries the horse's ankle and hoof. Its
local rotation then sums their turns, and on a hand-keyed clip those turns
land on the same frames: 0.22 rad in one frame where the source's largest
joint change is 0.20. Such steps are spread over their neighbours (repeated
local averaging of the leaf's rotations around the steps that are too large)
until no step exceeds the source's largest; nothing else changes, and no
position does.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import rotations as rot

from .topology import Body

MAX_ROUNDS = 400  # averaging rounds; each spreads a too-large step over one more frame


def leaves(body: Body) -> np.ndarray:
    """Indices of the target's leaf joints (helper joints left out)."""
    parents = body.skeleton.parents
    kids = np.bincount(parents[parents >= 0], minlength=len(parents))
    return np.flatnonzero((kids == 0) & ~body.excluded & (parents >= 0))


def limit_leaf_turns(rotations: np.ndarray, joints: np.ndarray, limit: float) -> np.ndarray:
    """(F, J, 4) rotations whose ``joints`` turn by at most ``limit`` rad between frames (see module)."""
    if len(rotations) < 3 or not len(joints) or limit <= 0:
        return rotations
    q = rot.make_continuous(rot.normalize(rotations[:, joints]), axis=0)
    n = len(q)
    for _ in range(MAX_ROUNDS):
        bad = rot.angle_between(q[1:], q[:-1]) > limit  # (F-1, L) steps
        if not bad.any():
            break
        # the frames at both ends of a bad step and one beyond each, per leaf
        touch = np.zeros((n, q.shape[1]), dtype=bool)
        touch[:-1] |= bad
        touch[1:] |= bad
        near = touch.copy()
        near[1:] |= touch[:-1]
        near[:-1] |= touch[1:]
        near[0] = near[-1] = False  # the clip's ends stay: they are the source's
        prev, nxt = np.concatenate([q[:1], q[:-1]]), np.concatenate([q[1:], q[-1:]])
        smooth = rot.normalize(0.25 * prev + 0.5 * q + 0.25 * nxt)
        q = np.where(near[..., None], smooth, q)
    out = rotations.copy()
    out[:, joints] = q
    return out
