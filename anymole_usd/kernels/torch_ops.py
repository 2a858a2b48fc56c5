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


def _wrap(t: torch.Tensor, dtype, grad: torch.Tensor | None = None) -> wp.array:
    if grad is None:
        return wp.from_torch(t, dtype=dtype, requires_grad=False)
    return wp.from_torch(t, dtype=dtype, requires_grad=True, grad=grad)


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
        grads = {
            "rot": torch.zeros_like(rot),
            "trans": torch.zeros_like(trans),
            "scl": torch.zeros_like(scl) if scales is not None and scales.requires_grad else None,
            "pos": torch.zeros_like(positions),
            "lin": torch.zeros_like(linear),
        }
        arrays = {
            "parents": _parents_array(parents, rot.device),
            "rot": _wrap(rot, p.quat, grads["rot"]),
            "trans": _wrap(trans, p.vec3, grads["trans"]),
            "scl": _wrap(scl, p.vec3, grads["scl"]),
            "lin": _wrap(linear, p.mat33, grads["lin"]),
            "pos": _wrap(positions, p.vec3, grads["pos"]),
        }
        tape = wp.Tape()
        with _stream_scope(rot.device), tape:
            launch_fk(arrays["parents"], arrays["rot"], arrays["trans"], arrays["scl"], arrays["lin"], arrays["pos"])
        ctx.tape, ctx.arrays, ctx.grads = tape, arrays, grads
        ctx.save_for_backward(rot, trans, scl, positions, linear)
        return positions, linear

    @staticmethod
    def backward(ctx, grad_positions, grad_linear):
        ctx.saved_tensors  # raises if an input or output was modified in place
        g, a = ctx.grads, ctx.arrays
        for key in ("rot", "trans", "scl"):
            if g[key] is not None:
                g[key].zero_()
        seeds = {}
        for key, grad in (("pos", grad_positions), ("lin", grad_linear)):
            seed = torch.zeros_like(g[key]) if grad is None else grad.to(g[key].dtype).contiguous()
            seeds[a[key]] = wp.from_torch(seed, dtype=a[key].dtype, requires_grad=False)
        with _stream_scope(g["rot"].device):
            ctx.tape.backward(grads=seeds)
        return g["rot"].clone(), g["trans"].clone(), None if g["scl"] is None else g["scl"].clone(), None


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
    dtype = rotations.dtype
    translations = translations.to(dtype)
    if scales is not None:
        scales = scales.to(dtype)
    return ForwardKinematicsFunction.apply(rotations, translations, scales, parents)


class JointLossFunction(torch.autograd.Function):
    """(positions, targets, weights, cameras, near) -> per-frame loss (F,); see ``joint_loss``."""

    @staticmethod
    def forward(ctx, positions, targets, weights, cameras, near):
        init()
        p = precision(positions.dtype)
        pos = positions.detach().contiguous()
        n_f = pos.shape[0]
        grad_pos = torch.zeros_like(pos)
        loss = torch.zeros(n_f, dtype=pos.dtype, device=pos.device)
        grad_loss = torch.zeros_like(loss)
        arrays = {
            "pos": _wrap(pos, p.vec3, grad_pos),
            "tgt": _wrap(targets, p.vec3 if cameras is None else p.vec2),
            "w": _wrap(weights, p.scalar),
            "cam": None if cameras is None else _wrap(cameras, p.mat44),
            "loss": _wrap(loss, p.scalar, grad_loss),
        }
        tape = wp.Tape()
        with _stream_scope(pos.device), tape:
            launch_joint_loss(arrays["pos"], arrays["tgt"], arrays["w"], arrays["loss"], cameras=arrays["cam"],
                              near=near)
        ctx.tape, ctx.arrays, ctx.grad_pos = tape, arrays, grad_pos
        ctx.save_for_backward(pos)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        ctx.saved_tensors
        ctx.grad_pos.zero_()
        seed = grad_loss.to(ctx.grad_pos.dtype).contiguous()
        with _stream_scope(seed.device):
            ctx.tape.backward(grads={ctx.arrays["loss"]: wp.from_torch(seed, requires_grad=False)})
        return ctx.grad_pos.clone(), None, None, None, None


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

