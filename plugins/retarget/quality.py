"""How faithful a retarget is to its source, measured on both sides in leg lengths.

- contact timing: per held foot, planted frames (the graph prior's low-and-slow
  rule, its thresholds in the same leg lengths on both sides) of the source
  joint against its target joint, as an F1 score;
- foot skate: horizontal speed of contact joints on the steps where the
  source's is near the ground (the ``foot-skate`` metric's rule, decided on
  the source for both sides), in leg lengths per second;
- root path: horizontal path length of the hub, in leg lengths, both sides;
- end effectors relative to the hub: distance between the target's offset and
  the source's after part-wise scaling (adapt.py: chest from the pelvis in
  units of spine, hand from the chest in units of arm), as a fraction of the
  target's hub-to-effector chain length; also, for information, against the
  source's offset scaled by one ratio for the whole hub-to-effector path;
- rotation jumps: the largest frame-to-frame change of any local rotation,
  both sides on the same output times.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.contacts import ground_levels
from anymole_usd.plugins.metrics.foot_skate import CONTACT_HEIGHT, skate_terms
from anymole_usd.plugins.priors.motion_graph.footlock import Feet, planted

from .topology import Body

BODY_CHAINS = ("root", "pelvis", "spine", "neck", "body")


def _flat(v: np.ndarray, up: np.ndarray) -> np.ndarray:
    return v - (v @ up)[..., None] * up


def _planted(body: Body, positions: np.ndarray, joints: np.ndarray, fps: float, size: float) -> np.ndarray:
    feet = Feet(joints, ground_levels(positions, joints, body.up), np.full((len(joints), 3), -1), body.up, size)
    return planted(feet, positions, fps)


def evaluate(result) -> dict:
    """Figures of a :class:`retarget.RetargetResult` (see the module docstring)."""
    src, tgt = result.source_body, result.target_body
    ms, mt = result.source, result.motion
    fps = mt.fps / float(np.median(np.diff(mt.times))) if mt.num_frames > 1 else mt.fps
    ps = kinematics.global_positions(src.skeleton.parents, ms.rotations, ms.translations, ms.scales)
    pt = kinematics.global_positions(tgt.skeleton.parents, mt.rotations, mt.translations, mt.scales)
    ls, lt = result.adapted.leg_lengths
    out: dict = {"frames": mt.num_frames, "leg_source": ls, "leg_target": lt}

    h = result.holds
    feet = [i for i, k in enumerate(h.kinds) if k == "foot"]
    if feet and mt.num_frames > 2:
        js, jt = h.source[feet], h.target[feet]
        # the planted rule's thresholds (fractions of the size) taken in the same leg lengths on both sides
        lab_s = _planted(src, ps, js, fps, src.size)
        lab_t = _planted(tgt, pt, jt, fps, src.size * lt / ls)
        tp = float(np.sum(lab_s & lab_t))
        out["contact_f1"] = 2 * tp / max(2 * tp + np.sum(lab_s & ~lab_t) + np.sum(~lab_s & lab_t), 1.0)
        # On the frame steps where the source's foot is in contact (the foot-skate metric's rule, on the
        # source), horizontal speed of the foot on each side in leg lengths per second. Contact is
        # decided on the source for both: 1% of the size is a different height in leg lengths on a
        # long-legged and a short-legged character, which would compare different frames.
        steps = np.ones(mt.num_frames - 1, dtype=bool)
        sk_s = skate_terms(ps, fps, js, ground_levels(ps, js, src.up), src.up, src.size, steps)
        h = ps[:, js] @ src.up - ground_levels(ps, js, src.up)
        near = h < CONTACT_HEIGHT * src.size
        contact = near[1:] & near[:-1]
        d = pt[1:, jt] - pt[:-1, jt]
        speed_t = np.linalg.norm(d - (d @ tgt.up)[..., None] * tgt.up, axis=-1) * fps / lt
        out["skate_source"] = float(sk_s.mean()) * src.size / ls  # leg lengths per second
        out["skate_target"] = float((speed_t * contact).mean())
    hub_s, hub_t = _flat(ps[:, src.hub], src.up), _flat(pt[:, tgt.hub], tgt.up)
    out["path_source"] = float(np.linalg.norm(np.diff(hub_s, axis=0), axis=-1).sum()) / ls
    out["path_target"] = float(np.linalg.norm(np.diff(hub_t, axis=0), axis=-1).sum()) / lt

    a = result.adapted.to_target
    targets = result.adapted.targets
    errors, path_errors = {}, {}
    for c in result.mapping.chains:
        e_t, e_s = c.target_end, c.source_end
        if c.name in BODY_CHAINS or e_t == tgt.hub:  # only the chains that end in a limb, head or tail
            continue
        if not (tgt.ancestor[tgt.hub, e_t] and src.ancestor[src.hub, e_s]):
            continue
        l_t, l_s = tgt.path_length(tgt.hub, e_t), src.path_length(src.hub, e_s)
        if l_t <= 0 or l_s <= 0:
            continue
        got = pt[:, e_t] - pt[:, tgt.hub]
        # against the part-wise scaled source (the adaptation), and against one scale for the whole path
        errors[c.name] = np.linalg.norm(got - (targets[:, e_t] - targets[:, tgt.hub]), axis=-1) / l_t
        want = (l_t / l_s) * ((ps[:, e_s] - ps[:, src.hub]) @ a.T)
        path_errors[c.name] = np.linalg.norm(got - want, axis=-1) / l_t
    if errors:
        allerr = np.concatenate(list(errors.values()))
        out["effector_error_mean"] = float(allerr.mean())
        out["effector_error_p95"] = float(np.percentile(allerr, 95))
        out["effector_error_by_chain"] = {k: float(v.mean()) for k, v in errors.items()}
        out["effector_error_path_mean"] = float(np.concatenate(list(path_errors.values())).mean())

    if mt.num_frames > 1:
        qs = rot.make_continuous(rot.normalize(ms.rotations), axis=0)
        qt = rot.make_continuous(rot.normalize(mt.rotations), axis=0)
        keep_s = ~src.excluded
        out["jump_source"] = float(rot.angle_between(qs[1:, keep_s], qs[:-1, keep_s]).max())
        out["jump_target"] = float(rot.angle_between(qt[1:], qt[:-1]).max())
    return out


def identity_error(result) -> float:
    """Largest joint position difference between source and target, in target sizes (same skeletons)."""
    src, tgt = result.source_body, result.target_body
    ms, mt = result.source, result.motion
    ps = kinematics.global_positions(src.skeleton.parents, ms.rotations, ms.translations, ms.scales)
    pt = kinematics.global_positions(tgt.skeleton.parents, mt.rotations, mt.translations, mt.scales)
    return float(np.abs(ps - pt).max() / tgt.size)
