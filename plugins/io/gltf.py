"""glTF 2.0 / GLB -> Skeleton, one Motion per animation, skinned meshes (via pygltflib).

- Skeleton: the joints of every skin, reordered parent-first (glTF lists
  them in any order), named by their path of joint ancestors. A joint's
  local transform is the product of the node transforms from its nearest
  joint ancestor (exclusive) down to itself, and for a root joint from the
  scene root, so skel space is glTF world space even when non-joint nodes sit
  above or between joints. ``bindTransforms = inverse(inverseBindMatrix)``.
- Animations: every sampler is evaluated at the output frame grid with its
  own interpolation (:mod:`.gltf_sampling`); joints whose local transform is a
  single node keep exact TRS, composed chains are decomposed.
- Meshes: triangle primitives of skinned mesh nodes with POSITION, NORMAL,
  TEXCOORD_0 (v flipped to USD's convention), JOINTS_n/WEIGHTS_n remapped to
  skeleton joint order; geomBindTransform is identity (glTF skins vertices in
  the mesh's bind space directly and ignores the mesh node's transform).
"""
from __future__ import annotations

import os

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.authoring import SkinnedMesh
from anymole_usd.kinematics import decompose_matrices, local_matrices
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

from .axes import transform_scene
from .base import Importer, ImportOptions, Scene
from .gltf_data import GltfDocument
from .gltf_sampling import sample
from .naming import joint_paths
from .resample import frame_grid

COMMON_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 120.0)


class GltfRig:
    """The skeleton of a glTF document: joint nodes in parent-first order and their chains."""

    def __init__(self, doc: GltfDocument):
        self.doc = doc
        skins = doc.gltf.skins or []
        if not skins:
            raise doc.error("no skin: nothing to import as a UsdSkel Skeleton")
        joint_nodes: list[int] = []
        ibm: dict[int, np.ndarray] = {}
        for s, skin in enumerate(skins):
            if not skin.joints:
                raise doc.error(f"skin {s} ({skin.name or 'unnamed'}) has no joints")
            for j in skin.joints:
                doc.node(j, f"skin {s} ({skin.name or 'unnamed'}) joint")
            mats = (doc.accessor(skin.inverseBindMatrices, f"skin {s} inverseBindMatrices").reshape(-1, 4, 4)
                    if skin.inverseBindMatrices is not None else np.tile(np.eye(4), (len(skin.joints), 1, 1)))
            if len(mats) < len(skin.joints):
                raise doc.error(f"skin {s}: {len(mats)} inverseBindMatrices for {len(skin.joints)} joints")
            for j, m in zip(skin.joints, mats):
                if j not in ibm:
                    joint_nodes.append(j)
                    ibm[j] = m  # column-major glTF == row-vector matrix when reshaped row-wise
        is_joint = set(joint_nodes)
        self.nodes = _parent_first(doc, joint_nodes)
        index = {n: i for i, n in enumerate(self.nodes)}
        self.parents = np.full(len(self.nodes), -1, dtype=np.int64)
        self.chains: list[list[int]] = []
        for i, n in enumerate(self.nodes):
            chain = [n]
            p = doc.parents[n]
            while p >= 0 and p not in is_joint:
                chain.append(int(p))
                p = doc.parents[p]
            self.parents[i] = index[p] if p >= 0 else -1
            self.chains.append(chain[::-1])
        self.index = index
        self.names = [doc.node_name(n) for n in self.nodes]
        self.paths = joint_paths(self.names, self.parents)
        self.bind = np.linalg.inv(np.stack([ibm[n] for n in self.nodes]))

    def skeleton(self, name: str) -> Skeleton:
        rest = self.local_matrices({}, np.zeros(1))[0]
        return Skeleton(joints=self.paths, parents=self.parents, rest_transforms=rest,
                        bind_transforms=self.bind, name=name, joint_names=list(self.names),
                        meta={"format": "gltf", "nodes": list(self.nodes)})

    def node_trs(self, animated: dict, node: int, n: int):
        """(F, 3), (F, 4), (F, 3) TRS of a node over F frames (animated channels override static)."""
        t, r, s, m = self.doc.static_trs(node)
        if m is not None:
            r_m, t_m, s_m = decompose_matrices(m)
            t, r, s = t_m, r_m, s_m
        chans = animated.get(node, {})
        return (chans.get("translation", np.broadcast_to(t, (n, 3))),
                chans.get("rotation", np.broadcast_to(r, (n, 4))),
                chans.get("scale", np.broadcast_to(s, (n, 3))))

    def local_matrices(self, animated: dict, times: np.ndarray) -> np.ndarray:
        """(F, J, 4, 4) row-vector joint-local matrices (chains composed)."""
        n = len(times)
        out = np.empty((n, len(self.nodes), 4, 4))
        for j, chain in enumerate(self.chains):
            mats = None
            for node in chain:  # root-most first: row-vector product child @ parent
                static_m = self.doc.static_trs(node)[3]
                if static_m is not None and node not in animated:
                    m = np.broadcast_to(static_m, (n, 4, 4))
                else:
                    t, r, s = self.node_trs(animated, node, n)
                    m = local_matrices(r, t, s)
                mats = m if mats is None else m @ mats
            out[:, j] = mats
        return out

    def motion(self, animated: dict, grid: np.ndarray, fps: float) -> Motion:
        """Motion on timecodes ``grid`` (channels in ``animated`` sampled at ``grid / fps`` seconds)."""
        n = len(grid)
        rotations = np.empty((n, len(self.nodes), 4))
        translations = np.empty((n, len(self.nodes), 3))
        scales = np.empty((n, len(self.nodes), 3))
        composed = [j for j, c in enumerate(self.chains) if len(c) > 1 or self.doc.static_trs(c[0])[3] is not None]
        for j, chain in enumerate(self.chains):
            if j not in composed:  # exact TRS, no matrix round trip
                t, r, s = self.node_trs(animated, chain[0], n)
                translations[:, j], rotations[:, j], scales[:, j] = t, r, s
        if composed:
            mats = self.local_matrices(animated, grid)[:, composed]
            r, t, s = decompose_matrices(mats)
            rotations[:, composed], translations[:, composed], scales[:, composed] = r, t, s
        return Motion(times=grid, rotations=rot.make_continuous(rot.normalize(rotations), axis=0),
                      translations=translations, scales=scales, fps=fps, joints=list(self.paths))


def _parent_first(doc: GltfDocument, joint_nodes: list[int]) -> list[int]:
    """The skins' joint order when every joint follows its joint ancestors, else depth-first node order."""
    position = {n: i for i, n in enumerate(joint_nodes)}
    ok = all(position.get(a, -1) < position[n] for n in joint_nodes for a in doc.ancestors(n)[:-1]
             if a in position)
    if ok:
        return list(joint_nodes)
    order = []
    stack = [n for n in range(len(doc.parents)) if doc.parents[n] < 0][::-1]
    while stack:
        n = stack.pop()
        if n in position:
            order.append(n)
        stack.extend(reversed(doc.node(n).children or []))
    return order


def animation_labels(doc: GltfDocument) -> list[str]:
    labels = []
    for i, anim in enumerate(doc.gltf.animations or []):
        label = anim.name or f"Animation{i}"
        labels.append(label if label not in labels else f"{label}_{i}")
    return labels


def sampled_channels(doc: GltfDocument, a: int, times: np.ndarray, notes: list[str]) -> dict:
    """{node: {path: (F, C) values}} for animation ``a`` at ``times`` (seconds)."""
    anim = doc.gltf.animations[a]
    out: dict[int, dict[str, np.ndarray]] = {}
    for c, channel in enumerate(anim.channels or []):
        target = channel.target
        what = f"animation {a} ({anim.name or 'unnamed'}) channel {c}"
        if target is None or target.node is None:
            continue  # targets of extensions (KHR_animation_pointer): not skeletal
        doc.node(target.node, what)
        if target.path == "weights":
            notes.append(f"{what}: morph target weights are not imported")
            continue
        if target.path not in ("translation", "rotation", "scale"):
            raise doc.error(f"{what}: unknown target path {target.path!r}")
        samplers = anim.samplers or []
        if channel.sampler is None or not 0 <= channel.sampler < len(samplers):
            raise doc.error(f"{what}: sampler {channel.sampler} does not exist")
        smp = samplers[channel.sampler]
        inputs = doc.accessor(smp.input, f"{what} input")[:, 0]
        outputs = doc.accessor(smp.output, f"{what} output")
        interp = (smp.interpolation or "LINEAR").upper()
        per_key = 3 if interp == "CUBICSPLINE" else 1
        width = 4 if target.path == "rotation" else 3
        if len(inputs) == 0 or outputs.shape != (len(inputs) * per_key, width):
            raise doc.error(f"{what}: {len(inputs)} key times but output accessor has shape {outputs.shape}")
        if np.any(np.diff(inputs) <= 0):
            raise doc.error(f"{what}: key times are not strictly increasing")
        if interp not in ("LINEAR", "STEP", "CUBICSPLINE"):
            raise doc.error(f"{what}: unknown interpolation {interp!r}")
        out.setdefault(target.node, {})[target.path] = sample(inputs, outputs, interp, target.path, times)
    return out


def key_times(doc: GltfDocument, a: int) -> np.ndarray:
    anim = doc.gltf.animations[a]
    ts = [doc.accessor(s.input, f"animation {a} sampler input")[:, 0] for s in anim.samplers or []]
    return np.concatenate(ts) if ts else np.zeros(0)


def detect_fps(keys: list[np.ndarray]) -> tuple[float, bool]:
    """(rate, exact): the lowest common frame rate on whose grid every key time falls, else the
    common rate nearest the median key spacing (exact False: some keys fall between frames)."""
    all_times = np.concatenate(keys)
    for fps in COMMON_RATES:
        if np.all(np.abs(all_times * fps - np.round(all_times * fps)) < 1e-3):
            return fps, True
    steps = np.concatenate([np.diff(np.unique(k)) for k in keys])
    if not len(steps):
        return 30.0, False
    rate = 1.0 / float(np.median(steps))
    return min(COMMON_RATES, key=lambda r: abs(r - rate)), False


def read_gltf(path: str, options: ImportOptions | None = None) -> Scene:
    """The skeleton, every animation and the skinned meshes of a glTF/GLB file (glTF axes: Y-up, metres)."""
    options = options or ImportOptions()
    doc = GltfDocument(path)
    rig = GltfRig(doc)
    labels = animation_labels(doc)
    if not labels:
        raise doc.error("no animation: nothing to import as a SkelAnimation")
    notes: list[str] = []
    keys = [key_times(doc, a) for a in range(len(labels))]
    for a, k in enumerate(keys):
        if not len(k):
            raise doc.error(f"animation {a} ({labels[a]}) has no samplers")
    fps = options.fps
    if fps is None:
        fps, exact = detect_fps(keys)
        if not exact:
            notes.append(f"key times fall on no common frame rate: sampled at {fps:g} fps (use --fps)")
    animations = {}
    for a, label in enumerate(labels):
        grid = frame_grid(keys[a].min(), keys[a].max(), fps)
        if options.frames is not None:
            grid = grid[options.frames]
            if not len(grid):
                raise doc.error(f"--frames selects no frame of animation {label}")
        animations[label] = rig.motion(sampled_channels(doc, a, grid / fps, notes), grid, fps)
    bound = labels[0]
    if options.animation is not None:
        if options.animation not in labels:
            raise doc.error(f"no animation named {options.animation!r} (available: {', '.join(labels)})")
        bound = options.animation
    name = os.path.splitext(os.path.basename(path))[0]
    scene = Scene(skeleton=rig.skeleton(name), animations=animations, bound=bound, up_axis="Y",
                  meters_per_unit=1.0, meshes=skinned_meshes(doc, rig, notes), notes=sorted(set(notes)))
    if options.scale != 1.0:
        scene = transform_scene(scene, None, options.scale)
        scene.meters_per_unit = 1.0 / options.scale
    return scene


def skinned_meshes(doc: GltfDocument, rig: GltfRig, notes: list[str]) -> list[SkinnedMesh]:
    out = []
    for n, node in enumerate(doc.gltf.nodes or []):
        if node.mesh is None:
            continue
        meshes = doc.gltf.meshes or []
        if not 0 <= node.mesh < len(meshes):
            raise doc.error(f"node {n} ({node.name or 'unnamed'}) refers to mesh {node.mesh}, which does not exist")
        mesh = meshes[node.mesh]
        label = mesh.name or node.name or f"mesh{node.mesh}"
        if node.skin is None:
            notes.append(f"mesh {label!r} is not skinned: not imported")
            continue
        skins = doc.gltf.skins or []
        if not 0 <= node.skin < len(skins):
            raise doc.error(f"node {n} ({node.name or 'unnamed'}) refers to skin {node.skin}, which does not exist")
        skin_to_skel = np.array([rig.index[j] for j in skins[node.skin].joints], dtype=np.int64)
        prims = mesh.primitives or []
        for p, prim in enumerate(prims):
            name = label if len(prims) == 1 else f"{label}_{p}"
            built = _primitive(doc, prim, skin_to_skel, name, f"mesh {node.mesh} ({label}) primitive {p}", notes)
            if built is not None:
                out.append(built)
    return out


def _primitive(doc, prim, skin_to_skel, name, what, notes) -> SkinnedMesh | None:
    mode = 4 if prim.mode is None else prim.mode
    if mode != 4:
        notes.append(f"{what}: mode {mode} is not triangles: not imported")
        return None
    attrs = prim.attributes
    if attrs.POSITION is None:
        raise doc.error(f"{what} has no POSITION")
    points = doc.accessor(attrs.POSITION, f"{what} POSITION")
    nv = len(points)
    indices = (doc.accessor(prim.indices, f"{what} indices")[:, 0] if prim.indices is not None
               else np.arange(nv))
    if len(indices) % 3 or (len(indices) and (indices.min() < 0 or indices.max() >= nv)):
        raise doc.error(f"{what}: indices are not triangles over its {nv} vertices")
    joint_sets, weight_sets = [], []
    for k in range(8):
        j_acc, w_acc = getattr(attrs, f"JOINTS_{k}", None), getattr(attrs, f"WEIGHTS_{k}", None)
        if j_acc is None or w_acc is None:
            break
        joint_sets.append(doc.accessor(j_acc, f"{what} JOINTS_{k}").astype(np.int64))
        weight_sets.append(doc.accessor(w_acc, f"{what} WEIGHTS_{k}"))
    if not joint_sets:
        notes.append(f"{what} has no JOINTS_0/WEIGHTS_0: not imported")
        return None
    joints, weights = np.concatenate(joint_sets, 1), np.concatenate(weight_sets, 1)
    if joints.shape[0] != nv or weights.shape != joints.shape:
        raise doc.error(f"{what}: joint/weight attributes do not match its {nv} vertices")
    if joints.max(initial=0) >= len(skin_to_skel):
        raise doc.error(f"{what}: joint index {int(joints.max())} beyond the skin's {len(skin_to_skel)} joints")
    joints = np.where(weights > 0, skin_to_skel[joints], 0)
    normals = doc.accessor(attrs.NORMAL, f"{what} NORMAL") if attrs.NORMAL is not None else None
    uvs = None
    if attrs.TEXCOORD_0 is not None:
        uv = doc.accessor(attrs.TEXCOORD_0, f"{what} TEXCOORD_0")
        uvs = np.stack([uv[:, 0], 1.0 - uv[:, 1]], axis=1)  # glTF v points down, USD st up
    if prim.targets:
        notes.append(f"{what}: morph targets are not imported")
    return SkinnedMesh(name=name, points=points, face_vertex_counts=np.full(len(indices) // 3, 3),
                       face_vertex_indices=indices, joint_indices=joints, joint_weights=weights,
                       normals=normals, uvs=uvs, geom_bind_transform=np.eye(4))


class GltfImporter(Importer):
    name = "gltf"
    extensions = (".glb", ".gltf")
    description = "glTF 2.0 / GLB: skinned meshes, skeleton, one SkelAnimation per animation (pygltflib)"

    def read(self, path: str, options: ImportOptions) -> Scene:
        return read_gltf(path, options)
