"""Tiny random-weight models of the real classes, for tests and CPU smoke runs (no weights needed).

Families: SVD (below), and the keyframe-conditioned transformer families
(:func:`tiny_family_pipeline`: Wan VACE, Wan first-last-frame, LTX-Video) from the
configurations in ../shared/VIDEO_AND_SCALE_NOTES.md, without tokenizer files
(prompts are then encoded from their bytes).

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


def tiny_family_pipeline(family: str, seed: int = 0):
    """A diffusers pipeline of ``family`` (``wan-vace``, ``wan-flf2v``, ``ltx``) on tiny random weights."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    torch.manual_seed(seed)
    if family in ("wan-vace", "wan-flf2v"):
        from diffusers import AutoencoderKLWan
        from transformers import UMT5Config, UMT5EncoderModel

        text = UMT5EncoderModel(UMT5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4))
        vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                               temperal_downsample=[False, True, True])
        common = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, out_channels=16,
                      text_dim=32, freq_dim=256, ffn_dim=32, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                      rope_max_seq_len=32)
        sched = FlowMatchEulerDiscreteScheduler(shift=7.0)
        if family == "wan-vace":
            from diffusers import WanVACEPipeline, WanVACETransformer3DModel

            tr = WanVACETransformer3DModel(in_channels=16, num_layers=3, vace_layers=[0, 2], vace_in_channels=96,
                                           **common)
            return WanVACEPipeline(tokenizer=None, text_encoder=text, vae=vae, transformer=tr, scheduler=sched)
        from diffusers import WanImageToVideoPipeline, WanTransformer3DModel
        from transformers import CLIPVisionConfig, CLIPVisionModel
        from transformers import CLIPImageProcessorPil  # the torchvision-free processor

        # first-last-frame: two CLIP images of 65 tokens each (pos_embed_seq_len, as Wan2.1-FLF2V's config)
        tr = WanTransformer3DModel(in_channels=36, num_layers=2, image_dim=4, pos_embed_seq_len=2 * 65, **common)
        enc = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, projection_dim=4, num_hidden_layers=2,
                                               num_attention_heads=2, image_size=32, intermediate_size=16,
                                               patch_size=4))
        proc = CLIPImageProcessorPil(crop_size=32, size={"shortest_edge": 32})
        return WanImageToVideoPipeline(tokenizer=None, text_encoder=text, vae=vae, transformer=tr, scheduler=sched,
                                       image_encoder=enc, image_processor=proc)
    if family == "ltx":
        from diffusers import AutoencoderKLLTXVideo, LTXConditionPipeline, LTXVideoTransformer3DModel
        from transformers import T5Config, T5EncoderModel

        text = T5EncoderModel(T5Config(vocab_size=100, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4))
        vae = AutoencoderKLLTXVideo(
            latent_channels=8, block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1,) * 5, decoder_layers_per_block=(1,) * 5,
            spatio_temporal_scaling=(True, True, False, False), decoder_spatio_temporal_scaling=(True, True, False, False),
            decoder_inject_noise=(False,) * 5, upsample_residual=(False,) * 4, upsample_factor=(1,) * 4,
            timestep_conditioning=False, patch_size=1, patch_size_t=1, encoder_causal=True, decoder_causal=False)
        vae.use_framewise_encoding = vae.use_framewise_decoding = False
        tr = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                        num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                        num_layers=1, caption_channels=32)
        return LTXConditionPipeline(tokenizer=None, text_encoder=text, vae=vae, transformer=tr,
                                    scheduler=FlowMatchEulerDiscreteScheduler())
    raise ValueError(f"unknown family {family!r} (wan-vace, wan-flf2v, ltx)")


def save_tiny_family(folder: str | Path, family: str, seed: int = 0) -> Path:
    """A diffusers-format folder of a tiny ``family`` pipeline (safetensors; no tokenizer files)."""
    import logging

    folder = Path(folder)
    pipe = tiny_family_pipeline(family, seed)
    level = logging.getLogger("diffusers").level
    logging.getLogger("diffusers").setLevel(logging.ERROR)  # "tokenizer=None cannot be saved": on purpose
    try:
        pipe.save_pretrained(folder, safe_serialization=True)
    finally:
        logging.getLogger("diffusers").setLevel(level)
    return folder
