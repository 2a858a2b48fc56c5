"""Vectorised rotation maths on (..., 4) quaternions stored as (x, y, z, w).

(x, y, z, w) is the in-memory order of Gf quaternions, of Warp's ``wp.quat``
and of ``scipy.spatial.transform.Rotation.as_quat``, so arrays move between
the three without reordering. Conversions go through scipy where it has them.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / np.where(n > 0, n, 1.0)


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a), broadcasting."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def conjugate(q: np.ndarray) -> np.ndarray:
    q = np.array(q, dtype=np.float64, copy=True)
    q[..., :3] *= -1.0
    return q


def to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 3, 3) column-vector rotation matrices (v' = R v)."""
    q = np.asarray(q, dtype=np.float64)
    shape = q.shape[:-1]
    return Rotation.from_quat(q.reshape(-1, 4)).as_matrix().reshape(*shape, 3, 3)


def from_matrix(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) column-vector rotation matrices -> (..., 4) quaternions."""
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    return Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat().reshape(*shape, 4)


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = q[..., :3]
    w = q[..., 3:4]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` so consecutive quaternions lie in one hemisphere.

    q and -q are the same rotation; interpolation and finite differences need
    neighbours with a positive dot product.
    """
    q = np.moveaxis(np.array(q, dtype=np.float64, copy=True), axis, 0)
    if len(q) > 1:
        dots = np.sum(q[1:] * q[:-1], axis=-1)
        flips = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0)
        q[1:] *= flips[..., None]
    return np.moveaxis(q, 0, axis)


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation, broadcasting q0/q1 (..., 4) against t (...)."""
    q0 = normalize(q0)
    q1 = normalize(q1)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # shortest arc
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-8
    safe = np.where(small, 1.0, sin_theta)
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    return normalize(w0 * q0 + w1 * q1)


def log_map(q: np.ndarray) -> np.ndarray:
    """Unit quaternion -> rotation vector (axis * angle), shortest arc."""
    q = np.asarray(q, dtype=np.float64)
    shape = q.shape[:-1]
    return Rotation.from_quat(q.reshape(-1, 4)).as_rotvec().reshape(*shape, 3)


def exp_map(v: np.ndarray) -> np.ndarray:
    """Rotation vector -> unit quaternion."""
    v = np.asarray(v, dtype=np.float64)
    shape = v.shape[:-1]
    return Rotation.from_rotvec(v.reshape(-1, 3)).as_quat().reshape(*shape, 4)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (radians) between unit quaternions, sign-insensitive."""
    d = np.abs(np.sum(normalize(a) * normalize(b), axis=-1))
    return 2.0 * np.arccos(np.clip(d, 0.0, 1.0))


def euler_to_quat(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles in degrees, applied in ``order`` (e.g. "ZXY" as BVH lists
    channels: parent-most first) -> quaternions."""
    a = np.asarray(angles_deg, dtype=np.float64)
    shape = a.shape[:-1]
    r = Rotation.from_euler(order.upper(), a.reshape(-1, 3), degrees=True)
    return r.as_quat().reshape(*shape, 4)


def quat_to_euler(q: np.ndarray, order: str) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    shape = q.shape[:-1]
    return Rotation.from_quat(q.reshape(-1, 4)).as_euler(order.upper(), degrees=True).reshape(*shape, 3)
