"""torch bridge: FK and the joint loss as autograd Functions over the Warp kernels.

Each forward wraps the tensors with ``wp.from_torch`` (shared memory, no copy),
records the launch on a ``wp.Tape`` and keeps it for backward, which seeds
the output gradients and runs ``tape.backward``. Kernels run on the tensors'
device (cpu or cuda:N), on torch's current CUDA stream, in the tensors'
precision (float32 or float64).

The Warp adjoint replays the forward from the saved input and output tensors,
so they are saved with ``ctx.save_for_backward``: torch then refuses a
backward after any of them was modified in place instead of returning wrong
gradients.
"""
from __future__ import annotations

import contextlib

import torch
import warp as wp

from .fk import check_parents, launch_fk
from .joint_loss import launch_joint_loss
from .runtime import init, precision


def _stream_scope(device: torch.device):
    if device.type == "cuda":
        return wp.ScopedStream(wp.stream_from_torch(device))
    return contextlib.nullcontext()


def _wrap(t: torch.Tensor | None, dtype) -> wp.array | None:
    return None if t is None else wp.from_torch(t, dtype=dtype, requires_grad=False)


def _owned(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A contiguous copy of an incoming gradient that the adjoint kernel may overwrite.

    The FK adjoint accumulates children into parents in place, so torch's own
    ``grad_output`` buffer must never be handed to it.
    """
    if grad is None:
        return torch.zeros_like(like)
    out = grad.to(like.dtype).contiguous()
    return out.clone() if out.data_ptr() == grad.data_ptr() else out


def _parents_array(parents, device: torch.device) -> wp.array:
    if isinstance(parents, torch.Tensor):
        parents = parents.detach().cpu().numpy()
    return wp.array(check_parents(parents), dtype=wp.int32, device=wp.device_from_torch(device))


class ForwardKinematicsFunction(torch.autograd.Function):
    """(rotations, translations, scales, parents) -> (positions, linear); see ``forward_kinematics``."""

    @staticmethod
    def forward(ctx, rotations, translations, scales, parents):
        init()
        p = precision(rotations.dtype)
        rot = rotations.detach().contiguous()
        trans = translations.detach().contiguous()
        scl = torch.ones_like(trans) if scales is None else scales.detach().contiguous()
        n_f, n_j = rot.shape[:2]
        positions = torch.empty((n_f, n_j, 3), dtype=rot.dtype, device=rot.device)
        linear = torch.empty((n_f, n_j, 3, 3), dtype=rot.dtype, device=rot.device)
        tape = wp.Tape()
        # everything, the parents' host-to-device copy included, on torch's current stream
        with _stream_scope(rot.device):
            arrays = {
                "parents": _parents_array(parents, rot.device),
                "rot": _wrap(rot, p.quat),
                "trans": _wrap(trans, p.vec3),
                "scl": _wrap(scl, p.vec3),
                "lin": _wrap(linear, p.mat33),
                "pos": _wrap(positions, p.vec3),
            }
            with tape:
                launch_fk(arrays["parents"], arrays["rot"], arrays["trans"], arrays["scl"], arrays["lin"],
                          arrays["pos"])
        ctx.tape, ctx.arrays, ctx.has_scales = tape, arrays, scales is not None
        ctx.save_for_backward(rot, trans, scl, positions, linear)
        # an unused output (often ``linear``) then arrives as None instead of a zero tensor
        ctx.set_materialize_grads(False)
        return positions, linear

    @staticmethod
    def backward(ctx, grad_positions, grad_linear):
        rot, trans, scl, positions, linear = ctx.saved_tensors  # raises if modified in place since forward
        a = ctx.arrays
        # fresh input gradient buffers each call (the kernel accumulates into them)
        grads = {"rot": torch.zeros_like(rot), "trans": torch.zeros_like(trans)}
        grads["scl"] = torch.zeros_like(scl) if ctx.has_scales and ctx.needs_input_grad[2] else None
        for key, t in grads.items():
            a[key].grad = _wrap(t, a[key].dtype)
        seeds = {}
        for key, grad, like in (("pos", grad_positions, positions), ("lin", grad_linear, linear)):
            a[key].grad = None
            if grad is not None:
                seeds[a[key]] = _wrap(_owned(grad, like), a[key].dtype)
        with _stream_scope(rot.device):
            ctx.tape.backward(grads=seeds)
        return (
            grads["rot"] if ctx.needs_input_grad[0] else None,
            grads["trans"] if ctx.needs_input_grad[1] else None,
            grads["scl"],
            None,
        )


def forward_kinematics(
    parents,
    rotations: torch.Tensor,
    translations: torch.Tensor,
    scales: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable skel-space FK: (positions (F, J, 3), linear (F, J, 3, 3)).

    ``rotations`` (F, J, 4) xyzw (normalised inside the kernel), ``translations``
    and ``scales`` (F, J, 3), float32 or float64 on any device; ``parents``
    (J,) ints in parent-first order. ``linear`` is the row-vector upper-left
    3x3 of the skel-space matrix (rotation times scale), ``positions`` its
    translation row, so ``x_skel = x_local @ linear + position``.
    Gradients flow to rotations, translations (root position included) and
    scales.
    """
    n_j = len(parents)
    n_f = rotations.shape[0] if rotations.ndim == 3 else -1
    shapes_ok = tuple(rotations.shape) == (n_f, n_j, 4) and tuple(translations.shape) == (n_f, n_j, 3)
    if not shapes_ok or (scales is not None and tuple(scales.shape) != (n_f, n_j, 3)):
        raise ValueError(
            f"expected rotations (F, {n_j}, 4), translations and scales (F, {n_j}, 3); got "
            f"{tuple(rotations.shape)}, {tuple(translations.shape)}, {None if scales is None else tuple(scales.shape)}"
        )
    dtype, device = rotations.dtype, rotations.device
    translations = translations.to(device=device, dtype=dtype)
    if scales is not None:
        scales = scales.to(device=device, dtype=dtype)
    return ForwardKinematicsFunction.apply(rotations, translations, scales, parents)


class JointLossFunction(torch.autograd.Function):
    """(positions, targets, weights, cameras, near) -> per-frame loss (F,); see ``joint_loss``."""

    @staticmethod
    def forward(ctx, positions, targets, weights, cameras, near):
        init()
        p = precision(positions.dtype)
        pos = positions.detach().contiguous()
        loss = torch.zeros(pos.shape[0], dtype=pos.dtype, device=pos.device)
        arrays = {
            "pos": _wrap(pos, p.vec3),
            "tgt": _wrap(targets, p.vec3 if cameras is None else p.vec2),
            "w": _wrap(weights, p.scalar),
            "cam": _wrap(cameras, p.mat44),
            "loss": _wrap(loss, p.scalar),
        }
        tape = wp.Tape()
        with _stream_scope(pos.device), tape:
            launch_joint_loss(arrays["pos"], arrays["tgt"], arrays["w"], arrays["loss"], cameras=arrays["cam"],
                              near=near)
        ctx.tape, ctx.arrays = tape, arrays
        ctx.save_for_backward(pos)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        (pos,) = ctx.saved_tensors
        a = ctx.arrays
        grad_pos = torch.zeros_like(pos)
        a["pos"].grad = _wrap(grad_pos, a["pos"].dtype)
        seed = _owned(grad_loss, grad_loss)
        with _stream_scope(pos.device):
            ctx.tape.backward(grads={a["loss"]: _wrap(seed, a["loss"].dtype)})
        return grad_pos, None, None, None, None


def joint_loss(
    positions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    cameras: torch.Tensor | None = None,
    near: float = 1e-6,
    reduction: str = "sum",
) -> torch.Tensor:
    """Weighted squared joint distance, differentiable with respect to ``positions``.

    ``positions`` (F, J, 3) skel-space (e.g. from ``forward_kinematics``);
    ``targets`` (F, J, 3), or (F, J, 2) pixels with ``cameras`` (3, 4), (4, 4),
    (F, 3, 4) or (F, 4, 4) (``K @ [R | t]``, column-vector; joints with depth
    ``<= near`` are ignored); ``weights`` None, (J,) or (F, J). Targets,
    weights and cameras are constants (no gradient). ``reduction``: "sum"
    (scalar), "mean" (sum / F) or "none" (per-frame (F,)).
    """
    n_f, n_j = positions.shape[:2]
    dt, dev = positions.dtype, positions.device
    width = 3 if cameras is None else 2
    targets = targets.detach().to(device=dev, dtype=dt).contiguous()
    if tuple(targets.shape) != (n_f, n_j, width):
        raise ValueError(f"targets must be ({n_f}, {n_j}, {width}), got {tuple(targets.shape)}")
    if weights is None:
        w = torch.ones((n_f, n_j), dtype=dt, device=dev)
    else:
        w = torch.as_tensor(weights).detach().to(device=dev, dtype=dt)
        if tuple(w.shape) not in ((n_j,), (n_f, n_j)):
            raise ValueError(f"weights must be ({n_j},) or ({n_f}, {n_j}), got {tuple(w.shape)}")
        w = w.expand(n_f, n_j).contiguous()
    cams = None
    if cameras is not None:
        c = torch.as_tensor(cameras).detach().to(device=dev, dtype=dt)
        c = c[None] if c.ndim == 2 else c
        if c.ndim != 3 or tuple(c.shape[1:]) not in ((3, 4), (4, 4)) or c.shape[0] not in (1, n_f):
            raise ValueError(f"cameras must be (3, 4), (4, 4), ({n_f}, 3, 4) or ({n_f}, 4, 4), got {tuple(c.shape)}")
        cams = torch.zeros((n_f, 4, 4), dtype=dt, device=dev)
        cams[:, :3] = c[:, :3]
        cams[:, 3, 3] = 1.0
    per_frame = JointLossFunction.apply(positions, targets, w, cams, float(near))
    if reduction == "none":
        return per_frame
    if reduction == "sum":
        return per_frame.sum()
    if reduction == "mean":
        return per_frame.mean()
    raise ValueError(f"reduction must be 'sum', 'mean' or 'none', not {reduction!r}")

