"""Body parts: which side of the character each joint is on, and its deterministic colour.

The paper's failure cases come from left/right confusion, so left limbs are
drawn in warm hues, right limbs in cool hues and the centre line in neutral
greens; shades alternate down each chain so neighbouring segments differ.
"""
from __future__ import annotations

import re

import numpy as np

LEFT, CENTRE, RIGHT = 1, 0, -1

# camelCase / snake_case / dotted / digit boundaries: "LShldr" -> L, Shldr; "arm_joint_L__4_" -> arm, joint, L, 4
_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_LEFT_WORDS = {"l", "left", "lft", "lt"}
_RIGHT_WORDS = {"r", "right", "rgt", "rt"}


def name_side(name: str) -> int:
    """LEFT/RIGHT/CENTRE from one joint name ("LeftArm", "arm_joint_L__4_", "hand.R", "mixamorig:RightLeg")."""
    tokens = [t.lower() for t in _TOKEN.findall(name.rsplit(":", 1)[-1])]
    left = any(t in _LEFT_WORDS for t in tokens)
    right = any(t in _RIGHT_WORDS for t in tokens)
    if left == right:
        return CENTRE
    return LEFT if left else RIGHT


def joint_sides(names: list[str], parents: np.ndarray) -> np.ndarray:
    """(J,) int8 side per joint; unnamed joints inherit their parent's side (fingers under a hand)."""
    sides = np.array([name_side(n) for n in names], dtype=np.int8)
    for j, p in enumerate(np.asarray(parents)):
        if sides[j] == CENTRE and p >= 0:
            sides[j] = sides[p]
    return sides


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([
        np.stack([v, t, p], -1), np.stack([q, v, p], -1), np.stack([p, v, t], -1),
        np.stack([p, q, v], -1), np.stack([t, p, v], -1), np.stack([v, p, q], -1),
    ], 0)
    return table[i, np.arange(len(h))]


def joint_colours(sides: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """(J, 3) float32 RGB in [0, 1]: warm left, cool right, green-grey centre, shade by chain depth."""
    sides = np.asarray(sides)
    depths = np.asarray(depths)
    hue = np.where(sides == LEFT, 0.03, np.where(sides == RIGHT, 0.58, 0.30))
    # Small hue drift along the chain keeps hands distinct from shoulders.
    hue = (hue + 0.025 * (depths % 4) * np.where(sides == RIGHT, -1, 1)) % 1.0
    sat = np.where(sides == CENTRE, 0.30, 0.75)
    val = np.where(depths % 2 == 0, 0.92, 0.70)
    return _hsv_to_rgb(hue.astype(np.float64), sat.astype(np.float64), val.astype(np.float64)).astype(np.float32)


def face_parts(faces: np.ndarray, joint_indices: np.ndarray, joint_weights: np.ndarray, num_joints: int) -> np.ndarray:
    """(T,) joint with the largest summed skinning weight over each triangle's corners."""
    faces = np.asarray(faces)
    t, k = len(faces), joint_indices.shape[1]
    if t == 0:
        return np.zeros(0, dtype=np.int32)
    idx = joint_indices[faces].reshape(t, 3 * k)
    w = joint_weights[faces].reshape(t, 3 * k)
    acc = np.zeros((t, num_joints), dtype=np.float64)
    np.add.at(acc, (np.repeat(np.arange(t), 3 * k), idx.reshape(-1)), w.reshape(-1))
    return acc.argmax(1).astype(np.int32)
