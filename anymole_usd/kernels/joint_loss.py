"""Differentiable joint loss: weighted squared distance of FK joint positions
to 3D targets, or of their pinhole projections to 2D targets (pixels).

Per frame f: ``loss[f] = sum_j w[f, j] * |x[f, j] - target[f, j]|^2`` where x
is the skel-space joint position, or its projection ``(u, v) = (X/Z, Y/Z)``
with ``(X, Y, Z) = P[f] @ (p, 1)`` for a 3x4 camera ``P = K @ [R | t]``
(column-vector, pixel units). Cameras map skel space to the image: fold the
skeleton's world transform into the extrinsics. Joints with ``Z <= near``
(behind or on the camera plane) contribute nothing, so a bad pose cannot
blow the gradient up by dividing by ~0.

One thread per (frame, joint), accumulated per frame with an atomic add,
whose adjoint simply reads the per-frame incoming gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import warp as wp

from .fk import FKArrays
from .runtime import PRECISIONS


@wp.kernel
def joint_loss_kernel(
    positions: wp.array2d(dtype=Any),
    targets: wp.array2d(dtype=Any),
    weights: wp.array2d(dtype=Any),
    loss: wp.array(dtype=Any),
):
    f, j = wp.tid()
    d = positions[f, j] - targets[f, j]
    wp.atomic_add(loss, f, weights[f, j] * wp.dot(d, d))


@wp.kernel
def projected_joint_loss_kernel(
    positions: wp.array2d(dtype=Any),
    cameras: wp.array(dtype=Any),
    targets: wp.array2d(dtype=Any),
    weights: wp.array2d(dtype=Any),
    near: Any,
    loss: wp.array(dtype=Any),
):
    f, j = wp.tid()
    p = positions[f, j]
    c = cameras[f]
    x = c[0, 0] * p[0] + c[0, 1] * p[1] + c[0, 2] * p[2] + c[0, 3]
    y = c[1, 0] * p[0] + c[1, 1] * p[1] + c[1, 2] * p[2] + c[1, 3]
    z = c[2, 0] * p[0] + c[2, 1] * p[1] + c[2, 2] * p[2] + c[2, 3]
    if z > near:
        t = targets[f, j]
        du = x / z - t[0]
        dv = y / z - t[1]
        wp.atomic_add(loss, f, weights[f, j] * (du * du + dv * dv))


for _p in PRECISIONS.values():
    wp.overload(
        joint_loss_kernel,
        [wp.array2d(dtype=_p.vec3), wp.array2d(dtype=_p.vec3), wp.array2d(dtype=_p.scalar), wp.array(dtype=_p.scalar)],
    )
    wp.overload(
        projected_joint_loss_kernel,
        [
            wp.array2d(dtype=_p.vec3),
            wp.array(dtype=_p.mat44),
            wp.array2d(dtype=_p.vec2),
            wp.array2d(dtype=_p.scalar),
            _p.scalar,
            wp.array(dtype=_p.scalar),
        ],
    )


def launch_joint_loss(
    positions: wp.array,
    targets: wp.array,
    weights: wp.array,
    loss: wp.array,
    cameras: wp.array | None = None,
    near: float = 1e-6,
) -> None:
    """Accumulate the per-frame loss into ``loss`` (F,), which must start at zero.

    ``positions`` (F, J) vec3; ``targets`` (F, J) vec3, or vec2 with
    ``cameras`` (F,) mat44 (only the first three rows are used); ``weights``
    (F, J) scalars. Records on an active ``wp.Tape``.
    """
    n_f, n_j = positions.shape
    scalar = weights.dtype
    if cameras is None:
        wp.launch(joint_loss_kernel, dim=(n_f, n_j), inputs=[positions, targets, weights], outputs=[loss],
                  device=positions.device)
    else:
        wp.launch(projected_joint_loss_kernel, dim=(n_f, n_j),
                  inputs=[positions, cameras, targets, weights, scalar(near)], outputs=[loss],
                  device=positions.device)


def broadcast_weights(weights, n_f: int, n_j: int, dtype=np.float64) -> np.ndarray:
    """None, (J,) or (F, J) -> contiguous (F, J)."""
    if weights is None:
        return np.ones((n_f, n_j), dtype)
    w = np.asarray(weights, dtype)
    if w.shape not in ((n_j,), (n_f, n_j)):
        raise ValueError(f"weights must be ({n_j},) or ({n_f}, {n_j}), got {w.shape}")
    return np.ascontiguousarray(np.broadcast_to(w, (n_f, n_j)))


def camera_matrices(cameras, n_f: int, dtype=np.float64) -> np.ndarray:
    """(3, 4), (4, 4), (F, 3, 4) or (F, 4, 4) -> contiguous (F, 4, 4)."""
    c = np.asarray(cameras, dtype)
    if c.ndim == 2:
        c = c[None]
    if c.ndim != 3 or c.shape[1:] not in ((3, 4), (4, 4)) or c.shape[0] not in (1, n_f):
        raise ValueError(f"cameras must be (3, 4), (4, 4), ({n_f}, 3, 4) or ({n_f}, 4, 4), got {np.shape(cameras)}")
    out = np.zeros((n_f, 4, 4), dtype)
    out[:, :3] = c[:, :3]
    out[:, 3, 3] = 1.0
    return out


@dataclass
class JointLoss:
    """Loss value and, when asked for, its gradients with respect to the FK inputs."""

    loss: float  # sum over frames
    per_frame: np.ndarray  # (F,)
    grad_rotations: np.ndarray | None = None  # (F, J, 4)
    grad_translations: np.ndarray | None = None  # (F, J, 3)
    grad_scales: np.ndarray | None = None  # (F, J, 3)


def joint_loss(
    parents,
    rotations,
    translations,
    targets,
    weights=None,
    scales=None,
    cameras=None,
    near: float = 1e-6,
    grad: bool = True,
    device: str | None = None,
    dtype=np.float64,
) -> JointLoss:
    """FK then the joint loss, with gradients of the total loss (Warp tape).

    ``targets`` (F, J, 3) skel-space positions, or (F, J, 2) pixels when
    ``cameras`` is given; ``weights`` None, (J,) or (F, J).
    """
    fk = FKArrays(parents, rotations, translations, scales, device=device, dtype=dtype, requires_grad=grad)
    p, dt, dev = fk.precision, fk.precision.numpy, fk.device
    n_f, n_j = fk.positions.shape
    width = 3 if cameras is None else 2
    targets = np.asarray(targets, dt)
    if targets.shape != (n_f, n_j, width):
        raise ValueError(f"targets must be ({n_f}, {n_j}, {width}), got {targets.shape}")
    w = wp.array(broadcast_weights(weights, n_f, n_j, dt), dtype=p.scalar, device=dev)
    tgt = wp.array(targets, dtype=p.vec3 if cameras is None else p.vec2, device=dev)
    cams = None if cameras is None else wp.array(camera_matrices(cameras, n_f, dt), dtype=p.mat44, device=dev)
    loss = wp.zeros(n_f, dtype=p.scalar, device=dev, requires_grad=grad)
    tape = wp.Tape()
    with tape:
        fk.launch()
        launch_joint_loss(fk.positions, tgt, w, loss, cameras=cams, near=near)
    per_frame = loss.numpy()
    out = JointLoss(float(per_frame.sum()), per_frame)
    if grad:
        tape.backward(grads={loss: wp.array(np.ones(n_f, dt), dtype=p.scalar, device=dev)})
        out.grad_rotations = fk.rotations.grad.numpy()
        out.grad_translations = fk.translations.grad.numpy()
        out.grad_scales = fk.scales.grad.numpy()
    return out
