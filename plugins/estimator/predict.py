"""Run a trained estimator on new images of the shot (generated video frames, held-out renders)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .dataset import RenderSet, camera_depth, normalised_depth
from .framing import Framer, from_frame
from .training import TrainedEstimator


@dataclass
class Prediction:
    """Per image and joint: 2D position (pixels, pixel centres at +0.5) and camera depth (metres)."""

    joints2d: np.ndarray  # (N, J, 2) float32
    depth: np.ndarray  # (N, J) float32 camera-space z, metres, in ``view``'s camera
    depth_norm: np.ndarray  # (N, J) float32 the network's depth unit (depth.centred_depth or
    # dataset.normalised_depth, after the estimator's depth_mode)
    view: str
    # (J,) bool joints read from the image; the others (nothing drawn follows them) are where the
    # training renders put them, interpolated in time when the frames' times were given
    observed: np.ndarray | None = None


# Time scale (time codes) over which the distance solved from each image is smoothed when the frames'
# times are given: 3 frames, 0.1 s at 30 fps.
DISTANCE_SIGMA = 3.0
# Rigid-length fit of the depths (depth.fit_rigid_lengths): length error allowed per unit of relief error.
RIGID_FIT = 0.75


def predict(estimator: TrainedEstimator, images: np.ndarray, *, view: str = "front", batch_size: int = 16,
            device: str | None = None, distance: np.ndarray | None = None, times: np.ndarray | None = None,
            distance_sigma: float = DISTANCE_SIGMA, rigid_fit: float = RIGID_FIT) -> Prediction:
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
    In relative mode the depths are then fitted so the rigid joint pairs keep
    their lengths (:func:`.depth.fit_rigid_lengths`, weight ``rigid_fit``; 0 = off)
    before any distance smoothing or replacement.
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
    seen = estimator.observed_joints
    framer = Framer(estimator.settings, estimator.image_size, estimator.input_size, seen)
    out_xy, out_d, out_a, out_z = [], [], [], []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).to(dev).permute(0, 3, 1, 2)
            xy, d, a, zoom = _read(net, framer, batch)
            out_xy.append(xy)
            out_d.append(d)
            out_z.append(zoom)
            if a is not None:
                out_a.append(a)
    j = estimator.num_joints
    xy = np.concatenate(out_xy).astype(np.float32) if out_xy else np.zeros((0, j, 2), np.float32)
    d = np.concatenate(out_d).astype(np.float32) if out_d else np.zeros((0, j), np.float32)
    zoom = np.concatenate(out_z).astype(np.float64)[:, None] if out_z else np.ones((0, 1))
    ref = estimator.view_refs[view]
    # Framed images show the character ``zoom`` times nearer: relative depths (drawn like image
    # offsets) shrink back by the zoom, absolute ones (metres at the nearer distance) grow by it.
    if estimator.settings.depth_mode == "relative":
        d = (d / zoom).astype(np.float32)
        from .depth import absolute_depth, fit_rigid_lengths

        if len(estimator.rigid_pairs):
            z, zc = absolute_depth(xy, d, ref["focal"], estimator.image_size, estimator.rigid_pairs,
                                   estimator.rigid_lengths, seen)
            if rigid_fit > 0:
                z = fit_rigid_lengths(xy, z, ref["focal"], estimator.image_size, estimator.rigid_pairs,
                                      estimator.rigid_lengths, seen, rigid_fit)
                zc = z[:, seen].mean(-1)
        else:  # no length to measure the distance with (e.g. two joints at one point): the view's mean depth
            zc = np.full(len(d), ref["depth_ref"])
            rho = (d - d[:, seen].mean(-1, keepdims=True)) * (estimator.image_size[0] / 2) / ref["focal"]
            z = (zc[:, None] * (1.0 + rho)).astype(np.float32)
        if out_a and estimator.settings.distance != "lengths":
            a = np.concatenate(out_a)
            net = (camera_depth(a, ref["depth_ref"], ref["focal"], estimator.image_size[0]) * zoom).mean(-1)
            want = net if estimator.settings.distance == "network" else np.sqrt(np.maximum(net, 1e-6) * zc)
            z = (z * (want / np.maximum(zc, 1e-9))[:, None]).astype(np.float32)
    else:
        z = (camera_depth(d, ref["depth_ref"], ref["focal"], estimator.image_size[0]) * zoom).astype(np.float32)
        d = normalised_depth(z, ref["depth_ref"], ref["focal"], estimator.image_size[0])
    if times is not None:
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if times.shape != (len(z),):
            raise ValueError(f"times must have one value per image ({len(z)}), got {times.shape}")
    if not seen.all():  # joints no image shows: where the training renders put them
        xy[:, ~seen], z[:, ~seen] = anchored_joints(estimator.anchors.get(view), times, len(z))
    if distance is None and times is not None and distance_sigma > 0 and len(z):
        from .depth import smooth_distance

        distance = smooth_distance(z.mean(-1), times, distance_sigma)
    if distance is not None:
        distance = np.asarray(distance, dtype=np.float64).reshape(-1)
        if distance.shape != (len(z),):
            raise ValueError(f"distance must have one value per image ({len(z)}), got {distance.shape}")
        z = at_distance(z, seen, distance)
    return Prediction(xy, z.astype(np.float32), d, view, seen.copy())


def at_distance(z: np.ndarray, seen: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """Depths (N, J) with the ``seen`` joints' (J,) bool scaled so that the mean over every joint is
    ``distance`` (N,): the pose keeps its shape, the character moves along the camera's rays."""
    z = np.array(z, copy=True)
    seen = np.asarray(seen, bool)
    fixed = z[:, ~seen].sum(-1)
    scale = (z.shape[1] * np.asarray(distance, np.float64) - fixed) / np.maximum(z[:, seen].sum(-1), 1e-9)
    z[:, seen] = z[:, seen] * scale[:, None]
    return z


def anchored_joints(anchor: dict | None, times: np.ndarray | None, count: int) -> tuple[np.ndarray, np.ndarray]:
    """2D joints (N, U, 2) and depths (N, U) of the joints no image shows: interpolated in time between the
    training renders' values when the frames' ``times`` are known, else their mean."""
    if not anchor:
        raise ValueError("the estimator has no training positions for the joints it cannot see in this view")
    t = np.asarray(anchor["times"], dtype=np.float64)
    xy = np.asarray(anchor["joints2d"], dtype=np.float64)
    z = np.asarray(anchor["depth"], dtype=np.float64)
    if times is None:
        return np.broadcast_to(xy.mean(0), (count,) + xy.shape[1:]), np.broadcast_to(z.mean(0), (count, z.shape[1]))
    flat = np.concatenate([xy.reshape(len(t), -1), z], 1)  # (T, 3U)
    if len(t) == 1:
        vals = np.repeat(flat, len(times), 0)
    else:  # linear interpolation of every column at once, held at the ends (the times are unique)
        i = np.clip(np.searchsorted(t, times), 1, len(t) - 1)
        w = np.clip((times - t[i - 1]) / (t[i] - t[i - 1]), 0.0, 1.0)[:, None]
        vals = (1 - w) * flat[i - 1] + w * flat[i]
    u = z.shape[1]
    return vals[:, :2 * u].reshape(-1, u, 2), vals[:, 2 * u:]


def _read(net, framer: Framer, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """(B, 3, H, W) uint8 images -> 2D joints (render pixels), depths and absolute depths (or None) in the
    network's units for the framed image, and the framing zoom (B,).

    With framing, a first pass on the whole image finds the character's box and
    a second reads the framed image; its joints are mapped back to the render.
    """
    b = len(batch)
    zoom = torch.ones(b, device=batch.device)
    shift = torch.zeros(b, 2, device=batch.device)
    out = net(framer.network_input(batch, zoom, shift), framer.image_size)
    if framer.fill > 0:
        zoom, shift = framer.boxes(out["joints2d"])
        out = net(framer.network_input(batch, zoom, shift), framer.image_size)
    xy = from_frame(out["joints2d"], zoom, shift, framer.image_size)
    absolute = out.get("depth_abs")
    return (xy.cpu().numpy(), out["depth"].cpu().numpy(), None if absolute is None else absolute.cpu().numpy(),
            zoom.cpu().numpy())


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
