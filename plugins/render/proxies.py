"""Bone proxies: an ellipsoid per bone, sized from the bone's length, so mesh-less skeletons render.

Each ellipsoid spans parent joint -> child joint in the bind (else rest) pose,
moves rigidly with the parent joint (weight 1) and is labelled with the child
joint, so the bone from the hips to the left thigh is coloured as a left part.

A root that is only the character's projection on the ground (a trajectory
joint, e.g. Bandai Namco's ``joint_Root`` under the hips) gets no bone: a
capsule from the floor to the hips would hide the legs. See
:func:`trajectory_roots` for the rule.
"""
from __future__ import annotations

import numpy as np

from anymole_usd.kinematics import compose_local_matrices
from anymole_usd.skeleton import Skeleton


def unit_sphere(n_lat: int = 8, n_lon: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """UV sphere: (n, 3) vertices on the unit sphere (poles on x) and (t, 3) outward-wound triangles."""
    theta = np.linspace(0.0, np.pi, n_lat + 1)[1:-1]  # polar angle, poles excluded
    phi = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.cos(th), np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph)], -1).reshape(-1, 3)
    verts = np.concatenate([[[1.0, 0.0, 0.0]], ring, [[-1.0, 0.0, 0.0]]])
    n_ring = n_lat - 1
    top, bottom = 0, len(verts) - 1
    lon = np.arange(n_lon)
    nxt = (lon + 1) % n_lon
    faces = [np.stack([np.full(n_lon, top), 1 + nxt, 1 + lon], 1)]
    for r in range(n_ring - 1):
        a, b = 1 + r * n_lon + lon, 1 + r * n_lon + nxt
        c, d = a + n_lon, b + n_lon
        faces += [np.stack([a, b, d], 1), np.stack([a, d, c], 1)]
    last = 1 + (n_ring - 1) * n_lon
    faces.append(np.stack([np.full(n_lon, bottom), last + lon, last + nxt], 1))
    return verts, np.concatenate(faces).astype(np.int32)


def _basis(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to each row of u (B, 3)."""
    helper = np.where(np.abs(u[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    v = np.cross(u, helper)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, np.cross(u, v)


def bind_pose(skeleton: Skeleton) -> np.ndarray:
    """Skel-space (J, 4, 4) transforms the proxies are built in: bindTransforms, else the composed rest pose."""
    if skeleton.bind_transforms is not None:
        return skeleton.bind_transforms
    return compose_local_matrices(skeleton.rest_transforms[None], skeleton.parents)[0]


def trajectory_roots(pos: np.ndarray, parents: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Root joints that only carry the character along the ground (bool (J,)).

    One rule for every skeleton: a root with exactly one child that lies at or
    below every other joint along ``up`` in the bind pose (within 2% of the
    rest of the skeleton's size). A hips root has several children; a root
    above the body (Truebones' crab) is not on the ground.
    """
    parents = np.asarray(parents)
    n = len(parents)
    out = np.zeros(n, dtype=bool)
    if n < 3:
        return out
    up = np.asarray(up, dtype=np.float64)
    up = up / (np.linalg.norm(up) or 1.0)
    height = pos @ up
    n_children = np.bincount(parents[parents >= 0], minlength=n)
    for r in np.flatnonzero((parents < 0) & (n_children == 1)):  # a root or two per skeleton
        others = np.ones(n, dtype=bool)
        others[r] = False
        size = float(np.ptp(pos[others], axis=0).max()) if others.sum() > 1 else 0.0
        out[r] = size > 0 and height[r] <= height[others].min() + 0.02 * size
    return out


def proxy_geometry(skeleton: Skeleton, n_lat: int = 8, n_lon: int = 12, up: np.ndarray | None = None):
    """points (P,3), faces (T,3), joint per point (P,), label per face (T,), radius per joint (J,) in skel units.

    ``up``: the up direction in skeleton space (default +Y), to find trajectory
    roots (:func:`trajectory_roots`), which get no proxy and do not count in the
    size the bone radii scale with.
    """
    bind = bind_pose(skeleton)
    pos = bind[:, 3, :3]
    parents = skeleton.parents
    ground = trajectory_roots(pos, parents, np.array([0.0, 1.0, 0.0]) if up is None else up)
    body = pos[~ground]
    size = float(np.ptp(body, axis=0).max()) if len(body) > 1 else 0.0
    size = size if size > 0 else 1.0
    child = np.flatnonzero((parents >= 0) & ~ground[np.maximum(parents, 0)])
    parent = parents[child]
    vec = pos[child] - pos[parent]
    length = np.linalg.norm(vec, axis=1)
    keep = length > 1e-4 * size
    child, parent, vec, length = child[keep], parent[keep], vec[keep], length[keep]
    radius = np.clip(0.12 * length, 0.012 * size, 0.045 * size)
    radius = np.maximum(np.minimum(radius, 0.5 * length), 0.006 * size)
    centre = 0.5 * (pos[child] + pos[parent])
    half = 0.5 * length + 0.5 * radius  # overlap so consecutive bones meet at the joint
    u = vec / length[:, None]
    roots_alone = np.setdiff1d(np.flatnonzero((parents < 0) & ~ground), parent)  # isolated roots get a sphere
    if len(roots_alone):
        r0 = np.full(len(roots_alone), 0.05 * size)
        centre = np.concatenate([centre, pos[roots_alone]])
        half = np.concatenate([half, r0])
        radius = np.concatenate([radius, r0])
        u = np.concatenate([u, np.tile([[1.0, 0.0, 0.0]], (len(roots_alone), 1))])
        child = np.concatenate([child, roots_alone])
        parent = np.concatenate([parent, roots_alone])
    v, w = _basis(u)
    sv, sf = unit_sphere(n_lat, n_lon)
    pts = (centre[:, None] + sv[None, :, :1] * (half[:, None, None] * u[:, None])
           + sv[None, :, 1:2] * (radius[:, None, None] * v[:, None])
           + sv[None, :, 2:3] * (radius[:, None, None] * w[:, None]))
    n_b, n_v = len(centre), len(sv)
    faces = (sf[None] + (np.arange(n_b) * n_v)[:, None, None]).reshape(-1, 3)
    point_joint = np.repeat(parent, n_v)
    face_label = np.repeat(child, len(sf))
    joint_r = np.zeros(skeleton.num_joints)
    np.maximum.at(joint_r, child, radius)
    np.maximum.at(joint_r, parent, radius)
    joint_r[joint_r == 0] = 0.02 * size
    return pts.reshape(-1, 3), faces.astype(np.int32), point_joint.astype(np.int32), face_label.astype(np.int32), joint_r


def proxy_character(skeleton: Skeleton, *, skel_to_world: np.ndarray | None = None, up_axis: str = "Y",
                    meters_per_unit: float = 1.0, name: str = ""):
    """A :class:`Character` drawn with bone proxies."""
    from .character import Character

    s2w = np.eye(4) if skel_to_world is None else np.asarray(skel_to_world, dtype=np.float64)
    up_world = np.array([0.0, 0.0, 1.0]) if up_axis.upper() == "Z" else np.array([0.0, 1.0, 0.0])
    try:  # row vectors: world = skel @ R, so skel-space up = up_world @ R^-1
        up = up_world @ np.linalg.inv(s2w[:3, :3])
    except np.linalg.LinAlgError:
        up = up_world
    pts, faces, point_joint, face_label, joint_r = proxy_geometry(skeleton, up=up)
    scale = float(np.cbrt(abs(np.linalg.det(s2w[:3, :3]))) or 1.0)
    return Character(
        skeleton=skeleton,
        bind_transforms=bind_pose(skeleton),
        points=pts,
        faces=faces,
        joint_indices=point_joint[:, None],
        joint_weights=np.ones((len(pts), 1), dtype=np.float32),
        skel_to_world=s2w,
        up_axis=up_axis,
        meters_per_unit=meters_per_unit,
        is_proxy=True,
        name=name or skeleton.name,
        face_parts=face_label,
        joint_radius=joint_r * scale,
    )
