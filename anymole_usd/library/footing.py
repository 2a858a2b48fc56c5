"""Planted feet stay planted through compose's jumps.

Inertialisation offsets every joint's local rotation for a moment after a
jump, which would drag a foot that is on the ground at the jump. The contact
joints and their leg chains are found as the graph prior finds them
(``motion_graph.footlock``: lowest leaves, two-bone IK chains, low-and-slow
contact labels). At each jump, a foot that the played source frames hold
planted on both sides of it keeps the ground position it had just before the
jump for as long as the new clip keeps it planted (at most the blend), then
the correction fades out over ``RAMP``; the leg reaches it by two-bone IK.
Only frames after jumps are touched: motion that the source clips play as
they are (their own contacts included) is left alone. Skeletons without
usable leg chains are left as they are.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from anymole_usd import kinematics
from anymole_usd.skeleton import Skeleton

RAMP = 0.15  # s
MAX_MOVE = 0.1  # of the character size: a foot needing more than this is not pinned
POP = 0.01  # of the character size: a knee step growing more than this in a frame undoes the pinning


def lock_stances(skeleton: Skeleton, frame, size: float, fps: float, source, blended, jumps: np.ndarray,
                 blend: float):
    """Rotations of ``blended`` (r, t, s) with feet planted across each jump pinned.

    ``source``: the same frames before blending (r, t, s); ``jumps``: output frames where a new
    piece starts; ``blend``: the inertialisation time (s)."""
    from anymole_usd.plugins.priors.motion_graph.footlock import find_feet, planted, two_bone_ik

    r, t, s = blended
    if len(r) < 3 or len(jumps) == 0:
        return r
    src_pos = kinematics.global_positions(skeleton.parents, *source)
    feet = find_feet(skeleton, src_pos, replace(frame, size=size))
    if len(feet.joints) == 0 or np.all(feet.chains[:, 0] < 0):
        return r
    labels = planted(feet, src_pos, fps)
    out_pos = kinematics.global_positions(skeleton.parents, r, t, s)
    n = len(r)
    hold = max(1, int(round(blend * fps)))
    ramp = max(1, int(round(RAMP * fps)))
    up = feet.up
    r = r.copy()
    for k, c in enumerate(feet.joints):
        a, b, e = feet.chains[k]
        if a < 0:
            continue
        moves = np.zeros((n, 3))
        weight = np.zeros(n)
        for f in jumps:  # a few dozen jumps, each a vectorised window
            # Labels one frame away from the jump: velocities across the source's discontinuity lie.
            if f < 2 or f + 1 >= n or not (labels[f - 2, k] and labels[f + 1, k]):
                continue
            run = labels[f + 1:min(n, f + hold), k]
            run = np.concatenate([[True], run])
            length = int(np.argmin(run)) if not run.all() else len(run)
            span = np.arange(f, min(n, f + length + ramp))
            w = np.where(span < f + length, 1.0, 1.0 - _smooth((span - (f + length) + 1) / ramp))
            d = out_pos[f - 1, c] - out_pos[span, c]
            d -= (d @ up)[:, None] * up  # horizontal only: the source's own lift is kept
            if np.linalg.norm(d, axis=1).max() > MAX_MOVE * size:
                continue  # the clips place this foot elsewhere: a stretched leg would pop, leave it to the blend
            take = w > weight[span]
            moves[span[take]] = w[take, None] * d[take]
            weight[span[take]] = w[take]
        frames = np.flatnonzero(weight > 0)
        if len(frames):
            before = r.copy()
            pos = kinematics.global_positions(skeleton.parents, r, t, s)
            two_bone_ik(skeleton, r, t, s, (a, b, e), pos[:, e] + moves, frames)
            _undo_pops(skeleton, before, pos[:, b], r, t, s, b, weight > 0, size)
    return r


def _undo_pops(skeleton: Skeleton, before, p0: np.ndarray, r, t, s, knee: int, touched: np.ndarray,
               size: float) -> None:
    """Put back the rotations of every pinned window where the knee jumps (a bend-plane flip of a
    nearly straight leg): its per-frame step may not grow by more than ``POP`` sizes. ``p0``: the
    knee's positions before the pins (rotations ``before``)."""
    from anymole_usd.plugins.priors.motion_graph.footlock import intervals

    p1 = kinematics.global_positions(skeleton.parents, r, t, s)[:, knee]
    grow = np.linalg.norm(np.diff(p1, axis=0), axis=1) - np.linalg.norm(np.diff(p0, axis=0), axis=1)
    bad = np.zeros(len(r), dtype=bool)
    bad[1:] |= grow > POP * size
    bad[:-1] |= grow > POP * size
    for a, last in intervals(touched):  # per pinned window
        if bad[a:last + 1].any():
            r[a:last + 1] = before[a:last + 1]


def _smooth(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)
