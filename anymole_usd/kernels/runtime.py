"""Warp runtime: one-time initialisation, device choice and precision types.

Warp keeps compiled kernels in its cache directory, which it takes from
``WARP_CACHE_PATH`` when set (else its own default under the user cache);
this module leaves that choice to Warp. Warp's info messages ("Module ...
loaded") go to stdout, which would corrupt ``--json`` output of the CLI, so
they are silenced unless ``ANYMOLE_USD_WARP_VERBOSE`` is set.

On a machine without a GPU, Warp's native code prints "Could not find or load
the NVIDIA CUDA driver" on every start. That line is taken out; instead the
device that runs the kernels is said once per process on the
``anymole_usd.kernels`` logger at INFO level (shown by ``anymole-usd -v``).
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
import warp as wp

log = logging.getLogger("anymole_usd.kernels")

_initialised = False
_announced: set[str] = set()
_NO_DRIVER = "Could not find or load the NVIDIA CUDA driver"


def init() -> None:
    """Initialise Warp once per process (needed before ``wp.from_torch``)."""
    global _initialised
    if _initialised:
        return
    verbose = bool(os.environ.get("ANYMOLE_USD_WARP_VERBOSE"))
    if not verbose:
        wp.config.log_level = wp.LOG_WARNING
        _init_without_driver_warning()
    else:
        wp.init()
    _initialised = True
    if not wp.is_cuda_available():
        _announce("cpu", "Warp kernels run on the CPU (no NVIDIA CUDA driver or GPU found)")


def _init_without_driver_warning() -> None:
    """``wp.init()`` with the native no-CUDA-driver line removed from stderr; any other line is passed on.

    The line is written by C code straight to file descriptor 2, so it is
    caught there (a temporary file) rather than through ``sys.stderr``.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreter): leave Warp as it is
        wp.init()
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            wp.init()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", errors="replace")
    kept = [ln for ln in text.splitlines(keepends=True) if _NO_DRIVER not in ln]
    if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


def _announce(key: str, message: str) -> None:
    if key not in _announced:
        _announced.add(key)
        log.info(message)


def available_devices() -> list[str]:
    """Names of the Warp devices kernels can run on: "cpu", then every CUDA device."""
    init()
    return [str(d) for d in wp.get_devices()]


def resolve_device(device: str | None = None) -> str:
    """``None`` -> Warp's preferred device ("cuda:0" when present, else "cpu")."""
    init()
    dev = wp.get_preferred_device() if device is None else wp.get_device(device)
    name = str(dev)
    if dev.is_cuda:
        _announce(name, f"Warp kernels run on {name} ({dev.name})")
    else:
        _announce(name, "Warp kernels run on the CPU" + ("" if wp.is_cuda_available() else
                                                          " (no NVIDIA CUDA driver or GPU found)"))
    return name


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
