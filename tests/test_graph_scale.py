"""Issue 13 item 8: the graph prior's memory grows linearly with the context, and its nearest-neighbour
search is exact. (Speed is measured in benchmarks/bench_graph_scale.py, never asserted here.)"""
from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest

from anymole_usd import registry
from anymole_usd.plugins.io.bvh import read_bvh
from anymole_usd.plugins.priors.motion_graph.features import find_body_frame, frame_data
from anymole_usd.plugins.priors.motion_graph.graph import LOCAL_TRANSITIONS, MAX_TRANSITIONS, prune_dead_ends
from anymole_usd.plugins.priors.motion_graph.neighbours import FrameIndex
from anymole_usd.prior import InbetweenRequest
from anymole_usd.timeline import build_timeline

TAKE = "library/bvh/humanoid/cmu_3dsmax_zombiehorse/142_22.bvh"  # 5,221 frames at 120 fps


@pytest.fixture(scope="module")
def take(data_dir):
    return read_bvh(data_dir / TAKE)


@pytest.fixture(scope="module")
def features(take):
    m = take.motion.normalized()
    frame = find_body_frame(take.skeleton, m.rotations, m.translations, m.scales, "Y")
    fd = frame_data(frame, take.skeleton, m.rotations, m.translations, m.scales, m.fps)
    return np.concatenate([fd.pose, 0.1 * fd.velocity], axis=1), len(frame.joints)


def brute(query, rows, joints):
    d2 = np.sum(query ** 2, 1)[:, None] + np.sum(rows ** 2, 1)[None] - 2 * query @ rows.T
    return np.sqrt(np.maximum(d2, 0) / joints)


def test_frame_index_is_exact(features):
    x, joints = features
    rows, queries = x[:3000], x[3000::9]
    index = FrameIndex(rows, joints)
    dist, idx = index.query(queries, k=20)
    full = brute(queries, rows, joints)
    np.testing.assert_allclose(dist, np.sort(full, axis=1)[:, :20], atol=1e-6)
    np.testing.assert_allclose(np.take_along_axis(full, idx, axis=1), dist, atol=1e-6)
    # Rows far from every indexed frame (an in-between no frame resembles) are answered exactly too.
    rng = np.random.default_rng(0)
    far = queries[:50] + rng.normal(0.0, 0.05, queries[:50].shape)
    np.testing.assert_allclose(index.nearest(far), brute(far, rows, joints).min(axis=1), atol=1e-6)


def test_dead_end_pruning_keeps_exactly_the_nodes_that_reach_a_cycle():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = 60
        src = rng.integers(0, n, 70)
        dst = rng.integers(0, n, 70)
        alive = np.ones(n, dtype=bool)  # the definition: drop nodes with no edge to a kept node until stable
        while True:
            ok = alive[src] & alive[dst]
            new = alive & np.isin(np.arange(n), src[ok])
            if new.sum() == alive.sum():
                break
            alive = new
        np.testing.assert_array_equal(prune_dead_ends(n, src, dst), alive)


def fill_long_context(take, context: int):
    """A shot of ``context`` real frames at 120 fps, then keys 150 and 451 frames later."""
    m = take.motion
    keys = [context - 1 + 150, context - 1 + 451]
    known = m.select(np.concatenate([np.arange(context), keys]))
    timeline = build_timeline(known.times, context=(0.0, float(context - 1)), keys=[float(k) for k in keys])
    request = InbetweenRequest(take.skeleton, known, timeline, up_axis="Y")
    prior = registry.load("priors", "graph")()
    tracemalloc.start()
    try:
        out = prior.fill(request)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.isfinite(out.rotations).all() and out.num_frames == 449
    return peak, prior.stats


def test_memory_grows_linearly_with_the_context(take, caplog):
    caplog.set_level(logging.ERROR)
    small, s_stats = fill_long_context(take, 2380)
    large, l_stats = fill_long_context(take, 4760)
    for stats in (s_stats, l_stats):  # a sparse graph: edges linear in the frames
        assert stats["edges"] <= stats["nodes"] * (1 + LOCAL_TRANSITIONS + MAX_TRANSITIONS)
    # An N x N distance matrix alone would be 181 MB at 4,760 frames and quadruple from 2,380.
    assert large < 400e6, large
    assert large / small < 2.6, (small, large)
