"""Nearest-neighbour index over a skeleton's node features.

Pose features have hundreds of dimensions (6 per joint), where a k-d tree
degrades to a linear scan. The index therefore projects them on their
leading principal axes (``DIMS``, fitted by one SVD of the covariance) and
builds a ``scipy.spatial.cKDTree`` there; a query takes ``OVERSAMPLE`` x k
candidates from the tree and re-ranks them by the exact distance in the full
feature space. Building is O(n log n), a query O(log n) per row.

Distances are RMS over the feature joints (as the graph prior measures
poses): ``sqrt(sum d^2 / joints)``, in character sizes.

The projection (mean and axes) is stored with the node arrays; the tree is
rebuilt when a library is opened (milliseconds for tens of thousands of
nodes), so nothing executable (no pickle) is ever read from a library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

DIMS = 16
OVERSAMPLE = 4
CHUNK = 2048  # query rows per batch


@dataclass
class FeatureIndex:
    mean: np.ndarray  # (D,)
    basis: np.ndarray  # (D, P)
    tree: object  # scipy.spatial.cKDTree over the projected nodes (None until built)
    joints: int  # feature joints, for RMS-per-joint distances

    @classmethod
    def build(cls, features: np.ndarray, joints: int, dims: int = DIMS) -> "FeatureIndex":
        """Fit the projection and build the tree."""
        mean, basis = fit_projection(features, dims)
        return cls.from_projection(features, joints, mean, basis)

    @classmethod
    def from_projection(cls, features: np.ndarray, joints: int, mean: np.ndarray, basis: np.ndarray,
                        projected: np.ndarray | None = None) -> "FeatureIndex":
        """The tree over ``features`` projected with a stored projection (what opening a library does);
        ``projected``: the projections when already known (a subset of another index's nodes)."""
        from scipy.spatial import cKDTree

        index = cls(np.asarray(mean, np.float64), np.asarray(basis, np.float64), None, int(joints))
        points = index.project_chunked(features) if projected is None else projected
        index.tree = cKDTree(points, balanced_tree=False, compact_nodes=False)
        return index

    def subset(self, features: np.ndarray, rows: np.ndarray) -> "FeatureIndex":
        """An index over some of this index's nodes (``features``: all of them; ``rows``: which)."""
        return FeatureIndex.from_projection(features[rows], self.joints, self.mean, self.basis,
                                            projected=self.tree.data[rows])

    def project_chunked(self, features: np.ndarray, chunk: int = 65536) -> np.ndarray:
        out = np.empty((len(features), self.basis.shape[1]))
        for a in range(0, len(features), chunk):
            out[a:a + chunk] = self.project(features[a:a + chunk])
        return out

    def project(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) @ self.basis

    def query(self, nodes: np.ndarray, queries: np.ndarray, k: int,
              exclude: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
              candidates: int | None = None, chunk: int = CHUNK,
              projected: np.ndarray | None = None, eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(M, k) nearest node indices and RMS-per-joint distances, exact in the full space among
        the tree's nearest candidates. ``nodes``: the (N, D) features the index was built on;
        ``exclude(rows, idx)`` maps query rows (m,) and their candidates (m, c) to a mask of
        candidates to drop (distance inf). Queries run in chunks, so memory stays bounded.
        ``projected``: the queries' projections when known (queries that are indexed nodes);
        ``eps``: cKDTree's approximation factor for the candidates (0: exact candidates)."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        c = min(self.tree.n, candidates or OVERSAMPLE * k)
        k = min(k, c)
        out_i = np.empty((len(q), k), dtype=np.int64)
        out_d = np.empty((len(q), k), dtype=np.float64)
        for a in range(0, len(q), chunk):
            rows = np.arange(a, min(a + chunk, len(q)))
            idx = self.candidates_of(q[rows], c, None if projected is None else projected[rows], eps)
            dist = self.exact(nodes, q[rows], idx)
            if exclude is not None:
                dist = np.where(exclude(rows, idx), np.inf, dist)
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]
            out_i[rows] = np.take_along_axis(idx, order, 1)
            out_d[rows] = np.take_along_axis(dist, order, 1)
        return out_i, out_d

    def candidates_of(self, queries: np.ndarray, c: int, projected: np.ndarray | None = None,
                      eps: float = 0.0) -> np.ndarray:
        """(M, c) candidate node indices from the tree (nearest in the projected space)."""
        _, idx = self.tree.query(self.project(queries) if projected is None else projected, k=c, eps=eps)
        return np.asarray(idx, dtype=np.int64).reshape(len(queries), c)

    def exact(self, nodes: np.ndarray, queries: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """RMS-per-joint distances of each query row to its candidate nodes ``idx`` (M, c)."""
        d = nodes[idx] - np.asarray(queries, dtype=nodes.dtype)[:, None, :]
        return np.sqrt(np.einsum("mcd,mcd->mc", d, d).astype(np.float64) / self.joints)


def neighbours(index: FeatureIndex, features: np.ndarray, clip: np.ndarray, time: np.ndarray, k: int,
               exclude: float) -> tuple[np.ndarray, np.ndarray]:
    """Every node's ``k`` nearest nodes, leaving out its own clip's nodes within ``exclude`` seconds
    (the same motion a moment earlier or later; a quarter of the clip for clips shorter than 4 x
    ``exclude``, so a short cycle can still loop onto itself). O(N log N)."""
    window = np.minimum(exclude, 0.25 * clip_durations(clip, time))

    def near_in_time(rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return (clip[idx] == clip[rows][:, None]) & (np.abs(time[idx] - time[rows][:, None]) < window[rows][:, None])

    # Enough candidates to survive the exclusion at high node density.
    c = 2 * k + int(np.ceil(2 * exclude * 30.0)) + 2
    return index.query(features, features, k, exclude=near_in_time, candidates=c, projected=index.tree.data)


def clip_durations(clip: np.ndarray, time: np.ndarray) -> np.ndarray:
    """(N,) duration of each node's clip (nodes of a clip contiguous, times from 0)."""
    starts = np.flatnonzero(np.concatenate([[True], clip[1:] != clip[:-1]]))
    ends = np.concatenate([starts[1:], [len(clip)]])
    return np.repeat(time[ends - 1], ends - starts).astype(np.float64)


def fit_projection(features: np.ndarray, dims: int = DIMS, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """Mean and leading principal axes (D, P) of ``features``, accumulated in chunks (bounded memory)."""
    n, d = features.shape
    mean = np.zeros(d)
    for a in range(0, n, chunk):
        mean += features[a:a + chunk].sum(axis=0, dtype=np.float64)
    mean /= max(n, 1)
    cov = np.zeros((d, d))
    for a in range(0, n, chunk):
        x = features[a:a + chunk].astype(np.float64) - mean
        cov += x.T @ x
    from scipy.linalg import eigh

    p = min(dims, d)
    _, vecs = eigh(cov, subset_by_index=[d - p, d - 1])  # only the leading axes
    return mean, np.ascontiguousarray(vecs[:, ::-1])
