"""From a path of clip segments to one continuous Motion (compose's assembly).

1. Every output frame samples its segment's clip at the matching source time
   (slerp between source frames), lengths converted to the output's units.
2. Each segment is moved rigidly (heading about the up axis + a ground
   translation of the trajectory joint) so that its first frame stands where
   the previous segment would have gone next: the root trajectory continues
   through every jump with the new clip's own root motion.
3. Each jump is blended by inertialisation: the difference between what the
   previous clip would have played next and what the new clip plays is added
   at the jump and decays smoothly to zero over ``blend`` seconds.
4. Keyframes (poses at output times): the whole motion is first moved so the
   first key's body stands where the key does; the root's remaining miss at
   later keys is spread over the frames since the previous key (in
   proportion to how much the root moves), then every joint is displaced
   smoothly so each key pose is met exactly.

Offsets on rotations are rotation vectors left-multiplied onto local
rotations; translations and scales are offset additively.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.motion import Motion


@dataclass
class Piece:
    """A played segment at the output rate: which clip motion, from which source time."""

    motion: Motion  # the clip (source rate, frames 0..n-1)
    unit_scale: float  # clip length units -> output units
    source_start: float  # seconds into the clip at the piece's first output frame
    first: int  # first output frame
    count: int  # output frames
    clip: int = -1  # library clip id (for reports)


def smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def sample(motion: Motion, seconds: np.ndarray, unit_scale: float = 1.0):
    """(rotations, translations, scales) of a clip at source times, clamped to the clip and
    extrapolated linearly past its last frame (a continuation that runs off the end)."""
    n = motion.num_frames
    u = np.asarray(seconds, dtype=np.float64) * motion.fps
    over = np.maximum(u - (n - 1), 0.0)
    u = np.clip(u, 0.0, n - 1)
    i0 = np.clip(np.floor(u + 1e-9).astype(np.int64), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    f = np.clip(u - i0, 0.0, 1.0)
    r = rot.slerp(motion.rotations[i0], motion.rotations[i1], np.broadcast_to(f[:, None], (len(f), motion.num_joints)))
    fw = f[:, None, None]
    t = ((1 - fw) * motion.translations[i0] + fw * motion.translations[i1]) * unit_scale
    s = (1 - fw) * motion.scales[i0] + fw * motion.scales[i1]
    if np.any(over > 0) and n >= 2:
        ow = over[:, None, None]
        vr = rot.log_map(rot.multiply(motion.rotations[n - 1], rot.conjugate(motion.rotations[n - 2])))
        r = np.where(ow > 0, rot.normalize(rot.multiply(rot.exp_map(vr[None] * ow), r)), r)
        t = t + ow * (motion.translations[n - 1] - motion.translations[n - 2]) * unit_scale
    return r, t, s


def body_state(frame, parents: np.ndarray, r, t, s) -> tuple[np.ndarray, np.ndarray]:
    """Ground position (F, 2) and heading (F,) of the body joint."""
    mats = kinematics.forward_kinematics(parents, r, t, s)
    body = rot.normalize(kinematics.decompose_matrices(mats[:, frame.body_joint])[0])
    return frame.ground(mats[:, frame.body_joint, 3, :3]), frame.yaw(body)


def move_root(frame, r, t, s, from_ground, from_yaw, to_ground, to_yaw):
    """Rigidly move every frame (trajectory joint) so its body goes from (ground, yaw) to the target."""
    j = frame.traj_joint
    theta = np.asarray(to_yaw, dtype=np.float64) - from_yaw
    r_col = rot.to_matrix(frame.yaw_rotation(theta))
    move = np.zeros((len(theta), 4, 4))
    move[:, :3, :3] = np.swapaxes(r_col, -1, -2)  # row-vector form
    move[:, 3, :3] = frame.lift(to_ground) - np.einsum("ti,tij->tj", frame.lift(from_ground), move[:, :3, :3])
    move[:, 3, 3] = 1.0
    p = frame.traj_parent
    placed = kinematics.local_matrices(r[:, j], t[:, j], s[:, j]) @ p @ move @ np.linalg.inv(p)
    q, tr, _ = kinematics.decompose_matrices(placed)
    r, t = r.copy(), t.copy()
    r[:, j], t[:, j] = rot.normalize(q), tr
    return r, t


def rot2(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def difference(a, b):
    """a minus b for (rotations, translations, scales): rotation vectors of a * b^-1, differences."""
    return rot.log_map(rot.multiply(a[0], rot.conjugate(b[0]))), a[1] - b[1], a[2] - b[2]


def apply_offsets(weights: np.ndarray, offsets, r, t, s):
    """Add ``sum_k weights[k, f] * offsets[k]`` to frames f; offsets are (K, J, 3) triples."""
    orot, otr, osc = (np.einsum("kf,kjc->fjc", weights, o) for o in offsets)
    return rot.normalize(rot.multiply(rot.exp_map(orot), r)), t + otr, s + osc


def assemble(pieces: list[Piece], frame, parents: np.ndarray, fps: float, blend: float = 0.3):
    """Sampled, root-aligned and blended (rotations, translations, scales) of all output frames,
    the output frames where pieces start (jumps), and the same frames before blending (what the
    source clips play there). One FK pass for all pieces."""
    counts = np.array([p.count for p in pieces])
    parts = [sample(p.motion, p.source_start + np.arange(p.count + 1) / fps, p.unit_scale) for p in pieces]
    r, t, s = (np.concatenate([part[i] for part in parts]) for i in range(3))  # each piece + its continuation
    g, y = body_state(frame, parents, r, t, s)
    first = np.concatenate([[0], np.cumsum(counts + 1)[:-1]])
    cont = first + counts
    theta = np.zeros(len(pieces))
    shift = np.zeros((len(pieces), 2))
    shift[0] = -g[0]
    for k in range(1, len(pieces)):  # per piece (a few dozen): where the previous one would go next
        prev_g = rot2(theta[k - 1]) @ g[cont[k - 1]] + shift[k - 1]
        theta[k] = y[cont[k - 1]] + theta[k - 1] - y[first[k]]
        shift[k] = prev_g - rot2(theta[k]) @ g[first[k]]
    th = np.repeat(theta, counts + 1)
    c, sn = np.cos(th), np.sin(th)
    tg = np.stack([c * g[:, 0] - sn * g[:, 1], sn * g[:, 0] + c * g[:, 1]], axis=1) + np.repeat(shift, counts + 1, 0)
    r, t = move_root(frame, r, t, s, g, y, tg, y + th)
    continuation = (r[cont[:-1]], t[cont[:-1]], s[cont[:-1]])
    played = np.ones(len(r), dtype=bool)
    played[cont] = False
    jumps = np.cumsum(counts)[:-1]
    raw = (r[played], t[played], s[played])
    r, t, s = raw
    if len(jumps):
        offs = difference(continuation, (r[jumps], t[jumps], s[jumps]))
        tau = (np.arange(len(r))[None, :] - jumps[:, None]) / max(blend * fps, 1.0)
        w = np.where(tau >= 0, 1.0 - smoothstep(tau), 0.0)
        r, t, s = apply_offsets(w, offs, r, t, s)
    return r, t, s, jumps, raw


def key_weights(frames: np.ndarray, keys: np.ndarray, window: float) -> np.ndarray:
    """(K, F) weights of each key's displacement: 1 at the key, 0 at the neighbouring keys or
    ``window`` frames away (whichever is nearer); between two close keys they sum to 1."""
    k = len(keys)
    w = np.zeros((k, len(frames)))
    for i, key in enumerate(keys):  # one vectorised row per key
        left = keys[i - 1] if i > 0 else -np.inf
        right = keys[i + 1] if i + 1 < k else np.inf
        span_l = min(window, key - left)
        span_r = min(window, right - key)
        d = frames - key
        row = np.where(d < 0, 1.0 - smoothstep(-d / max(span_l, 1e-9)), 1.0 - smoothstep(d / max(span_r, 1e-9)))
        row[(d < 0) & (frames <= left)] = 0.0
        row[(d > 0) & (frames >= right)] = 0.0
        w[i] = row
    return w


def meet_keys(frame, parents: np.ndarray, r, t, s, key_frames: np.ndarray, key_pose, window: int):
    """Move and displace the motion so it passes exactly through the key poses at ``key_frames``.

    ``key_pose``: (rotations, translations, scales) of the keys, (K, J, ...), output units.
    """
    if len(key_frames) == 0:
        return r, t, s
    kg, ky = body_state(frame, parents, *key_pose)
    g, y = body_state(frame, parents, r, t, s)
    y = np.unwrap(y)
    # 1. Rigid move of everything onto the first key.
    k0 = int(key_frames[0])
    theta = float(np.arctan2(np.sin(ky[0] - y[k0]), np.cos(ky[0] - y[k0])))
    tg = (g - g[k0]) @ rot2(theta).T + kg[0]
    ty = y + theta
    # 2. The root's miss at later keys, spread over the frames since the previous key by root motion.
    miss_g = kg - tg[key_frames]
    miss_y = np.arctan2(np.sin(ky - ty[key_frames]), np.cos(ky - ty[key_frames]))
    step = np.concatenate([[0.0], np.linalg.norm(np.diff(tg, axis=0), axis=1) + np.abs(np.diff(ty))])
    progress = np.cumsum(step + 0.25 * step.mean() + 1e-9)
    cg = np.stack([np.interp(progress, progress[key_frames], miss_g[:, i]) for i in range(2)], axis=1)
    cy = np.interp(progress, progress[key_frames], miss_y)
    r, t = move_root(frame, r, t, s, g, y, tg + cg, ty + cy)
    # 3. Every joint displaced smoothly to meet each key exactly.
    offs = difference(key_pose, (r[key_frames], t[key_frames], s[key_frames]))
    w = key_weights(np.arange(len(r)), key_frames, window)
    return apply_offsets(w, offs, r, t, s)
