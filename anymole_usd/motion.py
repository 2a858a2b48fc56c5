"""Motion: joint-local animation samples as arrays, the currency between stages."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from . import rotations as rot
from .timeline import TIME_TOLERANCE


@dataclass
class Motion:
    """Samples of a SkelAnimation in skeleton joint order.

    ``times`` are stage timecodes; ``fps`` is timecodes per second, so
    ``seconds = times / fps``. Rotations are unit quaternions (x, y, z, w).
    The root translation is ``translations[:, roots]`` (UsdSkel keeps it there).
    """

    times: np.ndarray  # (F,) float64 timecodes
    rotations: np.ndarray  # (F, J, 4) xyzw
    translations: np.ndarray  # (F, J, 3)
    scales: np.ndarray  # (F, J, 3)
    fps: float = 24.0
    joints: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.translations = np.asarray(self.translations, dtype=np.float64)
        self.scales = np.asarray(self.scales, dtype=np.float64)
        f = len(self.times)
        j = self.rotations.shape[1] if self.rotations.ndim == 3 else -1
        if (
            self.rotations.shape != (f, j, 4)
            or self.translations.shape != (f, j, 3)
            or self.scales.shape != (f, j, 3)
        ):
            raise ValueError(
                f"inconsistent motion arrays: times {self.times.shape}, rotations {self.rotations.shape}, "
                f"translations {self.translations.shape}, scales {self.scales.shape}"
            )

    @property
    def num_frames(self) -> int:
        return len(self.times)

    @property
    def num_joints(self) -> int:
        return self.rotations.shape[1]

    @property
    def seconds(self) -> np.ndarray:
        return self.times / self.fps

    def root_translation(self, parents: np.ndarray) -> np.ndarray:
        """(F, R, 3) translations of the root joints."""
        return self.translations[:, np.flatnonzero(np.asarray(parents) < 0)]

    def copy(self) -> "Motion":
        return replace(
            self,
            times=self.times.copy(),
            rotations=self.rotations.copy(),
            translations=self.translations.copy(),
            scales=self.scales.copy(),
            joints=list(self.joints),
        )

    def index_of(self, times: np.ndarray, tol: float = TIME_TOLERANCE) -> np.ndarray:
        """Index of each requested time in ``self.times`` (tolerant match); -1 if absent."""
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if not len(self.times):
            return np.full(len(times), -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.times, times), 0, len(self.times) - 1)
        best = pos.copy()
        left = np.clip(pos - 1, 0, len(self.times) - 1)
        closer = np.abs(self.times[left] - times) < np.abs(self.times[pos] - times)
        best[closer] = left[closer]
        ok = np.abs(self.times[best] - times) <= tol
        return np.where(ok, best, -1)

    def select(self, indices: np.ndarray) -> "Motion":
        idx = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            times=self.times[idx],
            rotations=self.rotations[idx],
            translations=self.translations[idx],
            scales=self.scales[idx],
            joints=list(self.joints),
        )

    def at_times(self, times: np.ndarray) -> "Motion":
        """Subset at authored times (tolerant); raises KeyError when one is missing."""
        idx = self.index_of(times)
        if np.any(idx < 0):
            missing = np.asarray(times)[idx < 0]
            raise KeyError(f"times not in motion: {missing[:5].tolist()}")
        return self.select(idx)

    @staticmethod
    def concatenate(parts: list["Motion"]) -> "Motion":
        """Join motions and sort by time (later parts win on duplicate times)."""
        parts = [p for p in parts if p.num_frames]
        if not parts:
            raise ValueError("nothing to concatenate")
        times = np.concatenate([p.times for p in parts])
        order = np.argsort(times, kind="stable")
        m = Motion(
            times=times[order],
            rotations=np.concatenate([p.rotations for p in parts])[order],
            translations=np.concatenate([p.translations for p in parts])[order],
            scales=np.concatenate([p.scales for p in parts])[order],
            fps=parts[0].fps,
            joints=list(parts[0].joints),
        )
        keep = np.ones(m.num_frames, dtype=bool)
        dup = np.diff(m.times) <= TIME_TOLERANCE
        keep[:-1] &= ~dup
        return m.select(np.flatnonzero(keep))

    def validate(self, where: str = "motion") -> None:
        """Raise ValueError naming the first frame with a NaN or zero-length quaternion."""
        norms = np.linalg.norm(self.rotations, axis=-1)
        bad = ~np.isfinite(self.rotations).all(-1) | (norms < 1e-8)
        bad |= ~np.isfinite(self.translations).all(-1) | ~np.isfinite(self.scales).all(-1)
        if bad.any():
            f, j = np.argwhere(bad)[0]
            name = self.joints[j] if j < len(self.joints) else str(j)
            raise ValueError(
                f"{where}: invalid (NaN or zero-length) transform at time {self.times[f]:g}, joint {name}"
            )

    def normalized(self) -> "Motion":
        """Unit quaternions, sign-continuous along time."""
        m = self.copy()
        m.rotations = rot.make_continuous(rot.normalize(m.rotations), axis=0)
        return m
