"""Tiny random-weight models of the real classes, for tests and CPU smoke runs (no weights needed).

The sizes follow diffusers' own Stable Video Diffusion tests: a
``UNetSpatioTemporalConditionModel`` with block_out_channels (32, 64) (one
layer per block and two heads, to keep CPU tests quick), an
``AutoencoderKLTemporalDecoder`` with two blocks (latents at half the image
size) and a 5-layer CLIP vision tower on 32x32 inputs. Image sides must be
multiples of 4.
"""
from __future__ import annotations

import json
from pathlib import Path


def tiny_components(seed: int = 0, scheduler: str = "euler") -> dict:
    """The five components of a diffusers SVD folder, randomly initialised from ``seed``."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, DDIMScheduler, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=2, projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32, num_frames=16)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKLTemporalDecoder(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                                       down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"], latent_channels=4)
    torch.manual_seed(seed + 2)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=5, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    if scheduler == "euler":  # Stable Video Diffusion's own scheduler configuration
        sched = EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", interpolation_type="linear",
            num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
            steps_offset=1, timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True)
    elif scheduler == "ddim":
        sched = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, prediction_type="v_prediction", timestep_spacing="trailing",
                              clip_sample=False, set_alpha_to_one=False)
    else:
        raise ValueError(f"unknown scheduler {scheduler!r} (euler or ddim)")
    return {"unet": unet, "vae": vae, "image_encoder": image_encoder, "scheduler": sched}


def tiny_video_model(seed: int = 0, scheduler: str = "euler", device: str = "cpu"):
    """A ready :class:`VideoModel` on tiny random weights."""
    import torch

    from .model import ImageNormalization, VideoModel

    c = tiny_components(seed, scheduler)
    return VideoModel(c["unet"], c["vae"], c["image_encoder"], c["scheduler"], ImageNormalization(size=(32, 32)),
                      model_id=f"tiny-svd-{scheduler}-{seed}", device=device, dtype=torch.float32)


def save_tiny_model(folder: str | Path, seed: int = 0, scheduler: str = "euler", safe_serialization: bool = True) -> Path:
    """Write a diffusers-format folder (as ``StableVideoDiffusionPipeline.save_pretrained`` lays it out)."""
    folder = Path(folder)
    c = tiny_components(seed, scheduler)
    for name in ("unet", "vae", "image_encoder"):
        c[name].save_pretrained(folder / name, safe_serialization=safe_serialization)
    c["scheduler"].save_pretrained(folder / "scheduler")
    (folder / "feature_extractor").mkdir(parents=True, exist_ok=True)
    # Written directly: building a CLIPImageProcessor would pull an optional torchvision backend.
    (folder / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "CLIPImageProcessor", "crop_size": {"height": 32, "width": 32},
        "size": {"shortest_edge": 32}, "do_normalize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}, indent=2))
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableVideoDiffusionPipeline",
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
        "scheduler": ["diffusers", type(c["scheduler"]).__name__],
        "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
        "vae": ["diffusers", "AutoencoderKLTemporalDecoder"]}, indent=2))
    return folder
