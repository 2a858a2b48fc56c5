"""Keyframe-conditioned diffusion-transformer video families: Wan VACE, Wan first-last-frame, LTX-Video.

Each family wraps its diffusers pipeline and gives generation and ICAdapt the same
few operations:

- ``generate_window(images, ...)``: one window of frames, ``None`` where a frame is
  to be generated, the known ones imposed the family's own way (VACE: conditioning
  video + mask; first-last-frame: ``image`` and ``last_image``; LTX:
  ``LTXVideoCondition`` per known frame). Frame counts are padded to the family's
  ``frame_multiple * k + 1`` and image sides rounded to ``size_multiple``; the
  result is cut and resized back.
- ``encode_frame`` / ``training_loss``: the flow-matching loss of one frame
  (``x_t = (1 - s) x0 + s noise``, target ``noise - x0``, timestep ``1000 s``) for
  ICAdapt's image-only LoRA (:mod:`.lora`), with "nothing known" conditioning.
- ``lora_targets``: the attention and feed-forward projections of the main
  transformer blocks (never the VACE control blocks, the embedders or the patch
  embedding).
"""
from __future__ import annotations

import re

import numpy as np
import torch

# Projections of the main blocks that the ICAdapt LoRA adapts.
LORA_TARGET = re.compile(r"^(blocks|transformer_blocks)\.\d+\.((attn1|attn2)\.(to_q|to_k|to_v|to_out\.0|add_k_proj|"
                         r"add_v_proj)|(ffn|ff)\.net\.(0\.proj|2))$")


def byte_ids(prompt: str, vocab: int, length: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (1, length) from a prompt's UTF-8 bytes, zero-padded, and their attention mask (no tokenizer
    files, e.g. tiny test models)."""
    ids = [b % max(vocab - 1, 1) + 1 for b in prompt.encode()][:length]
    mask = [1] * len(ids) + [0] * (length - len(ids))
    return torch.tensor([ids + [0] * (length - len(ids))]), torch.tensor([mask])


def to_pil(image: np.ndarray, size: tuple[int, int] | None = None):
    from PIL import Image

    img = Image.fromarray(np.asarray(image, np.uint8))
    return img if size is None or img.size == (size[1], size[0]) else img.resize((size[1], size[0]),
                                                                                   Image.Resampling.LANCZOS)


class TransformerVideoModel:
    """Base of the keyframe-conditioned families; subclasses set the class attributes and the pipeline calls."""

    family = ""
    keyed = True  # known frames enter natively: generation goes through keyed_generation
    accepts_text = True
    frame_multiple = 4  # frames per latent frame: windows hold frame_multiple * k + 1 frames
    size_multiple = 16
    window = 81  # frames per window by default
    steps = 30
    guidance = 5.0
    first_last_only = False  # conditions on a window's first and last frames only

    def __init__(self, pipe, *, model_id: str = "", device: str = "cpu", dtype=torch.float32) -> None:
        self.pipe = pipe
        self.model_id = model_id
        self.device = torch.device(device)
        self.dtype = dtype
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self._text: dict[str, dict] = {}

    # -- housekeeping -------------------------------------------------------
    def denoisers(self) -> dict[str, torch.nn.Module]:
        return {k: getattr(self.pipe, k) for k in ("transformer", "transformer_2") if getattr(self.pipe, k, None)
                is not None}

    def lora_targets(self, name: str) -> list[str]:
        return [n for n, m in self.denoisers()[name].named_modules()
                if isinstance(m, torch.nn.Linear) and LORA_TARGET.match(n)]

    def working_size(self, size: tuple[int, int]) -> tuple[int, int]:
        m = self.size_multiple
        return tuple(max(m, int(round(s / m)) * m) for s in size)

    def frames_to_run(self, n: int) -> int:
        """The smallest ``frame_multiple * k + 1`` holding ``n`` frames."""
        m = self.frame_multiple
        return max(1, -(-(n - 1) // m)) * m + 1

    # -- text -----------------------------------------------------------------
    def _encode_bytes(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.pipe.text_encoder
        ids, mask = (x.to(self.device) for x in byte_ids(prompt, int(enc.config.vocab_size)))
        with torch.no_grad():
            emb = enc(ids, attention_mask=mask).last_hidden_state * mask[..., None]  # zeros past the text, as Wan
        return emb.to(self.dtype), mask

    def text(self, prompt: str) -> dict:
        """Prompt (and empty negative prompt) embeddings as pipeline keyword arguments."""
        if prompt not in self._text:
            self._text[prompt] = self._text_kwargs(prompt)
        return self._text[prompt]

    def _text_kwargs(self, prompt: str) -> dict:
        if self.pipe.tokenizer is None:
            pe, _ = self._encode_bytes(prompt)
            ne, _ = self._encode_bytes("")
            return {"prompt_embeds": pe, "negative_prompt_embeds": ne}
        with torch.no_grad():
            pe, ne = self.pipe.encode_prompt(prompt=prompt, negative_prompt="", do_classifier_free_guidance=True,
                                             device=self.device)
        return {"prompt_embeds": pe, "negative_prompt_embeds": ne}

    # -- generation -----------------------------------------------------------
    def generate_window(self, images: list, *, prompt: str = "", steps: int | None = None,
                        guidance: float | None = None, seed: int = 0, fps: float = 15.0,
                        progress=None) -> np.ndarray:
        """(len(images), H, W, 3) uint8: the window with every ``None`` frame generated."""
        size = next(np.asarray(i).shape[:2] for i in images if i is not None)
        work = self.working_size(size)
        steps = int(steps or self.steps)

        def callback(pipe, i, t, kwargs):
            if progress is not None:
                progress((i + 1) / steps)
            return kwargs

        common = {"height": work[0], "width": work[1], "num_inference_steps": steps,
                  "guidance_scale": float(self.guidance if guidance is None else guidance),
                  "generator": torch.Generator().manual_seed(int(seed)), "output_type": "np",
                  "callback_on_step_end": callback, **self.text(prompt)}
        import logging

        log = logging.getLogger("diffusers")
        level = log.level
        log.setLevel(logging.ERROR)  # LTX warns about its own timestep schedule on every call
        try:
            with torch.no_grad():
                frames = self._call(images, work, common, fps)
        finally:
            log.setLevel(level)
        frames = np.clip(np.asarray(frames) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if tuple(frames.shape[1:3]) != tuple(size):
            frames = np.stack([np.asarray(to_pil(f, size)) for f in frames])
        return frames

    def _call(self, images, work, common, fps) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    # -- ICAdapt --------------------------------------------------------------
    def pixels(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> (1, 3, 1, h, w) in [-1, 1] at the working size."""
        img = np.asarray(to_pil(image, self.working_size(image.shape[:2])), np.float32)
        x = torch.from_numpy(img).permute(2, 0, 1)[None, :, None] / 127.5 - 1.0
        return x.to(self.device, self.pipe.vae.dtype)

    def encode_frame(self, image: np.ndarray) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def training_loss(self, latent: torch.Tensor, image: np.ndarray, prompt: str,
                      generator: torch.Generator) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def _noised(self, x0: torch.Tensor, generator: torch.Generator):
        """Flow matching: sigma (logit-normal), noisy sample and velocity target."""
        sigma = torch.sigmoid(torch.randn((), generator=generator)).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
        return sigma, (1 - sigma) * x0 + sigma * noise, noise - x0

    def denoiser_for(self, sigma: torch.Tensor) -> torch.nn.Module:
        """Wan 2.2's two experts split the schedule at ``boundary_ratio``; one denoiser otherwise."""
        ratio = getattr(self.pipe.config, "boundary_ratio", None)
        if ratio is not None and getattr(self.pipe, "transformer_2", None) is not None and float(sigma) < ratio:
            return self.pipe.transformer_2
        return self.pipe.transformer


class WanModel(TransformerVideoModel):
    """Shared by the Wan families: VAE latents normalised by the VAE's per-channel mean and std."""

    def _normalise(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.pipe.vae.config
        mean = torch.tensor(cfg.latents_mean, device=z.device, dtype=torch.float32).view(1, -1, 1, 1, 1)
        std = torch.tensor(cfg.latents_std, device=z.device, dtype=torch.float32).view(1, -1, 1, 1, 1)
        return ((z.float() - mean) / std).to(self.dtype)

    def encode_frame(self, image: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return self._normalise(self.pipe.vae.encode(self.pixels(image)).latent_dist.mode())


class WanVaceModel(WanModel):
    """``WanVACEPipeline`` (Wan 2.1 / 2.2 VACE): video with known frames in place + mask (255 = generate)."""

    family = "wan-vace"

    def _call(self, images, work, common, fps) -> np.ndarray:
        from PIL import Image

        n = len(images)
        run = self.frames_to_run(n)
        grey = Image.new("RGB", (work[1], work[0]), (128, 128, 128))
        video = [to_pil(i, work) if i is not None else grey for i in images] + [grey] * (run - n)
        mask = [Image.new("L", (work[1], work[0]), 0 if i is not None else 255) for i in images]
        mask += [Image.new("L", (work[1], work[0]), 255)] * (run - n)
        return self.pipe(video=video, mask=mask, num_frames=run, **common).frames[0][:n]

    def _control(self, x: torch.Tensor) -> torch.Tensor:
        """VACE control latents for "generate everything" over a grey frame like ``x`` (1, 3, 1, h, w)."""
        video = torch.zeros_like(x)
        mask = torch.ones_like(x[:, :1])
        with torch.no_grad():
            lat = self.pipe.prepare_video_latents(video, mask, [[]], None, self.device)  # no reference images
            return torch.cat([lat, self.pipe.prepare_masks(mask, [[]], None)], 1).to(self.dtype)

    def training_loss(self, latent, image, prompt, generator):
        if not hasattr(self, "_null_control") or self._null_control[0] != image.shape[:2]:
            self._null_control = (image.shape[:2], self._control(self.pixels(image)))
        sigma, noisy, target = self._noised(latent, generator)
        net = self.denoiser_for(sigma)
        scale = torch.ones(len(net.config.vace_layers), device=self.device, dtype=self.dtype)
        out = net(hidden_states=noisy, timestep=(sigma * 1000).reshape(1), encoder_hidden_states=
                  self.text(prompt)["prompt_embeds"], control_hidden_states=self._null_control[1],
                  control_hidden_states_scale=scale, return_dict=False)[0]
        return torch.mean((out.float() - target.float()) ** 2)


class WanFirstLastModel(WanModel):
    """``WanImageToVideoPipeline`` with ``last_image`` (Wan first-last-frame; image-to-video without one)."""

    family = "wan-flf2v"
    first_last_only = True

    def _call(self, images, work, common, fps) -> np.ndarray:
        n = len(images)
        run = self.frames_to_run(n)
        kw = {"image": to_pil(images[0], work)}
        if images[-1] is not None and n > 1:
            kw["last_image"] = to_pil(images[-1], work)
        frames = self.pipe(num_frames=run, **kw, **common).frames[0]
        # the model's frames span first -> last evenly: take the nearest one at each of the window's n times
        return frames[np.round(np.linspace(0, run - 1, n)).astype(int)]

    def training_loss(self, latent, image, prompt, generator):
        if not hasattr(self, "_null_condition") or self._null_condition[0] != image.shape[:2]:
            x = self.pixels(image)
            with torch.no_grad():
                grey = self._normalise(self.pipe.vae.encode(torch.zeros_like(x)).latent_dist.mode())
            mask = torch.zeros(grey.shape[0], self.pipe.vae_scale_factor_temporal, *grey.shape[2:],
                               device=self.device, dtype=self.dtype)
            self._null_condition = (image.shape[:2], torch.cat([mask, grey], 1))  # nothing known
        embeds = None
        if getattr(self.pipe, "image_encoder", None) is not None:
            # a first-last-frame model (pos_embed_seq_len) reads two images: the frame as both ends
            two = getattr(self.pipe.transformer.config, "pos_embed_seq_len", None) is not None
            with torch.no_grad():
                embeds = self.pipe.encode_image([to_pil(image)] * (2 if two else 1), self.device).to(self.dtype)
        sigma, noisy, target = self._noised(latent, generator)
        net = self.denoiser_for(sigma)
        out = net(hidden_states=torch.cat([noisy, self._null_condition[1]], 1), timestep=(sigma * 1000).reshape(1),
                  encoder_hidden_states=self.text(prompt)["prompt_embeds"], encoder_hidden_states_image=embeds,
                  return_dict=False)[0]
        return torch.mean((out.float() - target.float()) ** 2)


class LtxModel(TransformerVideoModel):
    """``LTXConditionPipeline`` (LTX-Video 0.9.x): one ``LTXVideoCondition`` per known frame, at its index."""

    family = "ltx"
    frame_multiple = 8
    size_multiple = 32
    window = 97
    steps = 30
    guidance = 3.0

    def _text_kwargs(self, prompt: str) -> dict:
        if self.pipe.tokenizer is None:
            pe, pm = self._encode_bytes(prompt)
            ne, nm = self._encode_bytes("")
        else:
            with torch.no_grad():
                pe, pm, ne, nm = self.pipe.encode_prompt(prompt=prompt, negative_prompt="",
                                                         do_classifier_free_guidance=True, device=self.device)
        return {"prompt_embeds": pe, "prompt_attention_mask": pm, "negative_prompt_embeds": ne,
                "negative_prompt_attention_mask": nm}

    def _call(self, images, work, common, fps) -> np.ndarray:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        n = len(images)
        conditions = [LTXVideoCondition(image=to_pil(img, work), frame_index=i) for i, img in enumerate(images)
                      if img is not None]
        return self.pipe(conditions=conditions, num_frames=self.frames_to_run(n), frame_rate=int(round(fps)),
                         **common).frames[0][:n]

    def encode_frame(self, image: np.ndarray) -> torch.Tensor:
        pipe = self.pipe
        with torch.no_grad():
            z = pipe.vae.encode(self.pixels(image)).latent_dist.mode()
            z = pipe._normalize_latents(z, pipe.vae.latents_mean, pipe.vae.latents_std).to(self.dtype)
        self._latent_shape = z.shape
        return pipe._pack_latents(z, pipe.transformer_spatial_patch_size, pipe.transformer_temporal_patch_size)

    def training_loss(self, latent, image, prompt, generator):
        pipe = self.pipe
        _, _, f, h, w = self._latent_shape
        ids = pipe._prepare_video_ids(1, f, h, w, patch_size=pipe.transformer_spatial_patch_size,
                                      patch_size_t=pipe.transformer_temporal_patch_size, device=self.device)
        coords = pipe._scale_video_ids(ids, scale_factor=pipe.vae_spatial_compression_ratio,
                                       scale_factor_t=pipe.vae_temporal_compression_ratio, frame_index=0,
                                       device=self.device).float()
        coords[:, 0] = coords[:, 0] / 25.0  # one still frame: the frame rate only scales a zero coordinate
        text = self.text(prompt)
        sigma, noisy, target = self._noised(latent, generator)
        out = pipe.transformer(hidden_states=noisy, encoder_hidden_states=text["prompt_embeds"],
                               timestep=(sigma * 1000).reshape(1, 1), encoder_attention_mask=
                               text["prompt_attention_mask"], video_coords=coords, return_dict=False)[0]
        return torch.mean((out.float() - target.float()) ** 2)


FAMILY_MODELS = {"wan-vace": WanVaceModel, "wan-flf2v": WanFirstLastModel, "ltx": LtxModel}
