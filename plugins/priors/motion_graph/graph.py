"""The motion graph: frames as nodes, natural and transition edges, dead ends pruned.

Nodes are the frames of dense runs of samples (the shot's context, optional
reference animations). Edges join each frame to the next one of its run
(cost 0) and, as Video Motion Graphs does, any frame ``i`` to a frame ``j``
whose predecessor looks like ``i`` (pose distance ``D(i, j-1)`` below a
threshold, so playing ``j`` after ``i`` continues the motion). The threshold is
the average nearest-neighbour distance over the graph (temporal neighbours
excluded) times ``threshold_scale``. Short jumps within a run (skip or repeat a
frame or a few) are transitions like any other: they let a path adjust its
timing to reach a keyframe in phase. Nodes from which every path eventually
stops (ends of runs with no transition out) are pruned.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .features import wrap


@dataclass
class MotionGraph:
    rotations: np.ndarray  # (N, J, 4) local
    translations: np.ndarray  # (N, J, 3)
    scales: np.ndarray  # (N, J, 3)
    features: np.ndarray  # (N, D) pose + weighted velocity
    pose_dims: int  # the first pose_dims columns of ``features`` are the pose
    run: np.ndarray  # (N,) index of the run a node comes from
    next: np.ndarray  # (N,) next node of the same run, -1 at a run's end
    prev: np.ndarray  # (N,) previous node of the same run, -1 at a run's start
    ground: np.ndarray  # (N, 2) body ground position
    yaw: np.ndarray  # (N,)
    step: np.ndarray  # (N, 3) root motion into the node: (dx, dy) in the previous frame's heading frame, dyaw
    src: np.ndarray  # (E,) edges, sorted by dst
    dst: np.ndarray  # (E,)
    cost: np.ndarray  # (E,)
    alive: np.ndarray  # (N,) bool, not a dead end
    threshold: float
    joints: int
    contact: np.ndarray | None = None  # (N, C) contact joints planted in each node (foot locking)

    @property
    def size(self) -> int:
        return len(self.run)

    @property
    def transitions(self) -> int:
        return int(np.sum(self.dst != self.next[self.src]))

    def distances_to(self, feature: np.ndarray, with_velocity: bool) -> np.ndarray:
        """Pose distance (RMS over joints, in character sizes) of one feature vector to every node."""
        dims = self.features.shape[1] if with_velocity else self.pose_dims
        d = self.features[:, :dims] - feature[:dims]
        return np.sqrt(np.sum(d * d, axis=1) / self.joints)


def pairwise_distances(features: np.ndarray, joints: int) -> np.ndarray:
    """(N, N) RMS-per-joint distances, by one matrix product."""
    sq = np.sum(features * features, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * features @ features.T
    return np.sqrt(np.maximum(d2, 0.0) / joints)


def nearest_distances(query: np.ndarray, features: np.ndarray, joints: int) -> np.ndarray:
    """(M,) RMS-per-joint distance of each ``query`` row to its nearest row of ``features``, by one matrix product."""
    d2 = np.sum(query * query, axis=1)[:, None] + np.sum(features * features, axis=1)[None] \
        - 2.0 * query @ features.T
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0) / joints)


def root_steps(ground: np.ndarray, yaw: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Root motion into each node from its predecessor, in the predecessor's heading frame.

    A run's first node borrows the step into its successor (its own is unknown).
    """
    n = len(ground)
    idx = np.arange(n)
    has = prev >= 0
    p = np.where(has, prev, idx)  # a run's first node: use its own step into its successor
    c = np.where(has, idx, np.where(nxt >= 0, nxt, idx))
    d = ground[c] - ground[p]
    a = -yaw[p]
    local = np.stack([np.cos(a) * d[:, 0] - np.sin(a) * d[:, 1], np.sin(a) * d[:, 0] + np.cos(a) * d[:, 1]], -1)
    return np.concatenate([local, wrap(yaw[c] - yaw[p])[:, None]], axis=1)


def build_graph(runs: list[dict], joints: int, threshold_scale: float = 1.0, exclude: int = 3,
                jump_penalty: float = 0.0, prune: bool = True) -> MotionGraph:
    """Build the graph from runs of consecutive frames.

    Each run is a dict of arrays: rotations, translations, scales, features,
    ground, yaw, and ``pose_dims``. ``exclude``: frames of the same run closer
    than this are not candidates for the nearest-neighbour statistic.
    """
    cat = {k: np.concatenate([r[k] for r in runs]) for k in ("rotations", "translations", "scales", "features",
                                                              "ground", "yaw")}
    lengths = np.array([len(r["yaw"]) for r in runs])
    n = int(lengths.sum())
    run = np.repeat(np.arange(len(runs)), lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    local = np.arange(n) - offsets[run]
    nxt = np.where(local < lengths[run] - 1, np.arange(n) + 1, -1)
    prv = np.where(local > 0, np.arange(n) - 1, -1)

    dist = pairwise_distances(cat["features"], joints)
    near = (run[:, None] == run[None, :]) & (np.abs(local[:, None] - local[None, :]) < exclude)
    masked = np.where(near, np.inf, dist)
    nn = masked.min(axis=1)
    nn = nn[np.isfinite(nn)]
    threshold = float(threshold_scale * nn.mean()) if nn.size else 0.0

    # Transition i -> j when D(i, prev[j]) < threshold; j's natural predecessor is not i itself.
    has_prev = np.flatnonzero(prv >= 0)
    d_ij = dist[:, prv[has_prev]]  # (N, M): D(i, prev[j])
    ii, mm = np.nonzero(d_ij < threshold)
    jj = has_prev[mm]
    keep = prv[jj] != ii
    ii, jj = ii[keep], jj[keep]
    t_cost = d_ij[ii, mm[keep]] + jump_penalty
    nat = np.flatnonzero(nxt >= 0)
    src = np.concatenate([nat, ii])
    dst = np.concatenate([nxt[nat], jj])
    cost = np.concatenate([np.zeros(len(nat)), t_cost])
    order = np.lexsort((src, dst))
    src, dst, cost = src[order], dst[order], cost[order]
    alive = prune_dead_ends(n, src, dst) if prune else np.ones(n, dtype=bool)
    return MotionGraph(cat["rotations"], cat["translations"], cat["scales"], cat["features"],
                       int(runs[0]["pose_dims"]), run, nxt, prv, cat["ground"], cat["yaw"],
                       root_steps(cat["ground"], cat["yaw"], prv, nxt), src, dst, cost, alive, threshold, joints)


def prune_dead_ends(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Nodes from which a path can continue forever: repeatedly drop nodes with no edge to a kept node."""
    alive = np.ones(n, dtype=bool)
    while True:
        ok = alive[src] & alive[dst]
        has_out = np.zeros(n, dtype=bool)
        has_out[src[ok]] = True
        new = alive & has_out
        if new.sum() == alive.sum():
            return alive
        alive = new
