"""Oracle inputs for mimicking: the "video" and 2D joints made from ground truth (tests, benchmark).

The honest check of mimicking without a video model: render the true in-between
frames from the front camera (fitted around the known frames, as the video prior
does), project the true joints, and see how well mimicking recovers the motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd.motion import Motion

from .optimizer import MimicTargets, MimicView, skel_camera
from .schedule import Grid, build_grid
from .upsample import resample


@dataclass
class OracleCase:
    known: Motion
    grid: Grid
    truth_grid: Motion  # ground truth at the grid times
    targets: MimicTargets
    view: MimicView
    cameras: object  # render Cameras (front view)
    character: object


def clip_character(clip):
    """The render Character of a protocol Clip: the skinned mesh for USD files, bone proxies otherwise."""
    from anymole_usd.plugins.render.proxies import proxy_character

    if clip.path.lower().endswith((".usd", ".usda", ".usdc", ".usdz")):
        from anymole_usd.plugins.render.character import read_character
        from anymole_usd.reading import find_bindings, open_stage

        stage = open_stage(clip.path)
        for b in find_bindings(stage, clip.path):
            if b.skeleton.joints == clip.skeleton.joints and b.animation_path:
                return read_character(stage, b, file=clip.path)
    return proxy_character(clip.skeleton, up_axis=clip.up_axis.lstrip("+-"), meters_per_unit=clip.meters_per_unit)


def front_camera(character, known: Motion, size: tuple[int, int], fill_times=None):
    """The shot's front camera (``shot_cameras``: the one the estimator and the video prior use)."""
    from anymole_usd.plugins.render.shot_cameras import shot_cameras
    from anymole_usd.plugins.render.views import Renderer

    renderer = Renderer(character, ground=False, shadows=False)
    return renderer, shot_cameras(character, known, fill_times, size=size, views=("front",),
                                  pose=renderer.pose(known))


def oracle_case(clip, context: tuple[int, int], keys: list[int], *, size=(128, 128), rate: float = 15.0,
                images: bool = True, joints: bool = True, depth: bool = True, soft_renderer: bool = True,
                settings=None) -> OracleCase:
    """Known samples of a window, the mimicking grid, and oracle targets rendered from the truth."""
    c0, c1 = context
    known = clip.motion.select(np.concatenate([np.arange(c0, c1 + 1), np.asarray(keys)]))
    grid = build_grid(known.times, clip.motion.fps, rate)
    truth = resample(clip.motion, grid.times)
    character = clip_character(clip)
    renderer, cams = front_camera(character, known, size)
    camera = skel_camera(cams, character.skel_to_world)
    targets = MimicTargets()
    if joints:
        from anymole_usd import kinematics

        pos = kinematics.global_positions(clip.skeleton.parents, truth.rotations, truth.translations, truth.scales)
        ph = np.concatenate([pos, np.ones(pos.shape[:-1] + (1,))], -1) @ camera.T
        targets.joints2d = ph[..., :2] / ph[..., 2:3]
        if depth:
            targets.depth = ph[..., 2]
    if images:
        targets.images = renderer.render(truth, cams).images[0]
    soft = None
    if soft_renderer:
        from .optimizer import MimicSettings, image_term_renderer

        soft = image_term_renderer(character, cams, settings or MimicSettings())
    view = MimicView(camera, size, float(clip.size), soft, float(cams.K[0, 1, 1]))
    return OracleCase(known, grid, truth, targets, view, cams, character)
