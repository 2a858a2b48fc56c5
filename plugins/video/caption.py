"""Captioning plugins: the text prompt for the video model.

``fixed`` (default) builds a prompt from the animated prim's name, needing no
model. ``transformers`` captions a rendered context frame with an
image-to-text model (BLIP-style, through ``AutoModelForImageTextToText``) from
a local folder or hub id, set by the captioner's ``model`` parameter,
``ANYMOLE_USD_CAPTION_MODEL`` or ``caption_model`` under ``[video]`` in a config file. Same safety rules as
the video model: safetensors only, no remote code, offline when asked.
Both register under the ``anymole_usd.captioners`` entry-point group.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from anymole_usd.errors import InputError, ModelUnavailableError
from anymole_usd.parameters import Param, Parameters

from anymole_usd.settings import resolve

# Path components that say nothing about the character.
GENERIC = {"root", "scene", "world", "skel", "skeleton", "skelroot", "anim", "animation", "animations", "armature",
           "rig", "geo", "geom", "mesh", "meshes", "model", "character", "motion", "take", "clip", "action"}

CAPTION_HOW_TO = ("provide an image-to-text model folder or hub id with ANYMOLE_USD_CAPTION_MODEL "
                  "or `caption_model = \"...\"` under [video] in ./anymole-usd.toml or ~/.config/anymole-usd/config.toml")


def character_name(prim_path: str) -> str:
    """'/World/CesiumMan/Skeleton/Anim' -> 'cesium man'; 'character' when nothing specific is left."""
    parts = [p for p in re.split(r"[/:]", prim_path or "") if p]
    for part in reversed(parts):
        words = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", part).replace("_", " ").replace("-", " ").split()
        words = [w.lower() for w in words if not w.isdigit()]
        if words and " ".join(words) not in GENERIC and not all(w in GENERIC for w in words):
            return " ".join(words)
    return "character"


class Captioner:
    """Base class: ``caption(frames, prim_path) -> prompt``; parameters declared in ``param_spec``."""

    name = ""
    param_spec: Parameters = Parameters()

    def __init__(self, **params: Any) -> None:
        self.params = self.param_spec.validate(params, owner=f"{self.name or type(self).__name__} captioner")

    def caption(self, frames: Sequence[np.ndarray], prim_path: str = "") -> str:  # pragma: no cover - interface
        raise NotImplementedError


class FixedPromptCaptioner(Captioner):
    """A prompt from the prim's name; ``template`` may use ``{name}``."""

    name = "fixed"
    TEMPLATE = "a 3D rendered {name} moving naturally, full body, plain background, static camera"
    param_spec = Parameters(
        Param("template", TEMPLATE, "prompt template; {name} is the character's name from its prim path"),
    )

    def caption(self, frames: Sequence[np.ndarray] = (), prim_path: str = "") -> str:
        return self.params.get("template", self.TEMPLATE).format(name=character_name(prim_path))


class TransformersCaptioner(Captioner):
    """Caption the middle context frame with a transformers image-to-text model."""

    name = "transformers"
    param_spec = Parameters(
        Param("model", None, "image-to-text model folder or hub id (default: ANYMOLE_USD_CAPTION_MODEL or the "
              "config file)", nullable=True),
        Param("device", None, "torch device (default: cuda when present, else cpu)", nullable=True),
        Param("max_new_tokens", 30, "longest caption in tokens", min=1, max=512),
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._loaded = None

    def _load(self):
        if self._loaded is None:
            setting = resolve("video.caption_model", self.params.get("model"))
            if setting.value is None:
                raise ModelUnavailableError(f"no caption model configured; {CAPTION_HOW_TO}")
            self._loaded = load_caption_model(setting.value, device=self.params.get("device"))
        return self._loaded

    def caption(self, frames: Sequence[np.ndarray], prim_path: str = "") -> str:
        import torch

        processor, model = self._load()
        if len(frames) == 0:
            return FixedPromptCaptioner().caption((), prim_path)
        image = np.asarray(frames[len(frames) // 2])
        inputs = processor(images=image, return_tensors="pt").to(model.device)
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=int(self.params.get("max_new_tokens", 30)))
        text = processor.batch_decode(ids, skip_special_tokens=True)[0].strip()
        return text or FixedPromptCaptioner().caption((), prim_path)


def load_caption_model(model_id: str, device: str | None = None):
    """(processor, model) from a local folder or hub id; ModelUnavailableError naming it when it cannot load."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from .model_loading import offline

    def fail(reason: str) -> ModelUnavailableError:
        return ModelUnavailableError(f"caption model {model_id!r} is not available ({reason}); {CAPTION_HOW_TO}")

    path = Path(model_id).expanduser()
    if path.is_dir():
        folder = path
    elif model_id.startswith(("/", ".", "~")) or model_id.count("/") > 1:
        raise fail("no such folder")
    else:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(model_id, local_files_only=offline(),
                                            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
        except Exception as exc:  # not cached offline, unknown repo, no network
            raise fail("not in the local Hugging Face cache and HF_HUB_OFFLINE is set" if offline()
                       else f"could not fetch it from the hub: {type(exc).__name__}") from None
    files = [p.name for p in folder.iterdir()]
    if not any(f.endswith(".safetensors") for f in files):
        pickles = [f for f in files if f.endswith((".bin", ".pt", ".pth", ".ckpt"))]
        raise fail(f"{folder} holds only pickle weights ({pickles[0]}); safetensors only" if pickles
                   else f"no safetensors weights in {folder}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        processor = AutoProcessor.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
        model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                            trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise fail(f"loading failed: {first}") from None
    return processor, model.to(device).eval()


def load_captioner(name: str | None = None, **params: Any) -> Captioner:
    """The captioner to use: ``name`` if given, else ``transformers`` when a caption model is configured, else ``fixed``."""
    if name is None:
        name = "transformers" if resolve("video.caption_model", params.get("model")).value else "fixed"
    table = {"fixed": FixedPromptCaptioner, "transformers": TransformersCaptioner}
    if name not in table:
        from importlib import metadata

        eps = [ep for ep in metadata.entry_points(group="anymole_usd.captioners") if ep.name == name]
        if not eps:
            raise InputError(f"unknown captioner {name!r} (available: {', '.join(table)})")
        return eps[0].load()(**params)
    return table[name](**params)
