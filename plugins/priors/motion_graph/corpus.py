"""What a motion graph is built from: the shot's own runs, reference runs, and where each frame came from.

A :class:`Corpus` is one graph with everything the prior needs around it: the
body frame its features were computed in, the contact joints (feet) found in
its frames, each node's foot heights, how far the shot's own low feet glide
per second, and the origin of each run (the shot itself, or reference ``i``
of the request with its time codes), so a path through it can be reported as
"these seconds of that clip" (:func:`path_segments`).

The prior builds up to two: the shot's own graph (exactly what it would build
without any reference) and a wider one with the admitted references; a
reference only replaces the own graph's answer where it is clearly better.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anymole_usd.motion import Motion

from .features import BodyFrame, find_body_frame, frame_data
from .footlock import Feet, find_feet, planted
from .graph import MotionGraph, build_graph
from .neighbours import FrameIndex
from .plants import glide


@dataclass
class Corpus:
    frame: BodyFrame
    graph: MotionGraph
    feet: Feet
    foot_height: np.ndarray  # (N, C) contact joints' heights above their ground level, per node
    own: int  # the first ``own`` runs of the graph are the shot's
    origin: np.ndarray  # (runs,) reference index of each graph run, -1 for the shot's own
    times: list  # per graph run: the time codes of its frames (references: resampled source, shot rate)
    offsets: np.ndarray  # (runs,) first node of each run
    admitted: np.ndarray  # (reference runs offered,) kept in the graph
    context_glide: float  # sizes per second the shot's own low contact joints slide


def build_corpus(skeleton, known: Motion, up_axis: str, runs: list[Motion], origin: list[int], fps: float,
                 params: dict, check: list[bool] | None = None) -> Corpus:
    """The graph over ``runs`` (the shot's own first: ``origin`` -1, then references ``origin`` >= 0).

    ``params``: the prior's options (velocity_weight, threshold_scale, jump_penalty, prune,
    max_transitions, admit). ``check``: per run, whether the admission test applies (references a
    library retrieval already admitted skip it; the shot's own runs always stay).
    """
    origin = np.asarray(origin, dtype=np.int64)
    own = int(np.sum(origin < 0))
    rot_all = np.concatenate([r.rotations for r in runs] + [known.rotations])
    tr_all = np.concatenate([r.translations for r in runs] + [known.translations])
    sc_all = np.concatenate([r.scales for r in runs] + [known.scales])
    frame = find_body_frame(skeleton, rot_all, tr_all, sc_all, up_axis)
    wv = params["velocity_weight"]
    data, positions = [], []
    for r in runs:
        fd = frame_data(frame, skeleton, r.rotations, r.translations, r.scales, fps)
        positions.append(fd.positions)
        data.append({"rotations": r.rotations, "translations": r.translations, "scales": r.scales,
                     "features": np.concatenate([fd.pose, wv * fd.velocity], axis=1),
                     "ground": fd.ground, "yaw": fd.yaw, "pose_dims": fd.pose.shape[1]})
    exclude = max(3, int(round(0.1 * fps)))

    def build(parts):
        return build_graph(parts, len(frame.joints), params["threshold_scale"], exclude, params["jump_penalty"],
                           params["prune"], params["max_transitions"])

    graph = build(data)
    # Contact joints and ground levels from every frame on this skeleton, admitted or not.
    feet = find_feet(skeleton, np.concatenate(positions), frame)
    # How far this character's low contact joints glide per second in the shot's own motion: what the
    # contact cleanup must not take for an artefact (footwork that slides).
    own_glide = sum(glide(feet, p) for p in positions[:own])
    context_glide = own_glide / max(sum(len(p) - 1 for p in positions[:own]) / fps, 1e-9)
    checked = np.asarray(check if check is not None else [o >= 0 for o in origin], dtype=bool)
    keep = admitted(graph, data, own, checked, params["admit"])
    times = [r.times for r in runs]
    if not keep.all():  # rebuild from the shot's own runs and the references that resemble them
        data = [d for d, k in zip(data, keep) if k]
        positions = [p for p, k in zip(positions, keep) if k]
        times = [t for t, k in zip(times, keep) if k]
        graph = build(data)
    graph.contact = np.concatenate([planted(feet, p, fps) for p in positions])
    foot_height = np.concatenate(positions)[:, feet.joints] @ frame.up - feet.ground
    lengths = np.array([len(t) for t in times])
    return Corpus(frame, graph, feet, foot_height, own, origin[keep], times,
                  np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64), keep[own:], context_glide)


def admitted(graph: MotionGraph, data: list[dict], own: int, check: np.ndarray, scale: float) -> np.ndarray:
    """(runs,) which runs may stay in the graph: the shot's own and unchecked ones always; a checked
    reference run only when the shot's own frames (pose and velocity) lie, on average, within ``scale``
    x the graph's threshold of its frames, i.e. when it shows the motion the shot shows."""
    keep = np.ones(len(data), dtype=bool)
    if scale <= 0 or own == 0 or not check.any():
        return keep
    mine = np.concatenate([d["features"] for d in data[:own]])
    for i in np.flatnonzero(check):  # one nearest-neighbour index per reference run
        near = FrameIndex(data[i]["features"], graph.joints).nearest(mine)
        keep[i] = near.mean() <= scale * graph.threshold
    return keep


def path_segments(corpus: Corpus, nodes: np.ndarray, fps: float) -> list[dict]:
    """The reference frames a path plays (its first and last node stand for known samples): one entry per
    stretch of one reference run, ``{"reference": i, "seconds": [first, last]}`` in the reference's own
    seconds (its time codes over ``fps``, the rate it was resampled to)."""
    played = np.asarray(nodes)[1:-1]
    if len(played) == 0:
        return []
    run = corpus.graph.run[played]
    local = played - corpus.offsets[run]
    # A new stretch wherever the run changes or the path jumps within it (more than a skipped frame).
    cut = np.concatenate([[True], (run[1:] != run[:-1]) | (np.abs(np.diff(local)) > 2)])
    starts = np.flatnonzero(cut)
    ends = np.concatenate([starts[1:], [len(played)]]) - 1
    out = []
    for a, b in zip(starts, ends):
        ref = int(corpus.origin[run[a]])
        if ref < 0:
            continue
        t = corpus.times[run[a]]
        lo, hi = sorted((float(t[local[a]]), float(t[local[b]])))
        out.append({"reference": ref, "seconds": [lo / fps, hi / fps], "frames": int(b - a + 1)})
    return out
