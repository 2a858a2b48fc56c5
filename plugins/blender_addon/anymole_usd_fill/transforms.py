"""4x4 transform arrays <-> translation, rotation (w, x, y, z), scale, vectorised with numpy (Blender ships numpy).

Matrices here are Blender's: column vectors, translation in the last column.
"""
import numpy as np


def to_trs(m):
    """(..., 4, 4) -> translation (..., 3), unit quaternion w, x, y, z (..., 4), scale (..., 3).

    Scale is the length of each basis column; a negative determinant flips the
    x scale, as Blender's ``Matrix.decompose`` does.
    """
    m = np.asarray(m, dtype=np.float64)
    t = m[..., :3, 3]
    basis = m[..., :3, :3]
    s = np.linalg.norm(basis, axis=-2)
    s = np.where(s > 1e-12, s, 1.0)
    flip = np.linalg.det(basis) < 0
    s[..., 0] = np.where(flip, -s[..., 0], s[..., 0])
    r = basis / s[..., None, :]
    return t, matrix_to_quat(r), s


def matrix_to_quat(r):
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions w, x, y, z with w >= 0 (Shepperd's method)."""
    r = np.asarray(r, dtype=np.float64)
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    trace = m00 + m11 + m22
    a, b = r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0]
    c, d = r[..., 1, 0] - r[..., 0, 1], r[..., 0, 1] + r[..., 1, 0]
    e, f = r[..., 0, 2] + r[..., 2, 0], r[..., 1, 2] + r[..., 2, 1]
    cand = np.stack([  # 4 * q * q_k for the largest of w, x, y, z (the best-conditioned formula)
        np.stack([1 + trace, a, b, c], -1),
        np.stack([a, 1 + m00 - m11 - m22, d, e], -1),
        np.stack([b, d, 1 - m00 + m11 - m22, f], -1),
        np.stack([c, e, f, 1 - m00 - m11 + m22], -1),
    ], -2)  # (..., 4 candidates, 4)
    pick = np.argmax(np.stack([trace, m00, m11, m22], -1), axis=-1)
    q = np.take_along_axis(cand, pick[..., None, None], axis=-2)[..., 0, :]
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_to_matrix(q):
    """(..., 4) quaternions w, x, y, z -> (..., 3, 3) rotation matrices."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def from_trs(t, q, s):
    """translation (..., 3), quaternion w, x, y, z (..., 4), scale (..., 3) -> (..., 4, 4) = T @ R @ S."""
    t = np.asarray(t, dtype=np.float64)
    m = np.zeros(t.shape[:-1] + (4, 4))
    m[..., :3, :3] = quat_to_matrix(q) * np.asarray(s, dtype=np.float64)[..., None, :]
    m[..., :3, 3] = t
    m[..., 3, 3] = 1.0
    return m


def continuous(q, axis=0):
    """Quaternions with signs flipped so neighbours along ``axis`` are in the same hemisphere (no 360 degree spins
    when Blender interpolates between keys)."""
    q = np.moveaxis(np.array(q, dtype=np.float64), axis, 0)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.concatenate([np.zeros((1,) + dots.shape[1:]), np.cumsum(dots < 0, axis=0)]) % 2
    q = np.where(flips[..., None] > 0, -q, q)
    return np.moveaxis(q, 0, axis)
