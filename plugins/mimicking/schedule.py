"""Where and in which order mimicking optimises frames: the grid inside each gap, keyframes inwards.

A gap between two known samples ``k0 < k1`` gets ``n = round((k1 - k0) / fps_stage * rate) - 1``
evenly spaced interior times (``rate`` the mimicking rate, 15 fps by default), so both
keyframes lie on the grid. Grid index 0 is ``k0`` and ``n + 1`` is ``k1`` (known, never
optimised). Front ``s`` (1-based) holds interior frames ``s`` and ``n + 1 - s`` of every gap:
the frames next to each keyframe first, each initialised from (and regularised towards) its
neighbour one step closer to its keyframe, meeting in the middle. With odd ``n`` the middle
frame comes last, alone, and leans on both neighbours (weights 1/2 each).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Front:
    """Frames optimised together: grid indices into the flat grid, and their neighbours."""

    frames: np.ndarray  # (B,) flat grid indices of the frames to optimise
    anchors: np.ndarray  # (B, 2) flat grid indices of the neighbours they start from / lean on
    anchor_weights: np.ndarray  # (B, 2) regulariser weights per neighbour (sum to 1)


@dataclass
class Grid:
    """The optimisation grid of every gap, flattened: known boundaries and interior frames."""

    times: np.ndarray  # (N,) stage time codes, sorted
    known: np.ndarray  # (N,) bool: a keyframe/context sample (hit exactly, never optimised)
    left_key: np.ndarray  # (N,) time of the known sample before (itself when known)
    right_key: np.ndarray  # (N,) time of the known sample after (itself when known)
    fronts: list[Front]

    @property
    def interior(self) -> np.ndarray:
        return np.flatnonzero(~self.known)


def gap_count(start: float, end: float, fps: float, rate: float) -> int:
    """Number of interior frames of a gap at ``rate`` frames per second (stage ``fps`` time codes/s)."""
    return max(int(round((end - start) / fps * rate)) - 1, 0)


def inward_order(n: int) -> list[tuple[list[int], list[tuple[int, int]], list[tuple[float, float]]]]:
    """Fronts of one gap with ``n`` interior frames (indices 1..n, 0 and n+1 known).

    Each front is (frames, anchors, weights): frame ``s`` leans on ``s - 1``, frame
    ``n + 1 - s`` on ``n + 2 - s``; an odd gap's middle frame on both sides.
    """
    out = []
    for s in range(1, (n + 1) // 2 + 1):
        a, b = s, n + 1 - s
        if a < b:
            out.append(([a, b], [(a - 1, a - 1), (b + 1, b + 1)], [(1.0, 0.0), (1.0, 0.0)]))
        else:  # the middle frame of an odd gap
            out.append(([a], [(a - 1, a + 1)], [(0.5, 0.5)]))
    return out


def build_grid(known_times: np.ndarray, fps: float, rate: float = 15.0) -> Grid:
    """Grid over every gap between consecutive known samples (gaps of 1 time code are not gaps)."""
    known_times = np.unique(np.asarray(known_times, dtype=np.float64))
    times, known, lk, rk = [known_times[:1]], [np.array([True])], [known_times[:1]], [known_times[:1]]
    per_gap = []  # (offset of the gap's first grid entry (k0), n)
    offset = 0
    for k0, k1 in zip(known_times[:-1], known_times[1:]):
        n = gap_count(k0, k1, fps, rate) if k1 - k0 > 1 + 1e-6 else 0
        inner = k0 + (k1 - k0) * np.arange(1, n + 1) / (n + 1)
        per_gap.append((offset, n))
        times += [inner, [k1]]
        known += [np.zeros(n, bool), [True]]
        lk += [np.full(n, k0), [k1]]
        rk += [np.full(n, k1), [k1]]
        offset += n + 1
    fronts: dict[int, list] = {}
    for off, n in per_gap:
        for s, (frames, anchors, weights) in enumerate(inward_order(n)):
            fronts.setdefault(s, []).append((np.asarray(frames) + off, np.asarray(anchors) + off, np.asarray(weights)))
    out = [Front(np.concatenate([f[0] for f in fs]), np.concatenate([f[1] for f in fs]),
                 np.concatenate([f[2] for f in fs])) for _, fs in sorted(fronts.items())]
    return Grid(np.concatenate(times), np.concatenate(known), np.concatenate(lk), np.concatenate(rk), out)


def interpolate_between_keys(grid: Grid, values: np.ndarray, known) -> np.ndarray:
    """(N, ...) ``values`` (one row per sample of the ``known`` Motion) linearly interpolated between each grid
    time's keyframes (known grid times get their own value)."""
    i0, i1 = known.index_of(grid.left_key), known.index_of(grid.right_key)
    span = np.where(grid.right_key > grid.left_key, grid.right_key - grid.left_key, 1.0)
    a = ((grid.times - grid.left_key) / span).reshape((-1,) + (1,) * (values.ndim - 1))
    return (1 - a) * values[i0] + a * values[i1]
