"""The curves a report plots, in world metres and seconds: root height and speed, feet, joint angular speed.

Everything is computed from a character (its skeleton and world placement,
:class:`~anymole_usd.plugins.render.character.Character`) and a Motion, with
numpy forward kinematics, vectorised over frames and joints. Contacts follow
the ``foot-skate`` metric's rule (:mod:`anymole_usd.contacts` picks the joints;
a joint is in contact while it is within 1% of the character size of its ground
level), so what the plot shades is what the metric scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd import kinematics
from anymole_usd.contacts import contact_joints, ground_levels
from anymole_usd.metric import character_size
from anymole_usd.motion import Motion


def world_positions(character, motion: Motion) -> np.ndarray:
    """(F, J, 3) joint positions in world metres."""
    p = kinematics.global_positions(character.skeleton.parents, motion.rotations, motion.translations, motion.scales)
    m = np.asarray(character.skel_to_world, dtype=np.float64)
    return p @ m[:3, :3] + m[3, :3]


def body_root(character, positions: np.ndarray) -> int:
    """The joint that carries the body: from the first root down a chain of single children, past joints that
    only carry it along the ground (Bandai Namco's ``joint_Root``) or never move (glTF's ``_rootJoint`` and
    ``b_Root_00`` above the fox's hips)."""
    from anymole_usd.plugins.render.proxies import trajectory_roots

    parents = character.skeleton.parents
    on_ground = trajectory_roots(positions[0], parents, character.up)
    size = character_size(positions, parents)
    still = np.ptp(positions, axis=0).max(axis=-1) < 1e-3 * size
    j = int(np.flatnonzero(parents < 0)[0])
    while True:
        children = np.flatnonzero(parents == j)
        if len(children) != 1 or not (on_ground[j] or still[j]):
            return j
        j = int(children[0])


def seconds_of(motion: Motion) -> np.ndarray:
    """(F,) time of each frame in seconds."""
    return np.asarray(motion.times, dtype=np.float64) / float(motion.fps)


def root_curves(positions: np.ndarray, root: int, up: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root height along ``up`` (m) and horizontal root speed (m/s), per frame."""
    p = positions[:, root]
    height = p @ up
    flat = p - np.outer(height, up)
    if len(seconds) < 2:
        return height, np.zeros(len(seconds))
    velocity = np.gradient(flat, seconds, axis=0)
    return height, np.linalg.norm(velocity, axis=-1)


@dataclass
class Feet:
    """The contact joints of a shot and where their ground is (found once, on the reference when there is one)."""

    joints: np.ndarray  # (C,) joint indices
    names: list[str]
    ground: np.ndarray  # (C,) ground level along up, metres
    size: float  # character size, metres
    contact_height: float  # metres: below this above its ground, a joint is in contact

    @classmethod
    def find(cls, character, positions: np.ndarray) -> "Feet":
        from anymole_usd.plugins.metrics.foot_skate import CONTACT_HEIGHT

        up = character.up
        size = character_size(positions, character.skeleton.parents)
        joints = contact_joints(character.skeleton, positions, up, size)
        ground = ground_levels(positions, joints, up)
        names = [character.skeleton.short_names[j] for j in joints]
        return cls(joints, names, ground, size, CONTACT_HEIGHT * size)

    def heights(self, positions: np.ndarray, up: np.ndarray) -> np.ndarray:
        """(F, C) height of each contact joint above its ground level, metres."""
        return positions[:, self.joints] @ up - self.ground

    def contacts(self, heights: np.ndarray) -> np.ndarray:
        """(F, C) bool: in contact (the foot-skate metric's rule)."""
        return heights < self.contact_height


def angular_speed(motion: Motion) -> np.ndarray:
    """(F, J) angular speed of each joint's local rotation, degrees per second (central differences)."""
    q = motion.rotations / np.linalg.norm(motion.rotations, axis=-1, keepdims=True)
    f = len(q)
    if f < 2:
        return np.zeros(q.shape[:2])
    dots = np.abs(np.sum(q[1:] * q[:-1], axis=-1)).clip(0.0, 1.0)
    step = np.degrees(2.0 * np.arccos(dots)) / (np.diff(motion.times)[:, None] / motion.fps)  # (F-1, J)
    out = np.empty((f, q.shape[1]))
    out[0], out[-1] = step[0], step[-1]
    out[1:-1] = 0.5 * (step[1:] + step[:-1])
    return out


def joint_order(source, target) -> np.ndarray | None:
    """Indices that put ``source`` skeleton's joints in ``target`` skeleton's order, matched by joint path,
    else by joint name; None when some joint of ``target`` is missing."""
    src = list(source.joints)
    if src == list(target.joints):
        return np.arange(len(src))
    for key in (lambda j: j, lambda j: j.rsplit("/", 1)[-1]):
        index = {key(j): i for i, j in enumerate(src)}
        wanted = [key(j) for j in target.joints]
        if all(w in index for w in wanted):
            return np.asarray([index[w] for w in wanted])
    return None
