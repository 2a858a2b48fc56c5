"""L2P: distance between global joint positions (LaFAN1), in metres and size-normalised.

Per generated frame, the L2 norm of the stacked (joints x 3) position
difference, averaged over frames. LaFAN1 standardises positions with the mean
and standard deviation of its training set; there is no training set here, so
``l2p-norm`` divides positions by the character size instead (the largest
extent of the ground-truth pose, median over the clip: a standing humanoid's
height), which makes characters of any size and unit comparable. ``l2p`` is in
metres (positions times the stage's metersPerUnit).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from anymole_usd.metric import EvalWindow, Metric, mean_or_nan


def position_frame_errors(windows: Sequence[EvalWindow], normalise: bool) -> np.ndarray:
    out = []
    for w in windows:
        sel = w.generated
        d = w.pred_positions[sel] - w.truth_positions[sel]
        d = d / w.size if normalise else d * w.meters_per_unit
        out.append(np.sqrt(np.sum(d * d, axis=(1, 2))))
    return np.concatenate(out) if out else np.zeros(0)


class L2P(Metric):
    name = "l2p"
    description = "Global position L2 error per frame, in metres (LaFAN1 L2P without standardisation)."
    unit = "m"

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        e = position_frame_errors(windows, normalise=False)
        return mean_or_nan(e)


class L2PNorm(Metric):
    name = "l2p-norm"
    description = "Global position L2 error per frame, positions divided by the character size."
    unit = "size"

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        e = position_frame_errors(windows, normalise=True)
        return mean_or_nan(e)
