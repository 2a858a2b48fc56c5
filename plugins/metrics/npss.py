"""NPSS: normalised power spectrum similarity of global quaternion channels (LaFAN1 definition).

Per window and channel (joint x quaternion component) over the generated
frames: the real part of the FFT along time, squared, normalised to a
distribution over frequencies; the earth mover's distance between the
cumulative distributions of prediction and truth (an L1 norm), averaged over
every window and channel weighted by the truth's total power
(Gopalakrishnan et al. 2019, as in LaFAN1's ``fast_npss``). Windows may
differ in length, so the power-weighted average runs over the pooled
(window, channel) pairs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from anymole_usd.metric import EvalWindow, Metric


def npss_terms(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, D) truth and prediction -> per-channel EMD (D,) and truth power weights (D,)."""
    gt_power = np.square(np.real(np.fft.fft(truth, axis=0)))
    pr_power = np.square(np.real(np.fft.fft(pred, axis=0)))
    gt_total = gt_power.sum(axis=0)
    pr_total = pr_power.sum(axis=0)
    # A channel with no power (a constant zero component) has no spectrum; its weight is 0 anyway.
    gt_norm = np.divide(gt_power, gt_total, out=np.zeros_like(gt_power), where=gt_total > 0)
    pr_norm = np.divide(pr_power, pr_total, out=np.zeros_like(pr_power), where=pr_total > 0)
    emd = np.abs(np.cumsum(pr_norm, axis=0) - np.cumsum(gt_norm, axis=0)).sum(axis=0)
    return emd, gt_total


def npss(truth_batch: Sequence[np.ndarray], pred_batch: Sequence[np.ndarray]) -> float:
    """NPSS over a batch of (T_i, D) sequences."""
    emds, weights = [], []
    for t, p in zip(truth_batch, pred_batch):
        e, w = npss_terms(t, p)
        emds.append(e)
        weights.append(w)
    if not emds:
        return float("nan")
    w = np.concatenate(weights)
    if w.sum() <= 0:
        return 0.0
    return float(np.average(np.concatenate(emds), weights=w))


class NPSS(Metric):
    name = "npss"
    description = "Normalised power spectrum similarity of global quaternions (LaFAN1 NPSS)."
    unit = ""

    def compute(self, windows: Sequence[EvalWindow]) -> float:
        truth = [w.truth_rotations[w.generated].reshape(int(w.generated.sum()), -1) for w in windows]
        pred = [w.pred_rotations[w.generated].reshape(int(w.generated.sum()), -1) for w in windows]
        return npss(truth, pred)
