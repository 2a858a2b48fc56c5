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


_SWAP = {"l": "r", "r": "l", "left": "right", "right": "left", "lft": "rgt", "rgt": "lft", "lt": "rt", "rt": "lt"}


def _swapped_name(name: str) -> str:
    """``name`` with its side words swapped, case kept ("LeftArm" -> "RightArm", "leg_L_2" -> "leg_R_2")."""
    def swap(m: re.Match) -> str:
        word = m.group(0)
        other = _SWAP.get(word.lower())
        if other is None:
            return word
        if word.isupper():
            return other.upper()
        return other.capitalize() if word[0].isupper() else other

    return _TOKEN.sub(swap, name)


def mirror_partners(names: list[str], parents: np.ndarray) -> np.ndarray | None:
    """(J,) the joint each joint becomes in a left/right mirror image (itself on the centre line), or None
    when the sides do not pair up.

    Pairs are found down the hierarchy: under each centre joint its left and
    right children pair up, then the children of each pair; several at once
    are matched by name with the side words swapped ("LeftArm" / "RightArm"),
    else in skeleton order (CesiumMan's "arm_joint_L__4_" / "arm_joint_R",
    fingers named alike under both hands).
    """
    parents = np.asarray(parents)
    sides = joint_sides(names, parents)
    children = [np.flatnonzero(parents == j) for j in range(len(names))]
    partner = np.arange(len(names))

    def pair(left: np.ndarray, right: np.ndarray) -> bool:
        if len(left) != len(right):
            return False
        by_name = {names[b]: b for b in right}
        matched = [by_name.get(_swapped_name(names[a])) for a in left]
        order = matched if None not in matched and len(set(matched)) == len(right) else list(right)
        for a, b in zip(left, order):
            partner[a], partner[b] = b, a
            if not pair(children[a], children[b]):
                return False
        return True

    for p in np.flatnonzero(sides == CENTRE):
        kids = children[p]
        if not pair(kids[sides[kids] == LEFT], kids[sides[kids] == RIGHT]):
            return None
    roots = np.flatnonzero((parents < 0) & (sides != CENTRE))
    if not pair(roots[sides[roots] == LEFT], roots[sides[roots] == RIGHT]):
        return None
    return partner


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
