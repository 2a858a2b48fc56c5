"""Importer and exporter plugin interfaces and the scene they exchange.

Importers (entry-point group ``anymole_usd.importers``) turn a file into a
:class:`Scene` in the source file's own axes and units; exporters
(``anymole_usd.exporters``) write a Y-up :class:`Scene` to a file. Axis and
unit conversion, resampling and USD authoring/reading live in
:mod:`anymole_usd.plugins.io.convert`, so a plugin only deals with its format.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from anymole_usd.authoring import SkinnedMesh
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton


@dataclass
class ImportOptions:
    fps: float | None = None  # output timeCodesPerSecond; None keeps the source rate
    frames: slice | None = None  # source frames to keep (BVH frames; glTF output frames)
    scale: float = 1.0  # multiplies every length
    meters_per_unit: float | None = None  # None: source units / scale
    up_axis: str = "Y"  # the written stage's up axis
    animation: str | None = None  # which animation to bind (glTF)
    start: float | None = None  # time code of each animation's first frame; None keeps the source time


@dataclass
class Scene:
    """A skeleton with its animations (and skinned meshes), in one set of axes and units."""

    skeleton: Skeleton
    animations: dict[str, Motion]
    bound: str | None = None
    up_axis: str = "Y"
    meters_per_unit: float = 0.01
    meshes: list[SkinnedMesh] = field(default_factory=list)
    skeleton_custom_data: dict = field(default_factory=dict)  # round-trip hints (e.g. BVH channel layout)
    notes: list[str] = field(default_factory=list)  # what was approximated or skipped, for the user

    @property
    def motion(self) -> Motion | None:
        if self.bound is None:
            return None
        return self.animations[self.bound]


class Importer:
    """Base class: set ``name``, ``extensions`` and implement :meth:`read`."""

    name: str = ""
    extensions: tuple[str, ...] = ()
    description: str = ""

    def read(self, path: str, options: ImportOptions) -> Scene:  # pragma: no cover - interface
        raise NotImplementedError


class Exporter:
    """Base class: set ``name``, ``extensions`` and implement :meth:`write` (Y-up scene in)."""

    name: str = ""
    extensions: tuple[str, ...] = ()
    description: str = ""

    def write(self, path: str, scene: Scene) -> dict:  # pragma: no cover - interface
        raise NotImplementedError
