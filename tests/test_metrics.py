"""Metrics against hand-computed values on tiny arrays, and the published zero-velocity < interp ordering."""
from __future__ import annotations

import numpy as np
import pytest

from anymole_usd import registry
from anymole_usd.metric import EvalWindow, character_size, load_metrics
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton


def chain(n: int, offset=(0.0, 1.0, 0.0)) -> Skeleton:
    rest = np.tile(np.eye(4), (n, 1, 1))
    rest[1:, 3, :3] = offset
    return Skeleton([f"j{i}" for i in range(n)], np.arange(n) - 1, rest)


def motion(frames: int, joints: int, fps: float = 10.0) -> Motion:
    rot = np.zeros((frames, joints, 4))
    rot[..., 3] = 1.0
    tr = np.zeros((frames, joints, 3))
    tr[:, 1:] = (0.0, 1.0, 0.0)
    return Motion(np.arange(frames, dtype=float), rot, tr, np.ones((frames, joints, 3)), fps)


def window(truth, pred, skeleton, generated=None, **kw) -> EvalWindow:
    g = np.zeros(truth.num_frames, dtype=bool)
    g[1:-1] = True
    return EvalWindow(skeleton, truth, pred, g if generated is None else generated, **kw)


def metric(name: str, **params):
    return registry.load("metrics", name)(**params)


def test_every_metric_is_registered():
    names = registry.names("metrics")
    for n in ("l2q", "hl2q", "l2p", "l2p-norm", "npss", "foot-skate", "keyframe-hit", "key-jump"):
        assert n in names
    assert [m.name for m in load_metrics(["npss", "l2q"])] == ["npss", "l2q"]


def test_l2q_hand_computed():
    sk = chain(2)
    truth = motion(3, 2)
    pred = truth.copy()
    s = np.sqrt(0.5)
    pred.rotations[1, 0] = (0.0, 0.0, s, s)  # root turned 90 deg about z on the generated frame
    # Both joints' global quaternions become (0, 0, s, s): per joint |d|^2 = s^2 + (s - 1)^2.
    expected = np.sqrt(2 * (s ** 2 + (s - 1) ** 2))
    assert metric("l2q").compute([window(truth, pred, sk)]) == pytest.approx(expected, abs=1e-12)
    # q and -q are one rotation: a sign flip costs nothing.
    flipped = pred.copy()
    flipped.rotations[1] *= -1
    assert metric("l2q").compute([window(truth, flipped, sk)]) == pytest.approx(expected, abs=1e-12)


def test_hl2q_keeps_the_upper_half_of_the_hierarchy():
    sk = chain(3)  # depths 0, 1, 2 -> joints of depth <= 1 count
    truth = motion(3, 3)
    pred = truth.copy()
    s = np.sqrt(0.5)
    pred.rotations[1, 2] = (s, 0.0, 0.0, s)  # only the deepest joint turns
    assert metric("hl2q").compute([window(truth, pred, sk)]) == pytest.approx(0.0, abs=1e-12)
    assert metric("l2q").compute([window(truth, pred, sk)]) == pytest.approx(np.sqrt(s ** 2 + (s - 1) ** 2))
    pred.rotations[1, 1] = (s, 0.0, 0.0, s)  # depth 1 turns: it and its child move globally
    assert metric("hl2q").compute([window(truth, pred, sk)]) == pytest.approx(np.sqrt(s ** 2 + (s - 1) ** 2))


def test_l2p_in_metres_and_normalised():
    sk = chain(3)
    truth = motion(4, 3)
    pred = truth.copy()
    pred.translations[1:3, 0] += (3.0, 4.0, 0.0)  # every joint moves 5 units on both generated frames
    w = window(truth, pred, sk, meters_per_unit=0.01, size=2.0)
    assert metric("l2p").compute([w]) == pytest.approx(0.05 * np.sqrt(3))
    assert metric("l2p-norm").compute([w]) == pytest.approx(2.5 * np.sqrt(3))


def test_npss_hand_computed_and_matches_lafan1_formula():
    from anymole_usd.plugins.metrics.npss import npss

    # T=4, one channel: truth [1,0,0,0] has a flat spectrum, prediction [1,1,0,0] does not.
    # cdf truth .25 .5 .75 1; prediction power [4,1,0,1]/6 -> cdf .667 .833 .833 1; EMD = 5/6.
    assert npss([np.array([[1.0], [0.0], [0.0], [0.0]])], [np.array([[1.0], [1.0], [0.0], [0.0]])]) == \
        pytest.approx(5 / 6)
    rng = np.random.default_rng(0)
    gt, pr = rng.normal(size=(5, 12, 8)), rng.normal(size=(5, 12, 8))

    def fast_npss(gt_seq, pred_seq):  # LaFAN1 benchmarks.py, batch-first
        gp = np.square(np.real(np.fft.fft(gt_seq, axis=1)))
        pp = np.square(np.real(np.fft.fft(pred_seq, axis=1)))
        gtot, ptot = gp.sum(axis=1), pp.sum(axis=1)
        emd = np.linalg.norm(np.cumsum(pp / ptot[:, None], axis=1) - np.cumsum(gp / gtot[:, None], axis=1),
                             ord=1, axis=1)
        return np.average(emd, weights=gtot)

    assert npss(list(gt), list(pr)) == pytest.approx(fast_npss(gt, pr), rel=1e-12)
    assert npss(list(gt), list(gt)) == pytest.approx(0.0, abs=1e-12)


def test_foot_skate_hand_computed():
    sk = chain(2, offset=(0.0, 1.0, 0.0))  # root at height 0... foot is the leaf at +1 along y
    truth = motion(5, 2, fps=10.0)
    truth.translations[:, 1] = (0.0, -1.0, 0.0)  # the leaf hangs to the ground (y = -1 under the root at 0)
    pred = truth.copy()
    pred.translations[:, 0, 0] = np.arange(5) * 0.1  # the whole character slides 0.1 per frame
    w = window(truth, pred, sk, size=2.0)
    # Foot on the ground in every frame, 0.1 units/frame * 10 fps / size 2 = 0.5 sizes/s on every step.
    assert metric("foot-skate").compute([w]) == pytest.approx(0.5)
    lifted = pred.copy()
    lifted.translations[:, 0, 1] = 0.5  # 0.25 sizes above the ground: no contact, no skate
    assert metric("foot-skate").compute([window(truth, lifted, sk, size=2.0)]) == pytest.approx(0.0)
    assert metric("foot-skate").compute([window(truth, truth, sk, size=2.0)]) == pytest.approx(0.0)


def test_keyframe_hit_and_key_jump():
    sk = chain(2)
    truth = motion(4, 2)
    truth.translations[:, 0, 0] = np.arange(4) * 1.0  # moves 1 per frame
    keys = np.array([False, False, False, True])
    pred = truth.copy()
    assert metric("keyframe-hit").compute([window(truth, pred, sk, keys=keys)]) == 1.0
    assert metric("key-jump").compute([window(truth, pred, sk, keys=keys)]) == pytest.approx(1.0)
    held = truth.copy()
    held.translations[1:3, 0, 0] = 0.0  # zero-velocity: holds frame 0, then jumps 3 at the key
    assert metric("key-jump").compute([window(truth, held, sk, keys=keys)]) == pytest.approx(3.0)
    missed = truth.copy()
    missed.translations[3, 0, 0] += 0.01
    assert metric("keyframe-hit").compute([window(truth, missed, sk, keys=keys, size=1.0)]) == 0.0


def test_character_size_ignores_a_static_root_left_at_the_origin():
    p = np.zeros((2, 3, 3))
    p[:, 1] = (100.0, 0.0, 0.0)  # body far from the root joint
    p[:, 2] = (100.0, 1.7, 0.0)
    assert character_size(p) == pytest.approx(100.0)
    assert character_size(p, np.array([-1, 0, 1])) == pytest.approx(1.7)


def test_zero_velocity_scores_worse_than_interp_on_every_clip_group(data_dir):
    from anymole_usd.evaluation import aggregate, run_benchmark
    from anymole_usd.protocols import load_clips

    bvh = data_dir / "bvh"
    clips = load_clips([bvh / "humanoid/bandai_namco/dataset-1_walk_normal_001.bvh",
                        bvh / "humanoid/bandai_namco/dataset-1_punch_normal_001.bvh",
                        bvh / "nonhumanoid/truebones/Elephant_idle1.bvh"])
    assert {c.group for c in clips} == {"humanoid", "non-humanoid"}
    scores = run_benchmark(clips, ["zero-velocity", "interp"], "anymole", load_metrics(["l2q", "l2p-norm"]),
                           truth_row=False)
    for group in ("humanoid", "non-humanoid"):
        agg = aggregate(scores, lambda s, g=group: s.group == g)
        for m in ("l2q", "l2p-norm"):
            assert agg[("anymole", "zero-velocity")][m] > agg[("anymole", "interp")][m], (group, m)
