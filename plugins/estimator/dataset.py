"""Renders as plain arrays, the estimator's data selection and the ICAdapt clip sampler.

A :class:`RenderSet` is what every consumer of the shot's renders reads:
images plus, per image, the projected joints, their camera depth and
visibility, the view and the time. Nothing here knows about USD, Warp or
torch, so the estimator and the video stage depend on the render stage only
through these arrays.

AnyMoLe's data (supplement Algorithm 1 and Sec. 3.3): the context frames are
rendered from N views at the stage's rate, the keyframes from the same views.
ICAdapt cuts every context sequence into clips of 16 frames at strides 1, 2
and 3 (30/15/10 fps for a 30 fps stage); the estimator trains on the front,
left and right views (back excluded) with keyframe images drawn three times
as often as context images.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from typing import Mapping, Sequence

import numpy as np

VIEWS = ("front", "left", "right", "back")
TRAIN_VIEWS = ("front", "left", "right")
KEY_WEIGHT = 3.0
CLIP_LENGTH = 16
CLIP_STRIDES = (1, 2, 3)
PER_SET = ("joint_names", "observed")  # RenderSet fields that describe the set, not one sample each


@dataclass
class RenderSet:
    """N rendered images of one character and their joint annotations (J joints, skeleton order)."""

    images: np.ndarray  # (N, H, W, 3) uint8
    joints2d: np.ndarray  # (N, J, 2) float32 pixels, pixel centres at +0.5 (the render camera model)
    depth: np.ndarray  # (N, J) float32 camera-space z in metres (positive in front of the camera)
    visible: np.ndarray  # (N, J) bool: not hidden behind the character's own surface, inside the image
    views: np.ndarray  # (N,) str view name
    times: np.ndarray  # (N,) float64 stage timecodes
    is_key: np.ndarray  # (N,) bool keyframe image (else context)
    weights: np.ndarray  # (N,) float32 sampling weights
    focal: np.ndarray  # (N,) float32 vertical focal length fy in pixels
    joint_names: list[str] = field(default_factory=list)
    fps: float = 30.0  # stage timecodes per second
    char_height: float = 1.0  # metres, vertical extent of the posed character (for metrics)
    projected_height: np.ndarray | None = None  # (N,) float32 pixels, vertical extent on screen
    # (J,) bool per joint: some of the character's geometry follows it (None: every joint). A joint
    # nothing is drawn around (a trajectory joint left at the world origin) cannot be read from an image.
    observed: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.uint8)
        self.joints2d = np.asarray(self.joints2d, dtype=np.float32)
        self.depth = np.asarray(self.depth, dtype=np.float32)
        self.visible = np.asarray(self.visible, dtype=bool)
        self.views = np.asarray(self.views, dtype=str)
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.is_key = np.asarray(self.is_key, dtype=bool).reshape(-1)
        self.weights = np.asarray(self.weights, dtype=np.float32).reshape(-1)
        self.focal = np.asarray(self.focal, dtype=np.float32).reshape(-1)
        if self.projected_height is not None:
            self.projected_height = np.asarray(self.projected_height, dtype=np.float32).reshape(-1)
        if self.observed is not None:
            self.observed = np.asarray(self.observed, dtype=bool).reshape(-1)
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {self.images.shape}")
        j = self.joints2d.shape[1] if self.joints2d.ndim == 3 else -1
        expected = {"joints2d": (n, j, 2), "depth": (n, j), "visible": (n, j), "views": (n,), "times": (n,),
                    "is_key": (n,), "weights": (n,), "focal": (n,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"RenderSet.{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.projected_height is not None and self.projected_height.shape != (n,):
            raise ValueError(f"RenderSet.projected_height has shape {self.projected_height.shape}, expected {(n,)}")
        if self.joint_names and len(self.joint_names) != j:
            raise ValueError(f"{len(self.joint_names)} joint names for {j} joints")
        if self.observed is not None and (self.observed.shape != (j,) or not self.observed.any()):
            raise ValueError(f"RenderSet.observed must mark some of the {j} joints, got {self.observed.shape}")

    @property
    def observed_joints(self) -> np.ndarray:
        """(J,) bool: the joints an image can show (all of them unless ``observed`` says otherwise)."""
        return np.ones(self.num_joints, dtype=bool) if self.observed is None else self.observed

    @property
    def num_samples(self) -> int:
        return len(self.images)

    @property
    def num_joints(self) -> int:
        return self.joints2d.shape[1]

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, index) -> "RenderSet":
        """The samples picked by a boolean mask or an index array, in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        per_sample = {f.name: getattr(self, f.name)[index] for f in fields(self)
                      if isinstance(getattr(self, f.name), np.ndarray) and f.name not in PER_SET}
        return replace(self, **per_sample)

    def view(self, name: str) -> "RenderSet":
        """The samples of one view, in time order."""
        idx = np.flatnonzero(self.views == name)
        return self.subset(idx[np.argsort(self.times[idx], kind="stable")])

    def digest(self) -> str:
        """SHA-256 of everything a model trained on this set depends on (pixels, targets, weights)."""
        h = hashlib.sha256()
        for arr in (self.images, self.joints2d, self.depth, self.visible, self.weights, self.focal, self.times):
            a = np.ascontiguousarray(arr)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        h.update("\0".join(self.views.tolist()).encode())
        h.update("\0".join(self.joint_names).encode())
        if self.observed is not None:
            h.update(b"observed" + self.observed.tobytes())
        return h.hexdigest()

    @staticmethod
    def concatenate(parts: Sequence["RenderSet"]) -> "RenderSet":
        first = parts[0]
        per_sample = {"projected_height": None}
        for f in fields(first):
            values = [getattr(p, f.name) for p in parts]
            if f.name not in PER_SET and all(isinstance(v, np.ndarray) for v in values):
                per_sample[f.name] = np.concatenate(values)
        return replace(first, **per_sample)


def normalised_depth(z: np.ndarray, ref, focal, image_height: int) -> np.ndarray:
    """Camera depth (metres) -> the estimator's depth unit.

    ``d = (z - ref) * focal / (ref * H / 2)``: the depth offset from a reference
    depth, expressed like an image offset at that depth and divided by half the
    image height. The loss multiplies ``d`` by ``H / 2`` (as the paper does), so a
    depth error weighs as much as the same error in pixels across the image.
    """
    ref = np.asarray(ref, dtype=np.float64)
    focal = np.asarray(focal, dtype=np.float64)
    if ref.ndim:
        ref, focal = ref[..., None], np.broadcast_to(focal, ref.shape)[..., None]
    return ((np.asarray(z, dtype=np.float64) - ref) * focal / (ref * image_height / 2)).astype(np.float32)


def camera_depth(d: np.ndarray, ref, focal, image_height: int) -> np.ndarray:
    """Inverse of :func:`normalised_depth`: the estimator's depth unit -> camera depth in metres."""
    ref = np.asarray(ref, dtype=np.float64)
    focal = np.asarray(focal, dtype=np.float64)
    if ref.ndim:
        ref, focal = ref[..., None], np.broadcast_to(focal, ref.shape)[..., None]
    return (ref + np.asarray(d, dtype=np.float64) * ref * (image_height / 2) / focal).astype(np.float32)


def estimator_selection(renders: RenderSet, views: Sequence[str] = TRAIN_VIEWS,
                        key_weight: float = KEY_WEIGHT) -> RenderSet:
    """The estimator's training images: the given views only (back excluded), keyframes weighted."""
    keep = np.isin(renders.views, list(views))
    if not keep.any():
        raise ValueError(f"no render of the views {', '.join(views)} (have: {', '.join(sorted(set(renders.views)))})")
    out = renders.subset(keep)
    out.weights = np.where(out.is_key, np.float32(key_weight), np.float32(1.0)).astype(np.float32)
    return out


@dataclass(frozen=True)
class ClipSpec:
    """One ICAdapt clip: ``length`` frames of one view's context sequence, every ``stride``-th from ``start``."""

    view: str
    start: int
    stride: int
    length: int
    fps: float  # the clip's frame rate: the stage rate divided by the stride

    @property
    def frames(self) -> np.ndarray:
        """Indices into the view's context sequence."""
        return self.start + self.stride * np.arange(self.length)


def sample_clips(num_frames: int, views: Sequence[str] = VIEWS, *, length: int = CLIP_LENGTH,
                 strides: Sequence[int] = CLIP_STRIDES, fps: float = 30.0) -> list[ClipSpec]:
    """Algorithm 1 (ICAdapt data): every clip of ``length`` frames at each stride, for each view.

    For each view, for each stride ``s``, for each start ``i`` with
    ``i + s * (length - 1) < num_frames``: frames ``i, i + s, ..., i + s * (length - 1)``
    at ``fps / s`` frames per second. With 61 context frames (2 s at 30 fps)
    that gives 46 + 31 + 16 clips per view, as the official data loader does.
    Strides too long for the context give no clip.
    """
    if num_frames < 0 or length < 1 or any(int(s) < 1 for s in strides):
        raise ValueError(f"bad clip sampling: {num_frames} frames, length {length}, strides {tuple(strides)}")
    out = []
    for view in views:
        for s in strides:
            s = int(s)
            count = max(0, num_frames - s * (length - 1))
            out.extend(ClipSpec(str(view), i, s, length, fps / s) for i in range(count))
    return out


def gather_clips(frames_by_view: Mapping[str, np.ndarray], clips: Sequence[ClipSpec]) -> list[tuple[np.ndarray, float]]:
    """[(frames (length, H, W, 3) uint8, fps)] for each clip, from each view's context sequence."""
    return [(np.asarray(frames_by_view[c.view])[c.frames], c.fps) for c in clips]


def context_sequences(renders: RenderSet, views: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Each view's context images (keyframes excluded) in time order: the sequences clips are cut from."""
    views = list(dict.fromkeys(renders.views.tolist())) if views is None else list(views)
    ctx = renders.subset(~renders.is_key)
    return {v: ctx.view(v).images for v in views}


def icadapt_clips(renders: RenderSet, views: Sequence[str] | None = None, *, length: int = CLIP_LENGTH,
                  strides: Sequence[int] = CLIP_STRIDES) -> list[tuple[np.ndarray, float]]:
    """The ICAdapt training clips of a shot's renders: Algorithm 1 on each view's context sequence.

    Returns ``[(frames (length, H, W, 3) uint8, fps)]``; the clip rate is the
    stage rate over the stride (30/15/10 fps for a 30 fps shot).
    """
    seqs = context_sequences(renders, views)
    counts = {len(s) for s in seqs.values()}
    if len(counts) > 1:
        raise ValueError(f"views have different context lengths: {sorted(counts)}")
    n = counts.pop() if counts else 0
    return gather_clips(seqs, sample_clips(n, list(seqs), length=length, strides=strides, fps=renders.fps))
