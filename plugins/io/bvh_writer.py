"""Writing BVH: a Skeleton and a uniformly sampled Motion as a BVH file.

The reader's conventions hold (intrinsic Euler angles in listed order,
position channels replace OFFSETs), so ``read_bvh(write_bvh(...))`` gives back
the same joint positions. Column data goes out through ``np.savetxt``.
"""
from __future__ import annotations

import os
import re

import numpy as np

from anymole_usd import rotations as rot
from anymole_usd.errors import InputError
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton


def rotation_axes(channels: list[str]) -> str:
    """Axes of the rotation channels in listed order, e.g. "ZXY" (the scipy intrinsic order)."""
    return "".join(c[0] for c in channels if c.endswith("rotation"))


def _dfs_order(parents: np.ndarray) -> list[int]:
    children: list[list[int]] = [[] for _ in parents]
    roots = []
    for j, p in enumerate(parents):
        (children[p] if p >= 0 else roots).append(j)
    order: list[int] = []
    stack = list(reversed(roots))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    return order


def default_channels(skeleton: Skeleton, motion: Motion, rotation_order: str = "ZXY",
                     tol: float = 1e-6) -> list[list[str]]:
    """Position + rotation channels on roots and on joints whose translation is animated; rotations elsewhere."""
    animated = _translation_animated(skeleton, motion, tol)
    out = []
    for j, p in enumerate(skeleton.parents):
        chans = [f"{a}rotation" for a in rotation_order]
        if p < 0 or animated[j]:
            chans = ["Xposition", "Yposition", "Zposition"] + chans
        out.append(chans)
    return out


def _translation_animated(skeleton: Skeleton, motion: Motion, tol: float) -> np.ndarray:
    offsets = skeleton.rest_transforms[:, 3, :3]
    dev = np.abs(motion.translations - offsets[None]).max(axis=(0, 2)) if motion.num_frames else 0
    return dev > tol * skeleton.height()


def write_bvh(path: str | os.PathLike, skeleton: Skeleton, motion: Motion, *,
              channels: list[list[str]] | None = None,
              end_sites: list[tuple[int, np.ndarray]] | None = None,
              rotation_order: str = "ZXY", frame_time: float | None = None, precision: int = 6) -> None:
    """Write ``motion`` (uniformly spaced frames) on ``skeleton`` as BVH, atomically.

    OFFSETs are the rest translations; the rest rotation and all scales are
    dropped (BVH has neither), the full local rotation is written per frame.
    ``channels`` (per skeleton joint, e.g. from :class:`BvhClip`) fixes the
    layout; joints whose translation is animated gain position channels and
    joints with fewer than three rotation channels get ``rotation_order``.
    Leaf joints without an End Site get one a quarter of their own offset
    long, so tools that build bones from End Sites keep a non-zero bone.
    """
    from anymole_usd.authoring import atomic_output

    n_j = skeleton.num_joints
    if motion.num_joints != n_j:
        raise ValueError(f"motion has {motion.num_joints} joints, skeleton {n_j}")
    if motion.num_frames == 0:
        raise InputError("nothing to write: the motion has no frames", file=os.fspath(path))
    rotation_order = rotation_order.upper()
    if sorted(rotation_order) != ["X", "Y", "Z"]:
        raise ValueError(f"rotation order must be a permutation of XYZ, got {rotation_order!r}")
    layout = [list(c) for c in channels] if channels is not None else default_channels(skeleton, motion, rotation_order)
    if len(layout) != n_j:
        raise ValueError(f"{len(layout)} channel lists for {n_j} joints")
    animated = _translation_animated(skeleton, motion, 1e-6)
    for j, chans in enumerate(layout):
        rot_chans = [c for c in chans if c.endswith("rotation")]
        pos_chans = [c for c in chans if c.endswith("position")]
        if len(rot_chans) < 3:
            rot_chans = [f"{a}rotation" for a in rotation_order]
        if (animated[j] or skeleton.parents[j] < 0) and len(pos_chans) < 3:
            pos_chans = ["Xposition", "Yposition", "Zposition"]
        # Keep the original relative placement (positions first is the norm).
        rot_first = bool(chans) and chans[0].endswith("rotation") and any(c.endswith("position") for c in chans)
        layout[j] = rot_chans + pos_chans if rot_first else pos_chans + rot_chans

    offsets = skeleton.rest_transforms[:, 3, :3]
    names = [re.sub(r"\s+", "_", n) for n in skeleton.short_names]
    columns = []
    m = motion.normalized()
    for j in range(n_j):
        order = rotation_axes(layout[j])
        euler = np.unwrap(rot.quat_to_euler(m.rotations[:, j], order), period=360.0, axis=0)
        cols = {f"{a}rotation": euler[:, k] for k, a in enumerate(order)}
        cols.update({f"{a}position": m.translations[:, j, i] for i, a in enumerate("XYZ")})
        columns.append(np.stack([cols[c] for c in layout[j]], axis=1) if layout[j] else np.zeros((m.num_frames, 0)))

    sites = list(end_sites) if end_sites is not None else []
    has_child = np.zeros(n_j, dtype=bool)
    has_child[skeleton.parents[skeleton.parents >= 0]] = True
    has_child[[p for p, _ in sites]] = True
    for j in np.flatnonzero(~has_child):
        sites.append((int(j), offsets[j] * 0.25))
    site_by_joint: dict[int, list[np.ndarray]] = {}
    for p, o in sites:
        site_by_joint.setdefault(int(p), []).append(np.asarray(o, dtype=np.float64))

    order = _dfs_order(skeleton.parents)
    fmt = f"%.{precision}f"
    text = ["HIERARCHY"]
    depth = skeleton.depths()
    # Close braces as the DFS walk climbs back up: track the open joints on a stack.
    open_stack: list[int] = []
    for j in order:
        while open_stack and open_stack[-1] != skeleton.parents[j]:
            text.extend(_close(open_stack.pop(), depth, site_by_joint, fmt))
        ind = "\t" * depth[j]
        text.append(f"{ind}{'ROOT' if skeleton.parents[j] < 0 else 'JOINT'} {names[j]}")
        text.append(f"{ind}{{")
        text.append(f"{ind}\tOFFSET {_numbers(offsets[j], fmt)}")
        text.append(f"{ind}\tCHANNELS {len(layout[j])}" + "".join(" " + c for c in layout[j]))
        open_stack.append(j)
    while open_stack:
        text.extend(_close(open_stack.pop(), depth, site_by_joint, fmt))
    ft = frame_time if frame_time is not None else 1.0 / motion.fps
    text += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {ft:.8g}"]
    data = np.concatenate([columns[j] for j in order], axis=1)
    data = np.where(np.abs(data) < 0.5 * 10.0 ** -precision, 0.0, data)  # no "-0.000000"
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="\n") as fh:
            fh.write("\n".join(text) + "\n")
            np.savetxt(fh, data, fmt=fmt, delimiter=" ")


def _close(j: int, depth: np.ndarray, sites: dict[int, list[np.ndarray]], fmt: str) -> list[str]:
    ind = "\t" * depth[j]
    out = []
    for o in sites.get(j, []):
        out += [f"{ind}\tEnd Site", f"{ind}\t{{", f"{ind}\t\tOFFSET {_numbers(o, fmt)}", f"{ind}\t}}"]
    out.append(f"{ind}}}")
    return out


def _numbers(values: np.ndarray, fmt: str) -> str:
    # Values that print as zero are written as 0, never "-0.000000".
    return " ".join(fmt % (v if float(fmt % v) != 0 else 0.0) for v in values)
