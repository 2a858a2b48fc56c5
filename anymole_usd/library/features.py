"""Pose features of library clips: the graph prior's features, sampled at one node rate.

The definitions are the motion-graph prior's (``plugins/priors/motion_graph/
features.py``): joint positions relative to the body's ground position in its
heading frame and their velocities, in character sizes, concatenated as
``[pose, velocity_weight * velocity]``. What this module adds:

- one :class:`BodyFrame` per library skeleton (trajectory joint, body joint,
  heading axis, up), found once from the skeleton's first clips and stored in
  the manifest, so clips added later are described in the same frame;
- per-clip character size (a tall and a short actor on one rig compare by
  shape, and clips in other units still match);
- *nodes*: features sampled every ``1 / NODE_RATE`` seconds of every clip
  (linear interpolation between source frames), so clips at 24, 30 and 120
  fps share one time step. Nodes are what the index searches and what
  ``compose`` walks through.
- per node: ``speed`` (mean joint speed, sizes per second: kinetic beats are
  its local minima), ``ground`` and ``yaw`` of the body.

:func:`definition` fingerprints the feature code (this module and the graph
prior's functions it calls); the manifest records it, and a library built
with other features is rebuilt by ``library build`` and refused by queries.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass, replace

import numpy as np

from anymole_usd import kinematics
from anymole_usd.metric import character_size
from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton

FEATURE_VERSION = 1
NODE_RATE = 30.0  # nodes per second of clip
VELOCITY_WEIGHT = 0.1  # the graph prior's default: velocity (sizes/s) against position (sizes)
FRAME_SAMPLES = 4000  # source frames used to find a skeleton's body frame


@functools.lru_cache(maxsize=1)
def definition() -> str:
    """A fingerprint of the feature definition: version, rates and the code that computes features
    and the stored neighbours."""
    from anymole_usd.plugins.priors.motion_graph import features as graph_features

    from . import index

    h = hashlib.sha256(f"{FEATURE_VERSION}:{NODE_RATE}:{VELOCITY_WEIGHT}:{index.DIMS}".encode())
    for fn in (graph_features.find_body_frame, graph_features.frame_data, clip_nodes, index.neighbours):
        h.update(inspect.getsource(fn).encode())
    return f"{FEATURE_VERSION}:{h.hexdigest()[:16]}"


def body_frame_to_dict(frame) -> dict:
    return {"up": frame.up.tolist(), "e1": frame.e1.tolist(), "e2": frame.e2.tolist(),
            "traj_joint": int(frame.traj_joint), "traj_parent": np.asarray(frame.traj_parent).tolist(),
            "body_joint": int(frame.body_joint), "heading_axis": frame.heading_axis.tolist(),
            "size": float(frame.size), "joints": [int(j) for j in frame.joints]}


def body_frame_from_dict(d: dict):
    from anymole_usd.plugins.priors.motion_graph.features import BodyFrame

    return BodyFrame(np.asarray(d["up"], float), np.asarray(d["e1"], float), np.asarray(d["e2"], float),
                     int(d["traj_joint"]), np.asarray(d["traj_parent"], float), int(d["body_joint"]),
                     np.asarray(d["heading_axis"], float), float(d["size"]), np.asarray(d["joints"], np.int64))


def find_frame(skeleton: Skeleton, motions: list[Motion], up_axis: str = "Y"):
    """The body frame of a skeleton from (up to FRAME_SAMPLES evenly spread) frames of its clips."""
    from anymole_usd.plugins.priors.motion_graph.features import find_body_frame

    total = sum(m.num_frames for m in motions)
    stride = max(1, int(np.ceil(total / FRAME_SAMPLES)))
    r = np.concatenate([m.rotations[::stride] for m in motions])
    t = np.concatenate([m.translations[::stride] for m in motions])
    s = np.concatenate([m.scales[::stride] for m in motions])
    return find_body_frame(skeleton, r, t, s, up_axis)


@dataclass
class ClipNodes:
    """The nodes of one clip (every 1 / NODE_RATE s) and its size."""

    time: np.ndarray  # (n,) seconds from the clip's first sample
    features: np.ndarray  # (n, D) float32: pose, then VELOCITY_WEIGHT * velocity
    speed: np.ndarray  # (n,) mean joint speed, sizes / s
    ground: np.ndarray  # (n, 2) body ground position, sizes
    yaw: np.ndarray  # (n,) unwrapped heading, radians
    size: float  # character size, file units
    pose_dims: int


def node_times(frames: int, fps: float) -> np.ndarray:
    """Node times (s) of a clip of ``frames`` samples at ``fps``: 0, 1/NODE_RATE, ... up to its last sample."""
    duration = (frames - 1) / fps
    return np.arange(int(np.floor(duration * NODE_RATE + 1e-6)) + 1) / NODE_RATE


def clip_nodes(frame, skeleton: Skeleton, motion: Motion) -> ClipNodes:
    """Features of one clip (source rate), sampled at its node times."""
    from anymole_usd.plugins.priors.motion_graph.features import frame_data

    mats = kinematics.forward_kinematics(skeleton.parents, motion.rotations, motion.translations, motion.scales)
    size = character_size(mats[..., 3, :3], skeleton.parents)
    fr = replace(frame, size=size)
    fd = frame_data(fr, skeleton, motion.rotations, motion.translations, motion.scales, motion.fps)
    vel = fd.velocity if fd.velocity is not None else np.zeros_like(fd.pose)
    feats = np.concatenate([fd.pose, VELOCITY_WEIGHT * vel], axis=1)
    pos = fd.positions[:, frame.joints]
    step = np.linalg.norm(np.diff(pos, axis=0), axis=-1).mean(axis=1) * motion.fps / size
    speed = np.concatenate([step[:1], 0.5 * (step[1:] + step[:-1]), step[-1:]]) if len(step) else np.zeros(1)
    t = node_times(motion.num_frames, motion.fps)
    u = t * motion.fps
    i0 = np.clip(np.floor(u + 1e-9).astype(np.int64), 0, motion.num_frames - 1)
    i1 = np.minimum(i0 + 1, motion.num_frames - 1)
    w = (u - i0)[:, None]

    def lerp(a: np.ndarray) -> np.ndarray:
        a2 = a.reshape(len(a), -1)
        return ((1 - w) * a2[i0] + w * a2[i1]).reshape((len(t),) + a.shape[1:])

    return ClipNodes(time=t, features=lerp(feats).astype(np.float32), speed=lerp(speed).astype(np.float32),
                     ground=(lerp(fd.ground) / size).astype(np.float32),
                     yaw=lerp(np.unwrap(fd.yaw)).astype(np.float32), size=float(size),
                     pose_dims=int(fd.pose.shape[1]))


def query_features(frame_dict: dict, skeleton: Skeleton, motion: Motion, dense: bool = True) -> np.ndarray:
    """Features of arbitrary samples (a shot's frames) in a library skeleton's body frame, (F, D).

    ``dense``: the samples are consecutive (velocity from their differences);
    otherwise velocity columns are zero, as for isolated keyframes.
    """
    from anymole_usd.plugins.priors.motion_graph.features import frame_data

    frame = body_frame_from_dict(frame_dict)
    mats = kinematics.forward_kinematics(skeleton.parents, motion.rotations, motion.translations, motion.scales)
    size = character_size(mats[..., 3, :3], skeleton.parents)
    fd = frame_data(replace(frame, size=size), skeleton, motion.rotations, motion.translations, motion.scales,
                    motion.fps, dense=dense and motion.num_frames > 1)
    vel = fd.velocity if fd.velocity is not None else np.zeros_like(fd.pose)
    return np.concatenate([fd.pose, VELOCITY_WEIGHT * vel], axis=1)
