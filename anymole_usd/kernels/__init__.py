"""Warp kernels: batched forward kinematics, its backward pass, the joint loss,
and their torch autograd bridge.

Importing this package is cheap: warp (and torch, for the bridge) load only
when a name below is first used.

- ``fk``: ``forward_kinematics`` (numpy in/out), ``forward_kinematics_vjp``,
  ``FKArrays`` and ``launch_fk`` for Warp-level use.
- ``joint_loss``: ``joint_loss`` (FK + loss + gradients, numpy) and
  ``launch_joint_loss`` (import it from the submodule: the package attribute
  ``joint_loss`` is the submodule itself).
- ``torch_ops``: ``forward_kinematics`` and ``joint_loss`` on torch tensors.
- ``runtime``: ``init``, ``available_devices``, ``resolve_device``.
"""
from __future__ import annotations

from ..lazy import lazy_attributes

_LAZY = {
    "forward_kinematics": ".fk",
    "forward_kinematics_vjp": ".fk",
    "available_devices": ".runtime",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
