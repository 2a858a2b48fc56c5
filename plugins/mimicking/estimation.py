"""Mimicking targets from the joint estimator: 2D joints and depths on the video frames.

The estimator (``plugins/estimator``) is trained on the shot's known renders and
predicts every frame to fill; this module turns its predictions into
:class:`~.optimizer.MimicTargets` rows.
"""
from __future__ import annotations

import numpy as np


def interpolated_distance(known, skel, times: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """(N,) mean camera depth of the pose interpolated between the nearest known samples at ``times``."""
    from anymole_usd import kinematics

    from .upsample import resample

    guess = resample(known, times)
    pos = kinematics.global_positions(skel.parents, guess.rotations, guess.translations, guess.scales)
    return (pos @ camera[2, :3] + camera[2, 3]).mean(-1)


def estimator_targets(targets, renders, images: np.ndarray, grid, known, skel, camera: np.ndarray, view: str,
                      prior, *, cache_dir=None, progress=None) -> None:
    """Train (or reuse) the estimator on ``renders`` and fill ``targets.joints2d`` / ``targets.depth`` on
    the grid's interior rows from ``images`` (N, H, W, 3). ``prior``: the VideoPrior (its options)."""
    from anymole_usd.plugins.estimator.predict import predict
    from anymole_usd.plugins.estimator.training import EstimatorSettings, train_estimator

    fill = grid.times[~grid.known]
    est = train_estimator(renders, EstimatorSettings(steps=int(prior.option("estimator_steps"))),
                          cache_dir=cache_dir, progress=progress)
    distance = None
    if prior.option("estimator_distance") == "interp":
        # A monocular estimator is least sure of the camera distance: use the distance of the pose
        # interpolated between the nearest known samples (what lambda_pos pulls the root to) and keep
        # the network's depths about their mean.
        distance = interpolated_distance(known, skel, fill, camera)
    if progress is not None:
        progress(f"estimator: predicting {len(fill)} frames", 1.0)
    # times: joints no image shows are interpolated in time from the known renders
    pred = predict(est, images[~grid.known], view=view, distance=distance, times=fill)
    targets.joints2d = np.zeros((len(grid.times), skel.num_joints, 2))
    targets.depth = np.ones((len(grid.times), skel.num_joints))
    targets.joints2d[~grid.known], targets.depth[~grid.known] = pred.joints2d, pred.depth
