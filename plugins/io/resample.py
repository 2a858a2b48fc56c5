"""Resampling a Motion to another frame rate: linear translations/scales, slerp rotations.

This is what a UsdSkel consumer does between samples, so a resampled clip
plays the same motion. Output times lie on the new rate's integer timecode
grid inside the source's time span (seconds are preserved).
"""
from __future__ import annotations

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.motion import Motion


def frame_grid(start_seconds: float, end_seconds: float, fps: float, eps: float = 1e-4) -> np.ndarray:
    """Integer timecodes at ``fps`` covering [start, end] seconds; ends within ``eps`` frames of the
    grid count as on it (float32 key times such as 84/120 read back as 83.99999 frames)."""
    first = np.ceil(start_seconds * fps - eps)
    last = np.floor(end_seconds * fps + eps)
    return np.arange(first, last + 1.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def interpolation_index(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``dst`` time: the left source index and the blend weight in [0, 1] (clamped at the ends)."""
    if len(src) == 1:
        return np.zeros(len(dst), dtype=np.int64), np.zeros(len(dst))
    i = np.clip(np.searchsorted(src, dst, side="right") - 1, 0, len(src) - 2)
    w = (dst - src[i]) / (src[i + 1] - src[i])
    return i, np.clip(w, 0.0, 1.0)


def resample(motion: Motion, fps: float) -> Motion:
    """``motion`` at ``fps`` timecodes per second over the same seconds."""
    if abs(fps - motion.fps) < 1e-9:
        return motion
    src = motion.seconds
    grid = frame_grid(src[0], src[-1], fps)
    i, w = interpolation_index(src, grid / fps)
    wv = w[:, None, None]
    q = rot.make_continuous(rot.normalize(motion.rotations), axis=0)
    return Motion(
        times=grid,
        rotations=rot.slerp(q[i], q[i + (len(src) > 1)], np.broadcast_to(w[:, None], q[i].shape[:-1])),
        translations=(1 - wv) * motion.translations[i] + wv * motion.translations[i + (len(src) > 1)],
        scales=(1 - wv) * motion.scales[i] + wv * motion.scales[i + (len(src) > 1)],
        fps=float(fps),
        joints=list(motion.joints),
    )
