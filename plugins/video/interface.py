"""What the pipeline calls to get in-between frames: the ``VideoPrior`` interface and the diffusion plugin.

A video prior (a "video source" in the registry) receives images of the
character at known times (context and keyframes, all from one camera), the
times to fill, the rate of those times and a text prompt, and returns one
image per time to fill. Implementations register under the
``anymole_usd.video_sources`` entry-point group. This module imports no
torch: the diffusion implementation loads its model on first use.
"""
from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from anymole_usd.errors import InputError
from anymole_usd.parameters import Param, Parameters

Progress = Callable[[str, float], None]


@dataclass
class Clip:
    """Consecutive rendered frames of the shot and their frame rate (frames per second)."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float


class VideoPrior(ABC):
    """Base class of video sources registered under ``anymole_usd.video_sources``.

    Times are in the stage's time codes; ``fps`` is time codes per second
    (``seconds = time / fps``). Images are ``(H, W, 3)`` uint8, all the same size;
    the returned images have that size too. Constructor keyword arguments are
    the source's parameters (recorded in provenance), declared once in
    ``param_spec`` (:mod:`anymole_usd.parameters`): validated and typed here,
    listed by ``anymole-usd plugins --details``.
    """

    name: str = ""
    description: str = ""
    param_spec: Parameters = Parameters()

    def __init__(self, **params: Any) -> None:
        self.params = self.param_spec.validate(params, owner=f"{self.name or type(self).__name__} video source")

    def parameters(self) -> dict:
        return dict(self.params)

    def adapt(self, clips: Sequence[Clip | tuple[np.ndarray, float]], *, progress: Progress | None = None,
              prompt: str = "") -> None:
        """Adapt to the shot's own renders before generating (ICAdapt); a no-op by default.

        ``clips``: ``Clip`` objects or ``(frames, fps)`` pairs (the estimator's ``icadapt_clips`` output);
        ``prompt``: the text the video will be generated with (text-conditioned families train with it)."""

    @property
    def adapts(self) -> bool:
        """Whether :meth:`adapt` does anything here (the source overrides the no-op): callers skip
        building the adaptation clips, which costs seconds on a long shot, when it does not."""
        return type(self).adapt is not VideoPrior.adapt

    @abstractmethod
    def generate(
        self,
        known_frames: Mapping[float, np.ndarray],
        fill_times: Sequence[float],
        fps: float,
        prompt: str = "",
        *,
        keyframe_times: Sequence[float] | None = None,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> dict[float, np.ndarray]:
        """Return ``{time: image}`` for every time in ``fill_times``."""


def check_frames(known_frames: Mapping[float, np.ndarray], fill_times: Sequence[float], fps: float) -> tuple[int, int]:
    """Validate the request; return the common image size (H, W)."""
    if not known_frames:
        raise InputError("the video prior needs at least one known frame")
    if not fps or fps <= 0:
        raise InputError(f"fps must be positive, got {fps!r}")
    shapes = {np.asarray(img).shape for img in known_frames.values()}
    if len(shapes) != 1:
        raise InputError(f"known frames differ in size: {sorted(shapes)}")
    shape = shapes.pop()
    if len(shape) != 3 or shape[2] != 3:
        raise InputError(f"known frames must be HxWx3 images, got shape {shape}")
    for t, img in known_frames.items():
        if np.asarray(img).dtype != np.uint8:
            raise InputError("known frames must be uint8 images", time=float(t))
    if len(fill_times) and not np.all(np.isfinite(np.asarray(fill_times, dtype=float))):
        raise InputError("times to fill must be finite numbers")
    return shape[0], shape[1]


def frames_digest(known_frames: Mapping[float, np.ndarray], *extra: Any) -> str:
    """Content hash of frames and settings, for caching generated videos and adapted weights."""
    h = hashlib.sha256()
    for t in sorted(known_frames):
        h.update(np.float64(t).tobytes())
        h.update(np.ascontiguousarray(known_frames[t]).tobytes())
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()[:24]


class DiffusionVideoPrior(VideoPrior):
    """AnyMoLe's video prior on a diffusers video model: SVD (UNetSpatioTemporalConditionModel, latent
    inpainting and two stages) or a keyframe-conditioned family (Wan VACE, Wan first-last-frame, LTX-Video;
    :mod:`.families`), picked from the folder's model_index.json.

    Parameters (all optional): ``model`` (local folder or hub id; else env var
    or config file), ``variant`` (e.g. ``fp16`` weight files), ``device``, ``dtype``, ``steps`` (denoising steps per
    window), ``guidance_scale``, ``context_threshold`` (of 1000), ``coarse_fps``,
    ``fine_fps``, ``window`` (frames per window), ``two_stage``, ``icadapt_steps``,
    ``icadapt_lr``, ``cache_dir`` (adapted weights and videos by content hash).
    """

    name = "diffusion"
    description = "video diffusion model with ICAdapt and two-stage context-guided generation (AnyMoLe)"
    param_spec = Parameters(
        Param("model", None, "model folder or hub id (default: ANYMOLE_USD_VIDEO_MODEL or the config file)",
              nullable=True),
        Param("variant", None, "weight-file variant (e.g. fp16)", nullable=True),
        Param("device", None, "torch device (default: cuda when present, else cpu)", nullable=True),
        Param("dtype", None, "float32, float16 or bfloat16 (default: float16 on CUDA, float32 on CPU)",
              nullable=True),
        Param("steps", None, "denoising steps per window (default: the family's)", type=int, min=1, nullable=True),
        Param("guidance_scale", None, "classifier-free guidance (default: the family's)", type=float, min=0.0,
              nullable=True),
        Param("context_threshold", None, "SVD: context imposed while the noise level is above this (of 1000)",
              type=float, min=0.0, max=1000.0, nullable=True),
        Param("coarse_fps", None, "SVD: stage-1 rate", type=float, min=0.0, min_exclusive=True, nullable=True),
        Param("fine_fps", None, "SVD: stage-2 rate", type=float, min=0.0, min_exclusive=True, nullable=True),
        Param("window", None, "frames per generation window (default: the family's)", type=int, min=2,
              nullable=True),
        Param("two_stage", None, "SVD: coarse then fine video", type=bool, nullable=True),
        Param("icadapt_steps", 500, "ICAdapt steps (0: none)", min=0),
        Param("icadapt_lr", None, "ICAdapt learning rate (default: 1e-5 for SVD's spatial layers, 1e-4 for the "
              "transformer families' LoRA)", type=float, min=0.0, min_exclusive=True, nullable=True),
        Param("lora_rank", 16, "rank of the ICAdapt LoRA (transformer families)", min=1, max=256),
        Param("seed", 0, "random seed"),
        Param("cache_dir", None, "cache of adapted weights and generated videos", nullable=True),
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._model = None
        self._delta_path: Path | None = None

    @property
    def model(self):
        if self._model is None:
            from .model_loading import load_video_model

            self._model = load_video_model(self.params.get("model"), device=self.params.get("device"),
                                           dtype=self.params.get("dtype"), variant=self.params.get("variant"))
        return self._model

    def _cache_dir(self) -> Path | None:
        d = self.params.get("cache_dir")
        return Path(d) if d else None

    def adapt(self, clips, *, progress: Progress | None = None, prompt: str = "") -> None:
        if getattr(self.model, "keyed", False):
            return self._adapt_lora(clips, progress, prompt)
        from .icadapt import icadapt, load_delta, save_delta

        steps = int(self.params.get("icadapt_steps", 500))
        lr = float(self.params.get("icadapt_lr") or 1e-5)
        seed = int(self.params.get("seed", 0))
        pairs = [(c.frames, c.fps) if hasattr(c, "frames") else (c[0], c[1]) for c in clips]
        key = frames_digest({float(i): f for i, (f, _) in enumerate(pairs)},
                            [fps for _, fps in pairs], self.model.model_id, steps, lr, seed)
        cache = self._cache_dir()
        path = cache / f"icadapt-{key}.safetensors" if cache else None
        if path is not None and path.is_file():
            load_delta(self.model, path)
            self._delta_path = path
            if progress:
                progress("ICAdapt: reused cached adapted weights", 1.0)
            return
        result = icadapt(self.model, pairs, steps=steps, lr=lr, seed=seed, progress=progress)
        if path is not None:
            save_delta(result.delta, path, base_model=self.model.model_id)
            self._delta_path = path

    def _adapt_lora(self, clips, progress: Progress | None, prompt: str) -> None:
        """ICAdapt of a transformer family: the image-only LoRA of :mod:`.lora`, cached by content hash."""
        from .lora import load_lora, lora_icadapt, save_lora, single_frames

        steps = int(self.params.get("icadapt_steps", 500))
        lr = float(self.params.get("icadapt_lr") or 1e-4)
        rank, seed = int(self.params.get("lora_rank", 16)), int(self.params.get("seed", 0))
        frames = single_frames(clips)
        key = frames_digest({float(i): f for i, f in enumerate(frames)}, self.model.model_id, self.model.family,
                            steps, lr, rank, seed, prompt)
        cache = self._cache_dir()
        path = cache / f"lora-{key}.safetensors" if cache else None
        if path is not None and path.is_file():
            load_lora(self.model, path)
            self._delta_path = path
            if progress:
                progress("ICAdapt: reused the cached LoRA", 1.0)
            return
        state = lora_icadapt(self.model, frames, prompt, steps=steps, lr=lr, rank=rank, seed=seed, progress=progress)
        if path is not None:
            save_lora(state, path, rank=rank, targets=self.model.lora["targets"], base_model=self.model.model_id)
            self._delta_path = path

    def generate(self, known_frames, fill_times, fps, prompt="", *, keyframe_times=None, seed=0, progress=None):
        from .generation import generate_inbetween_video

        check_frames(known_frames, fill_times, fps)
        p = self.params
        settings = {k: p[k] for k in ("steps", "guidance_scale", "context_threshold", "coarse_fps", "fine_fps",
                                       "window", "two_stage") if k in p}
        cache = self._cache_dir()
        path = None
        if cache is not None:
            key = frames_digest(known_frames, sorted(map(float, fill_times)), fps, prompt,
                                None if keyframe_times is None else sorted(map(float, keyframe_times)), seed,
                                settings, self.model.model_id, str(self._delta_path or ""))
            path = cache / f"video-{key}.npz"
            if path.is_file():
                with np.load(path) as data:
                    return {float(t): img for t, img in zip(data["times"], data["frames"])}
        settings = {k: v for k, v in settings.items() if v is not None}
        if getattr(self.model, "keyed", False):
            from .keyed_generation import generate_keyed_video

            out = generate_keyed_video(self.model, known_frames, fill_times, fps, prompt,
                                       keyframe_times=keyframe_times, window=settings.get("window"),
                                       steps=settings.get("steps"), guidance_scale=settings.get("guidance_scale"),
                                       seed=seed, progress=progress)
        else:
            kw = {"num_inference_steps": settings.pop("steps")} if "steps" in settings else {}
            kw.update(settings)
            out = generate_inbetween_video(self.model, known_frames, fill_times, fps, prompt,
                                           keyframe_times=keyframe_times, seed=seed, progress=progress, **kw)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            times = np.array(sorted(out), dtype=np.float64)
            np.savez(tmp, times=times, frames=np.stack([out[t] for t in times]))
            tmp.replace(path)
        return out
