"""Which video model family a diffusers folder holds, and loading the keyframe-conditioned families.

The family is read from ``model_index.json`` (``_class_name``), never guessed from
weights:

| ``_class_name`` | family | how known frames enter |
|---|---|---|
| ``StableVideoDiffusionPipeline`` (or no model_index.json with ``unet/``) | ``svd`` | first frame + latent inpainting (:mod:`.model`) |
| ``WanVACEPipeline`` | ``wan-vace`` (Wan 2.1 / 2.2 VACE) | conditioning video + mask, any frames |
| ``WanImageToVideoPipeline`` | ``wan-flf2v`` (Wan first-last-frame / image-to-video) | ``image`` + ``last_image`` per gap |
| ``LTXConditionPipeline``, ``LTXPipeline``, ``LTXImageToVideoPipeline`` | ``ltx`` (LTX-Video 0.9.x) | ``LTXVideoCondition`` at any frame index |

Components are loaded one by one from a whitelist of classes (no class named by
the folder is imported otherwise), weights from ``*.safetensors`` only
(``use_safetensors=True``; a component with only pickle weights is refused
before anything is unpickled), ``local_files_only=True`` and no remote code.
A tokenizer is optional: without one, prompts are encoded from their UTF-8
bytes (tiny test models; real checkpoints ship their tokenizer).
"""
from __future__ import annotations

import json
from pathlib import Path

from .model_loading import PICKLE_SUFFIXES, unavailable

PIPELINES = {
    "StableVideoDiffusionPipeline": "svd",
    "WanVACEPipeline": "wan-vace",
    "WanImageToVideoPipeline": "wan-flf2v",
    "LTXConditionPipeline": "ltx",
    "LTXPipeline": "ltx",
    "LTXImageToVideoPipeline": "ltx",
}
# component class -> library it comes from; anything else in model_index.json is refused
CLASSES = {
    "UMT5EncoderModel": "transformers", "T5EncoderModel": "transformers", "CLIPVisionModel": "transformers",
    "CLIPVisionModelWithProjection": "transformers", "CLIPImageProcessor": "transformers",
    "CLIPImageProcessorPil": "transformers",
    "AutoTokenizer": "transformers", "T5Tokenizer": "transformers", "T5TokenizerFast": "transformers",
    "AutoencoderKLWan": "diffusers", "AutoencoderKLLTXVideo": "diffusers", "WanVACETransformer3DModel": "diffusers",
    "WanTransformer3DModel": "diffusers", "LTXVideoTransformer3DModel": "diffusers",
    "FlowMatchEulerDiscreteScheduler": "diffusers", "UniPCMultistepScheduler": "diffusers",
    "DPMSolverMultistepScheduler": "diffusers",
}
WEIGHTS = ("text_encoder", "transformer", "transformer_2", "vae", "image_encoder")
FAMILY_PIPELINE = {"wan-vace": "WanVACEPipeline", "wan-flf2v": "WanImageToVideoPipeline", "ltx": "LTXConditionPipeline"}


def model_index(folder: Path) -> dict:
    path = folder / "model_index.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise unavailable(str(folder), f"{path} is not valid JSON") from None


def model_family(folder: Path, model_id: str = "") -> str:
    """``svd``, ``wan-vace``, ``wan-flf2v`` or ``ltx``; ModelUnavailableError for anything else."""
    index = model_index(folder)
    name = index.get("_class_name")
    if name is None:
        if (folder / "unet").is_dir():
            return "svd"  # an SVD folder saved component by component
        raise unavailable(model_id or str(folder), f"no model_index.json in {folder}: not a diffusers pipeline folder")
    if name not in PIPELINES:
        raise unavailable(model_id or str(folder), f"unsupported pipeline {name!r} (supported: "
                                                   f"{', '.join(sorted(PIPELINES))}; docs/video-prior.md)")
    return PIPELINES[name]


def components(folder: Path, model_id: str, variant: str | None = None) -> dict[str, tuple[str, str] | None]:
    """``{component: (library, class) or None}`` from model_index.json, each checked (whitelist, safetensors)."""
    out = {}
    for key, value in model_index(folder).items():
        if key.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        lib, cls = value
        if cls is None:
            out[key] = None
            continue
        if CLASSES.get(cls) != lib:
            raise unavailable(model_id, f"component {key} is {lib}.{cls}, which anymole-usd does not load")
        sub = folder / key
        if not sub.is_dir():
            if key == "tokenizer":  # optional: prompts fall back to byte ids
                out[key] = None
                continue
            raise unavailable(model_id, f"{sub} is missing")
        if key in WEIGHTS:
            files = [p.name for p in sub.iterdir() if p.is_file()]
            wanted = [f for f in files if (f.endswith(".safetensors") or f.endswith(".safetensors.index.json"))
                      and (variant is None or f".{variant}." in f)]
            if not wanted:
                pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
                if pickles:
                    raise unavailable(model_id, f"{sub} holds only pickle weights ({pickles[0]}); anymole-usd loads "
                                                "safetensors only: re-save it with save_pretrained(safe_serialization=True)")
                raise unavailable(model_id, f"no {variant + ' ' if variant else ''}safetensors weights in {sub}")
        out[key] = (lib, cls)
    return out


def load_components(folder: Path, model_id: str, variant: str | None, dtype) -> dict:
    """Every component of the folder, loaded safetensors-only and offline from its whitelisted class."""
    import diffusers
    import transformers

    loaded = {}
    for key, spec in components(folder, model_id, variant).items():
        if spec is None:
            loaded[key] = None
            continue
        lib, cls_name = spec
        cls = getattr(diffusers if lib == "diffusers" else transformers, cls_name)
        sub = str(folder / key)
        try:
            if key == "scheduler":
                loaded[key] = cls.from_pretrained(sub, local_files_only=True)
            elif key in ("tokenizer", "image_processor"):
                loaded[key] = cls.from_pretrained(sub, local_files_only=True, trust_remote_code=False)
            else:
                kw = {"use_safetensors": True, "local_files_only": True, "variant": variant, "torch_dtype": dtype}
                if lib == "transformers":
                    kw["trust_remote_code"] = False
                loaded[key] = cls.from_pretrained(sub, **kw)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise unavailable(model_id, f"loading {key} failed: {first}") from None
    return loaded


def allow_patterns(variant: str | None) -> list[str]:
    """Hub files a transformer family needs: configs, safetensors, tokenizer and processor files (no pickles)."""
    weights = f"*.{variant}.safetensors" if variant else "*.safetensors"
    pats = ["model_index.json"]
    for sub in WEIGHTS:
        pats += [f"{sub}/*.json", f"{sub}/{weights}"]
    pats += ["scheduler/*.json", "tokenizer/*.json", "tokenizer/*.model", "tokenizer/*.txt", "image_processor/*.json"]
    return pats


def load_transformer_family(folder: Path, family: str, model_id: str, *, device: str, dtype, variant=None):
    """A ready :class:`~.transformer_model.TransformerVideoModel` of ``family`` from ``folder``."""
    import diffusers

    from .transformer_model import FAMILY_MODELS

    parts = load_components(folder, model_id, variant, dtype)
    pipeline_cls = getattr(diffusers, FAMILY_PIPELINE[family])
    import inspect

    wanted = [p for p in inspect.signature(pipeline_cls.__init__).parameters if p != "self"]
    kwargs = {k: parts.get(k) for k in wanted if k in parts or k in ("tokenizer", "transformer_2", "image_encoder",
                                                                        "image_processor")}
    extra = {k: v for k, v in model_index(folder).items() if k in ("boundary_ratio", "expand_timesteps")}
    try:
        pipe = pipeline_cls(**kwargs, **{k: v for k, v in extra.items() if k in wanted})
    except (TypeError, ValueError) as exc:
        raise unavailable(model_id, f"cannot assemble {pipeline_cls.__name__}: {exc}") from None
    return FAMILY_MODELS[family](pipe, model_id=model_id, device=device, dtype=dtype)
