"""Joints no geometry follows: found from the posed surface, not learnt from pixels, reported from the renders."""
from __future__ import annotations

import os

import numpy as np
import pytest

from anymole_usd.plugins.estimator import dataset as ds
from anymole_usd.plugins.estimator.renders import observed_joints

WALK = "bvh/humanoid/bandai_namco/dataset-1_walk_normal_001.bvh"


def test_a_joint_far_from_the_surface_is_not_observed():
    rng = np.random.default_rng(0)
    vertices = rng.normal(0.0, 0.5, (5, 400, 3)) + np.array([0.0, 1.0, 4.0])  # a body about 2 m across
    joints = np.stack([vertices[:, :3].mean(1), vertices[:, 7], np.zeros((5, 3))], 1)  # centre, on it, origin
    assert observed_joints(joints, vertices).tolist() == [True, True, False]
    assert observed_joints(joints[:, 2:], vertices).tolist() == [True]  # never all hidden: then all kept


def test_bandai_trajectory_root_is_not_observed(data_dir):
    """Bandai Namco (CC BY-NC-ND 4.0, read from ../shared/data, not shipped): joint_Root stays at the world
    origin while the walk moves metres away, with no bone drawn for it."""
    from anymole_usd.plugins.render.scene import load_scene
    from anymole_usd.plugins.render.skinning import pose_character

    path = os.path.join(data_dir, WALK)
    if not os.path.exists(path):
        pytest.skip("Bandai Namco walk not in ../shared/data")
    scene = load_scene(path, times=np.arange(0.0, 61.0, 6.0))
    pose = pose_character(scene.character, scene.motion)
    seen = observed_joints(pose.joints, pose.vertices)
    names = list(scene.character.skeleton.joints)
    assert [names[i] for i in np.flatnonzero(~seen)] == [n for n in names if n.endswith("joint_Root")]


def test_observed_is_kept_by_subset_and_concatenate_and_changes_the_digest():
    rng = np.random.default_rng(1)
    n, j = 6, 3
    rs = ds.RenderSet(images=np.zeros((n, 8, 8, 3), np.uint8), joints2d=rng.uniform(0, 8, (n, j, 2)),
                      depth=rng.uniform(2, 3, (n, j)), visible=np.ones((n, j), bool), views=["front"] * n,
                      times=np.arange(n), is_key=np.zeros(n, bool), weights=np.ones(n), focal=np.full(n, 10.0))
    before = rs.digest()
    rs.observed = np.array([True, False, True])
    assert rs.digest() != before
    part = rs.subset(np.array([0, 2]))
    assert part.observed.tolist() == [True, False, True] and part.num_samples == 2
    assert ds.RenderSet.concatenate([part, rs]).observed.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="observed"):
        ds.RenderSet(**{**rs.__dict__, "observed": np.zeros(j, bool)})


def test_anchored_joints_interpolate_in_time_and_hold_at_the_ends():
    from anymole_usd.plugins.estimator.predict import anchored_joints

    anchor = {"times": [0.0, 10.0, 20.0], "joints2d": [[[0.0, 0.0]], [[10.0, 20.0]], [[10.0, 20.0]]],
              "depth": [[2.0], [4.0], [4.0]]}
    xy, z = anchored_joints(anchor, np.array([-5.0, 5.0, 15.0, 30.0]), 4)
    assert np.allclose(xy[:, 0], [[0, 0], [5, 10], [10, 20], [10, 20]]) and np.allclose(z[:, 0], [2, 3, 4, 4])
    xy, z = anchored_joints(anchor, None, 2)  # no times: their mean
    assert np.allclose(xy[:, 0], [20 / 3, 40 / 3]) and np.allclose(z[:, 0], 10 / 3)
    with pytest.raises(ValueError, match="cannot see"):
        anchored_joints(None, None, 1)
