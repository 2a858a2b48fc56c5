"""Warp runtime: one-time initialisation, device choice and precision types.

Warp keeps compiled kernels in its cache directory, which it takes from
``WARP_CACHE_PATH`` when set (else its own default under the user cache);
this module leaves that choice to Warp. Warp's info messages ("Module ...
loaded") go to stdout, which would corrupt ``--json`` output of the CLI, so
they are silenced unless ``ANYMOLE_USD_WARP_VERBOSE`` is set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import warp as wp

_initialised = False


def init() -> None:
    """Initialise Warp once per process (needed before ``wp.from_torch``)."""
    global _initialised
    if _initialised:
        return
    if not os.environ.get("ANYMOLE_USD_WARP_VERBOSE"):
        wp.config.log_level = wp.LOG_WARNING
    wp.init()
    _initialised = True


def available_devices() -> list[str]:
    """Names of the Warp devices kernels can run on: "cpu", then every CUDA device."""
    init()
    return [str(d) for d in wp.get_devices()]


def resolve_device(device: str | None = None) -> str:
    """``None`` -> Warp's preferred device ("cuda:0" when present, else "cpu")."""
    init()
    if device is None:
        return str(wp.get_preferred_device())
    return str(wp.get_device(device))


def active_tape():
    """The ``wp.Tape`` being recorded in this thread, or None.

    Warp 1.19 has no public accessor; a kernel with a hand-written adjoint
    needs it to record that adjoint with ``Tape.record_func``.
    """
    try:
        from warp._src.context import runtime as _runtime
    except ImportError:  # older Warp layout
        from warp.context import runtime as _runtime
    return getattr(_runtime, "tape", None)


@dataclass(frozen=True)
class Precision:
    """The Warp value types of one floating-point precision."""

    numpy: type
    scalar: type
    quat: type
    vec2: type
    vec3: type
    mat33: type
    mat44: type


PRECISIONS = {
    np.dtype(np.float32): Precision(np.float32, wp.float32, wp.quatf, wp.vec2f, wp.vec3f, wp.mat33f, wp.mat44f),
    np.dtype(np.float64): Precision(np.float64, wp.float64, wp.quatd, wp.vec2d, wp.vec3d, wp.mat33d, wp.mat44d),
}


def precision(dtype) -> Precision:
    """Precision for a numpy or torch dtype (float32 or float64)."""
    text = str(dtype)
    try:
        key = np.dtype(text.replace("torch.", "")) if text.startswith("torch.") else np.dtype(dtype)
        return PRECISIONS[key]
    except (KeyError, TypeError):
        raise TypeError(f"Warp kernels take float32 or float64 values, not {dtype}") from None
