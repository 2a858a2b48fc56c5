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
    depth_norm: np.ndarray  # (N, J) float32 the network's depth unit (see dataset.normalised_depth)
    view: str


def predict(estimator: TrainedEstimator, images: np.ndarray, *, view: str = "front", batch_size: int = 16,
            device: str | None = None) -> Prediction:
    """Joints of ``images`` (N, H, W, 3) uint8, seen from the training camera ``view``.

    The images must have the renders' size; depth is converted to metres with
    that view's reference depth and focal length.
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
    out_xy, out_d = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = to_network(torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(dev),
                           estimator.input_size)
            out = net(x, estimator.image_size)
            out_xy.append(out["joints2d"].cpu().numpy())
            out_d.append(out["depth"].cpu().numpy())
    j = estimator.num_joints
    xy = np.concatenate(out_xy).astype(np.float32) if out_xy else np.zeros((0, j, 2), np.float32)
    d = np.concatenate(out_d).astype(np.float32) if out_d else np.zeros((0, j), np.float32)
    ref = estimator.view_refs[view]
    z = camera_depth(d, ref["depth_ref"], ref["focal"], estimator.image_size[0])
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
