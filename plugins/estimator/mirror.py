"""Mirrored renders: the known poses reflected left to right, extra training data for the estimator.

A short context shows one half of a cycle more than the other: CesiumMan's one
second of walk never shows the left leg lifted behind while the right swings,
and in the gap the estimator, which has only seen the known renders, reads that
half-cycle's depths wrongly (docs/benchmarks.md, video round trip). A mirror
image of every known pose is a pose of the same character (a bilaterally
symmetric body) that the shot could have shown: the posed surface reflected
across the body's own left-right plane, each triangle drawn in the colour of
its counterpart limb, and the joints relabelled (the left knee of the mirror is
where the right knee was reflected). Rendered through the shot's cameras on the
known frames' floor, its 2D joints and depths are exact labels. Characters
whose sided joints do not pair up (``parts.mirror_partners``) get none.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .dataset import TRAIN_VIEWS, RenderSet


def reflect(points: np.ndarray, joints: np.ndarray, left: np.ndarray, right: np.ndarray,
            up: np.ndarray) -> np.ndarray:
    """``points`` (F, ..., 3) reflected per frame across the body's left-right plane: through the midpoint
    of the paired joints ``left`` / ``right`` (indices into ``joints`` (F, J, 3): the hips and shoulders,
    where the limbs join the trunk) with the horizontal left-to-right direction between them as normal."""
    up = np.asarray(up, np.float64)
    lateral = (joints[:, left] - joints[:, right]).mean(1)
    lateral -= (lateral @ up)[:, None] * up
    n = lateral / np.maximum(np.linalg.norm(lateral, axis=-1, keepdims=True), 1e-12)
    c = 0.5 * (joints[:, left] + joints[:, right]).mean(1)
    shape = (len(points),) + (1,) * (points.ndim - 2) + (3,)
    n, c = n.reshape(shape), c.reshape(shape)
    return points - 2.0 * ((points - c) * n).sum(-1, keepdims=True) * n


def mirrored_character(character, partner: np.ndarray):
    """The character with each triangle labelled (coloured, and read for joint visibility) as its
    counterpart's. The winding may stay: the ray caster shades both faces of a triangle alike."""
    return dataclasses.replace(character, face_parts=np.asarray(partner)[character.face_parts])


def render_mirrored(character, known, cameras, *, views: Sequence[str] = TRAIN_VIEWS,
                    device: str | None = None) -> RenderSet | None:
    """Renders of ``known``'s poses mirrored (module docstring) through the named ``views`` of the shot's
    ``cameras``; None when the character's joints do not pair up left to right."""
    from anymole_usd.plugins.render import parts
    from anymole_usd.plugins.render.shot_cameras import select_views
    from anymole_usd.plugins.render.skinning import Pose, pose_character

    from .renders import render_motion

    skel = character.skeleton
    partner = parts.mirror_partners(skel.short_names, skel.parents)
    sides = np.asarray(character.sides)
    parent_side = np.where(skel.parents >= 0, sides[np.maximum(skel.parents, 0)], 0)
    left = np.flatnonzero((sides > 0) & (parent_side == 0))  # the limbs' first joints, and their pairs
    if partner is None or not len(left) or known.num_frames == 0:
        return None
    right = partner[left]
    pose = pose_character(character, known, device=device)
    up = character.up
    # skel transforms are not read by rendering: the original's stand in
    mirrored = Pose(reflect(pose.vertices.astype(np.float64), pose.joints, left, right, up).astype(np.float32),
                    reflect(pose.joints, pose.joints, left, right, up)[:, partner], pose.skel)
    # a reflection across a vertical plane keeps every height: the floor under the mirrored poses (the
    # default) is the known frames' floor
    renders, _ = render_motion(mirrored_character(character, partner), known, select_views(cameras, views),
                               device=device, pose=mirrored)
    return renders
