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
worse than interp".

*References and libraries* (``InbetweenRequest.references``: ``--reference``
files, or library stretches that ``inbetween --library`` retrieved, see
``anymole_usd/library/retrieval.py``). The shot's own graph is built and used
exactly as without them; a second, wider graph holds the shot's runs and the
admitted reference runs, and its path replaces the own answer only where it is
clearly better, both measured against the wider graph's frames: against
interpolation below ``reference_margin`` (0.9: library stretches are admitted
only when they match both ends of a gap closely, and then, measured on the
tuning clips, every path under 1.0 x interpolation's distance beat it (18 of 18
gaps); 0.9 keeps a margin, as a tie is not "closer to real motion") and not where interpolation is
already within the graph's transition threshold of real motion, against the
own graph's path below ``graph_margin`` (a path through another skeleton's retargeted clip, labelled
``retargeted``, faces ``graph_margin`` against interpolation too: another actor's motion, and the wider
graph it is measured against contains it). So a reference can never make a gap
worse than the shot alone would by more than that test's misses (another Bandai
walk given as ``--reference`` used to pull a Bandai walk from 0.13 to 0.63 m
L2P). ``--reference`` runs enter the wider graph only when the shot's own
frames come close to theirs (``admit``); library stretches were admitted by
the retrieval. :attr:`GraphPrior.gaps` records per gap what filled it
(``graph``, ``references``, ``interp``) and which reference seconds it played.

*Contact cleanup* (``motion_graph/plants.py``: stances pinned, glides turned
into lifted steps) runs on a filled gap, interpolated or not, when a low foot
slides more than ``clean_glide`` character sizes in it (interpolated walking)
and more than ``clean_ratio`` x what the shot's own low feet slide in as long
(footwork that slides, a pivot, is left alone), and the graph holds at least
``min_context`` of motion to learn contacts from; where no foot slides it has
nothing to fix and is not applied. A rig whose every contact joint is a finger
(a hand) has no feet and is never cleaned.

A gap falls back to ``interp`` with a warning on the ``anymole_usd.priors.graph``
logger (Python ``logging``, a child of ``anymole_usd``) when the context is too
short for a useful graph (under ``min_context`` seconds) or the graph has no
path of the gap's length. :attr:`GraphPrior.fallbacks` lists every gap filled
by interpolation after :meth:`fill` (fallbacks and choices), with the reason.

*Retrieval API*: every pose comparison goes through
:class:`motion_graph.neighbours.FrameIndex` (exact k-nearest neighbours over
feature rows, ``N log N``); the features are
:func:`motion_graph.features.frame_data` rows (facing-normalised joint
positions and ``velocity_weight`` x velocities, in character sizes) of the
joints below the trajectory joint, the same a motion library stores per node.
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
from .motion_graph.corpus import Corpus, build_corpus, path_segments
from .motion_graph.features import BodyFrame, FrameData, frame_data
from .motion_graph.footlock import PLANTED_HEIGHT, Feet, edge_window, lock_feet, near_planted
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
    Param("reference_margin", 0.9, "per gap, a path through reference (library) frames replaces interpolation "
          "only where its distance to real motion is below this fraction of interpolation's (against the shot's "
          "own graph path: graph_margin)", min=0, max=1),
    Param("graph_margin", 0.55, "per gap, the graph replaces interpolation only where its frames' distance to "
          "real motion is below this fraction of interpolation's", min=0, max=1),
    Param("clean_steps", True, "on a filled gap where a planted foot slides: pin the stances and lift the steps"),
    Param("clean_glide", 0.5, "character sizes a low foot must slide in a filled gap before the cleanup touches it",
          min=0),
    Param("clean_ratio", 5.0, "and more than this x what the shot's own low feet slide in as long (footwork that "
          "slides, a pivot: left alone)", min=0),
)


class GraphPrior(Prior):
    name = "graph"
    description = "Motion-graph retrieval from the shot's own context (data-free; Video Motion Graphs)."

    param_spec = PARAMS

    def __init__(self, **params) -> None:
        super().__init__(**params)  # validated and typed through ``param_spec``
        self.fallbacks: list[dict] = []
        self.gaps: list[dict] = []  # per gap: start, end, filled_by (graph | references | interp), segments
        self.stats: dict = {}  # size of the last graph built (nodes, edges, transitions, alive nodes)
        self.feet: Feet | None = None
        self.admitted = np.zeros(0, dtype=bool)  # per reference run: kept in the graph
        self._outside = False
        self._nodes = np.zeros(0, dtype=np.int64)

    def fill(self, request: InbetweenRequest) -> Motion:
        from anymole_usd.blas import one_blas_thread

        with one_blas_thread():  # small matrices: threads only spin (eigh 186 x 186: 0.38 s -> 4 ms)
            return self._fill_on_steps(request)

    def _fill_on_steps(self, request: InbetweenRequest) -> Motion:
        period = sample_period(request.known, request.timeline)
        if period == 1.0:
            return self._fill(request)
        # Work in steps of the context's own sampling (graph edges mean "one sample later"), then
        # put the result back on the requested time codes.
        out = self._fill(on_steps(request, period))
        out.times = np.asarray(request.target_times, dtype=np.float64)
        out.fps = request.known.fps
        for record in self.fallbacks + self.gaps:
            record["start"], record["end"] = record["start"] * period, record["end"] * period
        return out

    def _fill(self, request: InbetweenRequest) -> Motion:
        self.fallbacks, self.gaps = [], []
        self.feet = None
        self.admitted = np.zeros(0, dtype=bool)
        known = request.known.normalized()
        out = self.empty_like(known, request.target_times)
        fps = known.fps
        own = dense_runs(known)
        refs, origin = [], []
        for i, ref in enumerate(request.references):
            for r in dense_runs(resample_to(ref, fps)):
                if r.num_joints == known.num_joints:
                    refs.append(r)
                    origin.append(i)
        min_nodes = max(3, int(np.ceil(self.option("min_context") * fps)))
        # The shot's own graph, exactly as without references; then, with references, a wider graph whose
        # paths replace the own answer only where clearly better (a reference can never make it worse).
        base = wide = None
        if sum(r.num_frames for r in own) >= min_nodes:
            base = self._build(request, own, [-1] * len(own), fps)
        if refs and sum(r.num_frames for r in own + refs) >= min_nodes:
            labels = request.reference_labels
            check = [False] * len(own) + [not (i < len(labels) and labels[i].get("admitted")) for i in origin]
            wide = self._build(request, own + refs, [-1] * len(own) + origin, fps, check)
            self.admitted = wide.admitted
        contacts = base or wide  # contacts known from enough motion
        if contacts is not None:
            self.feet = contacts.feet
        if wide is not None and not wide.admitted.any():
            wide = None  # every reference refused: the wider graph is the own one, its paths are base's
        filled = known
        cursor = 0
        for i, gap in enumerate(request.timeline.gaps):
            request.report(f"graph: gap {i + 1}/{len(request.timeline.gaps)}", i / max(len(request.timeline.gaps), 1))
            n = len(gap.times)
            part, source, reason = self._own(request, base, filled, gap, min_nodes)
            segments: list[dict] = []
            if wide is not None and wide.graph.alive.sum() >= min_nodes:
                cand, _ = self._fill_gap(request, wide, filled, gap)
                if cand is not None and self._outside:
                    played = path_segments(wide, self._nodes, fps)
                    # Another skeleton's clip, retargeted (library): another actor's motion measured against
                    # frames that include it; it must beat interpolation as clearly as the own graph must.
                    other = any(s["reference"] < len(request.reference_labels) and
                                request.reference_labels[s["reference"]].get("retargeted") for s in played)
                    why = self._prefer(request, wide, filled, gap, cand, part, source == "interp",
                                       self.option("graph_margin") if other else None)
                    if not why:
                        part, source, reason = cand, "references", ""
                        segments = played
                    elif source == "interp":
                        reason = why
            if source == "interp":
                self._note_interp(request, gap, reason)
                if part is None:
                    part = self._interp(request, gap)
            if self.option("clean_steps") and contacts is not None:
                part = self._clean(request, contacts, filled, gap, part)
            self.gaps.append({"start": float(gap.start), "end": float(gap.end), "filled_by": source,
                              **({"reason": reason} if source == "interp" else {}),
                              **({"segments": segments} if segments else {})})
            out.rotations[cursor:cursor + n] = part[0]
            out.translations[cursor:cursor + n] = part[1]
            out.scales[cursor:cursor + n] = part[2]
            cursor += n
            filled = Motion.concatenate([filled, out.select(np.arange(cursor - n, cursor))])
        return out

    def _own(self, request, base: Corpus | None, filled: Motion, gap: Gap, min_nodes: int):
        """The gap as the shot's own graph fills it: (part or None for interpolation, source, reason)."""
        reason = f"context too short for a motion graph (under {self.option('min_context')} s)"
        if base is not None and base.graph.alive.sum() < min_nodes:
            reason = f"only {int(base.graph.alive.sum())} graph nodes survive dead-end pruning"
        if base is None or base.graph.alive.sum() < min_nodes:
            return None, "interp", reason
        part, reason = self._fill_gap(request, base, filled, gap)
        if part is None:
            return None, "interp", reason
        if self.option("select"):
            why = self._select(request, base, filled, gap, part)
            if why:
                return self._interp(request, gap), "interp", why
        return part, "graph", ""

    # ------------------------------------------------------------------ graph

    def _build(self, request: InbetweenRequest, runs: list[Motion], origin: list[int], fps: float,
               check: list[bool] | None = None) -> Corpus:
        keys = ("velocity_weight", "threshold_scale", "jump_penalty", "prune", "max_transitions", "admit")
        corpus = build_corpus(request.skeleton, request.known, request.up_axis, runs, origin, fps,
                              {k: self.option(k) for k in keys}, check)
        graph = corpus.graph
        self.stats = {"nodes": graph.size, "edges": int(len(graph.src)), "transitions": graph.transitions,
                      "alive": int(graph.alive.sum())}
        if self.option("jitter") > 0:
            rng = np.random.default_rng(request.seed)
            graph.cost = graph.cost + self.option("jitter") * rng.random(len(graph.cost)) * (graph.cost > 0)
        return corpus

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

    def _fill_gap(self, request, corpus: Corpus, filled: Motion, gap: Gap):
        """The gap filled along the best path of ``corpus``'s graph (None, reason: no path)."""
        graph, frame = corpus.graph, corpus.frame
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
        self._outside = bool(np.any(graph.run[nodes] >= corpus.own))  # the path plays reference frames
        self._nodes = nodes
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
        if self.option("foot_lock") and len(corpus.feet.joints):
            r = self._lock(request, corpus, nodes, r, t, s, window)
        u = (gap.times - gap.start) * k / span
        return sample(r, t, s, u), ""

    def _lock(self, request, corpus: Corpus, nodes: np.ndarray, r, t, s, window: int) -> np.ndarray:
        feet = corpus.feet
        labels = np.empty((len(nodes), len(feet.joints)), dtype=bool)
        labels[1:-1] = corpus.graph.contact[nodes[1:-1]]
        # The known samples at the ends: planted if low (their speed may be unknown).
        ends = kinematics.global_positions(request.skeleton.parents, r[[0, -1]], t[[0, -1]], s[[0, -1]])
        end_h = ends[:, feet.joints] @ feet.up - feet.ground
        labels[[0, -1]] = end_h < PLANTED_HEIGHT * feet.size
        # Heights as played in the source frames, displaced to the known samples' at the ends;
        # a planted foot stays at its source height (on the ground) except right at the ends.
        ramp = int(round(self.option("lock_ramp") * request.known.fps))
        src = corpus.foot_height[nodes]
        w0, w1 = end_weights(len(nodes), window, self.option("profile"))
        free = 1.0 - near_planted(labels, ramp) * edge_window(len(nodes), ramp)[:, None]
        heights = src + free * (w0[:, None] * (end_h[0] - src[0]) + w1[:, None] * (end_h[1] - src[-1]))
        return lock_feet(feet, request.skeleton, r, t, s, labels, ramp, heights)

    def _clean(self, request, corpus: Corpus, filled: Motion, gap: Gap, part):
        """Stances pinned and steps lifted on a filled gap, known samples at both ends included, where a
        planted foot slides."""
        feet = corpus.feet
        if not len(feet.joints) or not len(gap.times):
            return part
        r, t, s, rate = _with_ends(filled, gap, part)
        positions = kinematics.global_positions(request.skeleton.parents, r, t, s)
        slide = glide(feet, positions)
        seconds = (gap.end - gap.start) / filled.fps
        if slide <= max(self.option("clean_glide"), self.option("clean_ratio") * corpus.context_glide * seconds):
            # No planted foot slides, or no more than the shot's own feet do in as much time: nothing for
            # the cleanup to fix, so nothing it may spoil.
            return part
        r = clean_steps(feet, request.skeleton, r, t, s, rate)
        return r[1:-1], part[1], part[2]

    def _plausibility(self, request, corpus: Corpus, filled: Motion, gap: Gap, part) -> float:
        """Mean distance of a candidate's frames (pose and velocity) to their nearest graph node:
        how much the in-between looks like motion the shot (and references) actually contain."""
        fd = frame_data(corpus.frame, request.skeleton, *_with_ends(filled, gap, part))
        feats = np.concatenate([fd.pose, self.option("velocity_weight") * fd.velocity], axis=1)[1:-1]
        return float(corpus.graph.nearest(feats).mean())

    def _select(self, request, corpus: Corpus, filled: Motion, gap: Gap, part) -> str:
        """Why plain interpolation is kept instead of the graph's in-between ("": the graph's is used)."""
        interp = self._interp(request, gap)
        g = self._plausibility(request, corpus, filled, gap, part)
        i = self._plausibility(request, corpus, filled, gap, interp)
        # The graph's motion replaces interpolation only where it is clearly more like the shot's motion:
        # between about half and the same distance, it loses as often as it wins (docs/benchmarks.md).
        if g < self.option("graph_margin") * i:
            return ""
        why = "interpolation more plausible" if i < g else "graph not clearly more plausible"
        log.info("graph prior: %s: gap %g..%g: %s (%.4f vs %.4f, threshold %.4f)", request.name or "animation",
                 gap.start, gap.end, why, i, g, corpus.graph.threshold)
        return why

    def _prefer(self, request, wide: Corpus, filled: Motion, gap: Gap, cand, part, is_interp: bool,
                margin: float | None = None) -> str:
        """Why a path through reference frames does not replace the own answer ``part`` (``is_interp``:
        plain interpolation), both measured against the wider graph's real motion ("": it does).
        ``margin``: against interpolation, instead of ``reference_margin``."""
        own = self._interp(request, gap) if part is None else part
        g = self._plausibility(request, wide, filled, gap, cand)
        b = self._plausibility(request, wide, filled, gap, own)
        why = ""
        if is_interp and b < self.option("interp_plausible") * wide.graph.threshold:
            # A reference path must have something to fix: where interpolation's frames are already within
            # the graph's transition threshold of real motion, another clip's motion (plausible, but not
            # this shot's) is kept out.
            why = "interpolation already plausible"
        elif is_interp and not g < (self.option("reference_margin") if margin is None else margin) * b:
            why = "interpolation more plausible" if b < g else "graph not clearly more plausible"
        elif not is_interp and not g < self.option("graph_margin") * b:
            why = "the shot's own graph not clearly beaten"  # it already beat interpolation
        log.info("graph prior: %s: gap %g..%g: reference path %s (%.4f vs own %.4f, threshold %.4f)",
                 request.name or "animation", gap.start, gap.end, f"not used: {why}" if why else "used", g, b,
                 wide.graph.threshold)
        return why

    def _interp(self, request: InbetweenRequest, gap: Gap):
        from .interp import InterpPrior

        sub = replace(request, timeline=replace(request.timeline, gaps=[gap]))
        m = InterpPrior().fill(sub)
        return m.rotations, m.translations, m.scales

    def _note_interp(self, request: InbetweenRequest, gap: Gap, reason: str) -> None:
        """Record a gap filled by interpolation; a warning when no graph could fill it (not a choice)."""
        chosen = reason in ("interpolation more plausible", "graph not clearly more plausible",
                            "interpolation already plausible")
        (log.info if chosen else log.warning)("graph prior: %s: gap %g..%g falls back to interp (%s)",
                                              request.name or "animation", gap.start, gap.end, reason)
        self.fallbacks.append({"start": gap.start, "end": gap.end, "reason": reason})


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
