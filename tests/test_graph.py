"""The `graph` prior on real clips: exact-length paths, exact keys, continuity, determinism, fallback."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from anymole_usd import kinematics, registry
from anymole_usd.evaluation import compose, make_request
from anymole_usd.protocols import Window, load_clips

BANDAI = "bvh/humanoid/bandai_namco"


@pytest.fixture(scope="module")
def walk(data_dir):
    return load_clips([data_dir / BANDAI / "dataset-2_walk_normal_004.bvh"])[0]


@pytest.fixture(scope="module")
def creatures(data_dir):
    return load_clips([data_dir / "bvh/nonhumanoid/truebones/Crabnew_Crab-dance-long.bvh",
                       data_dir / "bvh/nonhumanoid/truebones/Elephant_idle2.bvh",
                       data_dir / "usd/CesiumMan.usdz"])


def graph(**params):
    return registry.load("priors", "graph")(**params)


def anymole_window(clip, last=None):
    keys = list(range(90, min(clip.motion.num_frames, 241), 30))
    return Window(clip, (0, 60), keys[:last] if last else keys, "test")


def positions(clip, m):
    return kinematics.global_positions(clip.skeleton.parents, m.rotations, m.translations, m.scales)


def test_graph_is_registered_and_fills_exactly_the_requested_times(walk):
    req = make_request(anymole_window(walk))
    prior = graph()
    out = prior.fill(req)
    assert np.allclose(out.times, req.target_times)
    assert out.rotations.shape == (len(req.target_times), walk.skeleton.num_joints, 4)
    assert np.isfinite(out.rotations).all() and np.isfinite(out.translations).all()
    assert prior.fallbacks == []  # a 2 s walk context is plenty


def test_paths_have_the_exact_gap_length(walk):
    from anymole_usd.plugins.priors import graph as g

    req = make_request(anymole_window(walk, last=2))
    seen = []
    for search in ("dp", "beam"):
        prior = graph(search=search, select=False)
        orig = g.dp_paths if search == "dp" else g.beam_paths

        def spy(gr, n, ends, width, _orig=orig):
            paths = _orig(gr, n, ends, width)
            seen.append((n, [len(p.nodes) for p in paths]))
            return paths

        setattr(g, "dp_paths" if search == "dp" else "beam_paths", spy)
        try:
            prior.fill(req)
        finally:
            setattr(g, "dp_paths" if search == "dp" else "beam_paths", orig)
    assert len(seen) == 4
    for n, lengths in seen:
        assert n == 29 and lengths and all(k == n + 2 for k in lengths)  # start node + 29 played + key node


def test_keyframes_are_met_exactly_by_the_assembly(walk):
    """The assembled path starts at the known sample and ends at the keyframe to float precision."""
    from anymole_usd.plugins.priors import graph as g

    req = make_request(anymole_window(walk, last=3))
    captured = []
    orig = g.assemble

    def spy(*args, **kw):
        r, t, s = orig(*args, **kw)
        captured.append((r, t, s, args[5], args[6]))
        return r, t, s

    g.assemble = spy
    try:
        graph(foot_lock=False, select=False).fill(req)
    finally:
        g.assemble = orig
    assert len(captured) == 3
    for r, t, s, start, end in captured:
        for got, want in ((r[0], start[0]), (r[-1], end[0])):
            assert np.abs(np.abs(np.sum(got * want, axis=-1)) - 1.0).max() < 1e-9  # same rotation
        assert np.abs(t[0] - start[1]).max() < 1e-9 and np.abs(t[-1] - end[1]).max() < 1e-9


def continuity_ratio(clip, window, out, req):
    """Largest per-frame joint step of the composed result over the context's own largest step."""
    full = compose(req.known, out, req.timeline)
    p = positions(clip, full)
    step = np.linalg.norm(np.diff(p, axis=0), axis=-1).max(axis=1)
    c0, c1 = window.context
    ctx = step[c0:c1].max()
    gen = step[c1:]  # every step from the end of the context on: into, inside and out of each gap
    return gen.max() / ctx


def test_transitions_are_continuous(walk, creatures):
    """No joint jumps further in one frame than 1.5x the fastest joint of the context does,
    at the gap boundaries (keyframes) and at the graph's transitions alike."""
    for clip in [walk] + creatures[:2]:
        w = anymole_window(clip)
        req = make_request(w)
        ratio = continuity_ratio(clip, w, graph().fill(req), req)
        assert ratio < 1.5, (clip.name, ratio)


def test_deterministic_with_a_seed(walk):
    req = make_request(anymole_window(walk, last=3))
    a, b = graph().fill(req), graph().fill(req)
    assert np.array_equal(a.rotations, b.rotations) and np.array_equal(a.translations, b.translations)
    j1, j2 = graph(jitter=0.05).fill(req), graph(jitter=0.05).fill(req)
    assert np.array_equal(j1.rotations, j2.rotations)
    req.seed = 7
    j3 = graph(jitter=0.05).fill(req)
    assert j3.rotations.shape == j1.rotations.shape


def test_falls_back_to_interp_when_the_context_is_one_frame(walk, caplog):
    w = Window(walk, (60, 60), [90, 120], "short")
    req = make_request(w)
    assert len(req.timeline.context_times) == 1
    prior = graph()
    with caplog.at_level(logging.WARNING, logger="anymole_usd"):
        out = prior.fill(req)
    interp = registry.load("priors", "interp")().fill(req)
    assert np.allclose(out.rotations, interp.rotations) and np.allclose(out.translations, interp.translations)
    assert len(prior.fallbacks) == 2 and "too short" in prior.fallbacks[0]["reason"]
    assert any("falls back to interp" in r.getMessage() for r in caplog.records)


def test_works_for_any_skeleton(creatures):
    for clip in creatures:
        n = clip.motion.num_frames
        ctx = min(60, n // 2)
        keys = [k for k in (ctx + 12, ctx + 24) if k < n] or [n - 1]
        req = make_request(Window(clip, (0, ctx), keys, "any"))
        out = graph().fill(req)
        assert out.rotations.shape == (len(req.target_times), clip.skeleton.num_joints, 4)
        assert np.isfinite(out.rotations).all() and np.isfinite(out.translations).all()


def test_beats_interp_on_a_walk(walk):
    """The point of the prior: a 2 s walk context and keys every second (AnyMoLe protocol)."""
    from anymole_usd.evaluation import run_prior
    from anymole_usd.metric import load_metrics

    ws = [anymole_window(walk)]
    l2p = load_metrics(["l2p-norm"])[0]
    g = l2p.compute(run_prior(graph(), ws)[0])
    i = l2p.compute(run_prior(registry.load("priors", "interp")(), ws)[0])
    assert g < 0.5 * i


def test_parameters_are_checked_and_coerced():
    from anymole_usd.errors import InputError

    with pytest.raises(InputError, match="unknown parameter"):
        graph(threshold=2)
    with pytest.raises(InputError, match="bad value"):
        graph(search="astar")
    p = graph(threshold_scale="1.5", foot_lock="false", beam_width="32")
    assert p.parameters() == {"threshold_scale": 1.5, "foot_lock": False, "beam_width": 32}
