"""The motion graph: frames as nodes, natural and transition edges, dead ends pruned.

Nodes are the frames of dense runs of samples (the shot's context, optional
reference animations). Edges join each frame to the next one of its run
(cost 0) and, as Video Motion Graphs does, a frame ``i`` to a frame ``j``
whose predecessor looks like ``i`` (pose distance ``D(i, j-1)`` below a
threshold, so playing ``j`` after ``i`` continues the motion). The threshold is
the average nearest-neighbour distance over the graph (temporal neighbours
excluded) times ``threshold_scale``. Short jumps within a run (skip or repeat a
frame or a few) are transitions like any other: they let a path adjust its
timing to reach a keyframe in phase. Nodes from which every path eventually
stops (ends of runs with no transition out) are pruned.

Scale: every distance comes from one exact k-nearest-neighbour query per
frame through :class:`~.neighbours.FrameIndex` (a kd-tree on principal
components), never from an N x N matrix; each frame keeps its transitions to
the ``max_transitions`` nearest frames under the threshold (plus the short
jumps within its own run), so edges, memory and path-search time grow
linearly with the number of frames and construction as ``N log N``. The
graph's :attr:`MotionGraph.index` answers "how close is this pose to real
motion" for any rows (an in-between's frames, another clip's frames); the
prior uses it for the per-gap choice, and a motion library can use the same
index type over its own clips.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order, connected_components

from .features import wrap
from .neighbours import FrameIndex

MAX_TRANSITIONS = 32  # transitions kept out of a frame to other motion (its nearest under the threshold)
LOCAL_TRANSITIONS = 4  # and to frames of its own run within ``exclude`` (at 30 fps: all of +-1, +-2)


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
    index: FrameIndex | None = None  # exact nearest neighbours among the nodes' features

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

    def nearest(self, rows: np.ndarray) -> np.ndarray:
        """(M,) distance of each feature row to its nearest node (RMS per joint, character sizes)."""
        return self.index.nearest(rows)


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
                jump_penalty: float = 0.0, prune: bool = True,
                max_transitions: int = MAX_TRANSITIONS) -> MotionGraph:
    """Build the graph from runs of consecutive frames.

    Each run is a dict of arrays: rotations, translations, scales, features,
    ground, yaw, and ``pose_dims``. ``exclude``: frames of the same run closer
    than this are not candidates for the nearest-neighbour statistic; they stay
    candidates for transitions (short skips and repeats; the nearest
    ``LOCAL_TRANSITIONS`` kept), on top of the ``max_transitions`` nearest other
    frames.
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

    index = FrameIndex(cat["features"], joints)
    # At most 2 * exclude - 1 frames (self included) are temporal neighbours, so this many nearest
    # always hold the nearest other frame and max_transitions candidates beyond the temporal ones.
    dist, nb = index.query(cat["features"], max_transitions + 2 * exclude)
    near = (run[nb] == run[:, None]) & (np.abs(local[nb] - local[:, None]) < exclude)
    other = ~near
    has = other.any(axis=1)
    nn = dist[np.flatnonzero(has), np.argmax(other, axis=1)[has]]
    threshold = float(threshold_scale * nn.mean()) if nn.size else 0.0

    # Transition i -> j = next[m] for a frame m with D(i, m) < threshold (m is j's natural predecessor,
    # and m != i: that edge is the natural one).
    ok = (dist < threshold) & (nb != np.arange(n)[:, None]) & (nxt[nb] >= 0)
    # The nearest max_transitions other frames, and the nearest LOCAL_TRANSITIONS temporal ones (skip or
    # repeat a frame or two: at high frame rates a dozen near-identical neighbours would add nothing).
    ok &= np.where(near, np.cumsum(ok & near, axis=1) <= LOCAL_TRANSITIONS,
                   np.cumsum(ok & other, axis=1) <= max_transitions)
    ii, kk = np.nonzero(ok)
    jj = nxt[nb[ii, kk]]
    t_cost = dist[ii, kk] + jump_penalty
    nat = np.flatnonzero(nxt >= 0)
    src = np.concatenate([nat, ii])
    dst = np.concatenate([nxt[nat], jj])
    cost = np.concatenate([np.zeros(len(nat)), t_cost])
    order = np.lexsort((src, dst))
    src, dst, cost = src[order], dst[order], cost[order]
    alive = prune_dead_ends(n, src, dst) if prune else np.ones(n, dtype=bool)
    return MotionGraph(cat["rotations"], cat["translations"], cat["scales"], cat["features"],
                       int(runs[0]["pose_dims"]), run, nxt, prv, cat["ground"], cat["yaw"],
                       root_steps(cat["ground"], cat["yaw"], prv, nxt), src, dst, cost, alive, threshold, joints,
                       index=index)


def prune_dead_ends(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Nodes from which a path can continue forever, i.e. that can reach a cycle: the nodes of
    strongly connected components holding a cycle, and every node with a path to one (O(N + E))."""
    if n == 0:
        return np.zeros(0, dtype=bool)
    adj = csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    count, label = connected_components(adj, directed=True, connection="strong")
    members = np.bincount(label, minlength=count)
    cyclic = members[label] > 1
    cyclic[src[src == dst]] = True  # a frame that may repeat itself
    if not cyclic.any():
        return cyclic
    # Everything that reaches a cyclic node: a search backwards from a virtual node joined to all of them.
    seeds = np.flatnonzero(cyclic)
    rows = np.concatenate([dst, np.full(len(seeds), n)])
    cols = np.concatenate([src, seeds])
    back = csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n + 1, n + 1))
    reached = breadth_first_order(back, n, directed=True, return_predecessors=False)
    alive = np.zeros(n + 1, dtype=bool)
    alive[reached] = True
    return alive[:n]
