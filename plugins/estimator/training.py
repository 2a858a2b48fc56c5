"""Train the estimator on a shot's renders, with a weight cache keyed by the renders and settings.

Deterministic for a seed and thread count on a given machine (seeded torch generator for
sampling and augmentation, seeded initialisation). A part of the context
frames (every view of them) is held out for validation; the weights with the
lowest validation loss are kept. Weights are cached under
``<cache>/<sha256 of renders + settings>/`` so a re-run does not retrain.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .augment import Augmentation, augment
from .backbones import build_backbone
from .dataset import KEY_WEIGHT, TRAIN_VIEWS, RenderSet, estimator_selection
from .framing import Framer, to_frame
from .model import EstimatorNet, estimator_loss, heatmap_loss, network_input_size

FORMAT_VERSION = 4  # bump when a change makes cached weights stale
CACHE_ENV = "ANYMOLE_USD_CACHE"
Progress = Callable[[str, float], None]


@dataclass
class EstimatorSettings:
    backbone: str = "cnn"
    backbone_model: str | None = None  # local folder or hub id (dinov2)
    input_size: int | None = None  # longer side fed to the network; None: the backbone's default
    steps: int = 800
    batch_size: int = 16
    lr: float = 2e-3  # one-cycle peak
    weight_decay: float = 1e-4
    key_weight: float = KEY_WEIGHT
    views: tuple[str, ...] = TRAIN_VIEWS
    augmentation: Augmentation = field(default_factory=Augmentation)
    val_fraction: float = 0.1
    val_every: int = 100
    seed: int = 0
    merge_channels: int = 96
    decoder_channels: int = 48
    # 8: heatmaps at the merged features' own resolution (no upsampling decoder stage): cheaper steps,
    # coarser 2D (worse on CesiumMan; docs/benchmarks.md, video round trip)
    heatmap_stride: int = 4
    pose_context: bool = True  # the whole 2D skeleton in the depth MLP's input (an addition to the paper)
    heatmap_weight: float = 20.0  # auxiliary Gaussian-heatmap cross-entropy; 0: the paper's loss only
    # "relative": depth about the character's mean joint depth, distance from its rigid lengths (depth.py);
    # "absolute": the paper's depth about each view's mean training depth
    depth_mode: str = "relative"
    normalise_pose: bool = True  # depth head sees 2D positions about the skeleton's centroid, per its spread
    # relative mode: the character's distance from its rigid "lengths" (default: holds at any distance),
    # from a second "network" depth per joint (the paper's absolute unit: cannot extrapolate beyond the
    # training renders' depths), or "blend" (geometric mean of the two); see docs/benchmarks.md
    distance: str = "lengths"
    # Top-down framing (framing.py): the character's box is zoomed to fill this fraction of the network's
    # view, at most max_zoom times, from the full-resolution render; 0: the whole render, as the paper
    framing: float = 0.75
    max_zoom: float = 3.0
    whole_fraction: float = 0.25  # training images shown whole (zoom 1) so the first prediction pass works
    threads: int | None = None  # torch CPU threads while training; None: fewer when the machine is busy

    def to_dict(self) -> dict:
        d = asdict(self)
        d["views"] = list(self.views)
        d["augmentation"] = self.augmentation.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EstimatorSettings":
        d = dict(d)
        d["views"] = tuple(d.get("views", TRAIN_VIEWS))
        d["augmentation"] = Augmentation(**d.get("augmentation", {}))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainedEstimator:
    """A trained network plus what prediction needs to turn its outputs into pixels and metres."""

    net: EstimatorNet
    settings: EstimatorSettings
    joint_names: list[str]
    image_size: tuple[int, int]  # (H, W) of the renders it learnt from
    input_size: tuple[int, int]  # (h, w) the network sees
    view_refs: dict[str, dict]  # view -> {"depth_ref": metres, "focal": fy pixels}
    key: str
    rigid_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (K, 2) joint pairs
    rigid_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (K,) metres
    # (J,) bool joints read from images (RenderSet.observed); the others are reported where the
    # training renders put them: per view {"times": (T,), "joints2d": (T, U, 2), "depth": (T, U)}
    observed: np.ndarray | None = None
    anchors: dict[str, dict] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    cached: bool = False
    train_seconds: float = 0.0
    path: str | None = None

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def observed_joints(self) -> np.ndarray:
        return np.ones(self.num_joints, dtype=bool) if self.observed is None else np.asarray(self.observed, bool)


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$ANYMOLE_USD_CACHE/estimator``, else ``~/.cache/anymole-usd/estimator``."""
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base else Path.home() / ".cache" / "anymole-usd") / "estimator"


def estimator_key(data: RenderSet, settings: EstimatorSettings, backbone_id: str | None = None) -> str:
    """Content hash of the training renders and every setting that changes the weights."""
    h = hashlib.sha256()
    h.update(data.digest().encode())
    cfg = settings.to_dict()
    cfg.pop("threads")  # speed only, not the weights
    cfg["backbone_model"] = backbone_id or settings.backbone_model
    h.update(json.dumps({"settings": cfg, "version": FORMAT_VERSION}, sort_keys=True).encode())
    return h.hexdigest()


def train_estimator(renders: RenderSet, settings: EstimatorSettings | None = None, *,
                    cache_dir: str | os.PathLike | None = None, use_cache: bool = True, device: str = "cpu",
                    select: bool = True, extra: RenderSet | None = None,
                    progress: Progress | None = None) -> TrainedEstimator:
    """Train (or load from the cache) the scene-specific estimator on ``renders``.

    With ``select`` the estimator's data selection applies first (views
    ``settings.views``, keyframes weighted ``settings.key_weight``); without it
    ``renders`` is used as given, weights included. ``extra``: more training
    renders of poses the shot does not show (``mirror.render_mirrored``):
    trained on with weight 1, never validated on, not used for the depth unit,
    the rigid lengths or the anchors of joints no image shows.
    """
    settings = settings or EstimatorSettings()
    if settings.depth_mode not in ("relative", "absolute"):
        raise ValueError(f"depth_mode must be 'relative' or 'absolute', got {settings.depth_mode!r}")
    if settings.distance not in ("lengths", "network", "blend"):
        raise ValueError(f"distance must be 'lengths', 'network' or 'blend', got {settings.distance!r}")
    if not (0.0 <= settings.framing <= 1.0 and settings.max_zoom >= 1.0 and 0.0 <= settings.whole_fraction < 1.0):
        raise ValueError(f"framing must be in [0, 1] (got {settings.framing}), max_zoom >= 1 (got "
                         f"{settings.max_zoom}), whole_fraction in [0, 1) (got {settings.whole_fraction})")
    data = estimator_selection(renders, settings.views, settings.key_weight) if select else renders
    if extra is not None and extra.num_samples:
        extra = estimator_selection(extra, settings.views, 1.0) if select else extra
    else:
        extra = None
    backbone = build_backbone(settings.backbone, settings.backbone_model)
    key = estimator_key(data if extra is None else RenderSet.concatenate([data, extra]), settings, backbone.model_id)
    folder = cache_root(cache_dir) / key
    if use_cache and (folder / "meta.json").is_file():
        try:
            est = load_estimator(folder, backbone=backbone, device=device)
            est.cached = True
            if progress:
                progress("estimator: cached weights", 1.0)
            return est
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # unreadable cache entry: retrain and overwrite it
    previous = torch.get_num_threads()
    torch.set_num_threads(training_threads(settings.threads, device))
    try:
        est = _train(data, settings, backbone, key, device, progress, extra)
    finally:
        torch.set_num_threads(previous)
    if use_cache:
        save_estimator(est, folder)
    return est


def depth_outputs(settings: EstimatorSettings) -> int:
    """Depths per joint the network predicts: a relative one, plus an absolute one for a network distance."""
    return 2 if settings.depth_mode == "relative" and settings.distance != "lengths" else 1


def training_threads(requested: int | None, device: str = "cpu") -> int:
    """CPU threads for training: ``requested``, else torch's count less the cores other processes keep busy.

    Many small kernels per step each end in a barrier across threads; when
    another process holds one of the cores, every barrier waits for the
    scheduler, and two threads ran ten times slower than one on a loaded
    2-core machine (see docs/benchmarks.md).
    """
    if requested:
        return max(1, int(requested))
    available = torch.get_num_threads()
    if not str(device).startswith("cpu"):
        return available
    try:  # the load average counts this process too, when it has been running
        busy = max(0, math.floor(os.getloadavg()[0] - 0.5))
    except (OSError, AttributeError):  # not available on this platform
        busy = 0
    return max(1, min(available, (os.cpu_count() or 1) - busy))


def _split(data: RenderSet, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation sample indices: every view of a random part of the context frames is held out."""
    ctx_times = np.unique(data.times[~data.is_key])
    n_val = int(round(fraction * len(ctx_times))) if len(ctx_times) >= 5 else 0
    held = rng.permutation(ctx_times)[:n_val]
    is_val = np.isin(data.times, held) & ~data.is_key
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def view_references(data: RenderSet) -> dict[str, dict]:
    """Per view: the reference depth (mean joint depth) and focal length that define the depth unit."""
    refs = {}
    for v in dict.fromkeys(data.views.tolist()):
        m = data.views == v
        refs[v] = {"depth_ref": float(np.mean(data.depth[m])), "focal": float(np.mean(data.focal[m]))}
    return refs


def _train(data: RenderSet, settings: EstimatorSettings, backbone, key: str, device: str,
           progress: Progress | None, extra: RenderSet | None = None) -> TrainedEstimator:
    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    gen = torch.Generator().manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    image_size = data.image_size
    input_size = network_input_size(image_size, settings.input_size or backbone.default_input_size,
                                    backbone.size_multiple)
    net = EstimatorNet(backbone, data.num_joints, merge_channels=settings.merge_channels,
                       decoder_channels=settings.decoder_channels, heatmap_stride=settings.heatmap_stride,
                       pose_context=settings.pose_context, normalise_pose=settings.normalise_pose,
                       depth_outputs=depth_outputs(settings)).to(device)
    net = net.to(memory_format=torch.channels_last)  # ~20% faster convolutions on CPU (oneDNN)
    refs = view_references(data)
    real = data
    if extra is not None:  # after the real samples: the split and the anchors index those only
        data = RenderSet.concatenate([data, extra])
    ref = torch.tensor([refs[v]["depth_ref"] for v in data.views], dtype=torch.float32, device=device)
    focal = torch.from_numpy(data.focal).to(device)
    half = image_size[0] / 2.0
    relative = settings.depth_mode == "relative"
    pairs, lengths = np.zeros((0, 2), np.int64), np.zeros(0)
    observed = data.observed_joints
    seen = torch.from_numpy(observed).to(device)
    if relative:
        from .depth import back_project, centred_depth, rigid_pairs

        rel_depth = torch.from_numpy(centred_depth(data.depth, data.focal, image_size[0], observed)[0]).to(device)
        pairs, lengths = rigid_pairs(back_project(real.joints2d, real.depth, real.focal, image_size))
        keep = observed[pairs[:, 0]] & observed[pairs[:, 1]]
        pairs, lengths = pairs[keep], lengths[keep]

    def absolute_unit(z: torch.Tensor, pick: torch.Tensor, zoom: torch.Tensor | None = None) -> torch.Tensor:
        """dataset.normalised_depth of the depths (divided by the zoom), per picked sample."""
        if zoom is not None:
            z = z / zoom[:, None]
        r = ref[pick, None]
        return (z - r) * focal[pick, None] / (r * half)

    def depth_unit(z: torch.Tensor, pick: torch.Tensor, zoom: torch.Tensor | None = None) -> torch.Tensor:
        """Depth target in the network's unit, per picked sample; ``zoom`` (B,) from augmentation.

        Relative: ``depth.centred_depth``, which grows with the image when it is
        zoomed. Absolute: ``dataset.normalised_depth`` of the depths divided by the zoom.
        """
        if relative:
            return rel_depth[pick] if zoom is None else rel_depth[pick] * zoom[:, None]
        return absolute_unit(z, pick, zoom)

    # Full-resolution renders: framing zooms into them; batches are converted to float per step.
    images = torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2).contiguous().to(device)
    joints = torch.from_numpy(data.joints2d).to(device)
    depth = torch.from_numpy(data.depth).to(device)
    framer = Framer(settings, image_size, input_size, observed)
    train_idx, val_idx = _split(real, settings.val_fraction, rng)
    train_idx = np.concatenate([train_idx, np.arange(real.num_samples, data.num_samples)])
    weights = torch.from_numpy(data.weights[train_idx].astype(np.float64))

    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.lr, total_steps=max(settings.steps, 1),
                                                pct_start=0.2, final_div_factor=1e3)
    history: list[dict] = []
    best, best_state = float("inf"), None
    if len(val_idx):  # the untrained network's error: what training is measured against
        history.append({"step": 0, **_validate(net, images, joints, depth, depth_unit, val_idx, framer)})
    net.train()
    last_report = time.perf_counter()
    for step in range(1, settings.steps + 1):
        pick = torch.from_numpy(train_idx)[torch.multinomial(weights, settings.batch_size, True, generator=gen)]
        x = images[pick].float().div_(255.0)
        zoom0, shift0 = framer.training(joints[pick], gen)
        aug = augment(x, joints[pick], image_size, settings.augmentation, gen, zoom0=zoom0, shift0=shift0,
                      out_size=input_size)
        out = net(aug.images.contiguous(memory_format=torch.channels_last), image_size)
        target_depth = depth_unit(depth[pick], pick, 1.0 / aug.depth_scale)
        mask = aug.inside & seen  # joints nothing is drawn around are not learnt from pixels
        loss = estimator_loss(out, aug.joints2d, target_depth, image_size[0], mask)
        if "depth_abs" in out:  # the second depth: the paper's MSE in half-image-height units
            dz = (out["depth_abs"] - absolute_unit(depth[pick], pick, 1.0 / aug.depth_scale)) * half
            m = mask.to(dz.dtype)
            loss = loss + (dz * dz * m).sum() / (3 * m.sum()).clamp_min(1.0)
        if settings.heatmap_weight > 0:
            loss = loss + settings.heatmap_weight * heatmap_loss(out["heatmaps"], aug.joints2d, image_size, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 4.0)
        opt.step()
        sched.step()
        if step % settings.val_every == 0 or step == settings.steps:
            record = {"step": step, "train_loss": float(loss.detach())}
            if len(val_idx):
                record.update(_validate(net, images, joints, depth, depth_unit, val_idx, framer))
                if record["val_loss"] < best:
                    best, best_state = record["val_loss"], copy.deepcopy(net.state_dict())
            history.append(record)
            net.train()
        if progress and (step % 10 == 0 or step == settings.steps or time.perf_counter() - last_report >= 1.0):
            progress(f"estimator: step {step}/{settings.steps} loss {float(loss.detach()):.1f}", step / settings.steps)
            last_report = time.perf_counter()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return TrainedEstimator(net, settings, list(data.joint_names), image_size, input_size, refs, key,
                            np.asarray(pairs, np.int64), np.asarray(lengths, np.float64), observed.copy(),
                            unobserved_anchors(real), history, train_seconds=time.perf_counter() - start)


def unobserved_anchors(data: RenderSet) -> dict[str, dict]:
    """Per view, the training renders' 2D joints and depths of the joints no image shows, in time order."""
    hidden = ~data.observed_joints
    if not hidden.any():
        return {}
    out = {}
    for v in dict.fromkeys(data.views.tolist()):
        view = data.view(v)
        times, first = np.unique(view.times, return_index=True)
        out[v] = {"times": times.tolist(), "joints2d": view.joints2d[first][:, hidden].tolist(),
                  "depth": view.depth[first][:, hidden].tolist()}
    return out


@torch.no_grad()
def _validate(net, images, joints, depth, depth_unit, idx, framer: Framer) -> dict:
    """Loss, mean 2D error (pixels) and depth error (network unit) on ``idx``, framed around the true box."""
    net.eval()
    losses, px, dz = [], [], []
    for i in range(0, len(idx), 32):
        pick = torch.from_numpy(idx[i:i + 32])
        zoom, shift = framer.boxes(joints[pick])
        target = to_frame(joints[pick], zoom, shift, framer.image_size)
        d = depth_unit(depth[pick], pick, zoom)
        out = net(framer.network_input(images[pick], zoom, shift), framer.image_size)
        seen = torch.ones(d.shape[1], dtype=torch.bool) if framer.observed is None else framer.observed
        mask = seen[None].expand_as(d)
        losses.append(float(estimator_loss(out, target, d, framer.image_size[0], mask)) * len(pick))
        px.append(((out["joints2d"] - target)[:, seen].norm(dim=-1).mean(1) / zoom).mean().item() * len(pick))
        dz.append(((out["depth"] - d)[:, seen].abs().mean(1) / zoom).mean().item() * len(pick))
    n = len(idx)
    return {"val_loss": sum(losses) / n, "val_px": sum(px) / n, "val_depth": sum(dz) / n}


def _trainable_state(est: TrainedEstimator) -> dict:
    state = est.net.state_dict()
    if not est.net.backbone.trainable:  # frozen pretrained weights are reloaded from their source
        state = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    return state


def save_estimator(est: TrainedEstimator, folder: str | os.PathLike) -> Path:
    """Write ``weights.pt`` + ``meta.json`` into ``folder`` atomically (a temp folder, then a rename)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        torch.save(_trainable_state(est), tmp / "weights.pt")
        meta = {"version": FORMAT_VERSION, "key": est.key, "settings": est.settings.to_dict(),
                "backbone_model": est.net.backbone.model_id, "joint_names": est.joint_names,
                "image_size": list(est.image_size), "input_size": list(est.input_size), "view_refs": est.view_refs,
                "rigid_pairs": np.asarray(est.rigid_pairs).tolist(), "rigid_lengths": np.asarray(est.rigid_lengths).tolist(),
                "observed": None if est.observed is None else np.asarray(est.observed, bool).tolist(),
                "anchors": est.anchors, "history": est.history, "train_seconds": est.train_seconds}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    est.path = str(folder)
    return folder


def load_estimator(folder: str | os.PathLike, *, backbone=None, device: str = "cpu") -> TrainedEstimator:
    """Load an estimator written by :func:`save_estimator` (weights only, no pickled code)."""
    folder = Path(folder)
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"estimator cache format {meta.get('version')} (expected {FORMAT_VERSION})")
    settings = EstimatorSettings.from_dict(meta["settings"])
    if backbone is None:
        backbone = build_backbone(settings.backbone, meta.get("backbone_model") or settings.backbone_model)
    net = EstimatorNet(backbone, len(meta["joint_names"]), merge_channels=settings.merge_channels,
                       decoder_channels=settings.decoder_channels, heatmap_stride=settings.heatmap_stride,
                       pose_context=settings.pose_context, normalise_pose=settings.normalise_pose,
                       depth_outputs=depth_outputs(settings))
    state = torch.load(folder / "weights.pt", map_location=device, weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("backbone.") or backbone.trainable for k in missing):
        raise ValueError(f"estimator weights do not match the network ({len(missing)} missing, "
                         f"{len(unexpected)} unexpected)")
    net.to(device).eval()
    return TrainedEstimator(net, settings, list(meta["joint_names"]), tuple(meta["image_size"]),
                            tuple(meta["input_size"]), meta["view_refs"], meta["key"],
                            np.asarray(meta.get("rigid_pairs", []), np.int64).reshape(-1, 2),
                            np.asarray(meta.get("rigid_lengths", []), np.float64),
                            None if meta.get("observed") is None else np.asarray(meta["observed"], bool),
                            meta.get("anchors", {}), meta.get("history", []),
                            train_seconds=float(meta.get("train_seconds", 0.0)), path=str(folder))
