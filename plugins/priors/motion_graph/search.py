"""Path search on the motion graph: exact-length paths from the known sample to the keyframe.

A path for a gap of ``n`` frames is ``p_0 .. p_{n+1}``: ``p_0`` is a node that
stands for the known sample before the gap, ``p_1 .. p_n`` are played, and
``p_{n+1}`` stands for the keyframe after it. Its cost is

    w_start * D(A, p_0) + sum of edge costs + w_end * D(B, p_{n+1})

(pose distances with velocity where the known sample has one). Dynamic
programming over (step, node) finds the cheapest path to every end node exactly;
the ``candidates`` cheapest end nodes are then re-ranked with the root
mismatch their integrated trajectory leaves at the keyframe (position and
heading), which is not a per-node quantity.

Beam search (``beam``) instead keeps the ``width`` best partial paths with
their integrated root; they are ranked by cost so far plus the exact
pose cost-to-go from a backward DP plus the root mismatch of the cost-to-go
path's displacement, which suits long gaps where the trajectory dominates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import MotionGraph
from .trajectory import end_mismatch, integrate, wrap


@dataclass
class Endpoints:
    start_cost: np.ndarray  # (N,) weighted D(A, node)
    end_cost: np.ndarray  # (N,) weighted D(B, node)
    ground0: np.ndarray  # (2,) root of A
    yaw0: float
    ground1: np.ndarray  # (2,) root of B
    yaw1: float
    size: float
    w_root: float = 1.0  # per character size of root position mismatch
    w_heading: float = 0.5  # per radian of heading mismatch


@dataclass
class Path:
    nodes: np.ndarray  # (n+2,)
    cost: float
    pose_cost: float
    root_cost: float


class Edges:
    """A graph's edges grouped by destination (they are sorted by (dst, src)), for min-plus steps."""

    def __init__(self, src: np.ndarray, dst: np.ndarray, cost: np.ndarray, size: int) -> None:
        self.src, self.cost, self.size = src, cost, size
        first = np.concatenate([[True], dst[1:] != dst[:-1]]) if len(dst) else np.zeros(0, dtype=bool)
        self.starts = np.flatnonzero(first)
        self.targets = dst[self.starts]
        self.counts = np.diff(np.concatenate([self.starts, [len(dst)]]))
        self.position = np.arange(len(dst))

    def relax(self, cost: np.ndarray, allowed: np.ndarray | None = None,
              with_arg: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """One min-plus step: best cost and (``with_arg``) predecessor per node (ties: the lowest src)."""
        best = np.full(self.size, np.inf)
        arg = np.full(self.size, -1, dtype=np.int64) if with_arg else None
        if len(self.starts) == 0:
            return best, arg
        vals = cost[self.src] + self.cost
        mins = np.minimum.reduceat(vals, self.starts)
        finite = np.isfinite(mins)
        if allowed is not None:
            finite &= allowed[self.targets]
        best[self.targets[finite]] = mins[finite]
        if with_arg:
            hit = np.where(vals == np.repeat(mins, self.counts), self.position, len(vals))
            first = np.minimum.reduceat(hit, self.starts)
            arg[self.targets[finite]] = self.src[first[finite]]
        return best, arg

    def predecessors(self, before: np.ndarray, nodes: np.ndarray, after: np.ndarray) -> np.ndarray:
        """For each of ``nodes`` reached at cost ``after`` (per node), the lowest src whose cost ``before``
        plus the edge gives it: what :meth:`relax` would have returned as its predecessor."""
        group = np.searchsorted(self.targets, nodes)
        counts = self.counts[group]
        owner = np.repeat(np.arange(len(nodes)), counts)
        first = np.cumsum(counts) - counts
        edge = np.repeat(self.starts[group] - first, counts) + np.arange(int(counts.sum()))
        hit = before[self.src[edge]] + self.cost[edge] == after[owner]
        pick = np.full(len(nodes), len(self.src))
        np.minimum.at(pick, owner[hit], edge[hit])
        return self.src[pick]


def _relax(graph: MotionGraph, cost: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One min-plus step over the sparse edges (sorted by dst): best cost and predecessor per node."""
    return Edges(graph.src, graph.dst, graph.cost, graph.size).relax(cost, allowed)


def dp_paths(graph: MotionGraph, n: int, ends: Endpoints, candidates: int = 16) -> list[Path]:
    """Cheapest exact-length paths to the best ``candidates`` end nodes, re-ranked with root mismatch."""
    # Costs per step, not predecessors: the min-plus step is then a gather, an add and one reduction,
    # and the few candidate paths find their predecessors afterwards (the same ones, ties included).
    costs = np.empty((n + 2, graph.size))
    costs[0] = ends.start_cost
    edges = Edges(graph.src, graph.dst, graph.cost, graph.size)
    for t in range(n):
        costs[t + 1] = edges.relax(costs[t], graph.alive, with_arg=False)[0]
    costs[n + 1] = edges.relax(costs[n], with_arg=False)[0]
    total = costs[n + 1] + ends.end_cost
    finite = np.flatnonzero(np.isfinite(total))
    if len(finite) == 0:
        return []
    order = finite[np.argsort(total[finite], kind="stable")][:candidates]
    paths = np.empty((len(order), n + 2), dtype=np.int64)
    paths[:, -1] = order
    for t in range(n, -1, -1):  # backtrack all candidates at once
        paths[:, t] = edges.predecessors(costs[t], paths[:, t + 1], costs[t + 1][paths[:, t + 1]])
    return _rank(graph, paths, total[order], ends)


def _rank(graph: MotionGraph, paths: np.ndarray, pose_cost: np.ndarray, ends: Endpoints) -> list[Path]:
    k = len(paths)
    dist, head = end_mismatch(graph.step[paths[:, 1:]], np.tile(ends.ground0, (k, 1)), np.full(k, ends.yaw0),
                              ends.ground1, ends.yaw1)
    root = ends.w_root * dist / ends.size + ends.w_heading * head
    total = pose_cost + root
    order = np.argsort(total, kind="stable")
    return [Path(paths[i], float(total[i]), float(pose_cost[i]), float(root[i])) for i in order]


def beam_paths(graph: MotionGraph, n: int, ends: Endpoints, width: int = 64) -> list[Path]:
    """Beam search with integrated roots, guided by an exact backward DP for the pose cost-to-go."""
    # Backward DP: cost-to-go h[t][i] from node i played at step t, and the root displacement
    # (dx, dy, dyaw) of that best continuation, composed in i's heading frame.
    # The displacements are stored in float32 ((n + 2) x N x 3 values): they only rank partial paths.
    order = np.lexsort((graph.dst, graph.src))
    rev = Edges(graph.dst[order], graph.src[order], graph.cost[order], graph.size)
    h = np.empty((n + 2, graph.size))
    disp = np.zeros((n + 2, graph.size, 3), dtype=np.float32)
    h[n + 1] = ends.end_cost
    nxt_cost = np.asarray(ends.end_cost, dtype=np.float64)
    for t in range(n, -1, -1):
        best, arg = rev.relax(nxt_cost)
        nxt_cost = np.where(graph.alive, best, np.inf) if t >= 1 else best
        h[t] = nxt_cost
        ok = arg >= 0
        j = np.where(ok, arg, 0)
        step = graph.step[j]
        nxt = disp[t + 1][j].astype(np.float64)
        c, s = np.cos(step[:, 2]), np.sin(step[:, 2])
        composed = np.stack([step[:, 0] + c * nxt[:, 0] - s * nxt[:, 1], step[:, 1] + s * nxt[:, 0] + c * nxt[:, 1],
                             step[:, 2] + nxt[:, 2]], axis=1)
        disp[t] = np.where(ok[:, None], composed, 0.0)
    # Forward beam.
    start = np.flatnonzero(np.isfinite(ends.start_cost + h[0]))
    if len(start) == 0:
        return []
    nodes = start[np.argsort(ends.start_cost[start] + h[0][start], kind="stable")][:width]
    g = ends.start_cost[nodes]
    hist = nodes[:, None]
    ground = np.tile(ends.ground0, (len(nodes), 1))
    yaw = np.full(len(nodes), ends.yaw0)
    src_sorted = np.argsort(graph.src, kind="stable")
    counts = np.bincount(graph.src, minlength=graph.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for t in range(1, n + 2):
        allowed = graph.alive if t <= n else np.ones(graph.size, dtype=bool)
        # Expand every beam state along its out-edges (edges grouped by src through src_sorted).
        reps = counts[nodes]
        first = np.cumsum(reps) - reps
        beam_idx = np.repeat(np.arange(len(nodes)), reps)
        edge = src_sorted[np.repeat(starts[nodes] - first, reps) + np.arange(int(reps.sum()))]
        j = graph.dst[edge]
        ok = allowed[j] & np.isfinite(h[t][j])
        beam_idx, edge, j = beam_idx[ok], edge[ok], j[ok]
        if len(j) == 0:
            return []
        gg, yy = integrate(graph.step[j][:, None], ground[beam_idx], yaw[beam_idx])
        new_ground, new_yaw = gg[:, -1], yy[:, -1]
        new_g = g[beam_idx] + graph.cost[edge]
        # Predicted end of the best continuation from here.
        d = disp[t][j]
        c, s = np.cos(new_yaw), np.sin(new_yaw)
        end = new_ground + np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1)
        root = (ends.w_root * np.linalg.norm(end - ends.ground1, axis=1) / ends.size
                + ends.w_heading * np.abs(wrap(new_yaw + d[:, 2] - ends.yaw1)))
        score = new_g + h[t][j] + root
        keep = np.argsort(score, kind="stable")[:width]
        nodes, g, ground, yaw = j[keep], new_g[keep], new_ground[keep], new_yaw[keep]
        hist = np.concatenate([hist[beam_idx[keep]], nodes[:, None]], axis=1)
    pose_cost = g + ends.end_cost[nodes]
    return _rank(graph, hist, pose_cost, ends)
