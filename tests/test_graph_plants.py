"""The `graph` prior's contact cleanup and reference admission, on real clips (and one small plan)."""
from __future__ import annotations

import numpy as np
import pytest

from anymole_usd import kinematics, registry
from anymole_usd.evaluation import compose, gap_windows, make_request, run_prior
from anymole_usd.metric import load_metrics
from anymole_usd.plugins.priors.motion_graph.footlock import Feet
from anymole_usd.plugins.priors.motion_graph.plants import LIFT, plan
from anymole_usd.protocols import Window, load_clips

BANDAI = "bvh/humanoid/bandai_namco"


@pytest.fixture(scope="module")
def jumps(data_dir):
    """CMU 01_01 (forward jumps), decimated to 30 fps: interpolation slides the feet between keys."""
    return load_clips([data_dir / "bvh/humanoid/cmu/01_01.bvh"])[0]


def graph(**params):
    return registry.load("priors", "graph")(**params)


def window(clip, start=0):
    return Window(clip, (start, start + 60), list(range(start + 90, start + 241, 30)), "test")


def test_plan_pins_a_gliding_foot_and_lifts_its_steps():
    """A foot gliding 0.6 sizes along the ground over 1 s: planted at both ends, stepping between."""
    m = 31
    p = np.zeros((m, 1, 3))
    p[:, 0, 0] = np.linspace(0.0, 0.6, m)
    feet = Feet(np.array([0]), np.zeros(1), np.full((1, 3), -1), np.array([0.0, 1.0, 0.0]), 1.0)
    moved = p[:, 0] + plan(feet, p, 30.0)[:, 0]
    assert np.abs(moved[[0, -1]] - p[[0, -1], 0]).max() == 0.0  # the known samples stay
    low = moved[:, 1] < 0.01  # the foot-skate metric's contact height
    step = np.abs(np.diff(moved[:, 0]))
    contact = low[1:] & low[:-1]
    assert contact.sum() >= 10 and step[contact].max() < 1e-9  # planted while on the ground
    assert moved[:, 1].max() >= 0.9 * LIFT  # and it lifts to move
    assert np.all(np.diff(moved[:, 0]) >= -1e-12)  # never moving backwards


def test_plan_removes_a_stance_drift_but_keeps_its_roll():
    """A mid-gap stance drifting 1.5% of the size with a small wobble (a toe rolling): the drift goes,
    the wobble stays, the swings around it are untouched at the gap's ends."""
    m = 31
    steps = np.arange(m)
    p = np.zeros((m, 1, 3))
    stance = (steps >= 10) & (steps <= 22)
    p[:, 0, 1] = np.where(stance, 0.0, 0.1)  # swinging high before and after
    u = np.clip((steps - 10) / 12, 0, 1)
    wobble = 0.003 * np.sin(2 * np.pi * u)
    p[:, 0, 0] = 0.015 * u + wobble
    feet = Feet(np.array([0]), np.zeros(1), np.full((1, 3), -1), np.array([0.0, 1.0, 0.0]), 1.0)
    moved = p[:, 0] + plan(feet, p, 30.0)[:, 0]
    x = moved[stance, 0]
    assert np.allclose(x - x.mean(), wobble[stance] - wobble[stance].mean(), atol=1e-12)
    assert np.abs(moved[[0, -1]] - p[[0, -1], 0]).max() == 0.0


def test_cleanup_stops_interpolated_feet_sliding(jumps):
    """On 01_01 most gaps keep interpolation (the context never jumps); cleaned, their feet stay put."""
    skate, l2p = load_metrics(["foot-skate", "l2p-norm"])
    ws = [window(jumps)]
    truth = skate.compute(gap_windows(jumps, jumps.motion, make_request(ws[0]).timeline))
    raw, _ = run_prior(graph(clean_steps=False), ws)
    cleaned, _ = run_prior(graph(), ws)
    assert skate.compute(raw) > 3 * truth  # the problem is there without the cleanup
    # Gaps where a foot glides over half the character's size are cleaned; shorter slides are left
    # alone (`clean_glide`: the cleanup must not cost L2P/NPSS where it has little to fix).
    assert skate.compute(cleaned) < 0.2 * skate.compute(raw) and skate.compute(cleaned) < 1.6 * truth
    assert l2p.compute(cleaned) < 1.02 * l2p.compute(raw)  # the pose is not pulled away from the truth
    idle, _ = run_prior(graph(clean_glide=100.0), ws)  # nothing glides that far: nothing is touched
    assert skate.compute(idle) == pytest.approx(skate.compute(raw))


def test_cleanup_keeps_keys_and_continuity(jumps):
    w = window(jumps)
    req = make_request(w)
    prior = graph()
    out = prior.fill(req)
    full = compose(req.known, out, req.timeline)
    p = kinematics.global_positions(jumps.skeleton.parents, full.rotations, full.translations, full.scales)
    step = np.linalg.norm(np.diff(p, axis=0), axis=-1).max(axis=1)
    truth = jumps.positions[w.context[0]:w.end + 1]
    truth_step = np.linalg.norm(np.diff(truth, axis=0), axis=-1).max(axis=1)
    assert step.max() < 1.5 * truth_step.max()  # no pop into, inside or out of any gap
    legs = np.unique(prior.feet.chains[prior.feet.chains >= 0])
    assert len(legs) >= 4  # two legs of hip, knee, ankle (and toe)
    raw = graph(clean_steps=False).fill(req)
    others = np.setdiff1d(np.arange(jumps.skeleton.num_joints), legs)
    assert np.array_equal(out.rotations[:, others], raw.rotations[:, others])  # only the legs bend
    assert np.array_equal(out.translations, raw.translations)


def test_references_unlike_the_shot_are_not_admitted(data_dir):
    """LaFAN1-style window (10 context frames) with references: more of the same walk is admitted,
    a bow is not; the Truebones idles are different idles and are kept apart."""
    walk, bow, idle1, idle2 = load_clips([data_dir / BANDAI / "dataset-1_walk_normal_001.bvh",
                                          data_dir / BANDAI / "dataset-1_bow_normal_001.bvh",
                                          data_dir / "bvh/nonhumanoid/truebones/Elephant_idle1.bvh",
                                          data_dir / "bvh/nonhumanoid/truebones/Elephant_idle2.bvh"])
    later = walk.motion.select(np.arange(60, walk.motion.num_frames))
    req = make_request(Window(walk, (0, 9), [40], "lafan1-30"), [later, bow.motion])
    prior = graph()
    prior.fill(req)
    assert prior.admitted.tolist() == [True, False]
    everything = graph(admit=0)
    everything.fill(req)
    assert everything.admitted.tolist() == [True, True]
    prior.fill(make_request(Window(idle2, (0, 9), [40], "lafan1-30"), [idle1.motion]))
    assert prior.admitted.tolist() == [False]


def test_interpolation_is_kept_where_it_is_already_plausible(data_dir):
    """Elephant idle1 with idle2 as reference: interpolation of a near-still idle is within the graph
    threshold of real frames, so no reference path replaces it (each one scored worse, L2P 1.1-3x)."""
    idle1, idle2 = load_clips([data_dir / "bvh/nonhumanoid/truebones/Elephant_idle1.bvh",
                               data_dir / "bvh/nonhumanoid/truebones/Elephant_idle2.bvh"])
    req = make_request(Window(idle1, (0, 9), [40], "lafan1-30"), [idle2.motion])
    prior = graph()
    out = prior.fill(req)
    assert prior.admitted.tolist() == [True]
    assert [f["reason"] for f in prior.fallbacks] == ["interpolation already plausible"]
    loose = graph(interp_plausible=0, reference_margin=1)
    loose.fill(req)
    assert loose.fallbacks == []  # without the rules the reference path is used
    interp = registry.load("priors", "interp")().fill(req)
    assert np.allclose(out.translations, interp.translations)
