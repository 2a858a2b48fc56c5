"""Load a diffusers-format image-to-video model from a local folder or a Hugging Face hub id.

Safety and offline rules: only ``*.safetensors`` weights are ever read
(``use_safetensors=True``; a folder holding only pickle ``.bin`` weights is
refused before anything is unpickled); no remote code runs
(``trust_remote_code=False``, and only JSON and safetensors files are fetched
from the hub); a local folder is loaded with ``local_files_only=True``, and so
is a hub id when ``HF_HUB_OFFLINE`` is set. Any missing or unreachable model
raises :class:`ModelUnavailableError` with one line naming the model and how to
provide one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from anymole_usd.errors import ModelUnavailableError

from anymole_usd.settings import resolve

HOW_TO_PROVIDE = ("provide a diffusers-format model folder or hub id with --video-model PATH_OR_HUB_ID, "
                  "the ANYMOLE_USD_VIDEO_MODEL environment variable, or `model = \"...\"` under [video] in "
                  "./anymole-usd.toml or ~/.config/anymole-usd/config.toml")

# Component folders of a model and the classes that may live in them.
WEIGHT_COMPONENTS = ("unet", "vae", "image_encoder")
SUPPORTED_UNETS = ("UNetSpatioTemporalConditionModel",)
SUPPORTED_SCHEDULERS = ("EulerDiscreteScheduler", "DDIMScheduler")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def unavailable(model_id: str, reason: str) -> ModelUnavailableError:
    return ModelUnavailableError(f"video model {model_id!r} is not available ({reason}); {HOW_TO_PROVIDE}")


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_path(model_id: str) -> bool:
    return model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1 or "\\" in model_id or os.path.exists(model_id)


def _allow_patterns(variant: str | None) -> list[str]:
    """Only configs and safetensors of the components we use: never pickles, code or original checkpoints."""
    weights = f"*.{variant}.safetensors" if variant else "*.safetensors"
    pats = ["model_index.json"]
    for sub in (*WEIGHT_COMPONENTS, "scheduler", "feature_extractor"):
        pats += [f"{sub}/*.json", f"{sub}/{weights}"]
    return pats


def fetch(model_id: str, variant: str | None = None) -> Path:
    """A local folder for ``model_id``: the folder itself, or a hub snapshot (cache only when offline)."""
    if _looks_like_path(model_id):
        path = Path(model_id).expanduser()
        if not path.is_dir():
            raise unavailable(model_id, "no such folder")
        return path
    try:
        from huggingface_hub import snapshot_download

        from .families import allow_patterns, model_family

        # model_index.json first: it names the family, hence the files to fetch
        index = Path(snapshot_download(model_id, allow_patterns=["model_index.json"], local_files_only=offline()))
        patterns = _allow_patterns(variant) if model_family(index, model_id) == "svd" else allow_patterns(variant)
        folder = snapshot_download(model_id, allow_patterns=patterns,
                                   ignore_patterns=None if variant else ["*.fp16.*", "*.bf16.*"],
                                   local_files_only=offline())
    except ModelUnavailableError:
        raise
    except Exception as exc:  # not cached offline, unknown repo, gated, no network: all mean "unavailable"
        why = "not in the local Hugging Face cache and HF_HUB_OFFLINE is set" if offline() else \
            f"could not fetch it from the hub: {type(exc).__name__}"
        raise unavailable(model_id, why) from None
    return Path(folder)


def _class_name(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("_class_name")
    except (OSError, ValueError):
        return None


def check_model_folder(folder: Path, model_id: str, variant: str | None = None) -> None:
    """Refuse a folder that lacks a component, holds only pickle weights, or is of an unsupported family."""
    for sub in (*WEIGHT_COMPONENTS, "scheduler"):
        if not (folder / sub).is_dir():
            raise unavailable(model_id, f"{folder / sub} is missing; expected a diffusers-format folder with "
                                        f"unet/, vae/, image_encoder/ and scheduler/")
    for sub in WEIGHT_COMPONENTS:
        files = [p.name for p in (folder / sub).iterdir() if p.is_file()]
        wanted = [f for f in files if f.endswith(".safetensors") and (variant is None or f".{variant}." in f)]
        if not wanted:
            pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
            if pickles:
                raise unavailable(model_id, f"{folder / sub} holds only pickle weights ({pickles[0]}); anymole-usd "
                                            "loads safetensors only: re-save it with save_pretrained(safe_serialization=True)")
            raise unavailable(model_id, f"no {variant + ' ' if variant else ''}safetensors weights in {folder / sub}")
    unet = _class_name(folder / "unet" / "config.json")
    if unet not in SUPPORTED_UNETS:
        raise unavailable(model_id, f"unsupported model family {unet!r} (supported: {', '.join(SUPPORTED_UNETS)}; "
                                    "docs/video-prior.md says how to add one)")
    sched = _class_name(folder / "scheduler" / "scheduler_config.json")
    if sched not in SUPPORTED_SCHEDULERS:
        raise unavailable(model_id, f"unsupported scheduler {sched!r} (supported: {', '.join(SUPPORTED_SCHEDULERS)})")


def _normalization(folder: Path, image_size: int):
    """Image-encoder input size and normalisation from feature_extractor/preprocessor_config.json (JSON only)."""
    from .model import CLIP_MEAN, CLIP_STD, ImageNormalization

    cfg_path = folder / "feature_extractor" / "preprocessor_config.json"
    cfg = {}
    if cfg_path.is_file():
        try:
            cfg = json.loads(cfg_path.read_text())
        except ValueError:
            raise unavailable(str(folder), f"{cfg_path} is not valid JSON") from None
    crop = cfg.get("crop_size", image_size)
    if isinstance(crop, dict):
        size = (int(crop.get("height", image_size)), int(crop.get("width", image_size)))
    else:
        size = (int(crop), int(crop))
    return ImageNormalization(size=size, mean=tuple(cfg.get("image_mean", CLIP_MEAN)), std=tuple(cfg.get("image_std", CLIP_STD)))


def parse_dtype(dtype, device: str):
    import torch

    if dtype is None:
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
             "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if str(dtype) not in table:
        raise ValueError(f"unknown dtype {dtype!r} (use one of {', '.join(table)})")
    return table[str(dtype)]


def load_video_model(model: str | None = None, *, device: str | None = None, dtype=None, variant: str | None = None):
    """Resolve (option > env > config file), fetch if needed, check and load the model: a :class:`VideoModel`
    (SVD family) or a :class:`~.transformer_model.TransformerVideoModel` (Wan VACE, Wan first-last-frame,
    LTX-Video; see :mod:`.families`)."""
    setting = resolve("video.model", model)
    if setting.value is None:
        raise ModelUnavailableError(f"no video model configured; {HOW_TO_PROVIDE}")
    model_id = setting.value
    folder = fetch(model_id, variant)
    from .families import load_transformer_family, model_family

    family = model_family(folder, model_id)
    if family != "svd":
        import torch

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return load_transformer_family(folder, family, model_id, device=device, dtype=parse_dtype(dtype, device),
                                       variant=variant)
    check_model_folder(folder, model_id, variant)

    import torch
    from diffusers import AutoencoderKLTemporalDecoder, DDIMScheduler, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from transformers import CLIPVisionModelWithProjection

    from .model import VideoModel

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = parse_dtype(dtype, device)
    kw = dict(use_safetensors=True, local_files_only=True, variant=variant)
    try:
        unet = UNetSpatioTemporalConditionModel.from_pretrained(folder, subfolder="unet", **kw)
        vae = AutoencoderKLTemporalDecoder.from_pretrained(folder, subfolder="vae", **kw)
        image_encoder = CLIPVisionModelWithProjection.from_pretrained(folder, subfolder="image_encoder",
                                                                      trust_remote_code=False, **kw)
        sched_cls = {"EulerDiscreteScheduler": EulerDiscreteScheduler, "DDIMScheduler": DDIMScheduler}[
            _class_name(folder / "scheduler" / "scheduler_config.json")]
        scheduler = sched_cls.from_pretrained(folder, subfolder="scheduler", local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise unavailable(model_id, f"loading failed: {first}") from None
    norm = _normalization(folder, int(image_encoder.config.image_size))
    return VideoModel(unet, vae, image_encoder, scheduler, norm, model_id=model_id, device=device, dtype=dtype)
