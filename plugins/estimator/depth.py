"""Relative joint depth and the character's distance from its own rigid lengths.

The network does not predict how far the character is; it predicts each
joint's depth relative to the character's mean joint depth ``zc``, in the
unit the 2D joints have: ``r = (z - zc) * f / (zc * H / 2)``, a depth offset
drawn as an image offset at the character's distance and divided by half the
image height (the paper's depth scaling). An image twice as large shows the
same ``r`` twice as large, so the unit holds at distances the training renders
never showed (a character walking towards the camera).

The distance comes from geometry. With the principal point ``c`` and focal
``f`` of the render cameras, joint ``j`` sits at ``zc * q_j`` where
``q_j = ((u_j - c_x) / f, (v_j - c_y) / f, 1) * (1 + r_j * H / (2 f))``: the
predicted 2D joints and relative depths fix the 3D pose up to the one scale
``zc``. The training renders give the lengths between joints that never
change (bones and pairs on one rigid part, found as the pairs whose length
varies least); ``zc`` is the least-squares fit of those lengths.
"""
from __future__ import annotations

import numpy as np

RIGID_TOLERANCE = 0.001  # a pair is rigid when its length varies by less than this fraction (std / mean)
MIN_PAIRS = 8  # without enough rigid pairs, the least varying ones are used


def centred_depth(z: np.ndarray, focal, image_height: int,
                  observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Camera depth (N, J) metres -> (relative depth ``r`` (N, J) in the network unit, mean depth ``zc`` (N,)).

    ``zc`` is the mean over the ``observed`` joints (J,) bool (default all): a
    joint no image shows must not move the centre every other depth is read from.
    """
    z = np.asarray(z, dtype=np.float64)
    zc = z.mean(-1) if observed is None else z[:, np.asarray(observed, dtype=bool)].mean(-1)
    f = np.broadcast_to(np.asarray(focal, dtype=np.float64), zc.shape)
    r = (z - zc[:, None]) * f[:, None] / (zc[:, None] * image_height / 2)
    return r.astype(np.float32), zc


def pose_directions(joints2d: np.ndarray, r: np.ndarray, focal, image_size: tuple[int, int]) -> np.ndarray:
    """(N, J, 3) ``q``: camera-space joints divided by the mean joint depth (pixel centres at +0.5)."""
    h, w = image_size
    f = np.broadcast_to(np.asarray(focal, dtype=np.float64), (len(joints2d),))[:, None]
    rho = 1.0 + np.asarray(r, dtype=np.float64) * (h / 2) / f  # z_j / zc
    xy = np.asarray(joints2d, dtype=np.float64)
    x = (xy[..., 0] - w / 2) / f * rho
    y = (xy[..., 1] - h / 2) / f * rho
    return np.stack([x, y, rho], -1)


def back_project(joints2d: np.ndarray, z: np.ndarray, focal, image_size: tuple[int, int]) -> np.ndarray:
    """Pixels (N, J, 2) and camera depth (N, J) -> camera-space points (N, J, 3) metres."""
    r, zc = centred_depth(z, focal, image_size[0])
    return pose_directions(joints2d, r, focal, image_size) * zc[:, None, None]


def rigid_pairs(points: np.ndarray, tolerance: float = RIGID_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Joint pairs whose distance stays constant over the samples of ``points`` (N, J, 3).

    Returns (pairs (K, 2) int, mean lengths (K,) metres). Pairs shorter than 5%
    of the character's size are left out (their relative error is large).
    """
    points = np.asarray(points, dtype=np.float64)
    n, j = points.shape[:2]
    if j < 2 or n == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    a, b = np.triu_indices(j, 1)
    d = np.linalg.norm(points[:, a] - points[:, b], axis=-1)  # (N, K)
    mean = d.mean(0)
    size = float(np.ptp(points, axis=1).max(-1).mean()) or 1.0
    cv = d.std(0) / np.maximum(mean, 1e-12)
    long = mean > 0.05 * size
    keep = long & (cv < tolerance)
    if keep.sum() < MIN_PAIRS:  # e.g. animated joint scales: the steadiest long pairs
        order = np.argsort(np.where(long, cv, np.inf))[:MIN_PAIRS]
        keep = np.zeros_like(keep)
        keep[order[np.isfinite(cv[order]) & long[order]]] = True
    return np.stack([a[keep], b[keep]], 1), mean[keep]


def distance_from_lengths(q: np.ndarray, pairs: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean joint depth ``zc`` (N,) that makes the pose ``q`` (N, J, 3) have the rigid ``lengths``.

    Least squares: ``zc = sum(L |dq|) / sum(|dq|^2)`` over the rigid pairs.
    """
    if len(pairs) == 0:
        raise ValueError("no rigid joint pairs to measure the character's distance with")
    dq = np.linalg.norm(q[:, pairs[:, 0]] - q[:, pairs[:, 1]], axis=-1)  # (N, K)
    return (dq * lengths).sum(-1) / np.maximum((dq * dq).sum(-1), 1e-12)


def absolute_depth(joints2d: np.ndarray, r: np.ndarray, focal, image_size: tuple[int, int], pairs: np.ndarray,
                   lengths: np.ndarray, observed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predicted 2D joints and relative depths -> (camera depth (N, J) metres, mean depth zc (N,)).

    ``zc`` is the mean depth of the ``observed`` joints (J,) bool (default all), as in :func:`centred_depth`.
    """
    r = np.asarray(r, dtype=np.float64)
    centre = r.mean(-1, keepdims=True) if observed is None else r[:, np.asarray(observed, bool)].mean(-1, keepdims=True)
    r = r - centre  # zc is the mean (observed) joint depth by definition
    q = pose_directions(joints2d, r, focal, image_size)
    zc = distance_from_lengths(q, pairs, lengths)
    return (q[..., 2] * zc[:, None]).astype(np.float32), zc


def smooth_distance(zc: np.ndarray, times: np.ndarray, sigma: float) -> np.ndarray:
    """The character's distance ``zc`` (N,) at ``times`` (N,) smoothed over time, linear trends kept.

    A distance solved from one image's apparent size is noisy by a few pixels'
    worth, while the character's real distance changes smoothly. Local linear
    regression with Gaussian weights (``sigma`` in time codes) rather than a
    plain Gaussian average, so a character walking towards the camera keeps its
    trend at both ends of a sequence; frames far apart in time (another gap)
    barely weigh on each other. ``sigma <= 0`` returns ``zc`` unchanged.
    """
    zc = np.asarray(zc, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if sigma <= 0 or len(zc) < 3:
        return zc
    d = t[None, :] - t[:, None]  # (N, N): row i = offsets of every frame from frame i
    w = np.exp(-0.5 * (d / sigma) ** 2)
    s0, s1, s2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
    t0, t1 = w @ zc, (w * d) @ zc
    det = s0 * s2 - s1 * s1
    flat = det <= 1e-12 * np.maximum(s0 * s2, 1e-300)  # an isolated frame: nothing to fit a line to
    return np.where(flat, t0 / s0, (s2 * t0 - s1 * t1) / np.where(flat, 1.0, det))


def fit_rigid_lengths(joints2d: np.ndarray, z: np.ndarray, focal, image_size: tuple[int, int], pairs: np.ndarray,
                      lengths: np.ndarray, observed: np.ndarray | None = None, ratio: float = 0.75,
                      iterations: int = 12) -> np.ndarray:
    """Camera depths (N, J) adjusted so that the rigid pairs keep their lengths, near the network's relief.

    The 2D joints stay where the network put them (each joint moves along its
    pixel's ray). Per frame, damped Gauss-Newton on the observed joints' depths
    ``z`` minimising ``sum (|P_a - P_b| - L)^2 + (ratio)^2 sum (relief - relief_net)^2``,
    where relief is depth about the observed joints' mean: ``ratio`` is the
    length error allowed for a given relief error (lengths from 2D a pixel off
    against a network relief a few percent off). The distance and the relief
    both move: bones the network drew too short in depth get their length back.
    Batched over frames (one (J, J) solve per frame and iteration).
    """
    z = np.asarray(z, dtype=np.float64)
    n, j = z.shape
    obs = np.ones(j, bool) if observed is None else np.asarray(observed, bool)
    if len(pairs) == 0 or n == 0 or ratio <= 0:
        return z.astype(np.float32)
    index = -np.ones(j, np.int64)
    index[obs] = np.arange(obs.sum())
    a, b = index[pairs[:, 0]], index[pairs[:, 1]]
    if (a < 0).any() or (b < 0).any():
        raise ValueError("rigid pairs must join observed joints")
    h, w = image_size
    f = np.broadcast_to(np.asarray(focal, dtype=np.float64), (n,))[:, None]
    xy = np.asarray(joints2d, dtype=np.float64)[:, obs]
    ray = np.stack([(xy[..., 0] - w / 2) / f, (xy[..., 1] - h / 2) / f, np.ones(xy.shape[:2])], -1)  # (N, Jo, 3)
    zo = z[:, obs].copy()
    jo, k = zo.shape[1], len(pairs)
    relief0 = zo - zo.mean(1, keepdims=True)
    kappa = float(ratio) ** 2
    centre = np.eye(jo) - 1.0 / jo  # relief = centre @ z; centre^T centre = centre
    rows = np.arange(k)

    def residuals(zz):
        d = ray[:, a] * zz[:, a, None] - ray[:, b] * zz[:, b, None]  # (N, K, 3)
        length = np.linalg.norm(d, axis=-1)
        prior = zz - zz.mean(1, keepdims=True) - relief0
        return d, length, prior, ((length - lengths) ** 2).sum(1) + kappa * (prior ** 2).sum(1)

    d, length, prior, cost = residuals(zo)
    damping = np.full(n, 1e-3)
    for _ in range(iterations):
        safe = np.maximum(length, 1e-12)
        jac = np.zeros((n, k, jo))
        jac[:, rows, a] = (d * ray[:, a]).sum(-1) / safe
        jac[:, rows, b] = -(d * ray[:, b]).sum(-1) / safe
        normal = jac.transpose(0, 2, 1) @ jac + kappa * centre
        grad = (jac.transpose(0, 2, 1) @ (length - lengths)[..., None])[..., 0] + kappa * prior
        scale = np.trace(normal, axis1=1, axis2=2) / jo
        step = np.linalg.solve(normal + (damping * scale)[:, None, None] * np.eye(jo), -grad[..., None])[..., 0]
        trial = zo + step
        d2, length2, prior2, cost2 = residuals(trial)
        better = cost2 < cost
        zo = np.where(better[:, None], trial, zo)
        d = np.where(better[:, None, None], d2, d)
        length = np.where(better[:, None], length2, length)
        prior = np.where(better[:, None], prior2, prior)
        cost = np.where(better, cost2, cost)
        damping = np.where(better, damping * 0.3, damping * 10.0)
    out = z.copy()
    out[:, obs] = zo
    return out.astype(np.float32)
