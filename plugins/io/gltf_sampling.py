"""Evaluating glTF animation samplers at arbitrary times (LINEAR, STEP, CUBICSPLINE).

Follows the glTF 2.0 specification, Appendix C: LINEAR rotations use slerp,
STEP holds the previous key, CUBICSPLINE is a cubic Hermite spline whose
tangents (stored per key as in-tangent, value, out-tangent) are scaled by
the key interval; spline rotations are normalised. Outside the key range the
first/last value holds. Vectorised over all requested times.
"""
from __future__ import annotations

import numpy as np

from anymole_usd import rotations as rot

from .resample import interpolation_index


def sample(inputs: np.ndarray, outputs: np.ndarray, interpolation: str, path: str, times: np.ndarray) -> np.ndarray:
    """Values (len(times), C) of one sampler; ``outputs`` as stored (3 per key for CUBICSPLINE)."""
    inputs = np.asarray(inputs, dtype=np.float64).reshape(-1)
    times = np.asarray(times, dtype=np.float64)
    interpolation = (interpolation or "LINEAR").upper()
    is_rotation = path == "rotation"
    if interpolation == "CUBICSPLINE":
        k = len(inputs)
        out = outputs.reshape(k, 3, -1)
        a, v, b = out[:, 0], out[:, 1], out[:, 2]
        if k == 1:
            return _finish(np.repeat(v, len(times), axis=0), is_rotation)
        i, s = interpolation_index(inputs, times)
        td = (inputs[i + 1] - inputs[i])[:, None]
        s = s[:, None]
        s2, s3 = s * s, s * s * s
        value = ((2 * s3 - 3 * s2 + 1) * v[i] + (s3 - 2 * s2 + s) * td * b[i]
                 + (-2 * s3 + 3 * s2) * v[i + 1] + (s3 - s2) * td * a[i + 1])
        return _finish(value, is_rotation)
    values = outputs.reshape(len(inputs), -1)
    if len(inputs) == 1:
        return _finish(np.repeat(values, len(times), axis=0), is_rotation)
    if interpolation == "STEP":
        i = np.clip(np.searchsorted(inputs, times, side="right") - 1, 0, len(inputs) - 1)
        return _finish(values[i], is_rotation)
    i, w = interpolation_index(inputs, times)
    if is_rotation:
        return rot.slerp(values[i], values[i + 1], w)
    return (1 - w)[:, None] * values[i] + w[:, None] * values[i + 1]


def _finish(values: np.ndarray, is_rotation: bool) -> np.ndarray:
    return rot.normalize(values) if is_rotation else values
