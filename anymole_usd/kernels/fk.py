"""Batched forward kinematics as a Warp kernel, with its backward pass.

UsdSkel semantics, row-vector convention: a joint's local matrix is
``scale * rotate * translate`` and skel-space matrices compose as
``skel_child = local_child @ skel_parent``. Scales rule out ``wp.transform``,
so a skel-space transform is kept as a 3x3 linear part (the upper-left block
of the 4x4, scale included) plus a translation row (the joint position).

One thread per frame walks the joints in parent-first order; a joint reads
its parent's result from the output arrays written earlier by the same
thread. The backward pass is recorded on the active ``wp.Tape``: by default a
hand-written adjoint kernel (children first, each joint's adjoint pushed to
its parent in place), or Warp's generated adjoint, which also replays the
joint loop in reverse and so is correct for this read-after-write pattern.
tests/test_kernels.py checks both against central finite differences and
against each other.

Quaternions are (x, y, z, w) like ``wp.quat`` and are normalised inside the
kernel, so gradients are those of the unit-quaternion parameterisation
(orthogonal to q); a zero-length quaternion gives NaN (validate input first,
``Motion.validate``). Float32 and float64 overloads share one Warp module.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import warp as wp

from .runtime import PRECISIONS, Precision, active_tape, init, precision, resolve_device


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
        # row-vector local linear part diag(s) @ R^T (R column-vector), composed
        # with the parent as diag(s) @ (R^T @ G_parent): scale the rows last
        rt = wp.transpose(wp.quat_to_matrix(wp.normalize(rotations[f, j])))
        s = scales[f, j]
        t = translations[f, j]
        p = parents[j]
        if p < 0:
            linear[f, j] = wp.matrix_from_rows(rt[0] * s[0], rt[1] * s[1], rt[2] * s[2])
            positions[f, j] = t
        else:
            parent = linear[f, p]
            a = rt @ parent
            linear[f, j] = wp.matrix_from_rows(a[0] * s[0], a[1] * s[1], a[2] * s[2])
            positions[f, j] = t @ parent + positions[f, p]


@wp.func
def _quat_to_matrix_adjoint(q: Any, b: Any):
    """Gradient wrt unit q = (x, y, z, w) of sum(b * R(q)), R = wp.quat_to_matrix(q)."""
    x, y, z, w = q[0], q[1], q[2], q[3]
    two = type(x)(2.0)
    gx = y * (b[0, 1] + b[1, 0]) + z * (b[0, 2] + b[2, 0]) + w * (b[2, 1] - b[1, 2]) - two * x * (b[1, 1] + b[2, 2])
    gy = x * (b[0, 1] + b[1, 0]) + w * (b[0, 2] - b[2, 0]) + z * (b[1, 2] + b[2, 1]) - two * y * (b[0, 0] + b[2, 2])
    gz = w * (b[1, 0] - b[0, 1]) + x * (b[0, 2] + b[2, 0]) + y * (b[1, 2] + b[2, 1]) - two * z * (b[0, 0] + b[1, 1])
    gw = z * (b[1, 0] - b[0, 1]) + y * (b[0, 2] - b[2, 0]) + x * (b[2, 1] - b[1, 2])
    return type(q)(two * gx, two * gy, two * gz, two * gw)


@wp.kernel(enable_backward=False)
def fk_adjoint_kernel(
    parents: wp.array(dtype=wp.int32),
    rotations: wp.array2d(dtype=Any),
    translations: wp.array2d(dtype=Any),
    scales: wp.array2d(dtype=Any),
    linear: wp.array2d(dtype=Any),
    adj_linear: wp.array2d(dtype=Any),
    adj_positions: wp.array2d(dtype=Any),
    adj_rotations: wp.array2d(dtype=Any),
    adj_translations: wp.array2d(dtype=Any),
    adj_scales: wp.array2d(dtype=Any),
    want_scales: int,
):
    """Hand-written reverse pass of ``fk_kernel``, one thread per frame.

    Joints are visited children-first, so ``adj_linear``/``adj_positions`` of
    a joint hold every descendant's contribution (added in place, which is why
    callers pass buffers they own) before it is propagated to its parent.
    Input adjoints are accumulated (+=), as Warp's own adjoints do.
    """
    f = wp.tid()
    n_j = parents.shape[0]
    for k in range(n_j):
        j = n_j - 1 - k
        q = rotations[f, j]
        n = wp.length(q)
        qh = q / n
        r = wp.quat_to_matrix(qh)
        rt = wp.transpose(r)
        s = scales[f, j]
        g = adj_linear[f, j]
        xbar = adj_positions[f, j]
        # G = diag(s) @ A: A's adjoint is the rows of g scaled, s's is the row-wise dot
        ga = wp.matrix_from_rows(g[0] * s[0], g[1] * s[1], g[2] * s[2])
        p = parents[j]
        rtbar = ga
        tbar = xbar
        if p >= 0:
            # A = R^T @ P, x = t @ P + x_p
            parent = linear[f, p]
            rtbar = ga @ wp.transpose(parent)
            tbar = parent @ xbar
            adj_linear[f, p] = adj_linear[f, p] + r @ ga + wp.outer(translations[f, j], xbar)
            adj_positions[f, p] = adj_positions[f, p] + xbar
        if want_scales != 0:
            a = rt
            if p >= 0:
                a = rt @ linear[f, p]
            adj_scales[f, j] = adj_scales[f, j] + type(s)(wp.dot(g[0], a[0]), wp.dot(g[1], a[1]), wp.dot(g[2], a[2]))
        qhbar = _quat_to_matrix_adjoint(qh, wp.transpose(rtbar))
        # through q / |q|: drop the radial part
        adj_rotations[f, j] = adj_rotations[f, j] + (qhbar - qh * wp.dot(qh, qhbar)) / n
        adj_translations[f, j] = adj_translations[f, j] + tbar


for _p in PRECISIONS.values():
    _a = [wp.array(dtype=wp.int32), wp.array2d(dtype=_p.quat), wp.array2d(dtype=_p.vec3), wp.array2d(dtype=_p.vec3)]
    wp.overload(fk_kernel, [*_a, wp.array2d(dtype=_p.mat33), wp.array2d(dtype=_p.vec3)])
    wp.overload(
        fk_adjoint_kernel,
        [
            *_a,
            wp.array2d(dtype=_p.mat33),
            wp.array2d(dtype=_p.mat33),
            wp.array2d(dtype=_p.vec3),
            wp.array2d(dtype=_p.quat),
            wp.array2d(dtype=_p.vec3),
            wp.array2d(dtype=_p.vec3),
            wp.int32,
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
    backward: str = "manual",
) -> None:
    """Launch the FK kernel on Warp arrays; inside ``with wp.Tape()`` its backward is recorded.

    Shapes (F, J): rotations quat, translations/scales vec3, outputs linear
    mat33 and positions vec3, all of one precision and on one device.
    ``backward="manual"`` records the hand-written adjoint kernel (fast);
    ``"warp"`` records Warp's generated adjoint (slower, kept as a cross-check).
    Only arrays with ``requires_grad`` receive gradients.
    """
    if backward not in ("manual", "warp"):
        raise ValueError(f"backward must be 'manual' or 'warp', not {backward!r}")
    wp.launch(
        fk_kernel,
        dim=rotations.shape[0],
        inputs=[parents, rotations, translations, scales],
        outputs=[linear, positions],
        device=rotations.device,
        record_tape=backward == "warp",
    )
    tape = active_tape()
    if tape is None or backward == "warp":
        return
    dev, shape = rotations.device, rotations.shape

    def grad_or_zeros(a: wp.array) -> wp.array:
        return a.grad if a.grad is not None else wp.zeros(shape, dtype=a.dtype, device=dev)

    def adjoint() -> None:
        # Gradients are looked up now, not at record time, so that tape.backward(grads=...)
        # can attach the incoming ones. The children-to-parent accumulation happens in place
        # in the output gradients; a missing one (or a missing input gradient) gets scratch.
        want_scales = scales.grad is not None
        wp.launch(
            fk_adjoint_kernel,
            dim=shape[0],
            inputs=[parents, rotations, translations, scales, linear, grad_or_zeros(linear),
                    grad_or_zeros(positions), grad_or_zeros(rotations), grad_or_zeros(translations),
                    scales.grad if want_scales else wp.empty((0, 0), dtype=scales.dtype, device=dev),
                    int(want_scales)],
            device=dev,
            record_tape=False,
        )

    tape.record_func(adjoint, [a for a in (rotations, translations, scales, linear, positions) if a.grad is not None])


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

    def launch(self, backward: str = "manual") -> None:
        launch_fk(self.parents, self.rotations, self.translations, self.scales, self.linear, self.positions,
                  backward=backward)

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
    backward: str = "manual",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of FK: gradients of ``sum(grad_positions * positions) +
    sum(grad_linear * linear)`` with respect to (rotations, translations, scales).

    ``grad_positions`` (F, J, 3) and ``grad_linear`` (F, J, 3, 3) are the
    incoming gradients of the joint positions (row 3 of the 4x4) and of the
    linear parts (upper-left 3x3); either may be None (zero). ``backward``
    picks the hand-written adjoint ("manual") or Warp's generated one ("warp").
    """
    arrays = FKArrays(parents, rotations, translations, scales, device=device, dtype=dtype, requires_grad=True)
    tape = wp.Tape()
    with tape:
        arrays.launch(backward)
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
