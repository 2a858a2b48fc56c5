"""A loaded image-to-video diffusion model and the maths of its conditioning (SVD family).

``VideoModel`` is the contract that ICAdapt and generation use: encode frames
to latents, decode latents to frames, build the image/fps conditioning of a
window, and run the denoiser. The built-in family is diffusers'
``UNetSpatioTemporalConditionModel`` (Stable Video Diffusion): the conditioning
image enters twice, as a CLIP image embedding through cross-attention and as
its VAE latent concatenated to every frame's channels; the frame rate enters
through ``added_time_ids = [fps - 1, motion_bucket_id, noise_aug_strength]``.
SVD has no text input, so prompts are accepted and ignored
(``accepts_text = False``). Another family implements the same methods.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# CLIP's normalisation, used when a model folder has no image-processor config.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ImageNormalization:
    """How the image encoder expects its input: size (H, W), per-channel mean and std."""

    size: tuple[int, int]
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD


@dataclass
class Conditioning:
    """Everything the denoiser needs besides the noisy latents, for one window."""

    embeddings: torch.Tensor  # (1, 1, D) image embedding for cross-attention
    concat_latents: torch.Tensor  # (1, T, C, h, w) conditioning latents concatenated to the input
    added_time_ids: torch.Tensor  # (1, 3)


class VideoModel:
    """Components of a diffusers SVD-family model plus the operations generation and ICAdapt need."""

    family = "unet-spatio-temporal"
    accepts_text = False

    def __init__(self, unet, vae, image_encoder, scheduler, normalization: ImageNormalization, *,
                 model_id: str = "", device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 motion_bucket_id: int = 127, noise_aug_strength: float = 0.02) -> None:
        self.unet = unet
        self.vae = vae
        self.image_encoder = image_encoder
        self.scheduler = scheduler
        self.normalization = normalization
        self.model_id = model_id
        self.motion_bucket_id = motion_bucket_id
        self.noise_aug_strength = noise_aug_strength
        self.device = torch.device(device)
        self.dtype = dtype
        self.to(self.device, dtype)
        for m in (self.unet, self.vae, self.image_encoder):
            m.eval()

    # -- housekeeping -------------------------------------------------------
    def to(self, device, dtype: torch.dtype | None = None) -> "VideoModel":
        self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        for m in (self.unet, self.vae, self.image_encoder):
            m.to(self.device)
            if next(m.parameters()).dtype != self.dtype:  # diffusers warns on every dtype cast
                m.to(self.dtype)
        return self

    def modules(self) -> dict[str, torch.nn.Module]:
        """The trainable-in-principle networks by name (keys prefix parameter names in deltas)."""
        return {"unet": self.unet, "image_encoder": self.image_encoder, "vae": self.vae}

    @property
    def latent_channels(self) -> int:
        return int(self.unet.config.out_channels)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (VAE downsampling x UNet downsampling)."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    # -- pixels <-> latents -------------------------------------------------
    def to_pixels(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1] on the model's device and dtype."""
        x = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
        x = x.to(self.device).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1.0
        return x.to(self.dtype)

    @torch.no_grad()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        """Frames -> scaled diffusion latents (N, C, h, w); the distribution's mode, so deterministic."""
        if len(images) == 0:
            return torch.zeros(0, self.latent_channels, 1, 1, device=self.device, dtype=self.dtype)
        z = self.vae.encode(self.to_pixels(images)).latent_dist.mode()
        return z * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk: int | None = None) -> np.ndarray:
        """(T, C, h, w) scaled latents of one window -> (T, H, W, 3) uint8 (temporal decoder sees the window)."""
        z = latents.to(self.dtype) / self.vae.config.scaling_factor
        chunk = chunk or len(z)
        out = [self.vae.decode(z[i:i + chunk], num_frames=len(z[i:i + chunk])).sample for i in range(0, len(z), chunk)]
        x = torch.cat(out).float().clamp(-1, 1)
        return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    # -- conditioning -------------------------------------------------------
    def image_features(self, images: np.ndarray) -> torch.Tensor:
        """Pooled features of the frozen CLIP vision tower (N, hidden); the projector is applied separately."""
        x = self.to_pixels(images).float()
        h, w = self.normalization.size
        # Resize in [-1, 1] with antialiasing, as SVD's pipeline does, then CLIP-normalise.
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        x = (x + 1.0) / 2.0
        mean = torch.tensor(self.normalization.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.normalization.std, device=x.device).view(1, 3, 1, 1)
        x = ((x - mean) / std).to(self.dtype)
        with torch.no_grad():
            return self.image_encoder.vision_model(pixel_values=x).pooler_output

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Image projector (trainable in ICAdapt): pooled features -> (N, 1, D) cross-attention tokens."""
        return self.image_encoder.visual_projection(features).unsqueeze(1)

    @torch.no_grad()
    def concat_latents(self, image: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise-augmented, unscaled VAE latent of the conditioning image (1, C, h, w), as SVD was trained."""
        x = self.to_pixels(image[None]).float()
        # Noise is drawn on the CPU so a seed gives the same result on every device.
        noise = torch.randn(x.shape, generator=generator).to(x.device)
        x = (x + self.noise_aug_strength * noise).to(self.dtype)
        return self.vae.encode(x).latent_dist.mode()

    def added_time_ids(self, fps: float, batch: int = 1) -> torch.Tensor:
        """SVD was conditioned on fps - 1 (see diffusers' StableVideoDiffusionPipeline)."""
        ids = torch.tensor([[fps - 1.0, float(self.motion_bucket_id), self.noise_aug_strength]], dtype=self.dtype,
                           device=self.device)
        return ids.repeat(batch, 1)

    @torch.no_grad()
    def condition(self, image: np.ndarray, fps: float, num_frames: int, prompt: str = "",
                  generator: torch.Generator | None = None) -> Conditioning:
        """Conditioning of one window on ``image`` (H, W, 3) uint8 at ``fps``; ``prompt`` is unused by SVD."""
        emb = self.project(self.image_features(image[None]))
        lat = self.concat_latents(image, generator)
        return Conditioning(emb, lat[:, None].repeat(1, num_frames, 1, 1, 1), self.added_time_ids(fps))

    def predict(self, model_input: torch.Tensor, timestep, cond: Conditioning, guidance_scale: float = 1.0) -> torch.Tensor:
        """Denoiser output for scheduler-scaled latents (1, T, C, h, w); classifier-free guidance against
        zero image conditioning (SVD's unconditional branch) when ``guidance_scale > 1``."""
        x = model_input.to(self.dtype)
        if guidance_scale > 1.0:
            x2 = torch.cat([x, x])
            cat = torch.cat([torch.zeros_like(cond.concat_latents), cond.concat_latents])
            emb = torch.cat([torch.zeros_like(cond.embeddings), cond.embeddings])
            ids = cond.added_time_ids.repeat(2, 1)
            out = self.unet(torch.cat([x2, cat.to(self.dtype)], dim=2), timestep, encoder_hidden_states=emb,
                            added_time_ids=ids, return_dict=False)[0]
            uncond, c = out.chunk(2)
            return uncond + guidance_scale * (c - uncond)
        return self.unet(torch.cat([x, cond.concat_latents.to(self.dtype)], dim=2), timestep,
                         encoder_hidden_states=cond.embeddings, added_time_ids=cond.added_time_ids,
                         return_dict=False)[0]
