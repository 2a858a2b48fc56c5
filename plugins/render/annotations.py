"""Per frame and view joint annotations: pixels, depth (camera and NDC) and a visibility flag."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cameras import Cameras


@dataclass
class JointAnnotations:
    pixels: np.ndarray  # (V, F, J, 2) float32, x right / y down, pixel centres at +0.5
    depth: np.ndarray  # (V, F, J) float32 camera-space z, metres
    depth_ndc: np.ndarray  # (V, F, J) float32 OpenGL NDC z in [-1, 1]
    visible: np.ndarray  # (V, F, J) bool: in frame and not hidden behind another part
    in_frame: np.ndarray  # (V, F, J) bool

    def select_frames(self, idx) -> JointAnnotations:
        return JointAnnotations(*(a[:, idx] for a in (self.pixels, self.depth, self.depth_ndc, self.visible,
                                                       self.in_frame)))

    @staticmethod
    def concatenate(parts: list[JointAnnotations]) -> JointAnnotations:
        return JointAnnotations(*(np.concatenate([getattr(p, k) for p in parts], 1)
                                  for k in ("pixels", "depth", "depth_ndc", "visible", "in_frame")))


def neighbour_table(parents: np.ndarray) -> np.ndarray:
    """(J, J) bool: joint, parent and children (parts that show a joint's own limb)."""
    parents = np.asarray(parents)
    j = len(parents)
    table = np.eye(j, dtype=bool)
    child = np.flatnonzero(parents >= 0)
    table[child, parents[child]] = True
    table[parents[child], child] = True
    return table


def project_joints(cameras: Cameras, joints: np.ndarray, frame_indices=None):
    """World joints (F, J, 3) -> pixels (V, F, J, 2), camera z and NDC z (V, F, J)."""
    cams = cameras if frame_indices is None else cameras.select_frames(frame_indices)
    px, z = cams.project(joints)
    return px, z, cams.ndc_depth(z)


def annotate_joints(cameras: Cameras, joints: np.ndarray, depth_images: np.ndarray, part_images: np.ndarray,
                    parents: np.ndarray, joint_radius: np.ndarray, frame_indices=None) -> JointAnnotations:
    """Project joints and decide visibility from the rendered depth and part buffers (V, F, H, W).

    A joint lies inside its limb, so the surface always hides it a little: it
    counts as visible when the first surface along its pixel belongs to its own
    limb (itself, its parent or a child), or lies less than the limb's radius in
    front of it, or when no surface covers that pixel at all.
    """
    px, z, ndc = project_joints(cameras, joints, frame_indices)
    h, w = depth_images.shape[-2:]
    in_frame = (px[..., 0] >= 0) & (px[..., 0] < w) & (px[..., 1] >= 0) & (px[..., 1] < h) & (z > cameras.near[:, None, None])
    xi = np.clip(np.floor(px[..., 0]).astype(np.int64), 0, w - 1)
    yi = np.clip(np.floor(px[..., 1]).astype(np.int64), 0, h - 1)
    v_idx = np.arange(px.shape[0])[:, None, None]
    f_idx = np.arange(px.shape[1])[None, :, None]
    surf = depth_images[v_idx, f_idx, yi, xi]
    part = part_images[v_idx, f_idx, yi, xi]
    own = neighbour_table(parents)
    j_idx = np.broadcast_to(np.arange(px.shape[2]), part.shape)
    own_limb = (part >= 0) & own[j_idx, np.clip(part, 0, None)]
    radius = np.asarray(joint_radius)[None, None, :]
    uncovered = part < 0
    visible = in_frame & (uncovered | own_limb | (surf >= z - radius))
    return JointAnnotations(px.astype(np.float32), z.astype(np.float32), ndc.astype(np.float32), visible, in_frame)
