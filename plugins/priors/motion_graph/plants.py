"""Contact-aware cleanup of a filled gap: stances pinned, steps lifted, for any in-between.

Applied to every gap the ``graph`` prior fills, whatever filled it (a graph
path or plain interpolation), from the output motion itself rather than from
the source's labels:

1. A contact joint is in *stance* on the steps where it is low (within
   ``STANCE_HEIGHT`` of the character size above its ground level).
2. A stance that drifts more than ``SPLIT`` over its duration is not one plant
   but several with steps in between (interpolation glides a foot along the
   ground from one key's footprint to the next): it is split into as many
   steps as the distance needs at ``STRIDE`` each (as far as time allows),
   each a swing of ``SWING`` seconds placed where the foot has covered
   (i - 1/2)/n of its path. More, shorter steps keep the footprints close to
   the glide they replace (L2 to the truth), fewer look like one stride.
3. Each stance is pinned to one ground position: the known sample's where the
   stance touches the gap's start or end (the footprint of the context or the
   key), else its mean position. Only the stance's drift (the straight line
   from its first to its last step) is removed; what the foot does around it
   (the roll of a toe joint as the heel lifts, in played source frames) is
   kept. Between stances the correction blends smoothly over the whole swing,
   so nothing moves fast near the ground.
4. A swinging contact joint is lifted to at least ``LIFT`` x size x sin(pi u)
   above the ground (u: progress through the swing), so a step clears the floor.
   A stance the in-between sinks below the ground is raised onto it (fading
   out towards the known samples, which may themselves sink a foot: there the
   swing's floor starts or ends at that depth, so no step jumps in height).
5. Two-bone IK bends the leg to the corrected position.

The known samples at both ends are never moved (every correction is zero there
by construction), so keyframes stay exact.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import kinematics
from anymole_usd.skeleton import Skeleton

from .assembly import smoothstep
from .footlock import Feet, edge_window, intervals, two_bone_ik

STANCE_HEIGHT = 0.02  # of the character size above the joint's ground level
SPLIT = 0.02  # of the character size: a stance drifting further is two plants and a step
STRIDE = 0.5  # of the character size: longest distance one inserted step covers
SWING = 0.3  # s, duration of a step inserted into a drifting stance
LIFT = 0.04  # of the character size: lowest peak height of a swing
MIN_STANCE = 2  # steps: shorter low passes inside a gap are brushes, not plants


def stances(low: np.ndarray, path: np.ndarray, swing: int, split: float, stride: float) -> list[tuple[int, int]]:
    """Stance intervals of one contact joint over steps 0..m-1.

    ``low`` (m,) flags, ``path`` (m,) cumulative horizontal distance travelled.
    """
    m = len(low)
    out = []
    for s0, s1 in intervals(low):
        if s1 - s0 + 1 < MIN_STANCE and s0 > 0 and s1 < m - 1:
            continue
        drift = path[s1] - path[s0]
        if drift <= split or s1 - s0 < 2:
            out.append((s0, s1))
            continue
        # As many steps as the distance needs at one stride each, as time allows (a swing and a
        # stance step each); the swings sit where the foot has covered (i - 1/2) / n of its path.
        w = max(1, min(swing, (s1 - s0 + 1) // 2))
        n = int(np.clip(np.ceil(drift / stride), 1, max(1, (s1 - s0) // (w + 1))))
        mids = s0 + np.searchsorted(path[s0:s1 + 1], path[s0] + drift * (np.arange(n) + 0.5) / n)
        begin = s0
        for mid in mids:
            a = int(np.clip(mid - w // 2, begin + 1, s1 - w))  # swing steps a..a+w-1
            if a - 1 < begin or a + w > s1:
                continue
            out.append((begin, a - 1))
            begin = a + w
        out.append((begin, s1))
    return out


def plan(feet: Feet, positions: np.ndarray, fps: float) -> np.ndarray:
    """(m, C, 3) moves of the contact joints over steps 0..m-1 of a gap (known samples at both ends)."""
    m = len(positions)
    last = m - 1
    up, size = feet.up, feet.size
    p = positions[:, feet.joints]  # (m, C, 3)
    height = p @ up - feet.ground  # (m, C)
    flat = p - (p @ up)[..., None] * up
    path = np.concatenate([np.zeros((1, len(feet.joints))),
                           np.cumsum(np.linalg.norm(np.diff(flat, axis=0), axis=-1), axis=0)])
    low = height < STANCE_HEIGHT * size
    swing = max(1, int(round(SWING * fps)))
    steps = np.arange(m)
    edge = edge_window(m, max(1, swing // 2))
    out = np.zeros_like(p)
    for k in range(len(feet.joints)):
        plants = stances(low[:, k], path[:, k], swing, SPLIT * size, STRIDE * size)
        offset = np.zeros((m, 3))
        stance = np.zeros(m, dtype=bool)
        # Knots of the horizontal correction: (step, offset) at every stance's first and last step.
        knots = []
        for s0, s1 in plants:
            span = np.arange(s0, s1 + 1)
            if s0 == 0 and s1 == last:  # one stance over the whole gap, barely drifting: slide evenly
                anchor = flat[0, k] + (flat[last, k] - flat[0, k]) * (span / max(last, 1))[:, None]
            elif s0 == 0:
                anchor = flat[0, k]
            elif s1 == last:
                anchor = flat[last, k]
            else:
                anchor = flat[span, k].mean(axis=0)
            # Remove the stance's drift (a straight line from its first to its last step), keep its roll.
            u = (span - s0) / max(s1 - s0, 1)
            trend = flat[s0, k] + u[:, None] * (flat[s1, k] - flat[s0, k])
            offset[span] = anchor - trend
            stance[span] = True
            knots += [(s0, offset[s0]), (s1, offset[s1])]
        if not stance[0]:
            knots.insert(0, (0, np.zeros(3)))
        if not stance[last]:
            knots.append((last, np.zeros(3)))
        knots.sort(key=lambda kv: kv[0])
        # A stance the in-between sinks below the ground is raised onto it (not at the known samples: the
        # raise fades in and out over half a swing at the gap's ends).
        lift = np.where(stance, np.maximum(-height[:, k], 0.0), 0.0) * edge
        standing = height[:, k] + lift
        for (a, da), (b, db) in zip(knots[:-1], knots[1:]):
            inside = (steps > a) & (steps < b) & ~stance
            if b - a < 2 or not inside.any():
                continue
            u = (steps[inside] - a) / (b - a)
            offset[inside] = da + smoothstep(u)[:, None] * (db - da)
            travel = np.linalg.norm(flat[b, k] + db - flat[a, k] - da) + path[b, k] - path[a, k]
            if travel > SPLIT * size:  # a foot that moves must clear the floor; one that stays need not
                # The floor starts and ends at the stance heights (the ground, or below it near a known
                # sample that sinks a foot), so a swing leaves and lands without a jump in height.
                floor = (LIFT * size * np.sin(np.pi * u) + (1 - u) * min(standing[a], 0.0)
                         + u * min(standing[b], 0.0))
                lift[inside] = np.maximum(floor - height[inside, k], 0.0)
        out[:, k] = offset + lift[:, None] * up
    out[[0, last]] = 0.0
    return out


def clean_steps(feet: Feet, skeleton: Skeleton, r: np.ndarray, t: np.ndarray, s: np.ndarray,
                fps: float) -> np.ndarray:
    """Rotations of a gap's samples (known samples at both ends included) with stances pinned and
    steps lifted (see the module docstring)."""
    r = r.copy()
    if len(r) < 3 or len(feet.joints) == 0:
        return r
    positions = kinematics.global_positions(skeleton.parents, r, t, s)
    moves = plan(feet, positions, fps)
    for k in range(len(feet.joints)):
        chain = feet.chains[k]
        if chain[0] < 0:
            continue
        frames = np.flatnonzero(np.linalg.norm(moves[:, k], axis=-1) > 1e-7 * feet.size)
        if len(frames):
            two_bone_ik(skeleton, r, t, s, chain, positions[:, chain[2]] + moves[:, k], frames)
    return r


def glide(feet: Feet, positions: np.ndarray) -> float:
    """Longest horizontal distance (character sizes) one contact joint travels while low (within
    ``STANCE_HEIGHT`` of its ground level at both ends of each step), over a gap's (m, J, 3) positions:
    the foot skate the cleanup exists to remove (0 when every low foot stays put)."""
    if len(feet.joints) == 0 or len(positions) < 2:
        return 0.0
    p = positions[:, feet.joints]
    low = (p @ feet.up - feet.ground) < STANCE_HEIGHT * feet.size
    flat = p - (p @ feet.up)[..., None] * feet.up
    step = np.linalg.norm(np.diff(flat, axis=0), axis=-1) * (low[1:] & low[:-1])
    return float(step.sum(axis=0).max() / feet.size)
