"""Warp kinematics: FK against UsdSkel on the real files, the numpy reference,
gradients against central finite differences, and the torch bridge.

Every kernel test runs on every Warp device present ("cpu", plus "cuda:N").
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

wp = pytest.importorskip("warp")

from anymole_usd import kinematics
from anymole_usd.kernels import fk, runtime
from anymole_usd.kernels.joint_loss import joint_loss

DATA = Path(os.environ.get("ANYMOLE_USD_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
USD_FILES = sorted(p for p in (DATA / "usd").rglob("*") if p.suffix in {".usd", ".usda", ".usdc", ".usdz"})
DEVICES = runtime.available_devices()
PRECISIONS = [np.float64, np.float32]


def _random_case(rng, n_frames=5, parents=(-1, 0, 1, 1, -1, 4, 5, 0, 2), scales=True):
    parents = np.asarray(parents)
    n_j = len(parents)
    rot = rng.normal(size=(n_frames, n_j, 4))  # deliberately not unit length
    trans = rng.normal(size=(n_frames, n_j, 3))
    scl = rng.uniform(0.5, 1.8, size=(n_frames, n_j, 3)) * rng.choice([-1.0, 1.0], size=(n_frames, n_j, 3))
    return parents, rot, trans, (scl if scales else None)


def _central_diff(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        g[idx] = (f(xp) - f(xm)) / (2 * eps)
    return g


def _assert_grad_close(analytic, numeric, rtol=1e-6):
    scale = max(np.abs(numeric).max(), 1e-12)
    assert np.abs(analytic - numeric).max() <= rtol * scale, (np.abs(analytic - numeric).max(), scale)


# --- FK against UsdSkel -------------------------------------------------------------------------


def _usdskel_ground_truth(stage, skeleton_path, times):
    """UsdSkel.SkeletonQuery.ComputeJointSkelTransforms at each time, (F, J, 4, 4)."""
    from pxr import Usd, UsdSkel

    cache = UsdSkel.Cache()
    for prim in stage.Traverse(Usd.TraverseInstanceProxies()):
        if prim.IsA(UsdSkel.Root):
            cache.Populate(UsdSkel.Root(prim), Usd.TraverseInstanceProxies())
    query = cache.GetSkelQuery(UsdSkel.Skeleton(stage.GetPrimAtPath(skeleton_path)))
    assert query, skeleton_path
    return np.stack([np.asarray(query.ComputeJointSkelTransforms(Usd.TimeCode(t))) for t in times])


def _check_against_usdskel(stage, skeleton_path, parents, height, times, rot, trans, scl, where):
    truth = _usdskel_ground_truth(stage, skeleton_path, times)
    tol = 1e-5 * height
    for device in DEVICES:
        for dtype in PRECISIONS:
            m = fk.forward_kinematics(parents, rot, trans, scl, device=device, dtype=dtype)
            assert m.dtype == dtype and m.shape == truth.shape
            pos_err = np.abs(m[..., 3, :3] - truth[..., 3, :3]).max()
            # linear parts are rotation x scale (dimensionless); skinnedArm.usda authors a
            # quaternion of norm 0.99999 that UsdSkel uses unnormalised, hence 5e-5, not 1e-6.
            lin_err = np.abs(m[..., :3, :3] - truth[..., :3, :3]).max()
            assert pos_err <= tol, f"{where} {device} {dtype.__name__}: {pos_err:.3g} > {tol:.3g}"
            assert lin_err <= 5e-5, f"{where} {device} {dtype.__name__}: linear part off by {lin_err:.3g}"


@pytest.mark.skipif(not USD_FILES, reason=f"no USD files under {DATA / 'usd'}")
@pytest.mark.parametrize("path", USD_FILES, ids=lambda p: p.name)
def test_fk_matches_usdskel_on_real_files(path):
    from pxr import Usd

    from anymole_usd.kinematics import decompose_matrices
    from anymole_usd.reading import find_bindings, open_stage, read_motion

    stage = open_stage(path)
    bindings = find_bindings(stage, file=str(path))
    if not bindings:
        pytest.skip(f"{path.name} has no skeleton")
    for b in bindings:
        where = f"{path.name}:{b.skeleton_path}"
        if b.animation_path:
            motion = read_motion(stage, b, file=str(path))  # every authored time, none skipped
            assert motion.num_frames >= 1
            _check_against_usdskel(stage, b.skeleton_path, b.skeleton.parents, b.skeleton.height(), motion.times,
                                   motion.rotations, motion.translations, motion.scales, where)
        else:
            # rest-only skeleton: FK of the rest transforms is the pose UsdSkel reports at default time
            r, t, s = decompose_matrices(b.skeleton.rest_transforms)
            _check_against_usdskel(stage, b.skeleton_path, b.skeleton.parents, b.skeleton.height(),
                                   [Usd.TimeCode.Default().GetValue()], r[None], t[None], s[None], where)


def test_fk_with_scales_and_several_roots_matches_usdskel():
    """A tiny in-memory skeleton: two roots, non-uniform and mirrored scales."""
    from pxr import Gf, Usd, UsdSkel, Vt

    rng = np.random.default_rng(3)
    stage = Usd.Stage.CreateInMemory()
    UsdSkel.Root.Define(stage, "/Root")
    skel = UsdSkel.Skeleton.Define(stage, "/Root/Skel")
    joints = ["A", "A/B", "A/B/C", "D", "D/E", "A/F"]
    parents = np.array([-1, 0, 1, -1, 3, 0])
    rest = [Gf.Matrix4d(1.0).SetTranslateOnly(Gf.Vec3d(*rng.normal(size=3))) for _ in joints]
    skel.CreateJointsAttr(joints)
    skel.CreateRestTransformsAttr(Vt.Matrix4dArray(rest))
    skel.CreateBindTransformsAttr(Vt.Matrix4dArray([Gf.Matrix4d(1.0)] * len(joints)))
    anim = UsdSkel.Animation.Define(stage, "/Root/Skel/Anim")
    anim.CreateJointsAttr(joints)
    UsdSkel.BindingAPI.Apply(skel.GetPrim()).CreateAnimationSourceRel().SetTargets([anim.GetPath()])
    n_f, n_j = 4, len(joints)
    rot = rng.normal(size=(n_f, n_j, 4))
    rot /= np.linalg.norm(rot, axis=-1, keepdims=True)
    rot = rot.astype(np.float32).astype(np.float64)
    trans = rng.normal(size=(n_f, n_j, 3)).astype(np.float32).astype(np.float64)
    # exactly representable in half precision (UsdSkel stores scales as half3)
    scl = rng.choice([0.5, 0.75, 1.25, 2.0, -1.0, -1.5], size=(n_f, n_j, 3))
    for f in range(n_f):
        anim.CreateRotationsAttr().Set(Vt.QuatfArray.FromNumpy(rot[f].astype(np.float32)), f)
        anim.CreateTranslationsAttr().Set(Vt.Vec3fArray.FromNumpy(trans[f].astype(np.float32)), f)
        anim.CreateScalesAttr().Set(Vt.Vec3hArray.FromNumpy(scl[f].astype(np.float16)), f)
    assert not np.allclose(scl, 1.0)
    _check_against_usdskel(stage, "/Root/Skel", parents, 1.0, np.arange(n_f, dtype=float), rot, trans, scl,
                           "in-memory")


# --- FK against the numpy reference -------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", PRECISIONS, ids=lambda d: d.__name__)
def test_fk_matches_numpy_reference(device, dtype):
    rng = np.random.default_rng(1)
    n_j = 40
    # several roots, random tree, parent-first order
    parents = np.array([-1 if j in (0, 7, 23) else int(rng.integers(0, j)) for j in range(n_j)])
    _, rot, trans, scl = _random_case(rng, n_frames=50, parents=parents)
    ref = kinematics.forward_kinematics(parents, rot, trans, scl)
    out = fk.forward_kinematics(parents, rot, trans, scl, device=device, dtype=dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert np.abs(out - ref).max() <= tol * np.abs(ref).max()
    no_scale = fk.forward_kinematics(parents, rot, trans, device=device, dtype=dtype)
    assert np.abs(no_scale - kinematics.forward_kinematics(parents, rot, trans)).max() <= tol * np.abs(ref).max()


def test_fk_rejects_bad_input():
    rng = np.random.default_rng(0)
    parents, rot, trans, _ = _random_case(rng)
    with pytest.raises(ValueError, match="parent"):
        fk.forward_kinematics(np.array([1, -1, 0, 1, -1, 4, 5, 0, 2]), rot, trans)
    with pytest.raises(ValueError, match="rotations"):
        fk.forward_kinematics(parents, rot[:, :3], trans)
    with pytest.raises(TypeError, match="float32 or float64"):
        fk.forward_kinematics(parents, rot, trans, dtype=np.int32)


# --- gradients against finite differences (float64) ---------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_fk_backward_matches_finite_differences(device):
    rng = np.random.default_rng(2)
    parents, rot, trans, scl = _random_case(rng, n_frames=3)
    g_pos = rng.normal(size=trans.shape)
    g_lin = rng.normal(size=trans.shape + (3,))

    def objective(r, t, s):
        m = kinematics.forward_kinematics(parents, r, t, s)
        return np.sum(m[..., 3, :3] * g_pos) + np.sum(m[..., :3, :3] * g_lin)

    gr, gt, gs = fk.forward_kinematics_vjp(parents, rot, trans, scl, g_pos, g_lin, device=device)
    _assert_grad_close(gr, _central_diff(lambda x: objective(x, trans, scl), rot))
    _assert_grad_close(gt, _central_diff(lambda x: objective(rot, x, scl), trans))
    _assert_grad_close(gs, _central_diff(lambda x: objective(rot, trans, x), scl))
    # normalisation inside the kernel: the gradient has no component along q
    assert np.abs(np.sum(gr * rot, axis=-1)).max() <= 1e-9 * np.abs(gr).max()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", PRECISIONS, ids=lambda d: d.__name__)
def test_hand_written_adjoint_equals_warp_generated(device, dtype):
    """Two independent derivations of the FK backward agree (Warp's own runs its loop in reverse)."""
    rng = np.random.default_rng(7)
    parents = np.array([-1 if j in (0, 11) else int(rng.integers(0, j)) for j in range(30)])
    _, rot, trans, scl = _random_case(rng, n_frames=20, parents=parents)
    g_pos = rng.normal(size=trans.shape)
    g_lin = rng.normal(size=trans.shape + (3,))
    manual = fk.forward_kinematics_vjp(parents, rot, trans, scl, g_pos, g_lin, device=device, dtype=dtype)
    warp_own = fk.forward_kinematics_vjp(parents, rot, trans, scl, g_pos, g_lin, device=device, dtype=dtype,
                                         backward="warp")
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for a, b in zip(manual, warp_own):
        assert np.abs(a - b).max() <= tol * np.abs(b).max()


def _project(cameras, positions):
    x = np.einsum("fij,fkj->fki", cameras[:, :, :3], positions) + cameras[:, None, :, 3]
    return x[..., :2] / x[..., 2:]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("projected", [False, True], ids=["3d", "projected"])
def test_joint_loss_matches_reference_and_finite_differences(device, projected):
    rng = np.random.default_rng(4)
    parents, rot, trans, scl = _random_case(rng, n_frames=3)
    n_f, n_j = trans.shape[:2]
    weights = rng.uniform(0.1, 2.0, size=(n_f, n_j))
    cameras = None
    if projected:
        k = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
        cameras = np.stack([k @ np.hstack([np.eye(3), [[0.1 * f], [0.2], [12.0]]]) for f in range(n_f)])
        targets = rng.normal(size=(n_f, n_j, 2)) * 40 + [320, 240]
    else:
        targets = rng.normal(size=(n_f, n_j, 3))

    def loss_ref(r, t, s):
        pos = kinematics.forward_kinematics(parents, r, t, s)[..., 3, :3]
        x = pos if cameras is None else _project(cameras, pos)
        return np.sum(weights * np.sum((x - targets) ** 2, axis=-1), axis=-1)

    out = joint_loss(parents, rot, trans, targets, weights, scl, cameras=cameras, device=device)
    np.testing.assert_allclose(out.per_frame, loss_ref(rot, trans, scl), rtol=1e-10)
    assert out.loss == pytest.approx(loss_ref(rot, trans, scl).sum(), rel=1e-10)
    total = lambda r, t, s: loss_ref(r, t, s).sum()
    _assert_grad_close(out.grad_rotations, _central_diff(lambda x: total(x, trans, scl), rot))
    _assert_grad_close(out.grad_translations, _central_diff(lambda x: total(rot, x, scl), trans))
    _assert_grad_close(out.grad_scales, _central_diff(lambda x: total(rot, trans, x), scl))


@pytest.mark.parametrize("device", DEVICES)
def test_joint_loss_weights_and_cameras_broadcast(device):
    rng = np.random.default_rng(5)
    parents, rot, trans, _ = _random_case(rng, n_frames=2)
    n_f, n_j = trans.shape[:2]
    targets = rng.normal(size=(n_f, n_j, 3))
    w = rng.uniform(size=n_j)
    per_joint = joint_loss(parents, rot, trans, targets, w, grad=False, device=device)
    full = joint_loss(parents, rot, trans, targets, np.tile(w, (n_f, 1)), grad=False, device=device)
    np.testing.assert_allclose(per_joint.per_frame, full.per_frame, rtol=1e-12)
    assert per_joint.grad_rotations is None
    # one camera for every frame; a joint behind the camera (depth <= near) is ignored
    cam = np.hstack([np.eye(3), [[0.0], [0.0], [-1e3]]])  # everything is behind this camera
    behind = joint_loss(parents, rot, trans, targets[..., :2], cameras=cam, device=device)
    assert behind.loss == 0.0 and not behind.grad_translations.any()
    with pytest.raises(ValueError, match="weights"):
        joint_loss(parents, rot, trans, targets, np.ones(n_j + 1), device=device)
    with pytest.raises(ValueError, match="targets"):
        joint_loss(parents, rot, trans, targets[..., :2], device=device)


# --- torch bridge --------------------------------------------------------------------------------

torch = pytest.importorskip("torch")
from anymole_usd.kernels import torch_ops

TORCH_DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and any(d.startswith("cuda") for d in DEVICES)
                           else [])


def _torch_case(device, dtype, n_frames=3, seed=6):
    rng = np.random.default_rng(seed)
    parents, rot, trans, scl = _random_case(rng, n_frames=n_frames)
    mk = lambda a: torch.tensor(a, dtype=dtype, device=device, requires_grad=True)
    return parents, mk(rot), mk(trans), mk(scl), rng


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_fk_values_and_gradcheck_float64(device):
    parents, rot, trans, scl, rng = _torch_case(device, torch.float64)
    pos, lin = torch_ops.forward_kinematics(parents, rot, trans, scl)
    assert pos.device.type == device and pos.shape == trans.shape and lin.shape == trans.shape + (3,)
    ref = kinematics.forward_kinematics(parents, *(x.detach().cpu().numpy() for x in (rot, trans, scl)))
    np.testing.assert_allclose(pos.detach().cpu().numpy(), ref[..., 3, :3], atol=1e-12)
    np.testing.assert_allclose(lin.detach().cpu().numpy(), ref[..., :3, :3], atol=1e-12)

    assert torch.autograd.gradcheck(lambda r, t, s: torch_ops.forward_kinematics(parents, r, t, s), (rot, trans, scl))
    assert torch.autograd.gradcheck(lambda r, t: torch_ops.forward_kinematics(parents, r, t), (rot, trans))
    n_f, n_j = trans.shape[:2]
    targets = torch.tensor(rng.normal(size=(n_f, n_j, 3)), device=device)
    weights = torch.tensor(rng.uniform(size=n_j), device=device)
    loss = lambda r, t: torch_ops.joint_loss(torch_ops.forward_kinematics(parents, r, t)[0], targets, weights)
    assert torch.autograd.gradcheck(loss, (rot, trans))
    k = torch.tensor([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]], dtype=torch.float64)
    cam = (k @ torch.tensor([[1.0, 0, 0, 0.1], [0, 1, 0, 0.2], [0, 0, 1, 12.0]], dtype=torch.float64)).to(device)
    pix = torch.tensor(rng.normal(size=(n_f, n_j, 2)) * 40 + [320, 240], device=device)
    assert torch.autograd.gradcheck(
        lambda r, t: torch_ops.joint_loss(torch_ops.forward_kinematics(parents, r, t)[0], pix, cameras=cam,
                                          reduction="none"),
        (rot, trans),
    )


@pytest.mark.filterwarnings("ignore:Input #.* is not a double precision")
@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_float32_gradients(device):
    """float32 through the bridge.

    torch.autograd.gradcheck in float32 needs a large step: with eps=1e-3 the
    central difference carries a rounding error of about ulp(loss)/eps ~
    1e-7 * |loss| / 1e-3 = 1e-4 * |loss| (loss ~ 10 here) and a truncation
    error of eps^2 * |f'''| ~ 1e-5, so atol/rtol of 1e-2 is the honest bound.
    The precise check compares the float32 gradients with the float64 ones
    (themselves checked against finite differences above): they differ only
    by float32 rounding, ~1e-6 relative.
    """
    parents, rot, trans, _, rng = _torch_case(device, torch.float32)
    n_f, n_j = trans.shape[:2]
    targets = torch.tensor(rng.normal(size=(n_f, n_j, 3)), dtype=torch.float32, device=device)

    def loss(r, t):
        return torch_ops.joint_loss(torch_ops.forward_kinematics(parents, r, t)[0], targets, reduction="sum")

    assert torch.autograd.gradcheck(loss, (rot, trans), eps=1e-3, atol=1e-2, rtol=1e-2)
    g32 = torch.autograd.grad(loss(rot, trans), (rot, trans))
    r64, t64 = (x.detach().double().requires_grad_() for x in (rot, trans))
    g64 = torch.autograd.grad(
        torch_ops.joint_loss(torch_ops.forward_kinematics(parents, r64, t64)[0], targets.double()), (r64, t64)
    )
    for a, b in zip(g32, g64):
        assert a.dtype == torch.float32
        assert (a.double() - b).abs().max() <= 1e-5 * b.abs().max()


def test_torch_root_translation_gradient():
    """d(sum of positions)/d(root translation) = number of joints under that root (identity linear)."""
    parents = np.array([-1, 0, 1, -1, 3])
    rot = torch.zeros((2, 5, 4), dtype=torch.float64)
    rot[..., 3] = 1.0
    rot.requires_grad_()
    trans = torch.randn((2, 5, 3), dtype=torch.float64, requires_grad=True)
    pos, _ = torch_ops.forward_kinematics(parents, rot, trans)
    pos.sum().backward()
    np.testing.assert_allclose(trans.grad[:, 0].numpy(), 3.0)
    np.testing.assert_allclose(trans.grad[:, 3].numpy(), 2.0)
    np.testing.assert_allclose(trans.grad[:, 2].numpy(), 1.0)


def test_torch_backward_leaves_incoming_gradients_alone():
    """The adjoint accumulates in place, so it must work on copies of torch's grad_output."""
    parents, rot, trans, _, _ = _torch_case("cpu", torch.float64)
    pos, lin = torch_ops.forward_kinematics(parents, rot, trans)
    g_pos, g_lin = torch.randn_like(pos), torch.randn_like(lin)
    keep = g_pos.clone(), g_lin.clone()
    first = torch.autograd.grad((pos, lin), (rot, trans), (g_pos, g_lin), retain_graph=True)
    assert torch.equal(g_pos, keep[0]) and torch.equal(g_lin, keep[1])
    second = torch.autograd.grad((pos, lin), (rot, trans), (g_pos, g_lin))  # retained graph: same answer
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_torch_rejects_mismatched_shapes():
    parents, rot, trans, _, _ = _torch_case("cpu", torch.float32)
    with pytest.raises(ValueError, match="expected rotations"):
        torch_ops.forward_kinematics(parents, rot, trans[:-1])
    with pytest.raises(ValueError, match="expected rotations"):
        torch_ops.forward_kinematics(parents[:-1], rot, trans)
    with pytest.raises(ValueError, match="targets"):
        torch_ops.joint_loss(trans, trans[..., :2])


def test_torch_inplace_change_before_backward_raises():
    parents, rot, trans, _, _ = _torch_case("cpu", torch.float64)
    pos, _ = torch_ops.forward_kinematics(parents, rot, trans)
    pos.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        pos.sum().backward()


def test_import_does_not_load_warp_or_torch():
    code = (
        "import sys, anymole_usd, anymole_usd.kernels; "
        "bad = [m for m in ('warp', 'torch') if m in sys.modules]; "
        "sys.exit(f'loaded {bad}' if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
