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
so the whole clip is one problem (solved in overlapping windows), by L-BFGS
on the kernels' loss and gradients: no torch, so nothing heavy loads
(torch.optim alone pulls in torch._dynamo, seconds on a small machine).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from anymole_usd import rotations as rot

from .adapt import Adapted


@dataclass
class SolveSettings:
    iterations: int = 120
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

    def merged(self, earlier: SolveStats) -> SolveStats:
        """This solve's figures with an earlier solve's work (iterations, evaluations, time) added."""
        return replace(self, iterations=self.iterations + earlier.iterations,
                       evaluations=self.evaluations + earlier.evaluations, seconds=self.seconds + earlier.seconds,
                       notes=earlier.notes + self.notes)


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


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum's own loop, not BLAS: OpenBLAS threads spin against other processes on a shared machine
    # (measured: 3 ms per 30k-element dot under load, 70 us here)
    return float(np.einsum("i,i->", a, b))


def lbfgs(fun, x0: np.ndarray, iterations: int, memory: int = 8, ftol: float = 1e-12):
    """Minimise ``fun(x) -> (value, gradient)`` by L-BFGS (two-loop recursion, Armijo backtracking).

    scipy's L-BFGS-B spends more time in its bound-constraint bookkeeping than the kernels take to
    evaluate this loss (measured: 1.1 of 3 s on a 300-frame, 65-joint clip); without bounds the
    two-loop recursion is a few vector operations. Returns (x, value, iterations).
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    hist: list[tuple[np.ndarray, np.ndarray, float]] = []
    it = 0
    for it in range(1, iterations + 1):
        q = g.copy()
        alphas = []
        for s_k, y_k, rho in reversed(hist):
            a = rho * _dot(s_k, q)
            q -= a * y_k
            alphas.append(a)
        if hist:
            s_k, y_k, _ = hist[-1]
            q *= _dot(s_k, y_k) / _dot(y_k, y_k)
        else:
            q /= max(np.sqrt(_dot(g, g)), 1e-300)  # first step: unit length
        for (s_k, y_k, rho), a in zip(hist, reversed(alphas)):
            q += s_k * (a - rho * _dot(y_k, q))
        d = -q
        slope = _dot(g, d)
        if slope >= 0:  # not a descent direction: restart from the gradient
            hist.clear()
            d = -g / max(np.sqrt(_dot(g, g)), 1e-300)
            slope = _dot(g, d)
        step = 1.0
        for _ in range(30):
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s_k, y_k = x_new - x, g_new - g
        sy = _dot(s_k, y_k)
        if sy > 1e-12 * _dot(y_k, y_k):
            hist.append((s_k, y_k, 1.0 / sy))
            if len(hist) > memory:
                hist.pop(0)
        done = abs(f - f_new) <= ftol * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if done:
            break
    return x, f, it


class JointLossEvaluator:
    """The Warp FK + joint-loss kernels with their arrays kept between evaluations (one window).

    ``kernels.joint_loss.joint_loss`` builds every Warp array afresh; an optimiser calls it a few
    hundred times on the same shapes, so here the arrays are made once and refilled.
    """

    def __init__(self, parents, rotations, translations, scales, targets, weights) -> None:
        import warp as wp

        from anymole_usd.kernels.fk import FKArrays

        self.wp = wp
        self.fk = FKArrays(parents, rotations, translations, scales, requires_grad=True)
        p, dev = self.fk.precision, self.fk.device
        n_f = rotations.shape[0]
        self.targets = wp.array(np.asarray(targets, np.float64), dtype=p.vec3, device=dev)
        self.weights = wp.array(np.ascontiguousarray(weights, np.float64), dtype=p.scalar, device=dev)
        self.loss = wp.zeros(n_f, dtype=p.scalar, device=dev, requires_grad=True)
        self.seed = wp.array(np.ones(n_f), dtype=p.scalar, device=dev)

    def __call__(self, rotations: np.ndarray, translations: np.ndarray, grad: bool = True):
        """(loss, d loss / d rotations (F, J, 4), d loss / d translations (F, J, 3))."""
        from anymole_usd.kernels.joint_loss import launch_joint_loss

        fk = self.fk
        fk.rotations.assign(np.ascontiguousarray(rotations, np.float64))
        fk.translations.assign(np.ascontiguousarray(translations, np.float64))
        arrays = (fk.rotations, fk.translations, fk.scales, fk.linear, fk.positions, self.loss)
        for a in arrays:  # adjoints accumulate: start every evaluation from zero
            a.grad.zero_()
        self.loss.zero_()
        tape = self.wp.Tape()
        with tape:
            fk.launch()
            launch_joint_loss(fk.positions, self.targets, self.weights, self.loss)
        value = float(self.loss.numpy().sum())
        if not grad:
            return value, None, None
        tape.backward(grads={self.loss: self.seed})
        return value, fk.rotations.grad.numpy(), fk.translations.grad.numpy()


def _solve_window(parents: np.ndarray, adapted: Adapted, size: float, settings: SolveSettings, stats: SolveStats,
                  lever_all: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray, float]:
    """One window of frames: (rotations, translations, weighted squared residual)."""
    n_f, n_j = adapted.rotations.shape[:2]
    ri = np.flatnonzero(adapted.free_rotation)
    ti = np.flatnonzero(adapted.free_translation)
    q0, t0 = adapted.rotations, adapted.translations
    weights = adapted.weights / size ** 2
    n_v, n_p = n_f * len(ri) * 3, n_f * len(ti) * 3
    q_init_free = q0[:, ri]
    lever = lever_all[ri][None, :, None]
    joint_loss = JointLossEvaluator(parents, q0, t0, adapted.scales, adapted.targets, weights)

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
        value, g_rot, g_trans = joint_loss(q, t)
        loss = value + settings.prior * float(np.sum(v * v))
        # chain rule through q = q_init * exp(v): left-multiplying by a unit quaternion is orthogonal
        gv = vjp(rot.multiply(rot.conjugate(q_init_free), g_rot[:, ri])) + 2.0 * settings.prior * v
        gp = size * g_trans[:, ti]
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
    x, value, iterations = lbfgs(fun, x0, settings.iterations)
    stats.iterations = max(stats.iterations, iterations)
    stats.loss_end += value
    v, p = unpack(x)
    q, t, _ = pose(v, p)
    return rot.normalize(q), t, joint_loss(q, t, grad=False)[0] * size ** 2


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
