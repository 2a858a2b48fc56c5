"""Batched forward kinematics as a Warp kernel, with its backward pass.

UsdSkel semantics, row-vector convention: a joint's local matrix is
``scale * rotate * translate`` and skel-space matrices compose as
``skel_child = local_child @ skel_parent``. Scales rule out ``wp.transform``,
so a skel-space transform is kept as a 3x3 linear part (the upper-left block
of the 4x4, scale included) plus a translation row (the joint position).

One thread per frame walks the joints in parent-first order; a joint reads
its parent's result from the output arrays written earlier by the same
thread. Warp's reverse pass runs the joint loop backwards, so every child's
contribution to its parent's adjoint lands before the parent's adjoint is
consumed; tests/test_kernels.py checks this against finite differences.

Quaternions are (x, y, z, w) like ``wp.quat`` and are normalised inside the
kernel, so gradients are those of the unit-quaternion parameterisation
(orthogonal to q). Float32 and float64 overloads share one Warp module.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp

from .runtime import PRECISIONS, Precision, init, precision, resolve_device


@wp.kernel
def fk_kernel(
    parents: wp.array(dtype=wp.int32),
    rotations: wp.array2d(dtype=Any),
    translations: wp.array2d(dtype=Any),
    scales: wp.array2d(dtype=Any),
    linear: wp.array2d(dtype=Any),
    positions: wp.array2d(dtype=Any),
):
    f = wp.tid()
    for j in range(parents.shape[0]):
        r = wp.quat_to_matrix(wp.normalize(rotations[f, j]))
        # row-vector local linear part: diag(s) @ R^T (R is column-vector)
        local = wp.diag(scales[f, j]) @ wp.transpose(r)
        t = translations[f, j]
        p = parents[j]
        if p < 0:
            linear[f, j] = local
            positions[f, j] = t
        else:
            parent = linear[f, p]
            linear[f, j] = local @ parent
            positions[f, j] = t @ parent + positions[f, p]


for _p in PRECISIONS.values():
    wp.overload(
        fk_kernel,
        [
            wp.array(dtype=wp.int32),
            wp.array2d(dtype=_p.quat),
            wp.array2d(dtype=_p.vec3),
            wp.array2d(dtype=_p.vec3),
            wp.array2d(dtype=_p.mat33),
            wp.array2d(dtype=_p.vec3),
        ],
    )


def check_parents(parents) -> np.ndarray:
    """Parent indices as int32, validated to be in parent-first order (-1 = root)."""
    parents = np.asarray(parents).reshape(-1)
    if parents.size and (np.any(parents >= np.arange(len(parents))) or np.any(parents < -1)):
        raise ValueError("parents must list -1 for roots and a smaller index for every other joint")
    return parents.astype(np.int32)


def launch_fk(
    parents: wp.array,
    rotations: wp.array,
    translations: wp.array,
    scales: wp.array,
    linear: wp.array,
    positions: wp.array,
) -> None:
    """Launch the FK kernel on Warp arrays (records on an active ``wp.Tape``).

    Shapes (F, J): rotations quat, translations/scales vec3, outputs linear
    mat33 and positions vec3, all of one precision and on one device.
    """
    wp.launch(
        fk_kernel,
        dim=rotations.shape[0],
        inputs=[parents, rotations, translations, scales],
        outputs=[linear, positions],
        device=rotations.device,
    )


class FKArrays:
    """Warp arrays of one FK evaluation built from numpy inputs, on one device."""

    def __init__(
        self,
        parents,
        rotations,
        translations,
        scales=None,
        device: str | None = None,
        dtype=np.float64,
        requires_grad: bool = False,
    ) -> None:
        init()
        self.device = resolve_device(device)
        self.precision: Precision = precision(dtype)
        p, dt = self.precision, self.precision.numpy
        parents = check_parents(parents)
        rotations = np.asarray(rotations, dtype=dt)
        translations = np.asarray(translations, dtype=dt)
        n_f, n_j = rotations.shape[:2] if rotations.ndim == 3 else (-1, -1)
        if rotations.shape != (n_f, n_j, 4) or translations.shape != (n_f, n_j, 3) or n_j != len(parents):
            raise ValueError(
                f"expected rotations (F, {len(parents)}, 4) and translations (F, {len(parents)}, 3), "
                f"got {rotations.shape} and {translations.shape}"
            )
        scales = np.ones((n_f, n_j, 3), dt) if scales is None else np.asarray(scales, dtype=dt)
        if scales.shape != (n_f, n_j, 3):
            raise ValueError(f"expected scales ({n_f}, {n_j}, 3), got {scales.shape}")
        dev, rg = self.device, requires_grad
        self.parents = wp.array(parents, dtype=wp.int32, device=dev)
        self.rotations = wp.array(rotations, dtype=p.quat, device=dev, requires_grad=rg)
        self.translations = wp.array(translations, dtype=p.vec3, device=dev, requires_grad=rg)
        self.scales = wp.array(scales, dtype=p.vec3, device=dev, requires_grad=rg)
        self.linear = wp.empty((n_f, n_j), dtype=p.mat33, device=dev, requires_grad=rg)
        self.positions = wp.empty((n_f, n_j), dtype=p.vec3, device=dev, requires_grad=rg)

    def launch(self) -> None:
        launch_fk(self.parents, self.rotations, self.translations, self.scales, self.linear, self.positions)

    def matrices(self) -> np.ndarray:
        """(F, J, 4, 4) row-vector skel-space matrices."""
        lin, pos = self.linear.numpy(), self.positions.numpy()
        out = np.zeros(lin.shape[:2] + (4, 4), dtype=lin.dtype)
        out[..., :3, :3] = lin
        out[..., 3, :3] = pos
        out[..., 3, 3] = 1.0
        return out


def forward_kinematics(
    parents,
    rotations,
    translations,
    scales=None,
    device: str | None = None,
    dtype=np.float64,
) -> np.ndarray:
    """Skel-space (F, J, 4, 4) row-vector transforms, like ``anymole_usd.kinematics.forward_kinematics``.

    ``rotations`` (F, J, 4) xyzw (normalised here), ``translations`` and
    ``scales`` (F, J, 3); ``dtype`` float64 (default) or float32 picks the
    kernel precision and the result's dtype.
    """
    arrays = FKArrays(parents, rotations, translations, scales, device=device, dtype=dtype)
    arrays.launch()
    return arrays.matrices()


def forward_kinematics_vjp(
    parents,
    rotations,
    translations,
    scales=None,
    grad_positions=None,
    grad_linear=None,
    device: str | None = None,
    dtype=np.float64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of FK: gradients of ``sum(grad_positions * positions) +
    sum(grad_linear * linear)`` with respect to (rotations, translations, scales).

    ``grad_positions`` (F, J, 3) and ``grad_linear`` (F, J, 3, 3) are the
    incoming gradients of the joint positions (row 3 of the 4x4) and of the
    linear parts (upper-left 3x3); either may be None (zero).
    """
    arrays = FKArrays(parents, rotations, translations, scales, device=device, dtype=dtype, requires_grad=True)
    tape = wp.Tape()
    with tape:
        arrays.launch()
    p, dt = arrays.precision, arrays.precision.numpy
    shape = arrays.positions.shape
    gp = np.zeros(shape + (3,), dt) if grad_positions is None else np.asarray(grad_positions, dt)
    gl = np.zeros(shape + (3, 3), dt) if grad_linear is None else np.asarray(grad_linear, dt)
    tape.backward(
        grads={
            arrays.positions: wp.array(gp, dtype=p.vec3, device=arrays.device),
            arrays.linear: wp.array(gl, dtype=p.mat33, device=arrays.device),
        }
    )
    return arrays.rotations.grad.numpy(), arrays.translations.grad.numpy(), arrays.scales.grad.numpy()
