"""Foot locking: keep planted feet planted after re-targeting, blending and displacement.

Root re-targeting and the displacement maps bend the played motion slightly,
which drags a planted foot along the ground. Each graph node knows whether its
contact joints were planted in the source (low and slow); over every planted
interval of the in-between the foot is pinned to one ground position (the
known sample's where the interval touches the gap's start or end, else its
mean position) and the leg is bent to reach it by two-bone IK, with the
correction faded in and out over a few frames. The height of every contact
joint follows its height in the played source frame (blended to the known
samples' at the gap's ends like the displacement), so the displacement maps
cannot make a swinging foot scrape the floor or a planted one float. Frames
at the gap's ends are never moved.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.skeleton import Skeleton

from .assembly import smoothstep
from .features import BodyFrame

PLANTED_HEIGHT = 0.02  # of the character size above the joint's ground level
PLANTED_SPEED = 0.6  # character sizes per second, horizontal (a running stance foot rolls)


@dataclass
class Feet:
    joints: np.ndarray  # (C,) contact joints
    ground: np.ndarray  # (C,) their ground levels along up
    chains: np.ndarray  # (C, 3) hip, knee, effector joints of the leg (-1: no usable chain)
    up: np.ndarray
    size: float


def find_feet(skeleton: Skeleton, positions: np.ndarray, frame: BodyFrame) -> Feet:
    """Contact joints and their IK chains, from the graph's frames.

    A skeleton whose every contact joint is on a finger (a hand-only rig resting on a table) has no
    feet: nothing carries its weight, so nothing is pinned or lifted."""
    joints = contact_joints(skeleton, positions, frame.up, frame.size)
    if len(joints) and all(on_finger(skeleton, int(j)) for j in joints):
        joints = joints[:0]
    ground = ground_levels(positions, joints, frame.up)
    chains = np.array([leg_chain(skeleton.parents, positions, c, frame) for c in joints],
                      dtype=np.int64).reshape(len(joints), 3)
    return Feet(joints, ground, chains, frame.up, frame.size)


def on_finger(skeleton: Skeleton, joint: int) -> bool:
    """Whether a joint or one of its two nearest ancestors is named as a finger (thumb, index, middle, ring,
    pinky, finger: any naming convention, ``retarget.naming``), not a toe."""
    from anymole_usd.plugins.retarget.naming import parse

    for _ in range(3):
        if joint < 0:
            return False
        name = parse(skeleton.short_names[joint])
        if "digit" in name.roles:
            return name.digit != "toe"
        joint = int(skeleton.parents[joint])
    return False


CHAIN_SEARCH = 4  # the effector is the contact joint or one of its 3 nearest ancestors


def leg_chain(parents: np.ndarray, positions: np.ndarray, contact: int, frame: BodyFrame) -> tuple[int, int, int]:
    """(hip, knee, effector) of the limb that carries ``contact``, or (-1, -1, -1).

    The effector is the contact joint or one of its nearest ancestors, chosen so the two bones above it
    are the limb's longest pair (the larger of the two bones' shorter one): thigh and shin for a
    humanoid (Foot, not ToeBase over a Mixamo toe chain, whose foot and toe bones would otherwise bend
    the ankle to move the toe tip), upper and lower arm for a knuckle-walking hand. Shorter segments
    below it (toe, toe tip, heel) ride along: the effector keeps its global orientation."""
    inside = np.zeros(len(parents), dtype=bool)
    inside[frame.joints] = True

    def length(j: int) -> float:  # mean length of the bone from j's parent to j
        return float(np.linalg.norm(positions[:, j] - positions[:, parents[j]], axis=-1).mean())

    best, best_len = (-1, -1, -1), 0.0
    e = contact
    for _ in range(CHAIN_SEARCH):
        if e < 0:
            break
        b = parents[e]
        a = parents[b] if b >= 0 else -1
        if a >= 0 and inside[a] and a != frame.traj_joint:
            shorter = min(length(e), length(b))
            if shorter > best_len * (1 + 1e-6):
                best, best_len = (int(a), int(b), int(e)), shorter
        e = b
    return best


def planted(feet: Feet, positions: np.ndarray, fps: float) -> np.ndarray:
    """(F, C) contact joints low and slow in consecutive frames ``positions`` (F, J, 3)."""
    p = positions[:, feet.joints]
    low = (p @ feet.up - feet.ground) < PLANTED_HEIGHT * feet.size
    if len(p) < 2:
        return low
    v = np.gradient(p, axis=0) * fps
    horizontal = v - (v @ feet.up)[..., None] * feet.up
    return low & (np.linalg.norm(horizontal, axis=-1) < PLANTED_SPEED * feet.size)


def intervals(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


def edge_window(m: int, ramp: int) -> np.ndarray:
    """(m,) 0 at both ends of a gap's steps, rising smoothly to 1 over ``ramp`` steps."""
    steps = np.arange(m)
    ramp = max(ramp, 1)
    return np.minimum(smoothstep(steps / ramp), smoothstep((m - 1 - steps) / ramp))


def near_planted(labels: np.ndarray, ramp: int) -> np.ndarray:
    """(m, C) 1 on planted steps, fading to 0 within ``ramp`` steps of them."""
    m = len(labels)
    steps = np.arange(m)
    dist = np.abs(steps[:, None] - steps[None, :])  # (m, m)
    fade = 1.0 - smoothstep(dist / max(ramp, 1))
    return np.max(np.where(labels.T[:, None, :], fade[None], 0.0), axis=2).T if m else np.zeros_like(labels, float)


def corrections(feet: Feet, positions: np.ndarray, labels: np.ndarray, ramp: int,
                heights: np.ndarray | None = None) -> np.ndarray:
    """(m, C, 3) horizontal moves that pin each planted interval, faded over ``ramp`` frames,
    plus vertical moves to ``heights`` (m, C) above the ground where given."""
    m = len(positions)
    last = m - 1
    out = np.zeros((m, len(feet.joints), 3))
    steps = np.arange(m)
    ramp = max(ramp, 1)
    edge = edge_window(m, ramp)
    for k, c in enumerate(feet.joints):
        pc = positions[:, c]
        best_w = np.zeros(m)
        for s0, s1 in intervals(labels[:, k]):
            span = np.arange(s0, s1 + 1)
            if s0 == 0 and s1 == last:
                anchor = pc[0] + (pc[last] - pc[0]) * (span / max(last, 1))[:, None]
            elif s0 == 0:
                anchor = pc[0]
            elif s1 == last:
                anchor = pc[last]
            else:
                anchor = pc[span].mean(axis=0)
            d = np.broadcast_to(anchor, pc[span].shape) - pc[span]
            d = d - (d @ feet.up)[:, None] * feet.up
            w = np.zeros(m)
            w[span] = 1.0
            delta = np.zeros((m, 3))
            delta[span] = d
            after = steps[(steps > s1) & (steps <= s1 + ramp)]
            w[after] = 1.0 - smoothstep((after - s1) / ramp)
            delta[after] = d[-1]
            before = steps[(steps < s0) & (steps >= s0 - ramp)]
            w[before] = 1.0 - smoothstep((s0 - before) / ramp)
            delta[before] = d[0]
            take = w > best_w
            out[take, k] = w[take, None] * delta[take]
            best_w = np.maximum(best_w, w)
        out[:, k] *= edge[:, None]
        if heights is not None:
            out[:, k] += (heights[:, k] + feet.ground[k] - pc @ feet.up)[:, None] * feet.up
    return out


def two_bone_ik(skeleton: Skeleton, r: np.ndarray, t: np.ndarray, s: np.ndarray, chain, target: np.ndarray,
                frames: np.ndarray) -> None:
    """Bend hip ``a`` and knee ``b`` so effector ``e`` reaches ``target`` on ``frames``; the effector
    keeps its global orientation. Updates local rotations ``r`` in place."""
    a, b, e = chain
    parents = skeleton.parents
    sel = frames
    mats = kinematics.forward_kinematics(parents, r[sel], t[sel], s[sel])
    g = rot.normalize(kinematics.decompose_matrices(mats[:, [a, b, e]])[0])
    pa = parents[a]
    g_pa = rot.normalize(kinematics.decompose_matrices(mats[:, pa])[0]) if pa >= 0 else None
    A, B, E = mats[:, a, 3, :3], mats[:, b, 3, :3], mats[:, e, 3, :3]
    T = target[sel]
    eps = 1e-9

    def unit(v):
        return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)

    def angle(u, v):
        return np.arccos(np.clip(np.sum(unit(u) * unit(v), axis=-1), -1.0, 1.0))

    lab = np.linalg.norm(B - A, axis=-1)
    lcb = np.linalg.norm(E - B, axis=-1)
    lat = np.clip(np.linalg.norm(T - A, axis=-1), np.abs(lab - lcb) + 1e-6 * (lab + lcb),
                  (lab + lcb) * (1 - 1e-6))
    ac_ab0, ba_bc0, ac_at0 = angle(E - A, B - A), angle(A - B, E - B), angle(E - A, T - A)
    ac_ab1 = np.arccos(np.clip((lcb ** 2 - lab ** 2 - lat ** 2) / (-2 * lab * lat + eps), -1, 1))
    ba_bc1 = np.arccos(np.clip((lat ** 2 - lab ** 2 - lcb ** 2) / (-2 * lab * lcb + eps), -1, 1))
    axis0 = np.cross(E - A, B - A)
    ok = np.linalg.norm(axis0, axis=-1) > 1e-9 * np.maximum(lab * lcb, eps)
    if not ok.all():  # a straight leg has no bend plane: borrow the mean one
        fallback = unit(unit(axis0[ok]).mean(axis=0)) if ok.any() else np.cross(unit(E - A)[0], [0.0, 0.0, 1.0])
        axis0[~ok] = fallback
    axis0 = unit(axis0)
    axis1 = unit(np.cross(E - A, T - A))
    r0 = rot.exp_map(axis0 * (ac_ab1 - ac_ab0)[:, None])
    r1 = rot.exp_map(axis0 * (ba_bc1 - ba_bc0)[:, None])
    r2 = rot.exp_map(axis1 * ac_at0[:, None])
    ga = rot.multiply(r2, rot.multiply(r0, g[:, 0]))
    gb = rot.multiply(r2, rot.multiply(r0, rot.multiply(r1, g[:, 1])))
    r[sel, a] = ga if g_pa is None else rot.multiply(rot.conjugate(g_pa), ga)
    r[sel, b] = rot.multiply(rot.conjugate(ga), gb)
    r[sel, e] = rot.multiply(rot.conjugate(gb), g[:, 2])


def lock_feet(feet: Feet, skeleton: Skeleton, r: np.ndarray, t: np.ndarray, s: np.ndarray, labels: np.ndarray,
              ramp: int, heights: np.ndarray | None = None) -> np.ndarray:
    """Rotations with planted feet pinned (``labels``: (m, C) planted flags per step) and, with
    ``heights`` (m, C), every contact joint at that height above its ground level."""
    r = r.copy()
    positions = kinematics.global_positions(skeleton.parents, r, t, s)
    moves = corrections(feet, positions, labels, ramp, heights)
    for k in range(len(feet.joints)):
        chain = feet.chains[k]
        if chain[0] < 0:
            continue
        frames = np.flatnonzero(np.linalg.norm(moves[:, k], axis=-1) > 1e-7 * feet.size)
        if len(frames) == 0:
            continue
        target = positions[:, chain[2]] + moves[:, k]
        two_bone_ik(skeleton, r, t, s, chain, target, frames)
    return r
