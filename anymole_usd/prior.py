"""The prior interface: what every in-betweening method (interp, graph, video) implements."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .motion import Motion
from .parameters import Parameters
from .skeleton import Skeleton
from .timeline import Timeline


@dataclass
class InbetweenRequest:
    """Everything a prior may use. Priors never touch the USD stage."""

    skeleton: Skeleton
    known: Motion  # context + keyframe samples, sorted by time
    timeline: Timeline
    seed: int = 0
    references: list[Motion] = field(default_factory=list)  # extra motion on the same skeleton
    # Per reference (same order, may be shorter): what it is, for provenance ({"clip", "file", "fps", ...});
    # "admitted": True when a library retrieval already checked it resembles the shot.
    reference_labels: list[dict] = field(default_factory=list)
    up_axis: str = "Y"  # up in the skeleton's own space, signed ("Y", "Z", "-Y")
    meters_per_unit: float = 1.0
    name: str = ""  # the animation prim path, for messages
    progress: Callable[[str, float], None] | None = None
    cache_dir: str | None = None
    # Render-ready character (meshes, skinning, world transform) read by the runner
    # for priors that set ``needs_character``; None for the others.
    character: Any = None

    @property
    def target_times(self) -> np.ndarray:
        return self.timeline.generated_times

    def report(self, message: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(message, fraction)


class Prior:
    """Base class for priors registered under the ``anymole_usd.priors`` entry-point group.

    Subclasses set ``name`` and ``description`` and implement :meth:`fill`,
    returning a Motion sampled exactly at ``request.target_times``.
    Constructor keyword arguments are the prior's parameters (recorded in
    provenance); :meth:`parameters` returns them. ``param_spec`` declares
    them once (:mod:`anymole_usd.parameters`): the constructor validates and
    coerces through it, and ``anymole-usd plugins --details`` lists it. The
    base declares none, so a prior that takes no parameters rejects any.
    """

    name: str = ""
    description: str = ""
    needs_character: bool = False  # True: the runner reads meshes/cameras data into request.character
    param_spec: Parameters = Parameters()

    def __init__(self, **params: Any) -> None:
        # Only the values given (typed and checked): provenance records what the user chose.
        self.params = self.param_spec.validate(params, owner=f"{self.name or type(self).__name__} prior")

    def parameters(self) -> dict:
        return dict(self.params)

    def option(self, key: str) -> Any:
        """The given value of parameter ``key``, else its declared default."""
        if key in self.params:
            return self.params[key]
        return self.param_spec[key].default

    def fill(self, request: InbetweenRequest) -> Motion:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def empty_like(known: Motion, times: np.ndarray) -> Motion:
        """A Motion at ``times`` with the known motion's layout, filled with identity/zeros."""
        n, j = len(times), known.num_joints
        rot = np.zeros((n, j, 4))
        rot[..., 3] = 1.0
        return Motion(times=np.asarray(times, dtype=np.float64), rotations=rot,
                      translations=np.zeros((n, j, 3)), scales=np.ones((n, j, 3)),
                      fps=known.fps, joints=list(known.joints))
