"""Differentiable renderer (torch): a soft rasteriser of the posed mesh, for mimicking's image loss.

The pose goes through the Warp FK kernel's torch bridge
(``anymole_usd.kernels.torch_ops.forward_kinematics``), linear blend skinning
in torch, the shared pinhole cameras, then SoftRas-style coverage: a triangle
covers a pixel centre with ``sigmoid(+-d^2 / sigma)``, ``d`` the distance to
its edges (``+`` inside). A pixel's coverage is its best-covering triangle's
(a max before the sigmoid, not SoftRas's product, whose tails add up along an
outline and fatten it), so ``alpha > 0.5`` is exactly the union of the
projected triangles: the hard silhouette is the ray caster's. Colours blend
the covering triangles with a soft z-buffer (weights ``exp(-(z - zmin) /
gamma)``). Everything is differentiable with respect to joint rotations,
translations (root position included) and scales.

Cost: a Warp ray cast of the same pose first finds the triangles visible at
some pixel (plus their one-ring), and only pixels in those triangles'
bounding boxes (plus a margin) are evaluated, grouped by box size, so the
work follows the visible area rather than pixels x triangles. The visible set
is a decision without a gradient (pass ``visible=`` to freeze it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .cameras import Cameras
from .raycast import BACKGROUND_BOTTOM, BACKGROUND_TOP


@dataclass
class SoftImages:
    images: torch.Tensor  # (V, F, H, W, 3) in [0, 1]
    alpha: torch.Tensor  # (V, F, H, W) soft silhouette
    joints_px: torch.Tensor  # (V, F, J, 2) projected joints, same cameras
    joints_depth: torch.Tensor  # (V, F, J) camera z

    def hard_masks(self) -> torch.Tensor:
        return self.alpha > 0.5


def gradient_background(height: int, width: int, views: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """(V, H, W, 3): the ray-caster's neutral background without the ground."""
    top = torch.tensor(BACKGROUND_TOP, dtype=dtype, device=device)
    bottom = torch.tensor(BACKGROUND_BOTTOM, dtype=dtype, device=device)
    h = (torch.arange(height, dtype=dtype, device=device) / height)[:, None, None]
    img = top * (1 - h) + bottom * h
    return img.expand(height, width, 3).expand(views, height, width, 3)


class SoftRenderer:
    """Differentiable images of a :class:`~.character.Character` seen by :class:`~.cameras.Cameras`.

    ``sigma`` (pixels squared) sets the width of the soft edge, ``gamma``
    (metres) the softness of the z-buffer (default 1% of the character's size).
    With ``cull_hidden`` a Warp ray cast of the same pose first finds the
    triangles visible at some pixel, and only those are rasterised softly.
    """

    def __init__(self, character, cameras: Cameras, *, sigma: float = 0.5, gamma: float | None = None,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 background: torch.Tensor | np.ndarray | None = None, cull_hidden: bool = True) -> None:
        self.character = character
        self.cull_hidden = cull_hidden
        self._caster = None
        self.cameras = cameras
        self.sigma = float(sigma)
        self.gamma = float(gamma) if gamma is not None else 0.01 * character.height()
        self.dtype, self.device = dtype, torch.device(device)

        def t(a):
            return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

        self.parents = np.asarray(character.skeleton.parents)
        self.points_h = t(np.concatenate([character.points, np.ones((len(character.points), 1))], 1))
        self.joint_indices = torch.as_tensor(character.joint_indices, dtype=torch.long, device=self.device)
        self.joint_weights = t(character.joint_weights)
        self.inv_bind = t(np.linalg.inv(character.bind_transforms))
        self.skel_to_world = t(character.skel_to_world)
        self.faces = torch.as_tensor(character.faces, dtype=torch.long, device=self.device)
        self.face_colours = t(character.part_colours()[character.face_parts])
        self.up = t(character.up)
        self.K = t(cameras.K)
        self.world_to_cam = t(cameras.world_to_cam)
        self.near = t(cameras.near)
        if background is None:
            background = gradient_background(cameras.height, cameras.width, cameras.num_views, dtype, self.device)
        self.background = t(background) if not isinstance(background, torch.Tensor) else background.to(
            dtype=dtype, device=self.device)

    # ------------------------------------------------------------------ pose
    def skel_transforms(self, rotations: torch.Tensor, translations: torch.Tensor,
                        scales: torch.Tensor | None = None) -> torch.Tensor:
        """(F, J, 4, 4) row-vector skel-space transforms through the Warp FK bridge."""
        from anymole_usd.kernels.torch_ops import forward_kinematics

        pos, lin = forward_kinematics(self.parents, rotations.to(self.dtype), translations.to(self.dtype),
                                      None if scales is None else scales.to(self.dtype))
        n_f, n_j = pos.shape[:2]
        zeros = torch.zeros((n_f, n_j, 3, 1), dtype=self.dtype, device=self.device)
        ones = torch.ones((n_f, n_j, 1, 1), dtype=self.dtype, device=self.device)
        top = torch.cat([lin, zeros], -1)
        bottom = torch.cat([pos[..., None, :], ones], -1)
        return torch.cat([top, bottom], -2)

    def pose(self, rotations, translations, scales=None) -> tuple[torch.Tensor, torch.Tensor]:
        """World vertices (F, P, 3) and joints (F, J, 3): FK then linear blend skinning."""
        skel = self.skel_transforms(rotations, translations, scales)
        joints = skel[..., 3, :3] @ self.skel_to_world[:3, :3] + self.skel_to_world[3, :3]
        mats = self.inv_bind @ skel @ self.skel_to_world  # (F, J, 4, 4)
        verts = 0.0
        for k in range(self.joint_indices.shape[1]):  # influences per point (<= 8), not points
            m = mats[:, self.joint_indices[:, k]]  # (F, P, 4, 4)
            verts = verts + self.joint_weights[None, :, k, None] * torch.einsum("pi,fpij->fpj", self.points_h, m)
        return verts[..., :3], joints

    def project(self, x: torch.Tensor, frame_indices=None) -> tuple[torch.Tensor, torch.Tensor]:
        """World points (F, N, 3) -> pixels (V, F, N, 2) and camera z (V, F, N)."""
        w2c = self.world_to_cam
        if w2c.shape[1] > 1:
            idx = torch.arange(x.shape[0]) if frame_indices is None else torch.as_tensor(frame_indices)
            w2c = w2c[:, idx]
        cam = torch.matmul(x[None], w2c[..., :3, :3].transpose(-1, -2)) + w2c[..., None, :3, 3]
        z = cam[..., 2]
        zs = torch.where(z.abs() > 1e-9, z, torch.full_like(z, 1e-9))
        k = self.K[:, None, None]
        u = k[..., 0, 0] * cam[..., 0] / zs + k[..., 0, 2]
        v = k[..., 1, 1] * cam[..., 1] / zs + k[..., 1, 2]
        return torch.stack([u, v], -1), z

    # ---------------------------------------------------------------- render
    def render(self, rotations: torch.Tensor, translations: torch.Tensor, scales: torch.Tensor | None = None, *,
               frame_indices=None, background: torch.Tensor | None = None,
               visible: torch.Tensor | None = None) -> SoftImages:
        """Soft images of the pose (F frames) from every view; differentiable in all inputs.

        ``visible`` (V*F, T) fixes the triangle set instead of ray casting it
        (see :meth:`visible_triangles`); the set itself carries no gradient.
        """
        verts, joints = self.pose(rotations, translations, scales)
        uv, z = self.project(verts, frame_indices)  # (V, F, P, 2), (V, F, P)
        n_v, n_f = uv.shape[:2]
        tri_uv = uv[:, :, self.faces]  # (V, F, T, 3, 2)
        tri_z = z[:, :, self.faces]  # (V, F, T, 3)
        colours = self.face_colours[None, None] * self._shading(verts, frame_indices)[..., None]
        mask = visible
        if mask is None and self.cull_hidden:
            mask = self.visible_triangles(verts.detach(), frame_indices)
        fg, alpha = soft_rasterise(tri_uv.flatten(0, 1), tri_z.flatten(0, 1), colours.flatten(0, 1),
                                   self.cameras.height, self.cameras.width, self.sigma, self.gamma,
                                   self.near.repeat_interleave(n_f), mask)
        fg = fg.view(n_v, n_f, *fg.shape[1:])
        alpha = alpha.view(n_v, n_f, *alpha.shape[1:])
        bg = self.background if background is None else background
        bg = bg[:, None] if bg.dim() == 4 else bg
        images = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        jpx, jz = self.project(joints, frame_indices)
        return SoftImages(images, alpha, jpx, jz)

    def visible_triangles(self, verts: torch.Tensor, frame_indices=None) -> torch.Tensor:
        """(V*F, T) bool: triangles the ray caster hits at some pixel centre and their neighbours (no gradient)."""
        from .raycast import RayCaster

        if self._caster is None:
            dev = "cpu" if self.device.type == "cpu" else f"cuda:{self.device.index or 0}"
            self._caster = RayCaster(self.character, dev, ground=False, shadows=False)
        n_f, n_t = verts.shape[0], len(self.character.faces)
        idx = np.arange(n_f) if frame_indices is None else np.asarray(frame_indices)
        frames = self._caster.frames(verts.cpu().numpy().astype(np.float32), self.cameras, frame_indices=idx)
        hit = np.stack([f.faces for f in frames], 1).reshape(-1, self.cameras.height * self.cameras.width)
        mask = np.zeros((hit.shape[0], n_t + 1), dtype=bool)
        mask[np.arange(hit.shape[0])[:, None], hit + 1] = True
        # Grow by one ring (triangles sharing a corner with a hit one): the outline's grazing
        # triangles that fall between pixel centres keep their soft edges, and a triangle that
        # a float32 ray misses by a hair does not drop out and make the image jump.
        b, t = np.nonzero(mask[:, 1:])
        corners = np.zeros((hit.shape[0], len(self.character.points)), dtype=bool)
        corners[b[:, None], self.character.faces[t]] = True
        mask = corners[:, self.character.faces].any(-1)
        return torch.as_tensor(mask, device=self.device)

    def _shading(self, verts: torch.Tensor, frame_indices=None) -> torch.Tensor:
        """(V, F, T) the ray-caster's two-sided shading, per triangle at its centroid."""
        tri = verts[:, self.faces]  # (F, T, 3, 3)
        n = torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
        n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        centroid = tri.mean(2)
        w2c = self.world_to_cam
        if w2c.shape[1] > 1:
            idx = torch.arange(verts.shape[0]) if frame_indices is None else torch.as_tensor(frame_indices)
            w2c = w2c[:, idx]
        r, tr = w2c[..., :3, :3], w2c[..., :3, 3]
        eye = -torch.einsum("vfji,vfj->vfi", r, tr)  # camera centres (V, F, 3)
        d = centroid[None] - eye[:, :, None]
        d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        nd = (n[None] * d).sum(-1)
        n_up = (n @ self.up)[None] * torch.where(nd > 0, -1.0, 1.0).to(self.dtype)
        return 0.28 + 0.52 * nd.abs() + 0.20 * n_up.clamp_min(0.0)


def _edge_distance2(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ab = b - a
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
    closest = a + t.clamp(0, 1)[..., None] * ab
    return ((p - closest) ** 2).sum(-1)


def _cross2(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _pair_terms(tri: torch.Tensor, tri_z: torch.Tensor, p: torch.Tensor, sigma: float):
    """Per (triangle, pixel) pair: signed squared edge distance / sigma (+ inside) and interpolated depth."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    d2 = torch.minimum(torch.minimum(_edge_distance2(p, a, b), _edge_distance2(p, b, c)), _edge_distance2(p, c, a))
    area = _cross2(b - a, c - a)
    w = torch.stack([_cross2(c - b, p - b), _cross2(a - c, p - c), _cross2(b - a, p - a)], -1)
    s = torch.sign(area)[:, None]
    inside = ((w * s) >= 0).all(-1) & (area.abs() > 1e-12)
    signed = torch.where(inside, d2, -d2) / sigma
    # perspective-correct depth from clamped barycentrics (pixels just outside use the nearest edge's)
    bary = (w / torch.where(area.abs() > 1e-12, area, torch.ones_like(area))[:, None]).clamp_min(0.0)
    bary = bary / bary.sum(-1, keepdim=True).clamp_min(1e-12)
    z = 1.0 / (bary / tri_z).sum(-1)
    return signed, z


class PairTerms(torch.autograd.Function):
    """(tri (BT, 3, 2), tri_z (BT, 3), pair triangle, px, py) -> (signed, depth) per pair, in one Warp kernel.

    The same maths as :func:`_pair_terms` (the torch reference) and a
    hand-written adjoint kernel: far fewer passes over memory than ~60 torch
    element-wise operations and their backward.
    """

    @staticmethod
    def forward(ctx, tri, tri_z, tri_index, px, py, sigma: float):
        import warp as wp

        from .soft_kernels import soft_pair_terms

        tri, tri_z = tri.detach().contiguous(), tri_z.detach().contiguous()
        signed = torch.empty(len(tri_index), dtype=tri.dtype, device=tri.device)
        depth = torch.empty_like(signed)
        arrays = _warp_pair_arrays(tri, tri_z, tri_index, px, py, signed, depth)
        scalar = wp.float64 if tri.dtype == torch.float64 else wp.float32
        with _warp_stream(tri.device):
            wp.launch(soft_pair_terms, dim=len(tri_index), inputs=[*arrays[:5], scalar(1.0 / sigma)],
                      outputs=arrays[5:], device=arrays[0].device)
        ctx.save_for_backward(tri, tri_z, tri_index, px, py, signed, depth)
        ctx.sigma = sigma
        return signed, depth

    @staticmethod
    def backward(ctx, grad_signed, grad_depth):
        import warp as wp

        from .soft_kernels import soft_pair_terms_adjoint

        tri, tri_z, tri_index, px, py, signed, depth = ctx.saved_tensors
        adj_tri, adj_z = torch.zeros_like(tri), torch.zeros_like(tri_z)
        g_s = torch.zeros_like(signed) if grad_signed is None else grad_signed.contiguous()
        g_d = torch.zeros_like(depth) if grad_depth is None else grad_depth.contiguous()
        fwd = _warp_pair_arrays(tri, tri_z, tri_index, px, py, signed, depth)
        adj = _warp_pair_arrays(adj_tri, adj_z, tri_index, px, py, g_s, g_d)
        scalar = wp.float64 if tri.dtype == torch.float64 else wp.float32
        with _warp_stream(tri.device):
            wp.launch(soft_pair_terms_adjoint, dim=len(tri_index), device=fwd[0].device,
                      inputs=[*fwd[:5], scalar(1.0 / ctx.sigma), *fwd[5:], adj[5], adj[6], adj[0], adj[1]])
        return adj_tri, adj_z, None, None, None, None


def _warp_pair_arrays(tri, tri_z, tri_index, px, py, signed, depth):
    import warp as wp

    vec2 = wp.vec2d if tri.dtype == torch.float64 else wp.vec2f
    scalar = wp.float64 if tri.dtype == torch.float64 else wp.float32
    def wrap(t, dtype):
        return wp.from_torch(t, dtype=dtype, requires_grad=False)

    return (wrap(tri, vec2), wrap(tri_z, scalar), wrap(tri_index, wp.int32), wrap(px, wp.int32), wrap(py, wp.int32),
            wrap(signed, scalar), wrap(depth, scalar))


def _warp_stream(device: torch.device):
    import contextlib

    import warp as wp

    if device.type == "cuda":
        return wp.ScopedStream(wp.stream_from_torch(device))
    return contextlib.nullcontext()


def _pairs(tri_uv: torch.Tensor, tri_z: torch.Tensor, height: int, width: int, near: torch.Tensor, margin: int,
           tri_mask: torch.Tensor | None = None):
    """(image, triangle, x, y) for every pixel in each triangle's box plus ``margin``; boxes grouped by size."""
    device = tri_uv.device
    lo = torch.floor(tri_uv.min(2).values - 0.5).long() - margin
    hi = torch.ceil(tri_uv.max(2).values - 0.5).long() + margin
    lo[..., 0].clamp_(0, width - 1)
    lo[..., 1].clamp_(0, height - 1)
    hi[..., 0].clamp_(max=width - 1)
    hi[..., 1].clamp_(max=height - 1)
    ok = (tri_z.min(-1).values > near[:, None]) & (hi[..., 0] >= lo[..., 0]) & (hi[..., 1] >= lo[..., 1])
    if tri_mask is not None:
        ok &= tri_mask
    b_idx, t_idx = torch.nonzero(ok, as_tuple=True)
    lo, hi = lo[b_idx, t_idx], hi[b_idx, t_idx]
    ext = (hi - lo + 1).max(-1).values
    out_pair, out_x, out_y = [], [], []
    size = 1
    while size < 2 * max(height, width):  # one vectorised pass per box size 1, 2, 4, 8, ...
        sel = torch.nonzero((ext <= size) & (ext > size // 2), as_tuple=True)[0]
        if len(sel):
            off = torch.arange(size, device=device)
            x = lo[sel, 0][:, None, None] + off[None, None, :]
            y = lo[sel, 1][:, None, None] + off[None, :, None]
            keep = (x <= hi[sel, 0][:, None, None]) & (y <= hi[sel, 1][:, None, None])
            k, yy, xx = torch.nonzero(keep, as_tuple=True)
            out_pair.append(sel[k])
            out_x.append(x[k, 0, xx])
            out_y.append(y[k, yy, 0])
        size *= 2
    if not out_pair:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return empty, empty, empty, empty
    pair = torch.cat(out_pair)
    return b_idx[pair], t_idx[pair], torch.cat(out_x), torch.cat(out_y)


def soft_rasterise(tri_uv: torch.Tensor, tri_z: torch.Tensor, colours: torch.Tensor, height: int, width: int,
                   sigma: float, gamma: float, near: torch.Tensor, tri_mask: torch.Tensor | None = None,
                   use_warp: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 3, 2) pixel triangles, (B, T, 3) depth, (B, T, 3) colour -> foreground (B, H, W, 3), alpha (B, H, W).

    Pixel centres sit at +0.5, as in the ray caster; triangles with a corner
    behind ``near`` (per image) are dropped, and so are those ``tri_mask``
    (B, T) leaves out (hidden ones: the union of the visible triangles covers
    exactly the same pixel centres). ``use_warp`` evaluates the per-pair terms in
    one Warp kernel (:class:`PairTerms`), else in torch (the reference).
    """
    n_b = tri_uv.shape[0]
    dtype, device = tri_uv.dtype, tri_uv.device
    n_pix = n_b * height * width
    margin = math.ceil(math.sqrt(8.0 * sigma))  # sigmoid(-8) ~ 3e-4 beyond it
    with torch.no_grad():
        bi, ti, px, py = _pairs(tri_uv.detach(), tri_z.detach(), height, width, near, margin, tri_mask)
        flat = (bi * height + py) * width + px
    if use_warp:
        n_t = tri_uv.shape[1]
        signed, z = PairTerms.apply(tri_uv.reshape(-1, 3, 2), tri_z.reshape(-1, 3), (bi * n_t + ti).to(torch.int32),
                                    px.to(torch.int32), py.to(torch.int32), sigma)
    else:
        p = torch.stack([px, py], -1).to(dtype) + 0.5
        signed, z = _pair_terms(tri_uv[bi, ti], tri_z[bi, ti], p, sigma)
    # The union's coverage comes from the best-covering triangle (a max, not a product of
    # 1 - D): the tails of the many triangles meeting at a silhouette would otherwise add
    # up and fatten it. So alpha > 0.5 exactly where some triangle holds the pixel centre.
    best = torch.full((n_pix,), -1e4, dtype=dtype, device=device).scatter_reduce(0, flat, signed, "amax")
    alpha = torch.sigmoid(best)
    # Soft z-buffer: weights exp(-(z - zmin) / gamma) against the nearest depth of any pair
    # at the pixel (a min over continuous terms, so the image stays continuous in the pose).
    zmin = torch.full((n_pix,), float("inf"), dtype=dtype, device=device).scatter_reduce(0, flat, z, "amin")
    weight = torch.sigmoid(signed) * torch.exp(-(z - zmin[flat]) / gamma)
    num = torch.zeros((n_pix, 3), dtype=dtype, device=device).index_add(0, flat, weight[:, None] * colours[bi, ti])
    den = torch.zeros(n_pix, dtype=dtype, device=device).index_add(0, flat, weight)
    fg = num / den.clamp_min(1e-12)[:, None]
    return fg.view(n_b, height, width, 3), alpha.view(n_b, height, width)
