"""anymole-usd: any-character motion in-betweening for UsdSkel animation.

The public API is re-exported here and imported lazily, so ``import
anymole_usd`` (and ``anymole-usd --help``) stays fast: torch and warp load
only when a kernel or neural stage is used.
"""
from __future__ import annotations

from .lazy import lazy_attributes

__version__ = "0.1.0"

# Register the codeless provenance schema before anything uses USD's schema
# registry in this process (see docs/architecture.md).
try:
    from . import schema as _schema

    _schema.register()
except ImportError:  # pragma: no cover - usd-core missing; reading USD will say so
    pass

_LAZY = {
    "Skeleton": ".skeleton",
    "Motion": ".motion",
    "Timeline": ".timeline",
    "build_timeline": ".timeline",
    "InputError": ".errors",
    "open_stage": ".reading",
    "find_bindings": ".reading",
    "read_motion": ".reading",
    "forward_kinematics": ".kinematics",
    "global_positions": ".kinematics",
    "Prior": ".prior",
    "InbetweenRequest": ".prior",
    "registry": ".registry",
    "run_inbetween": ".pipeline",
    "undo_inbetween": ".layering",
    "Provenance": ".schema",
}

__all__ = ["__version__", *_LAZY]

__getattr__ = lazy_attributes(__name__, _LAZY, modules=("registry",))
