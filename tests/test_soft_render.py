"""Differentiable renderer: hard silhouettes agree with the ray caster, gradients agree with finite differences."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anymole_usd.plugins.render import Renderer, load_scene
from anymole_usd.plugins.render.soft import SoftRenderer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def torch_devices():
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def cesium(data_dir):
    scene = load_scene(data_dir / "usd" / "CesiumMan.usdz")
    return scene.character, scene.motion


@pytest.fixture(scope="module")
def bvh_proxy(cmu_proxy):
    return cmu_proxy(slice(0, 600, 200))


def _unit(ch) -> float:
    """Metres per skeleton unit."""
    return float(np.cbrt(abs(np.linalg.det(ch.skel_to_world[:3, :3]))))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a & b).sum((-1, -2)) / np.maximum((a | b).sum((-1, -2)), 1)


@pytest.mark.parametrize("which", ["cesium", "bvh_proxy"])
@pytest.mark.parametrize("device", torch_devices())
def test_hard_silhouette_matches_ray_cast(request, which, device):
    ch, motion = request.getfixturevalue(which)
    motion = motion.select(np.linspace(0, motion.num_frames - 1, 3).astype(int))
    renderer = Renderer(ch, ground=False)
    ref = renderer.render(motion, size=(96, 96))
    soft = SoftRenderer(ch, ref.cameras, device=device)
    out = soft.render(torch.tensor(motion.rotations, dtype=torch.float32, device=device),
                      torch.tensor(motion.translations, dtype=torch.float32, device=device))
    iou = _iou(out.hard_masks().cpu().numpy(), ref.masks)
    assert iou.shape == (4, 3) and iou.min() > 0.95, iou
    # same cameras, same projection of the joints
    assert np.abs(out.joints_px.cpu().numpy() - ref.joints.pixels).max() < 1e-2
    # soft image: character colours inside, the ray-caster's background outside
    img = out.images.detach().cpu().numpy()
    assert img.shape == (4, 3, 96, 96, 3) and 0 <= img.min() and img.max() <= 1
    bg = ~ref.masks
    assert np.abs(img[bg] * 255 - ref.images[bg]).mean() < 2.0


@pytest.mark.parametrize("device", torch_devices())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_warp_pair_kernel_matches_torch_reference(cesium, device, dtype):
    """The fused Warp kernel and its hand-written adjoint against the plain torch expressions."""
    from anymole_usd.plugins.render import soft as S

    ch, motion = cesium
    motion = motion.select(np.array([7]))
    ref = Renderer(ch, ground=False).render(motion, size=(40, 40), views=("front", "right"))
    sr = SoftRenderer(ch, ref.cameras, dtype=dtype, device=device)
    with torch.no_grad():
        verts, _ = sr.pose(torch.tensor(motion.rotations, device=device), torch.tensor(motion.translations, device=device))
        uv, z = sr.project(verts)
    tri = uv[:, :, sr.faces].flatten(0, 1).clone().requires_grad_(True)
    tz = z[:, :, sr.faces].flatten(0, 1).clone().requires_grad_(True)
    bi, ti, px, py = S._pairs(tri.detach(), tz.detach(), 40, 40, sr.near, 2)
    p = torch.stack([px, py], -1).to(dtype) + 0.5
    s_ref, z_ref = S._pair_terms(tri[bi, ti], tz[bi, ti], p, 0.5)
    gen = torch.Generator(device=device).manual_seed(0)
    ws = torch.randn(s_ref.shape, generator=gen, dtype=dtype, device=device)
    wz = torch.randn(z_ref.shape, generator=gen, dtype=dtype, device=device)
    g_ref = torch.autograd.grad((s_ref * ws).sum() + (z_ref * wz).sum(), [tri, tz])
    n_t = tri.shape[1]
    s_w, z_w = S.PairTerms.apply(tri.reshape(-1, 3, 2), tz.reshape(-1, 3), (bi * n_t + ti).int(), px.int(),
                                 py.int(), 0.5)
    g_w = torch.autograd.grad((s_w * ws).sum() + (z_w * wz).sum(), [tri, tz])
    tol = 1e-10 if dtype == torch.float64 else 2e-3
    assert torch.allclose(s_w, s_ref, rtol=tol, atol=tol) and torch.allclose(z_w, z_ref, rtol=tol, atol=tol)
    for a, b in zip(g_w, g_ref):
        assert (a - b).abs().max() <= tol * b.abs().max()


def test_soft_render_over_the_ray_cast_floor(cesium):
    """A ground backdrop from the ray caster: soft and ray-cast images then agree off the character."""
    ch, motion = cesium
    motion = motion.select(np.array([30]))
    renderer = Renderer(ch)
    ref = renderer.render(motion, size=(64, 64), views=("front", "left"))
    backdrop = renderer.background(ref.cameras, renderer.pose(motion))
    soft = SoftRenderer(ch, ref.cameras, background=backdrop.astype(np.float32) / 255)
    out = soft.render(torch.tensor(motion.rotations, dtype=torch.float32),
                      torch.tensor(motion.translations, dtype=torch.float32))
    img = out.images.numpy()[:, 0] * 255
    from scipy.ndimage import binary_dilation

    near = np.stack([binary_dilation(m, iterations=3) for m in ref.masks[:, 0]])  # soft edges reach ~2 px
    floor = (ref.parts[:, 0] == -2) & ~near
    shadowless = floor & (np.abs(ref.images[:, 0].astype(float) - backdrop).max(-1) == 0)
    assert shadowless.sum() > 1000
    assert np.abs(img[shadowless] - ref.images[:, 0][shadowless]).max() < 1.0


def test_soft_without_culling_has_the_same_silhouette(cesium):
    ch, motion = cesium
    motion = motion.select(np.array([20]))
    ref = Renderer(ch, ground=False).render(motion, size=(64, 64), views=("left",))
    rot, tr = torch.tensor(motion.rotations), torch.tensor(motion.translations)
    culled = SoftRenderer(ch, ref.cameras).render(rot, tr)
    full = SoftRenderer(ch, ref.cameras, cull_hidden=False).render(rot, tr)
    assert _iou(culled.hard_masks().numpy(), full.hard_masks().numpy()).min() > 0.99
    # sub-pixel triangles no ray hits only add soft tails along the outline
    diff = (culled.alpha - full.alpha).abs()
    assert diff.mean() < 0.01 and (diff > 0.25).float().mean() < 0.01


@pytest.mark.parametrize("which, cull", [("cesium", True), ("bvh_proxy", True), ("bvh_proxy", False)])
def test_gradients_match_finite_differences(request, which, cull):
    """Autograd through FK, skinning and the soft rasteriser equals central differences (float64).

    With culling, the visible triangle set is a ray-cast decision without a
    gradient: it is fixed at the base pose so the checked function is smooth.
    """
    ch, motion = request.getfixturevalue(which)
    motion = motion.select(np.array([1]))
    ref = Renderer(ch, ground=False).render(motion, size=(48, 48), views=("front", "left"))
    soft = SoftRenderer(ch, ref.cameras, dtype=torch.float64, cull_hidden=cull)
    rot0 = torch.tensor(motion.rotations, dtype=torch.float64)
    tr0 = torch.tensor(motion.translations, dtype=torch.float64)
    visible = soft.visible_triangles(soft.pose(rot0, tr0)[0].detach()) if cull else None
    root = int(np.flatnonzero(ch.skeleton.parents < 0)[0])
    arm = int(np.argmax(ch.sides > 0))  # a left-side joint
    with torch.no_grad():  # a target image: the same character nudged and bent
        rot_t, tr_t = rot0.clone(), tr0.clone()
        rot_t[0, arm] = rot_t[0, arm] + torch.tensor([0.15, -0.1, 0.05, 0.0], dtype=torch.float64)
        tr_t[0, root] += torch.tensor([0.03, -0.02, 0.02], dtype=torch.float64) / _unit(ch)
        target = soft.render(rot_t, tr_t).images

    def loss(rot, tr):
        return ((soft.render(rot, tr, visible=visible).images - target) ** 2).sum()

    rot, tr = rot0.clone().requires_grad_(True), tr0.clone().requires_grad_(True)
    loss(rot, tr).backward()
    checks = [("tr", (0, root, k)) for k in range(3)] + [("rot", (0, arm, k)) for k in range(3)] + [
        ("rot", (0, root, 0))]
    eps = 1e-6
    for name, idx in checks:
        base = tr0 if name == "tr" else rot0
        plus, minus = base.clone(), base.clone()
        plus[idx] += eps
        minus[idx] -= eps
        with torch.no_grad():
            if name == "tr":
                fd = (loss(rot0, plus) - loss(rot0, minus)).item() / (2 * eps)
            else:
                fd = (loss(plus, tr0) - loss(minus, tr0)).item() / (2 * eps)
        grad = (tr.grad if name == "tr" else rot.grad)[idx].item()
        assert grad == pytest.approx(fd, rel=1e-3, abs=1e-4 * max(1.0, abs(fd))), (name, idx, grad, fd)
    assert tr.grad[0, root].abs().sum() > 0 and rot.grad[0, arm].abs().sum() > 0


def test_image_loss_descent_moves_the_root_towards_the_target(cesium):
    """A few Adam steps on the image loss alone shrink a root offset (the gradients are useful)."""
    ch, motion = cesium
    motion = motion.select(np.array([10]))
    ref = Renderer(ch, ground=False).render(motion, size=(40, 40), views=("front", "left"))
    soft = SoftRenderer(ch, ref.cameras, sigma=1.0)
    rot = torch.tensor(motion.rotations, dtype=torch.float32)
    tr_true = torch.tensor(motion.translations, dtype=torch.float32)
    with torch.no_grad():
        target = soft.render(rot, tr_true).images
    offset = torch.tensor([0.04, 0.0, 0.03]) / _unit(ch)
    tr = tr_true.clone()
    tr[0, 0] += offset
    tr.requires_grad_(True)
    opt = torch.optim.Adam([tr], lr=0.006 / _unit(ch))
    start = (tr[0, 0] - tr_true[0, 0]).norm().item()
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = ((soft.render(rot, tr).images - target) ** 2).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert (tr[0, 0] - tr_true[0, 0]).norm().item() < 0.7 * start
