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


def _relax(graph: MotionGraph, cost: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One min-plus step over the sparse edges (sorted by dst): best cost and predecessor per node."""
    ok = allowed[graph.dst] & np.isfinite(cost[graph.src])
    src, dst = graph.src[ok], graph.dst[ok]
    vals = cost[src] + graph.cost[ok]
    best = np.full(graph.size, np.inf)
    arg = np.full(graph.size, -1, dtype=np.int64)
    if len(vals) == 0:
        return best, arg
    starts = np.flatnonzero(np.concatenate([[True], dst[1:] != dst[:-1]]))
    mins = np.minimum.reduceat(vals, starts)
    targets = dst[starts]
    best[targets] = mins
    # First edge reaching the minimum (edges are sorted by (dst, src): ties go to the lowest src).
    hit = vals <= best[dst]
    first = np.flatnonzero(hit)
    uniq, idx = np.unique(dst[first], return_index=True)
    arg[uniq] = src[first[idx]]
    return best, arg


def dp_paths(graph: MotionGraph, n: int, ends: Endpoints, candidates: int = 16) -> list[Path]:
    """Cheapest exact-length paths to the best ``candidates`` end nodes, re-ranked with root mismatch."""
    back = np.empty((n + 1, graph.size), dtype=np.int64)
    cost = ends.start_cost.copy()
    anywhere = np.ones(graph.size, dtype=bool)
    for t in range(n):
        cost, back[t] = _relax(graph, cost, graph.alive)
    cost, back[n] = _relax(graph, cost, anywhere)
    total = cost + ends.end_cost
    finite = np.flatnonzero(np.isfinite(total))
    if len(finite) == 0:
        return []
    order = finite[np.argsort(total[finite], kind="stable")][:candidates]
    paths = np.empty((len(order), n + 2), dtype=np.int64)
    paths[:, -1] = order
    for t in range(n, -1, -1):  # backtrack all candidates at once
        paths[:, t] = back[t][paths[:, t + 1]]
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
    rev_src, rev_dst, rev_cost = graph.dst, graph.src, graph.cost
    order = np.lexsort((rev_src, rev_dst))
    rev = MotionGraph(**{**graph.__dict__, "src": rev_src[order], "dst": rev_dst[order], "cost": rev_cost[order]})
    h = np.empty((n + 2, graph.size))
    disp = np.zeros((n + 2, graph.size, 3))
    h[n + 1] = ends.end_cost
    for t in range(n, -1, -1):
        allowed = graph.alive if t >= 1 else np.ones(graph.size, dtype=bool)
        best, arg = _relax(rev, h[t + 1], np.ones(graph.size, dtype=bool))
        h[t] = np.where(allowed, best, np.inf)
        ok = arg >= 0
        j = np.where(ok, arg, 0)
        step = graph.step[j]
        nxt = disp[t + 1][j]
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
