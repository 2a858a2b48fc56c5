"""Render stage: UsdSkel skinning, cameras, ray-cast images, joint annotations, CLI render/preview, bad input."""
import json
import os

import numpy as np
import pytest
from anymole_usd.cli.main import cli
from anymole_usd.plugins.render import Renderer, load_scene, render_views
from anymole_usd.plugins.render.cameras import Cameras, auto_cameras
from anymole_usd.plugins.render.character import read_character
from anymole_usd.plugins.render.parts import LEFT, RIGHT, name_side
from anymole_usd.plugins.render.skinning import Skinner, pose_character, skel_transforms, skin_numpy, skinning_matrices
from click.testing import CliRunner

from anymole_usd.kinematics import decompose_matrices
from anymole_usd.motion import Motion

SIZE = (96, 96)


def devices():
    import warp as wp

    from anymole_usd.kernels.runtime import init

    init()
    return ["cpu"] + (["cuda:0"] if wp.is_cuda_available() else [])


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _open(path):
    from anymole_usd.reading import find_bindings, open_stage

    stage = open_stage(path)
    return stage, next(b for b in find_bindings(stage) if b.animation_path)


@pytest.fixture(scope="module")
def cesium(data_dir):
    return load_scene(data_dir / "usd" / "CesiumMan.usdz")


@pytest.fixture(scope="module")
def bvh_proxy(cmu_proxy):
    """A mesh-less BVH character (CMU 01_01, a few frames) drawn with bone proxies."""
    return cmu_proxy(slice(0, 600, 150))


def bind_pose_motion(ch) -> Motion:
    """One frame holding the character's bind pose (symmetric for CesiumMan)."""
    bind = ch.bind_transforms
    parents = ch.skeleton.parents
    parent_bind = np.where(parents[:, None, None] >= 0, bind[np.maximum(parents, 0)], np.eye(4))
    r, t, s = decompose_matrices(bind @ np.linalg.inv(parent_bind))
    return Motion(times=np.array([0.0]), rotations=r[None], translations=t[None], scales=s[None],
                  joints=list(ch.skeleton.joints))


# ----------------------------------------------------------------------------------------- skinning


@pytest.mark.parametrize("device", devices())
def test_lbs_matches_pixar_baked_result(data_dir, device):
    from pxr import Usd, UsdGeom

    stage, binding = _open(data_dir / "usd" / "synthetic" / "lbs.usda")
    from anymole_usd.reading import read_motion

    times = np.arange(1.0, 31.0)
    motion = read_motion(stage, binding, times=times)
    ch = read_character(stage, binding)
    assert ch.mesh_paths == ["/Root/Mesh", "/Root/MeshWithFaceVaryingNormals", "/Root/MeshWithNormals"]
    # no metersPerUnit authored: UsdGeom's fallback is centimetres, and we render in metres
    assert ch.meters_per_unit == pytest.approx(0.01)
    verts = pose_character(ch, motion, device=device).vertices / ch.meters_per_unit
    baked = Usd.Stage.Open(str(data_dir / "usd" / "synthetic" / "lbs.baked.usda"))
    start = 0
    for path, n in zip(ch.mesh_paths, ch.mesh_sizes):
        pts = UsdGeom.Mesh(baked.GetPrimAtPath(path)).GetPointsAttr()
        truth = np.stack([np.asarray(pts.Get(t)) for t in times])
        scale = np.abs(truth).max()
        assert np.abs(verts[:, start:start + n] - truth).max() <= 1e-5 * scale, path
        start += n


def test_lbs_matches_usdskel_bake_on_cesiumman(data_dir, cesium):
    from pxr import Gf, Usd, UsdGeom, UsdSkel

    stage = Usd.Stage.Open(str(data_dir / "usd" / "CesiumMan.usdz"))
    stage.SetEditTarget(stage.GetSessionLayer())  # bake into memory, never into the shared file
    root = UsdSkel.Root(stage.GetPrimAtPath("/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3"))
    assert UsdSkel.BakeSkinning(root, Gf.Interval(1, 48))
    assert not stage.GetRootLayer().dirty
    mesh = UsdGeom.Mesh(stage.GetPrimAtPath(cesium.character.mesh_paths[0]))
    idx = np.array([0, 9, 23, 47])
    verts = pose_character(cesium.character, cesium.motion.select(idx)).vertices
    xf = np.array(UsdGeom.XformCache(1.0).GetLocalToWorldTransform(mesh.GetPrim()))
    for k, t in zip(range(len(idx)), cesium.motion.times[idx]):
        local = np.asarray(mesh.GetPointsAttr().Get(t), dtype=np.float64)
        world = local @ xf[:3, :3] + xf[3, :3]
        assert np.abs(verts[k] - world).max() <= 1e-5 * np.abs(world).max()


def test_warp_lbs_equals_numpy_reference(cesium):
    ch, m = cesium.character, cesium.motion.select(np.arange(0, 48, 7))
    mats = skinning_matrices(ch, skel_transforms(ch, m))
    ref = skin_numpy(ch.points, ch.joint_indices, ch.joint_weights, mats)
    got = Skinner(ch).skin(mats).numpy()
    assert np.abs(got - ref).max() < 1e-5 * np.abs(ref).max()


def test_mesh_joint_subset_and_constant_interpolation(tmp_path):
    """skel:joints on a mesh (a reordered subset) and rigid constant influences, against UsdSkel's own skinning."""
    from pxr import Gf, Usd, UsdGeom, UsdSkel, Vt

    path = str(tmp_path / "subset.usda")
    stage = Usd.Stage.CreateNew(path)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdSkel.Root.Define(stage, "/R")
    skel = UsdSkel.Skeleton.Define(stage, "/R/Skel")
    joints = ["a", "a/b", "a/b/c"]
    skel.CreateJointsAttr(joints)
    rest = [Gf.Matrix4d(1).SetTranslate(Gf.Vec3d(0, i and 1, 0)) for i in range(3)]
    skel.CreateRestTransformsAttr(rest)
    skel.CreateBindTransformsAttr([Gf.Matrix4d(1).SetTranslate(Gf.Vec3d(0, i, 0)) for i in range(3)])
    anim = UsdSkel.Animation.Define(stage, "/R/Skel/Anim")
    anim.CreateJointsAttr(joints)
    for t in (0.0, 1.0):
        angle = 40.0 * t
        q = Gf.Quatf(Gf.Rotation(Gf.Vec3d(0, 0, 1), angle).GetQuat())
        anim.CreateRotationsAttr().Set(Vt.QuatfArray([q, q, q]), t)
        anim.CreateTranslationsAttr().Set(Vt.Vec3fArray([(0, 0, 0), (0, 1, 0), (0, 1, 0)]), t)
        anim.CreateScalesAttr().Set(Vt.Vec3hArray([(1, 1, 1)] * 3), t)
    UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])
    pts = [(0.2, y, 0.1) for y in np.linspace(0, 2, 6)] + [(-0.2, y, -0.1) for y in np.linspace(0, 2, 6)]
    for name, mesh_joints, interp, idx, w, es in (
        ("Sub", ["a/b/c", "a"], "vertex", [(1, 0) if p[1] < 1 else (0, 1) for p in pts], None, 2),
        ("Rigid", ["a/b"], "constant", [(0,)], [(1.0,)], 1),
    ):
        mesh = UsdGeom.Mesh.Define(stage, f"/R/{name}")
        mesh.CreatePointsAttr(pts)
        mesh.CreateFaceVertexCountsAttr([3, 3, 4])
        mesh.CreateFaceVertexIndicesAttr([0, 1, 6, 1, 7, 6, 2, 3, 9, 8])
        b = UsdSkel.BindingAPI.Apply(mesh.GetPrim())
        b.CreateSkeletonRel().SetTargets([skel.GetPath()])
        b.CreateJointsAttr(mesh_joints)
        flat_idx = [i for row in idx for i in row]
        weights = w or [(0.7, 0.3) for _ in idx]
        b.CreateJointIndicesPrimvar(interp == "constant", es).Set(flat_idx)
        b.CreateJointWeightsPrimvar(interp == "constant", es).Set([x for row in weights for x in row])
        b.CreateGeomBindTransformAttr(Gf.Matrix4d(1).SetTranslate(Gf.Vec3d(0.5, 0, 0)))
    stage.GetRootLayer().Save()
    stage, binding = _open(path)
    from anymole_usd.reading import read_motion

    ch = read_character(stage, binding)
    motion = read_motion(stage, binding, times=np.array([1.0]))
    verts = pose_character(ch, motion).vertices[0]
    cache = UsdSkel.Cache()
    r = UsdSkel.Root(stage.GetPrimAtPath("/R"))
    cache.Populate(r, Usd.TraverseInstanceProxies())
    (sb,) = cache.ComputeSkelBindings(r, Usd.TraverseInstanceProxies())
    xforms = cache.GetSkelQuery(sb.GetSkeleton()).ComputeSkinningTransforms(1.0)
    assert len(sb.GetSkinningTargets()) == 2
    for q in sb.GetSkinningTargets():
        n = len(pts)
        if q.IsRigidlyDeformed():
            m = np.array(q.ComputeSkinnedTransform(xforms, 1.0))  # geomBindTransform included
            truth = np.c_[np.asarray(pts), np.ones(n)] @ m
        else:
            arr = Vt.Vec3fArray(pts)
            assert q.ComputeSkinnedPoints(xforms, arr, 1.0)
            truth = np.asarray(arr)
        k = ch.mesh_paths.index(str(q.GetPrim().GetPath()))
        start = sum(ch.mesh_sizes[:k])
        assert np.abs(verts[start:start + n] - truth[:, :3]).max() < 1e-5
        assert np.abs(truth[:, :3] - (np.asarray(pts) + [0.5, 0, 0])).max() > 0.1  # it did deform


# ---------------------------------------------------------------------------------- images, joints


def test_projected_joints_match_usdskel_world_joints(data_dir, cesium):
    from pxr import Usd, UsdGeom, UsdSkel

    idx = np.arange(0, 48, 11)
    motion = cesium.motion.select(idx)
    result = render_views(cesium.character, motion, size=SIZE)
    stage = Usd.Stage.Open(str(data_dir / "usd" / "CesiumMan.usdz"))
    cache = UsdSkel.Cache()
    root = UsdSkel.Root(stage.GetPrimAtPath("/CesiumMan/Geom/Z_UP/Armature/Skeleton_torso_joint_1_3"))
    cache.Populate(root, Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath(cesium.skeleton_path)))
    cams = result.cameras
    for f, t in enumerate(motion.times):
        world = np.array(query.ComputeJointWorldTransforms(UsdGeom.XformCache(t)))[:, 3, :3]
        world *= UsdGeom.GetStageMetersPerUnit(stage)
        for v in range(cams.num_views):
            m = cams.world_to_cam[v, 0]
            cam = world @ m[:3, :3].T + m[:3, 3]
            pix = cam @ cams.K[v].T
            expected = pix[:, :2] / pix[:, 2:]
            assert np.abs(result.joints.pixels[v, f] - expected).max() < 1e-3
            assert np.allclose(result.joints.depth[v, f], cam[:, 2], rtol=1e-5)
    assert result.joints.in_frame.all()
    assert result.joints.visible.mean() > 0.6
    # a joint counts as hidden only where another body part covers its pixel
    hidden = ~result.joints.visible
    assert hidden.any() and (result.joints.depth_ndc > -1).all() and (result.joints.depth_ndc < 1).all()


def _assert_silhouettes(result):
    masks = result.masks
    assert masks.any((2, 3)).all(), "a view/frame has an empty silhouette"
    border = masks[..., 0, :].any(-1) | masks[..., -1, :].any(-1) | masks[..., :, 0].any(-1) | masks[..., :, -1].any(-1)
    assert not border.any(), "the character touches the frame border"


@pytest.mark.parametrize("name", ["CesiumMan.usdz", "RiggedSimple.usdz"])
def test_silhouettes_inside_every_view(data_dir, name):
    scene = load_scene(data_dir / "usd" / name)
    motion = scene.motion.select(np.linspace(0, scene.motion.num_frames - 1, 6).astype(int))
    result = render_views(scene.character, motion, size=SIZE)
    assert result.images.shape == (4, 6, SIZE[0], SIZE[1], 3) and result.images.dtype == np.uint8
    _assert_silhouettes(result)


def test_silhouettes_of_imported_fox(data_dir):
    pytest.importorskip("anymole_usd.plugins.io.gltf")
    scene = load_scene(data_dir / "gltf" / "Fox.glb")
    assert not scene.character.is_proxy and len(scene.character.faces) > 500
    motion = scene.motion.select(np.linspace(0, scene.motion.num_frames - 1, 4).astype(int))
    _assert_silhouettes(render_views(scene.character, motion, size=SIZE))


def test_silhouettes_of_bone_proxy_bvh_character(bvh_proxy):
    ch, motion = bvh_proxy
    assert ch.is_proxy and ch.num_joints == 31
    _assert_silhouettes(render_views(ch, motion, size=SIZE))


def test_mesh_less_zup_skeleton_renders_upright(data_dir):
    scene = load_scene(data_dir / "usd" / "synthetic" / "skeleton.usda")
    assert scene.character.is_proxy and scene.character.up_axis == "Z"
    result = render_views(scene.character, scene.motion, size=SIZE, views=("front",))
    _assert_silhouettes(result)
    names = scene.character.skeleton.short_names
    head, foot = names.index("Head"), names.index("LFoot")
    assert (result.joints.pixels[0, :, head, 1] < result.joints.pixels[0, :, foot, 1] - 0.3 * SIZE[0]).all()


def test_left_view_is_the_mirror_side_of_right_view(cesium):
    ch = cesium.character
    result = render_views(ch, bind_pose_motion(ch), size=(128, 128), views=("left", "right"), ground=False)
    left, right = result.masks[0, 0], result.masks[1, 0]
    mirrored = np.fliplr(right)
    iou = (left & mirrored).sum() / (left | mirrored).sum()
    assert iou > 0.9
    # the camera on the character's left sees its left limbs in front of its right limbs, and vice versa
    sides = ch.sides
    for v, near_side, far_side in ((0, LEFT, RIGHT), (1, RIGHT, LEFT)):
        parts, depth = result.parts[v, 0], result.depth[v, 0]
        near = np.isin(parts, np.flatnonzero(sides == near_side))
        far = np.isin(parts, np.flatnonzero(sides == far_side))
        assert near.sum() > far.sum()
        assert depth[near].mean() < depth[far].mean()


def test_front_view_sees_left_limbs_on_image_right(cesium):
    ch = cesium.character
    result = render_views(ch, bind_pose_motion(ch), size=(128, 128), views=("front", "back"), ground=False)
    cols = np.arange(128)[None, :]
    for v, sign in ((0, 1), (1, -1)):
        parts = result.parts[v, 0]
        left_x = np.broadcast_to(cols, parts.shape)[np.isin(parts, np.flatnonzero(ch.sides == LEFT))].mean()
        right_x = np.broadcast_to(cols, parts.shape)[np.isin(parts, np.flatnonzero(ch.sides == RIGHT))].mean()
        assert sign * (left_x - right_x) > 5


def test_renders_are_deterministic(cesium):
    motion = cesium.motion.select(np.array([3, 30]))
    a = render_views(cesium.character, motion, size=SIZE)
    b = Renderer(cesium.character).render(motion, a.cameras)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.parts, b.parts)
    assert np.array_equal(a.joints.visible, b.joints.visible)


def test_tiled_redraw_equals_full_frames(cesium):
    """Fixed cameras redraw only the character's and shadow's pixels; moving ones draw everything."""
    motion = cesium.motion.select(np.array([0, 17, 40]))
    fixed = render_views(cesium.character, motion, size=SIZE)
    cams = fixed.cameras
    per_frame = Cameras(cams.names, cams.K, cams.frames(3).copy(), cams.width, cams.height, cams.near, cams.far)
    full = Renderer(cesium.character).render(motion, per_frame)
    assert np.array_equal(fixed.images, full.images) and np.array_equal(fixed.depth, full.depth)


def test_follow_cameras_move_and_fixed_cameras_do_not(cesium):
    r = Renderer(cesium.character)
    pose = r.pose(cesium.motion)
    fixed = r.auto_cameras(pose, size=SIZE)
    follow = r.auto_cameras(pose, size=SIZE, follow=True)
    assert fixed.num_frames == 1 and follow.num_frames == 48
    centres = follow.cam_to_world(48)[0]
    assert np.ptp(centres[0], axis=0).max() > 1e-4


def test_side_names():
    assert name_side("LeftArm") == LEFT and name_side("arm_joint_R__2_") == RIGHT
    assert name_side("mixamorig:RightHand") == RIGHT and name_side("hand.L") == LEFT and name_side("LShldr") == LEFT
    assert name_side("Lip") == 0 and name_side("Spine") == 0


def test_cameras_fit_every_frame_and_unit_scale(data_dir):
    scene = load_scene(data_dir / "usd" / "SoC-ElephantWithMonochord.usdc", frames=(1, 3001))
    ch = scene.character
    # this asset's elephant is authored 0.1235 units tall in centimetre units: 1.2 mm in metres
    assert ch.meters_per_unit == pytest.approx(0.01) and ch.height() == pytest.approx(0.1235e-2, rel=1e-2)
    motion = scene.motion.select(np.arange(0, scene.motion.num_frames, 600))
    result = render_views(ch, motion, size=SIZE, views=("front", "left"))
    _assert_silhouettes(result)
    assert ch.height() < np.median(result.joints.depth) < 20 * ch.height()


# -------------------------------------------------------------------------------------------- CLI


def test_cli_render_png_and_annotations(tmp_path, data_dir):
    out = tmp_path / "out"
    r = run("render", data_dir / "usd" / "CesiumMan.usdz", "-o", out, "--views", "front,back",
            "--size", "64x80", "--frames", "10:14", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["frames"] == 5 and summary["views"] == ["front", "back"]
    assert sorted(os.listdir(out)) == ["annotations.json", "annotations.npz", "back", "front"]
    import imageio.v3 as iio

    img = iio.imread(out / "front" / "0014.png")  # named by time code by default
    assert img.shape == (64, 80, 3)
    assert sorted(os.listdir(out / "front")) == [f"00{t}.png" for t in range(10, 15)]
    ann = json.loads((out / "annotations.json").read_text())
    assert ann["times"] == [10.0, 11.0, 12.0, 13.0, 14.0] and len(ann["frames"]) == 5
    frame = ann["frames"][2]["views"]["back"]
    assert frame["image"] == "back/0012.png" and len(frame["joints_px"]) == 19
    with np.load(out / "annotations.npz") as z:
        assert z["pixels"].shape == (2, 5, 19, 2) and z["K"].shape == (2, 3, 3)
        assert z["world_to_cam"].shape == (2, 5, 4, 4) and z["joints_world"].shape == (5, 19, 3)
        assert np.allclose(z["pixels"][1, 2], frame["joints_px"], atol=1e-3)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".anymole")]
    # --names index: frame_0000.png ..., the times in annotations.json
    r = run("render", data_dir / "usd" / "CesiumMan.usdz", "-o", tmp_path / "idx", "--views", "front",
            "--size", "32x32", "--frames", "10:12", "--names", "index", "--json")
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(tmp_path / "idx" / "front")) == ["frame_0000.png", "frame_0001.png", "frame_0002.png"]
    ann = json.loads((tmp_path / "idx" / "annotations.json").read_text())
    assert ann["frames"][1]["views"]["front"]["image"] == "front/frame_0001.png" and ann["frames"][1]["time"] == 11.0


def test_cli_render_bvh_draws_bone_proxies(tmp_path, data_dir):
    out = tmp_path / "bvh"
    r = run("render", data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh", "-o", out, "--frames", "0:5",
            "--size", "48", "--views", "front,right", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["proxies"] and summary["frames"] == 6
    with np.load(out / "annotations.npz") as z:
        assert z["pixels"].shape == (2, 6, 31, 2) and z["in_frame"].all()


def test_cli_render_mp4(tmp_path, data_dir):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "mp4"
    r = run("render", data_dir / "usd" / "RiggedSimple.usdz", "-o", out, "--views", "left", "--size", "64",
            "--format", "mp4", "--follow")
    assert r.exit_code == 0, r.output
    import imageio.v3 as iio

    frames = iio.imread(out / "left.mp4", index=None)
    assert frames.shape[0] == 50 and frames.shape[1:3] == (64, 64)


def test_cli_render_usd_camera(tmp_path, data_dir):
    shot = tmp_path / "cam.usda"
    src = os.path.relpath(data_dir / "usd" / "CesiumMan.usdz", tmp_path)
    shot.write_text(f"""#usda 1.0
(
    subLayers = [@{src}@]
    upAxis = "Y"
    metersPerUnit = 1
)
def Camera "Cam"
{{
    float focalLength = 35
    float horizontalAperture = 36
    float verticalAperture = 36
    float2 clippingRange = (0.1, 100)
    double3 xformOp:translate = (0, 0.8, 5)
    uniform token[] xformOpOrder = ["xformOp:translate"]
}}
def Xform "NotACamera"
{{
}}
""")
    out = tmp_path / "o"
    r = run("render", shot, "-o", out, "--camera", "/Cam", "--size", "64", "--frames", "1:3", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["views"] == ["Cam"]
    with np.load(out / "annotations.npz") as z:
        k = z["K"][0]
        assert k[0, 0] == pytest.approx(35 / 36 * 64) and k[0, 2] == pytest.approx(32)
        # camera at z=5 looking down -Z: OpenCV z axis points to -Z world, depth ~ 5
        assert np.allclose(z["world_to_cam"][0, 0, :3, :3], np.diag([1, -1, -1]), atol=1e-6)
        assert 4 < np.median(z["depth"]) < 6 and z["in_frame"].all()
    bad = run("render", shot, "-o", tmp_path / "o2", "--camera", "/NotACamera")
    assert bad.exit_code == 2 and "not a camera" in bad.output and not (tmp_path / "o2").exists()


@pytest.mark.parametrize("args, message", [
    (["--views", "front,top"], "unknown view 'top'"),
    (["--views", ""], "empty"),
    (["--size", "0x64"], "positive"),
    (["--size", "abc"], "HEIGHTxWIDTH"),
    (["--frames", "40:60"], "outside the animation"),
    (["--frames", "x"], "A:B"),
    (["--camera", "/CesiumMan"], "not a camera"),
    (["--camera", "/Nope"], "no such prim"),
    (["--device", "tpu:3"], "not an available Warp device"),
])
def test_cli_render_bad_input(tmp_path, data_dir, args, message):
    out = tmp_path / "out"
    r = run("render", data_dir / "usd" / "CesiumMan.usdz", "-o", out, *args)
    assert r.exit_code == 2, r.output
    assert message in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists() and os.listdir(tmp_path) == []


def test_cli_render_unwritable_output(tmp_path, data_dir):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("render", data_dir / "usd" / "CesiumMan.usdz", "-o", blocker / "out")
    assert r.exit_code == 2 and "output" in r.output
    r = run("render", data_dir / "usd" / "CesiumMan.usdz", "-o", blocker)
    assert r.exit_code == 2 and "not a folder" in r.output
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_cli_render_failure_leaves_nothing(tmp_path, data_dir, monkeypatch):
    from anymole_usd.plugins.render import outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    def boom(self, images, times=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outputs.RenderWriter, "add", boom)
    r = CliRunner().invoke(cli, ["render", str(data_dir / "usd" / "RiggedSimple.usdz"), "-o", str(out),
                                 "--size", "32"])
    assert r.exit_code == 1 and "disk full" in r.output
    assert os.listdir(out) == ["keep.txt"]


def test_cli_preview_contact_sheet_with_reference(tmp_path, data_dir):
    out = tmp_path / "sheet.png"
    path = data_dir / "usd" / "CesiumMan.usdz"
    r = run("preview", path, "-o", out, "--reference", path, "--size", "48", "--max-tiles", "8", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["roles_from"] == "timeline" and summary["counts"]["context"] == 48
    import imageio.v3 as iio

    sheet = iio.imread(out)
    assert sheet.shape[:2] == (2 * (48 + 4) + 4, 8 * (48 + 4) + 4)  # a row per panel (result, reference)
    assert run("preview", path, "--view", "top").exit_code == 2


def test_cli_preview_marks_inbetween_result(tmp_path, data_dir):
    """After `inbetween`, context, keyframes and generated frames come from the result's provenance."""
    from shots import shot_root

    shot = shot_root(tmp_path, data_dir)  # a skeleton without mesh: drawn with bone proxies
    assert run("inbetween", shot, "--prior", "interp").exit_code == 0
    r = run("preview", shot, "--size", "40", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["roles_from"] == "provenance"
    assert summary["counts"] == {"authored": 0, "context": 24, "keyframe": 2, "generated": 22, "interpolated": 0}
    assert (tmp_path / "shot.preview.png").is_file()


def test_render_stage_plugin_and_cache(tmp_path, cesium):
    from anymole_usd import registry

    stage_cls = registry.load("stages", "render")
    stage = stage_cls(views=("front",), size=(48, 48))
    motion = cesium.motion.select(np.arange(3))
    first = stage.run(cesium.character, motion, cache_dir=str(tmp_path))
    assert len(list(tmp_path.glob("render-*.npz"))) == 1
    again = stage.run(cesium.character, motion, cache_dir=str(tmp_path))
    assert np.array_equal(first.images, again.images)
    assert np.array_equal(first.joints.pixels, again.joints.pixels)
    assert isinstance(again.cameras, Cameras) and again.cameras.names == ["front"]


def test_ground_trajectory_root_gets_no_proxy(data_dir):
    """Bandai's joint_Root (on the floor under the hips) gets no bone: the floor shows between the feet."""
    from anymole_usd.plugins.io.bvh import read_bvh
    from anymole_usd.plugins.render.proxies import bind_pose, proxy_geometry, trajectory_roots

    bandai = data_dir / "bvh" / "humanoid" / "bandai_namco" / "dataset-1_kick_normal_001.bvh"
    crab = data_dir / "bvh" / "nonhumanoid" / "truebones" / "Crabnew_Crab-dance-long.bvh"
    cmu = data_dir / "bvh" / "humanoid" / "cmu" / "01_01.bvh"
    up = np.array([0.0, 1.0, 0.0])
    for path, expected in ((bandai, [0]), (crab, []), (cmu, [])):
        sk = read_bvh(path, frames=slice(0, 1)).skeleton
        assert np.flatnonzero(trajectory_roots(bind_pose(sk)[:, 3, :3], sk.parents, up)).tolist() == expected
    sk = read_bvh(bandai, frames=slice(0, 1)).skeleton
    _, _, point_joint, face_label, _ = proxy_geometry(sk, up=up)
    assert not np.any(point_joint == 0) and not np.any(face_label == 1)  # no root -> hips bone
    scene = load_scene(bandai, times=np.array([0.0]))  # standing, feet apart
    result = render_views(scene.character, scene.motion, size=(128, 128), views=("front",))
    u, v = result.joints.pixels[0, 0, 0]  # the root joint: on the floor between the feet
    patch = result.parts[0, 0, int(v) - 4:int(v) + 1, int(u) - 1:int(u) + 2]
    assert np.all(patch < 0)  # floor or background, not a body part


def test_shot_cameras_cover_the_inbetween_root_path(bvh_proxy):
    """Context runs right, the keyframe is back where the context ended: the root path between
    them overshoots to the right, beyond every known pose; the shot's cameras keep it in frame."""
    from anymole_usd.plugins.render.shot_cameras import inbetween_points, shot_cameras
    from anymole_usd.plugins.render.skinning import pose_character

    ch, motion = bvh_proxy
    one = motion.select(np.array([0]))
    times = np.array([0.0, 1, 2, 3, 4, 5, 30])
    trans = np.repeat(one.translations, len(times), 0)
    speed = 3.0  # skel units (x 0.056 m) per frame: about 5 m/s
    trans[:, 0, 0] += speed * np.minimum(times, 5.0)  # the keyframe at 30 is where frame 5 was
    known = Motion(times=times, rotations=np.repeat(one.rotations, len(times), 0), translations=trans,
                   scales=np.repeat(one.scales, len(times), 0), joints=one.joints, fps=30.0)
    pose = pose_character(ch, known)
    cams = shot_cameras(ch, known, size=(64, 64), pose=pose)
    assert cams.names == ["front", "left", "right", "back"] and cams.num_frames == 1
    fill = np.arange(6.0, 30.0)
    moved = inbetween_points(times, pose.vertices, fill)
    centre_x = 0.5 * (moved.min(1) + moved.max(1))[:, 0]
    known_x = 0.5 * (pose.vertices.min(1) + pose.vertices.max(1))[:, 0]
    assert centre_x.max() > known_x.max() + 0.3  # the path does go past the known frames (metres)
    pix, z = cams.project(moved)
    assert (z > 0).all() and (pix >= 0).all() and (pix <= 64).all()  # every view, every in-between frame
    fitted_on_known = Renderer(ch).auto_cameras(pose, size=(64, 64))
    pix_known, _ = fitted_on_known.project(moved)
    assert (pix_known < 0).any() or (pix_known > 64).any()  # what fitting on the known frames alone misses
    front = shot_cameras(ch, known, size=(64, 64), views=("front",), pose=pose)
    np.testing.assert_allclose(front.world_to_cam[0], cams.world_to_cam[0])  # one camera set, any subset


def test_auto_cameras_reject_unknown_view():
    from anymole_usd.errors import InputError

    with pytest.raises(InputError, match="unknown view"):
        auto_cameras(np.zeros((1, 4, 3)), np.array([0, 1.0, 0]), np.array([0, 0, 1.0]), views=("top",))
