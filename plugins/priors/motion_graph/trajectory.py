"""Root trajectories along graph paths: integration and re-targeting to a keyframe.

A path plays the root motion of its nodes (each node's step from its own
predecessor, in that predecessor's heading frame), integrated from the known
sample before the gap. The end of that integrated trajectory generally misses
the keyframe's root position and heading; the mismatch is spread over the gap
in proportion to how much the root moves (plus a little per frame), so a
character standing still is not dragged and a walking one changes speed and
curvature slightly rather than sliding.
"""
from __future__ import annotations

import numpy as np

from .features import wrap


def integrate(steps: np.ndarray, ground0: np.ndarray, yaw0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, T, 3) steps from start states (K, 2), (K,) -> ground (K, T+1, 2) and yaw (K, T+1), start included."""
    steps = np.asarray(steps, dtype=np.float64)
    yaw = np.concatenate([yaw0[:, None], yaw0[:, None] + np.cumsum(steps[..., 2], axis=1)], axis=1)
    return _positions(steps, ground0, yaw), yaw


def _positions(steps: np.ndarray, ground0: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    a = yaw[:, :-1]  # each step is expressed in the heading frame of the frame before it
    c, s = np.cos(a), np.sin(a)
    dx, dy = steps[..., 0], steps[..., 1]
    world = np.stack([c * dx - s * dy, s * dx + c * dy], axis=-1)
    return np.concatenate([ground0[:, None], ground0[:, None] + np.cumsum(world, axis=1)], axis=1)


def ramp(amount: np.ndarray, floor: float) -> np.ndarray:
    """(K, T) per-step amounts of motion -> (K, T+1) weights rising from 0 to 1.

    Each step takes a share proportional to its motion plus ``floor`` times the
    mean motion, so a still stretch takes (almost) none of the correction.
    """
    amount = np.abs(np.asarray(amount, dtype=np.float64))
    per = amount + floor * amount.mean(axis=1, keepdims=True) + 1e-12
    c = np.concatenate([np.zeros((len(per), 1)), np.cumsum(per, axis=1)], axis=1)
    return c / c[:, -1:]


def retarget(steps: np.ndarray, ground0: np.ndarray, yaw0: np.ndarray, ground1: np.ndarray, yaw1: np.ndarray,
             floor: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Integrate ``steps`` (K, T, 3) from the start state and bend the result to end exactly at
    (ground1, yaw1): first the heading, then (re-integrating) the position."""
    _, yaw = integrate(steps, ground0, yaw0)
    w_yaw = ramp(np.abs(steps[..., 2]) + 1e-3 * np.linalg.norm(steps[..., :2], axis=-1), floor)
    yaw = yaw + w_yaw * wrap(yaw1 - yaw[:, -1])[:, None]
    ground = _positions(steps, ground0, yaw)
    w_pos = ramp(np.linalg.norm(steps[..., :2], axis=-1), floor)
    ground = ground + w_pos[..., None] * (ground1 - ground[:, -1])[:, None]
    return ground, yaw


def end_mismatch(steps: np.ndarray, ground0: np.ndarray, yaw0: np.ndarray, ground1: np.ndarray,
                 yaw1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance and absolute heading error between each integrated path's end and the target."""
    g, y = integrate(steps, ground0, yaw0)
    return np.linalg.norm(g[:, -1] - ground1, axis=-1), np.abs(wrap(y[:, -1] - yaw1))
