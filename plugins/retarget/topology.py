"""Body structure from the hierarchy and a reference pose: end effectors, limbs, sides, facing.

Names help but are never required. The analysis works on a *reference pose*:
the rest pose when it is a plausible one, else the frame of the motion
closest to its mean pose. (A BVH rest pose is whatever the OFFSETs give with
zero rotations: Bandai and Mixamo-exported BVH lay every bone along a local
axis, feet above the hips; only the motion shows how the body stands.)

- Helper joints (IK targets, pole vectors, ``_RIGMESH`` proxies, twist and
  driver joints, secondary roots) and their descendants are left out.
- End effectors are the leaves of the hierarchy once small side branches are
  pruned: a side branch counts when its chain is at least ``BRANCH`` of the
  character size long and is not a detail: three or more branches shorter
  than ``CLUSTER`` and nothing longer at one joint (fingers, a face: Warrok's
  hands are a fifth of his height) or a short branch named as a finger or a
  face part,
  so fingers collapse into the hand and face joints into the head, while a
  lone toe below a foot stays.
- Legs are effectors near the ground (``LOW`` of the size above the lowest
  one) whose chain drops towards it; the hub is the lowest common ancestor of
  the legs (the pelvis), or the first branching joint without legs.
- Left is the mean offset of left-named joints from right-named ones; without
  side names it is the axis along which sibling branches mirror each other,
  oriented so that the feet point forward (toes ahead of ankles) or the
  non-leg body leans forward (a quadruped's head).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

from .naming import JointName, parse_all

BRANCH = 0.02  # of the character size: shorter side branches are details
CLUSTER = 0.3  # of the size: side branches all shorter than this at one joint are fingers or a face
LOW = 0.1  # of the size above the lowest effector: a leg's end rests on the ground
DROP = 0.4  # a leg's chain drops at least this fraction of its straight length
REST_AGREEMENT = 0.8  # rest pose counts as plausible when joint heights correlate this well with the motion's
MAX_REFERENCE_FRAMES = 600  # frames examined to find the reference pose


@dataclass
class Body:
    """A skeleton's structure in one reference pose (skeleton space)."""

    skeleton: Skeleton
    names: list[JointName]
    positions: np.ndarray  # (J, 3) reference pose joint positions
    rotations: np.ndarray  # (J, 4) reference pose global rotations
    local_rotations: np.ndarray  # (J, 4) reference pose local rotations
    up: np.ndarray
    forward: np.ndarray
    left: np.ndarray
    size: float
    excluded: np.ndarray  # (J,) helpers, their descendants and secondary roots
    effectors: np.ndarray  # (E,) joint indices
    kinds: list[str]  # per effector: leg, arm, head, tail, wing, limb
    sides: np.ndarray  # (E,) +1 left, -1 right, 0 middle
    hub: int
    ground: float  # height the lowest effector rests at along up (over the motion when there is one)
    reference_frame: int | None  # motion frame used as reference pose (None: rest)
    ancestor: np.ndarray  # (J, J) bool, ancestor[a, b]: a is b or an ancestor of b
    bone: np.ndarray  # (J,) distance to the parent in the reference pose

    def frame_coordinates(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) skel-space points -> (..., 3) (forward, up, left) coordinates about the hub, in sizes."""
        rel = (np.asarray(points) - self.positions[self.hub]) / self.size
        return np.stack([rel @ self.forward, rel @ self.up, rel @ self.left], axis=-1)

    @property
    def kept_children(self) -> np.ndarray:
        """(J,) how many children each joint has, helper joints left out."""
        parents = self.skeleton.parents
        return np.bincount(parents[(parents >= 0) & ~self.excluded], minlength=len(parents))

    @property
    def basis(self) -> np.ndarray:
        """(3, 3) columns forward, up, left: body frame -> skel space."""
        return np.stack([self.forward, self.up, self.left], axis=1)

    def path(self, top: int, bottom: int) -> list[int]:
        """Joints from ``top`` down to ``bottom`` (both included); ``top`` must be an ancestor."""
        out = [bottom]
        parents = self.skeleton.parents
        while out[-1] != top:
            p = int(parents[out[-1]])
            if p < 0:
                raise ValueError(f"joint {top} is not an ancestor of {bottom}")
            out.append(p)
        return out[::-1]

    def path_length(self, top: int, bottom: int) -> float:
        return float(sum(self.bone[j] for j in self.path(top, bottom)[1:]))

    def lca(self, joints) -> int:
        """Lowest common ancestor of several joints."""
        common = np.all(self.ancestor[:, list(joints)], axis=1)
        cands = np.flatnonzero(common)
        return int(cands[np.argmax(self.skeleton.depths()[cands])])

    def label(self, e: int) -> str:
        """Human-readable name of effector index e: 'left leg', 'right front leg', 'head'..."""
        kind, side = self.kinds[e], int(self.sides[e])
        prefix = {1: "left ", -1: "right ", 0: ""}[side]
        if kind == "leg" and self.kinds.count("leg") > 2:
            fwd = self.frame_coordinates(self.positions[self.effectors[e]])[0]
            legs = [self.frame_coordinates(self.positions[self.effectors[i]])[0]
                    for i, k in enumerate(self.kinds) if k == "leg"]
            prefix += "front " if fwd > np.median(legs) else "back "
        return f"{prefix}{kind}"


def ancestor_matrix(parents: np.ndarray) -> np.ndarray:
    n = len(parents)
    anc = np.eye(n, dtype=bool)
    for j in range(n):  # parent-first order: one pass suffices
        p = parents[j]
        if p >= 0:
            anc[:, j] |= anc[:, p]
    return anc


def excluded_joints(skeleton: Skeleton, names: list[JointName], anc: np.ndarray) -> np.ndarray:
    """Helpers and everything below them, and every root tree but the largest one."""
    helper = np.array([n.helper for n in names], dtype=bool)
    out = np.any(anc[helper], axis=0) if helper.any() else np.zeros(skeleton.num_joints, dtype=bool)
    roots = skeleton.roots
    if len(roots) > 1:
        sizes = [int(np.sum(anc[r] & ~out)) for r in roots]
        main = roots[int(np.argmax(sizes))]
        out |= ~anc[main]
    return out


def pose_of(skeleton: Skeleton, motion: Motion | None, frames: np.ndarray | None = None):
    """(positions (F, J, 3), global rotations (F, J, 4), local rotations (F, J, 4)) of motion frames,
    or of the rest pose (F = 1) when ``motion`` is None."""
    if motion is None:
        r, t, s = kinematics.decompose_matrices(skeleton.rest_transforms)
        r, t, s = r[None], t[None], s[None]
    else:
        idx = np.arange(motion.num_frames) if frames is None else frames
        r, t, s = motion.rotations[idx], motion.translations[idx], motion.scales[idx]
    pos = kinematics.global_positions(skeleton.parents, r, t, s)
    glob = kinematics.global_rotations(skeleton.parents, r)
    return pos, glob, rot.normalize(r)


def reference_pose(skeleton: Skeleton, motion: Motion | None, up: np.ndarray, hub: int):
    """(positions, global rotations, local rotations, frame or None): the rest pose when plausible, else the
    motion frame nearest its mean hub-relative pose."""
    rest = pose_of(skeleton, None)
    if motion is None or motion.num_frames == 0:
        return rest[0][0], rest[1][0], rest[2][0], None
    step = max(1, motion.num_frames // MAX_REFERENCE_FRAMES)
    frames = np.arange(0, motion.num_frames, step)
    pos, glob, loc = pose_of(skeleton, motion, frames)
    # positions in the hub's own frame: heading and lean removed, so the mean is a pose, not a blur
    inv = rot.conjugate(glob[:, hub])[:, None]
    local = rot.rotate(inv, pos - pos[:, hub:hub + 1])
    dist = np.sum((local - local.mean(axis=0)) ** 2, axis=(1, 2))
    k = int(np.argmin(dist))
    h_rest = (rest[0][0] - rest[0][0, hub]) @ up
    h_ref = (pos[k] - pos[k, hub]) @ up
    if np.std(h_rest) > 0 and np.std(h_ref) > 0 and np.corrcoef(h_rest, h_ref)[0, 1] >= REST_AGREEMENT:
        return rest[0][0], rest[1][0], rest[2][0], None
    return pos[k], glob[k], loc[k], int(frames[k])


def first_branch(parents: np.ndarray, kept: np.ndarray, root: int) -> int:
    """The first joint below ``root`` with two or more kept children (the topological hub)."""
    children = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0 and kept[j]:
            children[p].append(j)
    j = root
    while len(children[j]) == 1:
        j = children[j][0]
    return j


def _effectors(parents, kept, bone, size, names) -> np.ndarray:
    n = len(parents)
    children = [[] for _ in range(n)]
    for j in range(n):
        if parents[j] >= 0 and kept[j]:
            children[parents[j]].append(j)
    reach = np.zeros(n)  # path length from a joint's parent to its farthest kept descendant
    for j in range(n - 1, -1, -1):
        reach[j] = bone[j] + max((reach[c] for c in children[j]), default=0.0)
    significant = np.zeros(n, dtype=bool)
    for j in range(n):
        kids = children[j]
        if len(kids) == 1:
            significant[kids[0]] = True
            continue
        small = [c for c in kids if reach[c] < CLUSTER * size]
        for c in kids:
            detail = c in small and (
                len(small) == len(kids)  # only short branches at one joint: fingers, a face, heel markers
                or bool(names[c].roles & {"face", "digit"}))  # a thumb beside the fingers, an eye
            significant[c] = reach[c] >= BRANCH * size and not detail
    roots = [j for j in range(n) if parents[j] < 0 and kept[j]]
    inside = np.zeros(n, dtype=bool)
    inside[roots] = True
    for j in range(n):
        if parents[j] >= 0 and inside[parents[j]] and significant[j]:
            inside[j] = True
    has_child = np.zeros(n, dtype=bool)
    for j in range(n):
        if inside[j] and parents[j] >= 0:
            has_child[parents[j]] = True
    return np.flatnonzero(inside & ~has_child)


def analyse(skeleton: Skeleton, up: np.ndarray, motion: Motion | None = None) -> Body:
    """Structure of ``skeleton`` (``up``: skel-space up vector; ``motion`` picks the reference pose)."""
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    parents = skeleton.parents
    names = parse_all(skeleton.joints)
    anc = ancestor_matrix(parents)
    excluded = excluded_joints(skeleton, names, anc)
    kept = ~excluded
    roots = [r for r in skeleton.roots if kept[r]] or list(skeleton.roots)
    hub0 = first_branch(parents, kept, roots[0])
    pos, glob, loc, frame = reference_pose(skeleton, motion, up, hub0)
    bone = np.zeros(skeleton.num_joints)
    has_parent = parents >= 0
    bone[has_parent] = np.linalg.norm(pos[has_parent] - pos[parents[has_parent]], axis=-1)
    ext = pos[kept & has_parent] if np.sum(kept & has_parent) >= 2 else pos
    size = float(np.max(ext.max(0) - ext.min(0))) or 1.0
    eff = _effectors(parents, kept, bone, size, names)
    height = pos @ up
    low = height[eff] - height[eff].min() <= LOW * size
    if motion is not None and motion.num_frames > 1:
        # over the whole motion: a walking foot is lifted in any single frame, not on average
        step = max(1, motion.num_frames // MAX_REFERENCE_FRAMES)
        h = pose_of(skeleton, motion, np.arange(0, motion.num_frames, step))[0][:, eff] @ up
        mean_h = (h - h.min(axis=1, keepdims=True)).mean(axis=0)
        low = mean_h - mean_h.min() <= LOW * size
    legs = []
    for k, e in enumerate(eff):
        if not low[k]:
            continue
        start = _branch_start(parents, eff, e, anc, kept)
        drop = (pos[start] - pos[e]) @ up
        if drop >= DROP * max(np.linalg.norm(pos[start] - pos[e]), 1e-9) and drop > 0.05 * size:
            legs.append(k)
    legs = _with_mirrors(legs, eff, names)
    hub = int(hub0)
    if len(legs) >= 2:
        common = np.all(anc[:, eff[legs]], axis=1)
        cands = np.flatnonzero(common)
        hub = int(cands[np.argmax(skeleton.depths()[cands])])
    forward, left = _facing(names, pos, up, eff, legs, kept, parents, hub, size, anc)
    ground = float(height[eff].min()) if len(eff) else 0.0
    if motion is not None and motion.num_frames > 1 and len(eff):
        # the level the lowest effector rests at (2nd percentile), as the contact metrics measure it
        ground = float(np.min(np.percentile(h, 2.0, axis=0)))
    body = Body(skeleton, names, pos, glob, loc, up, forward, left, size, excluded, eff, [], np.zeros(len(eff), int),
                hub, ground, frame, anc, bone)
    body.kinds, body.sides = _classify(body, legs)
    return body


def _with_mirrors(legs: list[int], eff: np.ndarray, names: list[JointName]) -> list[int]:
    """Legs plus their mirror effectors (same name words, other side): a foot lifted in the
    reference pose is a foot all the same."""
    out = set(legs)
    for k in legs:
        a = names[eff[k]]
        for i, e in enumerate(eff):
            b = names[e]
            if a.side and b.side == -a.side and b.tokens == a.tokens:
                out.add(i)
    return sorted(out)


def _branch_start(parents, eff, e, anc, kept) -> int:
    """First joint of the chain that leads to effector ``e`` (just below the last branch it passes)."""
    j = e
    while parents[j] >= 0:
        p = parents[j]
        # p branches when another effector also descends from it
        if np.sum(anc[p, eff]) > 1:
            return j
        j = p
    return j


def _facing(names, pos, up, eff, legs, kept, parents, hub, size, anc) -> tuple[np.ndarray, np.ndarray]:
    def flat(v):
        v = np.asarray(v, dtype=np.float64)
        return v - (v @ up) * up

    sides = np.array([n.side for n in names])
    lefts, rights = kept & (sides > 0), kept & (sides < 0)
    lateral = None
    if lefts.sum() >= 1 and rights.sum() >= 1:
        cand = flat(pos[lefts].mean(0) - pos[rights].mean(0))
        if np.linalg.norm(cand) > 0.02 * size:
            lateral = cand / np.linalg.norm(cand)
    if lateral is not None:
        forward = np.cross(lateral, up)
        return forward / np.linalg.norm(forward), lateral
    # mirror axis of sibling branches that mirror each other (same number of joints, same height and
    # distance from their parent: two legs, not a spine and a tail): their horizontal offsets
    count = (anc & kept[None]).sum(axis=1)
    m = np.zeros((3, 3))
    for p in np.unique(parents[parents >= 0]):
        kids = [c for c in np.flatnonzero(parents == p) if kept[c]]
        for a in range(len(kids)):
            for b in range(a + 1, len(kids)):
                ka, kb = kids[a], kids[b]
                da, db = pos[ka] - pos[p], pos[kb] - pos[p]
                alike = (count[ka] == count[kb] and abs(da @ up - db @ up) < 0.05 * size
                         and abs(np.linalg.norm(da) - np.linalg.norm(db)) < 0.05 * size)
                if alike:
                    d = flat(pos[ka] - pos[kb])
                    m += np.outer(d, d) * count[ka]
    w, v = np.linalg.eigh(m)
    lateral = v[:, -1] if w[-1] > 0 else np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 0.0, 1.0])
    lateral = flat(lateral)
    lateral /= np.linalg.norm(lateral)
    forward = np.cross(lateral, up)
    # orient: toes ahead of ankles, else the non-leg body ahead of the hub
    toes = sum(flat(pos[eff[k]] - pos[parents[eff[k]]]) for k in legs if parents[eff[k]] >= 0) if legs else 0.0
    score = float(np.dot(toes, forward)) if np.ndim(toes) else 0.0
    if abs(score) < 0.02 * size:
        leg_joints = np.zeros(len(pos), dtype=bool)
        for k in legs:  # joints between the hub and each leg's end
            leg_joints |= anc[:, eff[k]] & ~anc[:, hub]
        body = kept & ~leg_joints
        score = float(np.dot(flat(pos[body].mean(0) - pos[hub]), forward))
    if score < 0:
        forward, lateral = -forward, -lateral
    left = np.cross(up, forward)
    return forward, left / np.linalg.norm(left)


def _classify(body: Body, legs: list[int]) -> tuple[list[str], np.ndarray]:
    eff = body.effectors
    coords = body.frame_coordinates(body.positions[eff])  # (E, 3) forward, up, left
    kinds = ["limb"] * len(eff)
    sides = np.zeros(len(eff), dtype=np.int64)
    for k, e in enumerate(eff):
        named = [body.names[j].side for j in body.path(body.hub, e) if body.names[j].side] if \
            body.ancestor[body.hub, e] else []
        if named:
            sides[k] = int(np.sign(np.sum(named)))
        elif abs(coords[k, 2]) > 0.05 and not body.names[e].side:
            sides[k] = int(np.sign(coords[k, 2]))
    for k in legs:
        kinds[k] = "leg"
    rest = [k for k in range(len(eff)) if kinds[k] != "leg"]

    def chain_roles(e):
        j, roles = e, set()
        for _ in range(3):
            roles |= body.names[j].roles
            j = body.skeleton.parents[j]
            if j < 0:
                break
        return roles

    head = [k for k in rest if "head" in chain_roles(eff[k])]
    if not head:
        middle = [k for k in rest if sides[k] == 0] or rest
        if middle:
            head = [max(middle, key=lambda k: coords[k, 0] + coords[k, 1])]
    for k in head[:1]:
        kinds[k], sides[k] = "head", 0
    for k in rest:
        if kinds[k] != "limb":
            continue
        roles = chain_roles(eff[k])
        if "tail" in roles or (sides[k] == 0 and coords[k, 0] < -0.15):
            kinds[k] = "tail"
        elif "wing" in roles:
            kinds[k] = "wing"
        elif sides[k] != 0:
            kinds[k] = "arm"
    return kinds, sides
