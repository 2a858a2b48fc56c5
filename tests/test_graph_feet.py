"""Which joints the `graph` prior treats as feet, and when its contact cleanup may touch a gap (issue 14:
the default prior's NPSS must never rise above interpolation's)."""
from __future__ import annotations

import numpy as np
import pytest

from anymole_usd import registry
from anymole_usd.evaluation import make_request, run_prior
from anymole_usd.plugins.priors.motion_graph.features import find_body_frame
from anymole_usd.plugins.priors.motion_graph.footlock import Feet, find_feet
from anymole_usd.plugins.priors.motion_graph.plants import plan
from anymole_usd.protocols import load_clips, windows_for

HUMANOID = "library/bvh/humanoid"


def graph(**params):
    return registry.load("priors", "graph")(**params)


def feet_of(clip, frames=120) -> Feet:
    m = clip.motion.select(np.arange(frames))
    frame = find_body_frame(clip.skeleton, m.rotations, m.translations, m.scales, clip.up_axis)
    return find_feet(clip.skeleton, clip.positions[:frames], frame)


def names(clip, joints) -> list[str]:
    return [clip.skeleton.short_names[int(j)] for j in joints]


def test_a_hand_has_no_feet_and_gets_no_cleanup(data_dir):
    """The hand-only mug take rests its fingertips on the table: they are its lowest leaves, not feet."""
    hand = load_clips([data_dir / HUMANOID / "manipnet_hands/mug1_leftHand.bvh"])[0]
    assert len(feet_of(hand).joints) == 0
    w = windows_for("anymole", hand)[2]  # a window whose interpolated fingertips glide along the table
    prior = graph()
    out = prior.fill(make_request(w))
    assert len(prior.feet.joints) == 0
    raw = graph(clean_steps=False, foot_lock=False).fill(make_request(w))
    assert np.array_equal(out.rotations, raw.rotations)  # nothing pinned, lifted or locked


def test_mixamo_toe_chain_bends_the_leg_not_the_ankle(data_dir):
    """Thriller's lowest leaves are the toe tips (Foot -> ToeBase -> Toe_End): the IK chain is thigh, shin
    and foot, so pinning a toe tip moves the leg instead of spinning the ankle and toe."""
    clip = load_clips([data_dir / HUMANOID / "brynmawr_animation_toolkit/Warrok_WarrokThriller.bvh"])[0]
    feet = feet_of(clip)
    assert sorted(names(clip, feet.joints)) == ["LeftToe_End", "RightToe_End"]
    chains = {names(clip, [c])[0]: names(clip, ch) for c, ch in zip(feet.joints, feet.chains)}
    assert chains["LeftToe_End"] == ["LeftUpLeg", "LeftLeg", "LeftFoot"]
    assert chains["RightToe_End"] == ["RightUpLeg", "RightLeg", "RightFoot"]


def test_a_sunk_foot_steps_without_a_jump():
    """A foot gliding 0.6 sizes while sunk 4% of the size into the floor: its steps leave and land
    without jumping in height, and its stance is raised onto the floor away from the known samples."""
    m = 31
    p = np.zeros((m, 1, 3))
    p[:, 0, 0] = np.linspace(0.0, 0.6, m)
    p[:, 0, 1] = -0.04 * np.sin(np.pi * np.arange(m) / (m - 1))  # sinking in the middle of the gap
    feet = Feet(np.array([0]), np.zeros(1), np.full((1, 3), -1), np.array([0.0, 1.0, 0.0]), 1.0)
    moved = p[:, 0] + plan(feet, p, 30.0)[:, 0]
    # No faster than a swing's own rise (pi x LIFT over a 0.3 s swing: 0.014 / frame); the floor measured
    # from the ground instead of the sunk stance made the foot jump 3-4% of the size in one frame.
    assert np.abs(np.diff(moved[:, 1])).max() < 0.02
    assert np.array_equal(moved[[0, -1]], p[[0, -1], 0])
    assert moved[:, 1].min() > -0.03  # no longer 4% into the floor


def test_footwork_that_slides_is_left_alone(data_dir):
    """martial_04's context slides its feet (pivots, shuffles): a gap gliding no more than 5 x as much in as
    long is not cleaned (`clean_ratio`); with the ratio off the cleanup runs there."""
    clip = load_clips([data_dir / HUMANOID / "cmu_daz_acrnn/martial_04.bvh"])[0]
    ws = windows_for("anymole", clip)[:1]
    default, _ = run_prior(graph(), ws)
    raw, _ = run_prior(graph(clean_steps=False), ws)
    forced, _ = run_prior(graph(clean_ratio=0.0), ws)
    assert all(np.array_equal(a.pred_rotations, b.pred_rotations) for a, b in zip(default, raw))
    assert any(not np.array_equal(a.pred_rotations, b.pred_rotations) for a, b in zip(forced, raw))


@pytest.mark.parametrize("ratio", [5.0])
def test_walking_is_still_cleaned(data_dir, ratio):
    """A walk's context keeps its feet planted, so the interpolated gap that glides is cleaned."""
    clip = load_clips([data_dir / "bvh/humanoid/bandai_namco/dataset-1_walk_tired_001.bvh"])[0]
    ws = windows_for("anymole", clip)
    cleaned, _ = run_prior(graph(clean_ratio=ratio), ws)
    raw, _ = run_prior(graph(clean_steps=False), ws)
    assert any(not np.array_equal(a.pred_rotations, b.pred_rotations) for a, b in zip(cleaned, raw))
