"""The metric interface: what every in-betweening quality measure implements.

A metric scores a batch of :class:`EvalWindow` (one per filled gap): the
prediction and the ground truth on the same sample times, from the known
sample before the gap to the known sample after it. Metrics are plugins in the
``anymole_usd.metrics`` entry-point group, like priors.

Global joint positions and rotations are computed once per window (numpy FK)
and cached, so a table of six metrics costs one FK per window and motion.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from . import kinematics
from .motion import Motion
from .parameters import Parameters
from .skeleton import Skeleton

AXES = {"X": 0, "Y": 1, "Z": 2}


def up_vector(up_axis: str) -> np.ndarray:
    """'Y' / 'Z' / '-Y' ... -> unit vector in skel space."""
    text = up_axis.strip().upper()
    sign = -1.0 if text.startswith("-") else 1.0
    v = np.zeros(3)
    v[AXES[text.lstrip("+-")]] = sign
    return v


def character_size(positions: np.ndarray, parents: np.ndarray | None = None) -> float:
    """Characteristic size of a posed character: the largest axis-aligned extent of its joints,
    median over frames (the height of a standing humanoid, the length of a quadruped).

    With ``parents``, root joints are left out when there are others: a static
    root left at the origin (BVH ``joint_Root``) is not part of the body.
    """
    p = np.asarray(positions, dtype=np.float64)
    if parents is not None and np.sum(np.asarray(parents) >= 0) >= 2:
        p = p[..., np.asarray(parents) >= 0, :]
    ext = (p.max(axis=-2) - p.min(axis=-2)).max(axis=-1)
    size = float(np.median(ext)) if ext.size else 0.0
    return size if size > 0 else 1.0


@dataclass
class EvalWindow:
    """Prediction and truth of one gap on the same times, known boundary samples included.

    ``generated`` marks the frames the prior produced (the ones scored by L2/NPSS);
    ``keys`` marks known samples that are keyframes (checked for exact hits).
    ``size`` is the character size used to normalise positions; ``contacts`` the
    foot joints for foot-skate (both derived from the ground-truth clip so every
    prior is scored against the same reference).
    """

    skeleton: Skeleton
    truth: Motion
    pred: Motion
    generated: np.ndarray
    keys: np.ndarray | None = None
    up_axis: str = "Y"
    size: float = 1.0
    meters_per_unit: float = 1.0
    contacts: np.ndarray | None = None
    ground: np.ndarray | None = None  # per contact joint, ground height along up
    label: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.generated = np.asarray(self.generated, dtype=bool)
        if self.keys is None:
            self.keys = np.zeros_like(self.generated)
        self.keys = np.asarray(self.keys, dtype=bool)
        if self.truth.num_frames != self.pred.num_frames or self.truth.num_frames != len(self.generated):
            raise ValueError(f"window {self.label!r}: truth has {self.truth.num_frames} frames, "
                             f"prediction {self.pred.num_frames}, mask {len(self.generated)}")

    @property
    def up(self) -> np.ndarray:
        return up_vector(self.up_axis)

    @cached_property
    def truth_positions(self) -> np.ndarray:
        t = self.truth
        return kinematics.global_positions(self.skeleton.parents, t.rotations, t.translations, t.scales)

    @cached_property
    def pred_positions(self) -> np.ndarray:
        p = self.pred
        return kinematics.global_positions(self.skeleton.parents, p.rotations, p.translations, p.scales)

    @cached_property
    def truth_rotations(self) -> np.ndarray:
        return kinematics.global_rotations(self.skeleton.parents, self.truth.rotations)

    @cached_property
    def pred_rotations(self) -> np.ndarray:
        """Global rotations with each quaternion put in the truth's hemisphere (q and -q are one
        rotation; LaFAN1 gets the same effect from sign-continuous sequences sharing a context)."""
        q = kinematics.global_rotations(self.skeleton.parents, self.pred.rotations)
        flip = np.sum(q * self.truth_rotations, axis=-1, keepdims=True) < 0
        return np.where(flip, -q, q)


class Metric:
    """Base class for metrics registered under ``anymole_usd.metrics``.

    Subclasses set ``name``, ``description``, ``unit`` and implement :meth:`compute`
    over a batch of windows (a batch, because NPSS weights windows by power).
    Parameters are declared in ``param_spec`` like a prior's (validated by the
    constructor, listed by ``plugins --details``); :meth:`option` reads one.
    """

    name: str = ""
    description: str = ""
    unit: str = ""
    lower_is_better: bool = True
    param_spec: Parameters = Parameters()

    def __init__(self, **params: Any) -> None:
        self.params = self.param_spec.validate(params, owner=f"{self.name or type(self).__name__} metric")

    def option(self, key: str) -> Any:
        """The given value of parameter ``key``, else its declared default."""
        if key in self.params:
            return self.params[key]
        return self.param_spec[key].default

    def compute(self, windows: Sequence[EvalWindow]) -> float:  # pragma: no cover - interface
        raise NotImplementedError


def mean_or_nan(values) -> float:
    """Mean of ``values``, or NaN when there is nothing to average (no generated frame, no contact)."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")


def load_metrics(names: Sequence[str] | None = None) -> list[Metric]:
    """Instantiate metric plugins by name; by default every installed one, defaults first."""
    from . import registry

    if names:
        return [registry.load("metrics", n)() for n in names]
    installed = registry.names("metrics")
    ordered = [n for n in DEFAULT_METRICS if n in installed] + [n for n in installed if n not in DEFAULT_METRICS]
    return [registry.load("metrics", n)() for n in ordered]


DEFAULT_METRICS = ["l2q", "hl2q", "l2p", "l2p-norm", "npss", "foot-skate", "keyframe-hit", "key-jump"]
