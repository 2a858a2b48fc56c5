"""Top-down framing: the network looks at the character, not at the whole shot.

The shot's cameras are fixed and fitted around everything the character does,
so a character that walks across the set fills only a part of each render
(Bandai's walk: about 100 of 256 pixels high, 54 at the network's 128). As top-down
pose estimators do, the estimator zooms in on the character's box before
reading its joints: the box of the joints is scaled to fill ``fill`` of the
network's view (at most ``max_zoom`` times) and centred, sampling the
full-resolution render, so a small character is read at up to ``max_zoom``
times the pixels.

Prediction takes two passes: the whole image (zoom 1, no shift) gives the box,
the framed image the joints. Training shows a share of the images whole so the
first pass works, and frames the others around their true box with jitter.

Framing is a zoom about the image centre followed by a shift, as in
:mod:`.augment`: pixel ``p`` lands at ``(p - c) * zoom + c + shift``. Relative
depths (drawn like image offsets) grow with the zoom, like 2D offsets.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def resample(images: torch.Tensor, shift: torch.Tensor, zoom: torch.Tensor,
             out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Zoom (B,) images (B, C, H, W) about their centre, shift them by (B, 2) fractions of the image, and
    sample the result at ``out_size`` (h, w) (default: the input size); edges repeat.

    Bilinear sampling of a render at half its size averages 2x2 pixel blocks,
    so the unzoomed first pass sees the area-averaged image.
    """
    b, c, h, w = images.shape
    oh, ow = out_size or (h, w)
    theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)
    # Output x (normalised, centre 0) samples the input at (x - 2 * shift) / zoom.
    theta[:, 0, 0] = 1.0 / zoom
    theta[:, 1, 1] = 1.0 / zoom
    theta[:, 0, 2] = -2.0 * shift[:, 0] / zoom
    theta[:, 1, 2] = -2.0 * shift[:, 1] / zoom
    grid = F.affine_grid(theta, [b, c, oh, ow], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def frame_box(joints2d: torch.Tensor, image_size: tuple[int, int], fill: float,
              max_zoom: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Zoom (B,) and shift (B, 2) pixels that centre the box of ``joints2d`` (B, J, 2) and make its longer
    side ``fill`` of the image (never zooming out, at most ``max_zoom``)."""
    h, w = image_size
    size = torch.tensor([w, h], dtype=joints2d.dtype, device=joints2d.device)
    lo, hi = joints2d.min(1).values, joints2d.max(1).values
    extent = ((hi - lo) / size).max(-1).values.clamp_min(1e-3)
    zoom = (fill / extent).clamp(1.0, max(1.0, max_zoom))
    shift = -((lo + hi) / 2 - size / 2) * zoom[:, None]
    return zoom, shift


def to_frame(joints2d: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor,
             image_size: tuple[int, int]) -> torch.Tensor:
    """Pixels of the render -> pixels of the framed image (both in the render's pixel units)."""
    h, w = image_size
    centre = torch.tensor([w / 2, h / 2], dtype=joints2d.dtype, device=joints2d.device)
    return (joints2d - centre) * zoom[:, None, None] + centre + shift[:, None, :]


def from_frame(joints2d: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor,
               image_size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`to_frame`."""
    h, w = image_size
    centre = torch.tensor([w / 2, h / 2], dtype=joints2d.dtype, device=joints2d.device)
    return (joints2d - centre - shift[:, None, :]) / zoom[:, None, None] + centre
