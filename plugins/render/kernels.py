"""The ray-cast renderer's Warp kernels (skinning and ray casting), one Warp module: one compile.

Imported only by ``skinning`` and ``raycast`` when something is rendered;
everything runs on "cpu" and on CUDA devices. The differentiable renderer's
kernels live in ``soft_kernels`` so a plain render never compiles them.
Nothing here needs Warp's generated adjoints (``enable_backward=False``).
"""
from __future__ import annotations

import warp as wp

from anymole_usd.kernels.runtime import init

init()  # quiet Warp (its stdout messages would corrupt --json output)


@wp.kernel(enable_backward=False)
def lbs(points: wp.array(dtype=wp.vec3), indices: wp.array2d(dtype=wp.int32),
        weights: wp.array2d(dtype=wp.float32), mats: wp.array2d(dtype=wp.mat44),
        out: wp.array2d(dtype=wp.vec3)):
    """out[f, i] = sum_k w_ik * M[f, j_ik] p_i (column-vector matrices; one thread per frame and point)."""
    f, i = wp.tid()
    p = points[i]
    acc = wp.vec3(0.0, 0.0, 0.0)
    for k in range(indices.shape[1]):
        w = weights[i, k]
        if w != 0.0:
            acc = acc + w * wp.transform_point(mats[f, indices[i, k]], p)
    out[f, i] = acc


@wp.func
def _to_u8(c: float) -> wp.uint8:
    return wp.uint8(wp.clamp(int(c * 255.0 + 0.5), 0, 255))


@wp.kernel(enable_backward=False)
def raycast(mesh: wp.uint64, face_parts: wp.array(dtype=wp.int32), colours: wp.array(dtype=wp.vec3),
            origins: wp.array(dtype=wp.vec3), rots: wp.array(dtype=wp.mat33), intr: wp.array(dtype=wp.vec4),
            boxes: wp.array2d(dtype=wp.int32), tiled: int, up: wp.vec3, ground_h: float, ground_on: int, shadows: int, tile: float,
            bg_top: wp.vec3, bg_bottom: wp.vec3,
            rgb: wp.array4d(dtype=wp.uint8), depth: wp.array3d(dtype=wp.float32),
            part: wp.array3d(dtype=wp.int32), face_id: wp.array3d(dtype=wp.int32)):
    """One thread per (view, row, column): first hit on the posed mesh, else the ground, else background.

    ``rots[v]`` is camera-to-world rotation with OpenCV axes (x right, y down, z forward),
    ``intr[v]`` = (fx, fy, cx, cy) in pixels; depth is camera z of the mesh hit (0 when none).
    ``boxes[v]`` = pixel boxes (x0, y0, x1, y1) of the projected mesh, of mesh and shadow, and
    of the pixels that can change: rays outside the first two cannot hit the mesh, which skips
    most BVH queries. With ``tiled`` the launch covers only the third box (offset by its
    corner) and the rest of the image already holds the background.
    """
    v, ty, tx = wp.tid()
    x = tx
    y = ty
    if tiled != 0:
        x = tx + boxes[v, 8]
        y = ty + boxes[v, 9]
        if x > boxes[v, 10] or y > boxes[v, 11]:
            return
    k = intr[v]
    d_cam = wp.vec3((float(x) + 0.5 - k[2]) / k[0], (float(y) + 0.5 - k[3]) / k[1], 1.0)
    z_per_t = 1.0 / wp.length(d_cam)
    d = wp.normalize(rots[v] * d_cam)
    o = origins[v]
    h = float(y) / float(rgb.shape[1])
    c = bg_top * (1.0 - h) + bg_bottom * h
    label = -1
    z = 0.0
    in_box = x >= boxes[v, 0] and y >= boxes[v, 1] and x <= boxes[v, 2] and y <= boxes[v, 3]
    in_shadow = x >= boxes[v, 4] and y >= boxes[v, 5] and x <= boxes[v, 6] and y <= boxes[v, 7]
    hit = 0
    t_hit = 1.0e30
    face = 0
    n = wp.vec3(0.0, 0.0, 0.0)
    if in_box:
        q = wp.mesh_query_ray(mesh, o, d, 1.0e9)
        if q.result:
            hit = 1
            t_hit = q.t
            face = q.face
            n = wp.normalize(q.normal)
    denom = wp.dot(d, up)
    t_g = -1.0
    if ground_on != 0 and denom < -1.0e-6:
        t_g = (ground_h - wp.dot(o, up)) / denom
    if hit != 0:
        if wp.dot(n, d) > 0.0:
            n = -n  # two-sided: winding and leftHanded orientation do not matter
        base = colours[face_parts[face]]
        shade = 0.28 + 0.52 * wp.abs(wp.dot(n, d)) + 0.20 * wp.max(wp.dot(n, up), 0.0)
        c = base * shade
        label = face_parts[face]
        z = t_hit * z_per_t
    elif t_g > 0.0:
        p = o + d * t_g
        # checker on the plane, aligned with the world axes orthogonal to up
        helper = wp.vec3(1.0, 0.0, 0.0)
        if wp.abs(up[0]) > 0.9:
            helper = wp.vec3(0.0, 1.0, 0.0)
        a = wp.normalize(wp.cross(up, helper))
        b = wp.cross(up, a)
        ia = int(wp.floor(wp.dot(p, a) / tile))
        ib = int(wp.floor(wp.dot(p, b) / tile))
        g = 0.80
        if (ia + ib) % 2 != 0:
            g = 0.72
        if shadows != 0 and in_shadow:
            s = wp.mesh_query_ray(mesh, p + up * (tile * 1.0e-3), up, 1.0e9)
            if s.result:
                g = g * 0.6
        fade = wp.exp(-t_g * 0.02)  # fade the floor into the background far away
        c = wp.vec3(g, g, g) * fade + c * (1.0 - fade)
        label = -2
    rgb[v, y, x, 0] = _to_u8(c[0])
    rgb[v, y, x, 1] = _to_u8(c[1])
    rgb[v, y, x, 2] = _to_u8(c[2])
    depth[v, y, x] = z
    part[v, y, x] = label
    if hit != 0:
        face_id[v, y, x] = face
    else:
        face_id[v, y, x] = -1
