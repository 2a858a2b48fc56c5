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

Clips of *other* skeletons (another naming convention, other proportions) are
reached through the retarget joint mapping (``cross_skeleton.py``): the shot's
gap-end poses are retargeted onto each bridged library skeleton and looked up
in that skeleton's index the same way (same ``admit``); the stretches kept (at
most ``other_budget`` seconds) are retargeted back onto the shot's skeleton,
and their labels name the skeleton (``retargeted_from`` in the provenance).

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
OTHER_SCORE = 0.13  # other skeletons: farthest the two ends may be in sum (see retrieve)
OTHER_BUDGET = 12.0  # s of other skeletons' motion, at most (each stretch is retargeted: ~4 ms a frame)
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
    bridged: list = field(default_factory=list)  # other library skeletons searched through the joint mapping
    skipped: list = field(default_factory=list)  # other library skeletons not bridged, and why


def retrieve(lib: Library, skeleton: Skeleton, known: Motion, timeline: Timeline, up_axis: str = "Y",
             exclude_clips=(), k: int = K, per_gap: int = PER_GAP, pad: float = PAD, budget: float = BUDGET,
             admit: float = ADMIT, other_skeletons: bool = False, other_budget: float = OTHER_BUDGET,
             other_score: float = OTHER_SCORE) -> Retrieval:
    """Library stretches for the gaps of ``timeline`` (``known``: the shot's context and key samples).

    ``other_skeletons``: also search library skeletons with other joints that the retarget mapping bridges
    confidently (cross_skeleton.py); their stretches, at most ``other_budget`` seconds, are retargeted. A
    proposal from another skeleton must also match both ends within ``other_score`` sizes in sum: a
    retargeted stretch is another actor's motion on the shot's rig, and the prior's plausibility test, which
    measures against frames that include it, was fooled by looser ones (benchmarks: of 5 gaps it accepted,
    the 3 that were worse than interpolation had sums 0.160-0.167, the 2 better ones 0.095 and 0.111)."""
    t0 = time.perf_counter()
    shot_skel, shot_y, up_y = to_y_up(skeleton, known, up_axis)
    sk = lib.skeleton_for(skeleton.short_names, up_y)
    out = Retrieval(lib.path, sk.name if sk else None)
    if not timeline.gaps:
        return out
    excluded = set(int(c) for c in exclude_clips)
    dense = _dense(shot_skel, shot_y, timeline)
    rows = dense.index_of(np.array([[g.start, g.end] for g in timeline.gaps]).ravel())
    found: list[list] = [[] for _ in timeline.gaps]  # per gap: (score, clip, first second, last second)
    best: list = [None] * len(timeline.gaps)
    notes, searched = [], []
    if sk is not None:
        if all(c.id in excluded for c in lib.clips(sk.key)):
            notes.append(f"every clip of skeleton {sk.name} in library {lib.path} is excluded")
        else:
            feats = lib.features(sk.key, shot_skel, dense)[rows]
            _propose(lib, sk, feats, timeline, known.fps, excluded, k, admit, found, best)
            searched.append(sk.name)
    bridges: dict = {}
    if other_skeletons and up_y == "Y":
        from . import cross_skeleton

        usable, out.skipped = cross_skeleton.bridges(lib, shot_skel, shot_y, skip=sk.key if sk else None)
        for b in usable:
            if all(c.id in excluded for c in lib.clips(b.key)):
                continue
            info = lib.skeleton(b.key)
            feats = cross_skeleton.query_features(b, info.frame, shot_skel, dense, rows)
            _propose(lib, info, feats, timeline, known.fps, excluded, k, admit, found, best, other_score)
            bridges[b.key] = b
            searched.append(b.name)
        out.bridged = sorted(b.name for b in bridges.values())
    out.matches = best
    if not searched:
        if sk is None:
            notes.append(f"library {lib.path} has no skeleton with this animation's {skeleton.num_joints} joint "
                         "names" + (" nor one the joint mapping bridges confidently" if other_skeletons else "")
                         + ": filled from the shot alone")
        out.note = "; ".join(notes)
        out.seconds = time.perf_counter() - t0
        return out
    proposals = []
    for items in found:
        items.sort()
        chosen: list[tuple] = []
        for f in items:  # distinct proposals: not the same stretch found from both ends
            if all(f[1] != c[1] or abs(f[2] - c[2]) > 0.5 * pad for c in chosen):
                chosen.append(f)
            if len(chosen) == per_gap:
                break
        proposals += chosen
    if not proposals:
        clips = sum(len(lib.clips(lib.skeleton(n).key)) for n in searched)
        out.note = (f"no stretch of the {clips} library clip(s) on skeleton{'s' if len(searched) > 1 else ''} "
                    f"{', '.join(searched)} comes close to this shot's poses: filled from the shot alone")
        out.seconds = time.perf_counter() - t0
        return out
    spans = _merge(lib, proposals, pad, budget, other_budget, sk.key if sk else None)
    size = _size(skeleton, known)
    static = _static_offsets(known, size)
    for clip_id, (a, b), score in spans:
        info = lib.clip(clip_id)
        motion = lib.motion(info)
        f0, f1 = int(np.floor(a * info.fps)), min(int(np.ceil(b * info.fps)), motion.num_frames - 1)
        part = motion.select(np.arange(f0, f1 + 1))
        bridge = bridges.get(info.skeleton)
        label = {"clip": info.name, "clip_id": info.id, "file": lib.source_path(info.file) or info.file,
                 "fps": info.fps, "frames": [f0, f1], "distance": round(score, 5), "admitted": True,
                 "source": "library"}
        if bridge is None:
            part = _on_shot(part, skeleton, up_axis, known, size / max(info.size, 1e-12), static)
        else:  # another skeleton's clip: retargeted onto the shot's (already in its units)
            from . import cross_skeleton

            part = cross_skeleton.onto_shot(bridge, part, shot_skel, shot_y)
            part = _on_shot(part, skeleton, up_axis, known, 1.0, static)
            label.update(skeleton=bridge.name, retargeted=True, mapping_confidence=round(bridge.confidence, 3))
        out.references.append(part)
        out.labels.append(label)
    out.seconds = time.perf_counter() - t0
    return out


def _propose(lib: Library, sk, feats: np.ndarray, timeline: Timeline, fps: float, excluded: set, k: int,
             admit: float, found: list[list], best: list, score_limit: float = np.inf) -> None:
    """Proposals of one library skeleton for every gap (``feats``: the gaps' start and end poses in its
    features, 2 rows per gap), added to ``found``; ``best``: per gap, the end distances of the best."""
    nodes = lib.nodes(sk.key)
    hits = lib.query(sk.key, feats, k=k, exclude_clips=sorted(excluded) if excluded else None)
    joints = len(sk.frame["joints"])
    for g, gap in enumerate(timeline.gaps):
        span = (gap.end - gap.start) / fps
        steps = int(round(span * NODE_RATE))
        for side, other in ((0, 1), (1, 0)):  # hits on the start pose, then on the keyframe's
            node = hits.node[2 * g + side]
            partner = node + (steps if side == 0 else -steps)
            ok = (partner >= 0) & (partner < nodes.size)
            partner = np.where(ok, partner, node)
            ok &= nodes.clip[partner] == nodes.clip[node]
            d_other = _rms(nodes.features[partner], feats[2 * g + other], joints)
            d_here = hits.distance[2 * g + side]
            score = d_here + d_other
            keep = ok & (d_here <= admit) & (d_other <= admit) & (score <= score_limit)
            for i in np.flatnonzero(keep):
                first = nodes.time[min(node[i], partner[i])]
                found[g].append((float(score[i]), int(nodes.clip[node[i]]), float(first), float(first) + span))
            if ok.any():
                i = int(np.argmin(np.where(ok, score, np.inf)))
                ends = (float(d_here[i]), float(d_other[i]))[::1 if side == 0 else -1]
                if best[g] is None or sum(ends) < sum(best[g]):
                    best[g] = ends


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
            segs.append({**{k: label[k] for k in ("clip", "file", "source", "prim", "skeleton") if k in label},
                         "source_frames": frames, "source_seconds": [round(x, 4) for x in s["seconds"]]})
        if segs:
            entry["filled_by"] = "library" if any(x.get("source") == "library" for x in segs) else "reference"
            entry["segments"] = segs
            entry["clip"], entry["source_frames"] = segs[0].get("clip") or segs[0].get("file"), segs[0]["source_frames"]
            if segs[0].get("skeleton"):  # another skeleton's clip, retargeted
                entry["retargeted_from"] = segs[0]["skeleton"]
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


def _merge(lib: Library, proposals: list[tuple], pad: float, budget: float, other_budget: float = 0.0,
           same: str | None = None) -> list[tuple]:
    """Padded proposals merged per clip where they overlap, best first, until ``budget`` seconds (clips of
    skeletons other than ``same``: ``other_budget`` seconds, as each is retargeted)."""
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
    out, total = [], {True: 0.0, False: 0.0}
    for score, clip, (a, b) in merged:
        own = lib.clip(clip).skeleton == same
        cap = budget if own else other_budget
        if total[own] >= cap:
            continue
        b = min(b, a + cap - total[own])
        out.append((clip, (a, b), score))
        total[own] += b - a
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
