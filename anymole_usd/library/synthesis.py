"""Video Motion Graphs synthesis over a library skeleton: the graph and the path search.

Graph. Nodes are the skeleton's library nodes (one every 1/30 s of every
clip). Besides each node's natural successor, a node ``i`` may be followed by
``j + 1`` for each of its ``k`` nearest nodes ``j`` in pose + velocity
(the library index; nodes of the same clip closer than ``exclude`` s, or a
quarter of a short clip, left out): playing ``j + 1`` after ``i`` continues the motion because ``j`` looks
like ``i``. Its cost is ``jump + (D(i, j) / threshold)^2`` with the
threshold the mean nearest-neighbour distance, so transitions between
similar poses are cheap and far ones possible but costly (a tag switch never
finds the graph disconnected). Cost: O(N k log N).

Search. The output is cut into blocks of ``block`` nodes; a path plays each
block from one node onwards (so no clip piece is shorter than a block) and
may jump only between blocks. Dynamic programming over (block, start node)
finds the exactly-``frames``-long path that minimises edge costs plus, per
played node, the request's costs: a tag penalty where the node's clip does
not carry the tag requested at that output time, the pose distance to a
keyframe played at its time, and a beat cost where a music beat falls on a
node far from a kinematic beat of its clip. That is the Video Motion Graphs
search (its paper uses dynamic programming / beam search for the same
conditions), exact on the block grid; one min-plus relaxation per block over
the sparse edges keeps it O(blocks x edges).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .index import FeatureIndex, clip_durations, neighbours
from .store import Nodes

FAR = 3.0  # x threshold: plain transitions farther than this are dropped


@dataclass
class SearchGraph:
    clip: np.ndarray  # (N,)
    local: np.ndarray  # (N,) node index within its clip
    remaining: np.ndarray  # (N,) nodes after this one in its clip
    src: np.ndarray  # (E,) edges i -> m: m is played right after i
    dst: np.ndarray
    cost: np.ndarray
    threshold: float
    distance: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (E,) RMS pose distance of the jump

    @property
    def size(self) -> int:
        return len(self.clip)


def clip_layout(clip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per node: its index within its clip and how many nodes follow it there (clips contiguous)."""
    n = len(clip)
    starts = np.flatnonzero(np.concatenate([[True], clip[1:] != clip[:-1]]))
    lengths = np.diff(np.concatenate([starts, [n]]))
    first = np.repeat(starts, lengths)
    local = np.arange(n) - first
    return local, np.repeat(lengths, lengths) - 1 - local


def build_graph(nodes: Nodes, index: FeatureIndex, k: int = 8, exclude: float = 0.5, jump: float = 0.5,
                allowed: np.ndarray | None = None, targets: list[np.ndarray] = ()) -> SearchGraph:
    """The motion graph of a skeleton's nodes (``allowed``: nodes that may be played, default all).

    ``targets``: node masks (one per requested tag) that every node must be able to reach in
    one jump: each node also gets edges to its ``k // 2`` nearest nodes of each mask, so a tag
    switch finds the best bridge even where the plain k nearest never leave the current motion.
    """
    n = nodes.size
    local, remaining = clip_layout(nodes.clip)
    allowed = np.ones(n, dtype=bool) if allowed is None else allowed
    rows = np.arange(n)

    window = np.minimum(exclude, 0.25 * clip_durations(nodes.clip, nodes.time))  # as the build's neighbours

    def near_in_time(r: np.ndarray, idx: np.ndarray) -> np.ndarray:
        same = nodes.clip[idx] == nodes.clip[r][:, None]
        return (same & (np.abs(nodes.time[idx] - nodes.time[r][:, None]) < window[r][:, None])) | ~allowed[idx]

    if nodes.knn is not None and nodes.knn.shape[1] >= min(k, n - 1):  # stored by the build
        kk = min(k, nodes.knn.shape[1])
        nbr, dist = nodes.knn[:, :kk].astype(np.int64), nodes.knn_distance[:, :kk].astype(np.float64)
        dist = np.where(allowed[nbr], dist, np.inf)
    else:
        kk = min(k, max(n - 1, 1))
        nbr, dist = neighbours(index, nodes.features, nodes.clip, nodes.time, kk, exclude)
        dist = np.where(allowed[nbr], dist, np.inf)
    finite = np.isfinite(dist[:, 0])
    threshold = float(dist[finite, 0].mean()) if finite.any() else 1.0
    threshold = threshold if threshold > 0 else 1.0
    i = np.repeat(rows, kk)
    j = nbr.ravel()
    d = dist.ravel()
    near = d <= FAR * threshold  # far transitions never pay off against a neighbour; tag bridges come below
    i, j, d = i[near], j[near], d[near]
    for mask in targets:
        ti, tj, td = _targeted(nodes, index, mask & allowed & (remaining > 0), max(2, kk // 2), near_in_time)
        i, j, d = np.concatenate([i, ti]), np.concatenate([j, tj]), np.concatenate([d, td])
    ok = np.isfinite(d) & (remaining[j] > 0) & allowed[i]
    i, j, d = i[ok], j[ok], d[ok]
    m = j + 1
    ok = (m != i + 1) & allowed[m]
    i, m, d = i[ok], m[ok], d[ok]
    nat = np.flatnonzero((remaining > 0) & allowed & np.roll(allowed, -1))
    src = np.concatenate([nat, i])
    dst = np.concatenate([nat + 1, m])
    dd = np.concatenate([np.zeros(len(nat)), d])
    cost = np.concatenate([np.zeros(len(nat)), jump + (d / threshold) ** 2])
    order = np.lexsort((src, dst))
    return SearchGraph(nodes.clip, local, remaining, src[order], dst[order], cost[order], threshold, dd[order])


def _targeted(nodes: Nodes, index: FeatureIndex, mask: np.ndarray, k: int, near_in_time):
    """Edges (i, j, distance) from every node to its ``k`` nearest nodes among ``mask``."""
    sub = np.flatnonzero(mask)
    if len(sub) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    sub_index = index.subset(nodes.features, sub)
    src = np.flatnonzero(~mask)  # nodes already in the set need no bridge into it
    j, d = sub_index.query(nodes.features[sub], nodes.features[src], k, candidates=2 * k + 8,
                           exclude=lambda r, idx: near_in_time(src[r], sub[idx]), projected=index.tree.data[src],
                           eps=1.0)
    return np.repeat(src, j.shape[1]), sub[j].ravel(), d.ravel()


@dataclass
class Costs:
    """Per-request costs, evaluated per block by :meth:`block` (all (N,) over block start nodes)."""

    frames: int  # search frames to play
    block: int
    tag_of_frame: np.ndarray  # (frames,) index into tag columns, -1 where no tag is requested
    tag_miss_prefix: np.ndarray  # (N + 1, T) prefix sums of "node lacks tag t"
    w_tag: float = 3.0
    key_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    key_cost: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (K, N)
    beat_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    beat_cost: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) cost of a beat on a node
    start_cost: np.ndarray | None = None  # (N,)
    frame_cost_prefix: np.ndarray | None = None  # (N + 1,) prefix sums of a cost paid by every played node

    def block_cost(self, b: int, n: int) -> np.ndarray:
        h = self.block
        f0, f1 = b * h, min((b + 1) * h, self.frames)
        starts = self._starts(n)
        out = np.zeros(n)
        tags = self.tag_of_frame[f0:f1]
        if len(tags) and (tags >= 0).any():
            cuts = np.flatnonzero(np.diff(tags)) + 1
            for a, e in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(tags)]])):
                t = tags[a]
                if t >= 0:
                    p = self.tag_miss_prefix[:, t]
                    out += self.w_tag * (p[np.minimum(starts + e, n)] - p[np.minimum(starts + a, n)])
        if self.frame_cost_prefix is not None:
            p = self.frame_cost_prefix
            out += p[np.minimum(starts + (f1 - f0), n)] - p[starts]
        for frames, cost in ((self.key_frames, None), (self.beat_frames, self.beat_cost)):
            if not len(frames):
                continue
            lo, hi = np.searchsorted(frames, [f0, f1])  # frames are sorted
            for s in range(lo, hi):
                o = int(frames[s] - f0)
                c = self.key_cost[s] if cost is None else cost
                out += c[np.minimum(starts + o, n - 1)]
        return out

    def _starts(self, n: int) -> np.ndarray:
        if getattr(self, "_arange", None) is None or len(self._arange) != n:
            self._arange = np.arange(n)
        return self._arange


def search(graph: SearchGraph, costs: Costs) -> np.ndarray:
    """Block start nodes of the cheapest exactly-long path (one per block)."""
    n, h = graph.size, costs.block
    blocks = int(np.ceil(costs.frames / h))
    # The last block may be cut short: its start needs only the frames left to play.
    tail = costs.frames - (blocks - 1) * h
    fits = graph.remaining >= h - 1
    fits_last = graph.remaining >= tail - 1
    # Block edges: from start node s (last played s + h - 1 = i) to the next start m.
    i = graph.src
    s = i - (h - 1)
    ok = (graph.local[i] >= h - 1)
    edges = EdgeSet.of(s[ok], graph.dst[ok], graph.cost[ok])
    # Forward pass keeps each block's costs (float32: half the memory of back-pointers); the path is
    # recovered afterwards by re-minimising over the in-edges of one node per block.
    history = np.empty((blocks, n), dtype=np.float32)
    start = costs.start_cost if costs.start_cost is not None else np.zeros(n)
    valid0 = fits if blocks > 1 else fits_last
    cost = np.where(valid0, start + costs.block_cost(0, n), np.inf)
    history[0] = cost
    for b in range(1, blocks):
        valid = fits if b < blocks - 1 else fits_last
        best = np.where(valid, relax(cost, edges, n), np.inf)
        if not np.isfinite(best).any():
            raise RuntimeError("the motion graph has no path of the requested length")
        cost = best + costs.block_cost(b, n)
        history[b] = cost
    path = np.empty(blocks, dtype=np.int64)
    path[-1] = int(np.argmin(cost))
    for b in range(blocks - 1, 0, -1):
        path[b - 1] = edges.best_source(path[b], history[b - 1])
    return path


@dataclass
class EdgeSet:
    """Edges sorted by destination with their groups found once, for repeated min-plus steps."""

    src: np.ndarray
    dst: np.ndarray
    cost: np.ndarray
    starts: np.ndarray  # first edge of each destination group
    targets: np.ndarray  # the destination of each group

    @classmethod
    def of(cls, src: np.ndarray, dst: np.ndarray, cost: np.ndarray) -> "EdgeSet":
        order = np.lexsort((src, dst))
        src, dst, cost = src[order], dst[order], cost[order]
        starts = np.flatnonzero(np.concatenate([[True], dst[1:] != dst[:-1]])) if len(dst) else np.zeros(0, np.int64)
        return cls(src, dst, cost, starts, dst[starts])

    def best_source(self, node: int, cost: np.ndarray) -> int:
        """The in-edge source of ``node`` minimising ``cost[src] + edge cost`` (the lowest on a tie)."""
        g = int(np.searchsorted(self.targets, node))
        a = self.starts[g]
        b = self.starts[g + 1] if g + 1 < len(self.starts) else len(self.src)
        vals = cost[self.src[a:b]].astype(np.float64) + self.cost[a:b]
        return int(self.src[a + int(np.argmin(vals))])


def relax(cost: np.ndarray, edges: EdgeSet, n: int) -> np.ndarray:
    """One min-plus step: the best cost of reaching each node over one edge."""
    best = np.full(n, np.inf)
    if len(edges.src):
        best[edges.targets] = np.minimum.reduceat(cost[edges.src] + edges.cost, edges.starts)
    return best


@dataclass
class Segment:
    clip: int
    first_node: int
    nodes: int  # played nodes (search frames)
    out_start: int  # first search frame of the output


def segments(path: np.ndarray, block: int, frames: int, clip: np.ndarray) -> list[Segment]:
    """Join consecutive blocks that continue one clip into segments, cut to ``frames``."""
    out: list[Segment] = []
    for b, s in enumerate(path):
        f0 = b * block
        length = min(block, frames - f0)
        if out and s == out[-1].first_node + out[-1].nodes and out[-1].out_start + out[-1].nodes == f0:
            out[-1].nodes += length
        else:
            out.append(Segment(int(clip[s]), int(s), int(length), int(f0)))
    return out
