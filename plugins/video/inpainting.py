"""Denoise one window of frames with known frames imposed by latent inpainting (AnyMoLe Sec. 3.2).

At every denoising step, before the denoiser runs, the latents of known
frames are replaced by the forward-noised encodings of those frames at that
step's noise level (``scheduler.add_noise`` with fresh noise, as the official
code's ``q_sample``). Frames marked ``ALWAYS`` (keyframes) are imposed at every
step; frames marked ``NOISY`` (context and earlier generated frames) only while
the step's noise level, expressed as an equivalent training timestep out of
1000, is above ``context_threshold`` (750 by default, as the official code's
``onlykey``); the model is free to reconcile them with the rest afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

# Per-frame paste modes.
FREE, ALWAYS, NOISY = 0, 1, 2


@dataclass
class StepInfo:
    """What a step callback sees, after pasting and before the denoiser runs."""

    step: int  # 0-based step within this window
    num_steps: int
    timestep: float  # the scheduler's timestep value
    level: float  # equivalent training timestep on a 0..1000 scale
    latents: torch.Tensor  # (T, C, h, w) the latents given to the denoiser (before input scaling)
    pasted: np.ndarray  # (T,) bool: frames replaced at this step
    known_latents: torch.Tensor  # (T, C, h, w) clean encodings (zeros where unknown)
    known_noise: torch.Tensor  # (T, C, h, w) the noise used for this step's forward-noising


def noise_levels(scheduler, timesteps: torch.Tensor) -> np.ndarray:
    """Equivalent training timestep (0..1000) of each inference timestep, whatever the scheduler.

    The step's noise-to-signal ratio is read from ``scheduler.add_noise`` itself
    and located, in log space, on the training schedule's ratios
    sqrt((1 - abar) / abar). For DDIM this is the timestep itself; for SVD's
    continuous-time Euler schedule it maps sigma onto the same scale (sigmas
    above the training range read as 1000).
    """
    n = len(timesteps)
    one = torch.ones(n, 1, dtype=torch.float64)
    zero = torch.zeros(n, 1, dtype=torch.float64)
    alpha = scheduler.add_noise(one, zero, timesteps).squeeze(1)
    sigma = scheduler.add_noise(zero, one, timesteps).squeeze(1)
    ratio = np.log(np.maximum((sigma / alpha.clamp_min(1e-12)).numpy(), 1e-12))
    abar = scheduler.alphas_cumprod.double().numpy()
    train = np.log(np.sqrt((1 - abar) / abar))  # increasing in t
    steps = np.arange(len(abar), dtype=np.float64)
    t = np.interp(ratio, train, steps, left=0.0, right=len(abar) - 1.0)
    return t * 1000.0 / len(abar)


def paste_masks(modes: np.ndarray, levels: np.ndarray, context_threshold: float | None) -> np.ndarray:
    """(steps, T) bool: which frames are imposed at which step."""
    modes = np.asarray(modes)
    always = modes == ALWAYS
    noisy = modes == NOISY
    if context_threshold is None:
        return np.broadcast_to(always | noisy, (len(levels), len(modes))).copy()
    return always[None] | (noisy[None] & (np.asarray(levels)[:, None] > context_threshold))


def sample_window(model, images: np.ndarray, modes: np.ndarray, fps: float, *, cond_index: int | None = None,
                  prompt: str = "", num_inference_steps: int = 25, guidance_scale: float = 2.0,
                  context_threshold: float | None = 750.0, generator: torch.Generator | None = None,
                  on_step: Callable[[StepInfo], None] | None = None) -> np.ndarray:
    """Generate one window: ``images`` (T, H, W, 3) uint8 (anything where ``modes`` is FREE), ``modes`` (T,).

    Returns all T frames as decoded by the model (known frames included, as the
    model redrew them). ``cond_index`` picks the conditioning image (default:
    the first known frame). ``generator`` must be a CPU generator.
    """
    modes = np.asarray(modes)
    known = np.flatnonzero(modes != FREE)
    if len(known) == 0:
        raise ValueError("a window needs at least one known frame")
    T = len(images)
    generator = generator or torch.Generator().manual_seed(0)
    sched = model.scheduler
    sched.set_timesteps(num_inference_steps, device="cpu")
    timesteps = sched.timesteps
    levels = noise_levels(sched, timesteps)
    masks = paste_masks(modes, levels, context_threshold)

    ci = int(known[0]) if cond_index is None else int(cond_index)
    cond = model.condition(images[ci], fps, T, prompt, generator)
    z0 = model.encode(images[known]).float()
    shape = (T, model.latent_channels, *z0.shape[-2:])
    clean = torch.zeros(shape, dtype=torch.float32, device=model.device)
    clean[torch.as_tensor(known, device=model.device)] = z0

    latents = (torch.randn(shape, generator=generator) * sched.init_noise_sigma).to(model.device)
    sched.set_timesteps(num_inference_steps, device=model.device)
    for i, t in enumerate(sched.timesteps):
        noise = torch.randn(shape, generator=generator).to(model.device)
        pasted = masks[i]
        if pasted.any():
            idx = torch.as_tensor(np.flatnonzero(pasted), device=model.device)
            noised = sched.add_noise(clean[idx], noise[idx], t.reshape(1).expand(len(idx)))
            latents[idx] = noised.to(latents.dtype)
        if on_step is not None:
            on_step(StepInfo(i, len(timesteps), float(t), float(levels[i]), latents.clone(), pasted.copy(),
                             clean, noise))
        model_in = sched.scale_model_input(latents, t)
        with torch.no_grad():
            out = model.predict(model_in[None], t, cond, guidance_scale)[0].float()
        latents = sched.step(out, t, latents).prev_sample
    return model.decode(latents)
