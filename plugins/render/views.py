"""The render API other stages call: multi-view images of a character's motion plus joint annotations.

    from anymole_usd.plugins.render import render_views
    result = render_views(character, motion, size=(256, 256))   # front/left/right/back
    result.images  # (V, F, H, W, 3) uint8; result.joints.pixels (V, F, J, 2) ...

``Renderer`` keeps the Warp state for repeated calls (an estimator renders
many poses of one character) and streams long clips in chunks.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from anymole_usd.motion import Motion

from .annotations import JointAnnotations, annotate_joints
from .cameras import VIEWS, Cameras, auto_cameras, facing_direction
from .character import Character
from .skinning import Pose, pose_character


@dataclass
class RenderResult:
    images: np.ndarray  # (V, F, H, W, 3) uint8
    depth: np.ndarray  # (V, F, H, W) float32 camera z of the character, 0 where none
    parts: np.ndarray  # (V, F, H, W) int32 joint label, -1 background, -2 ground
    joints: JointAnnotations
    cameras: Cameras
    times: np.ndarray  # (F,)
    joint_names: list[str] = field(default_factory=list)
    frame_offset: int = 0  # index of the first frame in the clip (chunks)

    @property
    def masks(self) -> np.ndarray:
        """(V, F, H, W) bool silhouettes."""
        return self.parts >= 0

    @staticmethod
    def concatenate(chunks: list[RenderResult]) -> RenderResult:
        first = chunks[0]
        return RenderResult(
            images=np.concatenate([c.images for c in chunks], 1),
            depth=np.concatenate([c.depth for c in chunks], 1),
            parts=np.concatenate([c.parts for c in chunks], 1),
            joints=JointAnnotations.concatenate([c.joints for c in chunks]),
            cameras=first.cameras,
            times=np.concatenate([c.times for c in chunks]),
            joint_names=first.joint_names,
            frame_offset=first.frame_offset,
        )


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (height x width, as in the paper's 320x512) or 'N' -> (height, width); ValueError otherwise."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size must be HEIGHTxWIDTH in pixels, got {text!r}")
    h, w = (int(p) for p in parts)
    if h <= 0 or w <= 0 or h > 8192 or w > 8192:
        raise ValueError(f"size must be positive integers up to 8192, got {text!r}")
    return h, w


class Renderer:
    """Ray-cast renders of one character; the Warp mesh and arrays are built once."""

    def __init__(self, character: Character, *, device: str | None = None, ground: bool = True,
                 shadows: bool = True) -> None:
        from .raycast import RayCaster

        self.character = character
        self.caster = RayCaster(character, device, ground=ground, shadows=shadows)
        self.device = self.caster.device

    def pose(self, motion: Motion) -> Pose:
        return pose_character(self.character, motion, skinner=self.caster.skinner)

    def auto_cameras(self, pose: Pose, *, views: Sequence[str] = VIEWS, size: tuple[int, int] = (256, 256),
                     follow: bool = False, fov_y_deg: float = 35.0, elevation_deg: float = 10.0) -> Cameras:
        ch = self.character
        forward = facing_direction(pose.joints, ch.sides, ch.up)
        return auto_cameras(pose.vertices, ch.up, forward, views=tuple(views), width=size[1], height=size[0],
                            fov_y_deg=fov_y_deg, elevation_deg=elevation_deg, follow=follow)

    def ground_height(self, pose: Pose) -> float:
        """The floor of a clip: the lowest point any frame reaches along the up axis."""
        return float((pose.vertices.reshape(-1, 3) @ self.character.up).min()) if pose.vertices.size else 0.0

    def background(self, cameras: Cameras, pose: Pose) -> np.ndarray:
        """(V, H, W, 3) uint8 floor and background without the character, e.g. for ``SoftRenderer``."""
        return self.caster.background(cameras, self.ground_height(pose))

    def iter_chunks(self, motion: Motion, cameras: Cameras, *, pose: Pose | None = None,
                    chunk: int = 16, ground_height: float | None = None) -> Iterator[RenderResult]:
        """Render ``chunk`` frames at a time (bounded memory for long clips).

        ``ground_height``: the floor's height along the up axis (default: the
        lowest point of this motion), e.g. the known frames' floor for frames
        rendered in between them."""
        pose = pose or self.pose(motion)
        ch = self.character
        ground = self.ground_height(pose) if ground_height is None else float(ground_height)  # one floor per clip
        n = motion.num_frames
        for start in range(0, n, max(1, chunk)):
            idx = np.arange(start, min(n, start + chunk))
            frames = list(self.caster.frames(pose.vertices[idx], cameras, frame_indices=idx,
                                                 ground_height=ground))
            rgb = np.stack([f.rgb for f in frames], 1)
            depth = np.stack([f.depth for f in frames], 1)
            parts = np.stack([f.parts for f in frames], 1)
            joints = annotate_joints(cameras, pose.joints[idx], depth, parts, ch.skeleton.parents, ch.joint_radius,
                                     frame_indices=idx)
            yield RenderResult(rgb, depth, parts, joints, cameras, motion.times[idx], list(ch.skeleton.joints),
                               frame_offset=start)

    def render(self, motion: Motion, cameras: Cameras | None = None, *, views: Sequence[str] = VIEWS,
               size: tuple[int, int] = (256, 256), follow: bool = False) -> RenderResult:
        pose = self.pose(motion)
        cameras = cameras or self.auto_cameras(pose, views=views, size=size, follow=follow)
        return RenderResult.concatenate(list(self.iter_chunks(motion, cameras, pose=pose, chunk=max(1, motion.num_frames))))


def render_views(character: Character, motion: Motion, cameras: Cameras | None = None, *,
                 views: Sequence[str] = VIEWS, size: tuple[int, int] = (256, 256), follow: bool = False,
                 device: str | None = None, ground: bool = True, shadows: bool = True) -> RenderResult:
    """Images (V, F, H, W, 3) uint8 and joint annotations of ``motion`` seen from ``cameras``.

    Without ``cameras``, front/left/right/back cameras (or ``views``) are placed
    around the whole clip's bounding volume; ``size`` is (height, width).
    """
    return Renderer(character, device=device, ground=ground, shadows=shadows).render(
        motion, cameras, views=views, size=size, follow=follow)
