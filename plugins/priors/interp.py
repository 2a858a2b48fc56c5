"""`interp`: spherical interpolation of local rotations, cubic root trajectory.

The baseline every learned method is compared against (LaFAN1's "Interp").
Root translation follows a cubic Hermite curve whose end tangents match the
known motion's velocity at both ends of the gap, so a walking root keeps its
speed into the gap instead of kinking; other channels interpolate linearly.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.motion import Motion
from anymole_usd.parameters import Parameters
from anymole_usd.prior import InbetweenRequest, Prior
from anymole_usd.timeline import TIME_TOLERANCE


def known_velocity(times: np.ndarray, values: np.ndarray, index: int, side: int) -> np.ndarray:
    """Velocity (per timecode) of ``values`` at known sample ``index``.

    ``side`` is -1 for the gap's start (prefer the sample just before it) and
    +1 for the gap's end (prefer the sample just after it): dense context on
    the outer side gives the true velocity; otherwise a Catmull-Rom central
    difference over the neighbouring known samples, else the gap's chord.
    """
    n = len(times)
    outer = index + side
    if 0 <= outer < n and abs(abs(times[outer] - times[index]) - 1.0) <= TIME_TOLERANCE:
        return (values[index] - values[outer]) / (times[index] - times[outer])
    lo, hi = max(index - 1, 0), min(index + 1, n - 1)
    if hi > lo:
        return (values[hi] - values[lo]) / (times[hi] - times[lo])
    return np.zeros_like(values[index])


def hermite(p0, p1, m0, m1, u):
    """Cubic Hermite on (..., D) with u broadcast as (N, 1, 1)."""
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * m0
            + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * m1)


class InterpPrior(Prior):
    name = "interp"
    description = "Slerp of local rotations; root on a velocity-matching cubic; linear elsewhere."
    param_spec = Parameters()  # none: any --param is an error

    def fill(self, request: InbetweenRequest) -> Motion:
        known = request.known.normalized()
        roots = request.skeleton.roots
        out = self.empty_like(known, request.target_times)
        cursor = 0
        for gap in request.timeline.gaps:
            ia, ib = known.index_of([gap.start, gap.end])
            n = len(gap.times)
            sl = slice(cursor, cursor + n)
            cursor += n
            span = known.times[ib] - known.times[ia]
            u = ((gap.times - known.times[ia]) / span)[:, None]
            out.rotations[sl] = rot.slerp(known.rotations[ia][None], known.rotations[ib][None], u)
            out.translations[sl] = (1 - u[..., None]) * known.translations[ia] + u[..., None] * known.translations[ib]
            out.scales[sl] = (1 - u[..., None]) * known.scales[ia] + u[..., None] * known.scales[ib]
            p = known.translations[:, roots]
            m0 = known_velocity(known.times, p, ia, -1) * span
            m1 = known_velocity(known.times, p, ib, +1) * span
            out.translations[sl, roots] = hermite(p[ia], p[ib], m0, m1, u[..., None])
        return out
