"""Contacts held where the source's are: planted feet (and hands) pinned in the target's targets.

Contact detection is the graph prior's (``anymole_usd.contacts`` picks the
contact joints, ``motion_graph.footlock.planted`` the low-and-slow frames), run
on the source. A planted hand is one whose joint is within ``HAND_CLEARANCE``
of the size above the floor the feet stand on, and slow. For each contact
the target joint it maps to (or its nearest mapped ancestor) gets, over the
planted frames and a short ramp around them, the source joint's position
through the root mapping (scaled about the ground by leg length, so a
stationary source foot gives a stationary target foot), shifted per plant
to where the target's own proportions put it (:func:`pinned_positions`),
and a high weight.
After the solve, :func:`lower_targets` brings the body down where a held limb
cannot reach its pin (the caller solves again), and :func:`pin` puts held
joints exactly there with the graph prior's two-bone IK (the solver leaves
millimetres that change from frame to frame, which reads as skate).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.plugins.priors.motion_graph.footlock import Feet, planted, two_bone_ik

from .adapt import Adapted
from .mapping import Mapping
from .topology import Body

CONTACT_WEIGHT = 20.0  # of an ordinary joint's weight, while planted
HAND_CLEARANCE = 0.03  # of the size: a planted hand's joint sits about this high above the floor
RAMP_SECONDS = 0.1  # pins fade in and out over this long
MAX_PIN_TURN = 0.15  # rad: the most the final pin may turn a joint of the limb on one frame


@dataclass
class Holds:
    source: np.ndarray  # (C,) source contact joints
    target: np.ndarray  # (C,) target joints that hold them
    labels: np.ndarray  # (F, C) planted flags
    kinds: list[str]  # "foot" or "hand"
    pins: np.ndarray | None = None  # (F, C, 3) where held joints go (set by apply)
    ramp: np.ndarray | None = None  # (F, C) how firmly, 0..1

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


def pinned_positions(holds: Holds, adapted: Adapted, source_positions: np.ndarray, src_of: np.ndarray,
                     ramp: np.ndarray) -> np.ndarray:
    """(F, C, 3) where each held joint should be: the source joint through the root mapping (stationary
    when the source's is), shifted per planted interval by the interval's mean offset of the part-wise
    target from it. The shift is zero when proportions agree; a quadruped whose body is longer for its
    legs than the source's plants its front feet where its own body puts them, and still holds them."""
    from anymole_usd.plugins.priors.motion_graph.footlock import intervals

    n_f = len(holds.labels)
    out = np.zeros((n_f, len(holds.target), 3))
    frames = np.arange(n_f)
    for c, t in enumerate(holds.target):
        mapped = adapted.map_point(source_positions[:, src_of[t]])
        offset = np.zeros((n_f, 3))
        spans = intervals(holds.labels[:, c])
        if spans:
            mids = np.array([(a + b) / 2.0 for a, b in spans])
            shift = np.array([(adapted.targets[a:b + 1, t] - mapped[a:b + 1]).mean(axis=0) for a, b in spans])
            nearest = np.argmin(np.abs(frames[:, None] - mids[None]), axis=1)  # ramps use their plant's shift
            offset = shift[nearest]
        out[:, c] = mapped + np.where(ramp[:, c:c + 1] > 0, offset, 0.0)
    return out


def apply(holds: Holds, adapted: Adapted, source_positions: np.ndarray, src_of: np.ndarray, fps: float) -> None:
    """Pin the targets of held joints (in place): blend to their pinned positions, raise the weight."""
    if len(holds.target) == 0:
        return
    r = ramp_weights(holds.labels, int(round(RAMP_SECONDS * fps)))
    holds.pins = pinned_positions(holds, adapted, source_positions, src_of, r)
    holds.ramp = r
    for c, t in enumerate(holds.target):
        w = r[:, c:c + 1]
        adapted.targets[:, t] = (1.0 - w) * adapted.targets[:, t] + w * holds.pins[:, c]
        adapted.weights[:, t] = np.maximum(adapted.weights[:, t], r[:, c] * CONTACT_WEIGHT)


def ik_chain(body: Body, positions: np.ndarray, joint: int) -> tuple[int, int, int] | None:
    """(upper, lower, effector) joints that move a held joint; a short toe segment rides on its ankle.
    None when the upper or lower joint branches (a chest carrying a front leg is no hip)."""
    parents = body.skeleton.parents
    p = parents[joint]
    if p < 0 or parents[p] < 0:
        return None
    bone = np.linalg.norm(positions[joint] - positions[p])
    upper = np.linalg.norm(positions[p] - positions[parents[p]])
    e = int(p) if bone < 0.5 * upper else int(joint)
    b = int(parents[e])
    a = int(parents[b]) if b >= 0 else -1
    if a < 0:
        return None
    kids = body.kept_children
    return (a, b, e) if kids[a] == 1 and kids[b] == 1 else None


REACH = 0.995  # of a limb's length: the farthest a held joint is put from the limb's first joint
LOWER_SECONDS = 0.1  # the body's lowering changes over at least this long either side
MAX_DROP = 0.25  # of a limb's length: a contact farther out is left short rather than the body folded


def _windows(n: int, radius: int) -> np.ndarray:
    """(n, 2 radius + 1) frame indices within ``radius`` of each frame, clamped to the clip."""
    return np.clip(np.arange(n)[:, None] + np.arange(-radius, radius + 1)[None], 0, n - 1)


def limb_root(body: Body, joint: int) -> int:
    """The first joint of the limb ending in ``joint``: up the chain while each parent has one child."""
    parents, kids = body.skeleton.parents, body.kept_children
    j = int(joint)
    while parents[j] >= 0 and kids[parents[j]] == 1 and parents[j] != body.hub:
        j = int(parents[j])
    return j


def lower_targets(holds: Holds, body: Body, adapted: Adapted, positions: np.ndarray, fps: float) -> np.ndarray:
    """Lower every position target (in place) where a held joint's pin is beyond its limb's reach.

    A character whose legs are short for the stride it is given (the Fox's hind legs on a horse's
    stance: pins up to 3.6% of the leg beyond reach, the leg straight and its foot hovering) cannot
    hold its contacts from the height the leg-length scaling gives its hips. Measured on a solved
    pose ``positions`` (F, J, 3), the body's targets come down along the up axis just enough for
    every held limb to reach ``REACH`` of its length from its first joint, settled over neighbouring
    frames (never less than a frame needs); contact joints' targets stay, so a second solve bends the
    limbs.
    Returns the drop (F,), zero when every limb reaches."""
    n_f = len(adapted.targets)
    need = np.zeros(n_f)
    if len(holds.target) == 0 or holds.pins is None or n_f == 0:
        return need
    parents = body.skeleton.parents
    up = body.up
    for c, t in enumerate(holds.target):
        root = limb_root(body, int(t))
        if root == t:
            continue
        length, j = 0.0, int(t)
        while j != root:
            length = length + np.linalg.norm(positions[:, j] - positions[:, parents[j]], axis=-1)
            j = int(parents[j])
        w = holds.pins[:, c] - positions[:, root]
        vertical = w @ up
        across = np.linalg.norm(w - vertical[:, None] * up, axis=-1)
        room = np.sqrt(np.maximum((REACH * length) ** 2 - across ** 2, 0.0))
        # the drop d with |w + d up| = REACH * length, the pin below the limb's first joint (vertical < 0)
        drop = np.minimum(np.maximum(-vertical - room, 0.0), MAX_DROP * length)
        need = np.maximum(need, holds.ramp[:, c] * drop)
    if not need.any():
        return need
    idx = _windows(n_f, max(int(round(LOWER_SECONDS * fps)), 1))
    drop = need[idx].max(axis=1)[idx].mean(axis=1)  # a closing: at least ``need`` everywhere, and smooth
    # contact joints keep their heights on every frame, planted or not: a lowered swing foot scrapes
    # the floor (and reads as planted)
    lowered = np.ones(len(parents), dtype=bool)
    lowered[holds.target] = False
    adapted.targets[:, lowered] -= drop[:, None, None] * up
    top = int(np.flatnonzero(parents < 0)[0])
    adapted.translations[:, top] -= drop[:, None] * up
    return drop


FRACTIONS = (1.0, 0.75, 0.5, 0.25)  # of a pin's move tried when the whole move turns a joint too far
SETTLE_FRAMES = 3  # a limb's pin fraction changes over at least this many frames either side


def _settled(allowed: np.ndarray, radius: int) -> np.ndarray:
    """A per-frame fraction no larger than ``allowed`` on any frame that changes smoothly: the lowest
    value within ``radius`` frames, then averaged over the same radius (an opening of the sequence)."""
    idx = _windows(len(allowed), radius)
    low = allowed[idx].min(axis=1)
    return low[idx].mean(axis=1)


def pin(holds: Holds, body: Body, rotations: np.ndarray, translations: np.ndarray, scales: np.ndarray
        ) -> np.ndarray:
    """Rotations with every held joint exactly at its pinned position on its planted frames (ramped).

    Two-bone IK flips a nearly straight limb's bend plane when asked to reach far; a frame whose
    IK would turn a joint of the limb by more than ``MAX_PIN_TURN`` gets the largest of
    ``FRACTIONS`` of the move that does not (or none: the solver's pose stays). The fraction is
    settled over neighbouring frames, never above what a frame allows: chosen frame by frame, a
    limb switching from the whole move to none turned its joints by 0.3 rad in one frame."""
    if len(holds.target) == 0 or holds.pins is None:
        return rotations
    r = rotations.copy()
    skeleton = body.skeleton
    for c, t in enumerate(holds.target):
        frames = np.flatnonzero(holds.ramp[:, c] > 0)
        if not len(frames):
            continue
        pos = kinematics.global_positions(skeleton.parents, r, translations, scales)
        chain = ik_chain(body, pos[0], int(t))
        if chain is None:
            continue
        move = holds.ramp[:, c:c + 1] * (holds.pins[:, c] - pos[:, t])
        # IK recomputes a limb from arc cosines, which lose precision near a straight limb: leave the
        # frames the solver already put in place alone
        frames = frames[np.linalg.norm(move[frames], axis=-1) > 1e-6 * body.size]
        if not len(frames):
            continue
        allowed = np.zeros(len(r))
        open_ = frames
        for fraction in FRACTIONS:
            trial = r.copy()
            two_bone_ik(skeleton, trial, translations, scales, chain, pos[:, chain[2]] + fraction * move, open_)
            turn = rot.angle_between(trial[open_][:, list(chain)], r[open_][:, list(chain)]).max(axis=1)
            allowed[open_[turn <= MAX_PIN_TURN]] = fraction
            open_ = open_[turn > MAX_PIN_TURN]
            if not len(open_):
                break
        # frames the solver already had in place may take any fraction: they do not bound their neighbours
        free = np.ones(len(r), dtype=bool)
        free[frames] = False
        allowed[free] = 1.0
        share = _settled(allowed, SETTLE_FRAMES)[:, None]
        two_bone_ik(skeleton, r, translations, scales, chain, pos[:, chain[2]] + share * move, frames)
    return r
