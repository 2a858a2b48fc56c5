"""Mimicking targets from the joint estimator: 2D joints and depths on the video frames.

The estimator (``plugins/estimator``) is trained on the shot's known renders and
predicts every frame to fill; this module turns its predictions into
:class:`~.optimizer.MimicTargets` rows, with two corrections measured in
docs/benchmarks.md (Mimicking, "Estimator targets"):

- **relief from the known poses** (``relief="blend"``): the network's depths
  about the character's mean depth (its *relief*) regress towards the mean on
  poses it never saw (slope 0.7 against the truth on the Bandai walk). The
  shot's own known poses, projected with the same camera, are a second,
  non-parametric estimate: the relief of the known poses whose 2D skeleton
  (centred, scaled to unit spread) is nearest to the predicted one, in units of
  the pose's 2D size. The two are blended per frame with weight
  ``exp(-d / relief_tau)`` on the nearest 2D distance ``d``: a gait whose cycle
  the context shows takes the retrieved relief, a pose the context never shows
  keeps the network's. A front view cannot tell which leg is in front, so
  retrieval can pick the mirrored phase: its reliability is measured on the
  known poses themselves (each retrieved from the others more than 0.25 s
  away, against its true relief) and the weight is scaled down by
  ``(relief_reliable / error)^2`` when that error exceeds ``relief_reliable``;
- **temporal smoothing anchored at the keyframes** (``target_smoothing``):
  each gap's 2D joints and depths, with the known poses' exact projections at
  both ends, are smoothed by a Whittaker smoother (second differences weighted
  by ``target_smoothing``, the ends held): per-frame noise of the network
  averages out and the frames next to a keyframe meet it;
- **the character's distance** (``distance_fusion``): the distance of the pose
  interpolated between the keys is exact at the keys and good while the body
  moves as the interpolation does (a walk: 0.1% off), but misses a body that
  steps towards the camera and back between them (a kick: 1.4%, up to 4%). The
  estimator's own distance (from the rigid lengths) follows such steps, with
  ~1% of error of its own. Per gap, its difference from the interpolated
  distance is added, smoothed over the gap and held at 0 at both keys
  (:func:`smooth_gaps`), weighted by how far the video departs from the
  interpolation where it can be seen: ``1 - exp(-(m / distance_gate)^2)``, ``m``
  the RMS 2D distance (pixels of a 256-pixel image) between the predicted and
  the interpolated pose's centroids over the gap. A gap the interpolation
  already explains keeps the interpolated distance.
"""
from __future__ import annotations

import numpy as np


def interpolated_pose(known, skel, times: np.ndarray, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pose interpolated between the nearest known samples at ``times`` through ``camera`` (3, 4):
    pixels (N, J, 2) and camera depths (N, J)."""
    from .upsample import resample

    return project_known(resample(known, times), skel, camera)


def fused_distance(grid, interp: np.ndarray, own: np.ndarray, interp2d: np.ndarray, pred2d: np.ndarray,
                   image_height: int, *, strength: float = 100.0, gate: float = 3.0) -> np.ndarray:
    """The character's distance (n,) on the grid's interior rows: ``interp`` (n,) plus the estimator's
    correction ``own - interp``, weighted per gap by how far the video departs from the interpolation and
    smoothed over the gap with both keys held at 0 (module docstring, "the character's distance").

    ``interp2d`` / ``pred2d`` (n, J, 2): the interpolated pose's and the estimator's 2D joints (the joints
    the images show), pixels of an ``image_height``-pixel image; ``gate``: the centroid distance (pixels of
    a 256-pixel image) at which a gap takes 1 - 1/e of the correction; ``strength``: the Whittaker
    smoother's (:func:`smooth_gaps`).
    """
    fill = ~np.asarray(grid.known, bool)
    interp = np.asarray(interp, np.float64)
    _, gap = np.unique(np.cumsum(grid.known)[fill], return_inverse=True)  # each interior row's gap
    dev = np.linalg.norm(np.asarray(interp2d).mean(1) - np.asarray(pred2d).mean(1), axis=-1) * 256.0 / image_height
    rms = np.sqrt(np.bincount(gap, dev ** 2) / np.bincount(gap))
    weight = 1.0 - np.exp(-(rms / max(gate, 1e-12)) ** 2)
    corr = np.zeros(len(fill))
    corr[fill] = (np.asarray(own, np.float64) - interp) * weight[gap]
    return interp + smooth_gaps(grid, corr, strength)[fill]


def project_known(known, skel, camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poses (the known samples, or any Motion on ``skel``) through ``camera`` (3, 4): pixels (K, J, 2) and
    camera depths (K, J)."""
    from anymole_usd import kinematics

    pos = kinematics.global_positions(skel.parents, known.rotations, known.translations, known.scales)
    ph = pos @ camera[:, :3].T + camera[:, 3]
    return ph[..., :2] / ph[..., 2:3], ph[..., 2]


def _normalised(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """2D skeletons (N, J, 2) about their centroid, divided by their RMS spread (N,) (also returned)."""
    c = xy - xy.mean(1, keepdims=True)
    s = np.sqrt((c ** 2).sum(-1).mean(1))
    return c / np.maximum(s, 1e-9)[:, None, None], s


def retrieval_error(poses: np.ndarray, relief: np.ndarray, times: np.ndarray, window: float) -> float:
    """Mean relief error of retrieving each known pose from the others more than ``window`` time codes away
    (``poses`` (K, J, 2) normalised 2D, ``relief`` (K, J)); inf when no pose has such a neighbour."""
    times = np.asarray(times, np.float64)
    dist = ((poses[:, None] - poses[None]) ** 2).sum(-1).mean(-1)
    dist[np.abs(times[:, None] - times[None]) <= window] = np.inf
    best = dist.argmin(1)
    ok = np.isfinite(dist[np.arange(len(dist)), best])
    return float(np.abs(relief[ok] - relief[best[ok]]).mean()) if ok.any() else float("inf")


def blended_depth(pred2d: np.ndarray, pred_depth: np.ndarray, known2d: np.ndarray, known_depth: np.ndarray,
                  observed: np.ndarray, focal: float, *, neighbours: int = 3, tau: float = 0.02,
                  mode: str = "blend", known_times: np.ndarray | None = None, window: float = 0.0,
                  reliable: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Depths (N, J) whose relief blends the network's with the nearest known poses'; and the weight (N,).

    The mean depth of the observed joints (the character's distance) is kept; so
    are unobserved joints. ``mode``: ``blend`` (weight ``exp(-d / tau)``, scaled by
    ``min(1, (reliable / e)^2)`` where ``e`` is :func:`retrieval_error` on the known
    poses at ``known_times`` with ``window``, when those are given), ``nearest``
    (weight 1) or ``network`` (weight 0).
    """
    obs = np.asarray(observed, bool)
    z = np.asarray(pred_depth, np.float64).copy()
    if mode == "network" or not obs.any() or len(known2d) == 0:
        return z, np.zeros(len(z))
    pn, ps = _normalised(np.asarray(pred2d, np.float64)[:, obs])
    kn, ks = _normalised(np.asarray(known2d, np.float64)[:, obs])
    dist = ((pn[:, None] - kn[None]) ** 2).sum(-1).mean(-1)  # (N, K) mean squared joint distance
    k = max(1, min(int(neighbours), len(kn)))
    idx = np.argsort(dist, 1)[:, :k]
    dk = np.take_along_axis(dist, idx, 1)
    wk = 1.0 / (dk + 1e-4)
    wk /= wk.sum(1, keepdims=True)
    kz = np.asarray(known_depth, np.float64)[:, obs]
    kzc = kz.mean(1)
    known_relief = (kz - kzc[:, None]) / (ks * kzc / focal)[:, None]  # in units of the pose's 2D spread
    retrieved = (known_relief[idx] * wk[..., None]).sum(1)
    zo = z[:, obs]
    zc = zo.mean(1)
    net_relief = (zo - zc[:, None]) / (ps * zc / focal)[:, None]
    w = np.ones(len(z)) if mode == "nearest" else np.exp(-dk[:, 0] / max(tau, 1e-12))
    if mode == "blend" and known_times is not None:
        err = retrieval_error(kn, known_relief, known_times, window)
        w = w * min(1.0, (reliable / max(err, 1e-12)) ** 2)
    relief = w[:, None] * retrieved + (1 - w[:, None]) * net_relief
    z[:, obs] = zc[:, None] + relief * (ps * zc / focal)[:, None]
    return z, w


def smooth_gaps(grid, values: np.ndarray, strength: float) -> np.ndarray:
    """Whittaker smoothing of ``values`` (N, ...) along each gap of ``grid``, known rows held exactly.

    Minimises ``sum_interior (x - y)^2 + strength * sum (second difference of x)^2`` over the gap's
    interior rows, the rows of the two known samples around the gap fixed (one linear solve per gap).
    """
    values = np.asarray(values, np.float64)
    if strength <= 0:
        return values.copy()
    out = values.copy()
    flat = out.reshape(len(out), -1)
    kn = np.flatnonzero(grid.known)
    for a, b in zip(kn[:-1], kn[1:]):
        n = b - a + 1
        if n < 3:
            continue
        d2 = np.diff(np.eye(n), 2, axis=0)
        fixed = np.zeros(n, bool)
        fixed[[0, -1]] = True
        inner = ~fixed
        lhs = strength * d2.T @ d2 + np.diag(inner.astype(np.float64))
        rhs = np.where(inner[:, None], flat[a:b + 1], 0.0)
        # hold the ends: move their known contribution to the right-hand side
        rhs = rhs[inner] - lhs[np.ix_(inner, fixed)] @ flat[a:b + 1][fixed]
        flat[a:b + 1][inner] = np.linalg.solve(lhs[np.ix_(inner, inner)], rhs)
    return out


def estimator_targets(targets, renders, images: np.ndarray, grid, known, skel, camera: np.ndarray, focal: float,
                      view: str, prior, *, cache_dir=None, progress=None, extra=None) -> dict:
    """Train (or reuse) the estimator on ``renders`` and fill ``targets.joints2d`` / ``targets.depth`` on
    the grid's interior rows from ``images`` (N, H, W, 3) seen through ``camera`` (3, 4; focal ``focal``
    pixels) from the estimator's ``view``. ``prior``: the VideoPrior (its options); ``extra``: more
    renders to train on (``estimator.mirror.render_mirrored``).
    Returns what was done (for reports)."""
    from anymole_usd.plugins.estimator.predict import at_distance, predict
    from anymole_usd.plugins.estimator.training import EstimatorSettings, train_estimator

    fill = grid.times[~grid.known]
    est = train_estimator(renders, EstimatorSettings(steps=int(prior.option("estimator_steps")),
                                                      heatmap_stride=int(prior.option("estimator_stride"))),
                          cache_dir=cache_dir, progress=progress, extra=extra)
    if progress is not None:
        progress(f"estimator: predicting {len(fill)} frames", 1.0)
    # times: joints no image shows are interpolated in time from the known renders
    pred = predict(est, images[~grid.known], view=view, times=fill)
    if prior.option("estimator_distance") == "interp":
        # A monocular estimator is least sure of the camera distance: use the distance of the pose
        # interpolated between the nearest known samples (what lambda_pos pulls the root to), corrected
        # by the estimator's own where the video leaves the interpolation, and keep the network's depths
        # about their mean.
        interp2d, interp_depth = interpolated_pose(known, skel, fill, camera)
        distance = interp_depth.mean(-1)
        strength = float(prior.option("distance_fusion"))
        if strength > 0:
            seen = est.observed_joints
            distance = fused_distance(grid, distance, pred.depth.astype(np.float64).mean(1), interp2d[:, seen],
                                      pred.joints2d[:, seen], images.shape[1], strength=strength,
                                      gate=float(prior.option("distance_gate")))
        pred.depth = at_distance(pred.depth, pred.observed, distance).astype(np.float32)
    known2d, known_depth = project_known(known, skel, camera)
    depth, weight = blended_depth(pred.joints2d, pred.depth, known2d, known_depth, est.observed_joints, focal,
                                  neighbours=int(prior.option("relief_neighbours")),
                                  tau=float(prior.option("relief_tau")), mode=str(prior.option("relief")),
                                  known_times=known.times, window=0.25 * known.fps,
                                  reliable=float(prior.option("relief_reliable")))
    j2d = np.zeros((len(grid.times), skel.num_joints, 2))
    dep = np.ones((len(grid.times), skel.num_joints))
    rows = known.index_of(grid.times[grid.known])
    j2d[grid.known], dep[grid.known] = known2d[rows], known_depth[rows]  # exact at the keyframes
    j2d[~grid.known], dep[~grid.known] = pred.joints2d, depth
    strength = float(prior.option("target_smoothing"))
    targets.joints2d = smooth_gaps(grid, j2d, strength)
    targets.depth = smooth_gaps(grid, dep, strength)
    return {"relief_weight": float(weight.mean()) if len(weight) else 0.0, "smoothing": strength}
