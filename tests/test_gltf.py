"""glTF/GLB import and export against the real files in ../shared/data/gltf.

The reference is evaluated here from the raw glTF data, independently of the
importer: node TRS/matrices composed down the node tree with the animated
values read straight from the sampler outputs at each key time (scipy Slerp /
np.interp where a channel has no key at that time), and glTF skinning
``sum_i w_i * world(joint_i) * inverseBindMatrix_i * v``. The USD side is
UsdSkel: ``ComputeJointSkelTransforms`` and ``SkinningQuery.ComputeSkinnedPoints``.
"""
from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from scipy.spatial.transform import Rotation, Slerp

from anymole_usd.errors import InputError
from anymole_usd.plugins.io.base import ImportOptions
from anymole_usd.plugins.io.convert import export_from_usd, import_to_usd
from anymole_usd.plugins.io.gltf_sampling import sample

DATA = Path(os.environ.get("ANYMOLE_USD_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
FOX = DATA / "gltf" / "Fox.glb"
SIMPLE = DATA / "gltf" / "SimpleSkin.gltf"
TOL = 1e-4  # x model size

needs_data = pytest.mark.skipif(not FOX.is_file() or not SIMPLE.is_file(), reason=f"no glTF files under {DATA}")

DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


class Reference:
    """A minimal, separate glTF evaluator (plain loops; no sparse accessors, as in the test files)."""

    def __init__(self, path: Path):
        self.g = pygltflib.GLTF2().load(str(path))
        self.blobs = [self.g.binary_blob() if b.uri is None else base64.b64decode(b.uri.split(",", 1)[1])
                      for b in self.g.buffers]
        self.parent = {c: i for i, n in enumerate(self.g.nodes) for c in (n.children or [])}

    def acc(self, i):
        a = self.g.accessors[i]
        v = self.g.bufferViews[a.bufferView]
        n = SIZES[a.type]
        dtype = np.dtype(DTYPES[a.componentType])
        stride = v.byteStride or dtype.itemsize * n
        start = (v.byteOffset or 0) + (a.byteOffset or 0)
        raw = self.blobs[v.buffer]
        rows = [np.frombuffer(raw, dtype, n, start + i * stride) for i in range(a.count)]
        return np.array(rows, dtype=np.float64).reshape(a.count, n)

    def key_times(self, anim):
        return np.unique(np.concatenate([self.acc(s.input)[:, 0] for s in anim.samplers]))

    def node_locals(self, anim, t):
        mats = []
        for i, node in enumerate(self.g.nodes):
            if node.matrix is not None:
                mats.append(np.array(node.matrix).reshape(4, 4).T)
                continue
            trs = {"translation": np.array(node.translation or [0, 0, 0], float),
                   "rotation": np.array(node.rotation or [0, 0, 0, 1], float),
                   "scale": np.array(node.scale or [1, 1, 1], float)}
            for ch in anim.channels:
                if ch.target.node != i:
                    continue
                s = anim.samplers[ch.sampler]
                times, values = self.acc(s.input)[:, 0], self.acc(s.output)
                assert s.interpolation == "LINEAR"
                k = np.flatnonzero(np.abs(times - t) < 1e-7)
                if len(k):
                    trs[ch.target.path] = values[k[0]]
                elif ch.target.path == "rotation":
                    tc = np.clip(t, times[0], times[-1])
                    trs["rotation"] = Slerp(times, Rotation.from_quat(values))([tc]).as_quat()[0]
                else:
                    trs[ch.target.path] = np.array([np.interp(t, times, values[:, c]) for c in range(3)])
            m = np.eye(4)
            m[:3, :3] = Rotation.from_quat(trs["rotation"]).as_matrix() * trs["scale"]
            m[:3, 3] = trs["translation"]
            mats.append(m)
        return mats

    def world(self, anim, t):
        local = self.node_locals(anim, t)
        out = {}

        def w(i):
            if i not in out:
                out[i] = w(self.parent[i]) @ local[i] if i in self.parent else local[i]
            return out[i]

        for i in range(len(self.g.nodes)):
            w(i)
        return out  # column-vector world matrices

    def skinned_points(self, anim, t):
        world = self.world(anim, t)
        node = next(n for n in self.g.nodes if n.mesh is not None and n.skin is not None)
        skin = self.g.skins[node.skin]
        ibm = self.acc(skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
        joint_m = np.stack([world[j] @ ibm[k] for k, j in enumerate(skin.joints)])
        prim = self.g.meshes[node.mesh].primitives[0]
        v = self.acc(prim.attributes.POSITION)
        js = self.acc(prim.attributes.JOINTS_0).astype(int)
        ws = self.acc(prim.attributes.WEIGHTS_0)
        vh = np.concatenate([v, np.ones((len(v), 1))], 1)
        per = np.einsum("vkab,vb->vka", joint_m[js], vh)[..., :3]
        return (ws[..., None] * per).sum(1)


_OPEN_STAGES = []  # UsdSkel queries do not keep their stage alive: hold them for the test session


def usd_skel(path: Path, anim_name: str | None = None):
    """(skeleton query, skinning query, stage) for an imported stage."""
    from pxr import Usd, UsdSkel

    stage = Usd.Stage.Open(str(path))
    _OPEN_STAGES.append(stage)
    root = UsdSkel.Root(stage.GetPrimAtPath("/Character"))
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath("/Character/Skeleton"))
    if anim_name is not None:  # bind another of the imported animations, in the session layer
        stage.SetEditTarget(stage.GetSessionLayer())
        UsdSkel.BindingAPI(skel).GetAnimationSourceRel().SetTargets([f"/Character/Animations/{anim_name}"])
    cache = UsdSkel.Cache()
    cache.Populate(root, Usd.PrimDefaultPredicate)
    query = cache.GetSkelQuery(skel)
    binding = cache.ComputeSkelBinding(root, skel, Usd.PrimDefaultPredicate)
    targets = binding.GetSkinningTargets()
    return query, (targets[0] if targets else None), stage


def joint_node_indices(ref: Reference, query) -> list[int]:
    names = [str(j).rsplit("/", 1)[-1] for j in query.GetJointOrder()]
    by_name = {n.name or f"node{i}": i for i, n in enumerate(ref.g.nodes)}  # the importer names unnamed nodes so
    return [by_name[n] for n in names]


def model_size(ref: Reference, anim) -> float:
    world = ref.world(anim, 0.0)
    pos = np.stack([m[:3, 3] for m in world.values()])
    return float((pos.max(0) - pos.min(0)).max())


def check_joints(path: Path, out: Path, anim_index: int, anim_label: str, bound_now: bool):
    ref = Reference(path)
    anim = ref.g.animations[anim_index]
    query, _, stage = usd_skel(out, None if bound_now else anim_label)
    fps = stage.GetTimeCodesPerSecond()
    nodes = joint_node_indices(ref, query)
    size = model_size(ref, anim)
    worst = 0.0
    for t in ref.key_times(anim):
        world = ref.world(anim, t)
        want = np.stack([world[n].T for n in nodes])  # row-vector like USD
        got = np.asarray(query.ComputeJointSkelTransforms(round(t * fps, 3)))
        worst = max(worst, np.abs(got - want)[:, 3, :3].max() / size, np.abs(got - want)[:, :3, :3].max())
    assert worst < TOL, f"{path.name} {anim_label}: joint error {worst:.2e}"


@needs_data
@pytest.mark.parametrize("index,label", [(0, "Survey"), (1, "Walk"), (2, "Run")])
def test_fox_joint_world_matrices_every_key(tmp_path, index, label):
    out = tmp_path / "fox.usdc"
    summary = import_to_usd(FOX, out)
    assert [a["name"] for a in summary["animations"]] == ["Survey", "Walk", "Run"]
    assert summary["bound"] == "/Character/Animations/Survey" and summary["joints"] == 24
    check_joints(FOX, out, index, label, bound_now=(index == 0))


@needs_data
def test_simple_skin_joint_world_matrices(tmp_path):
    out = tmp_path / "simple.usda"
    import_to_usd(SIMPLE, out)
    check_joints(SIMPLE, out, 0, "Animation0", bound_now=True)


def skinned_error(path: Path, out: Path, anim_index: int, anim_label: str, times: list[float]) -> float:
    ref = Reference(path)
    anim = ref.g.animations[anim_index]
    query, skinning, stage = usd_skel(out, anim_label)
    fps = stage.GetTimeCodesPerSecond()
    mesh = skinning.GetPrim()
    worst = 0.0
    for t in times:
        points = mesh.GetAttribute("points").Get()
        assert skinning.ComputeSkinnedPoints(query.ComputeSkinningTransforms(round(t * fps, 3)), points,
                                             round(t * fps, 3))
        want = ref.skinned_points(anim, t)
        worst = max(worst, np.abs(np.asarray(points) - want).max() / model_size(ref, anim))
    return worst


@needs_data
@pytest.mark.parametrize("index,label", [(1, "Walk"), (2, "Run")])
def test_fox_skinned_points_match_gltf_skinning(tmp_path, index, label):
    out = tmp_path / "fox.usdc"
    import_to_usd(FOX, out)
    keys = Reference(FOX).key_times(Reference(FOX).g.animations[index])
    assert skinned_error(FOX, out, index, label, [keys[3], keys[len(keys) // 2]]) < TOL


@needs_data
def test_simple_skin_skinned_points(tmp_path):
    out = tmp_path / "simple.usda"
    import_to_usd(SIMPLE, out)
    keys = Reference(SIMPLE).key_times(Reference(SIMPLE).g.animations[0])
    assert skinned_error(SIMPLE, out, 0, "Animation0", [keys[2], keys[7]]) < TOL


@needs_data
def test_mesh_primvars_and_bind(tmp_path):
    from pxr import Usd, UsdGeom, UsdSkel

    out = tmp_path / "fox.usda"
    import_to_usd(FOX, out, ImportOptions(animation="Walk"))
    stage = Usd.Stage.Open(str(out))
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath("/Character/fox1"))
    binding = UsdSkel.BindingAPI(mesh)
    assert binding.GetJointIndicesPrimvar().GetElementSize() == 4
    assert binding.GetJointWeightsPrimvar().GetElementSize() == 4
    assert np.allclose(np.asarray(binding.GetGeomBindTransformAttr().Get()), np.eye(4))
    assert len(mesh.GetPointsAttr().Get()) == 1728
    st = UsdGeom.PrimvarsAPI(mesh).GetPrimvar("st")
    assert st.GetInterpolation() == "vertex" and len(st.Get()) == 1728
    ref = Reference(FOX)
    uv = ref.acc(ref.g.meshes[0].primitives[0].attributes.TEXCOORD_0)
    np.testing.assert_allclose(np.asarray(st.Get()), np.stack([uv[:, 0], 1 - uv[:, 1]], 1), atol=1e-6)
    skel = UsdSkel.Skeleton(stage.GetPrimAtPath("/Character/Skeleton"))
    assert str(UsdSkel.BindingAPI(skel).GetAnimationSourceRel().GetTargets()[0]) == "/Character/Animations/Walk"
    # bindTransforms = inverse(inverseBindMatrices), reordered to skeleton (parent-first) order
    nodes = [n.name for n in ref.g.nodes]
    ibm = ref.acc(ref.g.skins[0].inverseBindMatrices).reshape(-1, 4, 4)
    order = [ref.g.skins[0].joints.index(nodes.index(str(j).rsplit("/", 1)[-1])) for j in skel.GetJointsAttr().Get()]
    np.testing.assert_allclose(np.asarray(skel.GetBindTransformsAttr().Get()), np.linalg.inv(ibm[order]), atol=1e-5)
    assert UsdGeom.GetStageUpAxis(stage) == "Y" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0


def test_samplers_step_linear_cubicspline():
    times = np.array([0.0, 1.0, 2.0])
    values = np.array([[0.0, 0, 0], [1, 2, 3], [3, 0, 1]])
    t = np.array([-1.0, 0.0, 0.25, 0.999, 1.0, 1.5, 2.0, 5.0])
    step = sample(times, values, "STEP", "translation", t)
    np.testing.assert_allclose(step[:, 0], [0, 0, 0, 0, 1, 1, 3, 3])  # held, not blended
    lin = sample(times, values, "LINEAR", "translation", t)
    np.testing.assert_allclose(lin[:, 1], [0, 0, 0.5, 1.998, 2, 1, 0, 0])
    # cubic spline: in-tangent, value, out-tangent per key; with out-tangent 1 and in-tangent 1 on a 0->1
    # segment the Hermite curve is the straight line p(t) = t, and tangents 0 give smoothstep
    spline = np.array([[0.0], [0.0], [1.0], [1.0], [1.0], [0.0]])
    np.testing.assert_allclose(sample(times[:2], spline, "CUBICSPLINE", "x", np.array([0.25, 0.5])).ravel(),
                               [0.25, 0.5])
    flat = np.array([[0.0], [0.0], [0.0], [0.0], [1.0], [0.0]])
    np.testing.assert_allclose(sample(times[:2], flat, "CUBICSPLINE", "x", np.array([0.25])).ravel(),
                               [3 * 0.25**2 - 2 * 0.25**3])
    q = Rotation.from_euler("z", [[0], [90]], degrees=True).as_quat()
    mid = sample(times[:2], q, "LINEAR", "rotation", np.array([0.5]))
    np.testing.assert_allclose(Rotation.from_quat(mid).as_euler("xyz", degrees=True)[0], [0, 0, 45], atol=1e-9)


def _tiny_gltf(tmp_path, interpolation: str, outputs: list[float], times: list[float], name="tiny.gltf",
               mutate=None) -> Path:
    """A two-joint skinned strip animated on joint 1's translation x, as an embedded-buffer .gltf."""
    positions = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    joints = np.array([[0, 1, 0, 0]] * 3, np.uint16)
    weights = np.array([[0.5, 0.5, 0, 0]] * 3, np.float32)
    ibm = np.tile(np.eye(4, dtype=np.float32), (2, 1, 1))  # in skin order [tip, root]
    ibm[0, 3, 1] = -1.0  # the tip joint sits at y = 1 (column-major storage = row-vector rows)
    t = np.array(times, np.float32)
    out = np.array(outputs, np.float32).reshape(-1, 1) * np.float32([[1, 0, 0]]) + np.float32([0, 1, 0])
    chunks = [positions, joints, weights, ibm, t, out]
    blob, views, offset = b"", [], 0
    for c in chunks:
        data = c.tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data)})
        blob += data + b"\0" * (-len(data) % 4)
        offset = len(blob)
    acc = [
        {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0]},
        {"bufferView": 1, "componentType": 5123, "count": 3, "type": "VEC4"},
        {"bufferView": 2, "componentType": 5126, "count": 3, "type": "VEC4"},
        {"bufferView": 3, "componentType": 5126, "count": 2, "type": "MAT4"},
        {"bufferView": 4, "componentType": 5126, "count": len(t), "type": "SCALAR", "min": [float(t.min())],
         "max": [float(t.max())]},
        {"bufferView": 5, "componentType": 5126, "count": len(out), "type": "VEC3"},
    ]
    doc = {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0, 2]}],
        "nodes": [{"name": "root", "children": [1]}, {"name": "tip", "translation": [0, 1, 0]},
                  {"name": "strip", "mesh": 0, "skin": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "JOINTS_0": 1, "WEIGHTS_0": 2}}]}],
        "skins": [{"joints": [1, 0], "inverseBindMatrices": 3}],  # child listed first on purpose
        "animations": [{"name": "slide", "samplers": [{"input": 4, "output": 5, "interpolation": interpolation}],
                        "channels": [{"sampler": 0, "target": {"node": 1, "path": "translation"}}]}],
        "accessors": acc, "bufferViews": views,
        "buffers": [{"byteLength": len(blob),
                     "uri": "data:application/octet-stream;base64," + base64.b64encode(blob).decode()}],
    }
    if mutate:
        mutate(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _x_track(out: Path) -> tuple[np.ndarray, np.ndarray]:
    from pxr import Usd, UsdSkel

    stage = Usd.Stage.Open(str(out))
    anim = UsdSkel.Animation(stage.GetPrimAtPath("/Character/Animations/slide"))
    joints = [str(j) for j in anim.GetJointsAttr().Get()]
    k = joints.index("root/tip")
    times = np.array(anim.GetTranslationsAttr().GetTimeSamples())
    xs = np.array([np.asarray(anim.GetTranslationsAttr().Get(t))[k, 0] for t in times])
    return times, xs


def test_step_stays_stepped_and_joint_order_is_parent_first(tmp_path):
    path = _tiny_gltf(tmp_path, "STEP", [0.0, 1.0, 3.0], [0.0, 0.5, 1.0])
    out = tmp_path / "step.usda"
    summary = import_to_usd(path, out, ImportOptions(fps=10))
    assert summary["joints"] == 2
    times, xs = _x_track(out)
    np.testing.assert_allclose(times, np.arange(11))
    np.testing.assert_allclose(xs, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 3])


def test_cubicspline_uses_tangents(tmp_path):
    # keys 0 -> 1 over 1 s with zero tangents: smoothstep, not a straight line
    path = _tiny_gltf(tmp_path, "CUBICSPLINE", [0, 0, 0, 0, 1, 0], [0.0, 1.0])
    out = tmp_path / "cubic.usda"
    import_to_usd(path, out, ImportOptions(fps=4))
    _, xs = _x_track(out)
    s = np.array([0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(xs, 3 * s**2 - 2 * s**3, atol=1e-6)


def test_linear_resampled_to_other_rate(tmp_path):
    path = _tiny_gltf(tmp_path, "LINEAR", [0.0, 2.0], [0.0, 1.0])
    out = tmp_path / "lin.usda"
    import_to_usd(path, out, ImportOptions(fps=5))
    times, xs = _x_track(out)
    np.testing.assert_allclose(xs, times / 5 * 2.0, atol=1e-6)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d["nodes"][0].update(children=[1, 7]), "node 0 (root) lists child 7, which does not exist"),
    (lambda d: d["nodes"][1].update(children=[0]), "cyclic node hierarchy"),
    (lambda d: d["nodes"][1].update(children=[1]), "is its own child"),
    (lambda d: d.pop("skins") and d["nodes"][2].pop("skin"), "no skin: nothing to import"),
    (lambda d: d.pop("animations"), "no animation: nothing to import"),
    (lambda d: d["skins"][0].update(joints=[1, 9]), "skin 0 (unnamed) joint: node 9 does not exist"),
    (lambda d: d["animations"][0]["channels"][0]["target"].update(node=12),
     "animation 0 (slide) channel 0: node 12 does not exist"),
    (lambda d: d["accessors"][5].update(count=99), "accessor 5 reads past the end of bufferView 5"),
])
def test_bad_gltf_names_file_and_node(tmp_path, mutate, message):
    path = _tiny_gltf(tmp_path, "LINEAR", [0.0, 1.0], [0.0, 1.0], mutate=mutate)
    with pytest.raises(InputError) as info:
        import_to_usd(path, tmp_path / "out.usda")
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text
    assert not (tmp_path / "out.usda").exists()


@needs_data
def test_truncated_glb(tmp_path):
    data = FOX.read_bytes()
    cut = tmp_path / "cut.glb"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.glb: GLB header declares \d+ bytes but the file has \d+ "
                                         r"\(truncated\?\)"):
        import_to_usd(cut, tmp_path / "out.usda")
    # a header whose length was patched to the cut size: the JSON chunk runs past the end
    with pytest.raises(InputError, match=r"cut.glb: GLB chunk at byte 12 runs past the end of the file"):
        cut.write_bytes(b"glTF" + data[4:8] + struct.pack("<I", 40) + data[12:40])
        import_to_usd(cut, tmp_path / "out.usda")
    assert not (tmp_path / "out.usda").exists()


@needs_data
def test_unknown_animation_name(tmp_path):
    with pytest.raises(InputError, match=r"no animation named 'Trot' \(available: Survey, Walk, Run\)"):
        import_to_usd(FOX, tmp_path / "fox.usda", ImportOptions(animation="Trot"))


# ----------------------------------------------------------------------------- export


@needs_data
@pytest.mark.parametrize("ext", [".glb", ".gltf"])
def test_export_glb_round_trip(tmp_path, ext):
    """USD -> GLB -> USD: joint skel transforms and skinned points survive (composed animation)."""
    first = tmp_path / "fox.usda"
    import_to_usd(FOX, first, ImportOptions(animation="Run"))
    exported = tmp_path / f"fox{ext}"
    summary = export_from_usd(first, exported)
    assert summary["meshes"] == 1 and summary["animations"] == 1 and summary["frames"] == 140
    second = tmp_path / "again.usda"
    import_to_usd(exported, second)
    q1, s1, st1 = usd_skel(first)
    q2, s2, st2 = usd_skel(second)
    assert [str(j) for j in q1.GetJointOrder()] == [str(j) for j in q2.GetJointOrder()]
    ref = Reference(FOX)
    size = model_size(ref, ref.g.animations[2])
    for t in (0.0, 37.0, 139.0):
        a = np.asarray(q1.ComputeJointSkelTransforms(t))
        b = np.asarray(q2.ComputeJointSkelTransforms(t))
        assert np.abs(a - b)[:, 3, :3].max() / size < TOL
        p1 = s1.GetPrim().GetAttribute("points").Get()
        p2 = s2.GetPrim().GetAttribute("points").Get()
        s1.ComputeSkinnedPoints(q1.ComputeSkinningTransforms(t), p1, t)
        s2.ComputeSkinnedPoints(q2.ComputeSkinningTransforms(t), p2, t)
        assert np.abs(np.asarray(p1) - np.asarray(p2)).max() / size < TOL


def test_matrix_nodes_and_non_joint_ancestors_are_baked_into_root_joints(tmp_path):
    """A non-joint parent with a scale and a joint given by `matrix` still land in glTF world space."""
    rz = np.eye(4)
    rz[:3, :3] = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    rz[:3, 3] = [2.0, 0.0, 0.0]

    def mutate(doc):
        doc["nodes"][0]["matrix"] = rz.T.reshape(-1).tolist()  # column-major
        doc["nodes"].append({"name": "holder", "children": [0], "scale": [2, 2, 2], "translation": [0, 0, 5]})
        doc["scenes"][0]["nodes"] = [3, 2]

    path = _tiny_gltf(tmp_path, "LINEAR", [0.0, 1.0], [0.0, 1.0], mutate=mutate)
    out = tmp_path / "baked.usda"
    import_to_usd(path, out, ImportOptions(fps=1))
    query, _, _ = usd_skel(out)
    ref = Reference(path)
    for t in (0.0, 1.0):
        world = ref.world(ref.g.animations[0], t)
        got = np.asarray(query.ComputeJointSkelTransforms(t))
        np.testing.assert_allclose(got[0], world[0].T, atol=1e-6)  # root joint = the matrix node
        np.testing.assert_allclose(got[1], world[1].T, atol=1e-6)


@needs_data
def test_up_axis_z_rotates_skeleton_and_mesh(tmp_path):
    y_up, z_up = tmp_path / "y.usda", tmp_path / "z.usda"
    import_to_usd(FOX, y_up, ImportOptions(animation="Walk"))
    import_to_usd(FOX, z_up, ImportOptions(animation="Walk", up_axis="Z"))
    c = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # Y -> Z
    qy, sy, _ = usd_skel(y_up)
    qz, sz, stage = usd_skel(z_up)
    from pxr import UsdGeom

    assert UsdGeom.GetStageUpAxis(stage) == "Z"
    size = 100.0
    for t in (0.0, 40.0):
        a = np.asarray(qy.ComputeJointSkelTransforms(t))[:, 3, :3]
        b = np.asarray(qz.ComputeJointSkelTransforms(t))[:, 3, :3]
        assert np.abs(a @ c.T - b).max() / size < TOL
        py, pz = sy.GetPrim().GetAttribute("points").Get(), sz.GetPrim().GetAttribute("points").Get()
        sy.ComputeSkinnedPoints(qy.ComputeSkinningTransforms(t), py, t)
        sz.ComputeSkinnedPoints(qz.ComputeSkinningTransforms(t), pz, t)
        assert np.abs(np.asarray(py) @ c.T - np.asarray(pz)).max() / size < TOL
    # exporting the Z-up stage gives a Y-up glTF again: importing it matches the Y-up import
    export_from_usd(z_up, tmp_path / "back.glb")
    import_to_usd(tmp_path / "back.glb", tmp_path / "back.usda")
    qb, _, _ = usd_skel(tmp_path / "back.usda")
    for t in (0.0, 40.0):
        a = np.asarray(qy.ComputeJointSkelTransforms(t))[:, 3, :3]
        b = np.asarray(qb.ComputeJointSkelTransforms(t))[:, 3, :3]
        assert np.abs(a - b).max() / size < TOL


@needs_data
def test_glb_export_is_in_metres(tmp_path):
    """A BVH in centimetres (metersPerUnit 0.01) exports to glTF scaled to metres."""
    from pxr import Usd, UsdGeom

    bvh = DATA / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_walk_normal_001.bvh"
    import_to_usd(bvh, tmp_path / "cm.usda", ImportOptions(frames=slice(0, 20)))
    export_from_usd(tmp_path / "cm.usda", tmp_path / "m.glb")
    import_to_usd(tmp_path / "m.glb", tmp_path / "m.usda")
    assert UsdGeom.GetStageMetersPerUnit(Usd.Stage.Open(str(tmp_path / "m.usda"))) == 1.0
    q_cm, _, _ = usd_skel(tmp_path / "cm.usda")
    q_m, _, _ = usd_skel(tmp_path / "m.usda")
    a = np.asarray(q_cm.ComputeJointSkelTransforms(10.0))[:, 3, :3]
    b = np.asarray(q_m.ComputeJointSkelTransforms(10.0))[:, 3, :3]
    np.testing.assert_allclose(b, 0.01 * a, atol=1e-5)
