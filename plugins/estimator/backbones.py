"""Image feature backbones for the joint estimator (the ``anymole_usd.backbones`` plugin group).

A backbone plugin is a class with ``create(model=None) -> Backbone``. The
backbone returns a list of feature maps (finest first) and declares their
channels and strides, the size its input must be a multiple of, whether it is
trained with the estimator, and the input size it works best at.

- ``cnn`` (default): a small CNN trained from scratch on the shot's renders;
  needs no weights.
- ``dinov2``: DINOv2 with registers (frozen) through transformers, from a
  local folder or a hub id; safetensors only, never remote code.
"""
from __future__ import annotations

import os

import torch
from torch import nn

from anymole_usd.errors import ModelUnavailableError
from anymole_usd.parameters import Param, Parameters

BACKBONE_MODEL_ENV = "ANYMOLE_USD_BACKBONE_MODEL"
DEFAULT_DINOV2 = "facebook/dinov2-with-registers-base"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class ResidualBlock(nn.Module):
    """x + branch(x), the branch's last BatchNorm scale zero-initialised: the block starts as the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
        )
        # Zero the BN scale rather than the conv: a zero conv followed by BN would divide by ~sqrt(eps).
        nn.init.zeros_(self.branch[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.branch(x)


class Backbone(nn.Module):
    """Base class: ``forward(images in [0, 1]) -> [feature maps]``, finest first."""

    name: str = ""
    channels: list[int]
    strides: list[int]
    size_multiple: int = 1
    default_input_size: int = 256  # longer image side fed to the network
    trainable: bool = True
    model_id: str | None = None  # weights identity, part of the estimator's cache key

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    @classmethod
    def create(cls, model: str | None = None) -> "Backbone":  # pragma: no cover - interface
        raise NotImplementedError


class CnnBackbone(Backbone):
    """A small CNN trained from scratch: stride-2 conv stages with residual blocks, features at 1/8 and 1/16."""

    param_spec = Parameters()  # trained from scratch: no model to name

    name = "cnn"
    size_multiple = 16
    default_input_size = 128  # a 256x256 render is seen at 128x128: CPU training in minutes

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 96)) -> None:
        super().__init__(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(ConvBNAct(3, w1, 3, 2), ConvBNAct(w1, w2, 3, 2))  # 1/4
        self.stage8 = nn.Sequential(ConvBNAct(w2, w3, 3, 2), ResidualBlock(w3))  # 1/8
        self.stage16 = nn.Sequential(ConvBNAct(w3, w4, 3, 2), ResidualBlock(w4))  # 1/16
        self.channels = [w3, w4]
        self.strides = [8, 16]

    @classmethod
    def create(cls, model: str | None = None) -> "CnnBackbone":
        if model:
            raise ModelUnavailableError(f"the cnn backbone is trained from scratch and takes no model ({model!r})")
        return cls()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f4 = self.stem(self.normalise(x))
        f8 = self.stage8(f4)
        return [f8, self.stage16(f8)]


class Dinov2Backbone(Backbone):
    """Frozen DINOv2 (with registers) patch features at stride 14, through transformers."""

    param_spec = Parameters(
        Param("model", None, f"DINOv2 folder or hub id (default: ${BACKBONE_MODEL_ENV} or {DEFAULT_DINOV2})",
              nullable=True),
    )

    name = "dinov2"
    default_input_size = 448
    trainable = False

    def __init__(self, model: nn.Module, model_id: str) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        cfg = model.config
        self.patch = int(cfg.patch_size)
        self.skip = 1 + int(getattr(cfg, "num_register_tokens", 0) or 0)  # CLS + registers
        self.channels = [int(cfg.hidden_size)]
        self.strides = [self.patch]
        self.size_multiple = self.patch
        self.model_id = model_id

    @classmethod
    def create(cls, model: str | None = None) -> "Dinov2Backbone":
        model_id = model or os.environ.get(BACKBONE_MODEL_ENV) or DEFAULT_DINOV2
        return cls(load_dinov2(model_id), model_id)

    def train(self, mode: bool = True) -> "Dinov2Backbone":
        super().train(mode)
        self.model.eval()  # frozen: dropout and friends stay off
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = x.shape
        with torch.no_grad():
            tokens = self.model(pixel_values=self.normalise(x)).last_hidden_state
        grid = tokens[:, self.skip:].transpose(1, 2).reshape(b, -1, h // self.patch, w // self.patch)
        return [grid.contiguous()]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "") not in ("", "0")


def load_dinov2(model_id: str) -> nn.Module:
    """A DINOv2(-with-registers) model from a local folder or a hub id; a clear error when it is not there.

    Safetensors weights only and no remote code. A hub id is looked up in the
    local cache only when offline (``HF_HUB_OFFLINE=1``).
    """
    from transformers import AutoConfig, AutoModel

    local = os.path.isdir(model_id)
    how = (f"provide it with --backbone-model PATH_OR_HUB_ID or {BACKBONE_MODEL_ENV} "
           f"(a folder saved with save_pretrained, safetensors weights), or use --backbone cnn")
    if not local and (os.path.exists(model_id) or model_id.startswith((".", "/", "~"))):
        raise ModelUnavailableError(f"backbone model {model_id!r} is not a folder; {how}")
    kwargs = {"local_files_only": local or _offline(), "trust_remote_code": False}
    try:
        config = AutoConfig.from_pretrained(model_id, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailableError(f"backbone model {model_id!r} is not available ({reason[:160]}); {how}") from None
    if getattr(config, "model_type", "") not in ("dinov2_with_registers", "dinov2"):
        raise ModelUnavailableError(f"backbone model {model_id!r} is a {config.model_type!r} model, "
                                    f"not DINOv2; {how}")
    try:
        return AutoModel.from_pretrained(model_id, use_safetensors=True, **kwargs)
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailableError(f"backbone model {model_id!r} has no loadable safetensors weights "
                                    f"({reason[:160]}); {how}") from None


def build_backbone(name: str = "cnn", model: str | None = None) -> Backbone:
    """The backbone plugin ``name`` (entry point group ``anymole_usd.backbones``), created with ``model``."""
    from anymole_usd import registry
    from anymole_usd.errors import InputError, PluginError

    try:
        cls = registry.load("backbones", name)
    except PluginError as exc:
        raise InputError(str(exc)) from None
    backbone = cls.create(model)
    if not isinstance(backbone, Backbone):
        raise PluginError(f"backbone plugin {name!r} did not return an estimator Backbone")
    return backbone
