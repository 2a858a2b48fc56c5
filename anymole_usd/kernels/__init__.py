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

import importlib

_LAZY = {
    "forward_kinematics": ".fk",
    "forward_kinematics_vjp": ".fk",
    "available_devices": ".runtime",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
