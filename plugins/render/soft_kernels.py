"""The differentiable renderer's Warp kernels: per (triangle, pixel) pair terms and their adjoint.

One thread per pair: the signed squared edge distance (positive inside) and
the perspective-correct depth, in float32 and float64 overloads; the reverse
pass is hand-written (Warp's generated one ran ~10x the forward on CPU) and
scatters into the triangle corners with atomic adds. Checked against the
torch expressions in ``soft._pair_terms``.
"""
from __future__ import annotations

from typing import Any

import warp as wp

from anymole_usd.kernels.runtime import init

init()

@wp.func
def _seg_d2(p: Any, a: Any, b: Any):
    ab = b - a
    den = wp.max(wp.dot(ab, ab), type(p[0])(1.0e-12))
    t = wp.clamp(wp.dot(p - a, ab) / den, type(p[0])(0.0), type(p[0])(1.0))
    q = p - (a + ab * t)
    return wp.dot(q, q)


@wp.func
def _cross2(u: Any, v: Any):
    return u[0] * v[1] - u[1] * v[0]


@wp.kernel(enable_backward=False)
def soft_pair_terms(tri: wp.array2d(dtype=Any), tri_z: wp.array2d(dtype=Any), tri_index: wp.array(dtype=wp.int32),
                    px: wp.array(dtype=wp.int32), py: wp.array(dtype=wp.int32), inv_sigma: Any,
                    coverage: wp.array(dtype=Any), depth: wp.array(dtype=Any)):
    i = wp.tid()
    t = tri_index[i]
    a = tri[t, 0]
    b = tri[t, 1]
    c = tri[t, 2]
    zero = type(inv_sigma)(0.0)
    half = type(inv_sigma)(0.5)
    p = type(a)(type(inv_sigma)(px[i]) + half, type(inv_sigma)(py[i]) + half)
    d2 = wp.min(wp.min(_seg_d2(p, a, b), _seg_d2(p, b, c)), _seg_d2(p, c, a))
    area = _cross2(b - a, c - a)
    w0 = _cross2(c - b, p - b)
    w1 = _cross2(a - c, p - c)
    w2 = _cross2(b - a, p - a)
    s = d2 * inv_sigma
    degenerate = wp.abs(area) <= type(inv_sigma)(1.0e-12)
    if degenerate or w0 * area < zero or w1 * area < zero or w2 * area < zero:
        s = -s
    coverage[i] = s  # (not "signed": a C++ keyword in the generated code)
    safe = area
    if degenerate:
        safe = type(inv_sigma)(1.0)
    b0 = wp.max(w0 / safe, zero)
    b1 = wp.max(w1 / safe, zero)
    b2 = wp.max(w2 / safe, zero)
    total = wp.max(b0 + b1 + b2, type(inv_sigma)(1.0e-12))
    depth[i] = total / (b0 / tri_z[t, 0] + b1 / tri_z[t, 1] + b2 / tri_z[t, 2])


for _scalar, _vec2 in ((wp.float32, wp.vec2f), (wp.float64, wp.vec2d)):
    wp.overload(soft_pair_terms, [wp.array2d(dtype=_vec2), wp.array2d(dtype=_scalar), wp.array(dtype=wp.int32),
                                  wp.array(dtype=wp.int32), wp.array(dtype=wp.int32), _scalar,
                                  wp.array(dtype=_scalar), wp.array(dtype=_scalar)])


@wp.func
def _seg_grad(p: Any, a: Any, b: Any, g: Any, adj_tri: Any, t_index: int, ia: int, ib: int):
    """Scatter g * d(|p - segment(a, b)|^2)/d(a, b): the closest-point parameter is stationary (or clamped)."""
    ab = b - a
    den = wp.max(wp.dot(ab, ab), type(g)(1.0e-12))
    t = wp.clamp(wp.dot(p - a, ab) / den, type(g)(0.0), type(g)(1.0))
    q = p - (a + ab * t)
    two = type(g)(2.0)
    wp.atomic_add(adj_tri, t_index, ia, q * (-two * (type(g)(1.0) - t) * g))
    wp.atomic_add(adj_tri, t_index, ib, q * (-two * t * g))


@wp.func
def _cross_grad_u(v: Any):
    """d cross2(u, v) / du."""
    return type(v)(v[1], -v[0])


@wp.func
def _cross_grad_v(u: Any):
    """d cross2(u, v) / dv."""
    return type(u)(-u[1], u[0])


@wp.kernel(enable_backward=False)
def soft_pair_terms_adjoint(tri: wp.array2d(dtype=Any), tri_z: wp.array2d(dtype=Any),
                            tri_index: wp.array(dtype=wp.int32), px: wp.array(dtype=wp.int32),
                            py: wp.array(dtype=wp.int32), inv_sigma: Any, coverage: wp.array(dtype=Any),
                            depth: wp.array(dtype=Any), adj_coverage: wp.array(dtype=Any),
                            adj_depth: wp.array(dtype=Any), adj_tri: wp.array2d(dtype=Any),
                            adj_tri_z: wp.array2d(dtype=Any)):
    """Hand-written reverse pass of ``soft_pair_terms`` (Warp's generated one ran ~10x the forward on CPU)."""
    i = wp.tid()
    t = tri_index[i]
    a = tri[t, 0]
    b = tri[t, 1]
    c = tri[t, 2]
    zero = type(inv_sigma)(0.0)
    one = type(inv_sigma)(1.0)
    half = type(inv_sigma)(0.5)
    p = type(a)(type(inv_sigma)(px[i]) + half, type(inv_sigma)(py[i]) + half)
    # coverage = +-|p - nearest edge|^2 / sigma: only the nearest edge moves it
    gs = adj_coverage[i] * inv_sigma
    if coverage[i] < zero:
        gs = -gs
    dab = _seg_d2(p, a, b)
    dbc = _seg_d2(p, b, c)
    dca = _seg_d2(p, c, a)
    if dab <= dbc and dab <= dca:
        _seg_grad(p, a, b, gs, adj_tri, t, 0, 1)
    elif dbc <= dca:
        _seg_grad(p, b, c, gs, adj_tri, t, 1, 2)
    else:
        _seg_grad(p, c, a, gs, adj_tri, t, 2, 0)
    # depth = T / Q with T = sum(b_k), Q = sum(b_k / z_k), b_k = max(w_k / area, 0)
    area = _cross2(b - a, c - a)
    if wp.abs(area) <= type(inv_sigma)(1.0e-12):
        return
    gz = adj_depth[i]
    z = depth[i]
    w0 = _cross2(c - b, p - b)
    w1 = _cross2(a - c, p - c)
    w2 = _cross2(b - a, p - a)
    r0 = w0 / area
    r1 = w1 / area
    r2 = w2 / area
    b0 = wp.max(r0, zero)
    b1 = wp.max(r1, zero)
    b2 = wp.max(r2, zero)
    total = b0 + b1 + b2
    z0 = tri_z[t, 0]
    z1 = tri_z[t, 1]
    z2 = tri_z[t, 2]
    q = b0 / z0 + b1 / z1 + b2 / z2
    if total <= type(inv_sigma)(1.0e-12) or q == zero:
        return
    dt = one
    # d depth / d b_k and d depth / d z_k
    gb0 = gz * (dt - z / z0) / q
    gb1 = gz * (dt - z / z1) / q
    gb2 = gz * (dt - z / z2) / q
    wp.atomic_add(adj_tri_z, t, 0, gz * z * b0 / (q * z0 * z0))
    wp.atomic_add(adj_tri_z, t, 1, gz * z * b1 / (q * z1 * z1))
    wp.atomic_add(adj_tri_z, t, 2, gz * z * b2 / (q * z2 * z2))
    if r0 <= zero:
        gb0 = zero
    if r1 <= zero:
        gb1 = zero
    if r2 <= zero:
        gb2 = zero
    # r_k = w_k / area: d r_k = (d w_k - r_k d area) / area
    gw0 = gb0 / area
    gw1 = gb1 / area
    gw2 = gb2 / area
    garea = -(gb0 * r0 + gb1 * r1 + gb2 * r2) / area
    # w0 = cross(c - b, p - b), w1 = cross(a - c, p - c), w2 = cross(b - a, p - a), area = cross(b - a, c - a)
    u0 = c - b
    v0 = p - b
    u1 = a - c
    v1 = p - c
    u2 = b - a
    v2 = p - a
    ua = b - a
    va = c - a
    ga = (_cross_grad_u(v1) * gw1 - (_cross_grad_u(v2) + _cross_grad_v(u2)) * gw2
          - (_cross_grad_u(va) + _cross_grad_v(ua)) * garea)
    gb = (-(_cross_grad_u(v0) + _cross_grad_v(u0)) * gw0 + _cross_grad_u(v2) * gw2 + _cross_grad_u(va) * garea)
    gc = (_cross_grad_u(v0) * gw0 - (_cross_grad_u(v1) + _cross_grad_v(u1)) * gw1 + _cross_grad_v(ua) * garea)
    wp.atomic_add(adj_tri, t, 0, ga)
    wp.atomic_add(adj_tri, t, 1, gb)
    wp.atomic_add(adj_tri, t, 2, gc)


for _scalar, _vec2 in ((wp.float32, wp.vec2f), (wp.float64, wp.vec2d)):
    wp.overload(soft_pair_terms_adjoint, [
        wp.array2d(dtype=_vec2), wp.array2d(dtype=_scalar), wp.array(dtype=wp.int32), wp.array(dtype=wp.int32),
        wp.array(dtype=wp.int32), _scalar, wp.array(dtype=_scalar), wp.array(dtype=_scalar),
        wp.array(dtype=_scalar), wp.array(dtype=_scalar), wp.array2d(dtype=_vec2), wp.array2d(dtype=_scalar)])
