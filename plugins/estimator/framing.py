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

import numpy as np
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


class Framer:
    """Where each training, validation and prediction image is framed, and how it reaches the network.

    ``settings`` is the estimator's (``framing``, ``max_zoom``, ``whole_fraction``);
    ``observed`` (J,) bool the joints the box is drawn around (default all).
    """

    def __init__(self, settings, image_size: tuple[int, int], input_size: tuple[int, int],
                 observed: np.ndarray | None = None):
        self.fill, self.max_zoom = float(settings.framing), float(settings.max_zoom)
        self.whole = float(settings.whole_fraction)
        self.image_size, self.input_size = image_size, input_size
        self.observed = None if observed is None or np.all(observed) else torch.from_numpy(np.asarray(observed, bool))

    def boxes(self, joints2d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zoom (B,) and shift (B, 2) around the (observed) joints (identity when framing is off)."""
        if self.fill <= 0:
            kw = {"dtype": joints2d.dtype, "device": joints2d.device}
            return torch.ones(len(joints2d), **kw), torch.zeros(len(joints2d), 2, **kw)
        if self.observed is not None:
            joints2d = joints2d[:, self.observed.to(joints2d.device)]
        return frame_box(joints2d, self.image_size, self.fill, self.max_zoom)

    def training(self, joints2d: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes around the true joints, with ``whole_fraction`` of the batch left unframed."""
        zoom, shift = self.boxes(joints2d)
        if self.fill > 0 and self.whole > 0:  # shown whole, as the first prediction pass sees them
            whole = (torch.rand(len(zoom), generator=gen) < self.whole).to(zoom.device)
            zoom, shift = torch.where(whole, 1.0, zoom), torch.where(whole[:, None], 0.0, shift)
        return zoom, shift

    def network_input(self, images_u8: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) uint8 renders -> framed (B, 3, h, w) float network input."""
        h, w = self.image_size
        frac = shift / torch.tensor([w, h], dtype=shift.dtype, device=shift.device)
        return resample(images_u8.float() / 255.0, frac, zoom, self.input_size)
