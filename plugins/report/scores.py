"""Metrics of every panel against the reference, per gap and over the shot, with the installed metric plugins.

Windows are built as :func:`anymole_usd.evaluation.evaluate_result` builds
them (one per gap, from the known sample before to the one after; character
size, contact joints and ground from the reference), so the result's row of a
report is what ``anymole-usd eval SHOT --reference TRUTH`` prints, and the
compared priors are scored on identical windows.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.evaluation import score_windows
from anymole_usd.kinematics import global_positions
from anymole_usd.metric import EvalWindow, Metric, character_size, up_vector
from anymole_usd.motion import Motion
from anymole_usd.timeline import TIME_TOLERANCE


@dataclass
class GapWindow:
    """One filled gap: its frame times (known sample before, generated frames, known sample after)."""

    number: int
    times: np.ndarray
    generated: np.ndarray  # (len(times),) bool
    keys: np.ndarray  # (len(times),) bool

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])

    @property
    def generated_times(self) -> np.ndarray:
        return self.times[self.generated]


def gap_windows(generated: np.ndarray, authored: np.ndarray, keys: np.ndarray) -> list[GapWindow]:
    """The gaps of a result from its generated times and its animation's authored times."""
    from anymole_usd.evaluation import gap_runs

    generated = np.asarray(generated, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)

    def member(t, of):
        return np.abs(t[:, None] - of[None]).min(axis=1) <= TIME_TOLERANCE if len(of) else np.zeros(len(t), bool)

    return [GapWindow(i + 1, w, member(w, generated), member(w, keys))
            for i, w in enumerate(gap_runs(generated, np.asarray(authored, dtype=np.float64)))]


def score_panels(skeleton, truth: Motion, preds: Sequence[tuple[str, Motion]], gaps: Sequence[GapWindow],
                 metrics: Sequence[Metric], up_axis: str, meters_per_unit: float) -> dict:
    """``{"overall": {name: {metric: value}}, "gaps": [{name: {metric: value}}, ...]}``.

    ``truth`` and every prediction are in ``skeleton``'s joint order and hold every time of every gap;
    character size and contacts come from ``truth`` over all its frames.
    """
    up = up_vector(up_axis)
    ref_pos = global_positions(skeleton.parents, truth.rotations, truth.translations, truth.scales)
    size = character_size(ref_pos, skeleton.parents)
    contacts = contact_joints(skeleton, ref_pos, up, size)
    ground = ground_levels(ref_pos, contacts, up)
    overall, per_gap = {}, [dict() for _ in gaps]
    for name, pred in preds:
        windows = [EvalWindow(skeleton, truth.at_times(g.times), pred.at_times(g.times), g.generated, g.keys,
                              up_axis=up_axis, size=size, meters_per_unit=meters_per_unit, contacts=contacts,
                              ground=ground, label=f"gap {g.number}") for g in gaps]
        overall[name] = score_windows(windows, metrics)
        for i, w in enumerate(windows):
            per_gap[i][name] = score_windows([w], metrics)
    return {"overall": overall, "gaps": per_gap, "size": size, "contact_joints": [skeleton.joints[j] for j in contacts]}
