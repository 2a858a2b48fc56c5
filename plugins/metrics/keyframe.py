"""Keyframe metrics: are the keys reproduced exactly, and does the motion arrive at them without a pop?

``keyframe-hit`` is the fraction of keyframe samples whose composed pose equals
the ground truth (global joint positions within 1e-4 of the character size).
``key-jump`` is the largest joint displacement across a gap's boundary steps
(known sample -> first generated frame, last generated frame -> known sample)
divided by the largest per-frame joint displacement of the ground truth in the
same window, averaged over windows: about 1 or less is a seamless join; a prior
that ignores the keyframe (zero-velocity) pops there.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from anymole_usd.metric import EvalWindow, Metric, mean_or_nan
from anymole_usd.parameters import Param, Parameters

HIT_TOLERANCE = 1e-4  # of the character size


class KeyframeHit(Metric):
    name = "keyframe-hit"
    description = "Fraction of keyframes reproduced exactly (global positions within 1e-4 x size)."
    unit = "fraction"
    lower_is_better = False
    param_spec = Parameters(
        Param("tolerance", HIT_TOLERANCE, "a key is hit when every joint is within this distance, x character size",
              min=0),
    )

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        hits = []
        for w in windows:
            if not w.keys.any():
                continue
            d = np.linalg.norm(w.pred_positions[w.keys] - w.truth_positions[w.keys], axis=-1).max(axis=-1)
            hits.append(d <= self.option("tolerance") * w.size)
        h = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
        return mean_or_nan(h)


def max_step(positions: np.ndarray) -> np.ndarray:
    """Per frame step, the largest joint displacement."""
    return np.linalg.norm(positions[1:] - positions[:-1], axis=-1).max(axis=-1)


class KeyJump(Metric):
    name = "key-jump"
    description = "Boundary step into/out of each gap over the truth's largest step in the window."
    unit = "ratio"

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        ratios = []
        for w in windows:
            g = w.generated
            if w.truth.num_frames < 2 or not g.any():
                continue
            boundary = g[1:] ^ g[:-1]  # steps between a known and a generated frame
            if not boundary.any():
                continue
            ref = max(float(max_step(w.truth_positions).max()), 1e-9 * w.size)
            ratios.append(float(max_step(w.pred_positions)[boundary].max()) / ref)
        return mean_or_nan(ratios)
