"""ICAdapt for the transformer families: an image-only LoRA (peft) on the main blocks' projections.

The paper adapts the spatial layers of a UNet and leaves its temporal layers
alone. Diffusion transformers (Wan, LTX) mix space and time in one 3D attention,
so there is no temporal layer to freeze; instead the adaptation is a low-rank
delta on the attention and feed-forward projections of the main blocks
(:data:`.transformer_model.LORA_TARGET`), trained on single frames of the shot's
renders only (one-frame videos, flow-matching loss, "nothing known"
conditioning): it sees the character's appearance and never a motion, so it has
nothing temporal to learn. Embedders, the patch embedding and VACE's control
blocks are not adapted. The delta (the LoRA weights only) is saved as
safetensors with its rank and targets in the metadata, and loaded back with
:func:`load_lora`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from anymole_usd.errors import InputError

LORA_FORMAT = "anymole-usd/icadapt-lora/1"
ADAPTER = "icadapt"


def add_lora(model, rank: int, targets: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Add the (zero-initialised) LoRA to every denoiser of ``model``; returns the targets per denoiser."""
    from peft import LoraConfig

    targets = targets or {name: model.lora_targets(name) for name in model.denoisers()}
    for name, net in model.denoisers().items():
        if not targets.get(name):
            raise InputError(f"{model.family}: no attention/projection layer to adapt in {name}")
        if ADAPTER in (getattr(net, "peft_config", None) or {}):
            net.delete_adapters(ADAPTER)
        net.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets[name], lora_dropout=0.0,
                                   init_lora_weights=True), adapter_name=ADAPTER)
    return targets


def lora_state(model) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    out = {}
    for name, net in model.denoisers().items():
        for k, v in get_peft_model_state_dict(net, adapter_name=ADAPTER).items():
            out[f"{name}.{k}"] = v.detach().to("cpu", torch.float32).contiguous()
    return out


def lora_icadapt(model, frames: np.ndarray, prompt: str = "", *, steps: int = 500, lr: float = 1e-4,
                 rank: int = 16, seed: int = 0, max_grad_norm: float = 1.0,
                 progress: Callable[[str, float], None] | None = None) -> dict[str, torch.Tensor]:
    """Train the LoRA on ``frames`` (N, H, W, 3) uint8, one random frame per step; returns its weights."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or not len(frames):
        raise InputError("ICAdapt needs at least one rendered frame")
    targets = add_lora(model, rank)
    nets = model.denoisers()
    params = []
    for net in nets.values():
        for n, p in net.named_parameters():
            p.requires_grad_("lora_" in n)
            if "lora_" in n:
                params.append(p)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    latents: dict[int, torch.Tensor] = {}
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    for net in nets.values():
        net.train()
    try:
        for step in range(steps):
            i = int(rng.integers(len(frames)))
            if i not in latents:  # one VAE pass per frame
                latents[i] = model.encode_frame(frames[i])
            loss = model.training_loss(latents[i], frames[i], prompt, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            if progress is not None:
                progress(f"ICAdapt (LoRA rank {rank}) step {step + 1}/{steps} loss {float(loss.detach()):.4f}",
                         (step + 1) / steps)
    finally:
        for net in nets.values():
            net.eval()
            for p in net.parameters():
                p.requires_grad_(False)
    model.lora = {"rank": rank, "targets": targets}
    return lora_state(model)


def single_frames(clips: Sequence, limit: int = 64) -> np.ndarray:
    """Up to ``limit`` distinct frames, evenly spread, from ICAdapt clips (``Clip`` or ``(frames, fps)``)."""
    stacks = [np.asarray(c.frames if hasattr(c, "frames") else c[0]) for c in clips]
    if not stacks:
        raise InputError("ICAdapt needs at least one clip of rendered frames")
    frames = np.concatenate(stacks)
    _, first = np.unique(frames.reshape(len(frames), -1)[:, ::97], axis=0, return_index=True)  # cheap dedupe
    frames = frames[np.sort(first)]
    pick = np.unique(np.linspace(0, len(frames) - 1, min(limit, len(frames))).round().astype(int))
    return frames[pick]


def save_lora(state: dict[str, torch.Tensor], path: str | Path, *, rank: int, targets: dict[str, list[str]],
              base_model: str = "") -> Path:
    """Write the LoRA weights as safetensors (temp file, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": LORA_FORMAT, "base_model": base_model, "rank": str(rank),
                                         "targets": json.dumps(targets)})
    tmp.replace(path)
    return path


def load_lora(model, path: str | Path) -> list[str]:
    """Add the LoRA saved by :func:`save_lora` to ``model``; InputError when it does not fit the model."""
    from peft.utils import set_peft_model_state_dict
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError("adapted-weights file not found", file=str(path))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != LORA_FORMAT:
            raise InputError(f"not an ICAdapt LoRA (format {meta.get('format')!r})", file=str(path))
        state = {k: f.get_tensor(k) for k in f.keys()}
    rank, targets = int(meta["rank"]), json.loads(meta["targets"])
    if set(targets) != set(model.denoisers()):
        raise InputError(f"LoRA for denoisers {sorted(targets)}, the model has {sorted(model.denoisers())}",
                         file=str(path))
    add_lora(model, rank, targets)
    for name, net in model.denoisers().items():
        part = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")}
        result = set_peft_model_state_dict(net, part, adapter_name=ADAPTER)
        unexpected = getattr(result, "unexpected_keys", None) or []
        if unexpected:
            raise InputError(f"LoRA weight {unexpected[0]!r} does not fit {name}", file=str(path))
        net.eval()
    model.lora = {"rank": rank, "targets": targets}
    return sorted(state)
