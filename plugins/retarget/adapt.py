"""From the source's motion to what the target should do: aligned, rest-corrected, scaled part by part.

- Body alignment: one rotation takes source skeleton space to target skeleton
  space so that the two body frames (forward, up, left) coincide; it absorbs
  Y-up against Z-up and different facing conventions.
- Rest-pose alignment: per mapped target joint, the rotation that turns its
  bones (towards its mapped children) in the target's reference pose onto the
  source's in the source's reference pose (T-pose against A-pose, arms along
  X against bent). The initial target pose is the source's change of every
  joint's global orientation since its reference pose, applied on top of that
  correction, so twists and joints without children (hands, head) follow too.
- Part-wise scaling (AnaMoDiff's part-wise adaptation, in 3D): each matched
  chain (pelvis to chest, chest to hand, pelvis to foot, ...) is a part; the
  source's offsets from the chain's start are scaled by the ratio of the two
  chains' lengths and hung from the start's adapted position (see
  :func:`part_positions`). The root (hub and trajectory joints) moves as the
  source's scaled by the ratio of leg lengths about the ground, so root
  height and stride follow leg length. These positions are the solver's
  targets: chain ends and the root chain firmly, joints inside a chain
  lightly (their scaled offsets cannot all fit the target's own proportions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.motion import Motion

from .mapping import Chain, Mapping
from .topology import Body

EFFECTOR_WEIGHT = 4.0  # chain ends (effectors and branch points such as the chest)
ROOT_WEIGHT = 50.0  # the hub and the joints above it
INNER_WEIGHT = 0.1  # joints inside a chain: they guide the bend, the rotation prior does the rest


def body_rotation(src: Body, tgt: Body) -> np.ndarray:
    """(3, 3) rotation taking source skel-space vectors to target skel space (body frames aligned)."""
    return tgt.basis @ src.basis.T


@dataclass
class Adapted:
    """The target's initial pose and position targets at the output times (target joint order)."""

    rotations: np.ndarray  # (F, J, 4) initial local rotations
    translations: np.ndarray  # (F, J, 3) initial local translations
    scales: np.ndarray  # (F, J, 3)
    targets: np.ndarray  # (F, J, 3) skel-space position targets (rows of unmapped joints unused)
    weights: np.ndarray  # (F, J) target weights (0 where no target)
    free_rotation: np.ndarray  # (J,) joints the solver may rotate
    free_translation: np.ndarray  # (J,) joints whose translation it may move (root chain)
    root_scale: float  # target leg length / source leg length
    leg_lengths: tuple[float, float]  # (source, target) mean hub-to-foot chain length
    chain_scales: dict[str, float]
    to_target: np.ndarray  # (3, 3) body rotation
    offset: np.ndarray  # (3,) target-space shift of the root mapping (ground to ground)

    def map_point(self, p: np.ndarray) -> np.ndarray:
        """Source skel-space points -> target skel space by the root mapping (scale about the ground)."""
        return self.root_scale * (np.asarray(p) @ self.to_target.T) + self.offset


def leg_lengths(src: Body, tgt: Body, mapping: Mapping) -> tuple[float, float]:
    """Mean hub-to-foot chain length of the matched legs, source and target (the sizes without legs)."""
    ls, lt = [], []
    for c in mapping.chains:
        if c.name.endswith("leg") and src.ancestor[src.hub, c.source_end] and tgt.ancestor[tgt.hub, c.target_end]:
            ls.append(src.path_length(src.hub, c.source_end))
            lt.append(tgt.path_length(tgt.hub, c.target_end))
    if ls and min(ls) > 0 and min(lt) > 0:
        return float(np.mean(ls)), float(np.mean(lt))
    return float(src.size), float(tgt.size)


def _correction(src: Body, tgt: Body, mapping: Mapping, a: np.ndarray) -> np.ndarray:
    """(J_t, 4) per target joint: rotation of its reference-pose bones onto the source's (target space)."""
    n = tgt.skeleton.num_joints
    src_of = mapping.target_of()
    parents = tgt.skeleton.parents
    mapped_anc = np.full(n, -1, dtype=np.int64)  # nearest mapped strict ancestor
    for j in range(n):
        p = parents[j]
        if p >= 0:
            mapped_anc[j] = p if src_of[p] >= 0 else mapped_anc[p]
    out = np.tile([0.0, 0.0, 0.0, 1.0], (n, 1))
    done = np.zeros(n, dtype=bool)
    for t in range(n):  # parent-first: an inherited correction is already known
        s = src_of[t]
        if s < 0:
            continue
        kids = [c for c in np.flatnonzero(mapped_anc == t) if src_of[c] >= 0]
        dt = np.array([tgt.positions[c] - tgt.positions[t] for c in kids]).reshape(-1, 3)
        ds = np.array([src.positions[src_of[c]] - src.positions[s] for c in kids]).reshape(-1, 3) @ a.T
        ok = (np.linalg.norm(dt, axis=1) > 1e-6 * tgt.size) & (np.linalg.norm(ds, axis=1) > 1e-6 * src.size)
        if ok.any():
            unit_t = dt[ok] / np.linalg.norm(dt[ok], axis=1, keepdims=True)
            unit_s = ds[ok] / np.linalg.norm(ds[ok], axis=1, keepdims=True)
            out[t] = Rotation.align_vectors(unit_s, unit_t)[0].as_quat()
            done[t] = True
        elif mapped_anc[t] >= 0:
            out[t] = out[mapped_anc[t]]
    return out


def part_positions(src: Body, tgt: Body, mapping: Mapping, pos_s: np.ndarray, adapted: Adapted):
    """(F, J_t, 3) position targets and (J_t,) which joints have one.

    Joints from the root down to the hub move with the root mapping. Below
    it, chain by chain from the top (pelvis to chest, chest to head, chest to
    hand, pelvis to foot, ...), the source's offsets from the chain's start
    are scaled by the ratio of the two chains' lengths and hung from the
    start's adapted position: a hand keeps its place relative to the chest in
    units of arm length, the chest relative to the pelvis in units of spine.
    Joints matched below a chain's end (fingers, toe tips) use its scale.
    """
    n_f, n_t = pos_s.shape[0], tgt.skeleton.num_joints
    k, a = adapted.root_scale, adapted.to_target
    targets = np.zeros((n_f, n_t, 3))
    has = np.zeros(n_t, dtype=bool)
    for chain in mapping.chains:
        s_idx = np.array([p[0] for p in chain.pairs], dtype=np.int64)
        t_idx = np.array([p[1] for p in chain.pairs], dtype=np.int64)
        if not len(s_idx):
            continue
        top = chain.source_start < 0 or not has[chain.target_start] or tgt.ancestor[chain.target_end, tgt.hub]
        scale = k if top else chain_scale(src, tgt, chain, k)
        if top:  # the root chain down to the hub moves as the whole body: scaled by leg length about the ground
            targets[:, t_idx] = adapted.map_point(pos_s[:, s_idx])
        else:
            rel = pos_s[:, s_idx] - pos_s[:, chain.source_start, None]
            targets[:, t_idx] = targets[:, chain.target_start, None] + scale * (rel @ a.T)
        adapted.chain_scales[chain.name] = scale
        has[t_idx] = True
    return targets, has


def chain_scale(src: Body, tgt: Body, chain: Chain, fallback: float) -> float:
    """Target chain over the source's, in the reference poses: path lengths for limbs (what they reach
    stretched), straight distances for the trunk, neck and tail (their natural curve is kept)."""
    if chain.name.endswith(("leg", "arm", "wing")):
        ls = src.path_length(chain.source_start, chain.source_end)
        lt = tgt.path_length(chain.target_start, chain.target_end)
    else:
        ls = float(np.linalg.norm(src.positions[chain.source_end] - src.positions[chain.source_start]))
        lt = float(np.linalg.norm(tgt.positions[chain.target_end] - tgt.positions[chain.target_start]))
    return float(lt / ls) if ls > 1e-6 * src.size and lt > 1e-6 * tgt.size else fallback


def adapt(src: Body, tgt: Body, mapping: Mapping, motion: Motion, current: Motion,
          ground: float | None = None) -> Adapted:
    """Initial pose and position targets for the target skeleton.

    ``motion``: the source on the output times; ``current``: the target's own
    local transforms on the same times (its animation, or its rest pose
    repeated), kept on joints without a counterpart. ``ground``: the source's
    ground height along its up axis (default: its reference pose's).
    """
    a = body_rotation(src, tgt)
    qa = Rotation.from_matrix(a).as_quat()
    sk_s, sk_t = src.skeleton, tgt.skeleton
    n_f, n_t = motion.num_frames, sk_t.num_joints
    pos_s = kinematics.global_positions(sk_s.parents, motion.rotations, motion.translations, motion.scales)
    glob_s = kinematics.global_rotations(sk_s.parents, motion.rotations)
    legs = leg_lengths(src, tgt, mapping)
    k = legs[1] / legs[0]
    g_s = src.ground if ground is None else ground
    offset = tgt.up * (tgt.ground - k * g_s)
    adapted = Adapted(np.array(current.rotations), np.array(current.translations), np.array(current.scales),
                      np.zeros((n_f, n_t, 3)), np.zeros((n_f, n_t)), np.zeros(n_t, bool), np.zeros(n_t, bool),
                      k, legs, {}, a, offset)
    targets, has = part_positions(src, tgt, mapping, pos_s, adapted)
    adapted.targets = targets

    # Joints inside a part only guide it (their scaled offsets cannot all fit the target's own proportions:
    # a hip joint hangs from the pelvis, not from the leg's scale); its end, the branch points and the root
    # chain are what the figures hold.
    adapted.weights[:, has] = INNER_WEIGHT
    ends = [c.target_end for c in mapping.chains]
    adapted.weights[:, [e for e in ends if has[e]]] = EFFECTOR_WEIGHT
    root_chain = np.flatnonzero(tgt.ancestor[:, tgt.hub] & has)
    adapted.weights[:, root_chain] = ROOT_WEIGHT

    # rotations: the source's change since its reference pose, on top of the rest correction
    src_of = mapping.target_of()
    corr = _correction(src, tgt, mapping, a)
    mapped = np.flatnonzero(src_of >= 0)
    delta = rot.multiply(glob_s[:, src_of[mapped]], rot.conjugate(src.rotations[src_of[mapped]])[None])
    delta = rot.multiply(rot.multiply(qa, delta), rot.conjugate(qa))
    wanted = np.zeros((n_f, n_t, 4))
    wanted[:, mapped] = rot.multiply(delta, rot.multiply(corr[mapped], tgt.rotations[mapped])[None])
    is_mapped = src_of >= 0
    glob_t = np.zeros((n_f, n_t, 4))
    pos_t = np.zeros((n_f, n_t, 3))
    parents = sk_t.parents
    loc_r, loc_t = adapted.rotations, adapted.translations
    roots_chain = _root_chain(tgt)
    adapted.free_translation = roots_chain & has
    if has[tgt.hub]:
        adapted.free_translation[tgt.hub] = True
    for level in sk_t.levels():
        par = parents[level]
        top = par < 0
        mp = is_mapped[level]
        pg = np.where(top[None, :, None], np.array([0.0, 0.0, 0.0, 1.0]), glob_t[:, np.maximum(par, 0)])
        loc_r[:, level[mp]] = rot.multiply(rot.conjugate(pg[:, mp]), wanted[:, level[mp]])
        glob_t[:, level] = rot.multiply(pg, loc_r[:, level])
        free = adapted.free_translation[level]
        pp = np.where(top[None, :, None], 0.0, pos_t[:, np.maximum(par, 0)])
        if free.any():
            # root-chain joints start where their targets are
            loc_t[:, level[free]] = rot.rotate(rot.conjugate(pg[:, free]), targets[:, level[free]] - pp[:, free])
        scaled = loc_t[:, level] * _parent_scales(adapted.scales, parents, level)
        pos_t[:, level] = pp + rot.rotate(pg, scaled)
    # the solver moves joints that carry a target or lead to one
    leads = np.zeros(n_t, dtype=bool)
    for t in np.flatnonzero(has):
        leads |= tgt.ancestor[:, t]
    adapted.free_rotation = leads & ~tgt.excluded
    adapted.rotations = rot.make_continuous(rot.normalize(loc_r), axis=0)
    return adapted


def _parent_scales(scales: np.ndarray, parents: np.ndarray, level: np.ndarray) -> np.ndarray:
    # a parent's scale stretches its children's offsets (UsdSkel: scale * rotate * translate)
    par = parents[level]
    out = np.ones(scales.shape[:1] + (len(level), 3))
    has = par >= 0
    out[:, has] = scales[:, par[has]]
    return out


def _root_chain(body: Body) -> np.ndarray:
    """Joints from the main root down to the hub (both included)."""
    return body.ancestor[:, body.hub].copy()
