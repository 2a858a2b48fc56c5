"""Contacts held where the source's are: planted feet (and hands) pinned in the target's targets.

Contact detection is the graph prior's (``anymole_usd.contacts`` picks the
contact joints, ``motion_graph.footlock.planted`` the low-and-slow frames), run
on the source. A planted hand is one whose joint is within ``HAND_CLEARANCE``
of the size above the floor the feet stand on, and slow. For each contact
the target joint it maps to (or its nearest mapped ancestor) gets, over the
planted frames and a short ramp around them, the source joint's position
through the root mapping (scaled about the ground by leg length, so a
stationary source foot gives a stationary target foot) and a high weight.
After the solve, :func:`pin` puts held joints exactly there with the graph
prior's two-bone IK (the solver leaves millimetres that change from frame to
frame, which reads as skate).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.plugins.priors.motion_graph.footlock import Feet, planted, two_bone_ik
from anymole_usd.skeleton import Skeleton

from .adapt import Adapted
from .mapping import Mapping
from .topology import Body

CONTACT_WEIGHT = 20.0  # of an ordinary joint's weight, while planted
HAND_CLEARANCE = 0.03  # of the size: a planted hand's joint sits about this high above the floor
RAMP_SECONDS = 0.1  # pins fade in and out over this long


@dataclass
class Holds:
    source: np.ndarray  # (C,) source contact joints
    target: np.ndarray  # (C,) target joints that hold them
    labels: np.ndarray  # (F, C) planted flags
    kinds: list[str]  # "foot" or "hand"

    def to_dict(self, source_joints: list[str], target_joints: list[str]) -> list[dict]:
        return [{"source": source_joints[s], "target": target_joints[t], "kind": k,
                 "planted_frames": int(self.labels[:, i].sum())}
                for i, (s, t, k) in enumerate(zip(self.source, self.target, self.kinds))]


def source_feet(body: Body, positions: np.ndarray) -> Feet:
    """Contact joints of the source (helpers left out) and their ground levels."""
    joints = contact_joints(body.skeleton, positions, body.up, body.size)
    joints = joints[~body.excluded[joints]]
    ground = ground_levels(positions, joints, body.up)
    return Feet(joints, ground, np.full((len(joints), 3), -1, dtype=np.int64), body.up, body.size)


def _holder(mapping: Mapping, body: Body, joint: int) -> int:
    """The target joint holding a source contact joint: its counterpart or its nearest mapped ancestor's."""
    j = joint
    parents = body.skeleton.parents
    while j >= 0:
        if j in mapping.pairs:
            return mapping.pairs[j]
        j = int(parents[j])
    return -1


def detect(body: Body, positions: np.ndarray, fps: float, mapping: Mapping, hands: bool = True) -> Holds:
    """Planted feet (and hands) of the source on its frames ``positions`` (F, J, 3)."""
    feet = source_feet(body, positions)
    labels = [planted(feet, positions, fps)] if len(feet.joints) else []
    joints, kinds = list(feet.joints), ["foot"] * len(feet.joints)
    if hands and len(feet.joints):
        arm_ends = np.array([e for k, e in enumerate(body.effectors) if body.kinds[k] == "arm"], dtype=np.int64)
        if len(arm_ends):
            floor = float(np.min(feet.ground)) + HAND_CLEARANCE * body.size
            hand = Feet(arm_ends, np.full(len(arm_ends), floor), np.full((len(arm_ends), 3), -1), body.up, body.size)
            labels.append(planted(hand, positions, fps))
            joints += list(arm_ends)
            kinds += ["hand"] * len(arm_ends)
    lab = np.concatenate(labels, axis=1) if labels else np.zeros((len(positions), 0), dtype=bool)
    target = np.array([_holder(mapping, body, j) for j in joints], dtype=np.int64)
    keep = target >= 0
    return Holds(np.array(joints, dtype=np.int64)[keep], target[keep], lab[:, keep],
                 [k for k, ok in zip(kinds, keep) if ok])


def ramp_weights(labels: np.ndarray, ramp: int) -> np.ndarray:
    """(F, C) 1 on planted frames, falling smoothly to 0 within ``ramp`` frames of them."""
    n = len(labels)
    if n == 0 or labels.shape[1] == 0:
        return labels.astype(np.float64)
    frames = np.arange(n)
    out = np.zeros(labels.shape)
    for c in range(labels.shape[1]):
        on = np.flatnonzero(labels[:, c])
        if not len(on):
            continue
        # distance of every frame to the nearest planted frame
        idx = np.clip(np.searchsorted(on, frames), 1, len(on)) - 1
        nxt = np.clip(idx + 1, 0, len(on) - 1)
        dist = np.minimum(np.abs(frames - on[idx]), np.abs(frames - on[nxt]))
        u = np.clip(1.0 - dist / max(ramp, 1), 0.0, 1.0)
        out[:, c] = u * u * (3.0 - 2.0 * u)
    return out


def apply(holds: Holds, adapted: Adapted, source_positions: np.ndarray, src_of: np.ndarray, fps: float) -> None:
    """Pin the targets of held joints (in place): blend to the root-mapped source position, raise the weight."""
    if len(holds.target) == 0:
        return
    r = ramp_weights(holds.labels, int(round(RAMP_SECONDS * fps)))
    for c, t in enumerate(holds.target):
        s = src_of[t]
        pinned = adapted.map_point(source_positions[:, s])
        w = r[:, c:c + 1]
        adapted.targets[:, t] = (1.0 - w) * adapted.targets[:, t] + w * pinned
        adapted.weights[:, t] = np.maximum(adapted.weights[:, t], r[:, c] * CONTACT_WEIGHT)


def ik_chain(skeleton: Skeleton, positions: np.ndarray, joint: int) -> tuple[int, int, int] | None:
    """(upper, lower, effector) joints that move a held joint; a short toe segment rides on its ankle."""
    parents = skeleton.parents
    p = parents[joint]
    if p < 0 or parents[p] < 0:
        return None
    bone = np.linalg.norm(positions[joint] - positions[p])
    upper = np.linalg.norm(positions[p] - positions[parents[p]])
    e = int(p) if bone < 0.5 * upper else int(joint)
    b = int(parents[e])
    a = int(parents[b]) if b >= 0 else -1
    return (a, b, e) if a >= 0 else None


def pin(holds: Holds, skeleton: Skeleton, rotations: np.ndarray, translations: np.ndarray, scales: np.ndarray,
        adapted: Adapted, source_positions: np.ndarray, src_of: np.ndarray, fps: float) -> np.ndarray:
    """Rotations with every held joint exactly at its pinned position on its planted frames (ramped)."""
    if len(holds.target) == 0:
        return rotations
    r = rotations.copy()
    weight = ramp_weights(holds.labels, int(round(RAMP_SECONDS * fps)))
    for c, t in enumerate(holds.target):
        frames = np.flatnonzero(weight[:, c] > 0)
        if not len(frames):
            continue
        pos = kinematics.global_positions(skeleton.parents, r, translations, scales)
        chain = ik_chain(skeleton, pos[0], int(t))
        if chain is None:
            continue
        pinned = adapted.map_point(source_positions[:, src_of[t]])
        move = weight[:, c:c + 1] * (pinned - pos[:, t])
        two_bone_ik(skeleton, r, translations, scales, chain, pos[:, chain[2]] + move, frames)
    return r
