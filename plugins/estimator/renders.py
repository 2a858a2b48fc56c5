"""Shot or character + motion -> :class:`~.dataset.RenderSet`, through the render stage's public API.

The only module of the estimator that knows about the render plugin
(``Renderer``, ``RenderResult``, ``JointAnnotations``), so the estimator sees
exactly the images, camera model and visibility the other stages see.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .dataset import VIEWS, RenderSet


@dataclass
class ShotRenders:
    """What :func:`render_shot` produced: the known frames' renders and how they were made."""

    renders: RenderSet
    character: object  # render plugin Character
    cameras: object  # render plugin Cameras
    motion: object  # the known Motion (context + keyframes)
    context_times: np.ndarray
    key_times: np.ndarray
    animation: str  # SkelAnimation prim path


def from_render_result(result, *, key_times: Sequence[float] = (), fps: float = 30.0,
                       char_height: float | None = None) -> RenderSet:
    """A render stage ``RenderResult`` (V views x F frames) as a RenderSet (view-major, then frame)."""
    v, f = result.images.shape[:2]
    h, w = result.images.shape[2:4]
    j = result.joints.pixels.shape[2]
    times = np.asarray(result.times, dtype=np.float64)
    keys = np.asarray(key_times, dtype=np.float64)
    is_key = np.any(np.abs(times[:, None] - keys[None]) < 1e-3, axis=1) if len(keys) else np.zeros(f, dtype=bool)
    masks = result.masks  # (V, F, H, W)
    rows = masks.any(-1)
    has = rows.any(-1)
    top = np.argmax(rows, -1)
    bottom = h - 1 - np.argmax(rows[..., ::-1], -1)
    proj_h = np.where(has, bottom - top + 1, 0).astype(np.float32)
    cams = result.cameras
    return RenderSet(
        images=result.images.reshape(v * f, h, w, 3),
        joints2d=result.joints.pixels.reshape(v * f, j, 2),
        depth=result.joints.depth.reshape(v * f, j),
        visible=result.joints.visible.reshape(v * f, j),
        views=np.repeat(np.asarray(cams.names, dtype=str), f),
        times=np.tile(times, v),
        is_key=np.tile(is_key, v),
        weights=np.ones(v * f, dtype=np.float32),
        focal=np.repeat(cams.K[:, 1, 1], f),
        joint_names=list(result.joint_names),
        fps=float(fps),
        char_height=float(char_height) if char_height else 1.0,
        projected_height=proj_h.reshape(v * f),
    )


# A joint is observed when some of the character's surface lies within this fraction of its size in most
# frames: a limb's joint sits a limb's radius inside it, a trajectory joint left at the origin metres away.
OBSERVED_DISTANCE = 0.1
OBSERVED_FRAMES = 16  # frames spread over the motion that the test looks at


def observed_joints(joints: np.ndarray, vertices: np.ndarray, tolerance: float = OBSERVED_DISTANCE) -> np.ndarray:
    """(J,) bool: joints (F, J, 3) that the posed surface (F, P, 3) stays near (median over frames).

    No image shows where a joint is when nothing drawn follows it, so the
    estimator does not learn such joints from pixels (see ``RenderSet.observed``).
    """
    from scipy.spatial import cKDTree

    joints, vertices = np.asarray(joints), np.asarray(vertices)
    if vertices.shape[1] == 0:
        return np.ones(joints.shape[1], dtype=bool)
    pick = np.unique(np.linspace(0, len(joints) - 1, min(len(joints), OBSERVED_FRAMES)).round().astype(int))
    size = np.median(np.ptp(vertices[pick], axis=1).max(-1))
    # One tree per sampled frame (at most OBSERVED_FRAMES): the nearest surface point of every joint.
    gaps = np.stack([cKDTree(vertices[f]).query(joints[f])[0] for f in pick])
    near = np.median(gaps, axis=0) <= tolerance * max(float(size), 1e-9)
    return near if near.any() else np.ones_like(near)


def render_motion(character, motion, cameras=None, *, views: Sequence[str] = VIEWS,
                  size: tuple[int, int] = (256, 256), key_times: Sequence[float] = (), device: str | None = None,
                  ground: bool = True, fill_times: Sequence[float] | None = None,
                  ground_height: float | None = None, pose=None) -> tuple[RenderSet, object]:
    """Render every frame of ``motion`` from every view -> (RenderSet, cameras).

    Without ``cameras``, the shot's cameras are fitted around ``motion`` as the
    known frames (:func:`~anymole_usd.plugins.render.shot_cameras.shot_cameras`,
    ``size`` = (height, width)); pass ``fill_times`` for the times that will be
    generated. ``char_height`` is the mean vertical extent of the posed
    character in metres. ``ground_height``: the floor (default: under this
    motion's lowest point; pass the known frames' to render frames in between).
    ``pose``: the character already posed over ``motion``'s frames (default: skinned from ``motion``).
    """
    from anymole_usd.plugins.render.shot_cameras import shot_cameras
    from anymole_usd.plugins.render.views import Renderer, RenderResult

    renderer = Renderer(character, device=device, ground=ground)
    pose = renderer.pose(motion) if pose is None else pose
    if cameras is None:
        cameras = shot_cameras(character, motion, fill_times, size=size, views=views, pose=pose)
    result = RenderResult.concatenate(list(renderer.iter_chunks(motion, cameras, pose=pose,
                                                                ground_height=ground_height)))
    up = pose.vertices @ character.up
    char_h = float(np.ptp(up, axis=1).mean()) if up.size else 1.0
    renders = from_render_result(result, key_times=key_times, fps=motion.fps, char_height=char_h)
    renders.observed = observed_joints(pose.joints, pose.vertices)
    return renders, cameras


def render_shot(shot: str, *, prim: str | None = None, context: tuple[float, float] | None = None,
                keys: list[float] | None = None, views: Sequence[str] = VIEWS, size: tuple[int, int] = (256, 256),
                cameras=None, device: str | None = None) -> ShotRenders:
    """Render a shot's known frames (context + keyframes) from each view.

    The timeline (context, keyframes) is the one ``inbetween`` would use, with
    the same ``--context``/``--keys`` overrides. Cameras default to the shot's
    cameras (``shot_cameras``: the known frames and the in-between root path).
    """
    from anymole_usd.errors import InputError
    from anymole_usd.pipeline import InbetweenOptions, plan
    from anymole_usd.plugins.render.character import read_character

    stage, jobs = plan(shot, InbetweenOptions(prim=prim, context=context, keys=keys))
    job = jobs[0]
    tl = job.timeline
    known = job.authored.at_times(tl.known_times)
    if known.num_frames == 0:
        raise InputError("no context or keyframe samples to learn the character from", file=shot, prim=job.anim_path)
    character = read_character(stage, job.binding, file=shot)
    renders, cameras = render_motion(character, known, cameras, views=views, size=size, key_times=tl.keys,
                                     device=device, fill_times=tl.generated_times)
    return ShotRenders(renders, character, cameras, known, tl.context_times, np.asarray(tl.keys), job.anim_path)
