"""The target's joint rotations solved to reach the adapted positions: Warp FK + joint loss, batched over frames.

Parameters, as in the mimicking optimiser: per frame and free joint a rotation
vector applied to the initial local rotation (``q = q_init * exp(v)``, so
``v = 0`` is the rest-corrected transfer), and per frame a translation of the
root-chain joints in target sizes. The loss, summed over frames:

    sum_j w[f, j] |x[f, j] - x*[f, j]|^2 / h^2          (Warp FK + joint loss kernels, their adjoint)
  + prior  * sum_j |v[f, j]|^2                          (stay near the transfer: twists, leaves)
  + smooth * sum_j |v[f + 1, j] - v[f, j]|^2 + the same on the root translation

with ``h`` the target's size and ``w`` the adaptation's weights (end
effectors and the hub 4, planted contacts 20). Smoothness couples the frames,
so the whole clip is one problem, solved by L-BFGS (scipy) on the kernels'
loss and gradients: no torch, so nothing heavy loads (torch.optim alone pulls
in torch._dynamo, seconds on a small machine).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from anymole_usd import rotations as rot

from .adapt import Adapted


@dataclass
class SolveSettings:
    iterations: int = 60
    prior: float = 1e-3
    smooth: float = 0.1
    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class SolveStats:
    iterations: int = 0
    evaluations: int = 0
    loss_start: float = 0.0
    loss_end: float = 0.0
    position_error: float = 0.0  # weighted RMS distance to the targets, in target sizes
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def exp_and_vjp(v: np.ndarray) -> tuple[np.ndarray, callable]:
    """Unit quaternions exp(v) for rotation vectors (..., 3), and the map of a quaternion gradient to v."""
    th2 = np.sum(v * v, axis=-1, keepdims=True)
    th = np.sqrt(th2)
    small = th2 < 1e-8
    safe = np.where(small, 1.0, th)
    s = np.where(small, 0.5 - th2 / 48.0, np.sin(0.5 * th) / safe)  # sin(th/2) / th
    c = np.where(small, 1.0 - th2 / 8.0, np.cos(0.5 * th))
    # d s / d th^2 expressed as (c / 2 - s) / th^2, with its limit -1/24 at 0
    ds = np.where(small, -1.0 / 24.0 + th2 / 960.0, (0.5 * c - s) / np.where(small, 1.0, th2))
    q = np.concatenate([v * s, c], axis=-1)

    def vjp(g: np.ndarray) -> np.ndarray:
        gv, gw = g[..., :3], g[..., 3:]
        return s * gv + v * (np.sum(v * gv, axis=-1, keepdims=True) * ds) - 0.5 * s * v * gw

    return q, vjp


MIN_LEVER = 0.05  # of the size: the shortest lever a rotation is scaled by
WINDOW = 150  # frames solved together
OVERLAP = 16  # frames two consecutive windows share (blended)


def _levers(parents: np.ndarray, adapted: Adapted, size: float) -> np.ndarray:
    """(J,) per joint, the farthest weighted joint below it in the initial pose, in sizes."""
    from anymole_usd import kinematics

    pos = kinematics.global_positions(parents, adapted.rotations[:1], adapted.translations[:1], adapted.scales[:1])[0]
    weighted = adapted.weights.max(axis=0) > 0
    n = len(parents)
    anc = np.eye(n, dtype=bool)
    for j in range(n):
        if parents[j] >= 0:
            anc[:, j] |= anc[:, parents[j]]
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)  # (J, J)
    reach = np.where(anc & weighted[None], dist, 0.0).max(axis=1)
    return reach / size


def _solve_window(parents: np.ndarray, adapted: Adapted, size: float, settings: SolveSettings, stats: SolveStats,
                  lever_all: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray, float]:
    """One window of frames: (rotations, translations, weighted squared residual)."""
    from scipy.optimize import minimize

    from anymole_usd.kernels.joint_loss import joint_loss

    n_f, n_j = adapted.rotations.shape[:2]
    ri = np.flatnonzero(adapted.free_rotation)
    ti = np.flatnonzero(adapted.free_translation)
    q0, t0 = adapted.rotations, adapted.translations
    weights = adapted.weights / size ** 2
    n_v, n_p = n_f * len(ri) * 3, n_f * len(ti) * 3
    q_init_free = q0[:, ri]
    lever = lever_all[ri][None, :, None]

    def unpack(x):
        return x[:n_v].reshape(n_f, len(ri), 3) / lever, x[n_v:].reshape(n_f, len(ti), 3)

    def pose(v, p):
        e, vjp = exp_and_vjp(v)
        q = q0.copy()
        q[:, ri] = rot.multiply(q_init_free, e)
        t = t0.copy()
        t[:, ti] = t0[:, ti] + size * p
        return q, t, vjp

    def fun(x):
        v, p = unpack(x)
        q, t, vjp = pose(v, p)
        jl = joint_loss(parents, q, t, adapted.targets, weights, adapted.scales)
        loss = jl.loss + settings.prior * float(np.sum(v * v))
        # chain rule through q = q_init * exp(v): left-multiplying by a unit quaternion is orthogonal
        gv = vjp(rot.multiply(rot.conjugate(q_init_free), jl.grad_rotations[:, ri])) + 2.0 * settings.prior * v
        gp = size * jl.grad_translations[:, ti]
        if n_f > 1:
            for a, g in ((v, gv), (p, gp)):
                d = a[1:] - a[:-1]
                loss += settings.smooth * float(np.sum(d * d))
                g[1:] += 2.0 * settings.smooth * d
                g[:-1] -= 2.0 * settings.smooth * d
        stats.evaluations += 1
        if progress is not None:
            progress()
        return loss, np.concatenate([(gv / lever).ravel(), gp.ravel()])

    x0 = np.zeros(n_v + n_p)
    stats.loss_start += float(fun(x0)[0])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": settings.iterations, "maxcor": 8, "ftol": 1e-12, "gtol": 1e-10})
    stats.iterations = max(stats.iterations, int(res.nit))
    stats.loss_end += float(res.fun)
    v, p = unpack(res.x)
    q, t, _ = pose(v, p)
    pos = joint_loss(parents, q, t, adapted.targets, adapted.weights, adapted.scales, grad=False)
    return rot.normalize(q), t, pos.loss


def windows(n_f: int, size: int = WINDOW, overlap: int = OVERLAP) -> list[tuple[int, int]]:
    """[start, end) frame windows of at most ``size`` frames, consecutive ones sharing ``overlap``."""
    if n_f <= size:
        return [(0, n_f)]
    count = int(np.ceil((n_f - overlap) / (size - overlap)))
    step = (n_f - overlap) / count
    starts = [int(round(i * step)) for i in range(count)]
    return [(a, min(n_f, a + int(np.ceil(step)) + overlap)) for a in starts[:-1]] + [(starts[-1], n_f)]


def solve(parents: np.ndarray, adapted: Adapted, size: float, settings: SolveSettings | None = None,
          progress=None) -> tuple[np.ndarray, np.ndarray, SolveStats]:
    """(rotations (F, J, 4), translations (F, J, 3), stats) of the target on the output frames.

    Long clips are solved in windows of ``WINDOW`` frames that overlap by ``OVERLAP`` and are blended
    across the overlap: every frame gets the same number of iterations however long the clip (a
    single problem over a 40 s clip left planted feet centimetres off after the same iterations),
    and the cost stays linear in the length.
    """
    settings = settings or SolveSettings()
    stats = SolveStats()
    start = time.perf_counter()
    n_f = adapted.rotations.shape[0]
    if n_f == 0 or not (adapted.free_rotation.any() or adapted.free_translation.any()) or settings.iterations <= 0:
        return adapted.rotations.copy(), adapted.translations.copy(), stats
    # Diagonal preconditioning: a joint's rotation moves its descendants by its lever arm, so the
    # hips' variable would be a hundred times stiffer than a toe's; optimise u = v * lever instead.
    lever = np.maximum(_levers(parents, adapted, size), MIN_LEVER)
    spans = windows(n_f)
    total = len(spans) * 1.2 * settings.iterations

    def tick():
        if progress is not None:
            progress(min(1.0, stats.evaluations / total))

    q = np.zeros_like(adapted.rotations)
    t = np.zeros_like(adapted.translations)
    residual = 0.0
    prev_end = 0
    for a, b in spans:
        part = replace(adapted, rotations=adapted.rotations[a:b], translations=adapted.translations[a:b],
                       scales=adapted.scales[a:b], targets=adapted.targets[a:b], weights=adapted.weights[a:b])
        qw, tw, res = _solve_window(parents, part, size, settings, stats, lever, tick)
        residual += res
        shared = max(0, prev_end - a)  # frames a .. prev_end-1 were solved by the previous window too
        if shared:
            w = ((np.arange(shared) + 1.0) / (shared + 1.0))[:, None]
            old = rot.make_continuous(np.stack([q[a:prev_end], qw[:shared]]), axis=0)
            q[a:prev_end] = rot.slerp(old[0], old[1], np.broadcast_to(w, old[0].shape[:-1]))
            t[a:prev_end] = (1.0 - w[..., None]) * t[a:prev_end] + w[..., None] * tw[:shared]
        q[a + shared:b], t[a + shared:b] = qw[shared:], tw[shared:]
        prev_end = b
    stats.position_error = float(np.sqrt(residual / max(adapted.weights.sum(), 1e-12))) / size
    stats.seconds = time.perf_counter() - start
    return rot.normalize(q), t, stats
