"""Foot skate: horizontal speed of contact joints while they are near the ground.

Contact joints are found per skeleton by one rule (:mod:`anymole_usd.contacts`:
the lowest leaf joints, e.g. toes, feet, leg tips). A joint is in contact over
a frame step when its height above its own ground level (2nd percentile of its
height in the ground-truth clip) is below 1% of the character size at both
ends of the step (about 1.7 cm for a 1.7 m character: the stance phase of a
walk, not the toe brushing past the floor in swing). The score is the mean over
contact joints and frame steps touching generated frames of horizontal speed x
contact, in character sizes per second: sliding feet score high, and so does
ground-truth motion only as much as the actor's own foot slip.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.metric import EvalWindow, Metric, mean_or_nan
from anymole_usd.parameters import Param, Parameters

CONTACT_HEIGHT = 0.01  # of the character size, above the joint's ground level


def skate_terms(positions: np.ndarray, fps: float, joints: np.ndarray, ground: np.ndarray, up: np.ndarray,
                size: float, steps: np.ndarray, contact_height: float = CONTACT_HEIGHT) -> np.ndarray:
    """Per (selected frame step, contact joint), horizontal speed x contact, in sizes per second."""
    p = positions[:, joints]  # (F, C, 3)
    h = p @ up - ground  # (F, C)
    near = h < contact_height * size
    d = p[1:] - p[:-1]
    horizontal = d - (d @ up)[..., None] * up
    speed = np.linalg.norm(horizontal, axis=-1) * fps / size  # (F-1, C)
    contact = near[1:] & near[:-1]
    return (speed * contact)[steps]


class FootSkate(Metric):
    name = "foot-skate"
    description = "Mean horizontal speed of contact joints near the ground (character sizes / s)."
    unit = "size/s"
    param_spec = Parameters(
        Param("contact_height", CONTACT_HEIGHT, "a joint is in contact below this height above its ground level, "
              "x character size", min=0, max=1, min_exclusive=True),
    )

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        terms = []
        for w in windows:
            joints, ground = w.contacts, w.ground
            if joints is None:
                joints = contact_joints(w.skeleton, w.truth_positions, w.up, w.size)
                ground = ground_levels(w.truth_positions, joints, w.up)
            if len(joints) == 0 or w.truth.num_frames < 2:
                continue
            # A step counts if it touches a generated frame.
            g = w.generated
            steps = g[1:] | g[:-1]
            terms.append(skate_terms(w.pred_positions, w.pred.fps, joints, ground, w.up, w.size, steps,
                                      self.option("contact_height")).ravel())
        t = np.concatenate(terms) if terms else np.zeros(0)
        return mean_or_nan(t)
