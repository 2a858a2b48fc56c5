"""What to render: a character as plain arrays (skeleton, bind-pose mesh, skin weights, world placement).

:func:`read_character` is the only place that touches the USD stage; every
renderer (ray cast, differentiable) takes the :class:`Character` it returns,
so the stage never leaks past reading. A skeleton without skinned meshes (BVH
imports, bare skeletons) gets bone proxies instead (see ``proxies``).

Coordinates: ``points`` are in skeleton space at bind time (mesh points
already multiplied by ``primvars:skel:geomBindTransform``); ``skel_to_world``
maps skeleton space to world metres (the skeleton's local-to-world times
``metersPerUnit``). UsdSkel ignores a skinned prim's own transform and places
the skinned points with the skeleton's transform, and so do we.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.skeleton import Skeleton

from . import parts


@dataclass
class Character:
    skeleton: Skeleton
    bind_transforms: np.ndarray  # (J, 4, 4) skel space, row-vector: what skinning inverts
    points: np.ndarray  # (P, 3) float64 skel-space bind pose
    faces: np.ndarray  # (T, 3) int32
    joint_indices: np.ndarray  # (P, K) int32, skeleton joint order
    joint_weights: np.ndarray  # (P, K) float32, rows sum to 1
    skel_to_world: np.ndarray = field(default_factory=lambda: np.eye(4))  # (4, 4) row-vector, to metres
    up_axis: str = "Y"
    meters_per_unit: float = 1.0
    is_proxy: bool = False
    mesh_paths: list[str] = field(default_factory=list)
    mesh_sizes: list[int] = field(default_factory=list)  # points per mesh, in ``mesh_paths`` order
    name: str = ""
    face_parts: np.ndarray | None = None  # (T,) joint label per triangle
    sides: np.ndarray | None = None  # (J,) LEFT/CENTRE/RIGHT
    joint_radius: np.ndarray | None = None  # (J,) metres: limb thickness around each joint

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int32).reshape(-1, 3)
        self.joint_indices = np.asarray(self.joint_indices, dtype=np.int32)
        self.joint_weights = np.asarray(self.joint_weights, dtype=np.float32)
        self.skel_to_world = np.asarray(self.skel_to_world, dtype=np.float64)
        self.bind_transforms = np.asarray(self.bind_transforms, dtype=np.float64)
        j = self.skeleton.num_joints
        if self.face_parts is None:
            self.face_parts = parts.face_parts(self.faces, self.joint_indices, self.joint_weights, j)
        if self.sides is None:
            self.sides = parts.joint_sides(self.skeleton.short_names, self.skeleton.parents)
        if self.joint_radius is None:
            self.joint_radius = _joint_radii(self)

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    @property
    def up(self) -> np.ndarray:
        return np.array([0.0, 0.0, 1.0]) if self.up_axis.upper() == "Z" else np.array([0.0, 1.0, 0.0])

    def part_colours(self) -> np.ndarray:
        """(J, 3) float32 RGB per joint label."""
        return parts.joint_colours(self.sides, self.skeleton.depths())

    def height(self) -> float:
        """Largest extent of the bind-pose points in world metres."""
        p = _to_world(self.points, self.skel_to_world)
        ext = p.max(0) - p.min(0) if len(p) else np.zeros(3)
        return float(ext.max()) if ext.size and ext.max() > 0 else 1.0


def _to_world(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    return p @ m[:3, :3] + m[3, :3]


def _joint_radii(ch: Character) -> np.ndarray:
    """Median distance from each joint to the vertices it dominates (bind pose), for visibility tests."""
    j = ch.num_joints
    scale = float(np.cbrt(abs(np.linalg.det(ch.skel_to_world[:3, :3]))) or 1.0)
    bind_pos = ch.bind_transforms[:, 3, :3]
    size = np.ptp(ch.points, axis=0).max() if len(ch.points) else 1.0
    default = 0.05 * size
    radius = np.full(j, np.nan)
    if len(ch.points):
        dominant = ch.joint_indices[np.arange(len(ch.points)), ch.joint_weights.argmax(1)]
        dist = np.linalg.norm(ch.points - bind_pos[dominant], axis=1)
        order = np.argsort(dominant, kind="stable")
        bounds = np.searchsorted(dominant[order], np.arange(j + 1))
        for k in range(j):  # one median per joint; J is small and this runs once per character
            if bounds[k + 1] > bounds[k]:
                # a low percentile: limb thickness, not the length of the dominated segment
                radius[k] = np.percentile(dist[order[bounds[k]:bounds[k + 1]]], 30)
    for k, p in enumerate(ch.skeleton.parents):  # joints without vertices borrow their parent's
        if np.isnan(radius[k]):
            radius[k] = radius[p] if p >= 0 and not np.isnan(radius[p]) else default
    return np.clip(radius, 0.01 * size, 0.25 * size) * scale


def triangulate(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons given faceVertexCounts/faceVertexIndices -> (T, 3)."""
    counts = np.asarray(counts, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    n_tri = np.maximum(counts - 2, 0)  # points and lines (count < 3) make no triangle
    first = np.repeat(offsets, n_tri)
    k = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri)
    return np.stack([indices[first], indices[first + k + 1], indices[first + k + 2]], 1)


def read_character(stage, binding, *, file: str | None = None, time: float | None = None,
                   proxies: str = "auto") -> Character:
    """Skinned meshes bound to ``binding``'s skeleton as a :class:`Character` (bone proxies if none).

    ``proxies``: "auto" (proxies only when no skinned mesh exists), "always" or "never".
    """
    from pxr import Usd, UsdGeom

    skel_prim = stage.GetPrimAtPath(binding.skeleton_path)
    t = Usd.TimeCode.Default() if time is None else Usd.TimeCode(time)
    mpu = float(UsdGeom.GetStageMetersPerUnit(stage))
    up_axis = str(UsdGeom.GetStageUpAxis(stage))
    l2w = np.array(UsdGeom.XformCache(t).GetLocalToWorldTransform(skel_prim), dtype=np.float64)
    skel_to_world = l2w @ np.diag([mpu, mpu, mpu, 1.0])
    skeleton = binding.skeleton
    meshes = [] if proxies == "always" else _read_skinned_meshes(stage, binding, file, t)
    if not meshes:
        if proxies == "never":
            raise InputError("no skinned mesh is bound to this skeleton", file=file, prim=binding.skeleton_path)
        from .proxies import proxy_character

        return proxy_character(skeleton, skel_to_world=skel_to_world, up_axis=up_axis, meters_per_unit=mpu,
                               name=binding.skeleton_path)
    offsets = np.cumsum([0] + [len(m[0]) for m in meshes])
    kmax = max(m[2].shape[1] for m in meshes)
    pad = [(np.pad(m[2], ((0, 0), (0, kmax - m[2].shape[1]))),
            np.pad(m[3], ((0, 0), (0, kmax - m[3].shape[1])))) for m in meshes]
    bind = skeleton.bind_transforms
    if bind is None:
        bind = _rest_skel_transforms(skeleton)
    return Character(
        skeleton=skeleton,
        bind_transforms=bind,
        points=np.concatenate([m[0] for m in meshes]),
        faces=np.concatenate([m[1] + o for m, o in zip(meshes, offsets)]),
        joint_indices=np.concatenate([p[0] for p in pad]),
        joint_weights=np.concatenate([p[1] for p in pad]),
        skel_to_world=skel_to_world,
        up_axis=up_axis,
        meters_per_unit=mpu,
        mesh_paths=[m[4] for m in meshes],
        mesh_sizes=[len(m[0]) for m in meshes],
        name=binding.skeleton_path,
    )


def _rest_skel_transforms(skeleton: Skeleton) -> np.ndarray:
    from anymole_usd.kinematics import compose_local_matrices

    return compose_local_matrices(skeleton.rest_transforms[None], skeleton.parents)[0]


def _read_skinned_meshes(stage, binding, file, t) -> list[tuple]:
    """[(points (P,3) skel-space, faces, joint_indices (P,K) skeleton order, weights, path)] for every mesh."""
    from pxr import Usd, UsdGeom, UsdSkel

    if binding.skel_root_path is None:
        return []
    root = UsdSkel.Root(stage.GetPrimAtPath(binding.skel_root_path))
    predicate = Usd.TraverseInstanceProxies()
    cache = UsdSkel.Cache()
    cache.Populate(root, predicate)
    lookup = {j: i for i, j in enumerate(binding.skeleton.joints)}
    out = []
    for skel_binding in cache.ComputeSkelBindings(root, predicate):
        if str(skel_binding.GetSkeleton().GetPrim().GetPath()) != binding.skeleton_path:
            continue
        for query in skel_binding.GetSkinningTargets():
            prim = query.GetPrim()
            if not prim.IsA(UsdGeom.Mesh) or not query.HasJointInfluences():
                continue  # other gprims (curves, implicit shapes) are not drawn
            out.append(_read_mesh(prim, query, lookup, file, t))
    return [m for m in out if len(m[1])]


def _read_mesh(prim, query, lookup: dict, file, t) -> tuple:
    from pxr import Usd, UsdGeom

    path = str(prim.GetPath())
    mesh = UsdGeom.Mesh(prim)
    pts_attr = mesh.GetPointsAttr()
    pts = pts_attr.Get(t)
    if pts is None:
        pts = pts_attr.Get(Usd.TimeCode.EarliestTime())
    points = np.asarray(pts if pts is not None else [], dtype=np.float64).reshape(-1, 3)
    counts = np.asarray(mesh.GetFaceVertexCountsAttr().Get(t) or [], dtype=np.int64)
    indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(t) or [], dtype=np.int64)
    if counts.sum() != len(indices) or (len(indices) and (indices.min() < 0 or indices.max() >= len(points))):
        raise InputError("faceVertexCounts/faceVertexIndices do not match the points", file=file, prim=path)
    faces = triangulate(counts, indices)
    n = len(points)
    influences = query.ComputeVaryingJointInfluences(n, t)
    if not influences or len(influences[0]) == 0:
        raise InputError("joint influences cannot be computed (primvar sizes do not match the points)",
                         file=file, prim=path)
    k = query.GetNumInfluencesPerComponent()
    idx = np.asarray(influences[0], dtype=np.int64).reshape(n, k)
    w = np.asarray(influences[1], dtype=np.float64).reshape(n, k)
    # skel:joints on the mesh names a subset/reordering of the skeleton's joints.
    order = query.GetJointOrder()
    if order is not None and len(order):
        local = np.array([lookup.get(str(j), -1) for j in order], dtype=np.int64)
        if np.any(local < 0):
            missing = [str(j) for j, i in zip(order, local) if i < 0][:3]
            raise InputError(f"skel:joints lists joints the skeleton lacks: {', '.join(missing)}", file=file, prim=path)
        if idx.size and (idx.min() < 0 or idx.max() >= len(local)):
            raise InputError("primvars:skel:jointIndices out of range of skel:joints", file=file, prim=path)
        idx = local[idx]
    elif idx.size and (idx.min() < 0 or idx.max() >= len(lookup)):
        raise InputError("primvars:skel:jointIndices out of range of the skeleton's joints", file=file, prim=path)
    total = w.sum(1, keepdims=True)
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)
    geom_bind = np.array(query.GetGeomBindTransform(t), dtype=np.float64)
    points = points @ geom_bind[:3, :3] + geom_bind[3, :3]
    return points, faces, idx.astype(np.int32), w.astype(np.float32), path
