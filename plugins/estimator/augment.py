"""Training augmentation on torch batches: translation and zoom (targets moved too) and colour jitter.

No flips and no hue changes: the renders colour left and right limbs apart,
and the estimator must keep them apart (the paper's failure cases are
left/right confusions).

Zoom (off by default in the paper; on here, see ``Augmentation.zoom``) scales
the image about its centre, the principal point of the render cameras. For
the estimator that is the same picture as the character standing ``zoom``
times closer: absolute depth targets are divided by the zoom, relative ones
(``depth.centred_depth``, drawn like image offsets) multiplied by it. It lets
a character that travels towards the camera be read at sizes the context
never showed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .framing import resample, to_frame


@dataclass(frozen=True)
class Augmentation:
    translate: float = 0.1  # max shift, fraction of the image size
    zoom: float = 0.0  # zoom factor drawn log-uniformly in [1 / (1 + zoom), 1 + zoom]
    brightness: float = 0.3  # factor in [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2

    def to_dict(self) -> dict:
        return {"translate": self.translate, "zoom": self.zoom, "brightness": self.brightness,
                "contrast": self.contrast, "saturation": self.saturation}


@dataclass
class Augmented:
    images: torch.Tensor  # (B, 3, h, w)
    joints2d: torch.Tensor  # (B, J, 2) pixels of the original size
    depth_scale: torch.Tensor  # (B,) multiply camera depths by this
    inside: torch.Tensor  # (B, J) bool joint still inside the image


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
            generator: torch.Generator, *, zoom0: torch.Tensor | None = None, shift0: torch.Tensor | None = None,
            out_size: tuple[int, int] | None = None) -> Augmented:
    """Augment a batch.

    ``images`` (B, 3, h, w) in [0, 1] (any resolution of the render);
    ``joints2d`` (B, J, 2) in pixels of the original ``image_size`` (H, W).
    ``zoom0`` (B,) and ``shift0`` (B, 2) pixels frame each image first
    (:mod:`.framing`); the random zoom and shift apply on top. The result is
    sampled at ``out_size`` (default: the input's size).
    """
    b, _, h, w = images.shape
    big_h, big_w = image_size
    kw = {"generator": generator, "device": images.device, "dtype": images.dtype}
    size = torch.tensor([big_w, big_h], dtype=images.dtype, device=images.device)
    shift = aug.translate * (2.0 * torch.rand(b, 2, **kw) - 1.0) * size
    zoom = torch.exp(torch.log1p(torch.tensor(aug.zoom, dtype=images.dtype)) * (2.0 * torch.rand(b, **kw) - 1.0))
    if zoom0 is not None:  # frame, then jitter: (p - c) * z0 * z + c + s0 * z + s
        shift = shift + shift0.to(images.dtype) * zoom[:, None]
        zoom = zoom * zoom0.to(images.dtype)
    if aug.translate > 0 or aug.zoom > 0 or zoom0 is not None or (out_size and tuple(out_size) != (h, w)):
        out = resample(images, shift / size, zoom, out_size)
    else:
        out = images
    out = colour_jitter(out, aug, generator)
    joints = to_frame(joints2d, zoom, shift, image_size)
    inside = (joints[..., 0] >= 0) & (joints[..., 0] <= big_w) & (joints[..., 1] >= 0) & (joints[..., 1] <= big_h)
    return Augmented(out, joints, 1.0 / zoom, inside)
