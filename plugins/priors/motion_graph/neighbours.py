"""Exact nearest-neighbour search over frame features, in sub-quadratic time and linear memory.

Every pose comparison of the motion graph (transitions, its threshold, the
plausibility of an in-between, which reference runs resemble the shot) is a
nearest-neighbour question in one metric: the RMS-per-joint distance between
feature rows (``sqrt(sum(d**2) / joints)``). :class:`FrameIndex` answers it
for any number of frames without an N x N matrix:

1. the rows are projected on their ``dims`` leading principal components, plus
   one coordinate: the length of what the projection leaves out. Distances
   between such points never exceed the true ones (the residual part of a
   difference is at least the difference of the residual lengths), and the
   residual coordinate keeps the bound tight for rows far from the indexed
   motion (an interpolated pose no frame resembles);
2. a :class:`scipy.spatial.cKDTree` over the projections proposes candidates
   (twice the neighbours asked for, plus a margin);
3. their exact distances are computed in chunks of rows and sorted;
4. a row's answer is proven exact when its farthest *proposed* candidate is,
   in projection, at least as far as its k-th exact distance (every row not
   proposed is then farther still); rows not proven ask the tree for twice as
   many candidates, until proven or the whole set was examined.

Motion is low-dimensional (24 components hold ~98% of a CMU take's feature
variance), so step 4 rarely repeats and a query costs about ``log N``; the
answer is exact whatever the data (in the worst case it degrades to a chunked
brute-force scan, never to a wrong neighbour).

Use it for any frames on the same skeleton and features: a shot's context,
reference clips, or a motion library's clips (issue 14) can be indexed once
and queried with another set's rows::

    index = FrameIndex(library_features, joints)
    dist, idx = index.query(shot_features, k=8)  # (M, 8) exact, nearest first
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

DIMS = 24  # principal components the tree searches in
FIT_ROWS = 4096  # rows the principal components are estimated from (evenly spaced)
CHUNK = 1 << 22  # float64 values per block of exact distances (32 MB)


class FrameIndex:
    """Exact k-nearest-neighbour queries over the rows of ``features`` (N, D)."""

    def __init__(self, features: np.ndarray, joints: int, dims: int = DIMS) -> None:
        self.features = np.ascontiguousarray(features, dtype=np.float64)
        self.joints = max(int(joints), 1)
        n, d = self.features.shape
        self.center = self.features.mean(axis=0) if n else np.zeros(d)
        sample = self.features[np.linspace(0, n - 1, min(n, FIT_ROWS)).astype(np.int64)] - self.center if n else \
            np.zeros((0, d))
        if n > 1 and d > dims:  # principal axes from the D x D covariance (cheaper than an SVD of the rows)
            _, vecs = np.linalg.eigh(sample.T @ sample)
            self.basis = vecs[:, ::-1][:, :dims].T
        else:  # few dimensions: search them all (the projection is then exact)
            self.basis = np.eye(d)
        self.tree = cKDTree(self.project(self.features)) if n else None

    @property
    def size(self) -> int:
        return len(self.features)

    def project(self, rows: np.ndarray) -> np.ndarray:
        """(M, dims + 1): principal coordinates and the length of the residual."""
        centred = np.asarray(rows, dtype=np.float64) - self.center
        coords = centred @ self.basis.T
        rest = np.sum(centred * centred, axis=1) - np.sum(coords * coords, axis=1)
        return np.concatenate([coords, np.sqrt(np.maximum(rest, 0.0))[:, None]], axis=1)

    def distances(self, rows: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(M, K) exact distances of each of ``rows`` (M, D) to its ``idx`` (M, K) rows, in chunks."""
        rows = np.asarray(rows, dtype=np.float64)
        out = np.empty(idx.shape)
        step = max(1, CHUNK // max(idx.shape[1] * self.features.shape[1], 1))
        for a in range(0, len(rows), step):
            diff = self.features[idx[a:a + step]] - rows[a:a + step, None]
            out[a:a + step] = np.sqrt(np.einsum("mkd,mkd->mk", diff, diff) / self.joints)
        return out

    def query(self, rows: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(M, k) exact distances and indices of each row's ``k`` nearest indexed rows, nearest first
        (k is capped at the index size)."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        m, n = len(rows), self.size
        k = min(int(k), n)
        if m == 0 or k == 0:
            return np.zeros((m, k)), np.zeros((m, k), dtype=np.int64)
        proj = self.project(rows)
        dist = np.empty((m, k))
        idx = np.empty((m, k), dtype=np.int64)
        todo = np.arange(m)
        ask = min(n, 2 * k + 8)
        while len(todo):
            pd, pi = self.tree.query(proj[todo], k=ask)
            pd, pi = pd.reshape(len(todo), ask), pi.reshape(len(todo), ask)
            exact = self.distances(rows[todo], pi)
            order = np.argsort(exact, axis=1, kind="stable")[:, :k]
            kd = np.take_along_axis(exact, order, axis=1)
            ki = np.take_along_axis(pi, order, axis=1)
            # Projected distances are in plain Euclidean units: compare in RMS-per-joint units.
            bound = pd[:, -1] / np.sqrt(self.joints)
            done = (ask >= n) | (bound >= kd[:, -1])
            dist[todo[done]], idx[todo[done]] = kd[done], ki[done]
            todo = todo[~done]
            ask = min(n, 2 * ask)
        return dist, idx

    def nearest(self, rows: np.ndarray) -> np.ndarray:
        """(M,) exact distance of each row to its nearest indexed row."""
        return self.query(rows, 1)[0][:, 0]
