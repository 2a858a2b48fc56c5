"""L2Q and HL2Q: distance between global joint quaternions (LaFAN1; AnyMoLe's hierarchy-limited form).

Per generated frame, the L2 norm of the stacked (joints x 4) difference of
global quaternions, averaged over frames (LaFAN1 ``benchmarks.py``).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from anymole_usd.metric import EvalWindow, Metric, mean_or_nan
from anymole_usd.parameters import Param, Parameters


def quaternion_frame_errors(windows: Sequence[EvalWindow], joints: np.ndarray | None = None) -> np.ndarray:
    """Per generated frame, ||q_pred - q_truth|| over the chosen joints (all by default)."""
    out = []
    for w in windows:
        sel = w.generated
        d = w.pred_rotations[sel] - w.truth_rotations[sel]
        if joints is not None:
            d = d[:, joints]
        out.append(np.sqrt(np.sum(d * d, axis=(1, 2))))
    return np.concatenate(out) if out else np.zeros(0)


def shallow_joints(depths: np.ndarray, fraction: float) -> np.ndarray:
    """Joints whose hierarchy depth is at most ``fraction`` of the deepest joint's."""
    depths = np.asarray(depths)
    return np.flatnonzero(depths <= fraction * depths.max(initial=0))


class L2Q(Metric):
    name = "l2q"
    description = "Global quaternion L2 error per frame (LaFAN1 L2Q)."
    unit = ""

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        e = quaternion_frame_errors(windows)
        return mean_or_nan(e)


class HL2Q(Metric):
    name = "hl2q"
    description = "L2Q over joints up to a fraction (default 1/2) of the hierarchy depth (AnyMoLe HL2Q)."
    unit = ""
    param_spec = Parameters(
        Param("fraction", 0.5, "joints whose hierarchy depth is at most this fraction of the deepest joint's",
              min=0, max=1),
    )

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        fraction = self.option("fraction")
        errs = [quaternion_frame_errors([w], shallow_joints(w.skeleton.depths(), fraction)) for w in windows]
        e = np.concatenate(errs) if errs else np.zeros(0)
        return mean_or_nan(e)
