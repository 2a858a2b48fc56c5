"""The character's body frame and per-frame pose features for the motion graph.

Works for any skeleton by finding, from the motion itself:
- the *trajectory joint*: the shallowest animated joint whose ancestors are
  all static; a rigid move of it moves the whole character, so that is where
  the root trajectory is re-targeted (a static ``joint_Root`` above an animated
  ``Hips`` is left untouched);
- the *body joint*: the first joint at or below it with two or more children
  (the pelvis), whose ground position and heading define the trajectory;
- the *heading axis*: the body joint's local axis that stays most horizontal,
  so the heading (yaw about the up axis) is well defined for any rig.

Pose features are joint positions relative to the body's ground position in
its heading frame (root-relative, facing-normalised) and joint velocities in
the same frame, both in character sizes, as Video Motion Graphs compares poses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd import rotations as rot
from anymole_usd.metric import character_size, up_vector
from anymole_usd.skeleton import Skeleton

STATIC_ROTATION = 1e-4  # rad
STATIC_TRANSLATION = 1e-5  # of the character size


@dataclass
class BodyFrame:
    up: np.ndarray  # (3,) unit, skel space
    e1: np.ndarray  # (3,) ground-plane basis
    e2: np.ndarray
    traj_joint: int
    traj_parent: np.ndarray  # (4, 4) static skel-space transform of the trajectory joint's parent
    body_joint: int
    heading_axis: np.ndarray  # (3,) in the body joint's local frame
    size: float
    joints: np.ndarray  # the trajectory joint's subtree: the joints pose features compare

    def ground(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) -> (..., 2) coordinates in the ground plane."""
        return np.stack([points @ self.e1, points @ self.e2], axis=-1)

    def lift(self, ground: np.ndarray) -> np.ndarray:
        """(..., 2) ground coordinates -> (..., 3) points on the plane through the origin."""
        return ground[..., :1] * self.e1 + ground[..., 1:2] * self.e2

    def yaw(self, body_rotations: np.ndarray) -> np.ndarray:
        """Heading angle about ``up`` of (..., 4) body-joint skel-space rotations."""
        h = rot.rotate(body_rotations, np.broadcast_to(self.heading_axis, body_rotations.shape[:-1] + (3,)))
        return np.arctan2(h @ self.e2, h @ self.e1)

    def yaw_rotation(self, angle: np.ndarray) -> np.ndarray:
        """(...) angles -> (..., 4) quaternions about ``up``."""
        a = np.asarray(angle, dtype=np.float64)[..., None]
        return np.concatenate([np.sin(a / 2) * self.up, np.cos(a / 2)], axis=-1)


def ground_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane normal to ``up``, right-handed (e1 x e2 = up)."""
    helper = np.eye(3)[int(np.argmin(np.abs(up)))]
    e1 = np.cross(helper, up)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def wrap(angle: np.ndarray) -> np.ndarray:
    return (np.asarray(angle) + np.pi) % (2 * np.pi) - np.pi


def static_joints(rotations: np.ndarray, translations: np.ndarray, size: float) -> np.ndarray:
    """(J,) True where a joint's local transform never changes over the given frames."""
    ang = rot.angle_between(rotations, rotations[:1])
    moved = np.linalg.norm(translations - translations[:1], axis=-1)
    return (ang.max(axis=0) < STATIC_ROTATION) & (moved.max(axis=0) < STATIC_TRANSLATION * size)


def find_body_frame(skeleton: Skeleton, rotations: np.ndarray, translations: np.ndarray, scales: np.ndarray,
                    up_axis: str) -> BodyFrame:
    """Analyse (F, J, ...) local samples of the known motion (and references)."""
    parents = skeleton.parents
    up = up_vector(up_axis)
    e1, e2 = ground_basis(up)
    mats = kinematics.forward_kinematics(parents, rotations, translations, scales)
    size = character_size(mats[..., 3, :3], parents)
    static = static_joints(rotations, translations, size)
    depth = skeleton.depths()
    ancestors_static = np.ones(skeleton.num_joints, dtype=bool)
    for j, p in enumerate(parents):  # parent-first: one pass
        if p >= 0:
            ancestors_static[j] = ancestors_static[p] and static[p]
    candidates = np.flatnonzero(~static & ancestors_static)
    if len(candidates) == 0:
        candidates = skeleton.roots
    # Among several animated roots, the one with the biggest subtree carries the character.
    subtree = _subtree_sizes(parents)
    traj = int(candidates[np.lexsort((-subtree[candidates], depth[candidates]))[0]])
    children = skeleton.children()
    body = traj
    while len(children[body]) == 1:
        body = children[body][0]
    p = parents[traj]
    traj_parent = mats[0, p] if p >= 0 else np.eye(4)
    # The local axis of the body joint that stays the most horizontal gives the heading.
    body_rot = rot.normalize(kinematics.decompose_matrices(mats[:, body])[0])
    axes = rot.rotate(body_rot[:, None], np.eye(3)[None])  # (F, 3, 3): world direction of each local axis
    horizontal = np.sqrt(np.clip(1.0 - (axes @ up) ** 2, 0.0, 1.0)).min(axis=0)
    heading_axis = np.eye(3)[int(np.argmax(horizontal))]
    return BodyFrame(up, e1, e2, traj, traj_parent, body, heading_axis, size, _subtree(parents, traj))


def _subtree(parents: np.ndarray, root: int) -> np.ndarray:
    inside = np.zeros(len(parents), dtype=bool)
    inside[root] = True
    for j in range(root + 1, len(parents)):  # parent-first order
        inside[j] = parents[j] >= 0 and inside[parents[j]]
    return np.flatnonzero(inside)


def _subtree_sizes(parents: np.ndarray) -> np.ndarray:
    sizes = np.ones(len(parents), dtype=np.int64)
    for j in range(len(parents) - 1, -1, -1):  # children come after parents
        if parents[j] >= 0:
            sizes[parents[j]] += sizes[j]
    return sizes


@dataclass
class FrameData:
    """What the graph and the assembly need about each frame of a run of samples."""

    positions: np.ndarray  # (F, J, 3) skel space
    body_rotation: np.ndarray  # (F, 4) skel-space rotation of the body joint
    ground: np.ndarray  # (F, 2) body joint position on the ground plane
    yaw: np.ndarray  # (F,)
    pose: np.ndarray  # (F, K*3) facing-normalised, root-relative positions / size of the feature joints
    velocity: np.ndarray | None  # (F, K*3) in the same frame, sizes per second (None: unknown)


def frame_data(frame: BodyFrame, skeleton: Skeleton, rotations, translations, scales, fps: float,
               dense: bool = True) -> FrameData:
    """Features of consecutive samples (``dense``), or of isolated ones (velocity unknown: None)."""
    mats = kinematics.forward_kinematics(skeleton.parents, rotations, translations, scales)
    pos = mats[..., 3, :3]
    body_rot = rot.normalize(kinematics.decompose_matrices(mats[:, frame.body_joint])[0])
    yaw = frame.yaw(body_rot)
    ground = frame.ground(pos[:, frame.body_joint])
    inv = frame.yaw_rotation(-yaw)[:, None]  # (F, 1, 4)
    sel = pos[:, frame.joints]
    rel = sel - frame.lift(ground)[:, None]
    pose = rot.rotate(inv, rel) / frame.size
    vel = None
    if dense and len(pos) > 1:
        vel = np.gradient(sel, axis=0) * fps
    if vel is not None:
        vel = (rot.rotate(inv, vel) / frame.size).reshape(len(pos), -1)
    return FrameData(pos, body_rot, ground, yaw, pose.reshape(len(pos), -1), vel)
