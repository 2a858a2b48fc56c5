"""`graph`: the default prior, motion-graph retrieval from the shot itself (and any reference motion).

The retrieval half of Video Motion Graphs (Liu et al. 2025) on SkelAnimation:
a motion graph over the frames of the shot's context (plus any reference
animation on the same skeleton), an exact-length path search per gap from the
known sample before it to the keyframe after it, and an assembly that
re-targets the root trajectory, blends transitions and displaces the result so
every keyframe is met exactly, then pins planted feet with two-bone IK. See
``motion_graph/`` for each step.

Gaps are filled in time order, so a gap that starts at a keyframe sees the
velocity the previous gap arrived with. Graph steps are the context's own
sampling period (one time code, or e.g. half of one), and generated times
anywhere between them (``--fps 25`` on a 24 fps shot, a key at 36.25) are
sampled from the path by slerp.

*Per-gap choice.* Interpolation is the safe answer; the graph's in-between
replaces it only where its frames (pose and velocity) come clearly closer to
real motion, i.e. to their nearest graph frames: at most ``graph_margin`` (0.55)
times interpolation's distance. Measured on the tuning clips
(benchmarks/bench_inbetween.py), gaps past that margin lose to interpolation
about as often as they win, which no clip can afford: the rule is "never
worse than interp". Against a path through reference frames, interpolation is
also kept where it is already within the graph's transition threshold of real
motion. Reference runs enter the graph only when the shot's own frames come
close to theirs (``admit``).

*Contact cleanup* (``motion_graph/plants.py``: stances pinned, glides turned
into lifted steps) runs on a filled gap, interpolated or not, when a low foot
slides more than ``clean_glide`` character sizes in it (interpolated walking)
and the graph holds at least ``min_context`` of motion to learn contacts from;
where no foot slides it has nothing to fix and is not applied.

A gap falls back to ``interp`` with a warning on the ``anymole_usd.priors.graph``
logger (Python ``logging``, a child of ``anymole_usd``) when the context is too
short for a useful graph (under ``min_context`` seconds) or the graph has no
path of the gap's length. :attr:`GraphPrior.fallbacks` lists every gap filled
by interpolation after :meth:`fill` (fallbacks and choices), with the reason.

*Retrieval API* (for reference clips and, later, a motion library): every
pose comparison goes through :class:`motion_graph.neighbours.FrameIndex`
(exact k-nearest neighbours over feature rows, ``N log N``); the features are
:func:`motion_graph.features.frame_data` rows (facing-normalised joint
positions and ``velocity_weight`` x velocities, in character sizes) of the
joints below the trajectory joint. Reference motions arrive as
``InbetweenRequest.references`` (same joints, any frame rate: resampled to the
shot's); a library index over those features can answer the same queries.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from anymole_usd import kinematics
from anymole_usd.motion import Motion
from anymole_usd.parameters import Param, Parameters
from anymole_usd.prior import InbetweenRequest, Prior
from anymole_usd.timeline import TIME_TOLERANCE, Gap

from .motion_graph.assembly import assemble, end_weights, sample
from .motion_graph.features import BodyFrame, FrameData, find_body_frame, frame_data
from .motion_graph.footlock import (PLANTED_HEIGHT, Feet, edge_window, find_feet, lock_feet, near_planted,
                                   planted)
from .motion_graph.graph import MotionGraph, build_graph
from .motion_graph.neighbours import FrameIndex
from .motion_graph.plants import clean_steps, glide
from .motion_graph.runs import dense_runs, resample_to
from .motion_graph.search import Endpoints, beam_paths, dp_paths
from .motion_graph.trajectory import retarget

log = logging.getLogger("anymole_usd.priors.graph")

PARAMS = Parameters(
    Param("threshold_scale", 1.0, "transition threshold, x the graph's mean nearest-neighbour pose distance",
          min=0, min_exclusive=True),
    Param("velocity_weight", 0.1, "weight of joint velocity (sizes/s) against position (sizes) in pose distances",
          min=0),
    Param("jump_penalty", 0.02, "cost added to every transition edge, in character sizes", min=0),
    Param("start_weight", 1.0, "weight of the pose distance to the known sample before the gap", min=0),
    Param("end_weight", 2.0, "weight of the pose distance to the keyframe after the gap", min=0),
    Param("root_weight", 1.0, "path cost per character size of root mismatch at the keyframe", min=0),
    Param("heading_weight", 0.5, "path cost per radian of heading mismatch at the keyframe", min=0),
    Param("blend", 0.25, "seconds over which a transition is blended (inertialisation)", min=0, max=10),
    Param("window", 1.0, "seconds over which the path is displaced onto the known samples at each end (0: the "
          "whole gap)", min=0),
    Param("profile", "smooth", "shape of that displacement", choices=("smooth", "linear")),
    Param("search", "auto", "path search: dp, beam, or auto (beam for gaps longer than beam_after)",
          choices=("dp", "beam", "auto")),
    Param("beam_after", 3.0, "seconds: with search=auto, longer gaps use beam search", min=0),
    Param("beam_width", 64, "partial paths kept per step by beam search", min=1, max=4096),
    Param("candidates", 32, "cheapest DP end nodes re-ranked by root mismatch", min=1, max=4096),
    Param("min_context", 0.5, "seconds of graph motion below which a gap falls back to interp", min=0),
    Param("max_transitions", 32, "transitions kept out of a frame to other motion: its nearest under the "
          "threshold (short skips within its own run come on top)", min=1, max=1024),
    Param("prune", True, "drop dead-end graph nodes (from which no path continues)"),
    Param("jitter", 0.0, "seeded noise on transition costs, for variations (0: none)", min=0),
    Param("select", True, "per gap, keep interpolation where it looks more like the shot's motion"),
    Param("interp_plausible", 1.0, "x graph threshold: interpolation this close to real motion is kept against "
          "paths through reference frames", min=0),
    Param("foot_lock", True, "pin feet planted in the source frames with two-bone IK"),
    Param("lock_ramp", 0.15, "seconds over which the foot-locking correction fades in and out", min=0),
    Param("admit", 3.0, "x graph threshold: reference runs must come this close to the shot's own frames "
          "(0: admit all)", min=0),
    Param("graph_margin", 0.55, "per gap, the graph replaces interpolation only where its frames' distance to "
          "real motion is below this fraction of interpolation's", min=0, max=1),
    Param("clean_steps", True, "on a filled gap where a planted foot slides: pin the stances and lift the steps"),
    Param("clean_glide", 0.5, "character sizes a low foot must slide in a filled gap before the cleanup touches it",
          min=0),
    Param("clean_ratio", 5.0, "... and x what the shot's own low feet slide in as much time (footwork that "
          "slides, a hand on a table: left alone)", min=0),
)


class GraphPrior(Prior):
    name = "graph"
    description = "Motion-graph retrieval from the shot's own context (data-free; Video Motion Graphs)."

    param_spec = PARAMS

    def __init__(self, **params) -> None:
        super().__init__(**params)  # validated and typed through ``param_spec``
        self.fallbacks: list[dict] = []
        self.stats: dict = {}  # size of the last graph built (nodes, edges, transitions, alive nodes)
        self.feet: Feet | None = None
        self.context_glide = 0.0  # sizes per second a low contact joint of the shot's own motion slides
        self.admitted = np.zeros(0, dtype=bool)  # per reference run: kept in the graph
        self._own_runs = 0
        self._outside = False

    def fill(self, request: InbetweenRequest) -> Motion:
        period = sample_period(request.known, request.timeline)
        if period == 1.0:
            return self._fill(request)
        # Work in steps of the context's own sampling (graph edges mean "one sample later"), then
        # put the result back on the requested time codes.
        out = self._fill(on_steps(request, period))
        out.times = np.asarray(request.target_times, dtype=np.float64)
        out.fps = request.known.fps
        return out

    def _fill(self, request: InbetweenRequest) -> Motion:
        self.fallbacks = []
        self.feet = None
        self.admitted = np.zeros(0, dtype=bool)
        known = request.known.normalized()
        out = self.empty_like(known, request.target_times)
        fps = known.fps
        own = dense_runs(known)
        runs = own + [r for ref in request.references for r in dense_runs(resample_to(ref, fps))
                                    if r.num_joints == known.num_joints]
        graph = frame = None
        min_nodes = max(3, int(np.ceil(self.option("min_context") * fps)))
        if sum(r.num_frames for r in runs) >= min_nodes:
            frame, graph = self._build(request, runs, fps, len(own))
        filled = known
        cursor = 0
        for i, gap in enumerate(request.timeline.gaps):
            request.report(f"graph: gap {i + 1}/{len(request.timeline.gaps)}", i / max(len(request.timeline.gaps), 1))
            n = len(gap.times)
            part, reason = None, f"context too short for a motion graph (under {self.option('min_context')} s)"
            if graph is not None and graph.alive.sum() >= min_nodes:
                part, reason = self._fill_gap(request, graph, frame, filled, gap)
            elif graph is not None and graph.size < min_nodes:
                reason = f"only {graph.size} graph frames: no reference was admitted (see `admit`)"
            elif graph is not None:
                reason = f"only {int(graph.alive.sum())} graph nodes survive dead-end pruning"
            if part is None:
                part = self._fallback(request, gap, reason)
            elif self.option("select"):
                part = self._select(request, graph, frame, filled, gap, part)
            if self.option("clean_steps") and graph is not None:  # contacts known from enough motion
                part = self._clean(request, filled, gap, part)
            out.rotations[cursor:cursor + n] = part[0]
            out.translations[cursor:cursor + n] = part[1]
            out.scales[cursor:cursor + n] = part[2]
            cursor += n
            filled = Motion.concatenate([filled, out.select(np.arange(cursor - n, cursor))])
        return out

    # ------------------------------------------------------------------ graph

    def _build(self, request: InbetweenRequest, runs: list[Motion], fps: float,
               own: int) -> tuple[BodyFrame, MotionGraph]:
        """The graph over ``runs``, the first ``own`` of which are the shot's; the others are references."""
        rot_all = np.concatenate([r.rotations for r in runs] + [request.known.rotations])
        tr_all = np.concatenate([r.translations for r in runs] + [request.known.translations])
        sc_all = np.concatenate([r.scales for r in runs] + [request.known.scales])
        frame = find_body_frame(request.skeleton, rot_all, tr_all, sc_all, request.up_axis)
        wv = self.option("velocity_weight")
        data, positions = [], []
        for r in runs:
            fd = frame_data(frame, request.skeleton, r.rotations, r.translations, r.scales, fps)
            positions.append(fd.positions)
            data.append({"rotations": r.rotations, "translations": r.translations, "scales": r.scales,
                         "features": np.concatenate([fd.pose, wv * fd.velocity], axis=1),
                         "ground": fd.ground, "yaw": fd.yaw, "pose_dims": fd.pose.shape[1]})
        exclude = max(3, int(round(0.1 * fps)))
        graph = build_graph(data, len(frame.joints), self.option("threshold_scale"), exclude,
                            self.option("jump_penalty"), self.option("prune"), self.option("max_transitions"))
        # Contact joints and ground levels from every frame on this skeleton, admitted or not.
        self.feet = find_feet(request.skeleton, np.concatenate(positions), frame)
        # How far this character's low contact joints glide per second in the shot's own motion: what
        # the contact cleanup must not take for an artefact (footwork that slides, a hand on a table).
        own_glide = sum(glide(self.feet, p) for p in positions[:own])
        self.context_glide = own_glide / max(sum(len(p) - 1 for p in positions[:own]) / fps, 1e-9)
        keep = self._admitted(graph, data, own)
        self.admitted = keep[own:]
        self._own_runs = own
        if not keep.all():  # rebuild from the shot's own runs and the references that resemble them
            data = [d for d, k in zip(data, keep) if k]
            positions = [p for p, k in zip(positions, keep) if k]
            graph = build_graph(data, len(frame.joints), self.option("threshold_scale"), exclude,
                                self.option("jump_penalty"), self.option("prune"), self.option("max_transitions"))
        self.stats = {"nodes": graph.size, "edges": int(len(graph.src)), "transitions": graph.transitions,
                      "alive": int(graph.alive.sum())}
        graph.contact = np.concatenate([planted(self.feet, p, fps) for p in positions])
        self.foot_height = np.concatenate(positions)[:, self.feet.joints] @ frame.up - self.feet.ground
        if self.option("jitter") > 0:
            rng = np.random.default_rng(request.seed)
            graph.cost = graph.cost + self.option("jitter") * rng.random(len(graph.cost)) * (graph.cost > 0)
        return frame, graph

    def _admitted(self, graph: MotionGraph, data: list[dict], own: int) -> np.ndarray:
        """(runs,) which runs may stay in the graph: the shot's own always; a reference run only when
        the shot's own frames (pose and velocity) lie, on average, within ``admit`` x the graph's
        threshold of its frames, i.e. when it shows the motion the shot shows."""
        keep = np.ones(len(data), dtype=bool)
        scale = self.option("admit")
        if scale <= 0 or own == 0 or len(data) == own:
            return keep
        mine = np.concatenate([d["features"] for d in data[:own]])
        for i in range(own, len(data)):  # one nearest-neighbour index per reference run
            near = FrameIndex(data[i]["features"], graph.joints).nearest(mine)
            keep[i] = near.mean() <= scale * graph.threshold
        return keep

    def _endpoint(self, request, frame: BodyFrame, motion: Motion, time: float, side: int) -> FrameData:
        """Features of a known sample, with velocity when its neighbouring sample on ``side`` (-1 / +1)
        lies within 1.5 steps (a generated sample off the step grid counts, at its own distance)."""
        i = int(motion.index_of([time])[0])
        j = i + side
        sk = request.skeleton
        dt = abs(motion.times[j] - motion.times[i]) if 0 <= j < motion.num_frames else np.inf
        if dt <= 1.5:
            idx = [j, i] if side < 0 else [i, j]
            fd = frame_data(frame, sk, motion.rotations[idx], motion.translations[idx], motion.scales[idx],
                            motion.fps / dt)
            k = 1 if side < 0 else 0
            return FrameData(fd.positions[k:k + 1], fd.body_rotation[k:k + 1], fd.ground[k:k + 1],
                             fd.yaw[k:k + 1], fd.pose[k:k + 1], fd.velocity[k:k + 1])
        return frame_data(frame, sk, motion.rotations[[i]], motion.translations[[i]], motion.scales[[i]],
                          motion.fps, dense=False)

    def _fill_gap(self, request, graph: MotionGraph, frame: BodyFrame, filled: Motion, gap: Gap):
        wv = self.option("velocity_weight")
        a = self._endpoint(request, frame, filled, gap.start, -1)
        b = self._endpoint(request, frame, filled, gap.end, +1)

        def cost(fd: FrameData, weight: float) -> np.ndarray:
            if fd.velocity is None:
                return weight * graph.distances_to(fd.pose[0], with_velocity=False)
            return weight * graph.distances_to(np.concatenate([fd.pose[0], wv * fd.velocity[0]]), True)

        span = gap.end - gap.start
        steps = max(int(round(span)), 2)  # path steps from the start sample to the key
        n = steps - 1
        ends = Endpoints(cost(a, self.option("start_weight")), cost(b, self.option("end_weight")),
                         a.ground[0], float(a.yaw[0]), b.ground[0], float(b.yaw[0]), frame.size,
                         self.option("root_weight"), self.option("heading_weight"))
        use_beam = self.option("search") == "beam" or (
            self.option("search") == "auto" and n > self.option("beam_after") * filled.fps)
        paths = (beam_paths(graph, n, ends, self.option("beam_width")) if use_beam
                 else dp_paths(graph, n, ends, self.option("candidates")))
        if not paths:
            return None, f"no path of {n} frames in a graph of {graph.size} nodes"
        nodes = paths[0].nodes
        self._diag = {"pose_cost": paths[0].pose_cost, "root_cost": paths[0].root_cost,
                      "start_d": float(ends.start_cost.min() / max(self.option("start_weight"), 1e-12)),
                      "end_d": float(ends.end_cost.min() / max(self.option("end_weight"), 1e-12)),
                      "end_vel": b.velocity is not None}
        self._outside = bool(np.any(graph.run[nodes] >= self._own_runs))  # the path plays reference frames
        k = len(nodes) - 1
        ground, yaw = retarget(graph.step[nodes[1:]][None], a.ground, np.array([a.yaw[0]]),
                               b.ground[0], np.array([b.yaw[0]]))
        ia, ib = (int(filled.index_of([t])[0]) for t in (gap.start, gap.end))
        start = (filled.rotations[ia], filled.translations[ia], filled.scales[ia])
        end = (filled.rotations[ib], filled.translations[ib], filled.scales[ib])
        fps = filled.fps
        window = int(round(self.option("window") * fps))
        r, t, s = assemble(graph, frame, nodes, ground[0], yaw[0], start, end,
                           blend=int(round(self.option("blend") * fps)), window=window,
                           profile=self.option("profile"))
        if self.option("foot_lock") and len(self.feet.joints):
            r = self._lock(request, graph, nodes, r, t, s, window)
        u = (gap.times - gap.start) * k / span
        return sample(r, t, s, u), ""

    def _lock(self, request, graph: MotionGraph, nodes: np.ndarray, r, t, s, window: int) -> np.ndarray:
        feet: Feet = self.feet
        labels = np.empty((len(nodes), len(feet.joints)), dtype=bool)
        labels[1:-1] = graph.contact[nodes[1:-1]]
        # The known samples at the ends: planted if low (their speed may be unknown).
        ends = kinematics.global_positions(request.skeleton.parents, r[[0, -1]], t[[0, -1]], s[[0, -1]])
        end_h = ends[:, feet.joints] @ feet.up - feet.ground
        labels[[0, -1]] = end_h < PLANTED_HEIGHT * feet.size
        # Heights as played in the source frames, displaced to the known samples' at the ends;
        # a planted foot stays at its source height (on the ground) except right at the ends.
        ramp = int(round(self.option("lock_ramp") * request.known.fps))
        src = self.foot_height[nodes]
        w0, w1 = end_weights(len(nodes), window, self.option("profile"))
        free = 1.0 - near_planted(labels, ramp) * edge_window(len(nodes), ramp)[:, None]
        heights = src + free * (w0[:, None] * (end_h[0] - src[0]) + w1[:, None] * (end_h[1] - src[-1]))
        return lock_feet(feet, request.skeleton, r, t, s, labels, ramp, heights)

    def _clean(self, request, filled: Motion, gap: Gap, part):
        """Stances pinned and steps lifted on a filled gap, known samples at both ends included, where a
        planted foot slides."""
        if not len(self.feet.joints) or not len(gap.times):
            return part
        r, t, s, rate = _with_ends(filled, gap, part)
        positions = kinematics.global_positions(request.skeleton.parents, r, t, s)
        slide = glide(self.feet, positions)
        seconds = (gap.end - gap.start) / filled.fps
        if slide <= max(self.option("clean_glide"), self.option("clean_ratio") * self.context_glide * seconds):
            # No planted foot slides, or no more than the shot's own feet do in as much time: nothing for
            # the cleanup to fix, so nothing it may spoil.
            return part
        r = clean_steps(self.feet, request.skeleton, r, t, s, rate)
        return r[1:-1], part[1], part[2]

    def _plausibility(self, request, graph: MotionGraph, frame: BodyFrame, filled: Motion, gap: Gap, part) -> float:
        """Mean distance of a candidate's frames (pose and velocity) to their nearest graph node:
        how much the in-between looks like motion the shot (and references) actually contain."""
        fd = frame_data(frame, request.skeleton, *_with_ends(filled, gap, part))
        feats = np.concatenate([fd.pose, self.option("velocity_weight") * fd.velocity], axis=1)[1:-1]
        return float(graph.nearest(feats).mean())

    def _select(self, request, graph: MotionGraph, frame: BodyFrame, filled: Motion, gap: Gap, part):
        """Keep the graph's in-between unless plain interpolation looks more like the shot's motion."""
        interp = self._interp(request, gap)
        g = self._plausibility(request, graph, frame, filled, gap, part)
        i = self._plausibility(request, graph, frame, filled, gap, interp)
        # A path through reference frames must also have something to fix: where interpolation's frames
        # are already within the graph's transition threshold of real motion, an outside clip's motion
        # (plausible, but not this shot's) is kept out.
        plausible = self._outside and i < self.option("interp_plausible") * graph.threshold
        # The graph's motion replaces interpolation only where it is clearly more like the shot's motion:
        # between about half and the same distance, it loses as often as it wins (docs/benchmarks.md).
        closer = g < self.option("graph_margin") * i
        if not closer or plausible:
            why = "interpolation already plausible" if plausible else (
                "interpolation more plausible" if i < g else "graph not clearly more plausible")
            log.info("graph prior: %s: gap %g..%g: %s (%.4f vs %.4f, threshold %.4f); using it",
                     request.name or "animation", gap.start, gap.end, why, i, g, graph.threshold)
            self.fallbacks.append({"start": gap.start, "end": gap.end, "reason": why})
            return interp
        return part

    def _interp(self, request: InbetweenRequest, gap: Gap):
        from .interp import InterpPrior

        sub = replace(request, timeline=replace(request.timeline, gaps=[gap]))
        m = InterpPrior().fill(sub)
        return m.rotations, m.translations, m.scales

    def _fallback(self, request: InbetweenRequest, gap: Gap, reason: str):
        log.warning("graph prior: %s: gap %g..%g falls back to interp (%s)", request.name or "animation",
                    gap.start, gap.end, reason)
        self.fallbacks.append({"start": gap.start, "end": gap.end, "reason": reason})
        return self._interp(request, gap)


def sample_period(known: Motion, timeline) -> float:
    """Time codes between consecutive context samples (1.0 unless the context is sampled otherwise,
    e.g. every half time code); near-integer jitter (1.0000000521) counts as 1."""
    times = timeline.context_times
    if len(times) < 2:  # a one-sample context says nothing about sampling (the keys are not a run)
        return 1.0
    period = float(np.median(np.diff(times)))
    return 1.0 if abs(period - 1.0) <= TIME_TOLERANCE or period <= TIME_TOLERANCE else period


def on_steps(request: InbetweenRequest, period: float) -> InbetweenRequest:
    """The request with time codes divided by ``period``: one context sample per step."""
    def scaled(m: Motion) -> Motion:
        return replace(m, times=m.times / period, fps=m.fps / period)

    tl = request.timeline
    timeline = replace(tl, authored=tl.authored / period, context=(tl.context[0] / period, tl.context[1] / period),
                       keys=np.asarray(tl.keys) / period,
                       gaps=[Gap(g.start / period, g.end / period, g.times / period) for g in tl.gaps])
    return replace(request, known=scaled(request.known), timeline=timeline)


def _with_ends(filled: Motion, gap: Gap, part) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """A gap's (rotations, translations, scales) with the known samples at both ends added, and its frame rate."""
    ia, ib = (int(filled.index_of([t])[0]) for t in (gap.start, gap.end))
    r = np.concatenate([filled.rotations[[ia]], part[0], filled.rotations[[ib]]])
    t = np.concatenate([filled.translations[[ia]], part[1], filled.translations[[ib]]])
    s = np.concatenate([filled.scales[[ia]], part[2], filled.scales[[ib]]])
    times = np.concatenate([[gap.start], gap.times, [gap.end]])
    return r, t, s, filled.fps / float(np.median(np.diff(times)))
