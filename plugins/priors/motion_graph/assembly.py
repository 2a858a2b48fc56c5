"""From a graph path to joint-local samples that meet the known motion exactly at both ends.

1. Every path frame's pose is placed on the re-targeted root trajectory by a
   rigid move (heading about the up axis + ground translation) of the
   trajectory joint, so the whole character follows it.
2. Each transition (a jump in the path) is blended by inertialisation: the
   offset between what the previous clip would have played next and what the
   new clip plays is added at the jump and decays smoothly to zero over
   ``blend`` frames, so the pose is continuous where clips change.
3. The remaining mismatch with the known sample before the gap and with the
   keyframe after it is spread over (up to) ``window`` frames at each end with a
   smooth displacement map: weight 1 at the known sample, 0 away from it. The
   sample before the gap and the keyframe are reproduced exactly (to float
   precision), so the motion arrives at every key without a pop.

Offsets on rotations act as rotation vectors left-multiplied onto local
rotations; translations and scales are offset additively.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot

from .features import BodyFrame
from .graph import MotionGraph


def smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def place(graph: MotionGraph, frame: BodyFrame, nodes: np.ndarray, ground: np.ndarray, yaw: np.ndarray):
    """Local (rot, trans, scale) of ``nodes`` moved rigidly so their body sits at (ground, yaw)."""
    r = graph.rotations[nodes].copy()
    t = graph.translations[nodes].copy()
    s = graph.scales[nodes].copy()
    j = frame.traj_joint
    theta = yaw - graph.yaw[nodes]
    r_col = rot.to_matrix(frame.yaw_rotation(theta))  # (T, 3, 3) column-vector
    move = np.zeros((len(nodes), 4, 4))
    move[:, :3, :3] = np.swapaxes(r_col, -1, -2)  # row-vector form
    src = frame.lift(graph.ground[nodes])
    move[:, 3, :3] = frame.lift(ground) - np.einsum("ti,tij->tj", src, move[:, :3, :3])
    move[:, 3, 3] = 1.0
    local = kinematics.local_matrices(r[:, j], t[:, j], s[:, j])
    p = frame.traj_parent
    placed = local @ p @ move @ np.linalg.inv(p)
    q, tr, _ = kinematics.decompose_matrices(placed)
    r[:, j], t[:, j] = q, tr
    return r, t, s


def difference(a_rot, a_tr, a_sc, b_rot, b_tr, b_sc):
    """a minus b: rotation vectors of a * b^-1 (shortest arc), translation and scale differences."""
    d = rot.multiply(a_rot, rot.conjugate(b_rot))
    return rot.log_map(d), a_tr - b_tr, a_sc - b_sc


def apply(rot_vec, dt, ds, r, t, s):
    return rot.normalize(rot.multiply(rot.exp_map(rot_vec), r)), t + dt, s + ds


def assemble(graph: MotionGraph, frame: BodyFrame, nodes: np.ndarray, ground: np.ndarray, yaw: np.ndarray,
             start: tuple, end: tuple, blend: int, window: int, profile: str = "smooth"):
    """Samples at steps 0..n+1 of a path (start and end included, equal to ``start`` and ``end``).

    ``start``/``end`` are (rotations (J,4), translations (J,3), scales (J,3)) of
    the known samples; ``ground``/``yaw`` the re-targeted root trajectory.
    """
    m = len(nodes)
    r, t, s = place(graph, frame, nodes, ground, yaw)
    steps = np.arange(m)

    # Inertialisation at every transition: continuation of the previous clip minus the new clip.
    prev_nodes = nodes[:-1]
    jumps = np.flatnonzero(nodes[1:] != graph.next[prev_nodes]) + 1
    if len(jumps):
        cont = graph.next[nodes[jumps - 1]]
        has = cont >= 0
        cr, ct, cs = place(graph, frame, np.where(has, cont, nodes[jumps]), ground[jumps], yaw[jumps])
        # A clip that ends has no next frame: extrapolate its last step instead.
        before = np.maximum(jumps - 2, 0)
        vr = rot.multiply(r[jumps - 1], rot.conjugate(r[before]))
        er = rot.multiply(vr, r[jumps - 1])
        et, es = 2 * t[jumps - 1] - t[before], 2 * s[jumps - 1] - s[before]
        cr = np.where(has[:, None, None], cr, er)
        ct = np.where(has[:, None, None], ct, et)
        cs = np.where(has[:, None, None], cs, es)
        xr, xt, xs = difference(cr, ct, cs, r[jumps], t[jumps], s[jumps])
        tau = steps[None, :] - jumps[:, None]
        w = np.where(tau >= 0, 1.0 - smoothstep(tau / max(blend, 1)), 0.0)  # (K, m)
        r, t, s = apply(np.einsum("km,kjc->mjc", w, xr), np.einsum("km,kjc->mjc", w, xt),
                        np.einsum("km,kjc->mjc", w, xs), r, t, s)

    # Displacement maps to the known samples at both ends.
    w_start, w_end = end_weights(m, window, profile)
    last = m - 1
    ar, at, as_ = difference(*start, r[0], t[0], s[0])
    br, bt, bs = difference(*end, r[last], t[last], s[last])
    r, t, s = apply(w_start[:, None, None] * ar, w_start[:, None, None] * at, w_start[:, None, None] * as_, r, t, s)
    r, t, s = apply(w_end[:, None, None] * br, w_end[:, None, None] * bt, w_end[:, None, None] * bs, r, t, s)
    return r, t, s


def end_weights(m: int, window: int, profile: str = "smooth") -> tuple[np.ndarray, np.ndarray]:
    """Weights of the start and end displacement at steps 0..m-1: 1 at their known sample,
    0 from ``window`` steps away (or at the other end, whichever is nearer)."""
    last = m - 1
    steps = np.arange(m)
    span = float(min(window, last)) if window > 0 else float(last)
    ramp = smoothstep if profile == "smooth" else (lambda u: np.clip(u, 0.0, 1.0))
    return 1.0 - ramp(steps / span), 1.0 - ramp((last - steps) / span)


SNAP = 1e-4  # of a step: fractional positions this close to a whole step play that step exactly


def sample(r: np.ndarray, t: np.ndarray, s: np.ndarray, u: np.ndarray):
    """Samples at fractional steps ``u`` (slerp / lerp between neighbouring steps).

    Positions within ``SNAP`` of a whole step (near-integer time codes such as
    1.0000000521) take that step's sample as it is.
    """
    u = np.asarray(u, dtype=np.float64)
    whole = np.round(u)
    u = np.where(np.abs(u - whole) < SNAP, whole, u)
    i0 = np.clip(np.floor(u).astype(np.int64), 0, len(r) - 1)
    i1 = np.clip(i0 + 1, 0, len(r) - 1)
    f = np.clip(u - i0, 0.0, 1.0)
    if not np.any(f > 0.0):
        return r[i0], t[i0], s[i0]
    fw = f[:, None, None]
    return (rot.slerp(r[i0], r[i1], np.broadcast_to(f[:, None], (len(f), r.shape[1]))),
            (1 - fw) * t[i0] + fw * t[i1], (1 - fw) * s[i0] + fw * s[i1])
