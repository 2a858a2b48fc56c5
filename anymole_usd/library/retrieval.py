"""Library retrieval for in-betweening: the clip stretches of a motion library that a shot's gaps may play.

``inbetween SHOT --library LIB`` hands the default prior, besides the shot's
own context, short stretches of library clips on the same skeleton (same
joint names), found through the library's nearest-neighbour index, never by
scanning it: per gap, the known sample before it and the keyframe after it
(velocities from the shot's context where it has one, else from the plain
interpolation between its keys) are looked up among the library's nodes
(``k`` nearest each, an O(log N) query). A hit on the gap's start pose at
clip time ``s`` proposes the stretch ``s .. s + gap`` of that clip, a hit on
its end pose ``s - gap .. s``; each proposal is scored by how well it matches
*both* ends (the distance at its other end is read off the node arrays at
the same clip offset), and only proposals within ``admit`` character sizes
(RMS per joint of the pose + velocity features) of the shot at both ends are
admitted: a clip of other motion never enters. (Measured on the tuning clips of
benchmarks/bench_library_inbetween.py, LaFAN1 and AnyMoLe gaps interpolation
would fill: a library path whose ends both match within 0.09 sizes beat
interpolation on 21 of 29 gaps, and on all 18 of them that the prior's
plausibility test accepts; beyond 0.09, on 18 of 125.) The best ``per_gap`` proposals per gap, padded
by ``pad`` seconds, are merged per clip and read from their sources (only
the clips used), capped at ``budget`` seconds in all, so the prior's graph,
and the time it takes, do not grow with the library.

Each stretch is put on the shot's character: lengths scaled by the ratio of
character sizes, joint offsets that never change in the shot replaced by the
shot's own (another actor's bone lengths are not played), and axes turned back
when the shot is Z-up (libraries are stored Y-up). Its times are the source
clip's frame numbers, so the prior's report of the seconds it played maps
back to "clip X, frames a..b" (:func:`gap_provenance`).

The prior still decides, per gap, whether a library path is clearly better than
the shot's own graph or interpolation (the ``graph`` prior's ``reference_margin``
and ``graph_margin``); this module only chooses what it may look at.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from anymole_usd.motion import Motion
from anymole_usd.skeleton import Skeleton
from anymole_usd.timeline import Timeline

from .features import NODE_RATE
from .sources import to_y_up
from .store import Library

K = 16  # nearest library nodes per query pose
PER_GAP = 4  # proposals kept per gap
PAD = 0.5  # s of clip on each side of a proposal
BUDGET = 40.0  # s of library motion handed to the prior, at most
ADMIT = 0.085  # character sizes (RMS per joint, pose and weighted velocity): farthest a proposal's end may be
STATIC = 1e-4  # of the character size: a joint offset that moves less is the rig's bone, not motion


@dataclass
class Retrieval:
    """What a library contributes to one animation of a shot."""

    library: str
    skeleton: str | None  # the library skeleton's name (None: none has the shot's joints)
    references: list[Motion] = field(default_factory=list)  # on the shot's character, times = source frames
    labels: list[dict] = field(default_factory=list)  # per reference: clip, clip_id, file, fps, frames, ...
    note: str = ""  # why nothing was retrieved, for the report
    matches: list = field(default_factory=list)  # per gap: (distance at its start, at its end) of the best proposal
    seconds: float = 0.0  # time spent


def retrieve(lib: Library, skeleton: Skeleton, known: Motion, timeline: Timeline, up_axis: str = "Y",
             exclude_clips=(), k: int = K, per_gap: int = PER_GAP, pad: float = PAD, budget: float = BUDGET,
             admit: float = ADMIT) -> Retrieval:
    """Library stretches for the gaps of ``timeline`` (``known``: the shot's context and key samples)."""
    t0 = time.perf_counter()
    shot_skel, shot_y, up_y = to_y_up(skeleton, known, up_axis)
    sk = lib.skeleton_for(skeleton.short_names, up_y)
    out = Retrieval(lib.path, sk.name if sk else None)
    if sk is None:
        out.note = (f"library {lib.path} has no skeleton with this animation's {skeleton.num_joints} joint names: "
                    "filled from the shot alone")
        return out
    if not timeline.gaps:
        return out
    nodes = lib.nodes(sk.key)
    excluded = set(int(c) for c in exclude_clips)
    if all(c.id in excluded for c in lib.clips(sk.key)):
        out.note = f"every clip of skeleton {sk.name} in library {lib.path} is excluded"
        return out
    dense = _dense(shot_skel, shot_y, timeline)
    feats = lib.features(sk.key, shot_skel, dense)
    rows = dense.index_of(np.array([[g.start, g.end] for g in timeline.gaps]).ravel())
    hits = lib.query(sk.key, feats[rows], k=k, exclude_clips=sorted(excluded) if excluded else None)
    joints = len(sk.frame["joints"])
    proposals = []  # (score, clip, first second, last second)
    for g, gap in enumerate(timeline.gaps):
        span = (gap.end - gap.start) / known.fps
        steps = int(round(span * NODE_RATE))
        found, best_ends = [], None
        for side, other in ((0, 1), (1, 0)):  # hits on the start pose, then on the keyframe's
            node = hits.node[2 * g + side]
            partner = node + (steps if side == 0 else -steps)
            ok = (partner >= 0) & (partner < nodes.size)
            partner = np.where(ok, partner, node)
            ok &= nodes.clip[partner] == nodes.clip[node]
            d_other = _rms(nodes.features[partner], feats[rows[2 * g + other]], joints)
            d_here = hits.distance[2 * g + side]
            score = d_here + d_other
            keep = ok & (d_here <= admit) & (d_other <= admit)
            for i in np.flatnonzero(keep):
                first = nodes.time[min(node[i], partner[i])]
                found.append((float(score[i]), int(nodes.clip[node[i]]), float(first), float(first) + span))
            if ok.any():
                best = int(np.argmin(np.where(ok, score, np.inf)))
                ends = (float(d_here[best]), float(d_other[best]))[::1 if side == 0 else -1]
                if best_ends is None or sum(ends) < sum(best_ends):
                    best_ends = ends
        out.matches.append(best_ends)
        found.sort()
        chosen: list[tuple] = []
        for f in found:  # distinct proposals: not the same stretch found from both ends
            if all(f[1] != c[1] or abs(f[2] - c[2]) > 0.5 * pad for c in chosen):
                chosen.append(f)
            if len(chosen) == per_gap:
                break
        proposals += chosen
    if not proposals:
        out.note = (f"no stretch of the {len(lib.clips(sk.key))} library clip(s) on skeleton {sk.name} comes "
                    "close to this shot's poses: filled from the shot alone")
        out.seconds = time.perf_counter() - t0
        return out
    spans = _merge(lib, proposals, pad, budget)
    size = _size(skeleton, known)
    static = _static_offsets(known, size)
    for clip_id, (a, b), score in spans:
        info = lib.clip(clip_id)
        motion = lib.motion(info)
        f0, f1 = int(np.floor(a * info.fps)), min(int(np.ceil(b * info.fps)), motion.num_frames - 1)
        part = motion.select(np.arange(f0, f1 + 1))
        part = _on_shot(part, skeleton, up_axis, known, size / max(info.size, 1e-12), static)
        out.references.append(part)
        out.labels.append({"clip": info.name, "clip_id": info.id, "file": lib.source_path(info.file) or info.file,
                           "fps": info.fps, "frames": [f0, f1], "distance": round(score, 5), "admitted": True,
                           "source": "library"})
    out.seconds = time.perf_counter() - t0
    return out


def gap_provenance(gaps: list[dict], labels: list[dict]) -> list[dict]:
    """The prior's per-gap record (``GraphPrior.gaps``) with its reference segments named: clip, file and
    source frames (the seconds it reports are the reference's own, i.e. source frame / fps)."""
    out = []
    for g in gaps:
        entry = {k: v for k, v in g.items() if k != "segments"}
        segs = []
        for s in g.get("segments", []):
            label = labels[s["reference"]] if s["reference"] < len(labels) else {}
            fps = float(label.get("fps") or 0.0)
            frames = [int(round(x * fps)) for x in s["seconds"]] if fps else None
            segs.append({**{k: label[k] for k in ("clip", "file", "source", "prim") if k in label},
                         "source_frames": frames, "source_seconds": [round(x, 4) for x in s["seconds"]]})
        if segs:
            entry["filled_by"] = "library" if any(x.get("source") == "library" for x in segs) else "reference"
            entry["segments"] = segs
            entry["clip"], entry["source_frames"] = segs[0].get("clip") or segs[0].get("file"), segs[0]["source_frames"]
        out.append(entry)
    return out


def _dense(skeleton: Skeleton, known: Motion, timeline: Timeline) -> Motion:
    """The known samples with every gap filled by plain interpolation: velocities at isolated keys."""
    from anymole_usd.plugins.priors.interp import InterpPrior
    from anymole_usd.prior import InbetweenRequest

    filled = InterpPrior().fill(InbetweenRequest(skeleton, known, timeline))
    return Motion.concatenate([known, filled])


def _rms(a: np.ndarray, b: np.ndarray, joints: int) -> np.ndarray:
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.sqrt(np.sum(d * d, axis=-1) / max(joints, 1))


def _merge(lib: Library, proposals: list[tuple], pad: float, budget: float) -> list[tuple]:
    """Padded proposals merged per clip where they overlap, best first, until ``budget`` seconds."""
    spans: dict[int, list] = {}
    for score, clip, a, b in sorted(proposals):
        dur = lib.clip(clip).duration
        lo, hi = max(0.0, a - pad), min(dur, b + pad)
        spans.setdefault(clip, []).append([lo, hi, score])
    merged = []
    for clip, items in spans.items():
        items.sort()
        cur = items[0]
        for lo, hi, score in items[1:]:
            if lo <= cur[1]:
                cur[1], cur[2] = max(cur[1], hi), min(cur[2], score)
            else:
                merged.append((cur[2], clip, (cur[0], cur[1])))
                cur = [lo, hi, score]
        merged.append((cur[2], clip, (cur[0], cur[1])))
    merged.sort(key=lambda m: m[0])
    out, total = [], 0.0
    for score, clip, (a, b) in merged:
        if total >= budget:
            break
        b = min(b, a + budget - total)
        out.append((clip, (a, b), score))
        total += b - a
    return out


def _size(skeleton: Skeleton, motion: Motion) -> float:
    from anymole_usd import kinematics
    from anymole_usd.metric import character_size

    pos = kinematics.global_positions(skeleton.parents, motion.rotations, motion.translations, motion.scales)
    return character_size(pos, skeleton.parents)


def _static_offsets(known: Motion, size: float) -> np.ndarray:
    """(J,) joints whose local translation never changes in the shot (their bone, not their motion)."""
    moved = np.linalg.norm(known.translations - known.translations[:1], axis=-1).max(axis=0)
    return moved < STATIC * size


def _on_shot(part: Motion, skeleton: Skeleton, up_axis: str, known: Motion, scale: float,
             static: np.ndarray) -> Motion:
    """A library stretch (Y-up, its actor's size) on the shot's character and axes."""
    if up_axis == "Z":
        from anymole_usd.plugins.io.axes import transform_scene, up_axis_rotation
        from anymole_usd.plugins.io.base import Scene

        y_skel, _, _ = to_y_up(skeleton, known, up_axis)
        scene = Scene(skeleton=y_skel, animations={"a": part}, bound="a", up_axis="Y")
        part = transform_scene(scene, up_axis_rotation("Y", "Z")).animations["a"]
    tr = part.translations * scale
    tr[:, static] = known.translations[0, static]
    times = np.asarray(part.times, dtype=np.float64)
    return replace(part, translations=tr, times=times, joints=list(known.joints))
