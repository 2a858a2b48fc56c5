"""``compose --transition-prior NAME``: let an in-betweening prior re-fill the frames around each jump.

For every jump of the assembled path, the frames within ``HALF_GAP`` seconds
of it become a gap, the surrounding ``CONTEXT`` seconds on each side are the
known motion (the frames before as context, those after as keyframes), and
the prior (any ``anymole_usd.priors`` plugin, loaded through the registry)
fills the gap as ``inbetween`` would. Jumps whose window holds a keyframe of
the request are left to the inertialisation blend, so keys stay exact.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import registry
from anymole_usd.errors import InputError, PluginError
from anymole_usd.motion import Motion
from anymole_usd.prior import InbetweenRequest
from anymole_usd.skeleton import Skeleton
from anymole_usd.timeline import Gap, Timeline

HALF_GAP = 0.2  # s on each side of a jump
CONTEXT = 1.0  # s of known motion on each side


def load_prior(name: str):
    """The prior plugin class ``name`` (registry group ``priors``); a bad name is an InputError."""
    try:
        return registry.load("priors", name)
    except PluginError as exc:
        raise InputError(f"--transition-prior: {exc}") from None


def refill(name: str, skeleton: Skeleton, r, t, s, fps: float, jumps: np.ndarray, key_frames: np.ndarray,
           seed: int = 0, meters_per_unit: float = 1.0):
    """(rotations, translations, scales) with the frames around each jump filled by prior ``name``."""
    prior_cls = load_prior(name)
    r, t, s = r.copy(), t.copy(), s.copy()
    n = len(r)
    half, ctx = max(1, int(round(HALF_GAP * fps))), max(2, int(round(CONTEXT * fps)))
    times = np.arange(n, dtype=np.float64)
    for j in np.asarray(jumps, dtype=np.int64):
        a, b = j - half - 1, j + half  # known samples on both ends of the gap (a, b)
        if a < 1 or b >= n - 1 or np.any((key_frames > a) & (key_frames < b)):
            continue
        lo, hi = max(0, a - ctx), min(n - 1, b + ctx)
        known_idx = np.concatenate([np.arange(lo, a + 1), np.arange(b, hi + 1)])
        known = Motion(times=times[known_idx], rotations=r[known_idx], translations=t[known_idx],
                       scales=s[known_idx], fps=fps, joints=list(skeleton.joints))
        gap_times = times[a + 1:b]
        timeline = Timeline(authored=known.times, context=(float(lo), float(a)), keys=times[b:hi + 1],
                            gaps=[Gap(float(a), float(b), gap_times)])
        request = InbetweenRequest(skeleton=skeleton, known=known, timeline=timeline, seed=seed, up_axis="Y",
                                   meters_per_unit=meters_per_unit, name=f"compose transition at frame {j}")
        out = prior_cls().fill(request)
        idx = out.index_of(gap_times)
        if np.any(idx < 0):
            raise InputError(f"--transition-prior {name}: the prior did not return every gap frame")
        r[a + 1:b], t[a + 1:b], s[a + 1:b] = out.rotations[idx], out.translations[idx], out.scales[idx]
    return r, t, s
