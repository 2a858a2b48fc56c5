"""Which samples become graph nodes: dense runs of the known motion, and references.

Graph edges mean "one frame later", so every node must be spaced one timecode
of the shot from its successor. The known motion contributes each run of
consecutive samples (the context, and any dense stretch among the keys);
reference animations are resampled to the shot's frame rate by slerp.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.motion import Motion
from anymole_usd.timeline import TIME_TOLERANCE

MIN_RUN = 3  # a run shorter than this has no usable velocity or continuation


def dense_runs(motion: Motion, min_length: int = MIN_RUN) -> list[Motion]:
    """Maximal runs of samples one timecode apart."""
    if motion.num_frames == 0:
        return []
    breaks = np.flatnonzero(np.abs(np.diff(motion.times) - 1.0) > TIME_TOLERANCE) + 1
    bounds = np.concatenate([[0], breaks, [motion.num_frames]])
    return [motion.select(np.arange(a, b)) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= min_length]


def resample_to(motion: Motion, fps: float) -> Motion:
    """A reference motion sampled every 1/``fps`` seconds over its span (times in shot timecodes)."""
    m = motion.normalized()
    if m.num_frames < 2 or abs(m.fps - fps) < 1e-9:
        return m
    seconds = m.times / m.fps
    new_s = np.arange(seconds[0], seconds[-1] + 1e-9, 1.0 / fps)
    u = np.interp(new_s, seconds, np.arange(m.num_frames))
    i0 = np.clip(np.floor(u).astype(np.int64), 0, m.num_frames - 2)
    f = u - i0
    fw = f[:, None, None]
    r = rot.slerp(m.rotations[i0], m.rotations[i0 + 1], np.broadcast_to(f[:, None], (len(f), m.num_joints)))
    return Motion(times=np.round(new_s * fps), rotations=r,
                  translations=(1 - fw) * m.translations[i0] + fw * m.translations[i0 + 1],
                  scales=(1 - fw) * m.scales[i0] + fw * m.scales[i0 + 1], fps=fps, joints=list(m.joints))
