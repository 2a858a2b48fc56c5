"""Scene -> glTF 2.0 (.glb, or .gltf with an embedded base64 buffer) via pygltflib.

One node per joint (rest TRS), a skin whose inverseBindMatrices are the
inverse bind transforms, one LINEAR animation per Scene animation keyed at
the Motion's own times (seconds = timecode / fps), and the skinned meshes
triangulated (fan) with POSITION / NORMAL / TEXCOORD_0 / JOINTS_n / WEIGHTS_n.
Lengths are converted to metres (glTF's unit) from the scene's metersPerUnit;
the scene must already be Y-up.
"""
from __future__ import annotations

import base64
import os

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.authoring import SkinnedMesh, atomic_output
from anymole_usd.errors import InputError
from anymole_usd.kinematics import decompose_matrices

from .axes import transform_scene
from .base import Exporter, Scene

FLOAT, UINT16, UINT32 = 5126, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class _Blob:
    """Accumulates binary data and the bufferViews/accessors that describe it."""

    def __init__(self, gltf):
        self.gltf = gltf
        self.data = bytearray()

    def add(self, array: np.ndarray, component: int, kind: str, target: int | None = None,
            minmax: bool = False) -> int:
        import pygltflib

        dtype = {FLOAT: np.float32, UINT16: np.uint16, UINT32: np.uint32}[component]
        arr = np.ascontiguousarray(array, dtype=dtype)
        count = arr.shape[0]
        while len(self.data) % 4:
            self.data.append(0)
        view = pygltflib.BufferView(buffer=0, byteOffset=len(self.data), byteLength=arr.nbytes, target=target)
        self.data.extend(arr.tobytes())
        self.gltf.bufferViews.append(view)
        acc = pygltflib.Accessor(bufferView=len(self.gltf.bufferViews) - 1, componentType=component,
                                 count=count, type=kind)
        if minmax:
            flat = arr.reshape(count, -1)
            acc.min = flat.min(0).astype(float).tolist()
            acc.max = flat.max(0).astype(float).tolist()
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def triangulate(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Fan-triangulate polygons: (T, 3) vertex indices, vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_tri = np.maximum(counts - 2, 0)
    first = np.repeat(starts, n_tri)
    k = np.arange(n_tri.sum()) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri)  # 0.. per face
    return np.stack([indices[first], indices[first + k + 1], indices[first + k + 2]], axis=1)


def _mesh_arrays(mesh: SkinnedMesh):
    g = np.eye(4) if mesh.geom_bind_transform is None else np.asarray(mesh.geom_bind_transform, np.float64)
    # glTF skins vertices given in bind space: bake geomBindTransform into them.
    points = np.asarray(mesh.points, np.float64) @ g[:3, :3] + g[3, :3]
    normals = None
    if mesh.normals is not None:
        normals = rot.normalize(np.asarray(mesh.normals, np.float64) @ np.linalg.inv(g[:3, :3]).T)
    return points, normals


def write_gltf(path: str | os.PathLike, scene: Scene) -> dict:
    """Write a Y-up ``scene`` as .glb or .gltf (embedded buffer), atomically; returns counts."""
    import pygltflib

    out = os.fspath(path)
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".glb", ".gltf"):
        raise InputError("glTF output must end in .glb or .gltf", file=out)
    if scene.up_axis != "Y":
        raise ValueError("write_gltf needs a Y-up scene")
    scene = transform_scene(scene, None, scene.meters_per_unit)  # to metres
    sk = scene.skeleton
    gltf = pygltflib.GLTF2(asset=pygltflib.Asset(generator="anymole-usd", version="2.0"),
                           scene=0, scenes=[], nodes=[], meshes=[], skins=[], animations=[], accessors=[],
                           bufferViews=[], buffers=[])
    blob = _Blob(gltf)
    r, t, s = decompose_matrices(sk.rest_transforms)
    children = sk.children()
    for j in range(sk.num_joints):
        gltf.nodes.append(pygltflib.Node(name=sk.short_names[j], translation=t[j].tolist(),
                                         rotation=rot.normalize(r[j]).tolist(), scale=s[j].tolist(),
                                         children=list(children[j]) or None))
    bind = sk.bind_transforms
    if bind is None:
        from anymole_usd.kinematics import compose_local_matrices

        bind = compose_local_matrices(sk.rest_transforms[None], sk.parents)[0]
    ibm = blob.add(np.linalg.inv(bind).reshape(-1, 16), FLOAT, "MAT4")
    roots = [int(j) for j in sk.roots]
    gltf.skins.append(pygltflib.Skin(joints=list(range(sk.num_joints)), inverseBindMatrices=ibm,
                                     skeleton=roots[0] if len(roots) == 1 else None, name=sk.name or None))
    scene_nodes = list(roots)
    for mesh in scene.meshes:
        gltf.meshes.append(_mesh(blob, mesh))
        gltf.nodes.append(pygltflib.Node(name=mesh.name, mesh=len(gltf.meshes) - 1, skin=0))
        scene_nodes.append(len(gltf.nodes) - 1)
    gltf.scenes.append(pygltflib.Scene(nodes=scene_nodes))
    for label, motion in scene.animations.items():
        gltf.animations.append(_animation(blob, label, motion))
    if ext == ".glb":
        gltf.buffers.append(pygltflib.Buffer(byteLength=len(blob.data)))
        gltf.set_binary_blob(bytes(blob.data))
    else:
        uri = "data:application/octet-stream;base64," + base64.b64encode(bytes(blob.data)).decode("ascii")
        gltf.buffers.append(pygltflib.Buffer(byteLength=len(blob.data), uri=uri))
    with atomic_output(out) as tmp:
        if ext == ".glb":
            gltf.save_binary(tmp)
        else:
            gltf.save_json(tmp)
    return {"nodes": len(gltf.nodes), "meshes": len(gltf.meshes), "animations": len(gltf.animations)}


def _mesh(blob: _Blob, mesh: SkinnedMesh):
    import pygltflib

    points, normals = _mesh_arrays(mesh)
    tris = triangulate(mesh.face_vertex_counts, mesh.face_vertex_indices)
    attrs = pygltflib.Attributes(POSITION=blob.add(points, FLOAT, "VEC3", ARRAY_BUFFER, minmax=True))
    if normals is not None:
        attrs.NORMAL = blob.add(normals, FLOAT, "VEC3", ARRAY_BUFFER)
    if mesh.uvs is not None:
        uv = np.asarray(mesh.uvs, np.float64)
        attrs.TEXCOORD_0 = blob.add(np.stack([uv[:, 0], 1.0 - uv[:, 1]], 1), FLOAT, "VEC2", ARRAY_BUFFER)
    idx, wts = np.asarray(mesh.joint_indices), np.asarray(mesh.joint_weights, np.float64)
    sets = -(-idx.shape[1] // 4)  # influences in groups of four, zero-padded
    pad = sets * 4 - idx.shape[1]
    idx = np.pad(np.where(wts > 0, idx, 0), ((0, 0), (0, pad)))
    wts = np.pad(wts, ((0, 0), (0, pad)))
    for k in range(sets):
        setattr(attrs, f"JOINTS_{k}", blob.add(idx[:, 4 * k:4 * k + 4], UINT16, "VEC4", ARRAY_BUFFER))
        setattr(attrs, f"WEIGHTS_{k}", blob.add(wts[:, 4 * k:4 * k + 4], FLOAT, "VEC4", ARRAY_BUFFER))
    indices = blob.add(tris.reshape(-1, 1), UINT32, "SCALAR", ELEMENT_ARRAY_BUFFER)
    return pygltflib.Mesh(name=mesh.name, primitives=[pygltflib.Primitive(attributes=attrs, indices=indices,
                                                                           mode=4)])


def _animation(blob: _Blob, label: str, motion):
    import pygltflib

    seconds = motion.times / motion.fps
    seconds = seconds - min(0.0, float(seconds[0]))  # glTF key times cannot be negative
    m = motion.normalized()
    inp = blob.add(seconds.reshape(-1, 1), FLOAT, "SCALAR", minmax=True)
    samplers, channels = [], []
    constant_scale = np.allclose(m.scales, 1.0)
    for j in range(m.num_joints):
        for path, values, kind in (("translation", m.translations[:, j], "VEC3"),
                                   ("rotation", m.rotations[:, j], "VEC4"),
                                   ("scale", m.scales[:, j], "VEC3")):
            if path == "scale" and constant_scale:
                continue
            samplers.append(pygltflib.AnimationSampler(input=inp, output=blob.add(values, FLOAT, kind),
                                                       interpolation="LINEAR"))
            channels.append(pygltflib.AnimationChannel(
                sampler=len(samplers) - 1, target=pygltflib.AnimationChannelTarget(node=j, path=path)))
    return pygltflib.Animation(name=label, samplers=samplers, channels=channels)


class GltfExporter(Exporter):
    name = "gltf"
    extensions = (".glb", ".gltf")
    description = "glTF 2.0 / GLB: skeleton nodes, skin, skinned meshes, LINEAR animation at the authored samples"
    uniform_frames = False

    def write(self, path: str, scene: Scene) -> dict:
        return write_gltf(path, scene)
