"""Training augmentation on torch batches: translation (targets shifted too) and colour jitter.

No flips and no hue changes: the renders colour left and right limbs apart,
and the estimator must keep them apart (the paper's failure cases are
left/right confusions).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    translate: float = 0.1  # max shift, fraction of the image size
    brightness: float = 0.3  # factor in [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2

    def to_dict(self) -> dict:
        return {"translate": self.translate, "brightness": self.brightness, "contrast": self.contrast,
                "saturation": self.saturation}


def translate(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift (B, C, H, W) images by ``shift`` (B, 2) pixels (x right, y down); edges repeat."""
    b, _, h, w = images.shape
    theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    # Output pixel x samples the input at x - shift: in normalised units that is -2 * shift / size.
    theta[:, 0, 2] = -2.0 * shift[:, 0] / w
    theta[:, 1, 2] = -2.0 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation jitter of (B, 3, H, W) images in [0, 1], one draw per image."""
    b = images.shape[0]

    def factor(amount: float) -> torch.Tensor:
        u = torch.rand(b, 1, 1, 1, generator=generator, device=images.device, dtype=images.dtype)
        return 1.0 + amount * (2.0 * u - 1.0)

    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    x = images * factor(aug.brightness)
    mean = (x * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (x - mean) * factor(aug.contrast) + mean
    grey = (x * weights).sum(1, keepdim=True)
    x = (x - grey) * factor(aug.saturation) + grey
    return x.clamp(0.0, 1.0)


def augment(images: torch.Tensor, joints2d: torch.Tensor, image_size: tuple[int, int], aug: Augmentation,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Augment a batch.

    ``images`` (B, 3, h, w) in [0, 1] at the network's input size; ``joints2d``
    (B, J, 2) in pixels of the original ``image_size`` (H, W). Returns the
    images, the shifted joints and a (B, J) mask of joints still inside the image.
    """
    b, _, h, w = images.shape
    big_h, big_w = image_size
    u = torch.rand(b, 2, generator=generator, device=images.device, dtype=images.dtype)
    shift = aug.translate * (2.0 * u - 1.0) * torch.tensor([big_w, big_h], dtype=images.dtype, device=images.device)
    scale = torch.tensor([w / big_w, h / big_h], dtype=images.dtype, device=images.device)
    out = translate(images, shift * scale) if aug.translate > 0 else images
    out = colour_jitter(out, aug, generator)
    joints = joints2d + shift[:, None, :]
    inside = ((joints[..., 0] >= 0) & (joints[..., 0] <= big_w) & (joints[..., 1] >= 0) & (joints[..., 1] <= big_h))
    return out, joints, inside
