"""ICAdapt: adapt the video model to the shot's own renders (AnyMoLe Sec. 3.1, supplement A.1).

Trainable: the UNet's spatial layers and the image projector (CLIP's
``visual_projection``). Frozen: every temporal layer, the timestep and
fps/motion embeddings, the CLIP vision tower and the VAE. Roles are decided
by module TYPE (diffusers' ``TemporalBasicTransformerBlock``,
``TemporalResnetBlock``, ``AlphaBlender`` and ``TimestepEmbedding``), never
by parameter names, so renamed or nested copies are caught too. Training
clips are 16 rendered frames at strides 1/2/3 (30/15/10 fps at a 30 fps
stage), and each clip's frame rate is fed to the model's fps conditioning.
The result is a small delta: only the trainable parameters that changed,
saved as safetensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from anymole_usd.errors import InputError

TRAINABLE, TEMPORAL, EMBEDDING, FROZEN = "trainable", "temporal", "embedding", "frozen"
DELTA_FORMAT = "anymole-usd/icadapt-delta/1"


def temporal_module_types() -> tuple[type, ...]:
    """Module types that mix information across frames in diffusers' spatio-temporal models."""
    from diffusers.models.attention import TemporalBasicTransformerBlock
    from diffusers.models.resnet import AlphaBlender, TemporalResnetBlock

    return (TemporalBasicTransformerBlock, TemporalResnetBlock, AlphaBlender)


def embedding_module_types() -> tuple[type, ...]:
    """Timestep, frame-position and added-time (fps, motion bucket, noise augmentation) embeddings."""
    from diffusers.models.embeddings import TimestepEmbedding

    return (TimestepEmbedding,)


def _roles_by_type(module: torch.nn.Module, default: str) -> dict[str, str]:
    """Role of every parameter of ``module``: the role of its innermost typed ancestor, else ``default``."""
    temporal, embedding = temporal_module_types(), embedding_module_types()
    roles = {name: default for name, _ in module.named_parameters()}
    # named_modules lists parents before children, so inner types override outer ones.
    for prefix, sub in module.named_modules():
        role = TEMPORAL if isinstance(sub, temporal) else EMBEDDING if isinstance(sub, embedding) else None
        if role is None:
            continue
        for name, _ in sub.named_parameters():
            roles[f"{prefix}.{name}" if prefix else name] = role
    return roles


def parameter_roles(model) -> dict[str, str]:
    """``{"unet.<param>" | "image_encoder.<param>" | "vae.<param>": role}`` for the whole model."""
    roles = {f"unet.{k}": v for k, v in _roles_by_type(model.unet, TRAINABLE).items()}
    projector = {id(p) for p in model.image_encoder.visual_projection.parameters()}
    for name, p in model.image_encoder.named_parameters():
        roles[f"image_encoder.{name}"] = TRAINABLE if id(p) in projector else FROZEN
    for name, _ in model.vae.named_parameters():
        roles[f"vae.{name}"] = FROZEN
    return roles


def named_parameters(model) -> dict[str, torch.nn.Parameter]:
    return {f"{prefix}.{n}": p for prefix, mod in model.modules().items() for n, p in mod.named_parameters()}


def set_trainable(model) -> dict[str, torch.nn.Parameter]:
    """Freeze everything but the trainable parameters; return those."""
    roles = parameter_roles(model)
    params = named_parameters(model)
    for name, p in params.items():
        p.requires_grad_(roles[name] == TRAINABLE)
    return {n: p for n, p in params.items() if roles[n] == TRAINABLE}


def context_clips(frames: np.ndarray, fps: float, length: int = 16, strides: Sequence[int] = (1, 2, 3)):
    """Every clip of ``length`` frames at each stride from one view's rendered frames (T, H, W, 3).

    A stride-s clip plays at ``fps / s`` (30 fps renders give 30, 15 and 10 fps clips).
    """
    from .interface import Clip

    clips = []
    for s in strides:
        span = (length - 1) * s + 1
        for start in range(0, len(frames) - span + 1):
            clips.append(Clip(frames[start:start + span:s], fps / s))
    return clips


@dataclass
class ICAdaptResult:
    losses: list[float]
    delta: dict[str, torch.Tensor]  # changed trainable parameters (CPU copies), by prefixed name
    trainable: list[str] = field(default_factory=list)
    frozen: list[str] = field(default_factory=list)


def _edm_loss(model, x0, cond, generator) -> torch.Tensor:
    """SVD's training loss in its continuous-time (EDM, v-prediction) parameterisation."""
    sigma = torch.exp(0.7 + 1.6 * torch.randn((), generator=generator)).to(x0.device)  # log-normal noise level
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    noisy = x0 + sigma * noise
    c_in = 1.0 / torch.sqrt(sigma ** 2 + 1)
    out = model.predict((noisy * c_in)[None], (0.25 * torch.log(sigma)).reshape(1), cond)[0].float()
    denoised = noisy / (sigma ** 2 + 1) - out * sigma / torch.sqrt(sigma ** 2 + 1)
    weight = (sigma ** 2 + 1) / sigma ** 2
    return weight * torch.mean((denoised - x0) ** 2)


def _ddpm_loss(model, x0, cond, generator) -> torch.Tensor:
    """Discrete-time loss (epsilon or v target) for schedulers defined by alphas_cumprod (DDIM family)."""
    sched = model.scheduler
    n = int(sched.config.num_train_timesteps)
    t = torch.randint(0, n, (1,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    abar = sched.alphas_cumprod[t].to(x0.device, torch.float32)
    noisy = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    out = model.predict(noisy[None], t.to(x0.device), cond)[0].float()
    if sched.config.prediction_type == "v_prediction":
        target = abar.sqrt() * noise - (1 - abar).sqrt() * x0
    else:
        target = noise
    return torch.mean((out - target) ** 2)


def icadapt(model, clips: Sequence, steps: int = 500, lr: float = 1e-5, *, seed: int = 0,
            mixed_precision: bool | None = None, gradient_checkpointing: bool | None = None,
            max_grad_norm: float = 1.0, progress: Callable[[str, float], None] | None = None) -> ICAdaptResult:
    """Fine-tune ``model`` in place on ``clips`` (``Clip``s or ``(frames (T,H,W,3) uint8, fps)`` pairs).

    One random clip per step; its first frame conditions the model as in
    image-to-video training. Mixed precision (bf16, else fp16 with loss
    scaling) and gradient checkpointing default to on for CUDA and off on the CPU.
    """
    if not clips:
        raise InputError("ICAdapt needs at least one clip of rendered frames")
    # Clip objects or (frames, fps) pairs, as the estimator's icadapt_clips() returns them.
    clips = [(c.frames, c.fps) if hasattr(c, "frames") else (c[0], c[1]) for c in clips]
    cuda = model.device.type == "cuda"
    mixed_precision = cuda if mixed_precision is None else mixed_precision
    gradient_checkpointing = cuda if gradient_checkpointing is None else gradient_checkpointing
    # Master weights in float32 even when the model was loaded in half precision for inference.
    run_dtype = model.dtype
    if run_dtype != torch.float32:
        model.to(model.device, torch.float32)
    trainable = set_trainable(model)
    roles = parameter_roles(model)
    before = {n: p.detach().to("cpu", copy=True) for n, p in trainable.items()}
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)

    # A clip's encodings and frozen CLIP features never change during training: computed on first use.
    cache: dict[int, tuple] = {}

    def prepared(i: int) -> tuple:
        if i not in cache:
            frames = np.asarray(clips[i][0])
            m = model.size_multiple
            size = tuple(max(m, int(round(s / m)) * m) for s in frames.shape[1:3])
            if size != frames.shape[1:3]:
                from .generation import _resize

                frames = _resize(frames, size)
            cache[i] = (model.encode(frames).float(), model.image_features(frames[:1]),
                        model.concat_latents(frames[0], gen), float(clips[i][1]), len(frames))
        return cache[i]

    model.unet.train()
    if gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    amp_dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=mixed_precision and amp_dtype == torch.float16)
    opt = torch.optim.AdamW(list(trainable.values()), lr=lr, weight_decay=0.0)
    continuous = getattr(model.scheduler.config, "timestep_type", "discrete") == "continuous"
    loss_fn = _edm_loss if continuous else _ddpm_loss
    losses = []
    try:
        for step in range(steps):
            x0, feats, cat, fps, T = prepared(int(rng.integers(len(clips))))
            with torch.autocast(model.device.type, dtype=amp_dtype, enabled=mixed_precision):
                from .model import Conditioning

                cond = Conditioning(model.project(feats), cat[:, None].repeat(1, T, 1, 1, 1), model.added_time_ids(fps))
                loss = loss_fn(model, x0, cond, gen)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(list(trainable.values()), max_grad_norm)
            scaler.step(opt)
            scaler.update()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(f"ICAdapt step {step + 1}/{steps} loss {losses[-1]:.4f}", (step + 1) / steps)
    finally:
        model.unet.eval()
        if gradient_checkpointing:
            model.unet.disable_gradient_checkpointing()
        for p in named_parameters(model).values():
            p.requires_grad_(False)
    delta = {n: p.detach().to("cpu", copy=True) for n, p in trainable.items() if not torch.equal(p.detach().cpu(), before[n])}
    if run_dtype != torch.float32:
        model.to(model.device, run_dtype)
    return ICAdaptResult(losses, delta, sorted(trainable), sorted(n for n, r in roles.items() if r != TRAINABLE))


def save_delta(delta: dict[str, torch.Tensor], path: str | Path, base_model: str = "",
               dtype: torch.dtype | None = None) -> Path:
    """Write the changed trainable parameters as safetensors (atomically: temp file, then rename).

    ``dtype`` (for example ``torch.float16``) halves the file for large models
    at the cost of an inexact round trip; by default values are kept as trained.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: (v if dtype is None else v.to(dtype)).contiguous() for k, v in delta.items()}, str(tmp),
              metadata={"format": DELTA_FORMAT, "base_model": base_model})
    tmp.replace(path)
    return path


def load_delta(model, path: str | Path) -> list[str]:
    """Apply a delta saved by :func:`save_delta` to ``model``; refuse one that touches frozen parameters."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError("adapted-weights file not found", file=str(path))
    params = named_parameters(model)
    roles = parameter_roles(model)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != DELTA_FORMAT:
            raise InputError(f"not an ICAdapt delta (format {meta.get('format')!r})", file=str(path))
        names = list(f.keys())
        for name in names:
            if name not in params:
                raise InputError(f"delta names {name!r}, which this model does not have", file=str(path))
            if roles[name] != TRAINABLE:
                raise InputError(f"delta changes {name!r}, which ICAdapt keeps frozen", file=str(path))
            t = f.get_tensor(name)
            if t.shape != params[name].shape:
                raise InputError(f"delta {name!r} has shape {tuple(t.shape)}, model has {tuple(params[name].shape)}",
                                 file=str(path))
            with torch.no_grad():
                params[name].copy_(t.to(params[name].device, params[name].dtype))
    return names
