"""Optimised grid frames (15 fps by default) -> the stage's sample times.

Rotations are slerped and translations/scales interpolated linearly between the
two grid samples around each time (keyframes are grid samples, so they are hit
exactly). The optional Gaussian temporal filter (``sigma`` in stage frames)
smooths the generated samples only: every known sample keeps its exact value and
takes part in its neighbours' averages.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import rotations as R
from anymole_usd.motion import Motion


def resample(grid_motion: Motion, times: np.ndarray) -> Motion:
    """``grid_motion`` (sorted times) sampled at ``times`` inside its range."""
    g = grid_motion
    times = np.asarray(times, dtype=np.float64)
    if len(times) and (times.min() < g.times[0] - 1e-6 or times.max() > g.times[-1] + 1e-6):
        raise ValueError("upsampling times must lie inside the optimised grid")
    i1 = np.clip(np.searchsorted(g.times, times, side="right"), 1, len(g.times) - 1)
    i0 = i1 - 1
    span = g.times[i1] - g.times[i0]
    a = np.clip((times - g.times[i0]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
    rot = R.slerp(g.rotations[i0], g.rotations[i1], np.broadcast_to(a[:, None], (len(times), g.num_joints)))
    lin = a[:, None, None]
    return Motion(times=times.copy(), rotations=rot,
                  translations=(1 - lin) * g.translations[i0] + lin * g.translations[i1],
                  scales=(1 - lin) * g.scales[i0] + lin * g.scales[i1], fps=g.fps, joints=list(g.joints))


def gaussian_filter(motion: Motion, fixed: np.ndarray, sigma: float = 1.0, radius: int | None = None) -> Motion:
    """Gaussian-smooth a densely sampled motion along time (``sigma`` in samples), ``fixed`` samples untouched."""
    if sigma <= 0 or motion.num_frames < 3:
        return motion.copy()
    radius = radius or max(1, int(np.ceil(3 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 * (offsets / sigma) ** 2)
    n = motion.num_frames
    idx = np.clip(np.arange(n)[:, None] + offsets[None], 0, n - 1)  # (F, K), edges repeat
    q = R.make_continuous(motion.rotations, axis=0)
    wk = w[None, :, None, None]
    rot = (q[idx] * wk).sum(1)
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    out = motion.copy()
    fixed = np.asarray(fixed, dtype=bool)
    keep = fixed[:, None, None]
    out.rotations = np.where(keep, motion.rotations, rot)
    out.translations = np.where(keep, motion.translations, (motion.translations[idx] * wk).sum(1) / w.sum())
    out.scales = np.where(keep, motion.scales, (motion.scales[idx] * wk).sum(1) / w.sum())
    return out


def upsample(grid_motion: Motion, known: Motion, times: np.ndarray, sigma: float = 0.0) -> Motion:
    """The motion at ``times`` (the samples to generate), optionally Gaussian-filtered.

    Filtering runs over the union of ``times`` and the known samples inside the
    grid's range at the stage rate, so generated samples next to a keyframe are
    averaged with the keyframe's exact value.
    """
    times = np.asarray(times, dtype=np.float64)
    if sigma <= 0:
        return resample(grid_motion, times)
    lo, hi = grid_motion.times[0], grid_motion.times[-1]
    kt = known.times[(known.times >= lo - 1e-6) & (known.times <= hi + 1e-6)]
    all_times = np.union1d(np.round(times, 9), np.round(kt, 9))
    dense = resample(grid_motion, all_times)
    fixed = np.isin(np.round(all_times, 6), np.round(kt, 6))
    if fixed.any():
        k = known.index_of(all_times[fixed])
        dense.rotations[fixed], dense.translations[fixed], dense.scales[fixed] = \
            known.rotations[k], known.translations[k], known.scales[k]
    filtered = gaussian_filter(dense, fixed, sigma)
    pick = np.searchsorted(all_times, np.round(times, 9))
    return filtered.select(pick)
