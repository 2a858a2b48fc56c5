"""The estimator network: backbone features -> merger -> heatmap decoder -> soft-argmax 2D + depth MLP.

As in AnyMoLe (Sec. 3.3 and the official ``pose3d_train.py``): feature maps
are merged by light conv blocks and concatenation; a decoder of residual
blocks (zero-initialised residual branch) and 2x upsampling gives one heatmap
per joint; soft-argmax turns each heatmap into a 2D position; per joint, the
merged feature sampled at that position (``grid_sample``), the position and a
joint-index embedding (plus, our addition, an embedding of the whole 2D
skeleton) go through an MLP that predicts the joint's depth.
Positions come out in pixels of the original image; depth in the normalised
unit of :func:`~.dataset.normalised_depth`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import Backbone, ConvBNAct, ResidualBlock


def soft_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, J, h, w) logits -> expected (x, y) in cell units (cell centres at +0.5), and the probabilities."""
    b, j, h, w = heatmaps.shape
    probs = F.softmax(heatmaps.reshape(b, j, h * w).float(), dim=-1).reshape(b, j, h, w)
    xs = torch.arange(w, dtype=probs.dtype, device=probs.device) + 0.5
    ys = torch.arange(h, dtype=probs.dtype, device=probs.device) + 0.5
    x = (probs.sum(2) * xs).sum(-1)
    y = (probs.sum(3) * ys).sum(-1)
    return torch.stack([x, y], -1), probs


class FeatureMerger(nn.Module):
    """Project each feature map with a light conv block, resize to the finest, concatenate, fuse."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        each = max(16, out_channels // len(in_channels))
        self.project = nn.ModuleList(ConvBNAct(c, each, 1) for c in in_channels)
        self.fuse = ConvBNAct(each * len(in_channels), out_channels, 3)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        parts = [p(f) for p, f in zip(self.project, feats)]
        parts = [x if x.shape[-2:] == size else F.interpolate(x, size=size, mode="bilinear", align_corners=False)
                 for x in parts]
        return self.fuse(torch.cat(parts, 1))


class HeatmapDecoder(nn.Module):
    """Residual blocks and 2x upsampling from the merged features to one heatmap per joint."""

    def __init__(self, in_channels: int, num_joints: int, upsamples: int, channels: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [ResidualBlock(in_channels)]
        c = in_channels
        for i in range(upsamples):
            nxt = max(channels, in_channels // 2 ** (i + 1))
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), ConvBNAct(c, nxt, 3),
                       ResidualBlock(nxt)]
            c = nxt
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, num_joints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class DepthHead(nn.Module):
    """Per joint: sampled feature + 2D position + joint-index embedding -> depth (one MLP for all joints).

    With ``pose_context`` (our addition) every joint's input also carries an
    embedding of the whole 2D skeleton: a skeleton's apparent size and shape
    tell how far away it is, which the local feature alone does not (on a
    clip walking towards the camera the mean depth error on held-out frames
    went from 0.36 m to 0.27 m; see docs/benchmarks.md).
    """

    def __init__(self, feat_channels: int, num_joints: int, embed_dim: int = 16, hidden: int = 256,
                 pose_context: bool = True, pose_dim: int = 64, normalise_pose: bool = False,
                 outputs: int = 1) -> None:
        super().__init__()
        # Positions about the skeleton's 2D centroid in units of its 2D spread: the same pose
        # reads the same wherever the character stands and however near it is (relative depth).
        self.normalise_pose = normalise_pose
        self.embed = nn.Embedding(num_joints, embed_dim)
        self.pose = None
        if pose_context:  # the whole 2D skeleton: its apparent size and shape tell how far away it is
            self.pose = nn.Sequential(nn.Linear(2 * num_joints, 128), nn.SiLU(), nn.Linear(128, pose_dim), nn.SiLU())
        extra = pose_dim if pose_context else 0
        self.mlp = nn.Sequential(
            nn.Linear(feat_channels + extra + 2 + embed_dim, hidden), nn.LayerNorm(hidden), nn.SiLU(),
            nn.Linear(hidden, hidden // 4), nn.LayerNorm(hidden // 4), nn.SiLU(),
            nn.Linear(hidden // 4, outputs),
        )

    def forward(self, feats: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """``feats`` (B, C, h, w); ``grid`` (B, J, 2) positions in [-1, 1] (align_corners=False) -> (B, J)."""
        b, j, _ = grid.shape
        sampled = F.grid_sample(feats, grid[:, None], mode="bilinear", padding_mode="border", align_corners=False)
        sampled = sampled[:, :, 0].transpose(1, 2)  # (B, J, C)
        emb = self.embed.weight[None].expand(b, j, -1)
        pos = grid
        if self.normalise_pose:
            pos = grid - grid.mean(1, keepdim=True)
            pos = pos / pos.pow(2).sum(-1).mean(1, keepdim=True).sqrt()[..., None].clamp_min(1e-3)
        parts = [sampled, pos, emb]
        if self.pose is not None:
            parts.append(self.pose(pos.reshape(b, 2 * j))[:, None].expand(b, j, -1))
        out = self.mlp(torch.cat(parts, -1))
        return out[..., 0] if out.shape[-1] == 1 else out


class EstimatorNet(nn.Module):
    """Images (B, 3, h, w) in [0, 1] -> joints2d (B, J, 2) pixels of ``image_size`` and depth (B, J)."""

    def __init__(self, backbone: Backbone, num_joints: int, *, merge_channels: int = 96,
                 decoder_channels: int = 48, heatmap_stride: int = 4, embed_dim: int = 16,
                 pose_context: bool = True, normalise_pose: bool = False, depth_outputs: int = 1) -> None:
        super().__init__()
        if num_joints < 1:
            raise ValueError("the estimator needs at least one joint")
        self.backbone = backbone
        self.num_joints = num_joints
        self.merger = FeatureMerger(backbone.channels, merge_channels)
        finest = backbone.strides[0]
        ups = max(0, math.ceil(math.log2(finest / heatmap_stride))) if finest > heatmap_stride else 0
        self.decoder = HeatmapDecoder(merge_channels, num_joints, ups, decoder_channels)
        self.depth = DepthHead(merge_channels, num_joints, embed_dim, pose_context=pose_context,
                               normalise_pose=normalise_pose, outputs=depth_outputs)

    def forward(self, images: torch.Tensor, image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        big_h, big_w = image_size
        merged = self.merger(self.backbone(images))
        heatmaps = self.decoder(merged)
        cells, _ = soft_argmax(heatmaps)
        hh, hw = heatmaps.shape[-2:]
        scale = torch.tensor([big_w / hw, big_h / hh], dtype=cells.dtype, device=cells.device)
        joints = cells * scale
        # Depth reads features where the joint is, but does not move the 2D estimate.
        grid = 2.0 * cells.detach() / torch.tensor([hw, hh], dtype=cells.dtype, device=cells.device) - 1.0
        depth = self.depth(merged, grid)
        out = {"joints2d": joints, "heatmaps": heatmaps}
        if depth.dim() == 3:  # a second depth per joint: absolute, in dataset.normalised_depth's unit
            out["depth"], out["depth_abs"] = depth[..., 0], depth[..., 1]
        else:
            out["depth"] = depth
        return out


def network_input_size(image_size: tuple[int, int], longer_side: int, multiple: int) -> tuple[int, int]:
    """(h, w) the network sees: the image scaled so its longer side is ``longer_side``, rounded to ``multiple``."""
    h, w = image_size
    s = longer_side / max(h, w)
    return (max(multiple, int(round(h * s / multiple)) * multiple),
            max(multiple, int(round(w * s / multiple)) * multiple))


def estimator_loss(out: dict[str, torch.Tensor], joints2d: torch.Tensor, depth: torch.Tensor,
                   image_height: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """MSE on (x, y, depth * H / 2), as the paper: depth in image-height units weighs like pixels."""
    half = image_height / 2.0
    pred = torch.cat([out["joints2d"], out["depth"][..., None] * half], -1)
    target = torch.cat([joints2d, depth[..., None] * half], -1)
    err = (pred - target) ** 2
    if mask is None:
        return err.mean()
    m = mask[..., None].to(err.dtype)
    return (err * m).sum() / (m.sum() * 3).clamp_min(1.0)


def heatmap_loss(heatmaps: torch.Tensor, joints2d: torch.Tensor, image_size: tuple[int, int],
                 mask: torch.Tensor | None = None, sigma: float = 1.0) -> torch.Tensor:
    """Cross-entropy of each heatmap's softmax against a Gaussian (``sigma`` cells) at the target joint.

    An optional auxiliary term: it shapes the heatmaps early, when the
    soft-argmax gradient alone is weak (a flat heatmap's expectation barely
    moves), so training needs fewer steps.
    """
    b, j, hh, hw = heatmaps.shape
    big_h, big_w = image_size
    cells = joints2d * torch.tensor([hw / big_w, hh / big_h], dtype=joints2d.dtype, device=joints2d.device)
    xs = torch.arange(hw, dtype=heatmaps.dtype, device=heatmaps.device) + 0.5
    ys = torch.arange(hh, dtype=heatmaps.dtype, device=heatmaps.device) + 0.5
    gx = -((xs[None, None] - cells[..., 0:1]) ** 2) / (2 * sigma ** 2)  # (B, J, w)
    gy = -((ys[None, None] - cells[..., 1:2]) ** 2) / (2 * sigma ** 2)  # (B, J, h)
    target = F.softmax((gy[..., :, None] + gx[..., None, :]).reshape(b, j, -1), -1)
    ce = -(target * F.log_softmax(heatmaps.reshape(b, j, -1).float(), -1)).sum(-1)  # (B, J)
    if mask is None:
        return ce.mean()
    m = mask.to(ce.dtype)
    return (ce * m).sum() / m.sum().clamp_min(1.0)
