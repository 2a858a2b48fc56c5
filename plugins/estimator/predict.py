"""Run a trained estimator on new images of the shot (generated video frames, held-out renders)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .dataset import RenderSet, camera_depth
from .model import to_network
from .training import TrainedEstimator


@dataclass
class Prediction:
    """Per image and joint: 2D position (pixels, pixel centres at +0.5) and camera depth (metres)."""

    joints2d: np.ndarray  # (N, J, 2) float32
    depth: np.ndarray  # (N, J) float32 camera-space z, metres, in ``view``'s camera
    depth_norm: np.ndarray  # (N, J) float32 the network's depth unit (depth.centred_depth or
    # dataset.normalised_depth, after the estimator's depth_mode)
    view: str


# Time scale (time codes) over which the distance solved from each image is smoothed when the frames'
# times are given: 3 frames, 0.1 s at 30 fps.
DISTANCE_SIGMA = 3.0


def predict(estimator: TrainedEstimator, images: np.ndarray, *, view: str = "front", batch_size: int = 16,
            device: str | None = None, distance: np.ndarray | None = None, times: np.ndarray | None = None,
            distance_sigma: float = DISTANCE_SIGMA) -> Prediction:
    """Joints of ``images`` (N, H, W, 3) uint8, seen from the training camera ``view``.

    The images must have the renders' size. Depth in metres: with the default
    ``depth_mode="relative"`` the network's depths about the character's mean
    depth, placed at the distance that gives the character its rigid lengths
    (:mod:`.depth`); with ``"absolute"`` the view's reference depth plus the
    network's offset. ``distance`` (N,) metres, when the caller knows it better
    (e.g. the mean joint depth of the keyframe-interpolated pose), replaces the
    estimated distance: the joints keep their predicted depths about their mean
    and that mean becomes ``distance``. ``times`` (N,) time codes, when the
    images are frames of one sequence: the estimated distance is smoothed over
    time (:func:`.depth.smooth_distance`, ``distance_sigma`` time codes; 0 = off).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3), got {images.shape}")
    if tuple(images.shape[1:3]) != tuple(estimator.image_size):
        raise ValueError(f"images are {images.shape[2]}x{images.shape[1]} but the estimator learnt from "
                         f"{estimator.image_size[1]}x{estimator.image_size[0]} renders")
    if view not in estimator.view_refs:
        raise ValueError(f"the estimator has no camera {view!r} (trained on {', '.join(estimator.view_refs)})")
    net = estimator.net
    dev = device or next(net.parameters()).device
    net.to(dev).eval()
    out_xy, out_d, out_a = [], [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = to_network(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(dev),
                           estimator.input_size)
            out = net(x, estimator.image_size)
            out_xy.append(out["joints2d"].cpu().numpy())
            out_d.append(out["depth"].cpu().numpy())
            if "depth_abs" in out:
                out_a.append(out["depth_abs"].cpu().numpy())
    j = estimator.num_joints
    xy = np.concatenate(out_xy).astype(np.float32) if out_xy else np.zeros((0, j, 2), np.float32)
    d = np.concatenate(out_d).astype(np.float32) if out_d else np.zeros((0, j), np.float32)
    ref = estimator.view_refs[view]
    if estimator.settings.depth_mode == "relative":
        from .depth import absolute_depth

        if len(estimator.rigid_pairs):
            z, zc = absolute_depth(xy, d, ref["focal"], estimator.image_size, estimator.rigid_pairs,
                                   estimator.rigid_lengths)
        else:  # no length to measure the distance with (e.g. two joints at one point): the view's mean depth
            zc = np.full(len(d), ref["depth_ref"])
            rho = (d - d.mean(-1, keepdims=True)) * (estimator.image_size[0] / 2) / ref["focal"]
            z = (zc[:, None] * (1.0 + rho)).astype(np.float32)
        if out_a and estimator.settings.distance != "lengths":
            a = np.concatenate(out_a)
            net = camera_depth(a, ref["depth_ref"], ref["focal"], estimator.image_size[0]).mean(-1)
            want = net if estimator.settings.distance == "network" else np.sqrt(np.maximum(net, 1e-6) * zc)
            z = (z * (want / np.maximum(zc, 1e-9))[:, None]).astype(np.float32)
    else:
        z = camera_depth(d, ref["depth_ref"], ref["focal"], estimator.image_size[0])
    if distance is None and times is not None and distance_sigma > 0 and len(z):
        from .depth import smooth_distance

        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if times.shape != (len(z),):
            raise ValueError(f"times must have one value per image ({len(z)}), got {times.shape}")
        distance = smooth_distance(z.mean(-1), times, distance_sigma)
    if distance is not None:
        distance = np.asarray(distance, dtype=np.float64).reshape(-1)
        if distance.shape != (len(z),):
            raise ValueError(f"distance must have one value per image ({len(z)}), got {distance.shape}")
        z = (z * (distance / np.maximum(z.mean(-1), 1e-9))[:, None]).astype(np.float32)
    return Prediction(xy, z, d, view)


def prediction_errors(pred: Prediction, truth: RenderSet) -> dict:
    """Mean 2D error (pixels and fraction of projected height) and depth error (metres, fraction of height)."""
    px = np.linalg.norm(pred.joints2d - truth.joints2d, axis=-1)  # (N, J)
    dz = np.abs(pred.depth - truth.depth)
    out = {"px": float(px.mean()), "depth_m": float(dz.mean()),
           "depth_frac": float(dz.mean() / truth.char_height), "samples": int(len(px))}
    if truth.projected_height is not None:
        out["px_frac"] = float((px.mean(1) / truth.projected_height).mean())
    vis = truth.visible
    if vis.any():
        out["px_visible"] = float(px[vis].mean())
    return out
